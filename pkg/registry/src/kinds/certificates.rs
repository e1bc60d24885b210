//! CertificateSigningRequests (`certificates.k8s.io/v1`): upstream's
//! `pkg/registry/certificates/certificates/strategy.go` and
//! `pkg/apis/certificates/validation/validation.go`.
//!
//! A CSR's spec never changes after create; its status changes only through two
//! subresources with their own strategies: `approval` writes `status.conditions` (Approved,
//! Denied), `status` writes the rest (`certificate`, Failed) while the approval conditions it
//! was sent are replaced by the stored ones. Both stamp condition times the client left out.
//! Validation checks the request is a PEM PKCS#10 request with a valid self-signature, the
//! signer name, usages and duration, and the condition and certificate rules, tolerating on
//! update what the stored object already breaks (as upstream does for old data).

use rkube_api::field::{FieldError, Path};
use rkube_api::k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use rkube_api::user::UserInfo;
use rkube_api::x509::{self, CertificateRequest, PublicKey, oid};
use serde_json::{Map, Value, json};

use super::common::{clear_status, decode, keep_status, selectable};
use crate::Strategy;

/// The signer of the `v1beta1` days, refused through `v1` on create.
pub const LEGACY_UNKNOWN_SIGNER: &str = "kubernetes.io/legacy-unknown";

const CSR_FIELDS: &[&str] = &["spec.signerName"];

/// The condition types upstream gives meaning to.
const APPROVED: &str = "Approved";
const DENIED: &str = "Denied";
const FAILED: &str = "Failed";

/// Every usage upstream knows, sorted (as its `Unsupported value` message lists them).
const USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// CertificateSigningRequests. See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct CsrStrategy;

/// What one write may do, and the old data it tolerates (upstream's
/// `certificateValidationOptions`).
#[derive(Debug, Clone, Copy, Default)]
struct Options {
    /// Add, remove or change Approved/Denied conditions (`approval`).
    approval: bool,
    /// Set `status.certificate` (`status`).
    certificate: bool,
    both_approved_and_denied: bool,
    legacy_signer: bool,
    duplicate_condition_types: bool,
    empty_condition_type: bool,
    arbitrary_certificate: bool,
    unknown_usages: bool,
    duplicate_usages: bool,
}

impl Options {
    /// Upstream's `getValidationOptions`: what the stored `old` already breaks is tolerated.
    fn for_write(new: &CertificateSigningRequest, old: Option<&CertificateSigningRequest>) -> Self {
        let Some(old) = old else {
            return Options::default();
        };
        let types: Vec<&str> = conditions(old).iter().map(|c| c.type_.as_str()).collect();
        let usages = &old.spec.usages;
        let unchanged_certificate = certificate(new) == certificate(old);
        Options {
            both_approved_and_denied: types.contains(&APPROVED) && types.contains(&DENIED),
            legacy_signer: old.spec.signer_name == LEGACY_UNKNOWN_SIGNER,
            duplicate_condition_types: has_duplicates(&types),
            empty_condition_type: types.contains(&""),
            arbitrary_certificate: unchanged_certificate
                || check_certificate(certificate(old)).is_err(),
            unknown_usages: usages
                .iter()
                .flatten()
                .any(|u| !USAGES.contains(&u.as_str())),
            duplicate_usages: has_duplicates(usages.as_deref().unwrap_or_default()),
            ..Options::default()
        }
    }
}

fn has_duplicates<T: PartialEq>(items: &[T]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, item)| items[..i].contains(item))
}

fn conditions(csr: &CertificateSigningRequest) -> &[CertificateSigningRequestCondition] {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
}

fn certificate(csr: &CertificateSigningRequest) -> &[u8] {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .map_or(&[][..], |c| c.0.as_slice())
}

impl Strategy for CsrStrategy {
    fn default(&self, object: &mut Value) {
        // v1's `SetDefaults_CertificateSigningRequestCondition`.
        for condition in conditions_mut(object) {
            if condition.get("status").is_none_or(|s| s == "") {
                condition.insert("status".into(), json!("True"));
            }
        }
    }

    fn prepare_for_create(&self, object: &mut Value) {
        // The requester's identity is the server's to fill ([`Strategy::fill_requester`]),
        // never the client's.
        if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
            for field in ["username", "uid", "groups", "extra"] {
                spec.remove(field);
            }
        }
        // Users cannot create pre-approved requests.
        clear_status(object);
        if let Some(map) = object.as_object_mut() {
            map.insert("status".into(), json!({}));
        }
    }

    fn fill_requester(&self, object: &mut Value, user: &UserInfo) {
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        spec.insert("username".into(), json!(user.name));
        if !user.uid.is_empty() {
            spec.insert("uid".into(), json!(user.uid));
        }
        if !user.groups.is_empty() {
            spec.insert("groups".into(), json!(user.groups));
        }
        if !user.extra.is_empty() {
            spec.insert("extra".into(), json!(user.extra));
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        // Requests are immutable after create except through the subresources.
        match old.get("spec") {
            Some(spec) => new["spec"] = spec.clone(),
            None => {
                if let Some(map) = new.as_object_mut() {
                    map.remove("spec");
                }
            }
        }
        keep_status(new, old);
    }

    fn prepare_for_subresource_update(&self, subresource: &str, new: &mut Value, old: &Value) {
        self.default(new);
        if subresource == "status" {
            // Approval is `approval`'s business: the stored Approved/Denied conditions stand
            // (validation then refuses a write that adds or removes any).
            for kind in [APPROVED, DENIED] {
                preserve_condition_instances(new, old, kind);
            }
        }
        populate_condition_timestamps(new, old);
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        match decode::<CertificateSigningRequest>(object) {
            Ok(csr) => validate_csr(&csr, object, Options::for_write(&csr, None)),
            Err(e) => vec![e],
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        validate_update(new, old, |_| {})
    }

    fn validate_subresource_update(
        &self,
        subresource: &str,
        new: &Value,
        old: &Value,
    ) -> Vec<FieldError> {
        validate_update(new, old, |opts| match subresource {
            "approval" => opts.approval = true,
            "status" => opts.certificate = true,
            _ => {}
        })
    }

    fn has_status_subresource(&self) -> bool {
        true
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        CSR_FIELDS
    }

    fn field_value(&self, object: &Value, field: &str) -> Option<String> {
        selectable(object, CSR_FIELDS, field)
    }
}

fn conditions_mut(object: &mut Value) -> impl Iterator<Item = &mut Map<String, Value>> {
    object
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn condition_list(object: &Value) -> &[Value] {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

fn condition_type(condition: &Value) -> &str {
    condition.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Upstream's `preserveConditionInstances`: when `new` has as many conditions of `kind` as
/// `old`, they become the old ones, in the new positions.
fn preserve_condition_instances(new: &mut Value, old: &Value, kind: &str) {
    let old_instances: Vec<Value> = condition_list(old)
        .iter()
        .filter(|c| condition_type(c) == kind)
        .cloned()
        .collect();
    let Some(list) = new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let positions: Vec<usize> = (0..list.len())
        .filter(|&i| condition_type(&list[i]) == kind)
        .collect();
    if positions.len() != old_instances.len() {
        return;
    }
    for (i, instance) in positions.into_iter().zip(old_instances) {
        list[i] = instance;
    }
}

/// Upstream's `populateConditionTimestamps`: `lastUpdateTime` defaults to now,
/// `lastTransitionTime` to the time of a stored condition of the same type and status, else
/// now.
fn populate_condition_timestamps(new: &mut Value, old: &Value) {
    let now = crate::generic::now(0);
    let old_conditions = condition_list(old).to_vec();
    for condition in conditions_mut(new) {
        let unset = |c: &Map<String, Value>, field: &str| {
            c.get(field).is_none_or(|t| t.is_null() || t == "")
        };
        if unset(condition, "lastUpdateTime") {
            condition.insert("lastUpdateTime".into(), json!(now));
        }
        if unset(condition, "lastTransitionTime") {
            let earlier = old_conditions.iter().find_map(|o| {
                (o.get("type") == condition.get("type")
                    && o.get("status") == condition.get("status"))
                .then(|| o.get("lastTransitionTime"))
                .flatten()
                .filter(|t| t.as_str().is_some_and(|t| !t.is_empty()))
            });
            let time = earlier.cloned().unwrap_or_else(|| json!(now));
            condition.insert("lastTransitionTime".into(), time);
        }
    }
}

/// `validateCertificateSigningRequestUpdate`: the new object's own rules with what the stored
/// one tolerates and `allow` grants, then the rules of the change.
fn validate_update(new: &Value, old: &Value, allow: impl FnOnce(&mut Options)) -> Vec<FieldError> {
    let (csr, old_csr) = match (
        decode::<CertificateSigningRequest>(new),
        decode::<CertificateSigningRequest>(old),
    ) {
        (Ok(csr), Ok(old_csr)) => (csr, old_csr),
        (Err(e), _) | (_, Err(e)) => return vec![e],
    };
    let mut opts = Options::for_write(&csr, Some(&old_csr));
    allow(&mut opts);
    let mut errs = validate_csr(&csr, new, opts);
    let conditions_path = Path::new("status").child("conditions");
    let of_type = |csr: &CertificateSigningRequest, kind: &str| -> Vec<Value> {
        conditions(csr)
            .iter()
            .filter(|c| c.type_ == kind)
            .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
            .collect()
    };
    for kind in [APPROVED, DENIED, FAILED] {
        if of_type(&csr, kind).len() < of_type(&old_csr, kind).len() {
            errs.push(FieldError::forbidden(
                &conditions_path,
                format!("updates may not remove a condition of type {kind:?}"),
            ));
        }
    }
    if !opts.approval {
        for kind in [APPROVED, DENIED] {
            let (before, after) = (of_type(&old_csr, kind), of_type(&csr, kind));
            if after.len() > before.len() {
                errs.push(FieldError::forbidden(
                    &conditions_path,
                    format!("updates may not add a condition of type {kind:?}"),
                ));
            } else if after.len() == before.len() && after != before {
                errs.push(FieldError::forbidden(
                    &conditions_path,
                    format!(
                        "updates may not modify a condition of type {kind:?}\n-{}\n+{}",
                        json!(before),
                        json!(after)
                    ),
                ));
            }
        }
    }
    if certificate(&csr) != certificate(&old_csr) {
        let path = Path::new("status").child("certificate");
        if !opts.certificate {
            errs.push(FieldError::forbidden(
                &path,
                "updates may not set certificate content",
            ));
        } else if !certificate(&old_csr).is_empty() {
            errs.push(FieldError::forbidden(
                &path,
                "updates may not modify existing certificate content",
            ));
        }
    }
    errs
}

/// `validateCertificateSigningRequest` (metadata is the generic registry's).
fn validate_csr(csr: &CertificateSigningRequest, raw: &Value, opts: Options) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = Path::new("spec");
    let spec_raw = raw.get("spec");
    if let Err(message) = check_request(&csr.spec.request.0) {
        let sent = spec_raw
            .and_then(|s| s.get("request"))
            .cloned()
            .unwrap_or(Value::Null);
        errs.push(FieldError::invalid(&spec.child("request"), sent, message));
    }
    let usages = csr.spec.usages.as_deref().unwrap_or_default();
    if usages.is_empty() {
        errs.push(FieldError::required(&spec.child("usages"), ""));
    }
    for (i, usage) in usages.iter().enumerate() {
        let path = spec.child("usages").index(i);
        if !opts.unknown_usages && !USAGES.contains(&usage.as_str()) {
            errs.push(FieldError::not_supported(&path, usage, USAGES));
        }
        if !opts.duplicate_usages && usages[..i].contains(usage) {
            errs.push(FieldError::duplicate(&path, usage));
        }
    }
    let signer = &csr.spec.signer_name;
    if !opts.legacy_signer && signer == LEGACY_UNKNOWN_SIGNER {
        errs.push(FieldError::invalid(
            &spec.child("signerName"),
            signer,
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        errs.extend(validate_signer_name(&spec.child("signerName"), signer));
    }
    if let Some(seconds) = csr.spec.expiration_seconds.filter(|&s| s < 600) {
        errs.push(FieldError::invalid(
            &spec.child("expirationSeconds"),
            seconds,
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    errs.extend(validate_conditions(conditions(csr), opts));
    if !opts.arbitrary_certificate
        && let Err(message) = check_certificate(certificate(csr))
    {
        errs.push(FieldError::invalid(
            &Path::new("status").child("certificate"),
            "<certificate data>",
            message,
        ));
    }
    errs
}

fn validate_conditions(
    list: &[CertificateSigningRequestCondition],
    opts: Options,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let path = Path::new("status").child("conditions");
    let (mut approved, mut denied) = (false, false);
    for (i, condition) in list.iter().enumerate() {
        let at = path.index(i);
        let kind = condition.type_.as_str();
        if !opts.empty_condition_type && kind.is_empty() {
            errs.push(FieldError::required(&at.child("type"), ""));
        }
        let allowed: &[&str] = if [APPROVED, DENIED, FAILED].contains(&kind) {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if condition.status.is_empty() {
            errs.push(FieldError::required(&at.child("status"), ""));
        } else if !allowed.contains(&condition.status.as_str()) {
            errs.push(FieldError::not_supported(
                &at.child("status"),
                &condition.status,
                allowed,
            ));
        }
        if !opts.both_approved_and_denied {
            let clash = match kind {
                APPROVED => {
                    approved = true;
                    denied
                }
                DENIED => {
                    denied = true;
                    approved
                }
                _ => false,
            };
            if clash {
                errs.push(FieldError::invalid(
                    &at.child("type"),
                    kind,
                    "Approved and Denied conditions are mutually exclusive",
                ));
            }
        }
        if !opts.duplicate_condition_types && list[..i].iter().any(|c| c.type_ == kind) {
            errs.push(FieldError::duplicate(&at.child("type"), kind));
        }
    }
    errs
}

/// Upstream's `ValidateSignerName`: `<domain with a dot>/<path of DNS subdomains>`.
fn validate_signer_name(path: &Path, name: &str) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let Some((domain, signer)) = name.split_once('/').filter(|(_, s)| !s.contains('/')) else {
        return vec![FieldError::invalid(
            path,
            name,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        )];
    };
    let mut errs = Vec::new();
    const SUBDOMAIN_MAX: usize = 253;
    const LABEL_MAX: usize = 63;
    if domain.len() > SUBDOMAIN_MAX {
        errs.push(FieldError::too_long(path, SUBDOMAIN_MAX as i64));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    // One bad label is enough: the rest would repeat the same complaint.
    if let Some((label, problems)) = labels.iter().find_map(|l| {
        let p = rkube_api::validation::is_dns1123_label(l);
        (!p.is_empty()).then_some((l, p))
    }) {
        errs.extend(problems.into_iter().map(|p| {
            FieldError::invalid(path, domain, format!("validating label {label:?}: {p}"))
        }));
    }
    if labels.len() < 2 {
        errs.push(FieldError::invalid(
            path,
            domain,
            "should be a domain with at least two segments separated by dots",
        ));
    }
    if let Some((label, problems)) = signer.split('.').find_map(|l| {
        let p = rkube_api::validation::is_dns1123_subdomain(l);
        (!p.is_empty()).then_some((l, p))
    }) {
        errs.extend(problems.into_iter().map(|p| {
            FieldError::invalid(path, signer, format!("validating label {label:?}: {p}"))
        }));
    }
    let max = SUBDOMAIN_MAX + (SUBDOMAIN_MAX + LABEL_MAX + 1) + 1;
    if name.len() > max {
        errs.push(FieldError::too_long(path, max as i64));
    }
    errs
}

/// Upstream's `validateCSR`: a PEM `CERTIFICATE REQUEST` block holding a PKCS#10 request whose
/// signature verifies with its own key.
fn check_request(pem: &[u8]) -> Result<(), String> {
    let der = x509::csr_request_der(pem)?;
    let request = CertificateRequest::parse(&der).map_err(|e| e.to_string())?;
    verify_signature(&request)
}

fn verify_signature(request: &CertificateRequest<'_>) -> Result<(), String> {
    use ring::signature as sig;
    let key = PublicKey::parse(request.spki).map_err(|e| e.to_string())?;
    let (algorithm, failure): (&dyn sig::VerificationAlgorithm, &str) =
        match (request.signature_algorithm, key.algorithm, key.curve) {
            (oid::RSA_SHA256, oid::RSA_ENCRYPTION, _) => (
                &sig::RSA_PKCS1_2048_8192_SHA256,
                "crypto/rsa: verification error",
            ),
            (oid::RSA_SHA384, oid::RSA_ENCRYPTION, _) => (
                &sig::RSA_PKCS1_2048_8192_SHA384,
                "crypto/rsa: verification error",
            ),
            (oid::RSA_SHA512, oid::RSA_ENCRYPTION, _) => (
                &sig::RSA_PKCS1_2048_8192_SHA512,
                "crypto/rsa: verification error",
            ),
            (oid::ECDSA_SHA256, oid::EC_PUBLIC_KEY, Some(oid::P256)) => (
                &sig::ECDSA_P256_SHA256_ASN1,
                "x509: ECDSA verification failure",
            ),
            (oid::ECDSA_SHA384, oid::EC_PUBLIC_KEY, Some(oid::P256)) => (
                &sig::ECDSA_P256_SHA384_ASN1,
                "x509: ECDSA verification failure",
            ),
            (oid::ECDSA_SHA256, oid::EC_PUBLIC_KEY, Some(oid::P384)) => (
                &sig::ECDSA_P384_SHA256_ASN1,
                "x509: ECDSA verification failure",
            ),
            (oid::ECDSA_SHA384, oid::EC_PUBLIC_KEY, Some(oid::P384)) => (
                &sig::ECDSA_P384_SHA384_ASN1,
                "x509: ECDSA verification failure",
            ),
            (oid::ED25519, oid::ED25519, None) => {
                (&sig::ED25519, "x509: Ed25519 verification failure")
            }
            _ => return Err("x509: cannot verify signature: algorithm unimplemented".into()),
        };
    sig::UnparsedPublicKey::new(algorithm, key.key)
        .verify(request.info, request.signature)
        .map_err(|_| failure.to_string())
}

/// Upstream's `validateCertificate`: empty, or only `CERTIFICATE` PEM blocks without headers,
/// each holding a certificate.
fn check_certificate(pem: &[u8]) -> Result<(), String> {
    if pem.is_empty() {
        return Ok(());
    }
    let mut rest = pem;
    let mut blocks = 0;
    while let (Some(block), tail) = x509::pem_decode(rest) {
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "only CERTIFICATE PEM blocks are allowed, found {:?}",
                block.label
            ));
        }
        if block.has_headers {
            return Err("no PEM block headers are permitted".into());
        }
        x509::Certificate::parse(&block.der).map_err(|e| e.to_string())?;
        blocks += 1;
        rest = tail;
    }
    if blocks == 0 {
        return Err("must contain at least one CERTIFICATE PEM block".into());
    }
    Ok(())
}
