//! The HTTP side: the router (health, version, upstream's 404), binding and serving.
//!
//! Plain HTTP for now. HTTPS with a generated cluster CA and client-certificate auth comes with
//! the Kubernetes API itself; until then the listener serves only unauthenticated, read-only
//! endpoints that kube-apiserver also serves to anonymous clients.

use std::net::SocketAddr;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::health::{self, Health};
use crate::version;

/// The server's routes.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/version", get(version::handler))
        .merge(health::routes(health))
        .fallback(|| async { not_found() })
}

/// Upstream's answer to a path nothing serves: a `Status` object with reason `NotFound`, its
/// fields in upstream's order.
pub(crate) fn not_found() -> Response {
    let status = NotFoundStatus {
        kind: "Status",
        api_version: "v1",
        metadata: serde_json::Map::new(),
        status: "Failure",
        message: "the server could not find the requested resource",
        reason: "NotFound",
        details: serde_json::Map::new(),
        code: 404,
    };
    (StatusCode::NOT_FOUND, axum::Json(status)).into_response()
}

/// `metav1.Status` as kube-apiserver serializes it for an unmatched path. The API's `Status`
/// builders (pkg/api) replace this once the Kubernetes API exists.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct NotFoundStatus {
    kind: &'static str,
    api_version: &'static str,
    metadata: serde_json::Map<String, serde_json::Value>,
    status: &'static str,
    message: &'static str,
    reason: &'static str,
    details: serde_json::Map<String, serde_json::Value>,
    code: u16,
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
