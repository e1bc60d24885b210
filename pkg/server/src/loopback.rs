//! The in-process API client (DESIGN §2): a [`kube::Client`] whose transport is the server's
//! own router, the one the HTTPS listener serves, gate included. No socket and no TLS, but the
//! same code path as any client: components built on it (the controller manager, later the
//! scheduler and the node agent) see exactly what kubectl sees.
//!
//! The caller's identity travels as a [`UserInfo`] request extension, which the gate
//! ([`crate::auth`]) trusts in place of a client certificate. Requests from the network cannot
//! forge it: hyper builds their extensions afresh, and a client controls only headers and body.

use axum::Router;
use http::Request;

use rkube_auth::user::{service_account_groups, service_account_user};

use crate::auth::{AUTHENTICATED_GROUP, UserInfo};

/// The namespace of the controllers' service accounts.
const CONTROLLERS_NAMESPACE: &str = "kube-system";

/// The identity the controller `name` runs as: kube-system's service account of that name,
/// bound by the bootstrap policy to `system:controller:<name>` (kube-controller-manager with
/// `--use-service-account-credentials`, as k3s runs it). Never `system:masters`.
pub fn controller(name: &str) -> UserInfo {
    let mut groups = service_account_groups(CONTROLLERS_NAMESPACE);
    groups.push(AUTHENTICATED_GROUP.to_owned());
    UserInfo {
        name: service_account_user(CONTROLLERS_NAMESPACE, name),
        groups,
        ..UserInfo::default()
    }
}

/// A client sending every request through `app` as `user`. Must be called within the Tokio
/// runtime (the client's request buffer runs as a task).
pub fn client(app: Router, user: UserInfo) -> kube::Client {
    let service = tower::ServiceBuilder::new()
        .map_request(move |request: Request<kube::client::Body>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(user.clone());
            request
        })
        .service(app);
    kube::Client::new(service, "default")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;
    use std::time::Duration;

    use futures::TryStreamExt as _;
    use kube::api::{Api, DeleteParams, PostParams};
    use kube::runtime::watcher;
    use rkube_api::k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use rkube_registry::Registry;
    use rkube_storage::KvStore;
    use rkube_storage_sqlite::SqliteBackend;
    use serde_json::json;

    use super::*;
    use crate::auth::{AuthLayer, Gate, MASTERS_GROUP};
    use crate::health::Health;
    use crate::{Config, Server, http};

    /// The server's router (gate included, over the bootstrap RBAC policy) over in-memory
    /// SQLite.
    async fn app() -> Router {
        let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
        let registry = Arc::new(Registry::new(Arc::new(KvStore::new(backend.clone()))));
        registry.ready().await;
        let authn = rkube_auth::authn::Union::new(vec![], true);
        let auth = AuthLayer::new(Gate::new(authn, crate::auth::tests::bootstrap_authorizer()));
        let resolver: rkube_apiserver::Resolver =
            Arc::new(move |resource, subresource| registry.rest(resource, subresource));
        http::router(
            Health::new(backend),
            auth,
            rkube_apiserver::router(resolver),
        )
    }

    #[tokio::test]
    async fn the_gate_takes_the_identity_the_loopback_client_carries() {
        let app = app().await;
        let admin = UserInfo::new("system:admin", &[MASTERS_GROUP, AUTHENTICATED_GROUP]);
        let manager: Api<Namespace> = Api::all(client(app.clone(), admin));
        let listed = manager.list(&Default::default()).await.unwrap();
        assert!(listed.items.is_empty());
        // A controller's identity has its role's powers and no more.
        let controller: Api<Namespace> =
            Api::all(client(app.clone(), controller("namespace-controller")));
        assert!(controller.list(&Default::default()).await.is_ok());
        let ns = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
        let Err(kube::Error::Api(status)) = controller.create(&PostParams::default(), &ns).await
        else {
            panic!("the namespace controller may not create namespaces");
        };
        assert_eq!(
            status.message,
            r#"namespaces is forbidden: User "system:serviceaccount:kube-system:namespace-controller" cannot create resource "namespaces" in API group "" at the cluster scope"#
        );

        // The same path with a powerless identity is refused by the gate, as over HTTPS.
        let anonymous: Api<Namespace> = Api::all(client(app, UserInfo::anonymous()));
        let Err(kube::Error::Api(status)) = anonymous.list(&Default::default()).await else {
            panic!("an anonymous list must be refused");
        };
        assert_eq!(status.code, 403);
        assert!(
            status.message.contains(r#"User "system:anonymous""#),
            "{}",
            status.message
        );
    }

    /// A client of a started server over HTTPS, with the admin kubeconfig it wrote.
    pub(crate) async fn https_client(kubeconfig: &std::path::Path) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }

    #[tokio::test]
    async fn the_server_runs_the_namespace_controller_until_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            https_listen_port: 0,
            write_kubeconfig: Some(dir.path().join("kubeconfig.yaml")),
            ..Config::new(dir.path().join("data"), "test-node")
        };
        let server = Server::start(config).await.unwrap();
        let client = https_client(&dir.path().join("kubeconfig.yaml")).await;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = serde_json::from_value(json!({"metadata": {"name": "gone"}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "gone");
        let cm = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
        configmaps
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();

        // Watch from before the delete, so the removal cannot be missed.
        let config = watcher::Config::default().fields("metadata.name=gone");
        let mut events = Box::pin(watcher(namespaces.clone(), config));
        while !matches!(
            events.try_next().await.unwrap(),
            Some(watcher::Event::InitDone)
        ) {}
        namespaces
            .delete("gone", &DeleteParams::default())
            .await
            .unwrap();
        let removed = async {
            while let Some(event) = events.try_next().await.unwrap() {
                if matches!(event, watcher::Event::Delete(_)) {
                    return;
                }
            }
        };
        // A guard against a hang, not a measure of speed.
        tokio::time::timeout(Duration::from_secs(120), removed)
            .await
            .expect("the namespace controller never removed the namespace");
        assert!(
            configmaps
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        drop(events);
        server.shutdown().await.unwrap();
    }
}
