//! The CertificateSigningRequest plugins (upstream's `plugin/pkg/admission/certificates`):
//!
//! - CertificateApproval: approving or denying (`certificatesigningrequests/approval`) needs
//!   `approve` on the request's signer;
//! - CertificateSigning: writing `status.certificate` or the status conditions
//!   (`certificatesigningrequests/status`) needs `sign` on the signer;
//! - CertificateSubjectRestriction: no request to `kubernetes.io/kube-apiserver-client` may ask
//!   for the `system:masters` group.
//!
//! A signer is the synthetic resource `signers` of `certificates.k8s.io`, named by the signer
//! name or by its domain and a wildcard (`kubernetes.io/*`). Permission is asked of the
//! server's authorizer through [`Authorize`], which the composition root implements (this
//! crate does not depend on `rkube-auth`). ClusterTrustBundleAttest is absent: rkube does not
//! serve ClusterTrustBundles.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use rkube_api::field::go_quote;
use rkube_api::x509::{self, CertificateRequest};
use serde_json::Value;

use crate::attributes::{Attributes, Operation, UserInfo};
use crate::chain::{Access, Authorize, Plugin, Result, Warnings};

const GROUP: &str = "certificates.k8s.io";
const CSRS: &str = "certificatesigningrequests";
/// The signer whose certificates the API server trusts for client logins.
const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
const MASTERS: &str = rkube_api::user::MASTERS_GROUP;

/// Upstream's `IsAuthorizedForSignerName`: `verb` on the signer itself, else on every signer
/// of its domain (`<domain>/*`).
async fn authorized_for_signer(
    authz: &dyn Authorize,
    user: &UserInfo,
    verb: &str,
    signer: &str,
) -> bool {
    let on = |name| Access {
        verb,
        group: GROUP,
        resource: "signers",
        namespace: "",
        name,
    };
    if authz.allowed(user, &on(signer)).await {
        return true;
    }
    let domain = signer.split('/').next().unwrap_or_default();
    authz.allowed(user, &on(&format!("{domain}/*"))).await
}

/// Whether `attrs` is an update of `subresource` of a CSR.
fn csr_update(attrs: &Attributes, subresource: &str) -> bool {
    attrs.op() == Operation::Update
        && attrs.resource.group == GROUP
        && attrs.resource.name == CSRS
        && attrs.subresource == subresource
}

fn signer_name(csr: &Value) -> &str {
    csr["spec"]["signerName"].as_str().unwrap_or_default()
}

/// The stored request, which names the signer (the request may not change it).
fn old_csr(attrs: &Attributes) -> Result<&Value> {
    attrs
        .old_object
        .as_ref()
        .ok_or_else(|| attrs.forbidden("expected type CertificateSigningRequest, got: <nil>"))
}

/// CertificateApproval.
#[derive(Debug)]
pub struct CertificateApproval {
    authz: Arc<dyn Authorize>,
}

impl CertificateApproval {
    /// The plugin, asking `authz`.
    pub fn new(authz: Arc<dyn Authorize>) -> Self {
        CertificateApproval { authz }
    }
}

#[async_trait]
impl Plugin for CertificateApproval {
    fn name(&self) -> &'static str {
        "CertificateApproval"
    }

    async fn validate(&self, attrs: &Attributes, _warnings: &Warnings) -> Result<()> {
        if !csr_update(attrs, "approval") {
            return Ok(());
        }
        let signer = signer_name(old_csr(attrs)?);
        if authorized_for_signer(&*self.authz, &attrs.user, "approve", signer).await {
            return Ok(());
        }
        Err(attrs.forbidden(format!(
            "user not permitted to approve requests with signerName {}",
            go_quote(signer)
        )))
    }
}

/// CertificateSigning.
#[derive(Debug)]
pub struct CertificateSigning {
    authz: Arc<dyn Authorize>,
}

impl CertificateSigning {
    /// The plugin, asking `authz`.
    pub fn new(authz: Arc<dyn Authorize>) -> Self {
        CertificateSigning { authz }
    }
}

#[async_trait]
impl Plugin for CertificateSigning {
    fn name(&self) -> &'static str {
        "CertificateSigning"
    }

    async fn validate(&self, attrs: &Attributes, _warnings: &Warnings) -> Result<()> {
        if !csr_update(attrs, "status") {
            return Ok(());
        }
        let old = old_csr(attrs)?;
        let new = attrs.object.as_ref().unwrap_or(&Value::Null);
        let field = |csr: &Value, name: &str| csr["status"][name].clone();
        // Only a new certificate or new conditions are a signer's act.
        if field(old, "certificate") == field(new, "certificate")
            && field(old, "conditions") == field(new, "conditions")
        {
            return Ok(());
        }
        let signer = signer_name(old);
        if authorized_for_signer(&*self.authz, &attrs.user, "sign", signer).await {
            return Ok(());
        }
        Err(attrs.forbidden(format!(
            "user not permitted to sign requests with signerName {}",
            go_quote(signer)
        )))
    }
}

/// CertificateSubjectRestriction.
#[derive(Debug)]
pub struct CertificateSubjectRestriction;

/// The PKCS#10 request in a CSR object's `spec.request` (base64 of PEM in its JSON form),
/// handed to `read`; the error is upstream's parse error.
pub(crate) fn read_request<T>(
    csr: &Value,
    read: impl FnOnce(&CertificateRequest<'_>) -> T,
) -> Result<T, String> {
    let pem = csr
        .pointer("/spec/request")
        .and_then(Value::as_str)
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .unwrap_or_default();
    let der = x509::csr_request_der(&pem)?;
    let request = CertificateRequest::parse(&der).map_err(|e| e.to_string())?;
    Ok(read(&request))
}

/// The organizations (groups) a CSR's request asks for.
fn requested_groups(csr: &Value) -> Result<Vec<String>, String> {
    read_request(csr, |request| {
        request
            .organizations()
            .into_iter()
            .map(|o| o.into_owned())
            .collect()
    })
}

#[async_trait]
impl Plugin for CertificateSubjectRestriction {
    fn name(&self) -> &'static str {
        "CertificateSubjectRestriction"
    }

    async fn validate(&self, attrs: &Attributes, _warnings: &Warnings) -> Result<()> {
        let Some(csr) = attrs.object.as_ref() else {
            return Ok(());
        };
        if attrs.op() != Operation::Create
            || attrs.resource.group != GROUP
            || attrs.resource.name != CSRS
            || !attrs.subresource.is_empty()
            || signer_name(csr) != KUBE_APISERVER_CLIENT
        {
            return Ok(());
        }
        let groups = requested_groups(csr)
            .map_err(|e| attrs.forbidden(format!("failed to parse CSR: {e}")))?;
        if groups.iter().any(|g| g == MASTERS) {
            return Err(attrs.forbidden(format!(
                "use of {KUBE_APISERVER_CLIENT} signer with {MASTERS} group is not allowed"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::attributes::Gvn;
    use crate::testing::csr_with_request;

    /// Allows exactly the listed `(verb, name)` pairs on signers; records every question.
    #[derive(Debug, Default)]
    struct Grants {
        allowed: Vec<(&'static str, &'static str)>,
        asked: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Authorize for Grants {
        async fn allowed(&self, _: &UserInfo, a: &Access<'_>) -> bool {
            self.asked
                .lock()
                .unwrap()
                .push(format!("{} {}.{} {}", a.verb, a.resource, a.group, a.name));
            self.allowed
                .iter()
                .any(|(v, n)| *v == a.verb && *n == a.name)
        }
    }

    fn csr(signer: &str, status: Value) -> Value {
        json!({"metadata": {"name": "req"}, "spec": {"signerName": signer, "request": ""},
               "status": status})
    }

    fn update(sub: &str, old: Value, new: Value) -> Attributes {
        Attributes {
            operation: Some(Operation::Update),
            kind: Gvn::new(GROUP, "v1", "CertificateSigningRequest"),
            resource: Gvn::new(GROUP, "v1", CSRS),
            subresource: sub.into(),
            name: "req".into(),
            object: Some(new),
            old_object: Some(old),
            user: UserInfo::new("carol", &[]),
            ..Attributes::default()
        }
    }

    #[tokio::test]
    async fn approving_needs_approve_on_the_signer_or_its_domain() {
        let signer = "example.com/issuer";
        let approved = json!({"conditions": [{"type": "Approved", "status": "True"}]});
        let a = update("approval", csr(signer, json!({})), csr(signer, approved));
        let w = Warnings::default();
        let none = Arc::new(Grants::default());
        let err = CertificateApproval::new(none.clone())
            .validate(&a, &w)
            .await
            .unwrap_err();
        assert_eq!(err.code(), 403);
        assert_eq!(
            err.message(),
            r#"certificatesigningrequests.certificates.k8s.io "req" is forbidden: user not permitted to approve requests with signerName "example.com/issuer""#
        );
        assert_eq!(
            *none.asked.lock().unwrap(),
            [
                "approve signers.certificates.k8s.io example.com/issuer",
                "approve signers.certificates.k8s.io example.com/*"
            ]
        );
        for name in [signer, "example.com/*"] {
            let grants = Arc::new(Grants {
                allowed: vec![("approve", name)],
                ..Grants::default()
            });
            CertificateApproval::new(grants)
                .validate(&a, &w)
                .await
                .unwrap();
        }
        // Other subresources are not approvals.
        let status = update("status", csr(signer, json!({})), csr(signer, json!({})));
        CertificateApproval::new(none)
            .validate(&status, &w)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn signing_needs_sign_when_the_certificate_or_conditions_change() {
        let signer = KUBE_APISERVER_CLIENT;
        let plugin = CertificateSigning::new(Arc::new(Grants::default()));
        let w = Warnings::default();
        let unchanged = update("status", csr(signer, json!({})), csr(signer, json!({})));
        plugin.validate(&unchanged, &w).await.unwrap();
        let issued = update(
            "status",
            csr(signer, json!({})),
            csr(signer, json!({"certificate": "Y2VydA=="})),
        );
        assert_eq!(
            plugin.validate(&issued, &w).await.unwrap_err().message(),
            r#"certificatesigningrequests.certificates.k8s.io "req" is forbidden: user not permitted to sign requests with signerName "kubernetes.io/kube-apiserver-client""#
        );
        let failed = update(
            "status",
            csr(signer, json!({})),
            csr(
                signer,
                json!({"conditions": [{"type": "Failed", "status": "True"}]}),
            ),
        );
        assert!(plugin.validate(&failed, &w).await.is_err());
        let signer_role = CertificateSigning::new(Arc::new(Grants {
            allowed: vec![("sign", "kubernetes.io/*")],
            ..Grants::default()
        }));
        signer_role.validate(&issued, &w).await.unwrap();
    }

    fn create(object: Value) -> Attributes {
        Attributes {
            operation: Some(Operation::Create),
            resource: Gvn::new(GROUP, "v1", CSRS),
            name: "req".into(),
            object: Some(object),
            ..Attributes::default()
        }
    }

    #[tokio::test]
    async fn api_server_client_requests_may_not_ask_for_system_masters() {
        let w = Warnings::default();
        let plugin = CertificateSubjectRestriction;
        let masters = create(csr_with_request(
            KUBE_APISERVER_CLIENT,
            "eve",
            &["devs", "system:masters"],
        ));
        let err = plugin.validate(&masters, &w).await.unwrap_err();
        assert_eq!(err.code(), 403);
        assert_eq!(
            err.message(),
            r#"certificatesigningrequests.certificates.k8s.io "req" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"#
        );
        let devs = create(csr_with_request(KUBE_APISERVER_CLIENT, "eve", &["devs"]));
        plugin.validate(&devs, &w).await.unwrap();
        // Other signers decide for themselves.
        let other = create(csr_with_request(
            "example.com/issuer",
            "eve",
            &["system:masters"],
        ));
        plugin.validate(&other, &w).await.unwrap();
    }
}
