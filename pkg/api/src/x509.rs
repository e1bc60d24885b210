//! Just enough DER and PEM for rkube's certificates: reading PKCS#10 certificate requests and
//! X.509 certificates (the parts rkube looks at: a client's user and groups, a CA's name and
//! key, validity), and writing the few DER elements a signer builds a certificate from. Signature checks need a crypto library and live with their
//! callers; this module only says where the signed bytes, the signature and the key are.
//!
//! [`Reader`] walks DER elements without copying; [`pem_decode`] is Go's `pem.Decode` (first
//! block, the rest of the input); [`CertificateRequest::parse`] and [`Certificate::parse`] read
//! the two structures; [`element`] writes one DER element.

use std::borrow::Cow;
use std::net::IpAddr;

use base64::Engine as _;

/// DER that is not the structure it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DerError(&'static str);

/// DER tags this module reads and writes.
pub mod tag {
    /// BOOLEAN.
    pub const BOOLEAN: u8 = 0x01;
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING.
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING.
    pub const OCTET_STRING: u8 = 0x04;
    /// OBJECT IDENTIFIER.
    pub const OID: u8 = 0x06;
    /// UTF8String.
    pub const UTF8_STRING: u8 = 0x0c;
    /// PrintableString.
    pub const PRINTABLE_STRING: u8 = 0x13;
    /// UTCTime.
    pub const UTC_TIME: u8 = 0x17;
    /// GeneralizedTime.
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// SEQUENCE (constructed).
    pub const SEQUENCE: u8 = 0x30;
    /// SET (constructed).
    pub const SET: u8 = 0x31;
    /// `[0]` constructed, context-specific.
    pub const CONTEXT_0: u8 = 0xa0;
    /// `[3]` constructed, context-specific.
    pub const CONTEXT_3: u8 = 0xa3;
}

/// Object identifiers, content octets only.
pub mod oid {
    /// `id-at-commonName` (2.5.4.3).
    pub const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    /// `id-at-organizationName` (2.5.4.10).
    pub const ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
    /// `id-ce-subjectKeyIdentifier` (2.5.29.14).
    pub const SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
    /// `id-ce-keyUsage` (2.5.29.15).
    pub const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    /// `id-ce-subjectAltName` (2.5.29.17).
    pub const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    /// `id-ce-basicConstraints` (2.5.29.19).
    pub const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    /// `id-ce-authorityKeyIdentifier` (2.5.29.35).
    pub const AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
    /// `id-ce-extKeyUsage` (2.5.29.37).
    pub const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    /// PKCS#9 `extensionRequest` (1.2.840.113549.1.9.14).
    pub const EXTENSION_REQUEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];
    /// `rsaEncryption` (1.2.840.113549.1.1.1).
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    /// `sha256WithRSAEncryption` (1.2.840.113549.1.1.11).
    pub const RSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    /// `sha384WithRSAEncryption` (1.2.840.113549.1.1.12).
    pub const RSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    /// `sha512WithRSAEncryption` (1.2.840.113549.1.1.13).
    pub const RSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    /// `id-ecPublicKey` (1.2.840.10045.2.1).
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// `prime256v1` (1.2.840.10045.3.1.7).
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// `secp384r1` (1.3.132.0.34).
    pub const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    /// `ecdsa-with-SHA256` (1.2.840.10045.4.3.2).
    pub const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    /// `ecdsa-with-SHA384` (1.2.840.10045.4.3.3).
    pub const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    /// `id-Ed25519` (1.3.101.112).
    pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
}

/// A cursor over DER elements.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// A reader over `der`.
    pub fn new(der: &'a [u8]) -> Self {
        Reader(der)
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tag of the next element.
    pub fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Reads one element: its tag and content octets.
    pub fn read(&mut self) -> Result<(u8, &'a [u8]), DerError> {
        let (&tag, rest) = self.0.split_first().ok_or(DerError("truncated element"))?;
        let (&first, mut rest) = rest.split_first().ok_or(DerError("truncated length"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            // Long form; 0x80 (indefinite) is not DER, and 4 length octets are plenty.
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return Err(DerError("bad length"));
            }
            let (octets, tail) = rest.split_at(count);
            rest = tail;
            octets
                .iter()
                .fold(0usize, |n, &b| (n << 8) | usize::from(b))
        };
        if rest.len() < len {
            return Err(DerError("element longer than its container"));
        }
        let (content, tail) = rest.split_at(len);
        self.0 = tail;
        Ok((tag, content))
    }

    /// Reads one element that must have `tag`; `what` names the failure otherwise.
    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], DerError> {
        match self.read()? {
            (t, content) if t == tag => Ok(content),
            _ => Err(DerError(what)),
        }
    }

    /// Reads one element and returns it whole (tag, length and content).
    pub fn read_whole(&mut self) -> Result<&'a [u8], DerError> {
        let before = self.0;
        self.read()?;
        Ok(&before[..before.len() - self.0.len()])
    }

    /// Reads a BIT STRING with no unused bits: its bytes.
    pub fn bit_string(&mut self, what: &'static str) -> Result<&'a [u8], DerError> {
        match self.expect(tag::BIT_STRING, what)?.split_first() {
            Some((0, bits)) => Ok(bits),
            _ => Err(DerError(what)),
        }
    }
}

/// One DER element: `tag`, length, `content`.
pub fn element(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets = len.to_be_bytes();
        let skip = octets.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (octets.len() - skip) as u8);
        out.extend_from_slice(&octets[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// One attribute of a name: `CN=...`, `O=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The attribute type's OID, content octets only.
    pub oid: &'a [u8],
    /// The value's ASN.1 string tag (UTF8String, PrintableString, ...).
    pub tag: u8,
    /// The value's content octets.
    pub value: &'a [u8],
}

impl<'a> Attribute<'a> {
    /// The value as text, for the string types Go's x509 package decodes (UTF8String,
    /// NumericString, PrintableString, T61String as Go reads it, IA5String, BMPString);
    /// `None` otherwise.
    pub fn text(&self) -> Option<Cow<'a, str>> {
        match self.tag {
            0x0c | 0x12 | 0x13 | 0x14 | 0x16 => {
                std::str::from_utf8(self.value).ok().map(Cow::Borrowed)
            }
            // BMPString: UTF-16, big endian.
            0x1e if self.value.len().is_multiple_of(2) => {
                let units: Vec<u16> = self
                    .value
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16(&units).ok().map(Cow::Owned)
            }
            _ => None,
        }
    }

    /// The attribute type as OID arcs (`[2, 5, 4, 3]`).
    pub fn oid_arcs(&self) -> Vec<u64> {
        let mut arcs = Vec::new();
        let mut value = 0u64;
        for &b in self.oid {
            value = (value << 7) | u64::from(b & 0x7f);
            if b & 0x80 != 0 {
                continue;
            }
            if arcs.is_empty() {
                // The first subidentifier packs two arcs.
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
        arcs
    }
}

/// A `Name`'s content: SET OF SEQUENCE { type, value }, flattened in order.
pub fn parse_name(content: &[u8]) -> Result<Vec<Attribute<'_>>, DerError> {
    let mut rdns = Reader(content);
    let mut attributes = Vec::new();
    while !rdns.is_empty() {
        let mut set = Reader(rdns.expect(tag::SET, "name component is not a SET")?);
        while !set.is_empty() {
            let mut pair = Reader(set.expect(tag::SEQUENCE, "name attribute is not a SEQUENCE")?);
            let oid = pair.expect(tag::OID, "name attribute without type")?;
            let (tag, value) = pair.read()?;
            attributes.push(Attribute { oid, tag, value });
        }
    }
    Ok(attributes)
}

/// The texts of the attributes of type `oid` in `name`, in order.
pub fn name_values<'a>(name: &[Attribute<'a>], oid: &[u8]) -> Vec<Cow<'a, str>> {
    name.iter()
        .filter(|a| a.oid == oid)
        .filter_map(Attribute::text)
        .collect()
}

/// The subject alternative names of a certificate or request, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AltNames {
    /// `dNSName` entries.
    pub dns: Vec<String>,
    /// `rfc822Name` entries.
    pub emails: Vec<String>,
    /// `iPAddress` entries.
    pub ips: Vec<IpAddr>,
    /// `uniformResourceIdentifier` entries.
    pub uris: Vec<String>,
}

impl AltNames {
    /// Reads a `GeneralNames` (SEQUENCE OF GeneralName) element.
    fn parse(der: &[u8]) -> Result<AltNames, DerError> {
        let mut names = AltNames::default();
        let mut seq =
            Reader(Reader(der).expect(tag::SEQUENCE, "subjectAltName is not a SEQUENCE")?);
        while !seq.is_empty() {
            let (tag, value) = seq.read()?;
            let text = || {
                std::str::from_utf8(value)
                    .map(str::to_owned)
                    .map_err(|_| DerError("subjectAltName is not text"))
            };
            match tag {
                0x81 => names.emails.push(text()?),
                0x82 => names.dns.push(text()?),
                0x86 => names.uris.push(text()?),
                0x87 => names.ips.push(match value.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(value).unwrap_or_default()),
                    16 => IpAddr::from(<[u8; 16]>::try_from(value).unwrap_or_default()),
                    _ => return Err(DerError("bad IP address in subjectAltName")),
                }),
                // otherName, x400Address, directoryName, ...: not used by Kubernetes signers.
                _ => {}
            }
        }
        Ok(names)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.emails.is_empty() && self.ips.is_empty() && self.uris.is_empty()
    }
}

/// A `SubjectPublicKeyInfo`'s parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey<'a> {
    /// The key algorithm's OID (content octets).
    pub algorithm: &'a [u8],
    /// The algorithm parameters' OID for EC keys (the curve), else `None`.
    pub curve: Option<&'a [u8]>,
    /// The key itself (the BIT STRING's bytes).
    pub key: &'a [u8],
}

impl<'a> PublicKey<'a> {
    /// Reads a whole `SubjectPublicKeyInfo` element.
    pub fn parse(spki: &'a [u8]) -> Result<Self, DerError> {
        let mut info = Reader(Reader(spki).expect(tag::SEQUENCE, "public key is not a SEQUENCE")?);
        let mut algorithm =
            Reader(info.expect(tag::SEQUENCE, "public key algorithm is not a SEQUENCE")?);
        let oid = algorithm.expect(tag::OID, "public key algorithm without OID")?;
        let curve = match algorithm.peek_tag() {
            Some(tag::OID) => Some(algorithm.expect(tag::OID, "bad curve")?),
            _ => None,
        };
        let key = info.bit_string("public key is not a BIT STRING")?;
        Ok(PublicKey {
            algorithm: oid,
            curve,
            key,
        })
    }
}

/// What a PKCS#10 certificate request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest<'a> {
    /// `certificationRequestInfo`, the whole element: the bytes the signature covers.
    pub info: &'a [u8],
    /// The subject `Name`, the whole element.
    pub subject_der: &'a [u8],
    /// The subject's attributes in order.
    pub subject: Vec<Attribute<'a>>,
    /// `SubjectPublicKeyInfo`, the whole element.
    pub spki: &'a [u8],
    /// The signature algorithm's OID.
    pub signature_algorithm: &'a [u8],
    /// The signature.
    pub signature: &'a [u8],
    /// The requested subjectAltName extension's value (`GeneralNames`), when present.
    pub alt_names_der: Option<&'a [u8]>,
    /// The requested subject alternative names.
    pub alt_names: AltNames,
}

impl<'a> CertificateRequest<'a> {
    /// Reads a DER `CertificationRequest`.
    pub fn parse(der: &'a [u8]) -> Result<Self, DerError> {
        const MALFORMED: &str = "x509: malformed certificate request";
        let mut outer = Reader(der);
        let mut request = Reader(outer.expect(tag::SEQUENCE, MALFORMED)?);
        if !outer.is_empty() {
            return Err(DerError("x509: trailing data after certificate request"));
        }
        let info = request.read_whole()?;
        let mut algorithm = Reader(request.expect(tag::SEQUENCE, MALFORMED)?);
        let signature_algorithm = algorithm.expect(tag::OID, MALFORMED)?;
        let signature = request.bit_string(MALFORMED)?;

        let mut fields = Reader(Reader(info).expect(tag::SEQUENCE, MALFORMED)?);
        fields.expect(tag::INTEGER, MALFORMED)?; // version
        let subject_der = fields.read_whole()?;
        let subject = parse_name(Reader(subject_der).expect(tag::SEQUENCE, MALFORMED)?)?;
        let spki = fields.read_whole()?;
        PublicKey::parse(spki)?;
        let mut alt_names_der = None;
        if fields.peek_tag() == Some(tag::CONTEXT_0) {
            let mut attributes = Reader(fields.expect(tag::CONTEXT_0, MALFORMED)?);
            while !attributes.is_empty() {
                let mut attribute = Reader(attributes.expect(tag::SEQUENCE, MALFORMED)?);
                let kind = attribute.expect(tag::OID, MALFORMED)?;
                if kind != oid::EXTENSION_REQUEST {
                    continue; // challengePassword and friends
                }
                let mut values = Reader(attribute.expect(tag::SET, MALFORMED)?);
                while !values.is_empty() {
                    let mut extensions = Reader(values.expect(tag::SEQUENCE, MALFORMED)?);
                    while !extensions.is_empty() {
                        let (id, value) = extension(&mut extensions)?;
                        if id == oid::SUBJECT_ALT_NAME {
                            alt_names_der = Some(value);
                        }
                    }
                }
            }
        }
        let alt_names = alt_names_der
            .map(AltNames::parse)
            .transpose()?
            .unwrap_or_default();
        Ok(CertificateRequest {
            info,
            subject_der,
            subject,
            spki,
            signature_algorithm,
            signature,
            alt_names_der,
            alt_names,
        })
    }

    /// The subject's common name (the last one, as Go reads it), or "".
    pub fn common_name(&self) -> Cow<'a, str> {
        name_values(&self.subject, oid::COMMON_NAME)
            .pop()
            .unwrap_or_default()
    }

    /// The subject's organizations, in order.
    pub fn organizations(&self) -> Vec<Cow<'a, str>> {
        name_values(&self.subject, oid::ORGANIZATION)
    }
}

/// One `Extension`: its OID and value (the OCTET STRING's content).
fn extension<'a>(extensions: &mut Reader<'a>) -> Result<(&'a [u8], &'a [u8]), DerError> {
    let mut extension = Reader(extensions.expect(tag::SEQUENCE, "bad extension")?);
    let id = extension.expect(tag::OID, "extension without OID")?;
    if extension.peek_tag() == Some(tag::BOOLEAN) {
        extension.read()?; // critical
    }
    let value = extension.expect(tag::OCTET_STRING, "extension without value")?;
    Ok((id, value))
}

/// What rkube reads from an X.509 certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate<'a> {
    /// `tbsCertificate`, the whole element: the bytes the signature covers.
    pub tbs: &'a [u8],
    /// The signature.
    pub signature: &'a [u8],
    /// The subject `Name`, the whole element (what certificates it issues name as issuer).
    pub subject_der: &'a [u8],
    /// The subject's attributes in order.
    pub subject: Vec<Attribute<'a>>,
    /// `SubjectPublicKeyInfo`, the whole element.
    pub spki: &'a [u8],
    /// The subject key identifier extension's key id, when present.
    pub subject_key_id: Option<&'a [u8]>,
    /// The end of the validity period, in seconds since the Unix epoch.
    pub not_after: i64,
}

impl<'a> Certificate<'a> {
    /// Reads a DER certificate.
    pub fn parse(der: &'a [u8]) -> Result<Self, DerError> {
        let mut outer = Reader(der);
        let mut cert = Reader(outer.expect(tag::SEQUENCE, "x509: malformed certificate")?);
        if !outer.is_empty() {
            return Err(DerError("x509: trailing data"));
        }
        let tbs_der = cert.read_whole()?;
        let mut tbs =
            Reader(Reader(tbs_der).expect(tag::SEQUENCE, "x509: malformed tbs certificate")?);
        cert.expect(
            tag::SEQUENCE,
            "x509: malformed signature algorithm identifier",
        )?;
        let signature = cert.bit_string("x509: malformed signature")?;
        if tbs.peek_tag() == Some(tag::CONTEXT_0) {
            tbs.read()?; // version
        }
        tbs.expect(tag::INTEGER, "x509: malformed serial number")?;
        tbs.expect(
            tag::SEQUENCE,
            "x509: malformed signature algorithm identifier",
        )?;
        tbs.expect(tag::SEQUENCE, "x509: malformed issuer")?;
        let mut validity = Reader(tbs.expect(tag::SEQUENCE, "x509: malformed validity")?);
        validity.read()?; // notBefore
        let (time_tag, time) = validity.read()?;
        let not_after = parse_time(time_tag, time)?;
        let subject_der = tbs.read_whole()?;
        let subject =
            parse_name(Reader(subject_der).expect(tag::SEQUENCE, "x509: malformed subject")?)?;
        let spki = tbs.read_whole()?;
        PublicKey::parse(spki)?;
        let mut subject_key_id = None;
        while !tbs.is_empty() {
            let (tag, content) = tbs.read()?;
            if tag != tag::CONTEXT_3 {
                continue; // issuerUniqueID, subjectUniqueID
            }
            let mut extensions =
                Reader(Reader(content).expect(tag::SEQUENCE, "x509: malformed extensions")?);
            while !extensions.is_empty() {
                let (id, value) = extension(&mut extensions)?;
                if id == oid::SUBJECT_KEY_ID {
                    subject_key_id =
                        Some(Reader(value).expect(tag::OCTET_STRING, "x509: bad key identifier")?);
                }
            }
        }
        Ok(Certificate {
            tbs: tbs_der,
            signature,
            subject_der,
            subject,
            spki,
            subject_key_id,
            not_after,
        })
    }
}

/// A certificate `Time`: UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`), in seconds since the Unix epoch.
fn parse_time(tag: u8, value: &[u8]) -> Result<i64, DerError> {
    let text = std::str::from_utf8(value).map_err(|_| DerError("time is not ASCII"))?;
    let full = match tag {
        tag::UTC_TIME if text.len() == 13 => {
            let yy: i32 = text[..2].parse().map_err(|_| DerError("bad UTCTime"))?;
            format!("{}{}", if yy < 50 { 20 } else { 19 }, text)
        }
        tag::GENERALIZED_TIME if text.len() == 15 => text.to_string(),
        _ => {
            return Err(DerError(
                "validity time is neither UTCTime nor GeneralizedTime",
            ));
        }
    };
    let digits = full
        .strip_suffix('Z')
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(DerError("validity time is not in UTC"))?;
    let field = |range: std::ops::Range<usize>| digits[range].parse::<i16>().unwrap_or(0);
    // A two-digit field always fits an i8; out-of-range values are refused by `new`.
    let small = |range| field(range) as i8;
    k8s_openapi::jiff::civil::DateTime::new(
        field(0..4),
        small(4..6),
        small(6..8),
        small(8..10),
        small(10..12),
        small(12..14),
        0,
    )
    .and_then(|time| time.to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC))
    .map(|z| z.timestamp().as_second())
    .map_err(|_| DerError("validity time out of range"))
}

/// A certificate `Time` for `seconds` since the Unix epoch: UTCTime through 2049,
/// GeneralizedTime after (RFC 5280 4.1.2.5), as a whole DER element.
pub fn time_element(seconds: i64) -> Result<Vec<u8>, DerError> {
    let time = k8s_openapi::jiff::Timestamp::from_second(seconds)
        .map_err(|_| DerError("time out of range"))?
        .to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC);
    Ok(if time.year() < 2050 {
        element(
            tag::UTC_TIME,
            time.strftime("%y%m%d%H%M%SZ").to_string().as_bytes(),
        )
    } else {
        element(
            tag::GENERALIZED_TIME,
            time.strftime("%Y%m%d%H%M%SZ").to_string().as_bytes(),
        )
    })
}

/// One PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    /// The type in `-----BEGIN <type>-----`.
    pub label: String,
    /// Whether the block had `Key: value` headers.
    pub has_headers: bool,
    /// The decoded body.
    pub der: Vec<u8>,
}

/// The DER of a CertificateSigningRequest's `spec.request`: its first PEM block, which must be a
/// `CERTIFICATE REQUEST`; the error is upstream's message.
pub fn csr_request_der(pem: &[u8]) -> Result<Vec<u8>, &'static str> {
    pem_decode(pem)
        .0
        .filter(|b| b.label == "CERTIFICATE REQUEST")
        .map(|b| b.der)
        .ok_or("PEM block type must be CERTIFICATE REQUEST")
}

/// Go's `pem.Decode`: the first well-formed PEM block in `data` and what follows it; `None`
/// (and all of `data`) when there is none. Malformed blocks are skipped, as Go does.
pub fn pem_decode(data: &[u8]) -> (Option<PemBlock>, &[u8]) {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let mut rest = data;
    loop {
        let Some(start) = find(rest, BEGIN) else {
            return (None, data);
        };
        // A BEGIN line must start a line.
        let at_line_start = start == 0 || rest[start - 1] == b'\n';
        let after = &rest[start + BEGIN.len()..];
        rest = after;
        if !at_line_start {
            continue;
        }
        if let Some((block, tail)) = pem_block(after) {
            return (Some(block), tail);
        }
    }
}

/// The block after `-----BEGIN `, if well formed, and the input after its END line.
fn pem_block(after: &[u8]) -> Option<(PemBlock, &[u8])> {
    let line_end = after
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(after.len());
    let label = std::str::from_utf8(after[..line_end].trim_ascii_end())
        .ok()?
        .strip_suffix("-----")?
        .to_owned();
    let body_and_rest = after.get(line_end + 1..)?;
    let end = format!("-----END {label}-----");
    let end_at = find(body_and_rest, end.as_bytes())?;
    let body = std::str::from_utf8(&body_and_rest[..end_at]).ok()?;
    let mut has_headers = false;
    let mut encoded = String::new();
    for line in body.lines() {
        if encoded.is_empty() && line.contains(':') {
            has_headers = true;
            continue;
        }
        encoded.extend(line.chars().filter(|c| !c.is_ascii_whitespace()));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let mut tail = &body_and_rest[end_at + end.len()..];
    // The END line's own line ending belongs to the block.
    tail = tail.strip_prefix(b"\r").unwrap_or(tail);
    tail = tail.strip_prefix(b"\n").unwrap_or(tail);
    Some((
        PemBlock {
            label,
            has_headers,
            der,
        },
        tail,
    ))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `data` as PEM blocks of `label`, wrapped at 64 columns.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_texts_and_oids_read_as_go_reads_them() {
        let cn = Attribute {
            oid: oid::COMMON_NAME,
            tag: tag::UTF8_STRING,
            value: b"system:admin",
        };
        assert_eq!(cn.text().as_deref(), Some("system:admin"));
        assert_eq!(cn.oid_arcs(), [2, 5, 4, 3]);
        // BMPString is UTF-16 big endian; an odd length is not text.
        let bmp = Attribute {
            oid: oid::ORGANIZATION,
            tag: 0x1e,
            value: &[0, b'd', 0, b'e', 0, b'v', 0, b's'],
        };
        assert_eq!(bmp.text().as_deref(), Some("devs"));
        assert_eq!(bmp.oid_arcs(), [2, 5, 4, 10]);
        let odd = Attribute {
            value: &[0, b'd', 0],
            ..bmp
        };
        assert_eq!(odd.text(), None);
        let integer = Attribute {
            tag: tag::INTEGER,
            ..cn
        };
        assert_eq!(integer.text(), None);
        assert_eq!(
            name_values(&[cn, bmp], oid::ORGANIZATION),
            [Cow::from("devs")]
        );
    }

    #[test]
    fn elements_use_the_short_and_long_length_forms() {
        assert_eq!(element(tag::OCTET_STRING, &[1, 2]), vec![4, 2, 1, 2]);
        let long = element(tag::OCTET_STRING, &[0; 300]);
        assert_eq!(&long[..4], &[4, 0x82, 0x01, 0x2c]);
        let mut reader = Reader::new(&long);
        assert_eq!(reader.read().unwrap().1.len(), 300);
        assert!(reader.is_empty());
    }

    #[test]
    fn pem_round_trips_and_skips_what_is_not_pem() {
        let pem = pem_encode("CERTIFICATE REQUEST", &[0x30, 0x00]);
        let text = format!("junk\n{pem}-----BEGIN X-----\nnot base64!\n-----END X-----\n");
        let (block, rest) = pem_decode(text.as_bytes());
        let block = block.unwrap();
        assert_eq!(block.label, "CERTIFICATE REQUEST");
        assert_eq!(block.der, vec![0x30, 0x00]);
        assert!(!block.has_headers);
        assert_eq!(pem_decode(rest).0, None);
        assert_eq!(pem_decode(b"no pem here").0, None);
    }

    #[test]
    fn times_switch_to_generalized_time_in_2050() {
        assert_eq!(
            time_element(0).unwrap(),
            element(tag::UTC_TIME, b"700101000000Z")
        );
        let t2050 = 2524608000; // 2050-01-01T00:00:00Z
        assert_eq!(
            time_element(t2050).unwrap(),
            element(tag::GENERALIZED_TIME, b"20500101000000Z")
        );
        assert_eq!(
            parse_time(tag::GENERALIZED_TIME, b"20500101000000Z"),
            Ok(t2050)
        );
        assert_eq!(parse_time(tag::UTC_TIME, b"700101000000Z"), Ok(0));
    }

    #[test]
    fn malformed_requests_are_errors_not_panics() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x02],
            &[0x30, 0x00],
            &[0x04, 0x00],
        ] {
            assert!(CertificateRequest::parse(bad).is_err());
            assert!(Certificate::parse(bad).is_err());
        }
    }
}
