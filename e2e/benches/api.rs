//! API benchmark against the real binary: cached and consistent GET and CREATE latency under
//! 100 concurrent keep-alive HTTPS clients, next to a plain axum handler served over the same
//! TLS and HTTP stack in the same run; the cached GET as a user authorized by RBAC (a
//! RoleBinding to `view`) next to the admin (`system:masters`) in the same run; server-side apply of a ~200-line Deployment next to a
//! plain PUT of it; LIST of 10k ConfigMaps as JSON and as Table; the
//! server's resident memory idle, before and after 10k objects.
//!
//! ```sh
//! cargo build --release -p rkube
//! RKUBE_BIN=target/release/rkube cargo bench -p rkube-e2e --bench api
//! ```
//! `RKUBE_BENCH_OBJECTS` (default 10000) and `RKUBE_BENCH_REQUESTS` (per client, default 100)
//! size the run.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rkube_e2e::{ClientFiles, Cluster};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const CLIENTS: usize = 100;
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn configmap(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "bench", "labels": {"app": "bench"}},
        "data": {"config.yaml": "server:\n  port: 8080\n  workers: 4\nlogging:\n  level: info\n",
                 "flags": "alpha=false,beta=true,gamma=false"}})
}

/// One keep-alive HTTP/1.1 connection over TLS.
struct Conn {
    send: SendRequest<Full<Bytes>>,
    authority: String,
}

impl Conn {
    async fn open(addr: SocketAddr, tls: Arc<rustls::ClientConfig>, name: &str) -> Conn {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let server = ServerName::try_from(name.to_string()).unwrap();
        let stream = TlsConnector::from(tls).connect(server, tcp).await.unwrap();
        let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        Conn {
            send,
            authority: addr.to_string(),
        }
    }

    /// Sends a request; returns the status and the body length.
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        accept: &str,
        body: Option<Bytes>,
    ) -> (u16, usize) {
        self.send.ready().await.unwrap();
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority)
            .header("accept", accept);
        if body.is_some() {
            // PATCH here is always server-side apply (a JSON body is valid apply YAML).
            let content_type = match method {
                "PATCH" => "application/apply-patch+yaml",
                _ => "application/json",
            };
            request = request.header("content-type", content_type);
        }
        let request = request.body(Full::new(body.unwrap_or_default())).unwrap();
        let response = self.send.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.len())
    }
}

/// A Deployment of about 200 lines as YAML: three containers with env, ports, probes and
/// resources; `replicas` varies so every write changes something.
fn deployment(name: &str, replicas: usize) -> serde_json::Value {
    let container = |i: usize| {
        let env: Vec<_> = (0..8)
            .map(|e| json!({"name": format!("VAR_{e}"), "value": format!("value-{e}")}))
            .collect();
        json!({
            "name": format!("c{i}"), "image": format!("registry.example/app{i}:1.0"),
            "args": ["--port", "8080", "--verbose"],
            "env": env,
            "ports": [{"containerPort": 8080 + i, "name": format!("http{i}")}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                          "limits": {"cpu": "500m", "memory": "256Mi"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080 + i},
                               "periodSeconds": 5},
            "volumeMounts": [{"name": "data", "mountPath": format!("/data/{i}")}]
        })
    };
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "bench", "labels": {"app": name, "tier": "web"},
                     "annotations": {"owner": "bench"}},
        "spec": {
            "replicas": replicas % 5 + 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": "web"}},
                "spec": {
                    "containers": [container(0), container(1), container(2)],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web",
                                     "effect": "NoSchedule"}]
                }
            }
        }
    })
}

fn client_tls(files: &ClientFiles) -> Arc<rustls::ClientConfig> {
    tls_as(files, &files.cert, &files.key)
}

/// A client certificate for `bench-viewer` (no groups but `system:authenticated`), signed by
/// the cluster's client CA with openssl; returns its (certificate, key) files.
fn viewer_certificate(
    cluster: &Cluster,
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let ca = cluster.data_dir().join("server/tls/client-ca");
    let (crt, key, csr) = (
        dir.join("viewer.crt"),
        dir.join("viewer.key"),
        dir.join("viewer.csr"),
    );
    let ext = dir.join("viewer.ext");
    std::fs::write(&ext, "extendedKeyUsage=clientAuth\n").unwrap();
    let openssl = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let s = |t: &'static str| std::ffi::OsStr::new(t);
    openssl(&[
        s("req"),
        s("-new"),
        s("-newkey"),
        s("ec"),
        s("-pkeyopt"),
        s("ec_paramgen_curve:prime256v1"),
        s("-nodes"),
        s("-keyout"),
        key.as_os_str(),
        s("-subj"),
        s("/CN=bench-viewer"),
        s("-out"),
        csr.as_os_str(),
    ]);
    let (ca_crt, ca_key) = (ca.with_extension("crt"), ca.with_extension("key"));
    openssl(&[
        s("x509"),
        s("-req"),
        s("-in"),
        csr.as_os_str(),
        s("-CA"),
        ca_crt.as_os_str(),
        s("-CAkey"),
        ca_key.as_os_str(),
        s("-CAcreateserial"),
        s("-days"),
        s("1"),
        s("-extfile"),
        ext.as_os_str(),
        s("-out"),
        crt.as_os_str(),
    ]);
    (crt, key)
}

fn tls_as(
    files: &ClientFiles,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&files.ca).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let certs: Vec<_> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)
    .unwrap();
    Arc::new(config)
}

/// A plain axum handler answering one ConfigMap's JSON, over rustls like rkube's listener.
async fn plain_axum(body: Bytes) -> (SocketAddr, Arc<rustls::ClientConfig>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.cert.der().clone()],
        PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap(),
    )
    .unwrap();
    let app = axum::Router::new().route(
        "/configmap",
        axum::routing::get(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request| {
                    tower::ServiceExt::oneshot(app.clone(), request)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(TokioIo::new(tls), service)
                .await;
            });
        }
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    (addr, Arc::new(client))
}

/// Latencies of `CLIENTS` concurrent connections each sending `per_client` requests made by
/// `request(client, i)`; returns (p50, p99, requests per second).
async fn load<F>(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    name: &str,
    per_client: usize,
    request: F,
) -> (Duration, Duration, f64)
where
    F: Fn(usize, usize) -> (&'static str, String, Option<Bytes>) + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let mut conns = Vec::new();
    for _ in 0..CLIENTS {
        conns.push(Conn::open(addr, tls.clone(), name).await);
    }
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut conn)| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let (method, path, body) = request(c, i);
                    let t = Instant::now();
                    let (status, _) = conn.call(method, &path, "application/json", body).await;
                    latencies.push(t.elapsed());
                    assert!(status < 300, "{method} {path}: {status}");
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize];
    (
        pct(0.5),
        pct(0.99),
        all.len() as f64 / elapsed.as_secs_f64(),
    )
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024.0
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let objects = env_usize("RKUBE_BENCH_OBJECTS", 10_000);
    let per_client = env_usize("RKUBE_BENCH_REQUESTS", 100);
    let binary = rkube_e2e::rkube_bin().unwrap();
    if !binary.to_string_lossy().contains("release") {
        println!(
            "warning: benchmarking {} (not a release build; see the file header)",
            binary.display()
        );
    }
    let cluster = Cluster::start(&[]).unwrap();
    let pid = cluster.pid().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = ClientFiles::from_kubeconfig(&cluster.kubeconfig(), dir.path()).unwrap();
    let addr: SocketAddr = cluster
        .url()
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let tls = client_tls(&files);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_empty = rss_mib(pid);
        let mut conn = Conn::open(addr, tls.clone(), "localhost").await;
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}});
        let (status, _) = conn
            .call("POST", "/api/v1/namespaces", "application/json", Some(Bytes::from(ns.to_string())))
            .await;
        assert_eq!(status, 201);

        // CREATE under load fills the namespace.
        let per = objects.div_ceil(CLIENTS);
        let (c50, c99, create_rate) = load(addr, tls.clone(), "localhost", per, |c, i| {
            let body = configmap(&format!("cm-{c:03}-{i:05}")).to_string();
            ("POST", "/api/v1/namespaces/bench/configmaps".to_string(), Some(Bytes::from(body)))
        })
        .await;
        let sample = configmap("cm-000-00000");
        let get_path = |rv: &'static str| {
            move |c: usize, i: usize| {
                let name = format!("cm-{:03}-{:05}", (c + i) % CLIENTS, i % per);
                ("GET", format!("/api/v1/namespaces/bench/configmaps/{name}{rv}"), None)
            }
        };
        // The same cached GET as the admin (system:masters short-circuits authorization) and
        // as a user RBAC authorizes through a RoleBinding to `view`, alternating, best of two
        // rounds each, so that both see the same machine.
        let (crt, key) = viewer_certificate(&cluster, dir.path());
        let viewer_tls = tls_as(&files, &crt, &key);
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "bench-viewer", "namespace": "bench"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bench-viewer"}]});
        let (status, _) = conn
            .call("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/bench/rolebindings", "application/json",
                Some(Bytes::from(binding.to_string())))
            .await;
        assert_eq!(status, 201);
        let mut viewer = Conn::open(addr, viewer_tls.clone(), "localhost").await;
        let probe = "/api/v1/namespaces/bench/configmaps/cm-000-00000?resourceVersion=0";
        while viewer.call("GET", probe, "application/json", None).await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut admin_rounds = Vec::new();
        let mut rbac_rounds = Vec::new();
        for _ in 0..2 {
            admin_rounds.push(load(addr, tls.clone(), "localhost", per_client, get_path("?resourceVersion=0")).await);
            rbac_rounds.push(load(addr, viewer_tls.clone(), "localhost", per_client, get_path("?resourceVersion=0")).await);
        }
        let best = |rounds: &[(Duration, Duration, f64)]| {
            let p50 = rounds.iter().map(|r| r.0).min().unwrap();
            let p99 = rounds.iter().map(|r| r.1).min().unwrap();
            let rate = rounds.iter().map(|r| r.2).fold(0.0, f64::max);
            (p50, p99, rate)
        };
        let (g50, g99, grate) = best(&admin_rounds);
        let (r50, r99, rrate) = best(&rbac_rounds);
        let (l50, l99, lrate) = load(addr, tls.clone(), "localhost", per_client, get_path("")).await;
        let (plain_addr, plain_tls) = plain_axum(Bytes::from(sample.to_string())).await;
        let (b50, b99, brate) = load(plain_addr, plain_tls, "localhost", per_client, |_, _| {
            ("GET", "/configmap".to_string(), None)
        })
        .await;

        let mut list_json = Vec::new();
        let mut list_table = Vec::new();
        for _ in 0..5 {
            for (accept, samples) in [("application/json", &mut list_json), (TABLE, &mut list_table)] {
                let t = Instant::now();
                let (status, len) = conn
                    .call("GET", "/api/v1/namespaces/bench/configmaps", accept, None)
                    .await;
                samples.push(t.elapsed());
                assert_eq!(status, 200);
                assert!(len > objects * 100, "a full list: {len} bytes");
            }
        }
        list_json.sort();
        list_table.sort();
        // Idle memory with the ConfigMaps alone, before the Deployment writes fill the watch
        // cache's history with large objects.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rss_full = rss_mib(pid);

        // Server-side apply of a ~200-line Deployment next to a plain PUT of the same object,
        // one Deployment per client.
        let deployments = "/apis/apps/v1/namespaces/bench/deployments";
        for c in 0..CLIENTS {
            let body = deployment(&format!("dep-{c:03}"), 0).to_string();
            let (status, _) = conn
                .call("POST", deployments, "application/json", Some(Bytes::from(body)))
                .await;
            assert_eq!(status, 201);
        }
        let (p50, p99, prate) = load(addr, tls.clone(), "localhost", per_client, move |c, i| {
            let name = format!("dep-{c:03}");
            let body = deployment(&name, i).to_string();
            ("PUT", format!("{deployments}/{name}"), Some(Bytes::from(body)))
        })
        .await;
        let (a50, a99, arate) = load(addr, tls.clone(), "localhost", per_client, move |c, i| {
            let name = format!("dep-{c:03}");
            let body = deployment(&name, i + 1).to_string();
            let path = format!("{deployments}/{name}?fieldManager=bench&force=true");
            ("PATCH", path, Some(Bytes::from(body)))
        })
        .await;


        println!("\nrkube API benchmark ({objects} ConfigMaps, {CLIENTS} keep-alive HTTPS clients, {per_client} requests each)");
        println!("{:<44} {:>12} {:>12} {:>12}", "operation", "p50", "p99", "req/s");
        let row = |name: &str, p50: Duration, p99: Duration, rate: f64| {
            println!("{name:<44} {:>12} {:>12} {rate:>12.0}", ms(p50), ms(p99));
        };
        row("plain axum GET (baseline)", b50, b99, brate);
        row("GET configmap, resourceVersion=0 (cache)", g50, g99, grate);
        row("  same, as a view RoleBinding user (RBAC)", r50, r99, rrate);
        row("GET configmap, consistent", l50, l99, lrate);
        row("CREATE configmap", c50, c99, create_rate);
        row("PUT deployment (~200 lines)", p50, p99, prate);
        row("server-side apply deployment (~200 lines)", a50, a99, arate);
        println!(
            "server-side apply vs PUT: p50 {:.2}x, p99 {:.2}x",
            a50.as_secs_f64() / p50.as_secs_f64(),
            a99.as_secs_f64() / p99.as_secs_f64()
        );
        println!(
            "cached GET vs plain axum: p50 {:.2}x, p99 {:.2}x (target: within 3x)",
            g50.as_secs_f64() / b50.as_secs_f64(),
            g99.as_secs_f64() / b99.as_secs_f64()
        );
        println!(
            "cached GET, RBAC user vs system:masters: p50 {:.2}x, p99 {:.2}x, req/s {:.2}x (target: at most 1.10x)",
            r50.as_secs_f64() / g50.as_secs_f64(),
            r99.as_secs_f64() / g99.as_secs_f64(),
            grate / rrate
        );
        println!(
            "LIST {objects} as JSON: median {}; as Table: median {}",
            ms(list_json[2]),
            ms(list_table[2])
        );
        println!("idle RSS: {rss_empty:.1} MiB empty, {rss_full:.1} MiB with {objects} objects");
    });
}
