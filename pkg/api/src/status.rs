//! [`ApiError`]: a `metav1.Status` failure, built like apimachinery's `errors.New*`.
//!
//! Every failure a client sees is one of these, serialized to upstream's exact JSON
//! (`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",...}`) with upstream's
//! HTTP code, `reason` and message wording. Client libraries branch on `reason` and `code`
//! (client-go's `IsNotFound`, `IsConflict`, retry on `Timeout`/`TooManyRequests`), and kubectl
//! prints `message`, so both follow upstream exactly. The API server converts storage errors
//! into these in one place; this crate only knows how to build and serialize them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::field::{self, FieldError};
use crate::resources::{GroupKind, GroupResource};

/// `metav1.StatusReason`: why a request failed, for machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// 401: the request lacks valid credentials.
    Unauthorized,
    /// 403: the user may not perform the action.
    Forbidden,
    /// 404: the named object does not exist.
    NotFound,
    /// 409 on create: the named object already exists.
    AlreadyExists,
    /// 409: a write lost a race (resourceVersion precondition, apply conflict).
    Conflict,
    /// 410: the resource is gone.
    Gone,
    /// 410: the requested resourceVersion was compacted away.
    Expired,
    /// 422: the object failed validation.
    Invalid,
    /// 500: the server could not finish in time; retry after `retryAfterSeconds`.
    ServerTimeout,
    /// 504: the request timed out; it may still complete.
    Timeout,
    /// 429: rate limited; retry later.
    TooManyRequests,
    /// 400: the request is malformed.
    BadRequest,
    /// 405: the verb is not supported on this resource.
    MethodNotAllowed,
    /// 406: none of the accepted media types can be served.
    NotAcceptable,
    /// 413: the request body is too large.
    RequestEntityTooLarge,
    /// 415: the request body's media type is not supported.
    UnsupportedMediaType,
    /// 500: an unexpected server failure.
    InternalError,
    /// 503: the service is temporarily unavailable.
    ServiceUnavailable,
}

impl Reason {
    /// The wire string (`NotFound`, `AlreadyExists`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "NotFound",
            Self::AlreadyExists => "AlreadyExists",
            Self::Conflict => "Conflict",
            Self::Gone => "Gone",
            Self::Expired => "Expired",
            Self::Invalid => "Invalid",
            Self::ServerTimeout => "ServerTimeout",
            Self::Timeout => "Timeout",
            Self::TooManyRequests => "TooManyRequests",
            Self::BadRequest => "BadRequest",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::NotAcceptable => "NotAcceptable",
            Self::RequestEntityTooLarge => "RequestEntityTooLarge",
            Self::UnsupportedMediaType => "UnsupportedMediaType",
            Self::InternalError => "InternalError",
            Self::ServiceUnavailable => "ServiceUnavailable",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `metav1.CauseType` of the cause upstream attaches to a too-large-resourceVersion timeout.
pub const CAUSE_RESOURCE_VERSION_TOO_LARGE: &str = "ResourceVersionTooLarge";
/// `metav1.CauseType` of a server-side apply conflict with another field manager.
pub const CAUSE_FIELD_MANAGER_CONFLICT: &str = "FieldManagerConflict";

/// `metav1.StatusCause`: one specific problem, usually one invalid field.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatusCause {
    /// Machine-readable cause (`FieldValueInvalid`, ...); upstream's JSON name is `reason`.
    #[serde(rename = "reason", default, skip_serializing_if = "String::is_empty")]
    pub cause_type: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The field at fault (`spec.replicas`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// `metav1.StatusDetails`: which object the failure is about. Field order is upstream's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    /// Object name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// API group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Resource (for most errors) or kind (for Invalid), as upstream fills it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Object UID, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The individual problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    /// Seconds the client should wait before retrying.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_after_seconds: i32,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// A failed API request: a `metav1.Status` with `status: Failure`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: u16,
    reason: Reason,
    message: String,
    details: Option<StatusDetails>,
}

/// The wire shape, in upstream's field order; `metadata` is always the empty `ListMeta`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusWire<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: EmptyMeta,
    status: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a StatusDetails>,
    code: u16,
}

#[derive(Serialize)]
struct EmptyMeta {}

impl Serialize for ApiError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StatusWire {
            kind: "Status",
            api_version: "v1",
            metadata: EmptyMeta {},
            status: "Failure",
            message: &self.message,
            reason: self.reason,
            details: self.details.as_ref(),
            code: self.code,
        }
        .serialize(s)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

fn resource_details(gr: GroupResource<'_>, name: &str) -> StatusDetails {
    StatusDetails {
        name: name.to_owned(),
        group: gr.group.to_owned(),
        kind: gr.resource.to_owned(),
        ..StatusDetails::default()
    }
}

fn retry_details(retry_after_seconds: i32) -> StatusDetails {
    StatusDetails {
        retry_after_seconds,
        ..StatusDetails::default()
    }
}

impl ApiError {
    /// A failure with the given parts, for the few cases no constructor covers.
    pub fn new(
        code: u16,
        reason: Reason,
        message: impl Into<String>,
        details: Option<StatusDetails>,
    ) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details,
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The machine-readable reason.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The details, if any.
    pub fn details(&self) -> Option<&StatusDetails> {
        self.details.as_ref()
    }

    /// The Status as JSON bytes, ready to be a response body.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings and integers into a Vec cannot fail; an empty body would
        // still carry the HTTP code.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// 404 `pods "x" not found` / `deployments.apps "x" not found`.
    pub fn not_found(gr: GroupResource<'_>, name: &str) -> Self {
        Self::new(
            404,
            Reason::NotFound,
            format!("{gr} {} not found", field::go_quote(name)),
            Some(resource_details(gr, name)),
        )
    }

    /// 409 AlreadyExists `configmaps "x" already exists`.
    pub fn already_exists(gr: GroupResource<'_>, name: &str) -> Self {
        Self::new(
            409,
            Reason::AlreadyExists,
            format!("{gr} {} already exists", field::go_quote(name)),
            Some(resource_details(gr, name)),
        )
    }

    /// 409 AlreadyExists when `generateName` produced a taken name: the client should retry.
    pub fn generate_name_conflict(
        gr: GroupResource<'_>,
        name: &str,
        retry_after_seconds: i32,
    ) -> Self {
        let mut details = resource_details(gr, name);
        details.retry_after_seconds = retry_after_seconds;
        Self::new(
            409,
            Reason::AlreadyExists,
            format!(
                "{gr} {} already exists, the server was not able to generate a unique name for the object",
                field::go_quote(name)
            ),
            Some(details),
        )
    }

    /// 401 Unauthorized; an empty reason becomes `not authorized`.
    pub fn unauthorized(reason: &str) -> Self {
        let message = if reason.is_empty() {
            "not authorized"
        } else {
            reason
        };
        Self::new(401, Reason::Unauthorized, message, None)
    }

    /// 403 Forbidden: `pods "x" is forbidden: <err>`, `pods is forbidden: <err>` without a
    /// name, `forbidden: <err>` without a resource.
    pub fn forbidden(gr: GroupResource<'_>, name: &str, err: impl fmt::Display) -> Self {
        let message = if gr.is_empty() {
            format!("forbidden: {err}")
        } else if name.is_empty() {
            format!("{gr} is forbidden: {err}")
        } else {
            format!("{gr} {} is forbidden: {err}", field::go_quote(name))
        };
        Self::new(
            403,
            Reason::Forbidden,
            message,
            Some(resource_details(gr, name)),
        )
    }

    /// 409 Conflict: `Operation cannot be fulfilled on configmaps "x": <err>`.
    pub fn conflict(gr: GroupResource<'_>, name: &str, err: impl fmt::Display) -> Self {
        Self::new(
            409,
            Reason::Conflict,
            format!(
                "Operation cannot be fulfilled on {gr} {}: {err}",
                field::go_quote(name)
            ),
            Some(resource_details(gr, name)),
        )
    }

    /// 409 Conflict from server-side apply, one cause per conflicting field.
    pub fn apply_conflict(causes: Vec<StatusCause>, message: impl Into<String>) -> Self {
        Self::new(
            409,
            Reason::Conflict,
            message,
            Some(StatusDetails {
                causes,
                ..StatusDetails::default()
            }),
        )
    }

    /// 410 Gone.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, Reason::Gone, message, None)
    }

    /// 410 Expired: the resourceVersion asked for was compacted (`too old resource version`).
    pub fn resource_expired(message: impl Into<String>) -> Self {
        Self::new(410, Reason::Expired, message, None)
    }

    /// 422 Invalid: `ConfigMap "x" is invalid: <errors>` (one error bare, several in
    /// brackets), one cause per field error.
    pub fn invalid(gk: GroupKind<'_>, name: &str, errors: &[FieldError]) -> Self {
        let causes = errors
            .iter()
            .map(|e| StatusCause {
                cause_type: e.error_type.cause_type().to_owned(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect();
        let quoted = field::go_quote(name);
        let message = match field::aggregate(errors) {
            Some(agg) => format!("{gk} {quoted} is invalid: {agg}"),
            None => format!("{gk} {quoted} is invalid"),
        };
        Self::new(
            422,
            Reason::Invalid,
            message,
            Some(StatusDetails {
                name: name.to_owned(),
                group: gk.group.to_owned(),
                kind: gk.kind.to_owned(),
                causes,
                ..StatusDetails::default()
            }),
        )
    }

    /// 400 BadRequest with the reason as message.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(400, Reason::BadRequest, reason, None)
    }

    /// 429 TooManyRequests with the message as given and a retry hint.
    pub fn too_many_requests(message: impl Into<String>, retry_after_seconds: i32) -> Self {
        Self::new(
            429,
            Reason::TooManyRequests,
            message,
            Some(retry_details(retry_after_seconds)),
        )
    }

    /// 429 `Too many requests: <message>` (upstream `NewTooManyRequestsError`, no details).
    pub fn too_many_requests_error(message: &str) -> Self {
        Self::new(
            429,
            Reason::TooManyRequests,
            format!("Too many requests: {message}"),
            None,
        )
    }

    /// 413 `Request entity too large: <message>`.
    pub fn request_entity_too_large(message: &str) -> Self {
        Self::new(
            413,
            Reason::RequestEntityTooLarge,
            format!("Request entity too large: {message}"),
            None,
        )
    }

    /// 503 ServiceUnavailable with the reason as message.
    pub fn service_unavailable(reason: impl Into<String>) -> Self {
        Self::new(503, Reason::ServiceUnavailable, reason, None)
    }

    /// 405 `<action> is not supported on resources of kind "<resource>"`.
    pub fn method_not_supported(gr: GroupResource<'_>, action: &str) -> Self {
        Self::new(
            405,
            Reason::MethodNotAllowed,
            format!(
                "{action} is not supported on resources of kind {}",
                field::go_quote(&gr.to_string())
            ),
            Some(resource_details(gr, "")),
        )
    }

    /// 406 `only the following media types are accepted: a, b`.
    pub fn not_acceptable(accepted: &[&str]) -> Self {
        Self::new(
            406,
            Reason::NotAcceptable,
            format!(
                "only the following media types are accepted: {}",
                accepted.join(", ")
            ),
            None,
        )
    }

    /// 415 `the body of the request was in an unknown format - accepted media types include: a, b`.
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            Reason::UnsupportedMediaType,
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
            None,
        )
    }

    /// 500 ServerTimeout: `The <operation> operation against <resource> could not be completed
    /// at this time, please try again.`
    pub fn server_timeout(
        gr: GroupResource<'_>,
        operation: &str,
        retry_after_seconds: i32,
    ) -> Self {
        let mut details = resource_details(gr, operation);
        details.retry_after_seconds = retry_after_seconds;
        Self::new(
            500,
            Reason::ServerTimeout,
            format!(
                "The {operation} operation against {gr} could not be completed at this time, please try again."
            ),
            Some(details),
        )
    }

    /// 504 `Timeout: <message>` with a retry hint.
    pub fn timeout(message: &str, retry_after_seconds: i32) -> Self {
        Self::new(
            504,
            Reason::Timeout,
            format!("Timeout: {message}"),
            Some(retry_details(retry_after_seconds)),
        )
    }

    /// 504 for a read at a resourceVersion newer than the server has seen yet (upstream
    /// `NewTooLargeResourceVersionError`); clients wait and retry on its
    /// `ResourceVersionTooLarge` cause.
    pub fn too_large_resource_version(
        minimum: u64,
        current: u64,
        retry_after_seconds: i32,
    ) -> Self {
        let mut err = Self::timeout(
            &format!("Too large resource version: {minimum}, current: {current}"),
            retry_after_seconds,
        );
        if let Some(details) = err.details.as_mut() {
            details.causes.push(StatusCause {
                cause_type: CAUSE_RESOURCE_VERSION_TOO_LARGE.to_owned(),
                message: "Too large resource version".to_owned(),
                field: String::new(),
            });
        }
        err
    }

    /// 500 `Internal error occurred: <err>`, the error repeated as the only cause.
    pub fn internal(err: impl fmt::Display) -> Self {
        let text = err.to_string();
        Self::new(
            500,
            Reason::InternalError,
            format!("Internal error occurred: {text}"),
            Some(StatusDetails {
                causes: vec![StatusCause {
                    message: text,
                    ..StatusCause::default()
                }],
                ..StatusDetails::default()
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::Path;
    use serde_json::{Value, json};

    fn wire(e: &ApiError) -> Value {
        serde_json::from_slice(&e.to_json()).expect("status json")
    }

    const PODS: GroupResource<'static> = GroupResource::new("", "pods");
    const DEPLOYMENTS: GroupResource<'static> = GroupResource::new("apps", "deployments");

    #[test]
    fn not_found_serializes_to_upstream_bytes() {
        let e = ApiError::not_found(PODS, "x");
        assert_eq!(
            String::from_utf8(e.to_json()).expect("utf8"),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"pods"},"code":404}"#
        );
        let e = ApiError::not_found(DEPLOYMENTS, "web");
        assert_eq!(e.message(), r#"deployments.apps "web" not found"#);
        assert_eq!(
            wire(&e)["details"],
            json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
    }

    #[test]
    fn conflict_and_already_exists() {
        let e = ApiError::conflict(
            GroupResource::new("", "configmaps"),
            "x",
            "the object has been modified; please apply your changes to the latest version and try again",
        );
        assert_eq!(e.code(), 409);
        assert_eq!(e.reason(), Reason::Conflict);
        assert_eq!(
            e.message(),
            r#"Operation cannot be fulfilled on configmaps "x": the object has been modified; please apply your changes to the latest version and try again"#
        );
        let e = ApiError::already_exists(DEPLOYMENTS, "web");
        assert_eq!((e.code(), e.reason()), (409, Reason::AlreadyExists));
        assert_eq!(e.message(), r#"deployments.apps "web" already exists"#);
        let e = ApiError::generate_name_conflict(PODS, "web-abcde", 1);
        assert_eq!(wire(&e)["details"]["retryAfterSeconds"], json!(1));
    }

    #[test]
    fn invalid_lists_every_field() {
        let gk = GroupKind::new("", "ConfigMap");
        let errs = vec![
            FieldError::invalid(&Path::new("metadata").child("name"), "A", "bad name"),
            FieldError::required(&Path::new("data"), ""),
        ];
        let e = ApiError::invalid(gk, "A", &errs);
        assert_eq!((e.code(), e.reason()), (422, Reason::Invalid));
        assert_eq!(
            e.message(),
            r#"ConfigMap "A" is invalid: [metadata.name: Invalid value: "A": bad name, data: Required value]"#
        );
        assert_eq!(
            wire(&e)["details"],
            json!({"name": "A", "kind": "ConfigMap", "causes": [
                {"reason": "FieldValueInvalid", "message": "Invalid value: \"A\": bad name", "field": "metadata.name"},
                {"reason": "FieldValueRequired", "message": "Required value", "field": "data"}
            ]})
        );
        let single = ApiError::invalid(GroupKind::new("apps", "Deployment"), "d", &errs[1..]);
        assert_eq!(
            single.message(),
            r#"Deployment.apps "d" is invalid: data: Required value"#
        );
        let none = ApiError::invalid(gk, "A", &[]);
        assert_eq!(none.message(), r#"ConfigMap "A" is invalid"#);
    }

    #[test]
    fn forbidden_message_forms() {
        let err =
            r#"User "bob" cannot list resource "pods" in API group "" in the namespace "default""#;
        let e = ApiError::forbidden(PODS, "", err);
        assert_eq!(e.message(), format!("pods is forbidden: {err}"));
        assert_eq!(wire(&e)["details"], json!({"kind": "pods"}));
        assert_eq!(
            ApiError::forbidden(PODS, "p", "no").message(),
            r#"pods "p" is forbidden: no"#
        );
        assert_eq!(
            ApiError::forbidden(GroupResource::new("", ""), "", "no").message(),
            "forbidden: no"
        );
        assert_eq!(ApiError::forbidden(PODS, "", "x").code(), 403);
    }

    #[test]
    fn codes_and_reasons_match_upstream() {
        let cases: Vec<(ApiError, u16, &str, &str)> = vec![
            (
                ApiError::unauthorized(""),
                401,
                "Unauthorized",
                "not authorized",
            ),
            (
                ApiError::unauthorized("Unauthorized"),
                401,
                "Unauthorized",
                "Unauthorized",
            ),
            (ApiError::bad_request("bad"), 400, "BadRequest", "bad"),
            (ApiError::gone("gone"), 410, "Gone", "gone"),
            (
                ApiError::resource_expired("too old resource version: 1 (5)"),
                410,
                "Expired",
                "too old resource version: 1 (5)",
            ),
            (
                ApiError::service_unavailable("down"),
                503,
                "ServiceUnavailable",
                "down",
            ),
            (
                ApiError::too_many_requests_error("slow down"),
                429,
                "TooManyRequests",
                "Too many requests: slow down",
            ),
            (
                ApiError::request_entity_too_large("limit is 3145728"),
                413,
                "RequestEntityTooLarge",
                "Request entity too large: limit is 3145728",
            ),
            (
                ApiError::method_not_supported(GroupResource::new("", "bindings"), "list"),
                405,
                "MethodNotAllowed",
                r#"list is not supported on resources of kind "bindings""#,
            ),
            (
                ApiError::not_acceptable(&["application/json", "application/yaml"]),
                406,
                "NotAcceptable",
                "only the following media types are accepted: application/json, application/yaml",
            ),
            (
                ApiError::unsupported_media_type(&["application/json"]),
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json",
            ),
            (
                ApiError::server_timeout(PODS, "get", 2),
                500,
                "ServerTimeout",
                "The get operation against pods could not be completed at this time, please try again.",
            ),
            (
                ApiError::timeout("request did not complete within 60s", 0),
                504,
                "Timeout",
                "Timeout: request did not complete within 60s",
            ),
            (
                ApiError::internal("disk on fire"),
                500,
                "InternalError",
                "Internal error occurred: disk on fire",
            ),
        ];
        for (e, code, reason, msg) in cases {
            let w = wire(&e);
            assert_eq!(w["code"], json!(code), "{msg}");
            assert_eq!(w["reason"], json!(reason), "{msg}");
            assert_eq!(w["message"], json!(msg));
            assert_eq!(w["status"], json!("Failure"));
            assert_eq!(e.to_string(), msg);
        }
        let w = wire(&ApiError::too_many_requests("throttled", 3));
        assert_eq!(w["details"], json!({"retryAfterSeconds": 3}));
        let w = wire(&ApiError::internal("disk on fire"));
        assert_eq!(
            w["details"],
            json!({"causes": [{"message": "disk on fire"}]})
        );
    }

    #[test]
    fn too_large_resource_version_is_a_timeout_with_cause() {
        let e = ApiError::too_large_resource_version(10, 5, 1);
        assert_eq!((e.code(), e.reason()), (504, Reason::Timeout));
        assert_eq!(
            e.message(),
            "Timeout: Too large resource version: 10, current: 5"
        );
        assert_eq!(
            wire(&e)["details"],
            json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1})
        );
    }

    #[test]
    fn status_decodes_as_k8s_openapi_status() {
        let e = ApiError::not_found(DEPLOYMENTS, "web");
        let s: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status =
            serde_json::from_slice(&e.to_json()).expect("k8s-openapi Status");
        assert_eq!(s.code, Some(404));
        assert_eq!(s.reason.as_deref(), Some("NotFound"));
        assert_eq!(s.details.and_then(|d| d.group).as_deref(), Some("apps"));
    }
}
