//! `--write-kubeconfig`: an admin kubeconfig pointing at this server, as k3s writes one.
//!
//! Today it carries no credentials and an `http://` server: the listener is plain HTTP until
//! TLS and authentication arrive with the Kubernetes API, and then this file gains the CA and
//! a client certificate.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

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
    format!("http://{}", SocketAddr::new(host, listening.port()))
}

/// The kubeconfig's text: cluster, user and context all named `default`, as k3s names them.
pub fn render(server: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- cluster:
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
  user: {{}}
"
    )
}

/// Writes the kubeconfig for `server` to `path` with mode 0600, replacing any old one
/// atomically (a client never reads a half-written file). Creates missing parent directories.
pub fn write(path: &Path, server: &str) -> Result<(), KubeconfigError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KubeconfigError { path, source }
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(err(dir))?;
    let file_name = path.file_name().ok_or_else(|| KubeconfigError {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(render(server).as_bytes())?;
            file.sync_all()
        })
        .map_err(err(&tmp))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(err(path)));
    if result.is_err() {
        // Best effort: the error that matters is the one being returned.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn loopback_for_wildcard_binds() {
        assert_eq!(
            server_url("0.0.0.0:6443".parse().unwrap()),
            "http://127.0.0.1:6443"
        );
        assert_eq!(
            server_url("[::]:6443".parse().unwrap()),
            "http://[::1]:6443"
        );
        assert_eq!(
            server_url("10.1.2.3:8080".parse().unwrap()),
            "http://10.1.2.3:8080"
        );
    }

    #[test]
    fn written_private_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/rkube/rkube.yaml");
        write(&path, "http://127.0.0.1:1").unwrap();
        write(&path, "http://127.0.0.1:2").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("    server: http://127.0.0.1:2\n"), "{text}");
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
        let err = write(&file.join("kubeconfig"), "http://x").unwrap_err();
        assert_eq!(err.path, file);
    }
}
