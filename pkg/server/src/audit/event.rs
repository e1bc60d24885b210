//! One audit event (`audit.k8s.io/v1` Event) and its two log formats: `json`, one event per
//! line with upstream's field names, order and omissions, and `legacy`, upstream's one-line
//! text (`EventString`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use rkube_api::field::go_quote;
use rkube_api::user::UserInfo;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::policy::{Level, Stage};

/// The response header (and request header a client may set) carrying the audit ID.
pub const AUDIT_ID_HEADER: &str = "audit-id";

/// The request's audit ID, as upstream's `WithAuditInit` chooses it: the client's own
/// `Audit-ID`, else a new UUID, which is then set on the request so every later layer (the
/// audit log, the response) names the same one.
pub fn ensure_audit_id(headers: &mut axum::http::HeaderMap) -> axum::http::HeaderValue {
    match headers.get(AUDIT_ID_HEADER) {
        Some(id) if !id.is_empty() => id.clone(),
        _ => {
            let id = axum::http::HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .expect("a UUID is a valid header value");
            headers.insert(AUDIT_ID_HEADER, id.clone());
            id
        }
    }
}

/// An audit event as it is being filled in; each stage writes it out as it stands then.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    kind: &'static str,
    api_version: &'static str,
    /// The level the policy gave the request.
    pub level: Level,
    /// Unique per request (or the client's `Audit-ID`).
    #[serde(rename = "auditID")]
    pub audit_id: String,
    /// The stage being written.
    pub stage: Stage,
    /// Path and query as sent.
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    /// The request-info verb (`get`, `list`, `watch`, `create`, ...; lower-case HTTP method
    /// for non-resource requests).
    pub verb: String,
    /// The authenticated user; `{}` when authentication failed.
    #[serde(serialize_with = "user_or_empty")]
    pub user: Option<UserInfo>,
    /// The user acted as, when impersonating.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "user_or_empty"
    )]
    pub impersonated_user: Option<UserInfo>,
    /// `X-Forwarded-For`, then `X-Real-Ip`, then the peer address.
    #[serde(rename = "sourceIPs", skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<String>,
    /// The client's `User-Agent`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    /// The object the request is about (resource requests only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<ObjectRef>,
    /// The answer's code, and for `Status` answers their status, message, reason and details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<ResponseStatus>,
    /// The request body (levels Request and RequestResponse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object: Option<Value>,
    /// The response body (level RequestResponse; never for watches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_object: Option<Value>,
    /// When the request arrived.
    #[serde(serialize_with = "micro_time")]
    pub request_received_timestamp: Timestamp,
    /// When this stage was written.
    #[serde(serialize_with = "micro_time")]
    pub stage_timestamp: Timestamp,
    /// Annotations layers added (authorization's decision, admission plugins).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Event {
    /// An event for a request received at `received`, before anything but its ID is known.
    pub fn new(audit_id: String, received: Timestamp) -> Event {
        Event {
            kind: "Event",
            api_version: super::policy::API_VERSION,
            level: Level::None,
            audit_id,
            stage: Stage::RequestReceived,
            request_uri: String::new(),
            verb: String::new(),
            user: None,
            impersonated_user: None,
            source_ips: Vec::new(),
            user_agent: String::new(),
            object_ref: None,
            response_status: None,
            request_object: None,
            response_object: None,
            request_received_timestamp: received,
            stage_timestamp: received,
            annotations: BTreeMap::new(),
        }
    }
}

/// `audit.k8s.io/v1` ObjectReference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Plural resource name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource: String,
    /// Namespace; empty for cluster-scoped objects.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Object name; from the request body when the URL has none (creates).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The uid the request body carries.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// API group; empty for the core group.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    /// API version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// The resourceVersion the request body carries.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// Subresource (`status`, `log`, ...).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subresource: String,
}

/// The bounded subset of a `metav1.Status` an event carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseStatus {
    /// `Success` or `Failure`, for `Status` answers.
    pub status: String,
    /// Human-readable explanation.
    pub message: String,
    /// Machine-readable reason (`Forbidden`, `NotFound`, ...).
    pub reason: String,
    /// The `Status`'s details, as sent.
    pub details: Option<Value>,
    /// The HTTP status code.
    pub code: u16,
}

impl Serialize for ResponseStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// Go writes the empty list metadata as `{}` and leaves out every empty field.
        #[derive(Serialize)]
        struct Wire<'a> {
            metadata: Empty,
            #[serde(skip_serializing_if = "str::is_empty")]
            status: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            message: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            reason: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            details: Option<&'a Value>,
            #[serde(skip_serializing_if = "is_zero")]
            code: u16,
        }
        #[derive(Serialize)]
        struct Empty {}
        fn is_zero(code: &u16) -> bool {
            *code == 0
        }
        Wire {
            metadata: Empty {},
            status: &self.status,
            message: &self.message,
            reason: &self.reason,
            details: self.details.as_ref(),
            code: self.code,
        }
        .serialize(serializer)
    }
}

impl ResponseStatus {
    /// Just a code.
    pub fn code(code: u16) -> ResponseStatus {
        ResponseStatus {
            code,
            ..ResponseStatus::default()
        }
    }

    /// The fields of a `Status` object (`kind: Status`), or `None` for any other value.
    pub fn from_status_object(value: &Value) -> Option<ResponseStatus> {
        if value.get("kind").and_then(Value::as_str) != Some("Status") {
            return None;
        }
        let text = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Some(ResponseStatus {
            status: text("status"),
            message: text("message"),
            reason: text("reason"),
            details: value.get("details").filter(|d| !d.is_null()).cloned(),
            code: value
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(0),
        })
    }
}

/// `metav1.MicroTime`: RFC 3339 in UTC with exactly six fractional digits.
fn micro_time<S: Serializer>(time: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&time.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

/// `authentication.k8s.io/v1` UserInfo, every field omitted when empty (`{}` for nobody).
fn user_or_empty<S: Serializer>(user: &Option<UserInfo>, serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Wire<'a> {
        #[serde(skip_serializing_if = "str::is_empty")]
        username: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        uid: &'a str,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        groups: &'a [String],
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        extra: &'a BTreeMap<String, Vec<String>>,
    }
    let empty = BTreeMap::new();
    let wire = match user {
        Some(user) => Wire {
            username: &user.name,
            uid: &user.uid,
            groups: &user.groups,
            extra: &user.extra,
        },
        None => Wire {
            username: "",
            uid: "",
            groups: &[],
            extra: &empty,
        },
    };
    wire.serialize(serializer)
}

/// How events are written (`--audit-log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line (the default).
    #[default]
    Json,
    /// Upstream's one-line text summary.
    Legacy,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Format, String> {
        match text {
            "json" => Ok(Format::Json),
            "legacy" => Ok(Format::Legacy),
            other => Err(format!(
                "invalid audit log format {other}, allowed formats are \"legacy,json\""
            )),
        }
    }
}

impl Format {
    /// `event` as one line, newline included.
    pub fn line(self, event: &Event) -> Vec<u8> {
        match self {
            Format::Json => {
                // Serializing owned strings, numbers and JSON values cannot fail.
                let mut line = serde_json::to_vec(event).unwrap_or_default();
                line.push(b'\n');
                line
            }
            Format::Legacy => legacy(event).into_bytes(),
        }
    }
}

/// Upstream's `EventString`: `<received, RFC 3339 with nanoseconds> AUDIT: id="..." ...`.
fn legacy(event: &Event) -> String {
    let quoted_list = |items: &[String]| {
        items
            .iter()
            .map(|g| go_quote(g))
            .collect::<Vec<_>>()
            .join(",")
    };
    let (username, groups) = match &event.user {
        Some(user) if !user.name.is_empty() => (
            user.name.clone(),
            if user.groups.is_empty() {
                "<none>".to_owned()
            } else {
                quoted_list(&user.groups)
            },
        ),
        _ => ("<none>".to_owned(), "<none>".to_owned()),
    };
    let (as_user, as_groups) = match &event.impersonated_user {
        Some(user) if !user.groups.is_empty() => (user.name.clone(), quoted_list(&user.groups)),
        Some(user) => (user.name.clone(), "<lookup>".to_owned()),
        None => ("<self>".to_owned(), "<lookup>".to_owned()),
    };
    let namespace = event
        .object_ref
        .as_ref()
        .map(|r| r.namespace.as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or("<none>");
    let response = event
        .response_status
        .as_ref()
        .map_or_else(|| "<deferred>".to_owned(), |s| s.code.to_string());
    let ip = event.source_ips.first().map_or("<unknown>", String::as_str);
    let mut line = event
        .request_received_timestamp
        .strftime("%Y-%m-%dT%H:%M:%S%.fZ")
        .to_string();
    let _ = writeln!(
        line,
        " AUDIT: id={} stage={} ip={} method={} user={} groups={} as={} asgroups={} \
         user-agent={} namespace={} uri={} response=\"{response}\"",
        go_quote(&event.audit_id),
        go_quote(stage_name(event.stage)),
        go_quote(ip),
        go_quote(&event.verb),
        go_quote(&username),
        go_quote(&groups),
        go_quote(&as_user),
        go_quote(&as_groups),
        go_quote(&event.user_agent),
        go_quote(namespace),
        go_quote(&event.request_uri),
    );
    line
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::RequestReceived => "RequestReceived",
        Stage::ResponseStarted => "ResponseStarted",
        Stage::ResponseComplete => "ResponseComplete",
        Stage::Panic => "Panic",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        let received: Timestamp = "2024-05-06T07:08:09.123456789Z".parse().unwrap();
        let mut event = Event::new("c0ffee".to_owned(), received);
        event.level = Level::Metadata;
        event.stage = Stage::ResponseComplete;
        event.request_uri = "/api/v1/namespaces/default/configmaps?fieldManager=kubectl".to_owned();
        event.verb = "create".to_owned();
        event.user = Some(UserInfo::new("alice", &["devs", "system:authenticated"]));
        event.source_ips = vec!["10.0.0.1".to_owned(), "127.0.0.1".to_owned()];
        event.user_agent = "kubectl/v1.33.0".to_owned();
        event.object_ref = Some(ObjectRef {
            resource: "configmaps".to_owned(),
            namespace: "default".to_owned(),
            name: "cfg".to_owned(),
            api_version: "v1".to_owned(),
            ..ObjectRef::default()
        });
        event.response_status = Some(ResponseStatus::code(201));
        event.stage_timestamp = "2024-05-06T07:08:09.5Z".parse().unwrap();
        event.annotations.insert(
            "authorization.k8s.io/decision".to_owned(),
            "allow".to_owned(),
        );
        event
    }

    #[test]
    fn json_is_upstreams_shape() {
        let line = String::from_utf8(Format::Json.line(&event())).unwrap();
        assert_eq!(
            line,
            concat!(
                r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"c0ffee","#,
                r#""stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/configmaps?fieldManager=kubectl","#,
                r#""verb":"create","user":{"username":"alice","groups":["devs","system:authenticated"]},"#,
                r#""sourceIPs":["10.0.0.1","127.0.0.1"],"userAgent":"kubectl/v1.33.0","#,
                r#""objectRef":{"resource":"configmaps","namespace":"default","name":"cfg","apiVersion":"v1"},"#,
                r#""responseStatus":{"metadata":{},"code":201},"#,
                r#""requestReceivedTimestamp":"2024-05-06T07:08:09.123456Z","stageTimestamp":"2024-05-06T07:08:09.500000Z","#,
                r#""annotations":{"authorization.k8s.io/decision":"allow"}}"#,
                "\n"
            )
        );
    }

    #[test]
    fn nobody_failures_and_bodies() {
        let mut e = event();
        e.user = None;
        e.object_ref = None;
        e.annotations.clear();
        e.impersonated_user = Some(UserInfo::new("bob", &[]));
        e.response_status = ResponseStatus::from_status_object(&serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "nope", "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403
        }));
        e.request_object = Some(serde_json::json!({"kind": "Pod"}));
        let v: Value = serde_json::from_slice(&Format::Json.line(&e)).unwrap();
        assert_eq!(v["user"], serde_json::json!({}));
        assert_eq!(
            v["impersonatedUser"],
            serde_json::json!({"username": "bob"})
        );
        assert_eq!(
            v["responseStatus"],
            serde_json::json!({"metadata": {}, "status": "Failure", "message": "nope",
                "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403})
        );
        assert_eq!(v["requestObject"], serde_json::json!({"kind": "Pod"}));
        assert!(v.get("objectRef").is_none() && v.get("annotations").is_none());
        assert!(v.get("responseObject").is_none());
        assert_eq!(
            ResponseStatus::from_status_object(&serde_json::json!({"kind": "Pod"})),
            None
        );
    }

    #[test]
    fn legacy_is_upstreams_line() {
        let line = String::from_utf8(Format::Legacy.line(&event())).unwrap();
        assert_eq!(
            line,
            "2024-05-06T07:08:09.123456789Z AUDIT: id=\"c0ffee\" stage=\"ResponseComplete\" \
             ip=\"10.0.0.1\" method=\"create\" user=\"alice\" \
             groups=\"\\\"devs\\\",\\\"system:authenticated\\\"\" as=\"<self>\" \
             asgroups=\"<lookup>\" user-agent=\"kubectl/v1.33.0\" namespace=\"default\" \
             uri=\"/api/v1/namespaces/default/configmaps?fieldManager=kubectl\" response=\"201\"\n"
        );
        assert_eq!("legacy".parse(), Ok(Format::Legacy));
        assert!(
            "yaml"
                .parse::<Format>()
                .unwrap_err()
                .contains("legacy,json")
        );
    }
}
