//! `--write-kubeconfig`: an admin kubeconfig pointing at this server, as k3s writes one: the
//! server CA to trust, and the admin client certificate (`system:admin` in `system:masters`)
//! with its key, all inline as base64 PEM so the file stands alone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

/// The kubeconfig could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing kubeconfig {path}")]
pub struct KubeconfigError {
    /// The file (or its directory) that failed.
    pub path: PathBuf,
    /// What the filesystem said.
    #[source]
    pub source: std::io::Error,
}

/// The URL a client on this machine reaches the listener at: loopback when the listener is
/// bound to every address, else the bound address itself.
pub fn server_url(listening: SocketAddr) -> String {
    let host = match listening.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(host, listening.port()))
}

/// What a client needs to trust the server and prove who it is, each as PEM text.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The CA that signed the serving certificate.
    pub certificate_authority: String,
    /// The client certificate.
    pub client_certificate: String,
    /// The client certificate's private key.
    pub client_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

/// The kubeconfig's text: cluster, user and context all named `default`, as k3s names them.
pub fn render(server: &str, credentials: &Credentials) -> String {
    let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server}
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
        ca = b64(&credentials.certificate_authority),
        cert = b64(&credentials.client_certificate),
        key = b64(&credentials.client_key),
    )
}

/// Writes the kubeconfig `text` to `path` with mode 0600, replacing any old one atomically (a
/// client never reads a half-written file). Creates missing parent directories.
pub fn write(path: &Path, text: &str) -> Result<(), KubeconfigError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|source| KubeconfigError {
            path: dir.to_path_buf(),
            source,
        })?;
    crate::files::write_atomic(path, text.as_bytes(), 0o600).map_err(|e| KubeconfigError {
        path: e.path,
        source: e.source,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn loopback_for_wildcard_binds() {
        assert_eq!(
            server_url("0.0.0.0:6443".parse().unwrap()),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            server_url("[::]:6443".parse().unwrap()),
            "https://[::1]:6443"
        );
        assert_eq!(
            server_url("10.1.2.3:8080".parse().unwrap()),
            "https://10.1.2.3:8080"
        );
    }

    #[test]
    fn written_private_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/rkube/rkube.yaml");
        let credentials = Credentials {
            certificate_authority: "ca".to_string(),
            client_certificate: "cert".to_string(),
            client_key: "key".to_string(),
        };
        write(&path, &render("https://127.0.0.1:1", &credentials)).unwrap();
        write(&path, &render("https://127.0.0.1:2", &credentials)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("    server: https://127.0.0.1:2\n"), "{text}");
        assert!(
            text.contains("    certificate-authority-data: Y2E=\n"),
            "{text}"
        );
        assert!(
            text.contains("    client-certificate-data: Y2VydA==\n"),
            "{text}"
        );
        assert!(text.contains("    client-key-data: a2V5\n"), "{text}");
        assert!(text.contains("current-context: default\n"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary file is left behind.
        let entries = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1);
    }

    #[test]
    fn unwritable_location_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = write(&file.join("kubeconfig"), "").unwrap_err();
        assert_eq!(err.path, file);
    }
}
