//! Bootstrap tokens (`<id>.<secret>`, for node join): valid while the kube-system Secret
//! `bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token` holds the same secret, has
//! not expired and allows `usage-bootstrap-authentication`. The user is
//! `system:bootstrap:<id>` in `system:bootstrappers` plus the Secret's `auth-extra-groups`.
//! A token of the right shape that matches nothing is no opinion, as upstream's.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::service_account::{ObjectLookup, now_seconds};
use super::{AuthnError, TokenAuthenticator, constant_time_eq};
use crate::user::UserInfo;

/// The group of every bootstrap token user.
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";
/// The Secret type of bootstrap tokens.
const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";

/// The bootstrap token authenticator.
#[derive(Debug, Clone)]
pub struct BootstrapTokens {
    lookup: Arc<dyn ObjectLookup>,
}

impl BootstrapTokens {
    /// Reads the token Secrets through `lookup`.
    pub fn new(lookup: Arc<dyn ObjectLookup>) -> Self {
        BootstrapTokens { lookup }
    }
}

/// `(id, secret)` of a token shaped `[a-z0-9]{6}.[a-z0-9]{16}`.
fn split_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let valid = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (valid(id, 6) && valid(secret, 16)).then_some((id, secret))
}

/// A `data` entry of a Secret, decoded.
fn secret_string(secret: &Value, key: &str) -> Option<String> {
    let encoded = secret.get("data")?.get(key)?.as_str()?;
    String::from_utf8(STANDARD.decode(encoded).ok()?).ok()
}

/// Upstream's check of an extra group: `system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]`.
fn valid_extra_group(group: &str) -> bool {
    let Some(rest) = group.strip_prefix("system:bootstrappers:") else {
        return false;
    };
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    rest.len() <= 256
        && rest.bytes().last().is_some_and(ok)
        && rest.bytes().all(|b| ok(b) || b == b':' || b == b'-')
}

#[async_trait]
impl TokenAuthenticator for BootstrapTokens {
    async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        let Some((id, secret_part)) = split_token(token) else {
            return Ok(None);
        };
        let name = format!("bootstrap-token-{id}");
        let Some(secret) = self
            .lookup
            .get("secrets", "kube-system", &name)
            .await
            .map_err(AuthnError::Lookup)?
        else {
            tracing::debug!(%name, "no bootstrap token secret");
            return Ok(None);
        };
        let text = |key: &str| secret_string(&secret, key).unwrap_or_default();
        let usable = secret.pointer("/metadata/deletionTimestamp").is_none()
            && secret.get("type").and_then(Value::as_str) == Some(SECRET_TYPE)
            && constant_time_eq(text("token-secret").as_bytes(), secret_part.as_bytes())
            && text("token-id") == id
            && text("usage-bootstrap-authentication") == "true";
        let expired = secret_string(&secret, "expiration").is_some_and(|t| {
            t.parse::<jiff::Timestamp>()
                .is_ok_and(|t| t.as_second() < now_seconds())
        });
        if !usable || expired {
            tracing::debug!(%name, expired, "bootstrap token refused");
            return Ok(None);
        }
        let mut groups = vec![BOOTSTRAPPERS_GROUP.to_owned()];
        for group in text("auth-extra-groups")
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
        {
            if !valid_extra_group(group) {
                return Err(AuthnError::Token(format!(
                    "bootstrap token secret {name} has an invalid extra group {group:?}"
                )));
            }
            if !groups.iter().any(|g| g == group) {
                groups.push(group.to_owned());
            }
        }
        Ok(Some(UserInfo {
            name: format!("system:bootstrap:{id}"),
            groups,
            ..UserInfo::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::service_account::tests::Objects;
    use super::*;

    fn secret(data: &[(&str, &str)]) -> Value {
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), STANDARD.encode(v).into()))
            .collect();
        json!({"type": SECRET_TYPE, "metadata": {"name": "bootstrap-token-abcdef"}, "data": data})
    }

    #[tokio::test]
    async fn bootstrap_tokens_as_upstream() {
        let objects = Arc::new(Objects::default());
        let authn = BootstrapTokens::new(objects.clone());
        let token = "abcdef.0123456789abcdef";
        let base = [
            ("token-id", "abcdef"),
            ("token-secret", "0123456789abcdef"),
            ("usage-bootstrap-authentication", "true"),
            (
                "auth-extra-groups",
                "system:bootstrappers:kubeadm:default-node-token",
            ),
        ];
        objects.put(
            "secrets",
            "kube-system",
            "bootstrap-token-abcdef",
            secret(&base),
        );
        let user = authn.authenticate_token(token).await.unwrap().unwrap();
        assert_eq!(user.name, "system:bootstrap:abcdef");
        assert_eq!(
            user.groups,
            [
                "system:bootstrappers",
                "system:bootstrappers:kubeadm:default-node-token"
            ]
        );
        assert_eq!(
            authn.authenticate_token("abcdef.0123456789abcdee").await,
            Ok(None)
        );
        assert_eq!(
            authn.authenticate_token("ABCDEF.0123456789abcdef").await,
            Ok(None)
        );
        assert_eq!(
            authn.authenticate_token("zzzzzz.0123456789abcdef").await,
            Ok(None)
        );

        let mut expired = base.to_vec();
        expired.push(("expiration", "2001-01-01T00:00:00Z"));
        objects.put(
            "secrets",
            "kube-system",
            "bootstrap-token-abcdef",
            secret(&expired),
        );
        assert_eq!(authn.authenticate_token(token).await, Ok(None));

        let mut no_usage = base.to_vec();
        no_usage[2].1 = "false";
        objects.put(
            "secrets",
            "kube-system",
            "bootstrap-token-abcdef",
            secret(&no_usage),
        );
        assert_eq!(authn.authenticate_token(token).await, Ok(None));

        let mut bad_group = base.to_vec();
        bad_group[3].1 = "system:masters";
        objects.put(
            "secrets",
            "kube-system",
            "bootstrap-token-abcdef",
            secret(&bad_group),
        );
        assert!(authn.authenticate_token(token).await.is_err());
    }
}
