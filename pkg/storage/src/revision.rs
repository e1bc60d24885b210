//! The resourceVersion codec and the continue-token codec.
//!
//! A resourceVersion is the backend revision written in decimal. Clients treat it as opaque; the
//! API server parses it only to pick read semantics. Continue tokens use upstream's encoding
//! (unpadded URL-safe base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"<key suffix>"}`) so that a
//! token is what a Kubernetes client would expect to see.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::{Revision, StorageError};

/// Parses a resourceVersion. Empty strings are the caller's business (they mean "unset").
pub fn parse_resource_version(rv: &str) -> crate::Result<Revision> {
    rv.parse::<Revision>()
        .map_err(|_| StorageError::InvalidResourceVersion(rv.to_string()))
}

const CONTINUE_API_VERSION: &str = "meta.k8s.io/v1";

#[derive(Serialize, Deserialize)]
struct ContinueToken {
    #[serde(rename = "v")]
    api_version: String,
    /// The revision of the listing; -1 means "continue at the latest revision" (an
    /// inconsistent continuation, handed out after the original revision was compacted).
    #[serde(rename = "rv")]
    resource_version: i64,
    #[serde(rename = "start")]
    start_key: String,
}

/// Where a continued list resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continue {
    /// The full key to start at (inclusive).
    pub start_key: String,
    /// The revision to read at; `None` for an inconsistent continuation at the latest revision.
    pub revision: Option<Revision>,
}

/// Encodes a continue token that resumes after `last_key`, at `revision` (`None`: latest).
pub fn encode_continue(last_key: &str, prefix: &str, revision: Option<Revision>) -> String {
    // Resume at the smallest key after `last_key`.
    let next = format!("{last_key}\u{0}");
    let token = ContinueToken {
        api_version: CONTINUE_API_VERSION.into(),
        resource_version: revision.map_or(-1, |r| r as i64),
        start_key: next.strip_prefix(prefix).unwrap_or(&next).to_string(),
    };
    // Serializing a struct of strings and integers cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

/// Decodes a continue token for a listing of `prefix`, with upstream's validation messages.
pub fn decode_continue(token: &str, prefix: &str) -> crate::Result<Continue> {
    let invalid = |m: String| StorageError::InvalidContinue(m);
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| invalid(format!("illegal base64 data: {e}")))?;
    let token: ContinueToken = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("not a continue token: {e}")))?;
    if token.api_version != CONTINUE_API_VERSION {
        return Err(invalid(format!(
            "server does not recognize this encoded key version {:?}",
            token.api_version
        )));
    }
    let revision = match token.resource_version {
        -1 => None,
        rv if rv > 0 => Some(rv as Revision),
        _ => {
            return Err(invalid(
                "incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into(),
            ));
        }
    };
    if token.start_key.is_empty() {
        return Err(invalid("encoded start key empty".into()));
    }
    // The key suffix must stay inside the listed prefix: no climbing out with "..".
    if token.start_key.split('/').any(|segment| segment == "..") {
        return Err(invalid(
            "encoded start key must not contain path traversal".into(),
        ));
    }
    let start_key = format!("{prefix}{}", token.start_key.trim_start_matches('/'));
    Ok(Continue {
        start_key,
        revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_versions_are_decimal() {
        assert_eq!(parse_resource_version("15").unwrap(), 15);
        assert!(parse_resource_version("abc").is_err());
        assert!(parse_resource_version("-1").is_err());
    }

    #[test]
    fn continue_round_trips() {
        let prefix = "/registry/configmaps/";
        let token = encode_continue("/registry/configmaps/ns/b", prefix, Some(12));
        let c = decode_continue(&token, prefix).unwrap();
        assert_eq!(c.start_key, "/registry/configmaps/ns/b\u{0}");
        assert_eq!(c.revision, Some(12));
        let token = encode_continue("/registry/configmaps/ns/b", prefix, None);
        assert_eq!(decode_continue(&token, prefix).unwrap().revision, None);
    }

    #[test]
    fn continue_matches_upstream_encoding() {
        // Upstream encodes {"v":"meta.k8s.io/v1","rv":12,"start":"ns/b\u0000"}.
        let token = encode_continue(
            "/registry/configmaps/ns/b",
            "/registry/configmaps/",
            Some(12),
        );
        let json = URL_SAFE_NO_PAD.decode(token).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"v":"meta.k8s.io/v1","rv":12,"start":"ns/b\u0000"}"#
        );
    }

    #[test]
    fn bad_continue_tokens_are_rejected() {
        let p = "/registry/pods/";
        assert!(decode_continue("%%%", p).is_err());
        assert!(decode_continue(&URL_SAFE_NO_PAD.encode("{}"), p).is_err());
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let wrong_version = enc(r#"{"v":"x","rv":1,"start":"a"}"#);
        assert!(decode_continue(&wrong_version, p).is_err());
        let zero_rv = enc(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#);
        assert!(decode_continue(&zero_rv, p).is_err());
        let empty = enc(r#"{"v":"meta.k8s.io/v1","rv":3,"start":""}"#);
        assert!(decode_continue(&empty, p).is_err());
        let traversal = enc(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"../secrets/x"}"#);
        assert!(decode_continue(&traversal, p).is_err());
    }
}
