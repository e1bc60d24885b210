//! `rkube server` as a user meets it: health and version endpoints over HTTPS with client
//! certificates, stock kubectl, curl and OpenSSL, signals, restarts, and refusing bad input
//! with a clear message.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use rkube_e2e::{ClientFiles, Cluster, Exit, all_kubectls, curl, refused_start, run_to_exit};

/// What upstream answers for a path nothing serves, byte for byte.
const NOT_FOUND_STATUS: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}"#;

/// What upstream answers an anonymous GET of `/api`, byte for byte.
const ANONYMOUS_API_FORBIDDEN: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"system:anonymous\" cannot get path \"/api\"","reason":"Forbidden","details":{},"code":403}"#;

/// What upstream answers a client certificate it cannot verify, byte for byte.
const UNAUTHORIZED_STATUS: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;

fn assert_no_panic(exit: &Exit) {
    assert!(
        !exit.stderr.contains("panicked"),
        "rkube panicked:\n{}",
        exit.stderr
    );
}

/// Asserts `rkube` refused to start: non-zero exit, every `needles` in stderr, no panic.
fn assert_refused(exit: &Exit, needles: &[&str]) {
    assert!(!exit.status.success(), "rkube started: {}", exit.stderr);
    assert_no_panic(exit);
    for needle in needles {
        assert!(
            exit.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            exit.stderr
        );
    }
}

#[test]
fn health_endpoints_answer_like_kube_apiserver() -> anyhow::Result<()> {
    let cluster = Cluster::start(&[])?;
    for endpoint in ["healthz", "livez", "readyz"] {
        let r = cluster.get(&format!("/{endpoint}"))?;
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "/{endpoint}");
        assert_eq!(r.content_type, "text/plain; charset=utf-8");
    }
    let readyz = cluster.get("/readyz?verbose")?;
    assert_eq!(readyz.status, 200);
    assert_eq!(
        readyz.body,
        "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]shutdown ok\nreadyz check passed\n"
    );
    let healthz = cluster.get("/healthz?verbose")?;
    assert_eq!(
        healthz.body,
        "[+]ping ok\n[+]log ok\n[+]etcd ok\nhealthz check passed\n"
    );
    let livez = cluster.get("/livez?verbose")?;
    assert_eq!(
        livez.body,
        "[+]ping ok\n[+]log ok\n[+]etcd ok\nlivez check passed\n"
    );

    let excluded = cluster.get("/readyz?verbose&exclude=etcd")?;
    assert!(
        excluded.body.contains("[+]etcd excluded: ok\n"),
        "{}",
        excluded.body
    );

    for single in [
        "/readyz/etcd",
        "/readyz/shutdown",
        "/healthz/ping",
        "/livez/log",
    ] {
        let r = cluster.get(single)?;
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{single}");
    }
    // livez has no shutdown check, and unknown checks are unknown paths.
    for missing in ["/livez/shutdown", "/readyz/nope"] {
        let r = cluster.get(missing)?;
        assert_eq!(r.status, 404, "{missing}");
        assert_eq!(r.body, NOT_FOUND_STATUS);
    }
    Ok(())
}

#[test]
fn version_is_upstream_version_info() -> anyhow::Result<()> {
    let cluster = Cluster::start(&[])?;
    let r = cluster.get("/version")?;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/json");
    let info = r.json()?;
    assert_eq!(info["major"], "1");
    assert_eq!(info["minor"], "34");
    assert_eq!(info["gitVersion"], "v1.34.0+rkube");
    assert_eq!(info["compiler"], "rustc");
    assert!(
        info["goVersion"]
            .as_str()
            .unwrap_or_default()
            .starts_with("rustc 1.")
    );
    for field in ["gitCommit", "gitTreeState", "buildDate", "platform"] {
        assert!(info[field].is_string(), "{field} missing: {info}");
    }
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    assert_eq!(info["platform"], "linux/amd64");
    Ok(())
}

#[test]
fn unknown_paths_get_a_not_found_status() -> anyhow::Result<()> {
    let cluster = Cluster::start(&[])?;
    for path in ["/nope", "/api/v1/namespaces/default/widgets", "/versions"] {
        let r = cluster.get(path)?;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.content_type, "application/json");
        assert_eq!(r.body, NOT_FOUND_STATUS, "{path}");
    }
    Ok(())
}

#[test]
fn every_kubectl_sees_our_server_version_over_mutual_tls() -> anyhow::Result<()> {
    let clients = all_kubectls();
    let cluster = Cluster::start(&[])?;
    let mode = std::fs::metadata(cluster.kubeconfig())?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "kubeconfig must be private");
    for kubectl in &clients {
        let out = cluster.kubectl(kubectl, &["version", "-o", "json"])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "kubectl {}: {stderr}",
            kubectl.version
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(
            json["serverVersion"]["gitVersion"], "v1.34.0+rkube",
            "kubectl {}: {json}",
            kubectl.version
        );
        let client_minor = json["clientVersion"]["minor"].as_str().unwrap_or_default();
        assert!(
            kubectl.version.ends_with(&format!(".{client_minor}")),
            "{} reports client {}",
            kubectl.path.display(),
            json["clientVersion"]
        );
        // /readyz/etcd is for system:masters only: kubectl presented the admin certificate.
        for path in ["/healthz", "/readyz/etcd"] {
            let out = cluster.kubectl(kubectl, &["get", "--raw", path])?;
            assert!(
                out.status.success(),
                "kubectl {} get --raw {path}: {}",
                kubectl.version,
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout), "ok", "{path}");
        }
    }
    Ok(())
}

#[test]
fn anonymous_clients_see_only_public_info() -> anyhow::Result<()> {
    let cluster = Cluster::start(&[])?;
    let version = cluster.get_anonymous("/version")?;
    assert_eq!(version.status, 200);
    assert_eq!(version.json()?["gitVersion"], "v1.34.0+rkube");
    for path in ["/healthz", "/livez", "/readyz"] {
        let r = cluster.get_anonymous(path)?;
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{path}");
    }
    let api = cluster.get_anonymous("/api")?;
    assert_eq!(api.status, 403);
    assert_eq!(api.content_type, "application/json");
    assert_eq!(api.body, ANONYMOUS_API_FORBIDDEN);
    // Per-check paths are system:monitoring's in upstream's bootstrap policy, not public.
    let check = cluster.get_anonymous("/readyz/etcd")?;
    assert_eq!(check.status, 403);
    assert!(
        check.body.contains(r#"cannot get path \"/readyz/etcd\""#),
        "{}",
        check.body
    );
    Ok(())
}

#[test]
fn a_client_certificate_from_another_ca_is_unauthorized() -> anyhow::Result<()> {
    let cluster = Cluster::start(&[])?;
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("other.crt"), dir.path().join("other.key"));
    // The admin's very name and group, self-signed: only the issuer is wrong.
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/O=system:masters/CN=system:admin",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .context("running openssl")?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = cluster.client_files()?;
    let args: Vec<String> = [("--cacert", &client.ca), ("--cert", &cert), ("--key", &key)]
        .iter()
        .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
        .collect();
    for path in ["/version", "/api"] {
        let r = curl(&format!("{}{path}", cluster.url()), &args)?;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.content_type, "application/json");
        assert_eq!(r.body, UNAUTHORIZED_STATUS);
    }
    Ok(())
}

#[test]
fn http2_and_http1_both_work() -> anyhow::Result<()> {
    let cluster = Cluster::start(&[])?;
    let client = cluster.client_files()?;
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let mut args = client.curl_args();
        args.push(flag.to_string());
        let r = curl(&format!("{}/readyz/etcd", cluster.url()), &args)?;
        assert_eq!(
            (r.status, r.http_version.as_str(), r.body.as_str()),
            (200, version, "ok"),
            "{flag}"
        );
    }
    Ok(())
}

#[test]
fn openssl_verifies_the_server_with_the_kubeconfigs_ca() -> anyhow::Result<()> {
    let cluster = Cluster::start(&[])?;
    let client = cluster.client_files()?;
    let host_port = cluster
        .url()
        .strip_prefix("https://")
        .context("the server URL is not https")?;
    let out = Command::new("openssl")
        .args(["s_client", "-connect", host_port, "-verify_return_error"])
        .args(["-verify_ip", "127.0.0.1", "-alpn", "h2,http/1.1"])
        .arg("-CAfile")
        .arg(&client.ca)
        .arg("-cert")
        .arg(&client.cert)
        .arg("-key")
        .arg(&client.key)
        .stdin(Stdio::null())
        .output()
        .context("running openssl")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Verify return code: 0 (ok)"), "{stdout}");
    assert!(stdout.contains("ALPN protocol: h2"), "{stdout}");
    Ok(())
}

#[test]
fn the_ca_and_admin_certificate_survive_a_restart() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(&[])?;
    let tls = cluster.data_dir().join("server/tls");
    let tls_mode = std::fs::metadata(&tls)?.permissions().mode();
    assert_eq!(tls_mode & 0o777, 0o700);
    for key in [
        "server-ca.key",
        "client-ca.key",
        "serving-kube-apiserver.key",
        "client-admin.key",
    ] {
        let mode = std::fs::metadata(tls.join(key))?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let ca = std::fs::read_to_string(tls.join("server-ca.crt"))?;
    let saved = tempfile::tempdir()?;
    let first_kubeconfig = saved.path().join("kubeconfig.yaml");
    std::fs::copy(cluster.kubeconfig(), &first_kubeconfig)?;
    let first = ClientFiles::from_kubeconfig(&first_kubeconfig, &saved.path().join("client"))?;

    let exit = cluster.terminate()?;
    assert!(
        exit.status.success(),
        "exit {}: {}",
        exit.status,
        exit.stderr
    );
    cluster.restart()?;
    assert_eq!(std::fs::read_to_string(tls.join("server-ca.crt"))?, ca);

    // The port is new; the first run's credentials still open the masters-only path.
    let r = curl(
        &format!("{}/readyz/etcd", cluster.url()),
        &first.curl_args(),
    )?;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    for kubectl in &all_kubectls() {
        let out = Command::new(&kubectl.path)
            .arg("--kubeconfig")
            .arg(&first_kubeconfig)
            .arg("--cache-dir")
            .arg(saved.path().join("kube-cache"))
            .args(["--server", cluster.url(), "get", "--raw", "/readyz/etcd"])
            .stdin(Stdio::null())
            .output()?;
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            kubectl.version,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok");
    }
    Ok(())
}

#[test]
fn sigterm_stops_cleanly_and_restart_reuses_the_data_dir() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(&[])?;
    let db = cluster.data_dir().join("server/db/state.db");
    assert!(db.is_file(), "{} missing", db.display());
    let db_dir_mode = std::fs::metadata(db.parent().unwrap_or(&db))?
        .permissions()
        .mode();
    assert_eq!(db_dir_mode & 0o777, 0o700);

    let exit = cluster.terminate()?;
    assert!(
        exit.status.success(),
        "exit {}: {}",
        exit.status,
        exit.stderr
    );
    assert!(
        exit.elapsed < Duration::from_secs(10),
        "took {:?}",
        exit.elapsed
    );
    assert_no_panic(&exit);

    cluster.restart()?;
    let r = cluster.get("/readyz?verbose")?;
    assert!(r.body.contains("[+]etcd ok"), "{}", r.body);
    let exit = cluster.terminate()?;
    assert!(
        exit.status.success(),
        "exit {}: {}",
        exit.status,
        exit.stderr
    );
    Ok(())
}

/// Runs `rkube server` on `data_dir` (loopback, a free port) with `extra` flags, for starts
/// that must fail, and returns how it exited.
#[test]
fn unknown_datastore_scheme_is_refused() -> anyhow::Result<()> {
    let exit = run_to_exit(&[
        "server",
        "--datastore-endpoint",
        "mysql://root:pw@tcp(127.0.0.1:3306)/k3s",
    ])?;
    assert_refused(&exit, &["\"mysql\"", "sqlite://"]);
    Ok(())
}

#[test]
fn unwritable_data_dir_is_refused() -> anyhow::Result<()> {
    // Tests run as root, which ignores permission bits: a data dir under a regular file is
    // unwritable for everyone.
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("file");
    std::fs::write(&file, "")?;
    let data_dir = file.join("data");
    let exit = refused_start(&data_dir, &[])?;
    assert_refused(
        &exit,
        &[
            "rkube: error:",
            &data_dir.display().to_string(),
            "Not a directory",
        ],
    );
    Ok(())
}

#[test]
fn corrupt_database_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db_dir = dir.path().join("server/db");
    std::fs::create_dir_all(&db_dir)?;
    let db = db_dir.join("state.db");
    std::fs::write(&db, vec![0x42u8; 64 * 1024])?;
    let exit = refused_start(dir.path(), &[])?;
    assert_refused(&exit, &["rkube: error:", &db.display().to_string()]);
    Ok(())
}

#[test]
fn corrupt_certificate_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tls = dir.path().join("server/tls");
    std::fs::create_dir_all(&tls)?;
    let ca = tls.join("server-ca.crt");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )?;
    let exit = refused_start(dir.path(), &[])?;
    assert_refused(&exit, &["rkube: error:", &ca.display().to_string()]);
    Ok(())
}

#[test]
fn unreachable_etcd_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // A port that was free a moment ago and has nothing listening now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let exit = refused_start(dir.path(), &["--datastore-endpoint", &endpoint])?;
    assert_refused(&exit, &["rkube: error:", &endpoint]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_datastore_becomes_ready() -> anyhow::Result<()> {
    let etcd = rkube_storage_etcd::testing::EtcdServer::start().await?;
    let endpoint = etcd.endpoint();
    let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut cluster = Cluster::start(&["--datastore-endpoint", &endpoint])?;
        let r = cluster.get("/readyz?verbose")?;
        assert_eq!(r.status, 200);
        assert!(r.body.contains("[+]etcd ok\n"), "{}", r.body);
        // No SQLite file appears when etcd holds the state.
        assert!(!cluster.data_dir().join("server/db/state.db").exists());
        let exit = cluster.terminate()?;
        assert!(
            exit.status.success(),
            "exit {}: {}",
            exit.status,
            exit.stderr
        );
        Ok(())
    })
    .await?;
    drop(etcd);
    outcome
}
