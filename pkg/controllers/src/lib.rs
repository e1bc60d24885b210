//! # Layout
//! The controller manager: one module per controller, each speaking only the Kubernetes API
//! through a [`kube::Client`] (kube-runtime's watcher and controller), exactly as a separate
//! process would. In `rkube server` that client is the API server's own router with a
//! privileged loopback identity (`rkube_server::loopback`); in tests, any router or cluster.
//!
//! - [`ControllerManager`]: runs every controller until shutdown.
//! - [`namespace`]: empties a namespace being deleted (every namespaced resource discovery lists
//!   as deletable), keeps its deletion conditions, then releases its `kubernetes` finalizer.
//!
//! Data flow: watch events -> kube-runtime's reconcile queue (one pass per object at a time,
//! requeued after a delay or with backoff) -> API requests -> the API server.

pub mod namespace;

use std::future::Future;

use futures::FutureExt as _;
use kube::Client;

/// The controllers, and how each is configured.
#[derive(Debug, Clone, Default)]
pub struct ControllerManager {
    /// The namespace controller's configuration.
    pub namespace: namespace::Config,
}

impl ControllerManager {
    /// Runs every controller over `client` until `shutdown` completes; passes in progress
    /// finish first.
    pub async fn run(self, client: Client, shutdown: impl Future<Output = ()> + Send + 'static) {
        // Each controller gets its own handle on the one shutdown signal.
        let shutdown = shutdown.shared();
        tracing::info!("starting the controller manager: namespace controller");
        namespace::run(client, self.namespace, shutdown).await;
        tracing::info!("controller manager stopped");
    }
}
