//! What the API server's integration tests share: the router over the real registry on
//! in-memory SQLite, and a request helper that collects the whole answer.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use rkube_apiserver::{Resolver, router};
use rkube_registry::Registry;
use rkube_storage::KvStore;
use rkube_storage_sqlite::SqliteBackend;
use serde_json::Value;
use tower::ServiceExt;

/// The API router over a fresh registry on in-memory SQLite, caches loaded.
pub async fn app() -> axum::Router {
    let backend = Arc::new(SqliteBackend::open_in_memory().expect("sqlite"));
    let registry = Arc::new(Registry::new(Arc::new(KvStore::new(backend))));
    registry.ready().await;
    let resolver: Resolver = Arc::new(move |r, sub| registry.rest(r, sub));
    router(resolver)
}

/// A whole answer.
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn warnings(&self) -> Vec<&str> {
        self.headers
            .get_all(header::WARNING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

/// Sends `request` through `app` and collects the answer.
pub async fn call(app: &axum::Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// GET `uri`, with an `Accept` header when given.
pub async fn get(app: &axum::Router, uri: &str, accept: Option<&str>) -> Reply {
    let mut r = Request::builder().method("GET").uri(uri);
    if let Some(a) = accept {
        r = r.header(header::ACCEPT, a);
    }
    call(app, r.body(Body::empty()).expect("request")).await
}
