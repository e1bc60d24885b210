//! The official Python client (PyPI `kubernetes==37.0.2`, fetched by `scripts/test` into
//! `.e2e-tools/python`) drives a real server: see `e2e/python/client_lifecycle.py`.

use std::path::PathBuf;
use std::process::Command;

use rkube_e2e::Cluster;

/// Where `scripts/test` installed the client (`RKUBE_E2E_PYTHONPATH`).
const PYTHONPATH_ENV: &str = "RKUBE_E2E_PYTHONPATH";

#[test]
fn python_client_creates_lists_watches_replaces_and_deletes() -> anyhow::Result<()> {
    let pythonpath = std::env::var_os(PYTHONPATH_ENV).unwrap_or_else(|| {
        panic!("{PYTHONPATH_ENV} is not set: run scripts/test, which installs the Python client")
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/client_lifecycle.py");
    let cluster = Cluster::start(&[])?;
    let out = Command::new("python3")
        .arg(&script)
        .arg(cluster.kubeconfig())
        .arg("python-client")
        .env("PYTHONPATH", pythonpath)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "python client:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
