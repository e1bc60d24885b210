//! `rkube server` as a user meets it: health and version endpoints, stock kubectl, signals,
//! restarts, and refusing bad input with a clear message.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use rkube_e2e::{Cluster, Exit, kubectls, required_kubectls, run_to_exit};

/// What upstream answers for a path nothing serves, byte for byte.
const NOT_FOUND_STATUS: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}"#;

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
fn every_kubectl_sees_our_server_version() -> anyhow::Result<()> {
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
    let exit = run_to_exit(&[
        "server",
        "--data-dir",
        data_dir.to_str().unwrap_or_default(),
        "--https-listen-port",
        "0",
    ])?;
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
    let exit = run_to_exit(&[
        "server",
        "--data-dir",
        dir.path().to_str().unwrap_or_default(),
        "--https-listen-port",
        "0",
        "--bind-address",
        "127.0.0.1",
    ])?;
    assert_refused(&exit, &["rkube: error:", &db.display().to_string()]);
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
    let exit = run_to_exit(&[
        "server",
        "--data-dir",
        dir.path().to_str().unwrap_or_default(),
        "--datastore-endpoint",
        &endpoint,
        "--https-listen-port",
        "0",
    ])?;
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
