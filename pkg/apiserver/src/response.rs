//! Building responses: errors as `Status`, objects and lists in the negotiated encoding, and
//! `Warning` headers. Every body the API server sends goes through here.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use rkube_api::status::ApiError;
use serde::Serialize;

use crate::negotiate::Encoding;

/// An `ApiError` as a response; the one way failures leave the API server. Boxed: a Status
/// is large and errors are the rare path.
#[derive(Debug, PartialEq)]
pub(crate) struct Failure(pub Box<ApiError>);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(Box::new(e))
    }
}

impl std::ops::Deref for Failure {
    type Target = ApiError;
    fn deref(&self) -> &ApiError {
        &self.0
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.0.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        bytes_response(
            code,
            Encoding::Json.content_type(),
            Bytes::from(self.0.to_json()),
        )
    }
}

/// The result type of handlers.
pub(crate) type Result<T, E = Failure> = std::result::Result<T, E>;

/// A response with the given status, content type and body.
pub(crate) fn bytes_response(code: StatusCode, content_type: &str, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
}

/// Encodes `value` in `encoding`. YAML goes through a JSON value so that both encodings show
/// the same fields.
pub(crate) fn encode(value: &impl Serialize, encoding: Encoding) -> Result<Bytes> {
    let bytes = match encoding {
        Encoding::Json => serde_json::to_vec(value).map_err(ApiError::internal)?,
        Encoding::Yaml => {
            let json = serde_json::to_value(value).map_err(ApiError::internal)?;
            serde_yaml_ng::to_string(&json)
                .map_err(ApiError::internal)?
                .into_bytes()
        }
    };
    Ok(Bytes::from(bytes))
}

/// Adds one `Warning: 299 - "<text>"` header per warning, as upstream's warning recorder.
pub(crate) fn add_warnings(response: &mut Response, warnings: &[String]) {
    for w in warnings {
        let text = warning_header(w);
        if let Ok(v) = HeaderValue::from_bytes(text.as_bytes()) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
}

/// RFC 7234 warning value with upstream's escaping: quotes and backslashes escaped; control
/// characters (invalid in a header) become spaces, UTF-8 passes through as upstream's does.
fn warning_header(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 10);
    out.push_str("299 - \"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_quoted() {
        assert_eq!(warning_header(r#"a "b" \c"#), r#"299 - "a \"b\" \\c""#);
        assert_eq!(warning_header("x\ny"), r#"299 - "x y""#);
    }
}
