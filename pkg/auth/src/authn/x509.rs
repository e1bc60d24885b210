//! Client certificates: a chain that verifies against the client CA names the user by its
//! subject's CN and the groups by its O values (upstream's `CommonNameUserConversion`). No
//! certificate, or an empty CN, is no opinion; another CA, an expired certificate or a wrong
//! usage is a refusal.

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use async_trait::async_trait;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;

use super::{Authenticator, AuthnError, Credentials};
use crate::user::UserInfo;
use rkube_api::x509::{self, Certificate};

/// The certificates a client presented during the TLS handshake, leaf first; empty if none.
/// The listener puts it on every request of the connection.
///
/// The chain is verified once per connection (an ECDSA verification costs more than serving a
/// cached GET); each request then only checks that the certificate has not expired since.
#[derive(Debug, Clone, Default)]
pub struct PeerCertificates {
    certs: Arc<[CertificateDer<'static>]>,
    verified: Arc<OnceLock<Result<Verified, AuthnError>>>,
}

/// A verified client certificate: who it names (nobody for an empty CN) and until when.
#[derive(Debug, Clone)]
struct Verified {
    user: Option<UserInfo>,
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

/// Authenticates by client certificate against a verifier (the client CA's).
#[derive(Debug, Clone)]
pub struct CertAuthenticator {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl CertAuthenticator {
    /// Checks client certificates with `verifier`.
    pub fn new(verifier: Arc<dyn ClientCertVerifier>) -> Self {
        CertAuthenticator { verifier }
    }

    /// The identity behind `peer`: `None` without a certificate (or an empty CN).
    pub fn authenticate_peer(
        &self,
        peer: &PeerCertificates,
    ) -> Result<Option<UserInfo>, AuthnError> {
        if peer.certs.is_empty() {
            return Ok(None);
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let verified = peer
            .verified
            .get_or_init(|| self.verify(&peer.certs, UnixTime::since_unix_epoch(now)))
            .as_ref()
            .map_err(Clone::clone)?;
        // A certificate that expired since the connection's first request is refused, as a
        // fresh verification would refuse it.
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if now > verified.not_after {
            return Err(AuthnError::Certificate(
                "the certificate has expired".into(),
            ));
        }
        Ok(verified.user.clone())
    }

    /// Verifies a chain against the client CA and reads the identity it names.
    fn verify(
        &self,
        certs: &[CertificateDer<'static>],
        now: UnixTime,
    ) -> Result<Verified, AuthnError> {
        let refused = |e: &dyn std::fmt::Display| AuthnError::Certificate(e.to_string());
        let (leaf, intermediates) = certs
            .split_first()
            .ok_or_else(|| refused(&"no certificate"))?;
        self.verifier
            .verify_client_cert(leaf, intermediates, now)
            .map_err(|e| refused(&e))?;
        let fields = Certificate::parse(leaf).map_err(|e| refused(&e))?;
        let mut name = None;
        let mut groups = Vec::new();
        for attribute in &fields.subject {
            match attribute.oid {
                // Go's pkix.Name keeps the last CN and every O, in order.
                x509::oid::COMMON_NAME => name = attribute.text().map(String::from),
                x509::oid::ORGANIZATION => groups.extend(attribute.text().map(String::from)),
                _ => {}
            }
        }
        let user = name.filter(|n| !n.is_empty()).map(|name| UserInfo {
            name,
            groups,
            ..UserInfo::default()
        });
        Ok(Verified {
            user,
            not_after: fields.not_after,
        })
    }
}

#[async_trait]
impl Authenticator for CertAuthenticator {
    async fn authenticate(
        &self,
        credentials: &Credentials<'_>,
    ) -> Result<Option<UserInfo>, AuthnError> {
        match credentials.peer {
            Some(peer) => self.authenticate_peer(peer),
            None => Ok(None),
        }
    }
}
