//! Identities other than the admin's, as tests make them: client certificates from openssl
//! (a P-256 key and request, signed by a CA's files or self-signed), kubeconfigs with such a
//! certificate or a bearer token, and kubectl run with one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use serde_json::json;

use crate::{Cluster, Kubectl};

/// Standard base64, as kubeconfigs and CSRs carry bytes.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Runs `command` without input and returns what it did; fails the test if it cannot start.
pub fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

/// Runs openssl in `dir`, failing the test with its stderr when it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = run(Command::new("openssl").current_dir(dir).args(args));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new P-256 key `<name>.key` and a certificate request `<name>.csr` for `subject`
/// (`/CN=alice/O=devs`) in `dir`; answers the request's PEM and the key's PEM.
pub fn p256_request(dir: &Path, name: &str, subject: &str) -> (String, String) {
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-subj",
            subject,
            "-out",
            &csr,
        ],
    );
    (read(dir, &csr), read(dir, &key))
}

/// The text of `dir/file`.
pub fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.join(file).display()))
}

/// How a kubeconfig's user authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// A client certificate and its key, PEM.
    Cert(&'a str, &'a str),
    /// A bearer token.
    Token(&'a str),
}

/// Writes to `path` a kubeconfig for `cluster`'s server as `credential`; answers the path.
pub fn kubeconfig(cluster: &Cluster, path: &Path, credential: Credential<'_>) -> PathBuf {
    let files = cluster
        .client_files()
        .unwrap_or_else(|e| panic!("the cluster's client files: {e:#}"));
    let ca = std::fs::read(&files.ca).unwrap_or_else(|e| panic!("reading the CA: {e}"));
    let user = match credential {
        Credential::Cert(crt, key) => json!({
            "client-certificate-data": b64(crt.as_bytes()),
            "client-key-data": b64(key.as_bytes()),
        }),
        Credential::Token(token) => json!({"token": token}),
    };
    let config = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": files.server, "certificate-authority-data": b64(&ca)}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    });
    std::fs::write(path, config.to_string())
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path.to_owned()
}

/// kubectl with the kubeconfig `config` instead of the admin's (its own cache next to it).
pub fn kubectl_as(kubectl: &Kubectl, config: &Path, args: &[&str]) -> Output {
    run(Command::new(&kubectl.path)
        .arg("--kubeconfig")
        .arg(config)
        .arg("--cache-dir")
        .arg(config.with_extension("cache"))
        .args(args))
}
