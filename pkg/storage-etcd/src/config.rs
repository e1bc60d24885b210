//! How to reach etcd: endpoints, TLS files and the connect timeout, and their translation into
//! `etcd-client` options.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use rkube_storage::{Result, StorageError};

/// HTTP/2 keep-alive, as kube-apiserver dials etcd: a dead connection is noticed within
/// interval + timeout even while only a watch is open.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where etcd is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs, `http://host:port` or `https://host:port`.
    pub endpoints: Vec<String>,
    /// PEM CA bundle that signed the servers' certificates (`--datastore-cafile`).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (`--datastore-certfile`); needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate (`--datastore-keyfile`); needs `cert_file`.
    pub key_file: Option<PathBuf>,
    /// How long `connect` waits for the cluster to answer, and each TCP connect may take.
    pub connect_timeout: Duration,
}

impl EtcdConfig {
    /// Plain-text endpoints and a 5 s connect timeout.
    pub fn new(endpoints: Vec<String>) -> Self {
        EtcdConfig {
            endpoints,
            ca_file: None,
            cert_file: None,
            key_file: None,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The endpoints as one string, for error messages.
    pub(crate) fn describe(&self) -> String {
        self.endpoints.join(",")
    }

    /// Checks the endpoints and loads the TLS files into client options.
    pub(crate) fn connect_options(&self) -> Result<ConnectOptions> {
        self.options()
            .map_err(|e| StorageError::unavailable(e.to_string(), e))
    }

    fn options(&self) -> Result<ConnectOptions, ConfigError> {
        if self.endpoints.is_empty() {
            return Err(ConfigError::NoEndpoints);
        }
        let tls = self.tls()?;
        for endpoint in &self.endpoints {
            let https = endpoint.starts_with("https://");
            if !https && !endpoint.starts_with("http://") {
                return Err(ConfigError::Scheme(endpoint.clone()));
            }
            // etcd-client applies one TLS setting to every endpoint; a mix would either send
            // the client key over clear text or fail every handshake.
            match (https, tls.is_some()) {
                (true, false) => return Err(ConfigError::HttpsWithoutCa(endpoint.clone())),
                (false, true) => return Err(ConfigError::TlsOverHttp(endpoint.clone())),
                _ => {}
            }
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_keep_alive(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT)
            .with_keep_alive_while_idle(true);
        if let Some(tls) = tls {
            options = options.with_tls(tls);
        }
        Ok(options)
    }

    /// TLS options when any TLS file is configured.
    fn tls(&self) -> Result<Option<TlsOptions>, ConfigError> {
        if self.ca_file.is_none() && self.cert_file.is_none() && self.key_file.is_none() {
            return Ok(None);
        }
        let Some(ca_file) = &self.ca_file else {
            return Err(ConfigError::IdentityWithoutCa);
        };
        let ca = read_pem(ca_file, "CA", "CERTIFICATE")?;
        let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(ca));
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let cert = read_pem(cert, "client certificate", "CERTIFICATE")?;
                let key = read_pem(key, "client key", "PRIVATE KEY")?;
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            (None, None) => {}
            (Some(file), None) | (None, Some(file)) => {
                return Err(ConfigError::HalfIdentity(file.clone()));
            }
        }
        Ok(Some(tls))
    }

    /// The TLS files, for errors about a connection that failed.
    pub(crate) fn describe_tls(&self) -> String {
        [&self.ca_file, &self.cert_file, &self.key_file]
            .into_iter()
            .flatten()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What is wrong with an [`EtcdConfig`]. `connect` reports it as `StorageError::Unavailable`
/// (the datastore cannot be used) with this message as the context.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The endpoint list is empty.
    #[error("no etcd endpoints given")]
    NoEndpoints,
    /// An endpoint that is not an http(s) URL.
    #[error("etcd endpoint {0:?} must start with http:// or https://")]
    Scheme(String),
    /// An https endpoint without a CA to verify it by.
    #[error("etcd endpoint {0:?} is https but no CA file (--datastore-cafile) was given")]
    HttpsWithoutCa(String),
    /// TLS files together with a plain-text endpoint.
    #[error("etcd TLS files were given but endpoint {0:?} is plain http")]
    TlsOverHttp(String),
    /// A client certificate or key without the CA.
    #[error("an etcd client certificate or key was given without a CA file (--datastore-cafile)")]
    IdentityWithoutCa,
    /// Only one of the client certificate and key.
    #[error("etcd client certificate and key go together; only {} was given", .0.display())]
    HalfIdentity(PathBuf),
    /// A TLS file that cannot be read.
    #[error("cannot read etcd {what} file {}: {source}", .path.display())]
    Read {
        /// Which file (CA, client certificate, client key).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// A TLS file without the PEM block it should hold.
    #[error("etcd {what} file {} is not PEM: no \"-----BEGIN ...{label}-----\" block", .path.display())]
    NotPem {
        /// Which file (CA, client certificate, client key).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The PEM label expected.
        label: &'static str,
    },
}

/// Reads a PEM file and checks it holds a block whose label ends with `label`, so that a wrong
/// or truncated file is reported by name here rather than as a vague handshake failure later.
fn read_pem(path: &Path, what: &'static str, label: &'static str) -> Result<Vec<u8>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let has_block = text.lines().any(|line| {
        line.strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
            .is_some_and(|found| found.ends_with(label))
    }) && text.contains("-----END ");
    if !has_block {
        return Err(ConfigError::NotPem {
            what,
            path: path.to_path_buf(),
            label,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_files(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> EtcdConfig {
        EtcdConfig {
            ca_file: ca.map(Path::to_path_buf),
            cert_file: cert.map(Path::to_path_buf),
            key_file: key.map(Path::to_path_buf),
            ..EtcdConfig::new(vec!["https://127.0.0.1:2379".into()])
        }
    }

    #[test]
    fn missing_tls_file_is_named() {
        let err = with_files(Some(Path::new("/nonexistent/ca.pem")), None, None)
            .connect_options()
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn non_pem_tls_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let err = with_files(Some(&ca), None, None)
            .connect_options()
            .unwrap_err();
        assert!(err.to_string().contains(&*ca.to_string_lossy()), "{err}");
        assert!(err.to_string().contains("not PEM"), "{err}");
    }

    #[test]
    fn key_without_certificate_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let key = dir.path().join("key.pem");
        let err = with_files(Some(&ca), None, Some(&key))
            .connect_options()
            .unwrap_err();
        assert!(err.to_string().contains("key.pem"), "{err}");
    }

    #[test]
    fn endpoint_schemes_are_checked() {
        let bare = EtcdConfig::new(vec!["127.0.0.1:2379".into()]);
        assert!(bare.connect_options().is_err());
        let https_without_tls = EtcdConfig::new(vec!["https://127.0.0.1:2379".into()]);
        assert!(https_without_tls.connect_options().is_err());
        assert!(EtcdConfig::new(vec![]).connect_options().is_err());
        assert!(
            EtcdConfig::new(vec!["http://127.0.0.1:2379".into()])
                .connect_options()
                .is_ok()
        );
    }
}
