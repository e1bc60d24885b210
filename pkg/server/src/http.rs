//! The HTTP side: the router (health, version, upstream's 404) behind the authentication and
//! authorization gate, and the HTTPS listener that serves it.
//!
//! [`router`] is the one place routers are merged; the Kubernetes API router joins there. The
//! gate ([`crate::auth::AuthLayer`]) wraps the merged router, so every route, and the 404
//! fallback, is behind it; when auditing, the server wraps the audit layer
//! ([`crate::audit::AuditLayer`]) around the gate.
//!
//! [`serve`] accepts TCP connections, runs the TLS handshake on each connection's own task
//! (a slow client cannot hold up the accept loop), records the client's certificates
//! ([`PeerCertificates`]), its address when auditing ([`ConnectInfo`]) and each request's parsed
//! [`RequestInfo`] (watches are ended rather than awaited at shutdown) on every request of the
//! connection, answers every request's `Audit-ID` (the client's, else a new UUID; audited or
//! not, as kube-apiserver), answers 500 for a request whose handler panicked, and serves HTTP/1.1 or
//! HTTP/2, whichever ALPN chose, with hyper-util's auto builder.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::routing::get;
use futures::FutureExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rkube_api::status::{ApiError, Reason, StatusDetails};
use rkube_apiserver::request_info::RequestInfo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::auth::{AuthLayer, PeerCertificates, status_response};
use crate::health::{self, Health};
use crate::version;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for requests in flight (upstream's default request timeout); open
/// watches do not count: they end when shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The server's routes, behind the gate: health and version here, everything else to `api`
/// (the Kubernetes API, which answers upstream's 404 for what it does not serve).
pub fn router(health: Health, auth: AuthLayer, api: Router) -> Router {
    Router::new()
        .route("/version", get(version::handler))
        .merge(health::routes(health))
        .fallback_service(api)
        .layer(auth)
}

/// Upstream's answer to a path nothing serves: a `Status` with reason `NotFound` and empty
/// details.
pub(crate) fn not_found() -> Response {
    status_response(&ApiError::new(
        404,
        Reason::NotFound,
        "the server could not find the requested resource",
        Some(StatusDetails::default()),
    ))
}

/// Binds the API listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// The API listener could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("binding the API listener on {addr}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The operating system's refusal (address in use, permission denied, ...).
    #[source]
    pub source: std::io::Error,
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, then stops accepting, ends
/// every open watch (as kube-apiserver does by default; clients re-list and watch again when
/// the server is back) and waits up to [`DRAIN_TIMEOUT`] for the other requests to finish.
/// With `peer_addresses` (auditing, which logs them), each request carries its client's address
/// as a [`ConnectInfo`]; otherwise requests are spared the extension.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    peer_addresses: bool,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let (begin_closing, closing) = tokio::sync::watch::channel(false);
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                // Per-connection failures (the peer reset before accept, too many open files
                // for a moment) must not stop the server.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let closing = closing.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let certs: Vec<_> = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default();
            // No extension means no certificates to the authenticators; audit reads its
            // presence as "x509 was attempted".
            let peer = (!certs.is_empty()).then(|| PeerCertificates::new(certs.into()));
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    if let Some(peer) = &peer {
                        request.extensions_mut().insert(peer.clone());
                    }
                    if peer_addresses {
                        request.extensions_mut().insert(ConnectInfo(remote));
                    }
                    // Parsed once; the gate and the router take it from the extensions.
                    let uri = request.uri();
                    let info = RequestInfo::parse(request.method(), uri.path(), uri.query());
                    let watch = info.as_ref().is_ok_and(|info| info.verb == "watch");
                    if let Ok(info) = info {
                        request.extensions_mut().insert(info);
                    }
                    // Every response names its audit ID, audited or not, as upstream's.
                    let audit_id = crate::audit::event::ensure_audit_id(request.headers_mut());
                    let closing = closing.clone();
                    let response = catching_panics(app.clone(), request);
                    async move {
                        let mut response = response.await;
                        response
                            .headers_mut()
                            .entry(crate::audit::event::AUDIT_ID_HEADER)
                            .or_insert(audit_id);
                        Ok::<_, std::convert::Infallible>(if watch {
                            response.map(|body| end_on_close(body, closing))
                        } else {
                            response
                        })
                    }
                },
            );
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = begin_closing.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running {DRAIN_TIMEOUT:?} after shutdown began: closing");
    }
    Ok(())
}

/// The outermost filter (DESIGN §3's panic catcher): `app`'s answer to `request`, or 500 if
/// handling it panicked, as upstream's `WithPanicRecovery`, instead of taking the connection
/// down with it. The panic hook has already printed where; the audit log (when on) has the
/// request's `Panic` event.
async fn catching_panics<B>(app: Router, request: http::Request<B>) -> Response
where
    B: hyper::body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    match AssertUnwindSafe(tower::ServiceExt::oneshot(app, request))
        .catch_unwind()
        .await
    {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => {
            tracing::error!("a request caused the API server to panic");
            panicked()
        }
    }
}

fn panicked() -> Response {
    let mut response = Response::new(axum::body::Body::from(
        "This request caused apiserver to panic. Look in the logs for details.\n",
    ));
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A response body that ends cleanly once `closing` turns true.
fn end_on_close(
    body: axum::body::Body,
    mut closing: tokio::sync::watch::Receiver<bool>,
) -> axum::body::Body {
    use futures::StreamExt as _;
    let closed = async move {
        let _ = closing.wait_for(|closing| *closing).await;
    };
    axum::body::Body::from_stream(body.into_data_stream().take_until(closed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_next_request_is_served() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .route("/ok", get(|| async { "fine" }));
        let get = |path: &str| {
            http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let response = catching_panics(app.clone(), get("/boom")).await;
        assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(
            &body[..],
            b"This request caused apiserver to panic. Look in the logs for details.\n"
        );
        let response = catching_panics(app, get("/ok")).await;
        assert_eq!(response.status(), http::StatusCode::OK);
    }
}
