//! Just enough DER to read the parts of an X.509 certificate that rkube needs and that neither
//! rcgen (without its x509-parser feature) nor rustls expose: the subject name's attributes (a
//! CA's name to sign under, a client's user and groups), the public key, and the subject key
//! identifier. Chain and signature checks are rustls/webpki's job, never this module's.

/// A certificate that is not the DER this module can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed certificate: {0}")]
pub struct DerError(&'static str);

/// What rkube reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFields<'a> {
    /// The subject's attributes in order (all RDNs flattened).
    pub subject: Vec<Attribute<'a>>,
    /// `SubjectPublicKeyInfo`, the whole DER element.
    pub spki: &'a [u8],
    /// The subject key identifier extension's key id, when present.
    pub subject_key_id: Option<&'a [u8]>,
    /// The end of the validity period, in seconds since the Unix epoch.
    pub not_after: i64,
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

/// `id-at-commonName` (2.5.4.3).
pub const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// `id-at-organizationName` (2.5.4.10).
pub const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
/// `id-ce-subjectKeyIdentifier` (2.5.29.14).
const OID_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];

/// ASN.1 string tags.
pub const TAG_UTF8_STRING: u8 = 0x0c;
/// See [`TAG_UTF8_STRING`].
pub const TAG_PRINTABLE_STRING: u8 = 0x13;
const TAG_NUMERIC_STRING: u8 = 0x12;
const TAG_IA5_STRING: u8 = 0x16;
const TAG_BMP_STRING: u8 = 0x1e;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;

/// A cursor over DER elements.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Reads one element: its tag and content octets.
    fn read(&mut self) -> Result<(u8, &'a [u8]), DerError> {
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

    /// Reads one element that must have `tag`.
    fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], DerError> {
        match self.read()? {
            (t, content) if t == tag => Ok(content),
            _ => Err(DerError(what)),
        }
    }

    /// Reads one element and returns it whole (tag, length and content).
    fn read_whole(&mut self) -> Result<&'a [u8], DerError> {
        let before = self.0;
        self.read()?;
        Ok(&before[..before.len() - self.0.len()])
    }
}

/// Reads the subject, public key and subject key id of a DER certificate.
pub fn parse_certificate(der: &[u8]) -> Result<CertFields<'_>, DerError> {
    let cert = Reader(der).expect(SEQUENCE, "certificate is not a SEQUENCE")?;
    let mut tbs = Reader(Reader(cert).expect(SEQUENCE, "tbsCertificate is not a SEQUENCE")?);
    if tbs.peek_tag() == Some(0xa0) {
        tbs.read()?; // version
    }
    tbs.read()?; // serialNumber
    tbs.read()?; // signature algorithm
    tbs.read()?; // issuer
    let mut validity = Reader(tbs.expect(SEQUENCE, "validity is not a SEQUENCE")?);
    validity.read()?; // notBefore
    let (tag, time) = validity.read()?;
    let not_after = parse_time(tag, time)?;
    let subject = parse_name(tbs.expect(SEQUENCE, "subject is not a SEQUENCE")?)?;
    let spki = tbs.read_whole()?;
    let mut subject_key_id = None;
    while !tbs.is_empty() {
        let (tag, content) = tbs.read()?;
        if tag != 0xa3 {
            continue; // issuerUniqueID, subjectUniqueID
        }
        let mut extensions = Reader(Reader(content).expect(SEQUENCE, "bad extensions")?);
        while !extensions.is_empty() {
            let mut extension = Reader(extensions.expect(SEQUENCE, "bad extension")?);
            let oid = extension.expect(OID, "extension without OID")?;
            if extension.peek_tag() == Some(0x01) {
                extension.read()?; // critical
            }
            let value = extension.expect(OCTET_STRING, "extension without value")?;
            if oid == OID_SUBJECT_KEY_ID {
                subject_key_id = Some(Reader(value).expect(OCTET_STRING, "bad key identifier")?);
            }
        }
    }
    Ok(CertFields {
        subject,
        spki,
        subject_key_id,
        not_after,
    })
}

/// A certificate `Time`: UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`), in seconds since the Unix epoch.
fn parse_time(tag: u8, value: &[u8]) -> Result<i64, DerError> {
    let text = std::str::from_utf8(value).map_err(|_| DerError("time is not ASCII"))?;
    let full = match tag {
        0x17 if text.len() == 13 => {
            let yy: i32 = text[..2].parse().map_err(|_| DerError("bad UTCTime"))?;
            format!("{}{}", if yy < 50 { 20 } else { 19 }, text)
        }
        0x18 if text.len() == 15 => text.to_string(),
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
    jiff::civil::DateTime::new(
        field(0..4),
        small(4..6),
        small(6..8),
        small(8..10),
        small(10..12),
        small(12..14),
        0,
    )
    .and_then(|time| time.to_zoned(jiff::tz::TimeZone::UTC))
    .map(|z| z.timestamp().as_second())
    .map_err(|_| DerError("validity time out of range"))
}

/// A `Name`'s content: SET OF SEQUENCE { type, value }, flattened in order.
fn parse_name(content: &[u8]) -> Result<Vec<Attribute<'_>>, DerError> {
    let mut rdns = Reader(content);
    let mut attributes = Vec::new();
    while !rdns.is_empty() {
        let mut set = Reader(rdns.expect(SET, "name component is not a SET")?);
        while !set.is_empty() {
            let mut pair = Reader(set.expect(SEQUENCE, "name attribute is not a SEQUENCE")?);
            let oid = pair.expect(OID, "name attribute without type")?;
            let (tag, value) = pair.read()?;
            attributes.push(Attribute { oid, tag, value });
        }
    }
    Ok(attributes)
}

impl Attribute<'_> {
    /// The value as text, for the string types Go's x509 package decodes; `None` otherwise.
    pub fn text(&self) -> Option<String> {
        match self.tag {
            TAG_UTF8_STRING | TAG_PRINTABLE_STRING | TAG_NUMERIC_STRING | TAG_IA5_STRING => {
                String::from_utf8(self.value.to_vec()).ok()
            }
            TAG_BMP_STRING if self.value.len().is_multiple_of(2) => {
                let units: Vec<u16> = self
                    .value
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16(&units).ok()
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

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, IsCa, KeyPair};

    use super::*;

    /// rcgen writes UTCTime before 2050 and GeneralizedTime from 2050 on; both are read.
    #[test]
    fn reads_the_end_of_validity_in_both_time_forms() {
        for ((y, m, d), expected) in [
            ((2030, 1, 2), 1_893_542_400),
            ((2060, 6, 30), 2_855_779_200),
        ] {
            let mut params = CertificateParams::new(vec!["x".to_string()]).unwrap();
            params.not_after = rcgen::date_time_ymd(y, m, d);
            let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
            let fields = parse_certificate(cert.der()).unwrap();
            assert_eq!(fields.not_after, expected, "{y}-{m}-{d}");
        }
        assert!(
            parse_time(0x17, b"3001020000Z").is_err(),
            "month 01, day 02, hour 00, no seconds"
        );
        assert!(parse_time(0x17, b"301302000000Z").is_err(), "month 13");
        assert!(parse_time(0x02, b"x").is_err());
    }

    #[test]
    fn reads_what_rcgen_writes() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "system:admin");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        let fields = parse_certificate(cert.der()).unwrap();
        let texts: Vec<(Vec<u64>, String)> = fields
            .subject
            .iter()
            .map(|a| (a.oid_arcs(), a.text().unwrap()))
            .collect();
        assert_eq!(
            texts,
            [
                (vec![2, 5, 4, 3], "system:admin".to_string()),
                (vec![2, 5, 4, 10], "system:masters".to_string()),
            ]
        );
        use rcgen::PublicKeyData as _;
        assert_eq!(fields.spki, key.subject_public_key_info());
        assert_eq!(
            fields.subject_key_id.unwrap(),
            params.key_identifier(&key).as_slice()
        );
    }

    #[test]
    fn names_keep_every_value_in_order_whatever_the_string_type() {
        let attribute = |oid: &[u8], tag: u8, value: &[u8]| {
            let mut pair = vec![0x06, oid.len() as u8];
            pair.extend_from_slice(oid);
            pair.extend_from_slice(&[tag, value.len() as u8]);
            pair.extend_from_slice(value);
            let mut set = vec![0x31, pair.len() as u8 + 2, 0x30, pair.len() as u8];
            set.extend(pair);
            set
        };
        let name: Vec<u8> = [
            attribute(OID_ORGANIZATION, TAG_UTF8_STRING, b"a"),
            attribute(OID_ORGANIZATION, TAG_PRINTABLE_STRING, b"b"),
            attribute(OID_COMMON_NAME, TAG_BMP_STRING, &[0, b'x']),
        ]
        .concat();
        let texts: Vec<String> = parse_name(&name)
            .unwrap()
            .iter()
            .map(|a| a.text().unwrap())
            .collect();
        assert_eq!(texts, ["a", "b", "x"]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x05, 0x30],
            &[0x30, 0x02, 0x30, 0x00],
            &[0x04, 0x00],
        ] {
            assert!(parse_certificate(bad).is_err(), "{bad:?}");
        }
    }
}
