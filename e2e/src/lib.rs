//! # Layout
//! The black-box harness: the real `rkube` binary, started as a user would start it, and the
//! stock clients that talk to it. Nothing here links rkube's own crates.
//!
//! - [`rkube_bin`]: finds the binary (`RKUBE_BIN`, else next to the test executable in the
//!   target dir, i.e. what `cargo build -p rkube` produced).
//! - [`Cluster`]: `rkube server` in a temp data dir on a free loopback port; [`Cluster::start`]
//!   returns once the kubeconfig is written and `/readyz` answers 200 over mutual TLS, and the
//!   process is killed on drop. [`run_to_exit`] runs a server that is expected to fail.
//! - [`ClientFiles`]: the kubeconfig's CA, client certificate and key as PEM files, the way
//!   curl and OpenSSL take them ([`ClientFiles::from_kubeconfig`]).
//! - [`curl`] speaks raw HTTPS (status, content type, HTTP version, body) and [`kubectls`]
//!   lists the kubectl binaries of fixed versions this machine has: preinstalled
//!   `kubectl.1.NN` ones and those `scripts/test` fetched, passed as
//!   `RKUBE_E2E_KUBECTL_1_NN=/path`; [`helm`] finds the pinned Helm.
//! - [`client`]: one kubectl against one cluster ([`Client`]: run, expect success or failure,
//!   JSON output, per-version namespaces, apply of a manifest) and [`with_each_kubectl`];
//!   [`credentials`]: other identities (openssl certificates, tokens) and kubeconfigs for them.
//!
//! Data flows test -> `Cluster` (spawn, poll, signal) -> child process; its stderr is captured
//! on a thread and printed if the test fails.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

pub mod client;
pub mod credentials;

pub use client::{Client, with_each_kubectl};

/// How long a server may take to become ready: a debug build on a busy 2-core machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit after SIGTERM, or to fail at start.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Between polls of a condition that has a deadline.
const POLL: Duration = Duration::from_millis(25);

/// The `rkube` binary under test.
pub fn rkube_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("RKUBE_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("RKUBE_BIN={} does not exist", bin.display());
        }
        return Ok(bin);
    }
    let mut candidates = Vec::new();
    // A test executable lives in <target>/<profile>/deps/; the binary in <target>/<profile>/.
    if let Ok(exe) = std::env::current_exe()
        && let Some(profile_dir) = exe.parent().and_then(Path::parent)
    {
        candidates.push(profile_dir.join("rkube"));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    candidates.push(target.join("debug").join("rkube"));
    if let Some(found) = candidates.iter().find(|c| c.is_file()) {
        return Ok(found.clone());
    }
    bail!(
        "the rkube binary was not found (looked at {}): run `cargo build -p rkube` first, or set \
         RKUBE_BIN",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The stderr of a child, collected on a thread as it is written.
#[derive(Debug, Clone, Default)]
struct Captured(Arc<Mutex<String>>);

impl Captured {
    fn spawn_reader(&self, mut from: impl Read + Send + 'static) -> JoinHandle<()> {
        let into = self.0.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                into.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        })
    }

    fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// How a server process ended.
#[derive(Debug)]
pub struct Exit {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// How long it ran (for failures at start) or took to stop (after a signal).
    pub elapsed: Duration,
}

/// A running `rkube server` with its own temp data dir, killed on drop.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
    child: Option<Child>,
    stderr: Captured,
    reader: Option<JoinHandle<()>>,
    url: String,
    client: Option<ClientFiles>,
}

impl Cluster {
    /// Starts `rkube server` on a free loopback port in a fresh temp dir, with `extra_args`
    /// appended, and waits until it is ready.
    pub fn start(extra_args: &[&str]) -> anyhow::Result<Cluster> {
        let mut cluster = Cluster {
            dir: tempfile::tempdir().context("creating a temp dir")?,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            child: None,
            stderr: Captured::default(),
            reader: None,
            url: String::new(),
            client: None,
        };
        cluster.spawn_and_wait()?;
        Ok(cluster)
    }

    /// The server process's id, while it runs (benchmarks read its memory use).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The kubeconfig the server wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    /// The server's base URL, e.g. `https://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin credentials from the kubeconfig of the current run, as files.
    pub fn client_files(&self) -> anyhow::Result<&ClientFiles> {
        self.client
            .as_ref()
            .context("the server has not written a kubeconfig yet")
    }

    /// What the server has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// GETs `path` (with any query) from the server with curl, as the kubeconfig's admin.
    pub fn get(&self, path: &str) -> anyhow::Result<HttpResponse> {
        curl(
            &format!("{}{path}", self.url),
            &self.client_files()?.curl_args(),
        )
    }

    /// GETs `path` trusting the server CA but presenting no client certificate.
    pub fn get_anonymous(&self, path: &str) -> anyhow::Result<HttpResponse> {
        let ca = self.client_files()?.ca.display().to_string();
        curl(
            &format!("{}{path}", self.url),
            &["--cacert".to_string(), ca],
        )
    }

    /// Runs `kubectl` against this server with its kubeconfig and a private cache dir.
    pub fn kubectl(
        &self,
        kubectl: &Kubectl,
        args: &[&str],
    ) -> anyhow::Result<std::process::Output> {
        self.kubectl_with_env(kubectl, &[], args)
    }

    /// [`Cluster::kubectl`] with `env` added to kubectl's environment (`KUBE_EDITOR`, ...).
    pub fn kubectl_with_env(
        &self,
        kubectl: &Kubectl,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> anyhow::Result<std::process::Output> {
        Command::new(&kubectl.path)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", kubectl.path.display()))
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> anyhow::Result<Exit> {
        let Some(mut child) = self.child.take() else {
            bail!("the server is not running");
        };
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("running kill")?;
        if !sent.success() {
            bail!("kill -TERM {} failed: {sent}", child.id());
        }
        let status = wait_with_deadline(&mut child, EXIT_TIMEOUT)?;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        Ok(Exit {
            status,
            stderr: self.stderr.text(),
            elapsed: started.elapsed(),
        })
    }

    /// Starts the server again on the same data dir (after [`Cluster::terminate`]).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("the server is still running");
        }
        self.stderr = Captured::default();
        self.spawn_and_wait()
    }

    fn spawn_and_wait(&mut self) -> anyhow::Result<()> {
        self.client = None;
        let kubeconfig = self.kubeconfig();
        // A leftover kubeconfig from a previous run must not be mistaken for this one's.
        match std::fs::remove_file(&kubeconfig) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).context("removing the old kubeconfig");
            }
            _ => {}
        }
        let mut args: Vec<String> = vec![
            "server".into(),
            "--data-dir".into(),
            self.data_dir().display().to_string(),
            "--https-listen-port".into(),
            "0".into(),
            "--bind-address".into(),
            "127.0.0.1".into(),
            "--write-kubeconfig".into(),
            kubeconfig.display().to_string(),
        ];
        args.extend(self.extra_args.iter().cloned());
        let (child, reader) = spawn(&args, &self.stderr)?;
        self.child = Some(child);
        self.reader = Some(reader);
        self.wait_ready()
    }

    /// Polls, until [`READY_TIMEOUT`], for the kubeconfig and then a 200 from `/readyz` as the
    /// kubeconfig's admin.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "rkube exited with {status} before becoming ready; stderr:\n{}",
                    self.stderr.text()
                );
            }
            // The server writes the kubeconfig atomically, once its listener is bound.
            if self.client.is_none() && self.kubeconfig().exists() {
                let client = ClientFiles::from_kubeconfig(
                    &self.kubeconfig(),
                    &self.dir.path().join("client"),
                )?;
                self.url = client.server.clone();
                self.client = Some(client);
            }
            if let Some(client) = &self.client
                && curl(&format!("{}/readyz", self.url), &client.curl_args())
                    .is_ok_and(|r| r.status == 200)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "rkube was not ready within {READY_TIMEOUT:?}; stderr:\n{}",
                    self.stderr.text()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if std::thread::panicking() {
            eprintln!("--- rkube stderr ---\n{}", self.stderr.text());
        }
    }
}

fn spawn(args: &[impl AsRef<OsStr>], stderr: &Captured) -> anyhow::Result<(Child, JoinHandle<()>)> {
    let bin = rkube_bin()?;
    let mut child = Command::new(&bin)
        .args(args)
        .env("RUST_LOG", "info")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pipe = child.stderr.take().context("no stderr pipe")?;
    Ok((child, stderr.spawn_reader(pipe)))
}

/// Waits for `child` to exit; kills it (and fails) if it has not within `timeout`.
fn wait_with_deadline(child: &mut Child, timeout: Duration) -> anyhow::Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("rkube did not exit within {timeout:?}");
        }
        std::thread::sleep(POLL);
    }
}

/// Runs `rkube` with `args` (e.g. a server that should refuse to start) until it exits, at
/// most [`EXIT_TIMEOUT`].
pub fn run_to_exit(args: &[impl AsRef<OsStr>]) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let stderr = Captured::default();
    let (mut child, reader) = spawn(args, &stderr)?;
    let status = wait_with_deadline(&mut child, EXIT_TIMEOUT);
    let _ = reader.join();
    let status = status.with_context(|| format!("stderr:\n{}", stderr.text()))?;
    Ok(Exit {
        status,
        stderr: stderr.text(),
        elapsed: started.elapsed(),
    })
}

/// Runs `rkube server` on `data_dir` (loopback, a free port) with `extra` flags, expecting it
/// to refuse to start: its exit and stderr.
pub fn refused_start(data_dir: &Path, extra: &[&str]) -> anyhow::Result<Exit> {
    let data_dir = data_dir.to_str().unwrap_or_default();
    let mut args = vec![
        "server",
        "--data-dir",
        data_dir,
        "--https-listen-port",
        "0",
        "--bind-address",
        "127.0.0.1",
    ];
    args.extend_from_slice(extra);
    run_to_exit(&args)
}

/// The kubeconfig's server and credentials, written out as PEM files.
#[derive(Debug, Clone)]
pub struct ClientFiles {
    /// The kubeconfig's `server` URL.
    pub server: String,
    /// `certificate-authority-data`, as a file.
    pub ca: PathBuf,
    /// `client-certificate-data`, as a file.
    pub cert: PathBuf,
    /// `client-key-data`, as a file.
    pub key: PathBuf,
}

impl ClientFiles {
    /// Reads the first cluster's server and CA and the first user's certificate and key from
    /// `kubeconfig` (as rkube and k3s write it: inline base64 data), and writes them to
    /// `ca.crt`, `client.crt` and `client.key` in `dir`.
    pub fn from_kubeconfig(kubeconfig: &Path, dir: &Path) -> anyhow::Result<ClientFiles> {
        let text = std::fs::read_to_string(kubeconfig)
            .with_context(|| format!("reading {}", kubeconfig.display()))?;
        let field = |name: &str| -> anyhow::Result<String> {
            let prefix = format!("{name}: ");
            text.lines()
                .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
                .map(str::to_string)
                .with_context(|| format!("{} has no {name}:\n{text}", kubeconfig.display()))
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = ClientFiles {
            server: field("server")?,
            ca: dir.join("ca.crt"),
            cert: dir.join("client.crt"),
            key: dir.join("client.key"),
        };
        for (name, path) in [
            ("certificate-authority-data", &files.ca),
            ("client-certificate-data", &files.cert),
            ("client-key-data", &files.key),
        ] {
            let pem = base64_decode(&field(name)?).with_context(|| format!("decoding {name}"))?;
            std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(files)
    }

    /// curl's arguments to trust the CA and present the client certificate.
    pub fn curl_args(&self) -> Vec<String> {
        [
            ("--cacert", &self.ca),
            ("--cert", &self.cert),
            ("--key", &self.key),
        ]
        .iter()
        .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
        .collect()
    }
}

/// Standard base64 (with padding), as kubeconfigs carry certificates.
fn base64_decode(text: &str) -> anyhow::Result<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim().trim_end_matches('=').bytes() {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c)
            .with_context(|| format!("{:?} is not base64", char::from(c)))?;
        acc = (acc << 6) | u32::try_from(value)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff)?);
        }
    }
    Ok(out)
}

/// An HTTP answer as curl saw it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, empty if none.
    pub content_type: String,
    /// The HTTP version spoken: `1.1` or `2`.
    pub http_version: String,
    /// The body.
    pub body: String,
}

impl HttpResponse {
    /// The body parsed as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body).with_context(|| format!("body is not JSON: {}", self.body))
    }
}

/// GETs `url` with the stock curl and extra `args` (credentials, `--http1.1`, ...); fails
/// only if no HTTP answer came back.
pub fn curl(url: &str, args: &[String]) -> anyhow::Result<HttpResponse> {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args([
            "--write-out",
            "\n%{http_code}\n%{http_version}\n%{content_type}",
        ])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .context("running curl (install it: apt-get install curl)")?;
    if !output.status.success() {
        bail!(
            "curl {url} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8(output.stdout).context("curl output is not UTF-8")?;
    let mut parts = text.rsplitn(4, '\n');
    let content_type = parts.next().unwrap_or_default().to_string();
    let http_version = parts.next().unwrap_or_default().to_string();
    let status = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default().to_string();
    let status = status
        .parse()
        .with_context(|| format!("curl wrote no status code: {text:?}"))?;
    Ok(HttpResponse {
        status,
        content_type,
        http_version,
        body,
    })
}

/// A kubectl binary of a known version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubectl {
    /// `major.minor`, e.g. `1.33`.
    pub version: String,
    /// The executable.
    pub path: PathBuf,
}

/// Where the Google Cloud SDK puts its fixed-version kubectl binaries.
const CLOUD_SDK_BIN: &str = "/usr/lib/google-cloud-sdk/bin";
/// `scripts/test` passes each kubectl it fetched as `RKUBE_E2E_KUBECTL_1_37=/path`.
const KUBECTL_ENV_PREFIX: &str = "RKUBE_E2E_KUBECTL_";
/// Versions that must be present, comma-separated (`scripts/test` sets it).
pub const REQUIRE_KUBECTL_ENV: &str = "RKUBE_E2E_REQUIRE_KUBECTL";

/// Every fixed-version kubectl available, one per version, oldest first. Never the bare
/// `kubectl`: on these machines it is a dispatcher whose version depends on the server's.
pub fn kubectls() -> Vec<Kubectl> {
    let mut found: Vec<Kubectl> = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(version) = name
            .to_str()
            .and_then(|n| n.strip_prefix(KUBECTL_ENV_PREFIX))
            .map(|v| v.replace('_', "."))
        else {
            continue;
        };
        found.push(Kubectl {
            version,
            path: PathBuf::from(value),
        });
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from(CLOUD_SDK_BIN));
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(version) = name
                .to_str()
                .and_then(|n| n.strip_prefix("kubectl."))
                .filter(|v| {
                    v.split('.')
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                })
            else {
                continue;
            };
            if !found.iter().any(|k| k.version == version) {
                found.push(Kubectl {
                    version: version.to_string(),
                    path: entry.path(),
                });
            }
        }
    }
    found.sort_by_key(|k| {
        k.version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    found
}

/// Every fixed-version kubectl, failing if a required one is missing or none is found.
pub fn all_kubectls() -> Vec<Kubectl> {
    let clients = kubectls();
    for required in required_kubectls() {
        assert!(
            clients.iter().any(|k| k.version == required),
            "kubectl {required} is required but missing (scripts/test fetches it); found {clients:?}"
        );
    }
    assert!(
        !clients.is_empty(),
        "no fixed-version kubectl found: run scripts/test, or set RKUBE_E2E_KUBECTL_1_NN=/path"
    );
    clients
}

/// The kubectls the API must serve as kube-apiserver 1.34 does: 1.33 and newer (the server's
/// supported skew), at least one of them.
pub fn api_kubectls() -> Vec<Kubectl> {
    let clients: Vec<Kubectl> = all_kubectls()
        .into_iter()
        .filter(|k| {
            let minor = k
                .version
                .split('.')
                .nth(1)
                .and_then(|m| m.parse::<u32>().ok());
            minor.is_some_and(|m| m >= 33)
        })
        .collect();
    assert!(!clients.is_empty(), "no kubectl 1.33 or newer found");
    clients
}

/// The kubectl versions the run requires (`RKUBE_E2E_REQUIRE_KUBECTL`).
pub fn required_kubectls() -> Vec<String> {
    std::env::var(REQUIRE_KUBECTL_ENV)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// `scripts/test` passes the Helm it fetched as `RKUBE_E2E_HELM=/path`.
const HELM_ENV: &str = "RKUBE_E2E_HELM";
/// Set (to anything) when Helm must be present (`scripts/test` sets it).
const REQUIRE_HELM_ENV: &str = "RKUBE_E2E_REQUIRE_HELM";

/// The pinned Helm binary; `None` when this run has none and does not require it (a bare
/// `cargo test` outside `scripts/test`).
pub fn helm() -> Option<PathBuf> {
    let found = std::env::var_os(HELM_ENV)
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    assert!(
        found.is_some() || std::env::var_os(REQUIRE_HELM_ENV).is_none(),
        "{REQUIRE_HELM_ENV} is set but {HELM_ENV} names no file: run scripts/test"
    );
    found
}
