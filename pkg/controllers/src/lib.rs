//! # Layout
//! The controller manager: one module per controller, each speaking only the Kubernetes API
//! through a [`kube::Client`] (kube-runtime's watcher and controller), exactly as a separate
//! process would. In `rkube server` that client is the API server's own router with a
//! privileged loopback identity (`rkube_server::loopback`); in tests, any router or cluster.
//!
//! - [`ControllerManager`]: runs every controller until shutdown.
//! - [`namespace`]: empties a namespace being deleted (every namespaced resource discovery lists
//!   as deletable), keeps its deletion conditions, then releases its `kubernetes` finalizer.
//! - [`certificates`]: signs approved CertificateSigningRequests of the Kubernetes signers
//!   with the cluster's CAs; [`certificates::approver`] approves kubelet client requests whose
//!   requester RBAC allows to have them.
//! - [`clusterrole_aggregation`]: fills the rules of ClusterRoles with an `aggregationRule`
//!   (`admin`, `edit`, `view`) from the ClusterRoles their selectors select.
//! - [`serviceaccounts`]: gives every active namespace its `default` ServiceAccount.
//! - [`root_ca`]: gives every active namespace the `kube-root-ca.crt` ConfigMap (the CA that
//!   verifies the API server), kept as published.
//! - [`backoff`]: the per-object exponential backoff of failed passes.
//! - [`per_namespace`]: the loop those two share (namespace events and events of the one
//!   object they keep queue a pass for its namespace).
//!
//! Each controller runs with its own client (its own identity: upstream's per-controller
//! service accounts), named by the `*_CONTROLLER` constants.
//!
//! Data flow: watch events -> kube-runtime's reconcile queue (one pass per object at a time,
//! requeued after a delay or with backoff) -> API requests -> the API server.

pub mod backoff;
pub mod certificates;
pub mod clusterrole_aggregation;
pub mod namespace;
pub mod per_namespace;
pub mod root_ca;
pub mod serviceaccounts;

use std::future::Future;

use futures::FutureExt as _;
use kube::Client;

/// The namespace controller's name (and service account).
pub const NAMESPACE_CONTROLLER: &str = "namespace-controller";
/// The ClusterRole aggregation controller's name (and service account).
pub const AGGREGATION_CONTROLLER: &str = "clusterrole-aggregation-controller";
/// The CSR signing and approving controllers' service account (upstream's, for its
/// `csrsigning` and `csrapproving` controllers).
pub const CSR_SIGNING_CONTROLLER: &str = "certificate-controller";
/// The service account controller's name (and service account).
pub const SERVICE_ACCOUNT_CONTROLLER: &str = "service-account-controller";
/// The root CA publisher's name (and service account).
pub const ROOT_CA_PUBLISHER: &str = "root-ca-cert-publisher";

/// The controllers, and how each is configured.
#[derive(Debug, Clone, Default)]
pub struct ControllerManager {
    /// The namespace controller's configuration.
    pub namespace: namespace::Config,
    /// The CSR signing controller's CAs and limits.
    pub certificates: certificates::Config,
    /// The CA bundle (PEM) the root CA publisher puts in every namespace; without one the
    /// publisher does not run.
    pub root_ca: Option<String>,
}

impl ControllerManager {
    /// Runs every controller, each over the client `client_for` gives for its name, until
    /// `shutdown` completes; passes in progress finish first.
    pub async fn run(
        self,
        client_for: impl Fn(&str) -> Client,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        // Each controller gets its own handle on the one shutdown signal.
        let shutdown = shutdown.shared();
        tracing::info!(
            "starting the controller manager: namespace, clusterrole aggregation, service \
             account, root CA publisher, certificate signing and approving controllers"
        );
        let root_ca_client = client_for(ROOT_CA_PUBLISHER);
        let root_ca_shutdown = shutdown.clone();
        let root_ca = async move {
            if let Some(ca) = self.root_ca {
                root_ca::run(root_ca_client, ca, root_ca_shutdown).await;
            }
        };
        futures::join!(
            namespace::run(
                client_for(NAMESPACE_CONTROLLER),
                self.namespace,
                shutdown.clone()
            ),
            clusterrole_aggregation::run(client_for(AGGREGATION_CONTROLLER), shutdown.clone()),
            serviceaccounts::run(client_for(SERVICE_ACCOUNT_CONTROLLER), shutdown.clone()),
            root_ca,
            certificates::run(
                client_for(CSR_SIGNING_CONTROLLER),
                self.certificates,
                shutdown.clone()
            ),
            certificates::approver::run(client_for(CSR_SIGNING_CONTROLLER), shutdown),
        );
        tracing::info!("controller manager stopped");
    }
}
