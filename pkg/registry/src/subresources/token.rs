//! [`TokenRest`]: `POST serviceaccounts/<name>/token`, a TokenRequest answered with a signed
//! service account JWT (upstream's `TokenREST` with `token.Claims`), as `kubectl create token`
//! and the kubelet's projected volumes ask for them.
//!
//! The registry builds the claims; a [`TokenSigner`] the server hands in signs them, so that
//! the authenticator can verify tokens with the same key without the registry knowing it.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use rkube_api::field::{FieldError, Path};
use rkube_api::meta;
use rkube_api::resources::{GroupKind, GroupResource, Resource};
use rkube_api::status::ApiError;
use rkube_storage::Object;
use serde_json::{Map, Value, json};

use crate::generic::{GenericRest, format_time};
use crate::rest::{Answer, CreateOptions, Rest, Result, Scope};

/// The `iss` of every token, and the first API audience (k3s's
/// `--service-account-issuer`).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The API server's audiences (k3s's `--api-audiences`): a TokenRequest without audiences gets
/// these, and tokens for them are the ones the API server itself accepts.
pub const API_AUDIENCES: &[&str] = &[ISSUER, "k3s"];

/// `expirationSeconds` when the request leaves it out (`SetDefaults_TokenRequestSpec`).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest lifetime a token may ask for (upstream's `MinTokenAgeSec`).
const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The longest (2^32 seconds).
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// The lifetime the kubelet asks for pod tokens; such tokens are issued for a year instead and
/// carry `warnafter` (upstream's `WarnOnlyBoundTokenExpirationSeconds` and
/// `--service-account-extend-token-expiration`, on by default).
const WARN_ONLY_EXPIRATION_SECONDS: i64 = 3607;
/// How long such an extended token lives (`ExpirationExtensionSeconds`).
const EXTENDED_EXPIRATION_SECONDS: i64 = 365 * 24 * 60 * 60;

/// The error a signer reports; answered as upstream's `failed to generate token` 500.
pub type SignError = Box<dyn std::error::Error + Send + Sync>;

/// Signs service account token claims: returns the JWS compact serialization
/// (`header.payload.signature`, base64url without padding) of `claims`.
pub trait TokenSigner: Send + Sync + fmt::Debug + 'static {
    /// Signs `claims` (a JSON object).
    fn sign(&self, claims: &Value) -> Result<String, SignError>;
}

/// `serviceaccounts/token`. See the [module docs](self).
#[derive(Debug)]
pub struct TokenRest {
    service_accounts: Arc<GenericRest>,
    pods: Arc<GenericRest>,
    nodes: Arc<GenericRest>,
    secrets: Arc<GenericRest>,
    signer: Arc<dyn TokenSigner>,
}

/// The objects a token can be bound to, read from storage.
#[derive(Debug, Default)]
struct Bound {
    pod: Option<Value>,
    node: Option<Value>,
    secret: Option<Value>,
}

impl TokenRest {
    /// Issues tokens for `service_accounts`, bound to objects of `pods`, `nodes` or `secrets`,
    /// signed by `signer`.
    pub fn new(
        service_accounts: Arc<GenericRest>,
        pods: Arc<GenericRest>,
        nodes: Arc<GenericRest>,
        secrets: Arc<GenericRest>,
        signer: Arc<dyn TokenSigner>,
    ) -> Self {
        TokenRest {
            service_accounts,
            pods,
            nodes,
            secrets,
            signer,
        }
    }

    /// The bound object of `reference` (`spec.boundObjectRef`), checked as upstream does.
    async fn bound(&self, scope: &Scope, sa_name: &str, reference: &Value) -> Result<Bound> {
        let text = |f: &str| reference.get(f).and_then(Value::as_str).unwrap_or_default();
        let (api_version, kind, name) = (text("apiVersion"), text("kind"), text("name"));
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let mut bound = Bound::default();
        let object = match (group, kind) {
            ("", "Pod") => {
                let pod = self.pods.current(scope, name).await?.into_value();
                let runs_as = pod
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if runs_as != sa_name {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
                    )));
                }
                let node_name = pod
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !node_name.is_empty() {
                    // A missing node still names itself in the claims, without a uid.
                    bound.node = Some(match self.nodes.current(scope, node_name).await {
                        Ok(node) => node.into_value(),
                        Err(e) if e.code() == 404 => json!({"metadata": {"name": node_name}}),
                        Err(e) => return Err(ApiError::internal(e)),
                    });
                }
                bound.pod.insert(pod).clone()
            }
            ("", "Node") => {
                let node = self.nodes.current(scope, name).await?.into_value();
                bound.node.insert(node).clone()
            }
            ("", "Secret") => {
                let secret = self.secrets.current(scope, name).await?.into_value();
                bound.secret.insert(secret).clone()
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token to object of type {group}/{version}, Kind={kind}"
                )));
            }
        };
        let wanted = text("uid");
        let actual = meta::uid(&object).unwrap_or_default();
        if !wanted.is_empty() && wanted != actual {
            return Err(ApiError::conflict(
                GroupResource::new(group, kind),
                name,
                format!(
                    "the UID in the bound object reference ({wanted}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        Ok(bound)
    }
}

/// `ValidateTokenRequest`.
fn validate(expiration: i64) -> Vec<FieldError> {
    let path = Path::new("spec").child("expirationSeconds");
    let mut errs = Vec::new();
    if expiration < MIN_EXPIRATION_SECONDS {
        errs.push(FieldError::invalid(
            &path,
            expiration,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        errs.push(FieldError::invalid(
            &path,
            expiration,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    errs
}

/// `{name, uid}` of an object, as the `kubernetes.io` claim names them.
fn reference(object: &Value) -> Value {
    let mut r = Map::new();
    for field in ["name", "uid"] {
        if let Some(v) = meta::field(object, field).filter(|v| !v.is_empty()) {
            r.insert(field.into(), v.into());
        }
    }
    Value::Object(r)
}

/// Upstream's `token.Claims` plus the issuer.
fn claims(
    service_account: &Value,
    bound: &Bound,
    audiences: &[Value],
    issued_at: i64,
    lifetime: i64,
    warn_after: Option<i64>,
) -> Value {
    let namespace = meta::namespace(service_account).unwrap_or_default();
    let name = meta::name(service_account).unwrap_or_default();
    let mut kubernetes = json!({
        "namespace": namespace,
        "serviceaccount": reference(service_account),
    });
    if let Some(pod) = &bound.pod {
        kubernetes["pod"] = reference(pod);
    }
    if let Some(secret) = &bound.secret {
        kubernetes["secret"] = reference(secret);
    }
    if let Some(node) = &bound.node {
        kubernetes["node"] = reference(node);
    }
    if let Some(w) = warn_after {
        kubernetes["warnafter"] = json!(issued_at + w);
    }
    json!({
        "iss": ISSUER,
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "aud": audiences,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + lifetime,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": kubernetes,
    })
}

#[async_trait]
impl Rest for TokenRest {
    fn resource(&self) -> &'static Resource {
        self.service_accounts.served()
    }

    async fn create(
        &self,
        scope: &Scope,
        request: Value,
        options: &CreateOptions,
    ) -> Result<Answer<Object>> {
        // Admission sees the request as sent, before defaulting (NodeRestriction: a node's
        // tokens must be bound to its pods).
        let mut request = options.admission.admit_request(request).await?;
        let name = meta::name(&request).unwrap_or_default().to_string();
        let service_account = self.service_accounts.current(scope, &name).await?;
        let key = service_account.key().to_string();
        let service_account = service_account.into_value();
        let sa_uid = meta::uid(&service_account).unwrap_or_default().to_string();
        let mut warnings = Vec::new();
        if let Some(meta) = meta::metadata_mut(&mut request) {
            let sent_uid = meta.get("uid").and_then(Value::as_str).unwrap_or_default();
            if sent_uid.is_empty() {
                meta.insert("uid".into(), sa_uid.clone().into());
            } else if sent_uid != sa_uid {
                warnings.push(format!(
                    "the UID in the token request ({sent_uid}) does not match the UID of the service account ({sa_uid}) but TokenRequestServiceAccountUIDValidation is not enabled. In the future, this will return a conflict error"
                ));
            }
            if let Some(ns) = meta::namespace(&service_account) {
                meta.insert("namespace".into(), ns.into());
            }
        }
        if !request.get("spec").is_some_and(Value::is_object) {
            request["spec"] = json!({});
        }
        let spec = &mut request["spec"];
        if spec
            .get("audiences")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            spec["audiences"] = json!(API_AUDIENCES);
        }
        let expiration = match spec.get("expirationSeconds") {
            None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
            Some(v) => v.as_i64().unwrap_or(0),
        };
        spec["expirationSeconds"] = json!(expiration);
        let now = jiff::Timestamp::now();
        request["metadata"]["creationTimestamp"] = format_time(now).into();
        if let Some(map) = request.as_object_mut() {
            map.remove("status");
        }
        let errs = validate(expiration);
        if !errs.is_empty() {
            return Err(ApiError::invalid(
                GroupKind::new("authentication.k8s.io", "TokenRequest"),
                "",
                &errs,
            ));
        }
        let bound = match request["spec"]
            .get("boundObjectRef")
            .filter(|r| !r.is_null())
        {
            Some(reference) => self.bound(scope, &name, reference).await?,
            None => Bound::default(),
        };
        let audiences = request["spec"]["audiences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let kube_audiences = audiences
            .iter()
            .all(|a| a.as_str().is_some_and(|a| API_AUDIENCES.contains(&a)));
        let (lifetime, warn_after) = if bound.pod.is_some()
            && expiration == WARN_ONLY_EXPIRATION_SECONDS
            && kube_audiences
        {
            (EXTENDED_EXPIRATION_SECONDS, Some(expiration))
        } else {
            (expiration, None)
        };
        let claims = claims(
            &service_account,
            &bound,
            &audiences,
            now.as_second(),
            lifetime,
            warn_after,
        );
        let token = self
            .signer
            .sign(&claims)
            .map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;
        let expires = now
            .checked_add(jiff::SignedDuration::from_secs(expiration))
            .map_err(ApiError::internal)?;
        request["status"] = json!({
            "token": token,
            "expirationTimestamp": format_time(expires),
        });
        let answer = Object::new(key, request, 0).map_err(ApiError::internal)?;
        Ok(Answer {
            value: answer,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_name_the_account_and_what_the_token_is_bound_to() {
        let sa = json!({"metadata": {"name": "default", "namespace": "ns", "uid": "sa-uid"}});
        let bound = Bound {
            pod: Some(json!({"metadata": {"name": "web", "uid": "pod-uid"}})),
            node: Some(json!({"metadata": {"name": "n1"}})),
            secret: None,
        };
        let c = claims(&sa, &bound, &[json!("api")], 1000, 3600, None);
        assert_eq!(c["iss"], ISSUER);
        assert_eq!(c["sub"], "system:serviceaccount:ns:default");
        assert_eq!(c["aud"], json!(["api"]));
        assert_eq!(
            (c["iat"].as_i64(), c["nbf"].as_i64(), c["exp"].as_i64()),
            (Some(1000), Some(1000), Some(4600))
        );
        assert!(c["jti"].as_str().is_some_and(|j| j.len() == 36));
        assert_eq!(
            c["kubernetes.io"],
            json!({
                "namespace": "ns",
                "serviceaccount": {"name": "default", "uid": "sa-uid"},
                "pod": {"name": "web", "uid": "pod-uid"},
                "node": {"name": "n1"},
            })
        );
        let extended = claims(
            &sa,
            &bound,
            &[],
            1000,
            EXTENDED_EXPIRATION_SECONDS,
            Some(3607),
        );
        assert_eq!(extended["kubernetes.io"]["warnafter"], 4607);
    }

    #[test]
    fn expiration_limits() {
        let err = ApiError::invalid(
            GroupKind::new("authentication.k8s.io", "TokenRequest"),
            "",
            &validate(300),
        );
        assert_eq!(
            err.message(),
            r#"TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"#
        );
        assert!(validate(600).is_empty());
        assert_eq!(validate((1 << 32) + 1).len(), 1);
    }
}
