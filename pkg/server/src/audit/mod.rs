//! Audit logging, as kube-apiserver's (`k8s.io/apiserver/pkg/audit`, the audit filters, the log
//! backend).
//!
//! - [`policy`]: the `audit.k8s.io/v1` Policy of `--audit-policy-file`, validated, and the
//!   level, omitted stages and `omitManagedFields` it gives each request.
//! - [`event`]: the `audit.k8s.io/v1` Event and the `json` and `legacy` line formats.
//! - [`log`]: the file (or stdout) backend: a bounded channel to one writer thread, rotation
//!   by size with lumberjack's names and limits.
//! - [`layer`]: the tower layer around the gate and the per-request record the gate reports
//!   to (user, impersonated user; its decision goes to the request's audit annotations).
//!
//! Data flow: request -> [`AuditLayer`] (record started, audit ID chosen) -> gate: user known
//! -> policy evaluated -> `RequestReceived` line -> handler -> response (`Audit-ID` header,
//! `ResponseStarted` for long-running requests) -> body ends -> `ResponseComplete` line ->
//! channel -> writer thread -> file. As upstream, nothing is audited without both a policy
//! and a log path, and then the layer is not installed at all: a request pays nothing.

pub mod event;
pub mod layer;
pub mod log;
pub mod policy;

use std::path::PathBuf;
use std::sync::Arc;

pub use event::Format;
pub use layer::{AuditLayer, RequestAudit};
pub use policy::Policy;

/// The audit flags, with upstream's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// `--audit-policy-file`: the `audit.k8s.io/v1` Policy.
    pub policy_file: Option<PathBuf>,
    /// `--audit-log-path`: the log file, `-` for standard output.
    pub log_path: Option<PathBuf>,
    /// `--audit-log-maxage`: days rotated files are kept (0: no limit).
    pub log_max_age: u32,
    /// `--audit-log-maxbackup`: rotated files kept (0: no limit).
    pub log_max_backup: u32,
    /// `--audit-log-maxsize`: MiB before the file is rotated (0: never).
    pub log_max_size: u32,
    /// `--audit-log-format`.
    pub log_format: Format,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            policy_file: None,
            log_path: None,
            log_max_age: 366,
            log_max_backup: 100,
            log_max_size: 100,
            log_format: Format::Json,
        }
    }
}

/// Auditing cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The policy file cannot be read.
    #[error("reading audit policy file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The policy file is not a valid policy.
    #[error("loading audit policy file {path}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: policy::PolicyError,
    },
    /// The log cannot be opened.
    #[error(transparent)]
    Log(#[from] log::LogError),
}

/// What every request's record shares.
#[derive(Debug)]
struct Backend {
    policy: Policy,
    sink: log::LogSink,
    format: Format,
}

/// Auditing, started: the policy and the open log.
#[derive(Debug)]
pub struct Auditor {
    backend: Arc<Backend>,
}

impl Auditor {
    /// Loads the policy (a bad one is an error even without a log path, as upstream) and opens
    /// the log. `None` when there is nothing to audit to: no policy or no log path.
    pub fn start(options: &AuditOptions) -> Result<Option<Auditor>, AuditError> {
        let policy = match &options.policy_file {
            Some(path) => Some(load_policy(path)?),
            None => None,
        };
        let (policy, path) = match (policy, &options.log_path) {
            (Some(policy), Some(path)) => (policy, path),
            (Some(_), None) => {
                tracing::info!("no --audit-log-path: audit events are not recorded");
                return Ok(None);
            }
            (None, Some(_)) => {
                tracing::info!("no --audit-policy-file: audit events are not recorded");
                return Ok(None);
            }
            (None, None) => return Ok(None),
        };
        let destination = if path.as_os_str() == "-" {
            log::Destination::Stdout
        } else {
            log::Destination::File(log::Rotation {
                path: path.clone(),
                max_size: u64::from(options.log_max_size) * 1024 * 1024,
                max_age_days: options.log_max_age,
                max_backups: options.log_max_backup as usize,
            })
        };
        let sink = log::LogSink::open(destination)?;
        tracing::info!(path = %path.display(), "writing the audit log");
        Ok(Some(Auditor {
            backend: Arc::new(Backend {
                policy,
                sink,
                format: options.log_format,
            }),
        }))
    }

    /// The layer to put around the gate.
    pub fn layer(&self) -> AuditLayer {
        AuditLayer::new(self.backend.clone())
    }

    /// Writes out every event recorded so far and closes the log; call once requests have
    /// drained.
    pub async fn close(self) {
        let backend = self.backend;
        if let Err(e) = tokio::task::spawn_blocking(move || backend.sink.close()).await {
            tracing::error!(error = %e, "closing the audit log");
        }
    }
}

fn load_policy(path: &std::path::Path) -> Result<Policy, AuditError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuditError::Read {
        path: path.to_owned(),
        source,
    })?;
    Policy::parse(&text).map_err(|source| AuditError::Policy {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::panic::AssertUnwindSafe;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use futures::FutureExt as _;
    use rkube_api::user::UserInfo;
    use rkube_registry::Registry;
    use rkube_storage::KvStore;
    use rkube_storage_sqlite::SqliteBackend;
    use serde_json::{Value, json};
    use tower::ServiceExt as _;

    use super::*;
    use crate::auth::{AuthLayer, Gate, MASTERS_GROUP};
    use crate::health::Health;

    const POLICY: &str = "\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  resources: [{group: '', resources: [secrets]}]
- level: RequestResponse
  verbs: [create]
- level: Metadata
";

    /// The server's router over in-memory SQLite, with a panicking `/boom` route, audited
    /// with `POLICY` into `dir/audit.log`. Anonymous access is off: callers identify
    /// themselves with a `UserInfo` extension, as loopback clients do.
    async fn app(dir: &std::path::Path) -> (Router, Auditor) {
        let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
        let registry = Arc::new(Registry::new(Arc::new(KvStore::new(backend.clone()))));
        registry.ready().await;
        let authn = rkube_auth::authn::Union::new(vec![], false);
        let auth = AuthLayer::new(Gate::new(authn, crate::auth::tests::bootstrap_authorizer()));
        let resolver: rkube_apiserver::Resolver =
            Arc::new(move |resource, subresource| registry.rest(resource, subresource));
        async fn boom() -> &'static str {
            panic!("boom")
        }
        // What admission plugins do: annotate the request's event.
        async fn annotate(
            axum::Extension(annotations): axum::Extension<rkube_api::audit::AuditAnnotations>,
        ) -> &'static str {
            annotations.add("example.com/seen", "yes");
            "ok"
        }
        let api = rkube_apiserver::router(resolver)
            .route("/boom", axum::routing::get(boom))
            .route("/annotate", axum::routing::get(annotate));
        let policy = dir.join("policy.yaml");
        std::fs::write(&policy, POLICY).unwrap();
        let auditor = Auditor::start(&AuditOptions {
            policy_file: Some(policy),
            log_path: Some(dir.join("audit.log")),
            ..AuditOptions::default()
        })
        .unwrap()
        .unwrap();
        let app = crate::http::router(Health::new(backend), auth, api).layer(auditor.layer());
        (app, auditor)
    }

    fn admin() -> UserInfo {
        UserInfo::new("system:admin", &[MASTERS_GROUP, "system:authenticated"])
    }

    /// Sends a request and reads the whole answer; returns status, `Audit-ID` and body.
    async fn send(
        app: &Router,
        user: Option<UserInfo>,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, String, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let mut request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        if let Some(user) = user {
            request.extensions_mut().insert(user);
        }
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let id = response.headers()[event::AUDIT_ID_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            id,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn events(dir: &std::path::Path) -> Vec<Value> {
        std::fs::read_to_string(dir.join("audit.log"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    fn of<'a>(events: &'a [Value], id: &str) -> Vec<&'a Value> {
        events.iter().filter(|e| e["auditID"] == id).collect()
    }

    fn stages(events: &[&Value]) -> Vec<String> {
        events
            .iter()
            .map(|e| e["stage"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn requests_are_logged_at_their_policy_level() {
        let dir = tempfile::tempdir().unwrap();
        let (app, auditor) = app(dir.path()).await;
        let configmaps = "/api/v1/namespaces/default/configmaps";
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg"}, "data": {"k": "v"}});
        let (status, created, answer) =
            send(&app, Some(admin()), "POST", configmaps, Some(cm.clone())).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, got, _) = send(
            &app,
            Some(admin()),
            "GET",
            &format!("{configmaps}/cfg"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let bob = UserInfo::new("bob", &["system:authenticated"]);
        let (status, forbidden, _) = send(&app, Some(bob), "GET", configmaps, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
        let (status, secret_id, _) = send(
            &app,
            Some(admin()),
            "POST",
            "/api/v1/namespaces/default/secrets",
            Some(secret),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, unauthenticated, _) = send(&app, None, "GET", configmaps, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (_, annotated, _) = send(&app, Some(admin()), "GET", "/annotate", None).await;
        let mut request = Request::get(format!("{configmaps}/cfg"))
            .header("impersonate-user", "carol")
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(admin());
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let impersonating = response.headers()["audit-id"].to_str().unwrap().to_owned();
        drop(response);
        // A client's own audit ID is used and answered.
        let mut request = Request::get("/version")
            .header("audit-id", "my-own-id")
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(admin());
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.headers()["audit-id"], "my-own-id");
        drop(response);
        auditor.close().await;

        let events = events(dir.path());
        let create = of(&events, &created);
        assert_eq!(stages(&create), ["RequestReceived", "ResponseComplete"]);
        let (received, complete) = (create[0], create[1]);
        assert_eq!(received["level"], "RequestResponse");
        assert_eq!(received["verb"], "create");
        assert_eq!(received["user"]["username"], "system:admin");
        assert_eq!(received["requestURI"], configmaps);
        assert!(received.get("requestObject").is_none());
        assert_eq!(
            received["stageTimestamp"],
            received["requestReceivedTimestamp"]
        );
        assert_eq!(complete["requestObject"], cm);
        assert_eq!(complete["responseObject"], answer);
        assert_eq!(
            complete["objectRef"],
            json!({"resource": "configmaps", "namespace": "default", "name": "cfg", "apiVersion": "v1"})
        );
        assert_eq!(
            complete["responseStatus"],
            json!({"metadata": {}, "code": 201})
        );
        assert_eq!(
            complete["annotations"],
            json!({"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""})
        );

        let get = of(&events, &got);
        assert_eq!(stages(&get), ["RequestReceived", "ResponseComplete"]);
        assert_eq!(get[1]["level"], "Metadata");
        assert!(get[1].get("requestObject").is_none() && get[1].get("responseObject").is_none());
        assert_eq!(get[1]["objectRef"]["name"], "cfg");

        let refused = of(&events, &forbidden);
        assert_eq!(refused[1]["user"]["username"], "bob");
        assert_eq!(refused[1]["verb"], "list");
        assert_eq!(
            refused[1]["annotations"]["authorization.k8s.io/decision"],
            "forbid"
        );
        let status = &refused[1]["responseStatus"];
        assert_eq!(
            (&status["status"], &status["reason"], &status["code"]),
            (&json!("Failure"), &json!("Forbidden"), &json!(403))
        );
        assert!(
            status["message"]
                .as_str()
                .unwrap()
                .contains(r#"User "bob" cannot list resource "configmaps""#)
        );

        assert!(of(&events, &secret_id).is_empty(), "secrets are level None");

        // A failed authentication: one event, without a user, as upstream.
        let failed = of(&events, &unauthenticated);
        assert_eq!(stages(&failed), ["ResponseStarted"]);
        assert_eq!(failed[0]["user"], json!({}));
        assert_eq!(
            failed[0]["responseStatus"],
            json!({"metadata": {}, "status": "Failure", "message": "Unauthorized",
                "reason": "Unauthorized", "code": 401})
        );
        assert_eq!(
            stages(&of(&events, "my-own-id")),
            ["RequestReceived", "ResponseComplete"]
        );

        let annotated = of(&events, &annotated);
        assert_eq!(annotated[1]["annotations"]["example.com/seen"], "yes");
        // Added after authorization: not in the first stage.
        assert!(annotated[0].get("annotations").is_none());

        let impersonating = of(&events, &impersonating);
        assert_eq!(impersonating[1]["user"]["username"], "system:admin");
        assert_eq!(
            impersonating[1]["impersonatedUser"],
            json!({"username": "carol", "groups": ["system:authenticated"]})
        );
        assert_eq!(
            impersonating[1]["annotations"]["authorization.k8s.io/decision"],
            "forbid"
        );
    }

    #[tokio::test]
    async fn watches_log_started_then_complete_and_panics_log_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (app, auditor) = app(dir.path()).await;
        let mut request = Request::get("/api/v1/namespaces/default/configmaps?watch=true")
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(admin());
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let id = response.headers()["audit-id"].to_str().unwrap().to_owned();
        // The client goes away: the stream ends.
        drop(response);

        let mut request = Request::get("/boom").body(Body::empty()).unwrap();
        request.extensions_mut().insert(admin());
        let outcome = AssertUnwindSafe(app.clone().oneshot(request))
            .catch_unwind()
            .await;
        assert!(outcome.is_err(), "the panic goes on to the outer catcher");
        auditor.close().await;

        let events = events(dir.path());
        let watch = of(&events, &id);
        assert_eq!(
            stages(&watch),
            ["RequestReceived", "ResponseStarted", "ResponseComplete"]
        );
        assert_eq!(watch[1]["verb"], "watch");
        assert_eq!(
            watch[1]["responseStatus"],
            json!({"metadata": {}, "code": 200})
        );
        assert!(watch[2].get("responseObject").is_none());
        let boom: Vec<&Value> = events
            .iter()
            .filter(|e| e["requestURI"] == "/boom")
            .collect();
        assert_eq!(stages(&boom), ["RequestReceived", "Panic"]);
        assert_eq!(
            boom[1]["responseStatus"],
            json!({"metadata": {}, "status": "Failure", "message": "APIServer panic'd: boom",
                "reason": "InternalError", "code": 500})
        );
    }
}
