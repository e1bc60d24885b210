//! `/healthz`, `/livez`, `/readyz`: kube-apiserver's health endpoints, byte for byte.
//!
//! Each endpoint runs a list of named checks. All passing: `200 ok` (or, with `?verbose`, one
//! `[+]name ok` line per check and `<endpoint> check passed`). Any failing: `500` with the
//! verbose listing, failures shown as `[-]name failed: reason withheld` (the endpoints are
//! public, so the reason goes to the log only) and `<endpoint> check failed`. `?exclude=name`
//! skips a check; `/<endpoint>/<name>` runs one check and does show its reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rkube_storage::KvBackend;

/// How long the datastore may take to answer before the `etcd` check fails (upstream's
/// etcd health check timeout is of this order, and a probe must not hang).
pub const DATASTORE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One named health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// The process answers HTTP at all.
    Ping,
    /// Logging works. Upstream's check guards klog's buffered flusher; tracing writes
    /// synchronously, so a request that reaches here has nothing left to wait on.
    Log,
    /// The datastore answers `current_revision` in time. Upstream's name, which k3s keeps
    /// for kine too and which tooling greps for.
    Etcd,
    /// The server is not shutting down (readyz only, so load balancers drain it first).
    Shutdown,
}

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::Ping => "ping",
            Check::Log => "log",
            Check::Etcd => "etcd",
            Check::Shutdown => "shutdown",
        }
    }
}

const HEALTHZ: &[Check] = &[Check::Ping, Check::Log, Check::Etcd];
const LIVEZ: &[Check] = &[Check::Ping, Check::Log, Check::Etcd];
const READYZ: &[Check] = &[Check::Ping, Check::Log, Check::Etcd, Check::Shutdown];

/// What the checks look at: the datastore and whether shutdown has begun.
#[derive(Clone)]
pub struct Health {
    backend: Arc<dyn KvBackend>,
    shutting_down: Arc<AtomicBool>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("shutting_down", &self.shutting_down.load(Ordering::Relaxed))
            .finish()
    }
}

impl Health {
    /// Checks over `backend`, not shutting down.
    pub fn new(backend: Arc<dyn KvBackend>) -> Self {
        Health {
            backend,
            shutting_down: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Makes `/readyz` fail from now on: the server is going away.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    async fn run(&self, check: Check) -> Result<(), String> {
        match check {
            Check::Ping | Check::Log => Ok(()),
            Check::Etcd => {
                match tokio::time::timeout(DATASTORE_CHECK_TIMEOUT, self.backend.current_revision())
                    .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("datastore error: {e}")),
                    Err(_) => Err(format!(
                        "datastore did not answer within {DATASTORE_CHECK_TIMEOUT:?}"
                    )),
                }
            }
            Check::Shutdown if self.shutting_down.load(Ordering::SeqCst) => {
                Err("process is shutting down".to_string())
            }
            Check::Shutdown => Ok(()),
        }
    }
}

/// The health routes, ready to merge into the server's router.
pub fn routes(health: Health) -> Router {
    let mut router = Router::new();
    for (name, checks) in [("healthz", HEALTHZ), ("livez", LIVEZ), ("readyz", READYZ)] {
        router = router
            .route(
                &format!("/{name}"),
                get(
                    move |State(h): State<Health>, RawQuery(q): RawQuery| async move {
                        root(&h, name, checks, q.as_deref()).await
                    },
                ),
            )
            .route(
                &format!("/{name}/{{check}}"),
                get(
                    move |State(h): State<Health>, Path(check): Path<String>| async move {
                        single(&h, checks, &check).await
                    },
                ),
            );
    }
    router.with_state(health)
}

/// One check's outcome in a root endpoint's listing.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Passed,
    Excluded,
    Failed,
}

/// `/<endpoint>`: every check, with `?verbose` and `?exclude=`.
async fn root(health: &Health, endpoint: &str, checks: &[Check], query: Option<&str>) -> Response {
    let query = Query::parse(query);
    let mut outcomes = Vec::with_capacity(checks.len());
    for &check in checks {
        let outcome = if query.excluded.iter().any(|e| e == check.name()) {
            Outcome::Excluded
        } else if let Err(reason) = health.run(check).await {
            tracing::warn!(endpoint, check = check.name(), %reason, "health check failed");
            Outcome::Failed
        } else {
            Outcome::Passed
        };
        outcomes.push((check.name(), outcome));
    }
    let (status, body) = render(endpoint, &outcomes, &query);
    text(status, body)
}

/// `/<endpoint>/<check>`: one check, its reason shown (upstream's `adaptCheckToHandler`).
async fn single(health: &Health, checks: &[Check], name: &str) -> Response {
    let Some(&check) = checks.iter().find(|c| c.name() == name) else {
        return crate::http::not_found();
    };
    match health.run(check).await {
        Ok(()) => text(StatusCode::OK, "ok".to_string()),
        Err(reason) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal server error: {reason}\n"),
        ),
    }
}

/// The parts of the query string the root endpoints read.
#[derive(Debug, Default)]
struct Query {
    verbose: bool,
    excluded: Vec<String>,
}

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        let mut query = Query::default();
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match &*key {
                "verbose" => query.verbose = true,
                "exclude" => query.excluded.push(value.into_owned()),
                _ => {}
            }
        }
        query
    }
}

/// Formats a root endpoint's answer exactly as upstream's `handleRootHealth` does.
fn render(endpoint: &str, outcomes: &[(&str, Outcome)], query: &Query) -> (StatusCode, String) {
    let mut listing = String::new();
    for (name, outcome) in outcomes {
        listing.push_str(&match outcome {
            Outcome::Passed => format!("[+]{name} ok\n"),
            Outcome::Excluded => format!("[+]{name} excluded: ok\n"),
            Outcome::Failed => format!("[-]{name} failed: reason withheld\n"),
        });
    }
    let mut unmatched: Vec<&str> = query
        .excluded
        .iter()
        .map(String::as_str)
        .filter(|e| !outcomes.iter().any(|(name, _)| name == e))
        .collect();
    unmatched.sort_unstable();
    unmatched.dedup();
    if !unmatched.is_empty() {
        let quoted: Vec<String> = unmatched.iter().map(|e| format!("{e:?}")).collect();
        listing.push_str(&format!(
            "warn: some health checks cannot be excluded: no matches for {}\n",
            quoted.join(",")
        ));
    }
    if outcomes.iter().any(|(_, o)| *o == Outcome::Failed) {
        // Always verbose on failure; Go's http.Error appends the newline.
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{listing}{endpoint} check failed\n"),
        );
    }
    if query.verbose {
        (
            StatusCode::OK,
            format!("{listing}{endpoint} check passed\n"),
        )
    } else {
        (StatusCode::OK, "ok".to_string())
    }
}

/// A plain-text response with the headers upstream sets on every health answer.
fn text(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str) -> Query {
        Query::parse(Some(raw))
    }

    #[test]
    fn passing_is_terse_unless_verbose() {
        let outcomes = [("ping", Outcome::Passed), ("etcd", Outcome::Passed)];
        assert_eq!(
            render("healthz", &outcomes, &query("")),
            (StatusCode::OK, "ok".to_string())
        );
        assert_eq!(
            render("readyz", &outcomes, &query("verbose")),
            (
                StatusCode::OK,
                "[+]ping ok\n[+]etcd ok\nreadyz check passed\n".to_string()
            )
        );
    }

    #[test]
    fn failing_is_always_verbose_and_withholds_the_reason() {
        let outcomes = [("ping", Outcome::Passed), ("etcd", Outcome::Failed)];
        assert_eq!(
            render("readyz", &outcomes, &query("")),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\n".to_string()
            )
        );
    }

    #[test]
    fn exclusions_are_listed_and_unknown_ones_warned_about() {
        let q = query("verbose&exclude=etcd&exclude=nope");
        assert_eq!(q.excluded, ["etcd", "nope"]);
        let outcomes = [("ping", Outcome::Passed), ("etcd", Outcome::Excluded)];
        assert_eq!(
            render("livez", &outcomes, &q).1,
            "[+]ping ok\n[+]etcd excluded: ok\n\
             warn: some health checks cannot be excluded: no matches for \"nope\"\n\
             livez check passed\n"
        );
    }

    #[tokio::test]
    async fn etcd_check_follows_the_datastore_and_shutdown_fails_readyz() {
        let backend: Arc<dyn KvBackend> =
            Arc::new(rkube_storage_sqlite::SqliteBackend::open_in_memory().unwrap());
        let health = Health::new(backend);
        let ok = root(&health, "readyz", READYZ, Some("verbose")).await;
        assert_eq!(ok.status(), StatusCode::OK);
        health.begin_shutdown();
        let failing = root(&health, "readyz", READYZ, None).await;
        assert_eq!(failing.status(), StatusCode::INTERNAL_SERVER_ERROR);
        // livez does not run the shutdown check: the process is still alive.
        assert_eq!(
            root(&health, "livez", LIVEZ, None).await.status(),
            StatusCode::OK
        );
        let one = single(&health, READYZ, "shutdown").await;
        assert_eq!(one.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            single(&health, LIVEZ, "shutdown").await.status(),
            StatusCode::NOT_FOUND
        );
    }
}
