//! Issuing a certificate for a request: upstream's `authority.CertificateAuthority.Sign` with
//! the `PermissiveSigningPolicy` the signing controller uses.
//!
//! The certificate is written as DER directly rather than through rcgen's parameters: the
//! request's subject and public key go in byte for byte (rcgen keeps one value per name
//! attribute, which would drop every group but one of a user in several), and so does its
//! subjectAltName. rcgen's key pair does the signing (any key rcgen loads from PEM).

use std::time::Duration;

use rcgen::{KeyPair, SigningKey as _};
use rkube_api::x509::{self, CertificateRequest, element, oid, tag};

use super::Error;

/// How far back a certificate's validity starts (clock skew), and the lifetime under which the
/// end is not moved back to compensate (upstream's `Backdate` and `Short`).
const BACKDATE: Duration = Duration::from_secs(5 * 60);
const SHORT: Duration = Duration::from_secs(8 * 60 * 60);

/// A CA that signs: its certificate's subject and key id, its validity end, and its key.
pub struct SigningCa {
    subject: Vec<u8>,
    key_id: Option<Vec<u8>>,
    not_after: i64,
    key: KeyPair,
    /// The `AlgorithmIdentifier` of the key's signatures, a whole element.
    algorithm: Vec<u8>,
}

impl std::fmt::Debug for SigningCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCa")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl SigningCa {
    /// The CA of `cert_pem` with its private key `key_pem` (PKCS#8).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, Error> {
        let block = x509::pem_decode(cert_pem.as_bytes())
            .0
            .filter(|b| b.label == "CERTIFICATE")
            .ok_or_else(|| Error::Ca("no CERTIFICATE PEM block".into()))?;
        let cert = x509::Certificate::parse(&block.der).map_err(|e| Error::Ca(e.to_string()))?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| Error::Ca(e.to_string()))?;
        let algorithm = signature_algorithm(&key)?;
        Ok(SigningCa {
            subject: cert.subject_der.to_vec(),
            key_id: cert.subject_key_id.map(<[u8]>::to_vec),
            not_after: cert.not_after,
            key,
            algorithm,
        })
    }

    /// A PEM certificate for `request` with `usages`, valid for `ttl` from `now` (seconds
    /// since the epoch), backdated and capped at the CA's own end.
    pub fn sign(
        &self,
        request: &CertificateRequest<'_>,
        usages: &[String],
        ttl: Duration,
        now: i64,
    ) -> Result<String, Error> {
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let backdate = BACKDATE.as_secs() as i64;
        let not_before = now - backdate;
        let mut not_after = if ttl < SHORT {
            now + ttl_secs
        } else {
            now + ttl_secs - backdate
        };
        if not_after > self.not_after {
            not_after = self.not_after;
        }
        if not_before >= self.not_after {
            return Err(Error::Sign("the signer has no validity left".into()));
        }

        let mut serial = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
            .map_err(|_| Error::Sign("no randomness for the serial number".into()))?;
        // Positive and minimally encoded.
        serial[0] = (serial[0] & 0x7f) | 0x40;

        let mut tbs = Vec::new();
        tbs.extend(element(tag::CONTEXT_0, &element(tag::INTEGER, &[2])));
        tbs.extend(element(tag::INTEGER, &serial));
        tbs.extend_from_slice(&self.algorithm);
        tbs.extend_from_slice(&self.subject);
        let validity = [
            x509::time_element(not_before).map_err(|e| Error::Sign(e.to_string()))?,
            x509::time_element(not_after).map_err(|e| Error::Sign(e.to_string()))?,
        ]
        .concat();
        tbs.extend(element(tag::SEQUENCE, &validity));
        tbs.extend_from_slice(request.subject_der);
        tbs.extend_from_slice(request.spki);
        tbs.extend(element(
            tag::CONTEXT_3,
            &element(tag::SEQUENCE, &self.extensions(request, usages)?),
        ));
        let tbs = element(tag::SEQUENCE, &tbs);

        let signature = self
            .key
            .sign(&tbs)
            .map_err(|e| Error::Sign(e.to_string()))?;
        let mut cert = tbs;
        cert.extend_from_slice(&self.algorithm);
        cert.extend(element(tag::BIT_STRING, &[&[0u8][..], &signature].concat()));
        Ok(x509::pem_encode(
            "CERTIFICATE",
            &element(tag::SEQUENCE, &cert),
        ))
    }

    /// The extensions: key usage and extended key usage from `usages`, not a CA, the CA's key
    /// id, and the request's subjectAltName.
    fn extensions(
        &self,
        request: &CertificateRequest<'_>,
        usages: &[String],
    ) -> Result<Vec<u8>, Error> {
        let mut bits = 0u16;
        let mut extended = Vec::new();
        for usage in usages {
            match key_usage_bit(usage) {
                Some(bit) => bits |= 1 << bit,
                None => {
                    let id = extended_key_usage(usage)
                        .ok_or_else(|| Error::Sign(format!("unrecognized usage {usage:?}")))?;
                    let id = element(tag::OID, id);
                    if !extended.windows(id.len()).any(|w| w == id.as_slice()) {
                        extended.extend(id);
                    }
                }
            }
        }
        let mut out = Vec::new();
        if bits != 0 {
            out.extend(extension(oid::KEY_USAGE, true, &key_usage_bits(bits)));
        }
        if !extended.is_empty() {
            out.extend(extension(
                oid::EXT_KEY_USAGE,
                false,
                &element(tag::SEQUENCE, &extended),
            ));
        }
        out.extend(extension(
            oid::BASIC_CONSTRAINTS,
            true,
            &element(tag::SEQUENCE, &[]),
        ));
        if let Some(key_id) = &self.key_id {
            out.extend(extension(
                oid::AUTHORITY_KEY_ID,
                false,
                &element(tag::SEQUENCE, &element(0x80, key_id)),
            ));
        }
        if let Some(names) = request.alt_names_der {
            out.extend(extension(oid::SUBJECT_ALT_NAME, false, names));
        }
        Ok(out)
    }
}

/// One `Extension` element.
fn extension(id: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut content = element(tag::OID, id);
    if critical {
        content.extend(element(tag::BOOLEAN, &[0xff]));
    }
    content.extend(element(tag::OCTET_STRING, value));
    element(tag::SEQUENCE, &content)
}

/// The key usage bit of `usage` (Go's `x509.KeyUsage` order), if it is one.
fn key_usage_bit(usage: &str) -> Option<u16> {
    Some(match usage {
        "signing" | "digital signature" => 0,
        "content commitment" => 1,
        "key encipherment" => 2,
        "data encipherment" => 3,
        "key agreement" => 4,
        "cert sign" => 5,
        "crl sign" => 6,
        "encipher only" => 7,
        "decipher only" => 8,
        _ => return None,
    })
}

/// `KeyUsage` as a DER BIT STRING (bit 0 first, trailing zero bits dropped).
fn key_usage_bits(bits: u16) -> Vec<u8> {
    let highest = (0..9).rev().find(|&b| bits & (1 << b) != 0).unwrap_or(0);
    let bytes = if highest >= 8 { 2 } else { 1 };
    let mut content = vec![7 - (highest % 8) as u8];
    let mut packed = [0u8; 2];
    for bit in 0..9 {
        if bits & (1 << bit) != 0 {
            packed[bit / 8] |= 0x80 >> (bit % 8);
        }
    }
    content.extend_from_slice(&packed[..bytes]);
    element(tag::BIT_STRING, &content)
}

/// The OID of an extended key usage (content octets).
fn extended_key_usage(usage: &str) -> Option<&'static [u8]> {
    const KP: [u8; 7] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03];
    const fn kp(n: u8) -> [u8; 8] {
        [KP[0], KP[1], KP[2], KP[3], KP[4], KP[5], KP[6], n]
    }
    const SERVER: [u8; 8] = kp(1);
    const CLIENT: [u8; 8] = kp(2);
    const CODE: [u8; 8] = kp(3);
    const EMAIL: [u8; 8] = kp(4);
    const IPSEC_END: [u8; 8] = kp(5);
    const IPSEC_TUNNEL: [u8; 8] = kp(6);
    const IPSEC_USER: [u8; 8] = kp(7);
    const TIMESTAMPING: [u8; 8] = kp(8);
    const OCSP: [u8; 8] = kp(9);
    Some(match usage {
        "any" => &[0x55, 0x1d, 0x25, 0x00],
        "server auth" => &SERVER,
        "client auth" => &CLIENT,
        "code signing" => &CODE,
        "email protection" | "s/mime" => &EMAIL,
        "ipsec end system" => &IPSEC_END,
        "ipsec tunnel" => &IPSEC_TUNNEL,
        "ipsec user" => &IPSEC_USER,
        "timestamping" => &TIMESTAMPING,
        "ocsp signing" => &OCSP,
        "microsoft sgc" => &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0a, 0x03, 0x03],
        "netscape sgc" => &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x04, 0x01],
        _ => return None,
    })
}

/// The `AlgorithmIdentifier` of `key`'s signatures.
fn signature_algorithm(key: &KeyPair) -> Result<Vec<u8>, Error> {
    let algorithm = key.algorithm();
    let (id, null_params): (&[u8], bool) = if algorithm == &rcgen::PKCS_ECDSA_P256_SHA256 {
        (oid::ECDSA_SHA256, false)
    } else if algorithm == &rcgen::PKCS_ECDSA_P384_SHA384 {
        (oid::ECDSA_SHA384, false)
    } else if algorithm == &rcgen::PKCS_ED25519 {
        (oid::ED25519, false)
    } else if algorithm == &rcgen::PKCS_RSA_SHA256 {
        (oid::RSA_SHA256, true)
    } else {
        return Err(Error::Ca(format!(
            "unsupported CA key algorithm {algorithm:?}"
        )));
    };
    let mut content = element(tag::OID, id);
    if null_params {
        content.extend([0x05, 0x00]);
    }
    Ok(element(tag::SEQUENCE, &content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_usage_bits_are_minimal_der() {
        // digitalSignature | keyEncipherment: 101 + 5 unused bits.
        assert_eq!(key_usage_bits(0b101), vec![0x03, 0x02, 0x05, 0xa0]);
        // decipherOnly (bit 8) takes a second byte with 7 unused bits.
        assert_eq!(
            key_usage_bits(1 << 8 | 1),
            vec![0x03, 0x03, 0x07, 0x80, 0x80]
        );
    }
}
