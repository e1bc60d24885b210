//! The authentication and authorization gate, as one tower layer in front of the router.
//!
//! It moves to `pkg/auth` (authenticators and authorizers behind their own traits) when RBAC
//! arrives; until then it is what kube-apiserver does with client certificates and RBAC's
//! bootstrap policy for the two identities that exist.
//!
//! Authentication (401): the listener records the certificates the client presented
//! ([`PeerCertificates`], one per connection). None: `system:anonymous` in
//! `system:unauthenticated`, as kube-apiserver's anonymous authenticator. A chain that verifies
//! against the client CA (for client auth, now): the user is its subject's CN and the groups its
//! O values, plus `system:authenticated` (upstream's `CommonNameUserConversion`; an empty CN is
//! no identity, hence anonymous). Anything else — another CA, expired, wrong usage — is a 401
//! `Status`, never a silent fall back to anonymous (upstream's union fails on error).
//!
//! Authorization (403): `system:masters` may do everything (upstream short-circuits that group
//! before any authorizer). Everyone else gets only what the bootstrap `system:public-info-viewer`
//! role grants `system:authenticated` and `system:unauthenticated`: GET on exactly `/healthz`,
//! `/livez`, `/readyz`, `/version` and `/version/` (the per-check sub-paths belong to
//! `system:monitoring`, which nobody holds yet).
//!
//! The identity goes on as a [`UserInfo`] request extension for the layers after this one. A
//! request that already carries one comes from inside the process (the loopback client,
//! [`crate::loopback`]) and is trusted as it is.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::http::{HeaderValue, Request, header};
use axum::response::{IntoResponse, Response};
use rkube_api::resources::GroupResource;
use rkube_api::status::ApiError;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;

use crate::x509;

/// The anonymous user's name.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// The group of requests without credentials.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The group every authenticated user is in.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The group that may do everything.
pub const MASTERS_GROUP: &str = crate::tls::MASTERS_GROUP;

/// Paths `system:public-info-viewer` lets anyone GET.
const PUBLIC_INFO_PATHS: [&str; 5] = ["/healthz", "/livez", "/readyz", "/version", "/version/"];

/// The certificates a client presented during the TLS handshake, leaf first; empty if none.
/// The listener puts it on every request of the connection.
///
/// The chain is verified once per connection (an ECDSA verification costs more than serving a
/// cached GET); each request then only checks that the certificate has not expired since.
#[derive(Debug, Clone, Default)]
pub struct PeerCertificates {
    certs: Arc<[CertificateDer<'static>]>,
    verified: Arc<OnceLock<Option<Verified>>>,
}

/// A verified client certificate: who it names and until when.
#[derive(Debug, Clone)]
struct Verified {
    user: UserInfo,
    not_after: i64,
}

impl PeerCertificates {
    /// The certificates of one connection, not yet verified.
    pub fn new(certs: Arc<[CertificateDer<'static>]>) -> Self {
        PeerCertificates {
            certs,
            verified: Arc::default(),
        }
    }
}

/// Who made a request: upstream's `user.Info` (name and groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name, e.g. `system:admin`.
    pub name: String,
    /// The groups, e.g. `system:masters`, `system:authenticated`.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// `system:anonymous` in `system:unauthenticated`.
    pub fn anonymous() -> Self {
        UserInfo {
            name: ANONYMOUS_USER.to_string(),
            groups: vec![UNAUTHENTICATED_GROUP.to_string()],
        }
    }
}

/// Authenticates by client certificate against a verifier (the client CA's).
#[derive(Debug, Clone)]
pub struct Authenticator {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl Authenticator {
    /// Checks client certificates with `verifier`.
    pub fn new(verifier: Arc<dyn ClientCertVerifier>) -> Self {
        Authenticator { verifier }
    }

    /// The identity behind `peer`, or `None` when the certificate must be refused (401).
    pub fn authenticate(&self, peer: Option<&PeerCertificates>) -> Option<UserInfo> {
        let Some(peer) = peer.filter(|p| !p.certs.is_empty()) else {
            return Some(UserInfo::anonymous());
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let verified = peer
            .verified
            .get_or_init(|| self.verify(&peer.certs, UnixTime::since_unix_epoch(now)))
            .as_ref()?;
        // A certificate that expired since the connection's first request is refused, as a
        // fresh verification would refuse it.
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        (now <= verified.not_after).then(|| verified.user.clone())
    }

    /// Verifies a chain against the client CA and reads the identity it names; `None` when it
    /// must be refused.
    fn verify(&self, certs: &[CertificateDer<'static>], now: UnixTime) -> Option<Verified> {
        let (leaf, intermediates) = certs.split_first()?;
        if let Err(e) = self.verifier.verify_client_cert(leaf, intermediates, now) {
            tracing::debug!(error = %e, "client certificate refused");
            return None;
        }
        let fields = x509::parse_certificate(leaf).ok()?;
        let mut name = None;
        let mut groups = Vec::new();
        for attribute in &fields.subject {
            match attribute.oid {
                // Go's pkix.Name keeps the last CN and every O, in order.
                x509::OID_COMMON_NAME => name = attribute.text(),
                x509::OID_ORGANIZATION => groups.extend(attribute.text()),
                _ => {}
            }
        }
        let user = match name {
            Some(name) if !name.is_empty() => {
                groups.push(AUTHENTICATED_GROUP.to_string());
                UserInfo { name, groups }
            }
            _ => UserInfo::anonymous(),
        };
        Some(Verified {
            user,
            not_after: fields.not_after,
        })
    }
}

/// Whether `user` may send `method` to `path`; the 403 `Status` if not.
pub fn authorize(user: &UserInfo, method: &str, path: &str) -> Result<(), Box<ApiError>> {
    if user.groups.iter().any(|g| g == MASTERS_GROUP) {
        return Ok(());
    }
    // A non-resource request's verb is its method, lowercased (upstream's RequestInfo).
    let verb = method.to_ascii_lowercase();
    if verb == "get" && PUBLIC_INFO_PATHS.contains(&path) {
        return Ok(());
    }
    // Paths reach us as valid request targets (printable ASCII), where `{:?}` is Go's `%q`.
    Err(Box::new(ApiError::forbidden(
        GroupResource::new("", ""),
        "",
        format!("User {:?} cannot {verb} path {path:?}", user.name),
    )))
}

/// A `Status` as a JSON response.
pub fn status_response(error: &ApiError) -> Response {
    let code = axum::http::StatusCode::from_u16(error.code())
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (code, error.to_json()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The tower layer: authenticates and authorizes, then passes the request on with its
/// [`UserInfo`].
#[derive(Debug, Clone)]
pub struct AuthLayer {
    authenticator: Authenticator,
}

impl AuthLayer {
    /// A gate authenticating with `authenticator`.
    pub fn new(authenticator: Authenticator) -> Self {
        AuthLayer { authenticator }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the router.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    authenticator: Authenticator,
}

impl<S, B> tower::Service<Request<B>> for Auth<S>
where
    S: tower::Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // In-process clients (`crate::loopback`) arrive already identified. Only code in this
        // process can set an extension: a network request's are built afresh by hyper, and a
        // remote client controls only headers and body, so this cannot be spoofed.
        let trusted = request.extensions().get::<UserInfo>().cloned();
        let Some(user) = trusted.or_else(|| {
            self.authenticator
                .authenticate(request.extensions().get::<PeerCertificates>())
        }) else {
            let refused = status_response(&ApiError::unauthorized("Unauthorized"));
            return Box::pin(std::future::ready(Ok(refused)));
        };
        if let Err(forbidden) = authorize(&user, request.method().as_str(), request.uri().path()) {
            tracing::debug!(user = %user.name, "{forbidden}");
            return Box::pin(std::future::ready(Ok(status_response(&forbidden))));
        }
        request.extensions_mut().insert(user);
        // The clone that was polled ready serves this request; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        Box::pin(ready.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masters() -> UserInfo {
        UserInfo {
            name: "system:admin".to_string(),
            groups: vec![MASTERS_GROUP.to_string(), AUTHENTICATED_GROUP.to_string()],
        }
    }

    #[test]
    fn anyone_may_get_public_info_and_nothing_else() {
        let anonymous = UserInfo::anonymous();
        for path in ["/healthz", "/livez", "/readyz", "/version", "/version/"] {
            assert_eq!(authorize(&anonymous, "GET", path), Ok(()), "{path}");
        }
        let err = authorize(&anonymous, "GET", "/api").unwrap_err();
        assert_eq!(err.code(), 403);
        assert_eq!(
            String::from_utf8(err.to_json()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"system:anonymous\" cannot get path \"/api\"","reason":"Forbidden","details":{},"code":403}"#
        );
        let err = authorize(&anonymous, "POST", "/version").unwrap_err();
        assert_eq!(
            err.message(),
            r#"forbidden: User "system:anonymous" cannot post path "/version""#
        );
        // Per-check paths are system:monitoring's, not public.
        assert!(authorize(&anonymous, "GET", "/readyz/etcd").is_err());
    }

    #[test]
    fn masters_may_do_everything() {
        for (method, path) in [("GET", "/api"), ("DELETE", "/x"), ("GET", "/readyz/etcd")] {
            assert_eq!(authorize(&masters(), method, path), Ok(()));
        }
    }

    #[test]
    fn unauthorized_is_upstreams_body() {
        assert_eq!(
            String::from_utf8(ApiError::unauthorized("Unauthorized").to_json()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
        );
    }
}

#[cfg(test)]
mod authentication_tests {
    use rustls::pki_types::pem::PemObject;

    use super::*;
    use crate::tls::{ClusterCerts, ServingNames};

    fn peer(pem: &str) -> PeerCertificates {
        PeerCertificates::new(vec![CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()].into())
    }

    #[test]
    fn certificates_name_the_user_or_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let names = ServingNames::for_node("node", "127.0.0.1".parse().unwrap());
        let certs = ClusterCerts::load_or_create(dir.path(), &names).unwrap();
        let authn = Authenticator::new(certs.client_verifier().unwrap());

        let admin = peer(&certs.admin_credentials().client_certificate);
        assert_eq!(
            authn.authenticate(Some(&admin)),
            Some(UserInfo {
                name: "system:admin".to_string(),
                groups: vec![MASTERS_GROUP.to_string(), AUTHENTICATED_GROUP.to_string()],
            })
        );
        assert_eq!(authn.authenticate(None), Some(UserInfo::anonymous()));
        assert_eq!(
            authn.authenticate(Some(&PeerCertificates::default())),
            Some(UserInfo::anonymous())
        );

        // The serving certificate is signed by the server CA and is not for clients.
        let serving = std::fs::read_to_string(
            dir.path()
                .join(crate::tls::TLS_DIR)
                .join("serving-kube-apiserver.crt"),
        )
        .unwrap();
        assert_eq!(authn.authenticate(Some(&peer(&serving))), None);

        // Same subject, self-signed: another CA.
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "system:admin");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, MASTERS_GROUP);
        let forged = params.self_signed(&key).unwrap().pem();
        assert_eq!(authn.authenticate(Some(&peer(&forged))), None);
    }
}
