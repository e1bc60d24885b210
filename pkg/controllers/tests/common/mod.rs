//! What the controller tests share: the real API (the router over the registry and an
//! in-memory SQLite store, DESIGN §6 level 3) and `kube::Client`s built on it as a tower
//! service.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use http::Request;
use kube::Client;
use rkube_apiserver::{Resolver, router};
use rkube_auth::UserInfo;
use rkube_registry::Registry;
use rkube_storage::KvStore;
use rkube_storage_sqlite::SqliteBackend;

/// The API router over a fresh in-memory store, its caches loaded.
pub async fn app() -> axum::Router {
    let backend = Arc::new(SqliteBackend::open_in_memory().expect("sqlite"));
    let registry = Arc::new(Registry::new(Arc::new(KvStore::new(backend))));
    registry.ready().await;
    let resolver: Resolver = Arc::new(move |r, sub| registry.rest(r, sub));
    router(resolver)
}

/// A client of `app`, whose requests come from `user` when given.
pub fn client_of(app: axum::Router, user: Option<UserInfo>) -> Client {
    let service = tower::ServiceBuilder::new()
        .map_request(move |r: Request<kube::client::Body>| {
            let mut r = r.map(axum::body::Body::new);
            if let Some(user) = &user {
                r.extensions_mut().insert(user.clone());
            }
            r
        })
        .service(app);
    Client::new(service, "default")
}

/// A client of a fresh API.
pub async fn client() -> Client {
    client_of(app().await, None)
}
