//! # Layout
//! The composition root: everything `rkube server` runs, wired together and started in order.
//!
//! - [`config`]: [`Config`] (what the flags mean), datastore URL parsing, Go-style durations.
//! - [`datastore`]: the configured datastore opened as a `KvBackend` (SQLite or etcd), and
//!   closed again at shutdown.
//! - [`health`]: `/healthz`, `/livez`, `/readyz` as kube-apiserver serves them.
//! - [`version`]: `/version` and [`version::KUBERNETES_VERSION`], the version rkube claims.
//! - [`tls`]: the cluster CAs, serving and admin certificates under `<data-dir>/server/tls/`,
//!   and the listener's rustls configuration; [`x509`] reads what it needs from certificates.
//! - [`admission`]: the admission chain's view of the cluster (over the registry) and the
//!   layer that hands every API request the chain and its caller.
//! - [`auth`]: the gate in front of the router (authentication, impersonation, authorization
//!   over `rkube-auth`), the registry lookups the token authenticators use, and the service
//!   account issuer's discovery routes; [`rbac`]: the bootstrap RBAC policy reconciled at
//!   start and the in-memory RBAC index fed from the registry's watches; [`escalation`]:
//!   RBAC writes may not grant what their author does not hold; [`node_graph`]: the Node
//!   authorizer's graph, fed the same way ([`feed`]: list, then watch, into an index).
//! - [`http`]: the router (with upstream's 404 `Status`) and the HTTPS listener (HTTP/1.1 and
//!   HTTP/2).
//! - [`audit`]: audit logging (`--audit-policy-file`, `--audit-log-*`): the policy, the layer
//!   around the gate, the log file and its rotation.
//! - [`kubeconfig`]: the admin kubeconfig written by `--write-kubeconfig`; [`files`] writes
//!   it and the certificates atomically.
//! - [`loopback`]: the in-process `kube::Client` over the router (no socket, no TLS) with a
//!   trusted identity, on which the controller manager (`rkube-controllers`) runs.
//!
//! Start order, each step behind the one before it and never behind a sleep:
//! service account signing key loaded or created -> datastore opened -> [`KvStore`] and the
//! compactor -> certificates loaded or created ->
//! listener bound (its real address logged) -> system namespaces, bootstrap RBAC policy ->
//! RBAC index and Node graph loaded -> kubeconfig written -> requests served (ready) -> controller manager
//! started. A client holding the kubeconfig can therefore always
//! connect. Shutdown runs it backwards: `/readyz` fails, the controllers stop (they are API
//! clients), the listener stops accepting and in-flight requests finish, their audit events
//! are written out, the compactor stops,
//! and the datastore is closed so nothing acknowledged is lost.

pub mod admission;
pub mod audit;
pub mod auth;
pub mod config;
pub mod datastore;
pub mod escalation;
pub mod feed;
pub mod files;
pub mod health;
pub mod http;
pub mod kubeconfig;
pub mod loopback;
pub mod node_graph;
pub mod rbac;
pub mod tls;
pub mod version;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use rkube_registry::{BootstrapConfig, Registry, ensure_defaults};
use rkube_storage::KvStore;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use config::{Config, ConfigError, DatastoreEndpoint, DatastoreTls};
pub use datastore::{Datastore, DatastoreError};
pub use rkube_api::x509;

/// Runs the server until `shutdown` completes, then stops it gracefully.
///
/// Returns an error if the server cannot start, if it stops serving on its own, or if the
/// datastore cannot be closed cleanly.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    Server::start(config).await?.run_until(shutdown).await
}

/// A started server: serving, with its datastore open.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    datastore: Datastore,
    store: KvStore,
    health: health::Health,
    stop_http: oneshot::Sender<()>,
    http: JoinHandle<std::io::Result<()>>,
    stop_compactor: watch::Sender<bool>,
    compactor: Option<JoinHandle<()>>,
    // The controller manager, an API client over `loopback`.
    stop_controllers: oneshot::Sender<()>,
    controllers: JoinHandle<()>,
    // Keep the RBAC index and the Node graph current; stop (abort) when dropped.
    rbac_feed: rbac::Feed,
    node_feed: feed::Feed,
    // Closed once requests have drained, so their last events are written.
    auditor: Option<audit::Auditor>,
}

impl Server {
    /// Starts every component in order and returns once requests are being served.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        tracing::info!(
            node_name = %config.node_name,
            data_dir = %config.data_dir.display(),
            "starting rkube server, Kubernetes {}",
            version::KUBERNETES_VERSION
        );
        if !config.disable_agent {
            // The node agent is a later milestone: accept k3s's default and say what runs.
            tracing::info!("the node agent is not built yet: running the control plane only");
        }
        // A bad admission configuration stops the start before anything is opened.
        let admission_config = match &config.admission_control_config_file {
            Some(path) => rkube_admission::config::AdmissionConfiguration::load(path)?,
            None => rkube_admission::config::AdmissionConfiguration::default(),
        };
        // A bad audit policy stops the start too; the log is open before the first request.
        let auditor = audit::Auditor::start(&config.audit)?;
        datastore::create_private_dir(&config.data_dir.join("server"))?;
        // Service account tokens are signed with a key kept across restarts, so tokens issued
        // before one still verify after it.
        let data_dir = config.data_dir.clone();
        let service_key =
            tokio::task::spawn_blocking(move || tls::ServiceAccountKey::load_or_create(&data_dir))
                .await
                .context("loading the service account signing key")??;
        let endpoint = config.datastore();
        let datastore = Datastore::open(&endpoint, &config.datastore_tls).await?;
        tracing::info!(datastore = ?endpoint, "datastore open");
        let backend = datastore.backend();
        let store = KvStore::new(backend.clone());
        let service_key = Arc::new(service_key);
        // One registry (and one watch cache per resource) over the store: what the API serves.
        let registry = Arc::new(Registry::with_token_signer(
            Arc::new(store.clone()),
            service_key.clone(),
        ));
        let rbac_index = Arc::new(rbac::RbacIndex::new());
        let node_graph = Arc::new(node_graph::NodeGraph::new());
        // `--authorization-mode=Node,RBAC`, as k3s runs it.
        let authorizer: Arc<dyn rkube_auth::authz::Authorizer> =
            Arc::new(rkube_auth::authz::Union::new(vec![
                Arc::new(rkube_auth::authz::PrivilegedGroups(vec![
                    auth::MASTERS_GROUP.to_owned(),
                ])),
                Arc::new(rkube_auth::authz::NodeAuthorizer::new(node_graph.clone())),
                Arc::new(rkube_auth::authz::RbacAuthorizer::new(rbac_index.clone())),
            ]));

        let (stop_compactor, compactor_stop) = watch::channel(false);
        let compactor = (!config.compaction_interval.is_zero()).then(|| {
            tokio::spawn(rkube_storage::compact::run_compactor(
                backend.clone(),
                config.compaction_interval,
                compactor_stop,
            ))
        });
        let health = health::Health::new(backend);

        // Past this point a failure must still stop the compactor and close the datastore.
        let listening = async {
            let tokens = token_authenticators(&config, &service_key, &registry)?;
            let hostname = config::hostname().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no hostname for the serving certificate");
                String::new()
            });
            let names = tls::ServingNames::for_node(&hostname, config.bind_address);
            let data_dir = config.data_dir.clone();
            let certs = tokio::task::spawn_blocking(move || {
                tls::ClusterCerts::load_or_create(&data_dir, &names)
            })
            .await
            .context("loading the cluster certificates")??;
            let tls_config = certs.server_config()?;
            // The controllers sign with the cluster's CAs and publish the serving CA.
            let controllers = rkube_controllers::ControllerManager {
                certificates: csr_signers(certs.signing_cas())?,
                root_ca: Some(certs.server_ca_pem().to_owned()),
                ..Default::default()
            };
            let authenticator = rkube_auth::authn::Union::new(
                vec![
                    Arc::new(rkube_auth::authn::CertAuthenticator::new(
                        certs.client_verifier()?,
                    )),
                    Arc::new(tokens.bearer.clone()),
                ],
                true,
            );
            let auth = auth::AuthLayer::new(auth::Gate::new(authenticator, authorizer.clone()));

            let requested = SocketAddr::new(config.bind_address, config.https_listen_port);
            let listener = http::bind(requested).await?;
            let local_addr = listener
                .local_addr()
                .context("reading the API listener's address")?;
            tracing::info!(tls_dir = %certs.dir().display(), "listening on https://{local_addr}");
            // The kubeconfig is the signal that the cluster is usable, so the caches are loaded
            // and the system namespaces and `kubernetes` Service exist before it is written.
            registry.ready().await;
            let advertise = tls::node_addresses(config.bind_address)
                .into_iter()
                .next()
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            ensure_defaults(
                &registry,
                &BootstrapConfig::new(advertise, local_addr.port()),
            )
            .await
            .context("creating the system namespaces and the kubernetes Service")?;
            rbac::reconcile(&registry).await?;
            // Authorization is complete from the first request the kubeconfig lets in.
            let rbac_feed = rbac::feed(registry.clone(), rbac_index.clone()).await?;
            let node_feed = node_graph::feed(&registry, node_graph).await;
            if let Some(path) = config.write_kubeconfig.clone() {
                let text = kubeconfig::render(
                    &kubeconfig::server_url(local_addr),
                    &certs.admin_credentials(),
                );
                let written = path.clone();
                tokio::task::spawn_blocking(move || kubeconfig::write(&written, &text))
                    .await
                    .context("writing the kubeconfig")??;
                tracing::info!(path = %path.display(), "wrote kubeconfig");
            }
            anyhow::Ok((
                listener,
                local_addr,
                tls_config,
                auth,
                (rbac_feed, node_feed),
                tokens,
                controllers,
            ))
        };
        let (listener, local_addr, tls_config, auth, (rbac_feed, node_feed), tokens, controllers) =
            match listening.await {
                Ok(bound) => bound,
                Err(e) => {
                    // The registry's watch caches read the datastore: they go before it closes.
                    drop(registry);
                    let _ = stop_compactor.send(true);
                    if let Some(task) = compactor {
                        let _ = task.await;
                    }
                    if let Err(close) = datastore.close().await {
                        tracing::error!(error = %close, "closing the datastore after a failed start");
                    }
                    return Err(e);
                }
            };

        let (stop_http, http_stop) = oneshot::channel::<()>();
        let chain = Arc::new(rkube_admission::default_chain(
            Arc::new(admission::RegistryCluster::new(registry.clone())),
            Arc::new(admission::AuthorizerGate(authorizer.clone())),
            &admission_config,
        ));
        let escalation_authorizer = authorizer.clone();
        let resolver: rkube_apiserver::Resolver = Arc::new(move |resource, subresource| {
            let rest = registry.rest(resource, subresource)?;
            Some(match subresource {
                None => escalation::EscalationCheck::wrap(
                    resource,
                    rest,
                    &escalation_authorizer,
                    &rbac_index,
                ),
                Some(_) => rest,
            })
        });
        let reviewer = Arc::new(rkube_auth::review::Reviewer::new(
            tokens.bearer,
            rkube_registry::subresources::token::API_AUDIENCES,
            authorizer,
        ));
        let api = admission::install(rkube_apiserver::router(resolver), chain)
            .layer(rkube_apiserver::reviews_layer(reviewer))
            .merge(auth::discovery_routes(tokens.service_accounts));
        let app = http::router(health.clone(), auth, api);
        // Audit goes around the gate, which reports the user to it (DESIGN §3); without
        // auditing the layer is not there at all.
        let app = match &auditor {
            Some(auditor) => app.layer(auditor.layer()),
            None => app,
        };
        // The controllers speak to the same router the listener serves (loopback), each as
        // its own service account.
        let loopback_app = app.clone();
        let client_for =
            move |name: &str| loopback::client(loopback_app.clone(), loopback::controller(name));
        let audited = auditor.is_some();
        let http = tokio::spawn(http::serve(listener, tls_config, app, audited, async {
            let _ = http_stop.await;
        }));
        let (stop_controllers, controllers_stop) = oneshot::channel::<()>();
        let controllers = tokio::spawn(controllers.run(client_for, async {
            let _ = controllers_stop.await;
        }));
        tracing::info!("rkube is ready");
        Ok(Server {
            local_addr,
            datastore,
            store,
            health,
            stop_http,
            http,
            stop_compactor,
            compactor,
            stop_controllers,
            controllers,
            rbac_feed,
            node_feed,
            auditor,
        })
    }

    /// The address the API listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The object store over the datastore, for the API layers that plug in here.
    pub fn store(&self) -> &KvStore {
        &self.store
    }

    /// Serves until `shutdown` completes (or the listener fails), then stops gracefully.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let failed = tokio::select! {
            biased;
            () = shutdown => {
                tracing::info!("shutting down");
                None
            }
            ended = &mut self.http => Some(ended),
        };
        self.health.begin_shutdown();
        // The controllers are clients of the API: they stop before it does.
        let _ = self.stop_controllers.send(());
        if let Err(e) = self.controllers.await {
            tracing::error!(error = %e, "the controller manager task failed");
        }
        let serving = match failed {
            // The listener stopped without being asked: report why, after cleaning up.
            Some(ended) => Err(match ended {
                Ok(Ok(())) => anyhow::anyhow!("the API listener stopped unexpectedly"),
                Ok(Err(e)) => anyhow::Error::new(e).context("serving the API"),
                Err(e) => anyhow::Error::new(e).context("the API listener task failed"),
            }),
            None => {
                let _ = self.stop_http.send(());
                match self.http.await {
                    Ok(result) => result.context("serving the API"),
                    Err(e) => Err(anyhow::Error::new(e).context("the API listener task failed")),
                }
            }
        };
        if let Some(auditor) = self.auditor {
            auditor.close().await;
        }
        // The feed's watches read the datastore: they end before it closes.
        drop(self.rbac_feed);
        drop(self.node_feed);
        let _ = self.stop_compactor.send(true);
        if let Some(task) = self.compactor
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "the compactor task failed");
        }
        drop(self.store);
        let closed = self.datastore.close().await;
        serving?;
        closed?;
        tracing::info!("rkube stopped");
        Ok(())
    }

    /// Stops the server gracefully now.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.run_until(std::future::ready(())).await
    }
}

/// The bearer token authenticators of `config` and the service account authenticator
/// (also what the discovery routes publish).
struct Tokens {
    bearer: rkube_auth::authn::BearerToken,
    service_accounts: Arc<rkube_auth::authn::service_account::ServiceAccountTokens>,
}

/// The CSR signers' configuration: the cluster's CAs as k3s assigns them, and
/// kube-controller-manager's default `--cluster-signing-duration`.
fn csr_signers(cas: &tls::SigningCas) -> anyhow::Result<rkube_controllers::certificates::Config> {
    use rkube_controllers::certificates::{Config, DEFAULT_DURATION, SigningCa};
    let load = |ca: &tls::CaPem| {
        SigningCa::from_pem(&ca.cert, &ca.key)
            .map(Arc::new)
            .context("loading a CSR signing CA")
    };
    Ok(Config {
        client_ca: Some(load(&cas.client)?),
        server_ca: Some(load(&cas.server)?),
        duration: DEFAULT_DURATION,
    })
}

fn token_authenticators(
    config: &Config,
    key: &tls::ServiceAccountKey,
    registry: &Arc<Registry>,
) -> anyhow::Result<Tokens> {
    use rkube_auth::authn::{TokenAuthenticator, bootstrap, service_account, token_file};
    use rkube_registry::subresources::token::{API_AUDIENCES, ISSUER};
    let lookup: Arc<dyn service_account::ObjectLookup> =
        Arc::new(auth::RegistryLookup::new(registry.clone()));
    let verifying = service_account::VerifyingKey::from_spki(&key.public_key_der(), key.key_id())
        .context("the service account key is not a P-256 key")?;
    let service_accounts = Arc::new(service_account::ServiceAccountTokens::new(
        ISSUER,
        API_AUDIENCES,
        verifying,
        lookup.clone(),
    ));
    let mut authenticators: Vec<Arc<dyn TokenAuthenticator>> = Vec::new();
    if let Some(path) = &config.token_auth_file {
        authenticators.push(Arc::new(token_file::TokenFile::load(path)?));
    }
    authenticators.push(service_accounts.clone());
    authenticators.push(Arc::new(bootstrap::BootstrapTokens::new(lookup)));
    Ok(Tokens {
        bearer: rkube_auth::authn::BearerToken::new(authenticators),
        service_accounts,
    })
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;

    use rkube_storage::{GetOptions, Store};
    use serde_json::json;

    use super::*;

    fn config(dir: &std::path::Path) -> Config {
        Config {
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            https_listen_port: 0,
            write_kubeconfig: Some(dir.join("kubeconfig.yaml")),
            ..Config::new(dir.join("data"), "test-node")
        }
    }

    #[tokio::test]
    async fn acknowledged_writes_survive_shutdown_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(config(dir.path())).await.unwrap();
        assert_ne!(server.local_addr().port(), 0);
        let kubeconfig = std::fs::read_to_string(dir.path().join("kubeconfig.yaml")).unwrap();
        assert!(
            kubeconfig.contains(&format!("server: https://{}\n", server.local_addr())),
            "{kubeconfig}"
        );
        let key = "/registry/configmaps/default/cfg";
        let object = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default"},
            "data": {"k": "v"}
        });
        let written = server.store().create(key, object, None).await.unwrap();
        server.shutdown().await.unwrap();

        let server = Server::start(config(dir.path())).await.unwrap();
        let read = server
            .store()
            .get(key, &GetOptions::default())
            .await
            .unwrap();
        assert_eq!(read.revision(), written.revision());
        assert_eq!(read.value()["data"]["k"], "v");
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_start_releases_the_datastore() {
        let dir = tempfile::tempdir().unwrap();
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = Config {
            https_listen_port: taken.local_addr().unwrap().port(),
            ..config(dir.path())
        };
        let err = Server::start(busy).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("binding the API listener"),
            "{err:#}"
        );
        assert!(!dir.path().join("kubeconfig.yaml").exists());
        // The same datastore opens again: the failed start closed it.
        let server = Server::start(config(dir.path())).await.unwrap();
        server.shutdown().await.unwrap();
    }

    /// One HTTP/1.1 GET over TLS, as a client with `identity` (certificate chain and key PEM)
    /// would send it; returns the negotiated ALPN protocol, the status line and the body.
    async fn https_get(
        addr: SocketAddr,
        ca: &rustls::pki_types::CertificateDer<'static>,
        identity: Option<(&str, &str)>,
        alpn: &[&[u8]],
        path: &str,
    ) -> (Option<Vec<u8>>, String, String) {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let mut client = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        if negotiated.as_deref() == Some(b"h2".as_slice()) {
            return (negotiated, String::new(), String::new());
        }
        tls.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut response = String::new();
        tls.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.lines().next().unwrap().to_string();
        (negotiated, status, body.to_string())
    }

    #[tokio::test]
    async fn https_with_client_certificates_gates_the_api() {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(config(dir.path())).await.unwrap();
        let addr = server.local_addr();
        let tls_dir = dir.path().join("data").join(tls::TLS_DIR);
        let ca_pem = std::fs::read_to_string(tls_dir.join("server-ca.crt")).unwrap();
        let ca = {
            use rustls::pki_types::pem::PemObject;
            rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()
        };
        let admin_cert = std::fs::read_to_string(tls_dir.join("client-admin.crt")).unwrap();
        let admin_key = std::fs::read_to_string(tls_dir.join("client-admin.key")).unwrap();
        let admin = Some((admin_cert.as_str(), admin_key.as_str()));
        let http11: &[&[u8]] = &[b"http/1.1"];

        // HTTP/2 is offered first and chosen when the client speaks it.
        let (alpn, _, _) = https_get(addr, &ca, None, &[b"h2", b"http/1.1"], "/").await;
        assert_eq!(alpn.as_deref(), Some(b"h2".as_slice()));

        let (alpn, status, body) = https_get(addr, &ca, None, http11, "/version").await;
        assert_eq!(alpn.as_deref(), Some(b"http/1.1".as_slice()));
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(body.contains("\"gitVersion\""), "{body}");

        let (_, status, body) = https_get(addr, &ca, None, http11, "/api").await;
        assert_eq!(status, "HTTP/1.1 403 Forbidden");
        assert!(
            body.contains(
                r#""message":"forbidden: User \"system:anonymous\" cannot get path \"/api\"""#
            ),
            "{body}"
        );

        // The admin passes the gate and reaches the Kubernetes API.
        let (_, status, body) = https_get(addr, &ca, admin, http11, "/api").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(body.contains(r#""kind":"APIVersions""#), "{body}");
        let (_, status, body) = https_get(addr, &ca, admin, http11, "/readyz/etcd").await;
        assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok"));

        // A certificate from another CA: the handshake succeeds, the request is refused.
        let other_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, tls::MASTERS_GROUP);
        let other = params.self_signed(&other_key).unwrap().pem();
        let (_, status, body) = https_get(
            addr,
            &ca,
            Some((&other, &other_key.serialize_pem())),
            http11,
            "/version",
        )
        .await;
        assert_eq!(status, "HTTP/1.1 401 Unauthorized");
        assert!(body.contains(r#""reason":"Unauthorized""#), "{body}");
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn token_reviews_answer_for_the_audiences_a_token_was_issued_for() {
        use kube::api::{Api, PostParams};
        use rkube_api::k8s_openapi::api::authentication::v1::{TokenRequest, TokenReview};
        use rkube_api::k8s_openapi::api::core::v1::ServiceAccount;
        use serde_json::Value;

        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(config(dir.path())).await.unwrap();
        let client =
            crate::loopback::tests::https_client(&dir.path().join("kubeconfig.yaml")).await;
        let pp = PostParams::default();
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        let account = serde_json::from_value(json!({"metadata": {"name": "reviewed"}})).unwrap();
        accounts.create(&pp, &account).await.unwrap();
        let token_for = |audiences: Value| {
            let (accounts, pp) = (accounts.clone(), pp.clone());
            async move {
                let request: TokenRequest =
                    serde_json::from_value(json!({"spec": {"audiences": audiences}})).unwrap();
                let issued: TokenRequest = accounts
                    .create_subresource("token", "reviewed", &pp, &request)
                    .await
                    .unwrap();
                issued.status.unwrap().token
            }
        };
        let reviews: Api<TokenReview> = Api::all(client);
        let review = |token: &str, audiences: Value| {
            let (reviews, pp) = (reviews.clone(), pp.clone());
            let review: TokenReview =
                serde_json::from_value(json!({"spec": {"token": token, "audiences": audiences}}))
                    .unwrap();
            async move {
                let answer = reviews.create(&pp, &review).await.unwrap();
                serde_json::to_value(answer.status.unwrap()).unwrap()
            }
        };
        let vault = token_for(json!(["vault"])).await;
        let status = review(&vault, json!(["other", "vault"])).await;
        assert_eq!(status["authenticated"], true, "{status}");
        assert_eq!(status["audiences"], json!(["vault"]));
        assert_eq!(
            status["user"]["username"],
            "system:serviceaccount:default:reviewed"
        );
        // Without audiences the review asks for the API server's, which a vault token is not.
        let status = review(&vault, Value::Null).await;
        assert_eq!(status.get("authenticated"), None, "{status}");
        assert_eq!(
            status["error"],
            r#"token audiences ["vault"] is invalid for the target audiences ["https://kubernetes.default.svc.cluster.local" "k3s"]"#
        );
        let api = token_for(Value::Null).await;
        let status = review(&api, Value::Null).await;
        assert_eq!(
            status["audiences"],
            json!(["https://kubernetes.default.svc.cluster.local", "k3s"])
        );
        assert_eq!(
            review(&api, json!(["k3s"])).await["audiences"],
            json!(["k3s"])
        );
        server.shutdown().await.unwrap();
    }
}
