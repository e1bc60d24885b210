//! The cluster's certificates, under `<data-dir>/server/tls/` with k3s's file names, and the
//! listener's rustls configuration.
//!
//! [`ClusterCerts::load_or_create`] runs once at start:
//! - `server-ca.crt/key` and `client-ca.crt/key`: generated on the first start, loaded on every
//!   later one. They never change by themselves: kubeconfigs and clients out there trust them.
//! - `serving-kube-apiserver.crt/key`: the listener's certificate, signed by the server CA for
//!   every name a client may dial ([`ServingNames`]). Re-issued from the same CA when a name is
//!   missing (a new node IP), when it no longer chains to the CA, or when it expires within
//!   [`RENEW_BEFORE`].
//! - `client-admin.crt/key`: `system:admin` in `system:masters`, signed by the client CA; what
//!   `--write-kubeconfig` hands out. Re-issued the same way when it stops verifying.
//!
//! - `service.key`: [`ServiceAccountKey`], the key service account tokens are signed with
//!   (ES256); created on the first start and loaded on every later one, so issued tokens stay
//!   valid across restarts.
//!
//! Keys are ECDSA P-256, PKCS#8 PEM, mode 0600. A file that exists but cannot be read or
//! parsed stops the start with an error naming it: silently replacing a CA would lock every
//! client out.
//!
//! [`ClusterCerts::server_config`] builds the TLS side: ALPN `h2` and `http/1.1`, and client
//! certificates requested but optional ([`OptionalClientCert`]): kube-apiserver asks for one
//! without requiring it, and checks it in the authentication layer, where a bad one earns a
//! 401 `Status` rather than a failed handshake.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName as HintName, RootCertStore};

use crate::x509;

/// Where the certificates live, under the data dir.
pub const TLS_DIR: &str = "server/tls";
/// How long CAs are valid (k3s's ten years).
const CA_VALIDITY_YEARS: i16 = 10;
/// How long issued certificates are valid (k3s's one year).
const LEAF_VALIDITY_YEARS: i16 = 1;
/// Certificates that expire sooner than this are re-issued at start (k3s's 90 days).
pub const RENEW_BEFORE: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// The first address of the default service CIDR (10.43.0.0/16): the `kubernetes` Service.
pub const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 1);
/// The `kubernetes` Service's names, shortest first.
const KUBERNETES_SERVICE_NAMES: [&str; 4] = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];
/// The admin user written to the kubeconfig, and the group that may do everything.
pub const ADMIN_USER: &str = "system:admin";
/// See [`ADMIN_USER`].
pub const MASTERS_GROUP: &str = "system:masters";

/// A certificate file that could not be read, parsed, generated or written.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The TLS directory could not be created.
    #[error("creating {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the filesystem said.
        #[source]
        source: std::io::Error,
    },
    /// A file exists but could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the filesystem said.
        #[source]
        source: std::io::Error,
    },
    /// A file holds something other than the certificate or key it should.
    #[error("{path} is not a valid {what}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// `certificate` or `private key`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A CA's key is gone while its certificate remains: nothing can be signed with it, and
    /// replacing the CA would break every client that trusts it.
    #[error(
        "{key} is missing but {cert} exists: restore the key, or remove both to create a new CA"
    )]
    MissingKey {
        /// The certificate found.
        cert: PathBuf,
        /// The key not found.
        key: PathBuf,
    },
    /// A key does not belong to its certificate.
    #[error("{key} is not the private key of {cert}")]
    KeyMismatch {
        /// The certificate.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
    },
    /// rcgen could not generate a key or sign a certificate.
    #[error("generating {path}")]
    Generate {
        /// The file being generated.
        path: PathBuf,
        /// rcgen's complaint.
        #[source]
        source: rcgen::Error,
    },
    /// The system clock is outside what a certificate can say.
    #[error("computing certificate validity from the clock")]
    Clock(#[source] jiff::Error),
    /// A file could not be written.
    #[error(transparent)]
    Write(#[from] crate::files::WriteError),
    /// rustls refused the certificates for the listener or a verifier.
    #[error("configuring TLS with {path}")]
    Rustls {
        /// The certificate involved.
        path: PathBuf,
        /// rustls's complaint.
        #[source]
        source: rustls::Error,
    },
    /// rustls could not build a certificate verifier from a CA.
    #[error("using {path} as a trust anchor")]
    Verifier {
        /// The CA certificate.
        path: PathBuf,
        /// rustls's complaint.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
}

/// The names the serving certificate must be valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingNames {
    /// DNS names.
    pub dns: Vec<String>,
    /// IP addresses.
    pub ips: Vec<IpAddr>,
}

impl ServingNames {
    /// Loopback, `localhost`, `hostname`, this node's addresses (the bind address, or when
    /// bound to every address the ones outbound traffic leaves from), and the `kubernetes`
    /// Service's names and IP.
    pub fn for_node(hostname: &str, bind_address: IpAddr) -> Self {
        let mut names = ServingNames {
            dns: vec!["localhost".to_string()],
            ips: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
        };
        let hostname = hostname.to_ascii_lowercase();
        // A name no client could dial would make rcgen or the check refuse; leave it out.
        if ServerName::try_from(hostname.as_str())
            .is_ok_and(|n| matches!(n, ServerName::DnsName(_)))
        {
            names.dns.push(hostname);
        }
        names
            .dns
            .extend(KUBERNETES_SERVICE_NAMES.iter().map(|n| n.to_string()));
        names.ips.extend(node_addresses(bind_address));
        names.ips.push(IpAddr::V4(KUBERNETES_SERVICE_IP));
        dedup_in_order(&mut names.dns);
        dedup_in_order(&mut names.ips);
        names
    }

    fn server_names(&self) -> impl Iterator<Item = ServerName<'static>> + '_ {
        let dns = self
            .dns
            .iter()
            .filter_map(|n| ServerName::try_from(n.clone()).ok());
        let ips = self
            .ips
            .iter()
            .map(|ip| ServerName::IpAddress((*ip).into()));
        dns.chain(ips)
    }
}

/// This node's addresses: the bind address, or when bound to every address the ones outbound
/// traffic leaves from.
pub fn node_addresses(bind_address: IpAddr) -> Vec<IpAddr> {
    if bind_address.is_unspecified() {
        outbound_addresses()
    } else {
        vec![bind_address]
    }
}

/// Drops repeated items (a hostname of `localhost`, a bind address of `::1`), keeping order.
fn dedup_in_order<T: PartialEq + Clone>(items: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::with_capacity(items.len());
    items.retain(|item| {
        let new = !seen.contains(item);
        if new {
            seen.push(item.clone());
        }
        new
    });
}

/// The local addresses traffic to the outside leaves from, IPv4 and IPv6. Connecting a UDP
/// socket sends nothing; it only makes the kernel pick a route and a source address.
fn outbound_addresses() -> Vec<IpAddr> {
    let probes: [(&str, &str); 2] = [("0.0.0.0:0", "192.0.2.1:9"), ("[::]:0", "[2001:db8::1]:9")];
    probes
        .iter()
        .filter_map(|(local, remote)| {
            let socket = std::net::UdpSocket::bind(local).ok()?;
            socket.connect(remote).ok()?;
            let ip = socket.local_addr().ok()?.ip();
            (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
        })
        .collect()
}

/// A CA's certificate and private key, PEM.
#[derive(Clone)]
pub struct CaPem {
    /// The certificate.
    pub cert: String,
    /// The private key (PKCS#8).
    pub key: String,
}

impl std::fmt::Debug for CaPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CaPem").finish_non_exhaustive()
    }
}

impl CaPem {
    fn of(ca: &Ca) -> Self {
        CaPem {
            cert: ca.cert_pem.clone(),
            key: ca.issuer.key().serialize_pem(),
        }
    }
}

/// What k3s hands kube-controller-manager's `--cluster-signing-*` flags: the client CA signs
/// client certificates (users, kubelets), the server CA kubelet serving certificates.
#[derive(Debug, Clone)]
pub struct SigningCas {
    /// `client-ca`.
    pub client: CaPem,
    /// `server-ca`.
    pub server: CaPem,
}

/// A CA: its certificate and what signs with it.
struct Ca {
    cert_path: PathBuf,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// An issued certificate and its key, as PEM and as rustls takes them.
#[derive(Clone)]
struct Leaf {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
}

/// Everything the listener and the kubeconfig need, loaded or created.
#[derive(Clone)]
pub struct ClusterCerts {
    dir: PathBuf,
    server_ca_pem: String,
    server_ca_der: CertificateDer<'static>,
    client_ca_der: CertificateDer<'static>,
    signing: SigningCas,
    serving: Leaf,
    admin: Leaf,
}

impl std::fmt::Debug for ClusterCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCerts")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ClusterCerts {
    /// Loads the certificates under `<data_dir>/server/tls`, creating what is missing and
    /// re-issuing leaves that no longer fit (see the module docs). Blocking file I/O.
    pub fn load_or_create(data_dir: &Path, names: &ServingNames) -> Result<Self, TlsError> {
        let dir = create_tls_dir(data_dir)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let now = SystemTime::now();
        let renew_at = UnixTime::since_unix_epoch(
            now.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .saturating_add(RENEW_BEFORE),
        );

        let server_ca = Ca::load_or_create(&dir, "server-ca", "rkube-server-ca")?;
        let client_ca = Ca::load_or_create(&dir, "client-ca", "rkube-client-ca")?;

        let server_verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots(&server_ca)?),
            provider.clone(),
        )
        .build()
        .map_err(|source| TlsError::Verifier {
            path: server_ca.cert_path.clone(),
            source,
        })?;
        let serving = Leaf::load_or_issue(
            &dir,
            "serving-kube-apiserver",
            &server_ca,
            &serving_params(names),
            |cert| {
                names.server_names().try_for_each(|name| {
                    server_verifier
                        .verify_server_cert(cert, &[], &name, &[], renew_at)
                        .map(drop)
                        .map_err(|e| format!("not valid for {name:?} through renewal: {e}"))
                })
            },
        )?;

        let client_verifier = client_verifier(&client_ca.cert_der, &client_ca.cert_path)?;
        let admin = Leaf::load_or_issue(
            &dir,
            "client-admin",
            &client_ca,
            &client_params(ADMIN_USER, &[MASTERS_GROUP]),
            |cert| {
                client_verifier
                    .verify_client_cert(cert, &[], renew_at)
                    .map(drop)
                    .map_err(|e| format!("not valid through renewal: {e}"))
            },
        )?;

        let signing = SigningCas {
            client: CaPem::of(&client_ca),
            server: CaPem::of(&server_ca),
        };
        Ok(ClusterCerts {
            dir,
            signing,
            server_ca_pem: server_ca.cert_pem,
            server_ca_der: server_ca.cert_der,
            client_ca_der: client_ca.cert_der,
            serving,
            admin,
        })
    }

    /// The CAs the controller manager's CSR signers sign with.
    pub fn signing_cas(&self) -> &SigningCas {
        &self.signing
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server CA, PEM: what clients trust.
    pub fn server_ca_pem(&self) -> &str {
        &self.server_ca_pem
    }

    /// The server CA, DER.
    pub fn server_ca_der(&self) -> &CertificateDer<'static> {
        &self.server_ca_der
    }

    /// What the admin kubeconfig carries: the server CA and the admin certificate and key.
    pub fn admin_credentials(&self) -> crate::kubeconfig::Credentials {
        crate::kubeconfig::Credentials {
            certificate_authority: self.server_ca_pem.clone(),
            client_certificate: self.admin.cert_pem.clone(),
            client_key: self.admin.key_pem.clone(),
        }
    }

    /// The verifier client certificates are checked with: chains to the client CA, valid
    /// now, and allowed for client authentication.
    pub fn client_verifier(&self) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        client_verifier(&self.client_ca_der, &self.dir.join("client-ca.crt"))
    }

    /// The listener's TLS configuration: the serving certificate, ALPN `h2` then `http/1.1`,
    /// client certificates requested but not required.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let serving_path = self.dir.join("serving-kube-apiserver.crt");
        let rustls_err = |source| TlsError::Rustls {
            path: serving_path.clone(),
            source,
        };
        let key = PrivateKeyDer::from_pem_slice(self.serving.key_pem.as_bytes()).map_err(|e| {
            TlsError::Invalid {
                path: self.dir.join("serving-kube-apiserver.key"),
                what: "private key",
                reason: e.to_string(),
            }
        })?;
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(rustls_err)?
                .with_client_cert_verifier(Arc::new(OptionalClientCert(self.client_verifier()?)))
                .with_single_cert(vec![self.serving.cert_der.clone()], key)
                .map_err(rustls_err)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn roots(ca: &Ca) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.cert_der.clone())
        .map_err(|source| TlsError::Rustls {
            path: ca.cert_path.clone(),
            source,
        })?;
    Ok(roots)
}

fn client_verifier(
    ca: &CertificateDer<'static>,
    path: &Path,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).map_err(|source| TlsError::Rustls {
        path: path.to_path_buf(),
        source,
    })?;
    WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|source| TlsError::Verifier {
        path: path.to_path_buf(),
        source,
    })
}

/// Asks for a client certificate and checks that the client holds its key, but accepts any
/// certificate: whether it chains to the client CA is the authentication layer's question,
/// answered with a 401 `Status` (as kube-apiserver's `RequestClientCert` TLS mode does).
#[derive(Debug)]
pub struct OptionalClientCert(pub Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for OptionalClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// The client CA's name, so clients that pick a certificate by issuer pick the right one.
    fn root_hint_subjects(&self) -> &[HintName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Makes `params` valid from the start of yesterday (UTC, so a client whose clock lags a
/// little still accepts it) for `years`.
fn set_validity(params: &mut CertificateParams, years: i16) -> Result<(), TlsError> {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let start = today.yesterday().map_err(TlsError::Clock)?;
    let end = start
        .checked_add(jiff::Span::new().years(years))
        .map_err(TlsError::Clock)?;
    let ymd = |d: jiff::civil::Date| {
        rcgen::date_time_ymd(
            i32::from(d.year()),
            d.month().unsigned_abs(),
            d.day().unsigned_abs(),
        )
    };
    params.not_before = ymd(start);
    params.not_after = ymd(end);
    Ok(())
}

fn serving_params(names: &ServingNames) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.subject_alt_names = names
        .dns
        .iter()
        .filter_map(|n| n.clone().try_into().ok().map(SanType::DnsName))
        .chain(names.ips.iter().map(|ip| SanType::IpAddress(*ip)))
        .collect();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

fn client_params(user: &str, groups: &[&str]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    for group in groups {
        params
            .distinguished_name
            .push(DnType::OrganizationName, *group);
    }
    params.distinguished_name.push(DnType::CommonName, user);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

const CA_KEY_USAGES: [KeyUsagePurpose; 3] = [
    KeyUsagePurpose::KeyCertSign,
    KeyUsagePurpose::DigitalSignature,
    KeyUsagePurpose::CrlSign,
];

/// `<data_dir>/server/tls`, created (0700) when missing.
fn create_tls_dir(data_dir: &Path) -> Result<PathBuf, TlsError> {
    let dir = data_dir.join(TLS_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| TlsError::CreateDir {
            path: dir.clone(),
            source,
        })?;
    Ok(dir)
}

fn paths(dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    )
}

/// Reads a file that may be absent.
fn read_optional(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A PEM certificate file's first certificate.
fn parse_cert(path: &Path, pem: &str) -> Result<CertificateDer<'static>, TlsError> {
    let invalid = |reason: String| TlsError::Invalid {
        path: path.to_path_buf(),
        what: "certificate",
        reason,
    };
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            invalid("no PEM CERTIFICATE block in it".to_string())
        }
        e => invalid(e.to_string()),
    })?;
    x509::Certificate::parse(&der).map_err(|e| invalid(e.to_string()))?;
    Ok(der)
}

/// A PEM key file, checked against the certificate it belongs to.
fn parse_key(
    key_path: &Path,
    pem: &str,
    cert_path: &Path,
    cert: &CertificateDer<'_>,
) -> Result<KeyPair, TlsError> {
    use rcgen::PublicKeyData as _;
    let key = KeyPair::from_pem(pem).map_err(|e| TlsError::Invalid {
        path: key_path.to_path_buf(),
        what: "private key",
        reason: e.to_string(),
    })?;
    let spki = x509::Certificate::parse(cert)
        .map(|f| f.spki.to_vec())
        .unwrap_or_default();
    if key.subject_public_key_info() != spki {
        return Err(TlsError::KeyMismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
        });
    }
    Ok(key)
}

/// Writes a key (0600) and then its certificate (0644): a certificate on disk always has
/// its key next to it.
fn write_pair(
    cert_path: &Path,
    cert_pem: &str,
    key_path: &Path,
    key_pem: &str,
) -> Result<(), TlsError> {
    crate::files::write_atomic(key_path, key_pem.as_bytes(), 0o600)?;
    crate::files::write_atomic(cert_path, cert_pem.as_bytes(), 0o644)?;
    Ok(())
}

impl Ca {
    fn load_or_create(dir: &Path, stem: &str, cn_prefix: &str) -> Result<Ca, TlsError> {
        let (cert_path, key_path) = paths(dir, stem);
        let Some(cert_pem) = read_optional(&cert_path)? else {
            // No certificate means no CA was ever completed here (the key is written first),
            // so nothing can trust an old key: start afresh.
            return Ca::create(cert_path, &key_path, cn_prefix);
        };
        let cert_der = parse_cert(&cert_path, &cert_pem)?;
        let Some(key_pem) = read_optional(&key_path)? else {
            return Err(TlsError::MissingKey {
                cert: cert_path,
                key: key_path,
            });
        };
        let key = parse_key(&key_path, &key_pem, &cert_path, &cert_der)?;
        let params = issuer_params(&cert_path, &cert_der)?;
        Ok(Ca {
            issuer: Issuer::new(params, key),
            cert_path,
            cert_pem,
            cert_der,
        })
    }

    fn create(cert_path: PathBuf, key_path: &Path, cn_prefix: &str) -> Result<Ca, TlsError> {
        let generate = |source| TlsError::Generate {
            path: cert_path.clone(),
            source,
        };
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate)?;
        let mut params = CertificateParams::default();
        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        // k3s's naming: the creation time keeps CAs of rebuilt clusters apart.
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{cn_prefix}@{since_epoch}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = CA_KEY_USAGES.to_vec();
        set_validity(&mut params, CA_VALIDITY_YEARS)?;
        let cert = params.self_signed(&key).map_err(generate)?;
        let cert_pem = cert.pem();
        write_pair(&cert_path, &cert_pem, key_path, &key.serialize_pem())?;
        tracing::info!(path = %cert_path.display(), "created a certificate authority");
        Ok(Ca {
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            cert_path,
            cert_pem,
        })
    }
}

/// The service account signing key's file under the TLS directory (k3s's name).
pub const SERVICE_KEY_FILE: &str = "service.key";

/// The DER prefix of a P-256 public key's `SubjectPublicKeyInfo` (id-ecPublicKey,
/// prime256v1, then the 65-byte uncompressed point as a BIT STRING).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The key that signs service account tokens: ES256 JWTs whose `kid` is upstream's key id (the
/// base64url SHA-256 of the public key's DER `SubjectPublicKeyInfo`), so verifiers that follow
/// kube-apiserver's conventions find it.
pub struct ServiceAccountKey {
    pair: ring::signature::EcdsaKeyPair,
    key_id: String,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    /// Loads `<data_dir>/server/tls/service.key`, creating it on the first start. A file that
    /// exists but is not a P-256 key stops the start: replacing it would invalidate every
    /// token issued. Blocking file I/O.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, TlsError> {
        let path = create_tls_dir(data_dir)?.join(SERVICE_KEY_FILE);
        let invalid = |reason: String| TlsError::Invalid {
            path: path.clone(),
            what: "private key",
            reason,
        };
        let key = match read_optional(&path)? {
            Some(pem) => KeyPair::from_pem(&pem).map_err(|e| invalid(e.to_string()))?,
            None => {
                let key =
                    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| {
                        TlsError::Generate {
                            path: path.clone(),
                            source,
                        }
                    })?;
                crate::files::write_atomic(&path, key.serialize_pem().as_bytes(), 0o600)?;
                tracing::info!(path = %path.display(), "created the service account signing key");
                key
            }
        };
        let rng = ring::rand::SystemRandom::new();
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &rng,
        )
        .map_err(|e| invalid(format!("not an ECDSA P-256 key: {e}")))?;
        let key_id = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(ring::digest::digest(&ring::digest::SHA256, &spki(&pair)).as_ref());
        Ok(ServiceAccountKey { pair, key_id, rng })
    }

    /// The public key as a DER `SubjectPublicKeyInfo`, what a verifier needs.
    pub fn public_key_der(&self) -> Vec<u8> {
        spki(&self.pair)
    }

    /// The `kid` of the tokens this key signs.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

fn spki(pair: &ring::signature::EcdsaKeyPair) -> Vec<u8> {
    use ring::signature::KeyPair as _;
    [&P256_SPKI_PREFIX[..], pair.public_key().as_ref()].concat()
}

impl rkube_registry::TokenSigner for ServiceAccountKey {
    fn sign(
        &self,
        claims: &serde_json::Value,
    ) -> Result<String, rkube_registry::subresources::token::SignError> {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let header = serde_json::json!({"alg": "ES256", "kid": self.key_id});
        let signing_input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(&header)?),
            b64(&serde_json::to_vec(claims)?)
        );
        let signature = self
            .pair
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| "ECDSA signing failed")?;
        Ok(format!("{signing_input}.{}", b64(signature.as_ref())))
    }
}

/// What rcgen needs to sign as an existing CA: its exact subject (issuers are matched by
/// name) and its key identifier (clients match it against the issued certificates'
/// authority key identifier).
fn issuer_params(path: &Path, der: &CertificateDer<'_>) -> Result<CertificateParams, TlsError> {
    let invalid = |reason: String| TlsError::Invalid {
        path: path.to_path_buf(),
        what: "certificate",
        reason,
    };
    let fields = x509::Certificate::parse(der).map_err(|e| invalid(e.to_string()))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    for attribute in &fields.subject {
        let text = attribute
            .text()
            .ok_or_else(|| invalid("its subject has a value that is not text".to_string()))?;
        // Re-encoded with the same string type, so the issuer name matches byte for byte.
        let value = match attribute.tag {
            x509::tag::UTF8_STRING => DnValue::Utf8String(text.into_owned()),
            x509::tag::PRINTABLE_STRING => DnValue::PrintableString(
                text.into_owned()
                    .try_into()
                    .map_err(|e: rcgen::Error| invalid(e.to_string()))?,
            ),
            _ => {
                return Err(invalid(
                    "its subject uses a string type other than UTF8String or PrintableString"
                        .to_string(),
                ));
            }
        };
        let ty = DnType::from_oid(&attribute.oid_arcs());
        // rcgen keeps one value per attribute type; a second would silently replace the first
        // and the issuer name would no longer match.
        if params.distinguished_name.get(&ty).is_some() {
            return Err(invalid(
                "its subject repeats an attribute type, which rkube cannot sign under".to_string(),
            ));
        }
        params.distinguished_name.push(ty, value);
    }
    params.key_usages = CA_KEY_USAGES.to_vec();
    if let Some(key_id) = fields.subject_key_id {
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_id.to_vec());
    }
    Ok(params)
}

impl Leaf {
    /// Loads `<stem>.crt/key` if `still_good` accepts the certificate, else issues a new one
    /// from `ca` with `params`.
    fn load_or_issue(
        dir: &Path,
        stem: &str,
        ca: &Ca,
        params: &CertificateParams,
        still_good: impl Fn(&CertificateDer<'_>) -> Result<(), String>,
    ) -> Result<Leaf, TlsError> {
        let (cert_path, key_path) = paths(dir, stem);
        if let (Some(cert_pem), Some(key_pem)) =
            (read_optional(&cert_path)?, read_optional(&key_path)?)
        {
            let cert_der = parse_cert(&cert_path, &cert_pem)?;
            parse_key(&key_path, &key_pem, &cert_path, &cert_der)?;
            match still_good(&cert_der) {
                Ok(()) => {
                    return Ok(Leaf {
                        cert_pem,
                        key_pem,
                        cert_der,
                    });
                }
                Err(reason) => {
                    tracing::info!(path = %cert_path.display(), %reason, "re-issuing a certificate");
                }
            }
        }
        let generate = |source| TlsError::Generate {
            path: cert_path.clone(),
            source,
        };
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate)?;
        let mut params = params.clone();
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, LEAF_VALIDITY_YEARS)?;
        let cert = params.signed_by(&key, &ca.issuer).map_err(generate)?;
        let leaf = Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
        };
        write_pair(&cert_path, &leaf.cert_pem, &key_path, &leaf.key_pem)?;
        tracing::info!(path = %cert_path.display(), "issued a certificate");
        Ok(leaf)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn names(extra_ip: Option<IpAddr>) -> ServingNames {
        let mut names = ServingNames::for_node("Node-1", "127.0.0.1".parse().unwrap());
        names.ips.extend(extra_ip);
        names
    }

    fn read(dir: &Path, file: &str) -> String {
        std::fs::read_to_string(dir.join(TLS_DIR).join(file)).unwrap()
    }

    #[test]
    fn serving_names_cover_every_way_to_dial_the_server() {
        let names = ServingNames::for_node("Node-1", "10.1.2.3".parse().unwrap());
        assert_eq!(
            names.dns,
            [
                "localhost",
                "node-1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local"
            ]
        );
        let ips: Vec<String> = names.ips.iter().map(IpAddr::to_string).collect();
        assert_eq!(ips, ["127.0.0.1", "::1", "10.1.2.3", "10.43.0.1"]);
        // Not a DNS name: left out rather than failing the start.
        let odd = ServingNames::for_node("under_score!", "127.0.0.1".parse().unwrap());
        assert!(!odd.dns.iter().any(|n| n.contains('_')));
    }

    #[test]
    fn created_once_then_loaded_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let first = ClusterCerts::load_or_create(dir.path(), &names(None)).unwrap();
        for stem in [
            "server-ca",
            "client-ca",
            "serving-kube-apiserver",
            "client-admin",
        ] {
            let key = dir.path().join(TLS_DIR).join(format!("{stem}.key"));
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
            assert!(
                read(dir.path(), &format!("{stem}.crt")).starts_with("-----BEGIN CERTIFICATE-----")
            );
        }
        let files: Vec<String> = [
            "server-ca.crt",
            "client-ca.crt",
            "serving-kube-apiserver.crt",
            "client-admin.crt",
            "client-admin.key",
        ]
        .iter()
        .map(|f| read(dir.path(), f))
        .collect();
        let second = ClusterCerts::load_or_create(dir.path(), &names(None)).unwrap();
        assert_eq!(second.server_ca_pem(), first.server_ca_pem());
        assert_eq!(second.admin_credentials(), first.admin_credentials());
        let again: Vec<String> = [
            "server-ca.crt",
            "client-ca.crt",
            "serving-kube-apiserver.crt",
            "client-admin.crt",
            "client-admin.key",
        ]
        .iter()
        .map(|f| read(dir.path(), f))
        .collect();
        assert_eq!(files, again, "nothing is re-issued when nothing changed");
        second.server_config().unwrap();
    }

    #[test]
    fn the_admin_certificate_is_system_admin_in_system_masters() {
        let dir = tempfile::tempdir().unwrap();
        let certs = ClusterCerts::load_or_create(dir.path(), &names(None)).unwrap();
        let der =
            CertificateDer::from_pem_slice(certs.admin_credentials().client_certificate.as_bytes())
                .unwrap();
        let fields = x509::Certificate::parse(&der).unwrap();
        let subject: Vec<(Vec<u64>, String)> = fields
            .subject
            .iter()
            .map(|a| (a.oid_arcs(), a.text().unwrap().into_owned()))
            .collect();
        assert_eq!(
            subject,
            [
                (vec![2, 5, 4, 10], "system:masters".to_string()),
                (vec![2, 5, 4, 3], "system:admin".to_string()),
            ]
        );
    }

    #[test]
    fn a_new_node_ip_reissues_the_serving_certificate_from_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let first = ClusterCerts::load_or_create(dir.path(), &names(None)).unwrap();
        let serving = read(dir.path(), "serving-kube-apiserver.crt");
        let new_ip: IpAddr = "10.9.9.9".parse().unwrap();
        let second = ClusterCerts::load_or_create(dir.path(), &names(Some(new_ip))).unwrap();
        assert_ne!(read(dir.path(), "serving-kube-apiserver.crt"), serving);
        assert_eq!(second.server_ca_pem(), first.server_ca_pem());

        // The new certificate chains to the old CA and covers the new address.
        let mut roots = RootCertStore::empty();
        roots.add(first.server_ca_der().clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let now = UnixTime::now();
        for name in [
            ServerName::IpAddress(new_ip.into()),
            ServerName::try_from("kubernetes.default.svc.cluster.local").unwrap(),
            ServerName::IpAddress(IpAddr::V4(KUBERNETES_SERVICE_IP).into()),
        ] {
            verifier
                .verify_server_cert(&second.serving.cert_der, &[], &name, &[], now)
                .unwrap();
        }
        // The admin certificate did not need to change.
        assert_eq!(second.admin_credentials(), first.admin_credentials());
    }

    #[test]
    fn the_service_account_key_is_created_once_and_signs_verifiable_tokens() {
        use rkube_registry::TokenSigner as _;
        let dir = tempfile::tempdir().unwrap();
        let key = ServiceAccountKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(TLS_DIR).join(SERVICE_KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = ServiceAccountKey::load_or_create(dir.path()).unwrap();
        assert_eq!(key.key_id(), again.key_id());
        assert_eq!(key.public_key_der(), again.public_key_der());

        let token = key.sign(&serde_json::json!({"sub": "x"})).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let decode = |p: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap()
        };
        let header: serde_json::Value = serde_json::from_slice(&decode(parts[0])).unwrap();
        assert_eq!(
            header,
            serde_json::json!({"alg": "ES256", "kid": key.key_id()})
        );
        // The DER public key is what a verifier is handed; its last 65 bytes are the point.
        let der = again.public_key_der();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &der[P256_SPKI_PREFIX.len()..],
        )
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &decode(parts[2]),
        )
        .unwrap();

        std::fs::write(&path, "not a key").unwrap();
        let err = ServiceAccountKey::load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("service.key"), "{err}");
    }

    #[test]
    fn bad_files_stop_the_start_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        ClusterCerts::load_or_create(dir.path(), &names(None)).unwrap();
        let tls = dir.path().join(TLS_DIR);
        let good_key = std::fs::read(tls.join("client-ca.key")).unwrap();

        std::fs::write(tls.join("client-ca.crt"), "not a certificate").unwrap();
        let err = ClusterCerts::load_or_create(dir.path(), &names(None)).unwrap_err();
        assert!(err.to_string().contains("client-ca.crt"), "{err}");

        std::fs::write(tls.join("client-ca.crt"), read(dir.path(), "server-ca.crt")).unwrap();
        let err = ClusterCerts::load_or_create(dir.path(), &names(None)).unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
        assert!(err.to_string().contains("client-ca.key"), "{err}");

        std::fs::write(tls.join("client-ca.key"), good_key).unwrap();
        std::fs::remove_file(tls.join("server-ca.key")).unwrap();
        let err = ClusterCerts::load_or_create(dir.path(), &names(None)).unwrap_err();
        assert!(
            err.to_string().contains("server-ca.key is missing"),
            "{err}"
        );

        std::fs::write(tls.join("server-ca.key"), "garbage").unwrap();
        let err = ClusterCerts::load_or_create(dir.path(), &names(None)).unwrap_err();
        assert!(
            err.to_string()
                .contains("server-ca.key is not a valid private key"),
            "{err}"
        );
    }
}
