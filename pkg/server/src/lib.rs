//! # Layout
//! The composition root: everything `rkube server` runs, wired together and started in order.
//!
//! - [`config`]: [`Config`] (what the flags mean), datastore URL parsing, Go-style durations.
//! - [`datastore`]: the configured datastore opened as a `KvBackend` (SQLite or etcd), and
//!   closed again at shutdown.
//! - [`health`]: `/healthz`, `/livez`, `/readyz` as kube-apiserver serves them.
//! - [`version`]: `/version` and [`version::KUBERNETES_VERSION`], the version rkube claims.
//! - [`http`]: the router (with upstream's 404 `Status`) and the listener.
//! - [`kubeconfig`]: the admin kubeconfig written by `--write-kubeconfig`.
//!
//! Start order, each step behind the one before it and never behind a sleep:
//! datastore opened -> [`KvStore`] and the compactor -> listener bound (its real address
//! logged) -> kubeconfig written -> requests served (ready). Shutdown runs it backwards:
//! `/readyz` fails, the listener stops accepting and in-flight requests finish, the compactor
//! stops, and the datastore is closed so nothing acknowledged is lost.

pub mod config;
pub mod datastore;
pub mod health;
pub mod http;
pub mod kubeconfig;
pub mod version;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use rkube_storage::KvStore;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use config::{Config, ConfigError, DatastoreEndpoint, DatastoreTls};
pub use datastore::{Datastore, DatastoreError};

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
        datastore::create_private_dir(&config.data_dir.join("server"))?;
        let endpoint = config.datastore();
        let datastore = Datastore::open(&endpoint, &config.datastore_tls).await?;
        tracing::info!(datastore = ?endpoint, "datastore open");
        let backend = datastore.backend();
        let store = KvStore::new(backend.clone());

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
            let requested = SocketAddr::new(config.bind_address, config.https_listen_port);
            // Plain HTTP until TLS (a generated CA and client certificates) arrives with the
            // Kubernetes API; see README.
            let listener = http::bind(requested).await?;
            let local_addr = listener
                .local_addr()
                .context("reading the API listener's address")?;
            tracing::info!("listening on http://{local_addr}");
            if let Some(path) = config.write_kubeconfig.clone() {
                let server = kubeconfig::server_url(local_addr);
                let written = path.clone();
                tokio::task::spawn_blocking(move || kubeconfig::write(&written, &server))
                    .await
                    .context("writing the kubeconfig")??;
                tracing::info!(path = %path.display(), "wrote kubeconfig");
            }
            anyhow::Ok((listener, local_addr))
        };
        let (listener, local_addr) = match listening.await {
            Ok(bound) => bound,
            Err(e) => {
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
        let app = http::router(health.clone());
        let http = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = http_stop.await;
                })
                .await
        });
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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

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
            kubeconfig.contains(&format!("server: http://{}\n", server.local_addr())),
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
}
