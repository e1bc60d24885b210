//! [`EtcdServer`]: a real, throwaway etcd for tests (feature `testing`).
//!
//! Each server gets a fresh data directory (on `/dev/shm` when there is one: etcd 3.4 cannot
//! turn fsync off, and tests do not need durability) and free loopback ports, so tests run in
//! parallel. Dropping the server kills and reaps the process and removes the directory.

use std::ffi::OsString;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::EtcdConfig;

/// The environment variable naming the etcd binary; `etcd` on `PATH` otherwise.
pub const ETCD_BIN_ENV: &str = "RKUBE_ETCD_BIN";

/// How long etcd may take to answer after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often readiness is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Attempts when another process takes a port between picking and etcd binding it.
const PORT_ATTEMPTS: usize = 5;

/// PEM files for an etcd that serves TLS and requires client certificates. The same
/// certificate serves and authenticates clients (it needs both usages and an IP SAN 127.0.0.1).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that signed `cert_file`, trusted on both sides.
    pub ca_file: PathBuf,
    /// The certificate.
    pub cert_file: PathBuf,
    /// Its private key.
    pub key_file: PathBuf,
}

impl TlsFiles {
    /// A configuration for a client of a server started with these files.
    pub fn client_config(&self, endpoint: String) -> EtcdConfig {
        EtcdConfig {
            ca_file: Some(self.ca_file.clone()),
            cert_file: Some(self.cert_file.clone()),
            key_file: Some(self.key_file.clone()),
            ..EtcdConfig::new(vec![endpoint])
        }
    }
}

/// A running etcd, killed on drop.
#[derive(Debug)]
pub struct EtcdServer {
    child: Child,
    endpoint: String,
    tls: Option<TlsFiles>,
    // Dropped after the process is killed (see `Drop`).
    dir: TempDir,
}

impl EtcdServer {
    /// Starts etcd on free loopback ports and waits until it answers.
    pub async fn start() -> io::Result<EtcdServer> {
        Self::start_with(None).await
    }

    /// Starts etcd serving TLS with `tls`, requiring client certificates.
    pub async fn start_tls(tls: TlsFiles) -> io::Result<EtcdServer> {
        Self::start_with(Some(tls)).await
    }

    async fn start_with(tls: Option<TlsFiles>) -> io::Result<EtcdServer> {
        // Unusable files would otherwise only show as a server that never answers.
        if let Some(tls) = &tls {
            tls.client_config("https://127.0.0.1".into())
                .connect_options()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        }
        let bin = std::env::var_os(ETCD_BIN_ENV).unwrap_or_else(|| OsString::from("etcd"));
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            match Self::try_start(&bin, tls.clone()).await {
                Ok(server) => return Ok(server),
                Err(Start::PortTaken(e)) => last_error = Some(e),
                Err(Start::Failed(e)) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("etcd did not start")))
    }

    /// The client URL, e.g. `http://127.0.0.1:40123` (`https://` when serving TLS).
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// A configuration that reaches this server (with its client certificate under TLS).
    pub fn client_config(&self) -> EtcdConfig {
        match &self.tls {
            Some(tls) => tls.client_config(self.endpoint()),
            None => EtcdConfig::new(vec![self.endpoint()]),
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    async fn try_start(bin: &OsString, tls: Option<TlsFiles>) -> Result<EtcdServer, Start> {
        let dir = match Path::new("/dev/shm").is_dir() {
            true => tempfile::Builder::new()
                .prefix("rkube-etcd-")
                .tempdir_in("/dev/shm")
                .or_else(|_| tempfile::tempdir()),
            false => tempfile::tempdir(),
        }
        .map_err(Start::Failed)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client = format!(
            "{scheme}://127.0.0.1:{}",
            free_port().map_err(Start::Failed)?
        );
        let peer = format!("http://127.0.0.1:{}", free_port().map_err(Start::Failed)?);
        let log_path = dir.path().join("etcd.log");
        let log = std::fs::File::create(&log_path).map_err(Start::Failed)?;
        let mut command = Command::new(bin);
        if let Some(tls) = &tls {
            command
                .arg(format!("--cert-file={}", tls.cert_file.display()))
                .arg(format!("--key-file={}", tls.key_file.display()))
                .arg(format!("--trusted-ca-file={}", tls.ca_file.display()))
                .arg("--client-cert-auth");
        }
        let child = command
            .arg("--name=rkube-test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=rkube-test={peer}"))
            .arg("--initial-cluster-state=new")
            // A single member elects itself after one election timeout: keep it short. The
            // minimum lease TTL (1.5 election timeouts) then rounds to 1 s, as TTL tests want.
            .arg("--heartbeat-interval=20")
            .arg("--election-timeout=200")
            .args(["--logger=zap", "--log-outputs=stderr", "--log-level=error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                Start::Failed(match e.kind() {
                    io::ErrorKind::NotFound => io::Error::new(
                        e.kind(),
                        format!(
                            "etcd binary {bin:?} not found: install etcd (Debian/Ubuntu: \
                             `apt-get install etcd-server`) or set {ETCD_BIN_ENV} to its path"
                        ),
                    ),
                    _ => io::Error::new(e.kind(), format!("starting {bin:?}: {e}")),
                })
            })?;
        let mut server = EtcdServer {
            child,
            endpoint: client,
            tls,
            dir,
        };
        match server.wait_ready(&log_path).await {
            Ok(()) => Ok(server),
            Err(e) => Err(e),
        }
    }

    /// Polls until etcd answers a read, the process exits, or the deadline passes.
    async fn wait_ready(&mut self, log_path: &Path) -> Result<(), Start> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().map_err(Start::Failed)? {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                let error = io::Error::other(format!("etcd exited with {status}: {log}"));
                return Err(match log.contains("address already in use") {
                    true => Start::PortTaken(error),
                    false => Start::Failed(error),
                });
            }
            if answers(self.client_config()).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                return Err(Start::Failed(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("etcd did not answer within {READY_TIMEOUT:?}: {log}"),
                )));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // Kill and reap before `dir` is removed, so etcd never writes into a deleted tree.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why one start attempt failed.
enum Start {
    /// A port was taken before etcd bound it: try again with new ports.
    PortTaken(io::Error),
    /// Anything else: give up.
    Failed(io::Error),
}

/// A port nothing listens on right now (the OS picks it; it is free once the listener drops).
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// True if etcd quickly answers a read (which needs an elected leader).
async fn answers(config: EtcdConfig) -> bool {
    let Ok(options) = config.connect_options() else {
        return false;
    };
    let attempt = async {
        let client = etcd_client::Client::connect(&config.endpoints, Some(options)).await?;
        crate::backend::revision_of(&client).await
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Ok(_))
    )
}
