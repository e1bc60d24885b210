//! The gate: authentication, impersonation and authorization (DESIGN §3's filter order), as
//! one tower layer in front of the router, over `rkube-auth`'s authenticators and
//! authorizers.
//!
//! Per request: the [`RequestInfo`] (parsed once: by the listener, else here, and shared with
//! the router through the request's extensions) -> the user: a [`UserInfo`] extension set by
//! the in-process loopback client ([`crate::loopback`]), else the authenticator union (client
//! certificate, bearer token, anonymous; 401 on a bad credential) -> `Impersonate-*` headers
//! (400/403) -> the authorizer union (`system:masters`, Node, RBAC; 403 with upstream's
//! message) -> the router, with the user and the request info as extensions. When the request
//! is audited ([`crate::audit`]), the gate reports the user and the user impersonated to its
//! [`RequestAudit`], and its verdict to its audit annotations.
//!
//! Also here: the registry-backed [`ObjectLookup`] the token authenticators read service
//! accounts, pods and secrets through, and the service account issuer's discovery routes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use axum::Router;
use axum::http::{HeaderValue, Request, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rkube_api::audit::AuditAnnotations;
use rkube_api::status::{ApiError, Reason};
use rkube_apiserver::request_info::RequestInfo;
use rkube_auth::authn::service_account::{ObjectLookup, ServiceAccountTokens};
use rkube_auth::authn::{self, Credentials};
use rkube_auth::authz::{Attributes, Authorizer, forbidden};
use rkube_auth::impersonation;
use rkube_registry::Registry;
use rkube_registry::rest::{GetOptions, Scope};
use serde_json::Value;

use crate::audit::RequestAudit;
use crate::escalation;

pub use rkube_auth::UserInfo;
pub use rkube_auth::authn::PeerCertificates;
pub use rkube_auth::user::{
    ANONYMOUS_USER, AUTHENTICATED_GROUP, MASTERS_GROUP, UNAUTHENTICATED_GROUP,
};

/// The audit annotation with authorization's verdict, `allow` or `forbid`.
pub const DECISION_ANNOTATION: &str = "authorization.k8s.io/decision";

/// The audit annotation with the authorizer's reason (empty when it gave none).
pub const REASON_ANNOTATION: &str = "authorization.k8s.io/reason";

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

/// Who may pass and as whom.
#[derive(Debug)]
pub struct Gate {
    authenticator: authn::Union,
    authorizer: Arc<dyn Authorizer>,
}

impl Gate {
    /// A gate authenticating with `authenticator` and authorizing with `authorizer`.
    pub fn new(authenticator: authn::Union, authorizer: Arc<dyn Authorizer>) -> Self {
        Gate {
            authenticator,
            authorizer,
        }
    }

    /// Lets `request` through (with its user and request info as extensions), or answers the
    /// `Status` that refuses it.
    pub async fn check<B>(&self, request: &mut Request<B>) -> Result<(), Box<ApiError>> {
        let info = match request.extensions_mut().remove::<RequestInfo>() {
            Some(info) => info,
            None => {
                let uri = request.uri();
                RequestInfo::parse(request.method(), uri.path(), uri.query())
                    .map_err(|e| Box::new(ApiError::internal(e)))?
            }
        };
        // In-process clients (`crate::loopback`) arrive already identified. Only code in this
        // process can set an extension: a network request's are built afresh by hyper, and a
        // remote client controls only headers and body, so this cannot be spoofed.
        let user = match request.extensions().get::<UserInfo>().cloned() {
            Some(user) => user,
            None => {
                let credentials = Credentials {
                    headers: request.headers(),
                    peer: request.extensions().get::<PeerCertificates>(),
                };
                match self.authenticator.authenticate(&credentials).await {
                    Ok(Some(user)) => user,
                    Ok(None) => return Err(Box::new(ApiError::unauthorized("Unauthorized"))),
                    Err(e) => {
                        tracing::debug!(error = %e, "authentication failed");
                        return Err(Box::new(ApiError::unauthorized("Unauthorized")));
                    }
                }
            }
        };
        // Audit sits between authentication and impersonation: it records the caller as
        // authenticated, and the user impersonated.
        let audit = request.extensions().get::<RequestAudit>().cloned();
        if let Some(audit) = &audit {
            audit.authenticated(&user);
        }
        let user = if impersonation::requested(request.headers()) {
            let acting =
                impersonation::impersonate(request.headers(), &user, self.authorizer.as_ref())?;
            impersonation::strip(request.headers_mut());
            if let (Some(audit), Some(acting)) = (&audit, &acting) {
                audit.impersonated(acting);
            }
            acting.unwrap_or(user)
        } else {
            user
        };
        let attributes = Attributes {
            user: &user,
            verb: &info.verb,
            resource_request: info.is_resource_request,
            api_group: &info.api_group,
            api_version: &info.api_version,
            resource: &info.resource,
            subresource: &info.subresource,
            namespace: &info.namespace,
            name: &info.name,
            path: &info.path,
            field_selector: info.field_selector.as_ref(),
        };
        let decision = self.authorizer.authorize(&attributes);
        if let Some(annotations) = request.extensions().get::<AuditAnnotations>() {
            let verdict = if decision.allowed() {
                "allow"
            } else {
                "forbid"
            };
            annotations.add(DECISION_ANNOTATION, verdict);
            annotations.add(REASON_ANNOTATION, decision.reason());
        }
        if !decision.allowed() {
            let refused = forbidden(&attributes, decision.reason());
            tracing::debug!(user = %user.name, "{refused}");
            return Err(Box::new(refused));
        }
        request.extensions_mut().insert(user);
        request.extensions_mut().insert(info);
        Ok(())
    }
}

/// The tower layer: authenticates, impersonates and authorizes, then passes the request on.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    gate: Arc<Gate>,
}

impl AuthLayer {
    /// A layer checking every request with `gate`.
    pub fn new(gate: Gate) -> Self {
        AuthLayer {
            gate: Arc::new(gate),
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            gate: self.gate.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the router.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    gate: Arc<Gate>,
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
        // The clone that was polled ready serves this request; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            if let Err(refused) = gate.check(&mut request).await {
                return Ok(status_response(&refused));
            }
            // RBAC writes carry their caller to the escalation check.
            let caller = request
                .extensions()
                .get::<RequestInfo>()
                .filter(|i| escalation::is_rbac_write(&i.api_group, &i.subresource, &i.verb))
                .and(request.extensions().get::<UserInfo>())
                .cloned();
            match caller {
                Some(user) => escalation::CALLER.scope(user, ready.call(request)).await,
                None => ready.call(request).await,
            }
        })
    }
}

/// Service accounts, pods and secrets as the token authenticators read them: from the
/// registry, at the latest revision.
#[derive(Debug)]
pub struct RegistryLookup {
    registry: Arc<Registry>,
}

impl RegistryLookup {
    /// Reads through `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        RegistryLookup { registry }
    }
}

#[async_trait]
impl ObjectLookup for RegistryLookup {
    async fn get(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, String> {
        let served = rkube_api::resources::lookup("", "v1", resource)
            .and_then(|r| self.registry.rest(r, None))
            .ok_or_else(|| format!("{resource} is not served"))?;
        let scope = Scope {
            namespace: Some(namespace.to_owned()),
        };
        match served.get(&scope, name, &GetOptions::default()).await {
            Ok(object) => Ok(Some(object.into_value())),
            Err(e) if e.reason() == Reason::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// `/.well-known/openid-configuration` and `/openid/v1/jwks` (behind the gate: RBAC's
/// `system:service-account-issuer-discovery` decides who may read them).
pub fn discovery_routes(tokens: Arc<ServiceAccountTokens>) -> Router {
    let json = |value: Value, content_type: &'static str| {
        let mut response = serde_json::to_vec(&value)
            .unwrap_or_default()
            .into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    };
    let config = tokens.clone();
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                std::future::ready(json(config.openid_configuration(), "application/json"))
            }),
        )
        .route(
            "/openid/v1/jwks",
            get(move || std::future::ready(json(tokens.jwks(), "application/jwk-set+json"))),
        )
}

#[cfg(test)]
pub(crate) mod tests {
    use rkube_auth::authz::rbac::Kind;
    use rkube_auth::authz::{PrivilegedGroups, RbacAuthorizer, RbacIndex, Union};
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    use super::*;
    use crate::tls::{ClusterCerts, ServingNames};

    /// The authorizers `rkube server` runs, over the bootstrap policy alone.
    pub(crate) fn bootstrap_authorizer() -> Arc<dyn Authorizer> {
        let index = Arc::new(RbacIndex::new());
        let policy = crate::rbac::bootstrap_policy().unwrap();
        for kind in Kind::ALL {
            let objects: Vec<Value> = policy
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, o)| o.clone())
                .collect();
            index.replace(kind, &objects);
        }
        Arc::new(Union::new(vec![
            Arc::new(PrivilegedGroups(vec![MASTERS_GROUP.to_owned()])),
            Arc::new(RbacAuthorizer::new(index)),
        ]))
    }

    async fn check(
        gate: &Gate,
        user: Option<UserInfo>,
        method: &str,
        path: &str,
    ) -> Result<(), Box<ApiError>> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        if let Some(user) = user {
            request.extensions_mut().insert(user);
        }
        gate.check(&mut request).await
    }

    #[tokio::test]
    async fn anyone_may_get_public_info_and_masters_everything() {
        let gate = Gate::new(authn::Union::new(vec![], true), bootstrap_authorizer());
        for path in ["/healthz", "/livez", "/readyz", "/version", "/version/"] {
            assert!(check(&gate, None, "GET", path).await.is_ok(), "{path}");
        }
        let err = check(&gate, None, "GET", "/api").await.unwrap_err();
        assert_eq!(
            String::from_utf8(err.to_json()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"system:anonymous\" cannot get path \"/api\"","reason":"Forbidden","details":{},"code":403}"#
        );
        let err = check(&gate, None, "POST", "/version").await.unwrap_err();
        assert_eq!(
            err.message(),
            r#"forbidden: User "system:anonymous" cannot post path "/version""#
        );
        // Per-check paths are system:monitoring's, not public.
        assert!(check(&gate, None, "GET", "/readyz/etcd").await.is_err());
        let admin = UserInfo::new("system:admin", &[MASTERS_GROUP, AUTHENTICATED_GROUP]);
        for (method, path) in [
            ("GET", "/api"),
            ("DELETE", "/api/v1/namespaces/x"),
            ("GET", "/readyz/etcd"),
        ] {
            assert!(
                check(&gate, Some(admin.clone()), method, path)
                    .await
                    .is_ok()
            );
        }
        // Any authenticated user may discover the API.
        let bob = UserInfo::new("bob", &[AUTHENTICATED_GROUP]);
        assert!(
            check(&gate, Some(bob.clone()), "GET", "/apis/apps/v1")
                .await
                .is_ok()
        );
        let err = check(&gate, Some(bob), "GET", "/api/v1/namespaces/default/pods")
            .await
            .unwrap_err();
        assert_eq!(
            err.message(),
            r#"pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default""#
        );
    }

    /// A small seeded generator (xorshift): the same cases on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }

        fn bytes(&mut self, max: usize) -> Vec<u8> {
            let len = self.below(max + 1);
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    /// Malformed tokens, certificates, headers and paths thrown at the whole gate (every
    /// authenticator, impersonation, RBAC): only 400, 401 or 403 come back (500 only where
    /// upstream's request-info parse fails too), never a panic.
    #[tokio::test]
    async fn malformed_requests_are_refused_not_crashed() {
        use base64::Engine as _;
        use rkube_auth::authn::{
            BearerToken, TokenAuthenticator, bootstrap, service_account, token_file,
        };

        let dir = tempfile::tempdir().unwrap();
        let names = ServingNames::for_node("node", "127.0.0.1".parse().unwrap());
        let certs = ClusterCerts::load_or_create(dir.path(), &names).unwrap();
        let key = crate::tls::ServiceAccountKey::load_or_create(dir.path()).unwrap();
        let backend = Arc::new(rkube_storage_sqlite::SqliteBackend::open_in_memory().unwrap());
        let registry = Arc::new(Registry::new(Arc::new(rkube_storage::KvStore::new(
            backend,
        ))));
        let lookup = Arc::new(RegistryLookup::new(registry));
        let verifying =
            service_account::VerifyingKey::from_spki(&key.public_key_der(), key.key_id()).unwrap();
        let tokens: Vec<Arc<dyn TokenAuthenticator>> = vec![
            Arc::new(
                token_file::TokenFile::parse(std::path::Path::new("t.csv"), "good,alice,1,\"g\"\n")
                    .unwrap(),
            ),
            Arc::new(service_account::ServiceAccountTokens::new(
                "https://issuer",
                &["https://issuer"],
                verifying,
                lookup.clone(),
            )),
            Arc::new(bootstrap::BootstrapTokens::new(lookup)),
        ];
        let authn = authn::Union::new(
            vec![
                Arc::new(authn::CertAuthenticator::new(
                    certs.client_verifier().unwrap(),
                )),
                Arc::new(BearerToken::new(tokens)),
            ],
            true,
        );
        let gate = Gate::new(authn, bootstrap_authorizer());
        let admin_pem = certs.admin_credentials().client_certificate;
        let admin_der = CertificateDer::from_pem_slice(admin_pem.as_bytes())
            .unwrap()
            .to_vec();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let segments = [
            "api",
            "apis",
            "v1",
            "apps",
            "watch",
            "proxy",
            "namespaces",
            "default",
            "pods",
            "status",
            "",
            "..",
            "%00",
            "%zz",
            "x:y",
            "ü",
            "*",
            "openid",
            ".well-known",
            "healthz",
            "version",
        ];
        let methods = [
            "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "FOO",
        ];
        let header_names = [
            "authorization",
            "impersonate-user",
            "impersonate-group",
            "impersonate-uid",
            "impersonate-extra-scopes",
            "impersonate-extra-%zz",
            "impersonate-extra-a%2Fb",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for case in 0..3000 {
            let depth = rng.below(8);
            let path: Vec<&str> = (0..depth).map(|_| rng.pick(&segments)).collect();
            let mut uri = format!("/{}", path.join("/"));
            if rng.below(4) == 0 {
                uri.push_str(rng.pick(&["?watch=true", "?x=%", "?fieldSelector=a%3D", "?"]));
            }
            let Ok(mut request) = Request::builder()
                .method(rng.pick(&methods))
                .uri(&uri)
                .body(())
            else {
                continue;
            };
            for _ in 0..rng.below(4) {
                let value: Vec<u8> = match rng.below(7) {
                    0 => rng.bytes(40),
                    1 => format!("Bearer {}", String::from_utf8_lossy(&rng.bytes(30))).into_bytes(),
                    2 => format!(
                        "Bearer {}.{}.{}",
                        b64(&rng.bytes(20)),
                        b64(br#"{"iss":"https://issuer","exp":1}"#),
                        b64(&rng.bytes(64))
                    )
                    .into_bytes(),
                    3 => format!(
                        "Bearer {}.{}",
                        rng.pick(&["abcdef", "ABCDEF", "a", ""]),
                        rng.pick(&["0123456789abcdef", "x", ""])
                    )
                    .into_bytes(),
                    4 => b"Bearer good".to_vec(),
                    5 => rng
                        .pick(&[
                            "system:serviceaccount:a:b",
                            "system:serviceaccount::",
                            "",
                            "system:admin",
                        ])
                        .as_bytes()
                        .to_vec(),
                    _ => rng
                        .pick(&["Basic abc", "bearer", "Bearer  x", "Bearer a b c"])
                        .as_bytes()
                        .to_vec(),
                };
                let (Ok(name), Ok(value)) = (
                    http::HeaderName::from_bytes(rng.pick(&header_names).as_bytes()),
                    HeaderValue::from_bytes(&value),
                ) else {
                    continue;
                };
                request.headers_mut().append(name, value);
            }
            let certs: Vec<CertificateDer<'static>> = match rng.below(5) {
                0 => vec![],
                1 => vec![CertificateDer::from(rng.bytes(300))],
                2 => {
                    let mut der = admin_der.clone();
                    der.truncate(rng.below(der.len()));
                    vec![CertificateDer::from(der)]
                }
                3 => {
                    let mut der = admin_der.clone();
                    let at = rng.below(der.len());
                    der[at] ^= 1 << rng.below(8);
                    vec![CertificateDer::from(der)]
                }
                _ => vec![CertificateDer::from(admin_der.clone())],
            };
            if !certs.is_empty() {
                request
                    .extensions_mut()
                    .insert(PeerCertificates::new(certs.into()));
            }
            let parses = RequestInfo::parse(
                request.method(),
                request.uri().path(),
                request.uri().query(),
            )
            .is_ok();
            if let Err(refused) = gate.check(&mut request).await {
                let code = refused.code();
                assert!(
                    matches!(code, 400 | 401 | 403) || (code == 500 && !parses),
                    "case {case}: {uri}: {code} {}",
                    refused.message()
                );
            }
        }
    }

    #[test]
    fn unauthorized_is_upstreams_body() {
        assert_eq!(
            String::from_utf8(ApiError::unauthorized("Unauthorized").to_json()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
        );
    }

    fn peer(pem: &str) -> PeerCertificates {
        PeerCertificates::new(vec![CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()].into())
    }

    #[test]
    fn certificates_name_the_user_or_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let names = ServingNames::for_node("node", "127.0.0.1".parse().unwrap());
        let certs = ClusterCerts::load_or_create(dir.path(), &names).unwrap();
        let authn = authn::CertAuthenticator::new(certs.client_verifier().unwrap());

        let admin = peer(&certs.admin_credentials().client_certificate);
        assert_eq!(
            authn.authenticate_peer(&admin).unwrap(),
            Some(UserInfo::new("system:admin", &[MASTERS_GROUP]))
        );
        assert_eq!(
            authn
                .authenticate_peer(&PeerCertificates::default())
                .unwrap(),
            None
        );

        // The serving certificate is signed by the server CA and is not for clients.
        let serving = std::fs::read_to_string(
            dir.path()
                .join(crate::tls::TLS_DIR)
                .join("serving-kube-apiserver.crt"),
        )
        .unwrap();
        assert!(authn.authenticate_peer(&peer(&serving)).is_err());

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
        assert!(authn.authenticate_peer(&peer(&forged)).is_err());
    }
}
