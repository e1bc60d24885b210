//! Authentication: who sent a request, from what it presented.
//!
//! Every authenticator answers `Ok(Some(user))` (it knows the credential), `Ok(None)` (no
//! credential of its kind) or an error (a credential of its kind that is bad). The [`Union`]
//! asks each in turn, as upstream's: the first user wins; if none answers but one failed, the
//! request is refused (401) — a bad credential never falls back to anonymous; only a request
//! that presented nothing is anonymous.
//!
//! Bearer tokens go through [`BearerToken`], itself a union of [`TokenAuthenticator`]s (static
//! token file, service account JWTs, bootstrap tokens): a token nobody recognizes is a 401.
//! A TokenReview presents a token to chosen [`Audiences`]: service account tokens are valid
//! for those their `aud` claim shares with them, every other token for those the API server
//! answers to itself.

pub mod bootstrap;
pub mod service_account;
pub mod token_file;
pub mod x509;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use http::HeaderMap;

use crate::user::{ANONYMOUS_USER, AUTHENTICATED_GROUP, UserInfo};
pub use x509::{CertAuthenticator, PeerCertificates};

/// Why a presented credential was refused; the client sees only upstream's `Unauthorized`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthnError {
    /// A client certificate that does not verify against the client CA, or has expired.
    #[error("verifying certificate: {0}")]
    Certificate(String),
    /// A bearer token no authenticator recognized.
    #[error("invalid bearer token")]
    InvalidToken,
    /// A token of a known kind that is not valid (bad signature, expired, revoked).
    #[error("{0}")]
    Token(String),
    /// The objects a token names could not be read.
    #[error("looking up {0}")]
    Lookup(String),
}

/// What a request presented: its headers and the connection's client certificates.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The request headers (`Authorization`).
    pub headers: &'a HeaderMap,
    /// The client certificates of the connection, if any were presented.
    pub peer: Option<&'a PeerCertificates>,
}

/// One way to authenticate a request. See the [module docs](self).
#[async_trait]
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// The user behind `credentials`; `None` when nothing of this authenticator's kind was
    /// presented.
    async fn authenticate(
        &self,
        credentials: &Credentials<'_>,
    ) -> Result<Option<UserInfo>, AuthnError>;
}

/// The audiences a token is presented to (upstream's audiences in the request context): the
/// API server's own and those the presenter asks for (a TokenReview's `spec.audiences`).
#[derive(Debug, Clone, Copy)]
pub struct Audiences<'a> {
    /// The API server's audiences (`--api-audiences`).
    pub implicit: &'a [String],
    /// The audiences asked for.
    pub targets: &'a [String],
}

/// Upstream's `Audiences.Intersect`: the targets that are also in `ours`, in target order.
pub fn intersect(ours: &[String], targets: &[String]) -> Vec<String> {
    targets
        .iter()
        .filter(|t| ours.contains(t))
        .cloned()
        .collect()
}

/// One way to authenticate a bearer token.
#[async_trait]
pub trait TokenAuthenticator: Send + Sync + fmt::Debug {
    /// The user `token` stands for; `None` when the token is not of this kind.
    async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, AuthnError>;

    /// The user `token` stands for when presented to `audiences`, and the target audiences it
    /// is valid for. The default is upstream's wrapping of authenticators that know nothing of
    /// audiences: such a token is valid for the targets the API server itself answers to, and
    /// for none other (then it is not recognized at all).
    async fn authenticate_for(
        &self,
        token: &str,
        audiences: Audiences<'_>,
    ) -> Result<Option<(UserInfo, Vec<String>)>, AuthnError> {
        let shared = intersect(audiences.implicit, audiences.targets);
        if shared.is_empty() {
            return Ok(None);
        }
        Ok(self.authenticate_token(token).await?.map(|u| (u, shared)))
    }
}

/// Authenticators asked in order; anonymous when nothing was presented and `anonymous` is on
/// (upstream's `--anonymous-auth`, on by default). Users found get `system:authenticated`
/// (upstream's `AuthenticatedGroupAdder`).
#[derive(Debug, Clone)]
pub struct Union {
    authenticators: Vec<Arc<dyn Authenticator>>,
    anonymous: bool,
}

impl Union {
    /// Asks `authenticators` in order, then falls back to anonymous if `anonymous`.
    pub fn new(authenticators: Vec<Arc<dyn Authenticator>>, anonymous: bool) -> Self {
        Union {
            authenticators,
            anonymous,
        }
    }

    /// The user behind `credentials`; `None` when nobody is (anonymous access off).
    pub async fn authenticate(
        &self,
        credentials: &Credentials<'_>,
    ) -> Result<Option<UserInfo>, AuthnError> {
        let mut failure = None;
        for authenticator in &self.authenticators {
            match authenticator.authenticate(credentials).await {
                Ok(Some(mut user)) => {
                    if user.name != ANONYMOUS_USER && !user.in_group(AUTHENTICATED_GROUP) {
                        user.groups.push(AUTHENTICATED_GROUP.to_owned());
                    }
                    return Ok(Some(user));
                }
                Ok(None) => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(self.anonymous.then(UserInfo::anonymous)),
        }
    }
}

/// The `Authorization: Bearer <token>` authenticator over token authenticators.
#[derive(Debug, Clone)]
pub struct BearerToken {
    authenticators: Vec<Arc<dyn TokenAuthenticator>>,
}

impl BearerToken {
    /// Asks `authenticators` in order about each bearer token.
    pub fn new(authenticators: Vec<Arc<dyn TokenAuthenticator>>) -> Self {
        BearerToken { authenticators }
    }

    /// Asks every token authenticator; a token none recognizes is refused.
    pub async fn authenticate_token(&self, token: &str) -> Result<UserInfo, AuthnError> {
        self.ask(token, None).await.map(|(user, _)| user)
    }

    /// [`Self::authenticate_token`] for `audiences` (a TokenReview): also answers the target
    /// audiences the token is valid for.
    pub async fn authenticate_for(
        &self,
        token: &str,
        audiences: Audiences<'_>,
    ) -> Result<(UserInfo, Vec<String>), AuthnError> {
        self.ask(token, Some(audiences)).await
    }

    /// The first authenticator's user; else the first failure, else an invalid token.
    async fn ask(
        &self,
        token: &str,
        audiences: Option<Audiences<'_>>,
    ) -> Result<(UserInfo, Vec<String>), AuthnError> {
        let mut failure = None;
        for authenticator in &self.authenticators {
            let answer = match audiences {
                Some(audiences) => authenticator.authenticate_for(token, audiences).await,
                None => authenticator
                    .authenticate_token(token)
                    .await
                    .map(|user| user.map(|user| (user, Vec::new()))),
            };
            match answer {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        Err(failure.unwrap_or(AuthnError::InvalidToken))
    }
}

/// The token of an `Authorization: Bearer <token>` header, as upstream reads it: the scheme is
/// case-insensitive, an empty token is no token.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[async_trait]
impl Authenticator for BearerToken {
    async fn authenticate(
        &self,
        credentials: &Credentials<'_>,
    ) -> Result<Option<UserInfo>, AuthnError> {
        match bearer_token(credentials.headers) {
            Some(token) => self.authenticate_token(token).await.map(Some),
            None => Ok(None),
        }
    }
}

/// Compares secrets in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed(Result<Option<UserInfo>, AuthnError>);

    #[async_trait]
    impl TokenAuthenticator for Fixed {
        async fn authenticate_token(&self, _: &str) -> Result<Option<UserInfo>, AuthnError> {
            self.0.clone()
        }
    }

    fn headers(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, authorization.parse().unwrap());
        h
    }

    #[test]
    fn bearer_tokens_are_read_as_upstream() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer abc extra")), Some("abc"));
        assert_eq!(bearer_token(&headers("  BEARER abc  ")), Some("abc"));
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer")), None);
        assert_eq!(bearer_token(&headers("Bearer  abc")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn a_bad_credential_is_refused_not_anonymous() {
        let alice = UserInfo::new("alice", &[]);
        let union = |answers: Vec<Result<Option<UserInfo>, AuthnError>>| {
            let tokens = answers
                .into_iter()
                .map(|a| Arc::new(Fixed(a)) as Arc<dyn TokenAuthenticator>)
                .collect();
            Union::new(vec![Arc::new(BearerToken::new(tokens))], true)
        };
        let h = headers("Bearer t");
        let creds = Credentials {
            headers: &h,
            peer: None,
        };
        let none = HeaderMap::new();
        let nothing = Credentials {
            headers: &none,
            peer: None,
        };

        let found = union(vec![Ok(None), Ok(Some(alice.clone()))]);
        let user = found.authenticate(&creds).await.unwrap().unwrap();
        assert_eq!(user.groups, [AUTHENTICATED_GROUP]);
        assert_eq!(
            found.authenticate(&nothing).await.unwrap(),
            Some(UserInfo::anonymous())
        );
        // One authenticator failing does not hide another that knows the token.
        let later = union(vec![
            Err(AuthnError::Token("expired".into())),
            Ok(Some(alice)),
        ]);
        assert!(later.authenticate(&creds).await.is_ok());
        assert_eq!(
            union(vec![Ok(None)]).authenticate(&creds).await,
            Err(AuthnError::InvalidToken)
        );
        assert_eq!(
            union(vec![Err(AuthnError::Token("expired".into()))])
                .authenticate(&creds)
                .await,
            Err(AuthnError::Token("expired".into()))
        );
        let closed = Union::new(vec![], false);
        assert_eq!(closed.authenticate(&nothing).await, Ok(None));
    }
}
