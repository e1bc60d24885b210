//! The server's configuration: what `rkube server`'s flags mean once parsed.
//!
//! The command line (clap, in `cmd/rkube`) fills [`Config`]; the values that need more than a
//! type conversion — the datastore endpoint and Go-style durations — are parsed here so that
//! the same rules hold for flags, environment variables and in-process callers.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The datastore endpoint's scheme is not one rkube speaks.
    #[error(
        "unsupported datastore endpoint scheme {scheme:?} in {endpoint:?}: accepted schemes are \
         sqlite:// (sqlite:///absolute/path or sqlite://:memory:), http:// and https:// (etcd)"
    )]
    UnknownScheme {
        /// The scheme found.
        scheme: String,
        /// The whole endpoint as given.
        endpoint: String,
    },
    /// The datastore endpoint has no `scheme://` at all.
    #[error(
        "datastore endpoint {0:?} has no scheme: use sqlite:///absolute/path, sqlite://:memory: \
         or http(s)://host:port[,host:port...]"
    )]
    MissingScheme(String),
    /// A SQLite endpoint whose path is not absolute (the server's working directory is not a
    /// place to keep cluster state).
    #[error(
        "sqlite datastore path {path:?} must be absolute, as in sqlite:///var/lib/rkube/state.db"
    )]
    RelativeSqlitePath {
        /// The path given.
        path: String,
    },
    /// A SQLite endpoint with `?options`: kine's DSN parameters tune a driver rkube does not use.
    #[error(
        "sqlite datastore endpoint {0:?} has query parameters; rkube tunes SQLite itself and \
         accepts none"
    )]
    SqliteParameters(String),
    /// An etcd endpoint list without any host.
    #[error("etcd datastore endpoint {0:?} names no host: use http(s)://host:port[,host:port...]")]
    NoEtcdHosts(String),
    /// One host of an etcd endpoint list is malformed.
    #[error("etcd endpoint {endpoint:?} is not a valid URL: {source}")]
    BadEtcdEndpoint {
        /// The offending element.
        endpoint: String,
        /// The URL parser's complaint.
        #[source]
        source: url::ParseError,
    },
    /// One host of an etcd endpoint list is something other than `scheme://host[:port]`.
    #[error("etcd endpoint {0:?} must be scheme://host[:port] with no path, user or query")]
    EtcdEndpointShape(String),
    /// The etcd endpoints mix `http` and `https`.
    #[error("etcd endpoints {0:?} mix http and https; use one scheme for all")]
    MixedEtcdSchemes(String),
    /// A duration that is not Go's `1h2m3s` form.
    #[error("invalid duration {0:?}: use a number with a unit, e.g. 5m, 90s, 1h30m, or 0")]
    BadDuration(String),
}

/// Where the cluster's state lives, as given by `--datastore-endpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatastoreEndpoint {
    /// The embedded SQLite datastore in a file.
    Sqlite(PathBuf),
    /// The embedded SQLite datastore in memory (lost when the process exits; for tests).
    SqliteInMemory,
    /// An external etcd cluster: full `http(s)://host:port` URLs, one per member.
    Etcd(Vec<String>),
}

impl DatastoreEndpoint {
    /// The default datastore: SQLite at `<data-dir>/server/db/state.db`, as k3s lays it out.
    pub fn default_for(data_dir: &Path) -> Self {
        DatastoreEndpoint::Sqlite(data_dir.join("server").join("db").join("state.db"))
    }
}

impl FromStr for DatastoreEndpoint {
    type Err = ConfigError;

    /// Parses `sqlite:///abs/path`, `sqlite://:memory:` or `http(s)://host:port[,host:port...]`
    /// (a later element may omit the scheme and inherits the first one's, as k3s accepts).
    fn from_str(endpoint: &str) -> Result<Self, ConfigError> {
        let Some((scheme, rest)) = endpoint.split_once("://") else {
            return Err(ConfigError::MissingScheme(endpoint.to_string()));
        };
        match scheme {
            "sqlite" => {
                if rest.contains('?') {
                    return Err(ConfigError::SqliteParameters(endpoint.to_string()));
                }
                if rest == ":memory:" {
                    return Ok(DatastoreEndpoint::SqliteInMemory);
                }
                let path = Path::new(rest);
                if !path.is_absolute() {
                    return Err(ConfigError::RelativeSqlitePath {
                        path: rest.to_string(),
                    });
                }
                Ok(DatastoreEndpoint::Sqlite(path.to_path_buf()))
            }
            "http" | "https" => parse_etcd_endpoints(endpoint, scheme),
            other => Err(ConfigError::UnknownScheme {
                scheme: other.to_string(),
                endpoint: endpoint.to_string(),
            }),
        }
    }
}

/// Splits an etcd endpoint list into one normalized `scheme://host:port` URL per member.
fn parse_etcd_endpoints(endpoint: &str, scheme: &str) -> Result<DatastoreEndpoint, ConfigError> {
    let mut urls = Vec::new();
    for element in endpoint.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let full = if element.contains("://") {
            element.to_string()
        } else {
            format!("{scheme}://{element}")
        };
        let url = url::Url::parse(&full).map_err(|source| match source {
            url::ParseError::EmptyHost => ConfigError::NoEtcdHosts(endpoint.to_string()),
            source => ConfigError::BadEtcdEndpoint {
                endpoint: element.to_string(),
                source,
            },
        })?;
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err(ConfigError::NoEtcdHosts(endpoint.to_string()));
        };
        if url.scheme() != scheme {
            return Err(if matches!(url.scheme(), "http" | "https") {
                ConfigError::MixedEtcdSchemes(endpoint.to_string())
            } else {
                ConfigError::UnknownScheme {
                    scheme: url.scheme().to_string(),
                    endpoint: endpoint.to_string(),
                }
            });
        }
        if !matches!(url.path(), "" | "/")
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(ConfigError::EtcdEndpointShape(element.to_string()));
        }
        // etcd's client port when none is given, as etcdctl assumes.
        let port = url.port().unwrap_or(2379);
        urls.push(format!("{scheme}://{host}:{port}"));
    }
    if urls.is_empty() {
        return Err(ConfigError::NoEtcdHosts(endpoint.to_string()));
    }
    Ok(DatastoreEndpoint::Etcd(urls))
}

/// Client TLS material for an external datastore (`--datastore-cafile/-certfile/-keyfile`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatastoreTls {
    /// CA bundle that verifies the datastore's serving certificate.
    pub ca_file: Option<PathBuf>,
    /// Client certificate presented to the datastore.
    pub cert_file: Option<PathBuf>,
    /// Key of the client certificate.
    pub key_file: Option<PathBuf>,
}

/// Everything `rkube server` needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Root of the server's state (`--data-dir`).
    pub data_dir: PathBuf,
    /// The datastore (`--datastore-endpoint`); `None` is SQLite under the data dir.
    pub datastore_endpoint: Option<DatastoreEndpoint>,
    /// TLS for an etcd datastore.
    pub datastore_tls: DatastoreTls,
    /// Address the API listener binds (`--bind-address`).
    pub bind_address: IpAddr,
    /// Port the API listener binds (`--https-listen-port`); 0 picks a free one.
    pub https_listen_port: u16,
    /// Where to write an admin kubeconfig once the server listens (`--write-kubeconfig`).
    pub write_kubeconfig: Option<PathBuf>,
    /// Run without the node agent (`--disable-agent`). The agent does not exist yet, so this is
    /// the only mode; the flag is accepted so k3s command lines keep working.
    pub disable_agent: bool,
    /// This node's name (`--node-name`).
    pub node_name: String,
    /// How often old revisions are compacted (`--compaction-interval`); zero disables it.
    pub compaction_interval: Duration,
    /// Static bearer tokens (`--token-auth-file`): upstream's CSV `token,user,uid,"groups"`.
    pub token_auth_file: Option<PathBuf>,
    /// The admission plugins' configuration (`--admission-control-config-file`): an
    /// `apiserver.config.k8s.io/v1` `AdmissionConfiguration`.
    pub admission_control_config_file: Option<PathBuf>,
    /// Audit logging (`--audit-policy-file`, `--audit-log-*`).
    pub audit: crate::audit::AuditOptions,
}

impl Config {
    /// The defaults `rkube server` starts with, under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>, node_name: impl Into<String>) -> Self {
        Config {
            data_dir: data_dir.into(),
            datastore_endpoint: None,
            datastore_tls: DatastoreTls::default(),
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            https_listen_port: 6443,
            write_kubeconfig: None,
            disable_agent: false,
            node_name: node_name.into(),
            compaction_interval: Duration::from_secs(5 * 60),
            token_auth_file: None,
            admission_control_config_file: None,
            audit: crate::audit::AuditOptions::default(),
        }
    }

    /// The datastore actually used: the one configured, or SQLite under the data dir.
    pub fn datastore(&self) -> DatastoreEndpoint {
        self.datastore_endpoint
            .clone()
            .unwrap_or_else(|| DatastoreEndpoint::default_for(&self.data_dir))
    }
}

/// This machine's hostname, lowercased as k3s does for the default node name (node names are
/// DNS labels, which are lowercase).
pub fn hostname() -> Result<String, HostnameError> {
    let path = "/proc/sys/kernel/hostname";
    let name = std::fs::read_to_string(path).map_err(|source| HostnameError { source })?;
    Ok(name.trim().to_lowercase())
}

/// The hostname could not be read; pass `--node-name`.
#[derive(Debug, thiserror::Error)]
#[error("reading the hostname from /proc/sys/kernel/hostname (pass --node-name instead)")]
pub struct HostnameError {
    /// Why it could not be read.
    #[source]
    pub source: std::io::Error,
}

/// Parses a Go-style duration (`5m`, `90s`, `1h30m`, `250ms`, or a bare `0`), the form
/// kube-apiserver and k3s flags take.
pub fn parse_duration(text: &str) -> Result<Duration, ConfigError> {
    let bad = || ConfigError::BadDuration(text.to_string());
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let amount: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "h" => Duration::from_secs(3600),
            "m" => Duration::from_secs(60),
            "s" => Duration::from_secs(1),
            "ms" => Duration::from_millis(1),
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let part = u32::try_from(amount)
            .ok()
            .and_then(|n| unit.checked_mul(n))
            .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DatastoreEndpoint, ConfigError> {
        s.parse()
    }

    #[test]
    fn sqlite_endpoints() {
        assert_eq!(
            parse("sqlite:///var/lib/rkube/state.db"),
            Ok(DatastoreEndpoint::Sqlite("/var/lib/rkube/state.db".into()))
        );
        assert_eq!(
            parse("sqlite://:memory:"),
            Ok(DatastoreEndpoint::SqliteInMemory)
        );
        assert_eq!(
            parse("sqlite://state.db"),
            Err(ConfigError::RelativeSqlitePath {
                path: "state.db".into()
            })
        );
        assert_eq!(
            parse("sqlite:///x.db?_journal=WAL"),
            Err(ConfigError::SqliteParameters(
                "sqlite:///x.db?_journal=WAL".into()
            ))
        );
    }

    #[test]
    fn etcd_endpoints_are_normalized() {
        assert_eq!(
            parse("https://10.0.0.1:2379,https://10.0.0.2:2379"),
            Ok(DatastoreEndpoint::Etcd(vec![
                "https://10.0.0.1:2379".into(),
                "https://10.0.0.2:2379".into()
            ]))
        );
        // Later hosts inherit the scheme; a missing port is etcd's client port.
        assert_eq!(
            parse("http://a:1234,b"),
            Ok(DatastoreEndpoint::Etcd(vec![
                "http://a:1234".into(),
                "http://b:2379".into()
            ]))
        );
    }

    #[test]
    fn bad_endpoints_say_what_is_wrong() {
        let err = parse("mysql://root@tcp(db:3306)/k3s").unwrap_err();
        assert!(matches!(&err, ConfigError::UnknownScheme { scheme, .. } if scheme == "mysql"));
        let message = err.to_string();
        assert!(
            message.contains("\"mysql\"") && message.contains("sqlite://"),
            "{message}"
        );
        assert!(matches!(parse("http://"), Err(ConfigError::NoEtcdHosts(_))));
        assert!(matches!(
            parse("https://,"),
            Err(ConfigError::NoEtcdHosts(_))
        ));
        assert!(matches!(
            parse("/var/lib/x.db"),
            Err(ConfigError::MissingScheme(_))
        ));
        assert!(matches!(
            parse("http://a:2379,https://b:2379"),
            Err(ConfigError::MixedEtcdSchemes(_))
        ));
        assert!(matches!(
            parse("http://a:2379/v3"),
            Err(ConfigError::EtcdEndpointShape(_))
        ));
        assert!(matches!(
            parse("http://a:notaport"),
            Err(ConfigError::BadEtcdEndpoint { .. })
        ));
    }

    #[test]
    fn default_datastore_is_sqlite_under_data_dir() {
        let config = Config::new("/var/lib/rkube", "node1");
        assert_eq!(
            config.datastore(),
            DatastoreEndpoint::Sqlite("/var/lib/rkube/server/db/state.db".into())
        );
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "5", "m", "5x", "-5m", "1.5h", "5m3"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }
}
