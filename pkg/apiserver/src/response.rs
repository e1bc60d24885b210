//! Building responses: errors as `Status`, objects and lists in the negotiated encoding, and
//! `Warning` headers. Every body the API server sends goes through here.
//!
//! An error's Status is encoded as the request's `Accept` asks ([`Failure::negotiated`], as
//! upstream's `ErrorNegotiated`), so a protobuf client gets a protobuf Status; where the request
//! is not at hand it is JSON.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use rkube_api::protobuf::{self, EncodeError};
use rkube_api::status::ApiError;
use serde_json::Value;

use crate::negotiate::{self, Encoding, SERVED_MEDIA_TYPES};

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
        self.negotiated(None)
    }
}

impl Failure {
    /// The Status in the encoding a request's `Accept` prefers; JSON if encoding fails.
    pub(crate) fn negotiated(self, accept: Option<&str>) -> Response {
        let code = StatusCode::from_u16(self.0.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let encoding = negotiate::error_encoding(accept);
        let encoded = match encoding {
            Encoding::Json => None,
            other => serde_json::to_value(&*self.0)
                .ok()
                .and_then(|status| encode(&status, other).ok()),
        };
        match encoded {
            Some(body) => bytes_response(code, encoding.content_type(), body),
            None => bytes_response(
                code,
                Encoding::Json.content_type(),
                Bytes::from(self.0.to_json()),
            ),
        }
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

/// Encodes an object (carrying its `apiVersion` and `kind`) in `encoding`.
pub(crate) fn encode(value: &Value, encoding: Encoding) -> Result<Bytes> {
    let bytes = match encoding {
        Encoding::Json => serde_json::to_vec(value).map_err(ApiError::internal)?,
        Encoding::Yaml => serde_yaml_ng::to_string(value)
            .map_err(ApiError::internal)?
            .into_bytes(),
        Encoding::Protobuf => protobuf::encode(value).map_err(protobuf_failure)?,
    };
    Ok(Bytes::from(bytes))
}

/// Negotiation only picks protobuf for kinds with a message, so an unknown kind here is still
/// upstream's 406 (its serializer's "not marshalable"); a value that does not fit the schema is
/// a stored object gone wrong.
pub(crate) fn protobuf_failure(e: EncodeError) -> Failure {
    match e {
        EncodeError::UnknownKind { .. } => ApiError::not_acceptable(SERVED_MEDIA_TYPES).into(),
        other => ApiError::internal(other).into(),
    }
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
