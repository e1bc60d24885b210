//! Service account tokens: ES256 JWTs signed with the server's service account key.
//!
//! Bound tokens (`serviceaccounts/token`, issuer = the API server's) are checked as upstream's
//! `validator`: signature, `exp`/`nbf` with upstream's one-minute leeway, an audience the API
//! server accepts, and that the service account and the pod or secret the token is bound to
//! still exist with the uids in the claims (a deleted pod invalidates its tokens). Legacy
//! tokens (issuer `kubernetes/serviceaccount`, stored in `kubernetes.io/service-account-token`
//! Secrets) are valid while their Secret holds them and the account exists.
//!
//! The objects are read through an [`ObjectLookup`] the server provides, so this crate never
//! sees the registry. The same key serves `/openid/v1/jwks` ([`ServiceAccountTokens::jwks`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rkube_api::field::go_quote;
use serde_json::{Value, json};

use super::{Audiences, AuthnError, TokenAuthenticator, constant_time_eq};
use crate::user::{UserInfo, service_account_groups, service_account_user};

/// The issuer of legacy, Secret-based tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// Clock skew tolerated on `exp` and `nbf` (go-jose's default leeway).
const LEEWAY_SECONDS: i64 = 60;
/// The length of an uncompressed P-256 point.
const P256_POINT_LEN: usize = 65;

/// Reads core/v1 objects (`serviceaccounts`, `pods`, `secrets`) by namespace and name.
#[async_trait]
pub trait ObjectLookup: Send + Sync + fmt::Debug {
    /// The object, `None` if it does not exist; an error if it could not be read.
    async fn get(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, String>;
}

/// The public half of the service account key.
#[derive(Clone)]
pub struct VerifyingKey {
    point: Vec<u8>,
    key_id: String,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl VerifyingKey {
    /// The key of a P-256 `SubjectPublicKeyInfo` (DER), named `key_id` in token headers and
    /// the JWKS; `None` if it is not a P-256 key.
    pub fn from_spki(spki: &[u8], key_id: &str) -> Option<Self> {
        // The point is the SPKI's last 65 bytes (0x04 || x || y) behind a fixed prefix.
        let point = spki.get(spki.len().checked_sub(P256_POINT_LEN)?..)?;
        (spki.len() == 26 + P256_POINT_LEN && point[0] == 4).then(|| VerifyingKey {
            point: point.to_vec(),
            key_id: key_id.to_owned(),
        })
    }

    fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &self.point,
        )
        .verify(signing_input, signature)
        .is_ok()
    }
}

/// The service account token authenticator.
#[derive(Debug, Clone)]
pub struct ServiceAccountTokens {
    issuer: String,
    audiences: Vec<String>,
    key: VerifyingKey,
    lookup: Arc<dyn ObjectLookup>,
}

/// A token's parts once its signature checked out.
struct Verified {
    claims: Value,
}

impl ServiceAccountTokens {
    /// Accepts tokens of `issuer` for any of `audiences`, signed by `key`, whose objects
    /// `lookup` reads.
    pub fn new(
        issuer: &str,
        audiences: &[&str],
        key: VerifyingKey,
        lookup: Arc<dyn ObjectLookup>,
    ) -> Self {
        ServiceAccountTokens {
            issuer: issuer.to_owned(),
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            key,
            lookup,
        }
    }

    /// The issuer of bound tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `/openid/v1/jwks`: the verifying key as a JSON Web Key Set.
    pub fn jwks(&self) -> Value {
        let (x, y) = self.key.point[1..].split_at(32);
        json!({"keys": [{
            "use": "sig",
            "kty": "EC",
            "kid": self.key.key_id,
            "crv": "P-256",
            "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        }]})
    }

    /// `/.well-known/openid-configuration`, upstream's discovery document.
    pub fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/openid/v1/jwks", self.issuer),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }

    /// The claims of `token` if it is a JWT of one of our issuers; `Ok(None)` if it is not
    /// ours at all; an error if it is ours but its signature is wrong.
    fn verify(&self, token: &str) -> Result<Option<Verified>, AuthnError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let decode_json = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        };
        let (Some(header), Some(claims)) = (decode_json(header), decode_json(payload)) else {
            return Ok(None);
        };
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if issuer != self.issuer && issuer != LEGACY_ISSUER {
            return Ok(None);
        }
        let invalid = || AuthnError::Token("token signature is invalid".into());
        if header.get("alg").and_then(Value::as_str) != Some("ES256") {
            return Err(invalid());
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
        let signed = token.len() - token.rsplit('.').next().map_or(0, str::len) - 1;
        if !self.key.verify(&token.as_bytes()[..signed], &signature) {
            return Err(invalid());
        }
        Ok(Some(Verified { claims }))
    }

    /// The target audiences among `targets` the token of `claims` is valid for (upstream's
    /// check, made before any other): those of its `aud` claim, or the API server's for a
    /// token without one (legacy tokens).
    fn audiences(&self, claims: &Value, targets: &[String]) -> Result<Vec<String>, AuthnError> {
        let mut ours: Vec<String> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        if ours.is_empty() {
            ours = self.audiences.clone();
        }
        let shared = super::intersect(&ours, targets);
        if shared.is_empty() && !self.audiences.is_empty() {
            return Err(AuthnError::Token(format!(
                "token audiences {} is invalid for the target audiences {}",
                go_list(&ours),
                go_list(targets)
            )));
        }
        Ok(shared)
    }

    /// A bound token's user, after its time and object checks.
    async fn bound(&self, claims: &Value, now: i64) -> Result<UserInfo, AuthnError> {
        let int = |field: &str| claims.get(field).and_then(Value::as_i64);
        if int("exp").is_some_and(|exp| now > exp + LEEWAY_SECONDS) {
            return Err(AuthnError::Token(
                "service account token has expired".into(),
            ));
        }
        if int("nbf").is_some_and(|nbf| now < nbf - LEEWAY_SECONDS) {
            return Err(AuthnError::Token(
                "service account token is not valid yet".into(),
            ));
        }
        let private = claims.get("kubernetes.io").unwrap_or(&Value::Null);
        let reference = |kind: &str| {
            let r = private.get(kind)?;
            let text = |f: &str| {
                r.get(f)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            Some((text("name"), text("uid")))
        };
        let namespace = private
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (sa_name, sa_uid) = reference("serviceaccount")
            .filter(|(name, _)| !namespace.is_empty() && !name.is_empty())
            .ok_or_else(|| {
                AuthnError::Token("service account token claims are incomplete".into())
            })?;
        let deadline = now - LEEWAY_SECONDS;
        self.check_alive(
            "serviceaccounts",
            "service account",
            namespace,
            &sa_name,
            &sa_uid,
            deadline,
        )
        .await?;
        let mut user = UserInfo {
            name: service_account_user(namespace, &sa_name),
            uid: sa_uid,
            groups: service_account_groups(namespace),
            ..UserInfo::default()
        };
        if let Some((name, uid)) = reference("secret") {
            self.check_alive("secrets", "secret", namespace, &name, &uid, deadline)
                .await?;
        }
        let mut extra = |key: &str, value: String| {
            user.extra
                .insert(format!("authentication.kubernetes.io/{key}"), vec![value]);
        };
        if let Some((name, uid)) = reference("pod") {
            self.check_alive("pods", "pod", namespace, &name, &uid, deadline)
                .await?;
            extra("pod-name", name);
            extra("pod-uid", uid);
        }
        if let Some((name, uid)) = reference("node") {
            extra("node-name", name);
            if !uid.is_empty() {
                extra("node-uid", uid);
            }
        }
        if let Some(jti) = claims.get("jti").and_then(Value::as_str) {
            extra("credential-id", format!("JTI={jti}"));
        }
        Ok(user)
    }

    /// A legacy token's user: its Secret must still hold exactly this token.
    async fn legacy(&self, token: &str, claims: &Value) -> Result<UserInfo, AuthnError> {
        let text = |field: &str| {
            claims
                .get(format!("kubernetes.io/serviceaccount/{field}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let (namespace, secret_name) = (text("namespace"), text("secret.name"));
        let (sa_name, sa_uid) = (text("service-account.name"), text("service-account.uid"));
        if namespace.is_empty() || secret_name.is_empty() || sa_name.is_empty() {
            return Err(AuthnError::Token(
                "service account token claims are incomplete".into(),
            ));
        }
        let secret = self
            .lookup
            .get("secrets", namespace, secret_name)
            .await
            .map_err(AuthnError::Lookup)?
            .filter(|s| s.pointer("/metadata/deletionTimestamp").is_none());
        let stored = secret
            .as_ref()
            .and_then(|s| s.pointer("/data/token"))
            .and_then(Value::as_str)
            .and_then(|t| STANDARD.decode(t).ok());
        if !stored.is_some_and(|stored| constant_time_eq(&stored, token.as_bytes())) {
            return Err(AuthnError::Token(format!(
                "token of secret {namespace}/{secret_name} has been revoked"
            )));
        }
        self.check_alive(
            "serviceaccounts",
            "service account",
            namespace,
            sa_name,
            sa_uid,
            i64::MAX,
        )
        .await?;
        Ok(UserInfo {
            name: service_account_user(namespace, sa_name),
            uid: sa_uid.to_owned(),
            groups: service_account_groups(namespace),
            ..UserInfo::default()
        })
    }

    /// That `namespace/name` of `resource` exists, has `uid` (when the claim has one) and was
    /// not deleted before `deadline` (upstream's messages).
    async fn check_alive(
        &self,
        resource: &str,
        what: &str,
        namespace: &str,
        name: &str,
        uid: &str,
        deadline: i64,
    ) -> Result<(), AuthnError> {
        let gone = || AuthnError::Token(format!("{what} {namespace}/{name} has been deleted"));
        let object = self
            .lookup
            .get(resource, namespace, name)
            .await
            .map_err(AuthnError::Lookup)?
            .ok_or_else(gone)?;
        let actual = rkube_api::meta::uid(&object).unwrap_or_default();
        if !uid.is_empty() && actual != uid {
            return Err(AuthnError::Token(format!(
                "{what} UID ({actual}) does not match claim ({uid})"
            )));
        }
        let deleted = object
            .pointer("/metadata/deletionTimestamp")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        if deleted.is_some_and(|t| t.as_second() < deadline) {
            return Err(gone());
        }
        Ok(())
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_seconds() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A list as Go's `%q` prints it: `["a" "b"]`.
fn go_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| go_quote(i)).collect();
    format!("[{}]", quoted.join(" "))
}

#[async_trait]
impl TokenAuthenticator for ServiceAccountTokens {
    async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        let ours = Audiences {
            implicit: &self.audiences,
            targets: &self.audiences,
        };
        Ok(self
            .authenticate_for(token, ours)
            .await?
            .map(|(user, _)| user))
    }

    /// Upstream's JWT authenticator: the token's own audiences (never the server's implicit
    /// ones, unless it has none) must meet the targets.
    async fn authenticate_for(
        &self,
        token: &str,
        audiences: Audiences<'_>,
    ) -> Result<Option<(UserInfo, Vec<String>)>, AuthnError> {
        let Some(Verified { claims }) = self.verify(token)? else {
            return Ok(None);
        };
        let shared = self.audiences(&claims, audiences.targets)?;
        let user = if claims.get("iss").and_then(Value::as_str) == Some(LEGACY_ISSUER) {
            self.legacy(token, &claims).await?
        } else {
            self.bound(&claims, now_seconds()).await?
        };
        Ok(Some((user, shared)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// Objects by `(resource, namespace, name)`.
    #[derive(Debug, Default)]
    pub(crate) struct Objects(pub(crate) Mutex<HashMap<(String, String, String), Value>>);

    impl Objects {
        pub(crate) fn put(&self, resource: &str, namespace: &str, name: &str, object: Value) {
            self.0
                .lock()
                .unwrap()
                .insert((resource.into(), namespace.into(), name.into()), object);
        }
    }

    #[async_trait]
    impl ObjectLookup for Objects {
        async fn get(
            &self,
            resource: &str,
            namespace: &str,
            name: &str,
        ) -> Result<Option<Value>, String> {
            let key = (resource.to_owned(), namespace.to_owned(), name.to_owned());
            Ok(self.0.lock().unwrap().get(&key).cloned())
        }
    }

    struct Signer(ring::signature::EcdsaKeyPair);

    impl Signer {
        fn new() -> (Signer, VerifyingKey) {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &key.serialize_der(),
                &ring::rand::SystemRandom::new(),
            )
            .unwrap();
            use rcgen::PublicKeyData as _;
            let verifying = VerifyingKey::from_spki(&key.subject_public_key_info(), "kid").unwrap();
            (Signer(pair), verifying)
        }

        fn sign(&self, claims: &Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"kid"}"#),
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
            );
            let sig = self
                .0
                .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
                .unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }
    }

    const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

    fn claims(exp_in: i64, pod_uid: &str) -> Value {
        let now = now_seconds();
        json!({
            "iss": ISSUER, "aud": [ISSUER], "iat": now, "nbf": now, "exp": now + exp_in,
            "sub": "system:serviceaccount:ns:sa", "jti": "j1",
            "kubernetes.io": {
                "namespace": "ns",
                "serviceaccount": {"name": "sa", "uid": "sa-uid"},
                "pod": {"name": "web", "uid": pod_uid},
            },
        })
    }

    #[tokio::test]
    async fn tokens_answer_the_audiences_they_share_with_the_targets() {
        let (signer, key) = Signer::new();
        let objects = Arc::new(Objects::default());
        objects.put(
            "serviceaccounts",
            "ns",
            "sa",
            json!({"metadata": {"uid": "sa-uid"}}),
        );
        objects.put("pods", "ns", "web", json!({"metadata": {"uid": "pod-uid"}}));
        let api = vec![ISSUER.to_owned(), "k3s".to_owned()];
        let authn = ServiceAccountTokens::new(ISSUER, &[ISSUER, "k3s"], key, objects);
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let present = |claims: &Value, targets: &[&str]| {
            let (token, targets, authn, api) = (
                signer.sign(claims),
                strings(targets),
                authn.clone(),
                api.clone(),
            );
            async move {
                let audiences = Audiences {
                    implicit: &api,
                    targets: &targets,
                };
                authn
                    .authenticate_for(&token, audiences)
                    .await
                    .map(|found| found.map(|(_, shared)| shared))
            }
        };
        let mut vault = claims(3600, "pod-uid");
        vault["aud"] = json!(["vault", "db"]);
        assert_eq!(
            present(&vault, &["db", "other", "vault"]).await,
            Ok(Some(strings(&["db", "vault"])))
        );
        // Not for the API server, whose audiences are the default targets.
        assert_eq!(
            present(&vault, &[ISSUER, "k3s"]).await,
            Err(AuthnError::Token(format!(
                r#"token audiences ["vault" "db"] is invalid for the target audiences ["{ISSUER}" "k3s"]"#
            )))
        );
        assert_eq!(
            present(&claims(3600, "pod-uid"), &["k3s", ISSUER]).await,
            Ok(Some(strings(&[ISSUER])))
        );
        // The audience is checked before anything else, as upstream does.
        let mut expired = vault.clone();
        expired["exp"] = json!(now_seconds() - 3600);
        assert!(matches!(
            present(&expired, &["k3s"]).await,
            Err(AuthnError::Token(e)) if e.starts_with("token audiences")
        ));
    }

    #[tokio::test]
    async fn bound_tokens_live_as_long_as_what_they_are_bound_to() {
        let (signer, key) = Signer::new();
        let objects = Arc::new(Objects::default());
        objects.put(
            "serviceaccounts",
            "ns",
            "sa",
            json!({"metadata": {"uid": "sa-uid"}}),
        );
        objects.put("pods", "ns", "web", json!({"metadata": {"uid": "pod-uid"}}));
        let authn = ServiceAccountTokens::new(ISSUER, &[ISSUER], key, objects.clone());

        let token = signer.sign(&claims(3600, "pod-uid"));
        let user = authn.authenticate_token(&token).await.unwrap().unwrap();
        assert_eq!(user.name, "system:serviceaccount:ns:sa");
        assert_eq!(user.uid, "sa-uid");
        assert_eq!(
            user.groups,
            ["system:serviceaccounts", "system:serviceaccounts:ns"]
        );
        assert_eq!(user.extra["authentication.kubernetes.io/pod-name"], ["web"]);
        assert_eq!(
            user.extra["authentication.kubernetes.io/credential-id"],
            ["JTI=j1"]
        );

        let refused = |token: String| {
            let authn = authn.clone();
            async move {
                authn
                    .authenticate_token(&token)
                    .await
                    .unwrap_err()
                    .to_string()
            }
        };
        assert_eq!(
            refused(signer.sign(&claims(-120, "pod-uid"))).await,
            "service account token has expired"
        );
        assert_eq!(
            refused(signer.sign(&claims(3600, "other"))).await,
            "pod UID (pod-uid) does not match claim (other)"
        );
        let mut wrong_audience = claims(3600, "pod-uid");
        wrong_audience["aud"] = json!(["vault"]);
        assert!(
            refused(signer.sign(&wrong_audience))
                .await
                .starts_with("token audiences")
        );
        // Another key's signature.
        let (other, _) = Signer::new();
        assert_eq!(
            refused(other.sign(&claims(3600, "pod-uid"))).await,
            "token signature is invalid"
        );
        // Tampered payload.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut tampered = claims(3600, "pod-uid");
        tampered["kubernetes.io"]["serviceaccount"]["name"] = json!("admin");
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&tampered).unwrap());
        assert_eq!(refused(parts.join(".")).await, "token signature is invalid");
        // Not a JWT, or another issuer's: not ours to judge.
        assert_eq!(authn.authenticate_token("abc.def").await, Ok(None));
        let mut foreign = claims(3600, "pod-uid");
        foreign["iss"] = json!("https://accounts.example.com");
        assert_eq!(
            authn.authenticate_token(&signer.sign(&foreign)).await,
            Ok(None)
        );

        objects
            .0
            .lock()
            .unwrap()
            .remove(&("pods".into(), "ns".into(), "web".into()));
        assert_eq!(refused(token).await, "pod ns/web has been deleted");
    }

    #[tokio::test]
    async fn legacy_tokens_live_while_their_secret_holds_them() {
        let (signer, key) = Signer::new();
        let objects = Arc::new(Objects::default());
        objects.put(
            "serviceaccounts",
            "ns",
            "sa",
            json!({"metadata": {"uid": "sa-uid"}}),
        );
        let authn = ServiceAccountTokens::new(ISSUER, &[ISSUER], key, objects.clone());
        let token = signer.sign(&json!({
            "iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": "ns",
            "kubernetes.io/serviceaccount/secret.name": "sa-token",
            "kubernetes.io/serviceaccount/service-account.name": "sa",
            "kubernetes.io/serviceaccount/service-account.uid": "sa-uid",
        }));
        objects.put(
            "secrets",
            "ns",
            "sa-token",
            json!({"data": {"token": STANDARD.encode(&token)}}),
        );
        assert_eq!(
            authn
                .authenticate_token(&token)
                .await
                .unwrap()
                .unwrap()
                .name,
            "system:serviceaccount:ns:sa"
        );
        objects.put(
            "secrets",
            "ns",
            "sa-token",
            json!({"data": {"token": "b3RoZXI="}}),
        );
        assert!(authn.authenticate_token(&token).await.is_err());
    }

    #[test]
    fn jwks_and_discovery_name_the_key() {
        let (_, key) = Signer::new();
        let authn = ServiceAccountTokens::new(ISSUER, &[ISSUER], key, Arc::new(Objects::default()));
        let jwks = authn.jwks();
        assert_eq!(jwks["keys"][0]["kid"], "kid");
        assert_eq!(jwks["keys"][0]["x"].as_str().unwrap().len(), 43);
        assert_eq!(
            authn.openid_configuration()["jwks_uri"],
            format!("{ISSUER}/openid/v1/jwks")
        );
    }
}
