//! The CSR signing controller (upstream's `pkg/controller/certificates/signer`, the
//! `csrsigning-*` controllers of kube-controller-manager): issues certificates for approved
//! CertificateSigningRequests of the Kubernetes signers rkube has a CA for.
//!
//! For each CSR that is approved (and not denied), not failed and not yet signed, of
//! - `kubernetes.io/kube-apiserver-client` and `kubernetes.io/kube-apiserver-client-kubelet`:
//!   the client CA (k3s's `client-ca`), the one the API server trusts for client certificates;
//! - `kubernetes.io/kubelet-serving`: the server CA (k3s signs kubelet serving certificates
//!   with `server-ca`),
//!
//! the request is checked against the signer's restrictions ([`check_signer`]); one that
//! breaks them gets a `Failed` condition (reason `SignerValidationFailure`, upstream's
//! message); otherwise the certificate ([`sign::SigningCa::sign`]) is written to
//! `status.certificate` through the `status` subresource. Its lifetime is the request's
//! `expirationSeconds` (at least ten minutes) capped by [`Config::duration`], upstream's
//! `--cluster-signing-duration` (one year by default).
//!
//! [`approver`] is the approving controller, which approves kubelet client requests whose
//! requester RBAC allows to have them.

pub mod approver;
pub mod sign;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt as _};
use rkube_api::x509::{self, CertificateRequest};

pub use self::sign::SigningCa;

/// `kubernetes.io/kube-apiserver-client`.
pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
/// `kubernetes.io/kube-apiserver-client-kubelet`.
pub const KUBELET_CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// `kubernetes.io/kubelet-serving`.
pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";

/// kube-controller-manager's `--cluster-signing-duration` default.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The shortest certificate issued, whatever the request asks (twice the backdating).
const MIN_DURATION: Duration = Duration::from_secs(10 * 60);

/// Upstream's retry of a failed pass.
const RETRY: Duration = Duration::from_secs(5);

/// The signers' CAs and limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// Signs `kube-apiserver-client` and `kube-apiserver-client-kubelet`; `None`: those
    /// requests are left alone.
    pub client_ca: Option<Arc<SigningCa>>,
    /// Signs `kubelet-serving`; `None`: left alone.
    pub server_ca: Option<Arc<SigningCa>>,
    /// The longest lifetime of an issued certificate.
    pub duration: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            client_ca: None,
            server_ca: None,
            duration: DEFAULT_DURATION,
        }
    }
}

/// Why a pass over a CSR failed (it is retried), or a CA could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error("updating csr {name:?}")]
    Api {
        /// The CSR.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The request in the CSR does not parse (validation should have refused it).
    #[error("unable to parse csr {name:?}: {message}")]
    Parse {
        /// The CSR.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The CA certificate or key is unusable.
    #[error("loading the signing CA: {0}")]
    Ca(String),
    /// Signing failed.
    #[error("error auto signing csr: {0}")]
    Sign(String),
}

/// Runs the signing controller until `shutdown` completes. Does nothing without any CA.
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if config.client_ca.is_none() && config.server_ca.is_none() {
        return;
    }
    let api: Api<CertificateSigningRequest> = Api::all(client);
    let context = Arc::new(Context {
        api: api.clone(),
        config,
    });
    let passes = Controller::new(api, watcher::Config::default())
        .run(reconcile, error_policy, context)
        .for_each(|outcome| async move {
            match outcome {
                Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
                Err(e) => tracing::warn!(error = %e, "csr signing controller"),
            }
        });
    // A pass cut short loses nothing: its one write is atomic, and an unsigned approved CSR
    // is signed by the next start.
    tokio::select! {
        () = passes => {}
        () = shutdown => {}
    }
}

struct Context {
    api: Api<CertificateSigningRequest>,
    config: Config,
}

fn error_policy(csr: Arc<CertificateSigningRequest>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(name = %csr.name_any(), error = %error, "signing certificate");
    Action::requeue(RETRY)
}

/// Whether a condition of `kind` is `True`.
fn has_condition(csr: &CertificateSigningRequest, kind: &str) -> bool {
    csr.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| c.type_ == kind && c.status == "True")
}

async fn reconcile(
    csr: Arc<CertificateSigningRequest>,
    context: Arc<Context>,
) -> Result<Action, Error> {
    let done = Action::await_change();
    // Upstream's `IsCertificateRequestApproved`: approved and not denied.
    let approved = has_condition(&csr, "Approved") && !has_condition(&csr, "Denied");
    let signed = csr
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty());
    if !approved || signed || has_condition(&csr, "Failed") {
        return Ok(done);
    }
    let ca = match csr.spec.signer_name.as_str() {
        KUBE_APISERVER_CLIENT | KUBELET_CLIENT => context.config.client_ca.as_ref(),
        KUBELET_SERVING => context.config.server_ca.as_ref(),
        _ => None,
    };
    let Some(ca) = ca else {
        return Ok(done);
    };
    let name = csr.name_any();
    let der = request_der(&csr).map_err(|message| Error::Parse {
        name: name.clone(),
        message: message.into(),
    })?;
    let request = CertificateRequest::parse(&der).map_err(|e| Error::Parse {
        name: name.clone(),
        message: e.to_string(),
    })?;
    let usages = csr.spec.usages.clone().unwrap_or_default();
    let mut status = csr.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    match check_signer(&csr.spec.signer_name, &request, &usages) {
        Err(message) => {
            status.conditions.get_or_insert_with(Vec::new).push(
                CertificateSigningRequestCondition {
                    type_: "Failed".into(),
                    status: "True".into(),
                    reason: Some("SignerValidationFailure".into()),
                    message: Some(message),
                    last_update_time: Some(Time(now)),
                    ..CertificateSigningRequestCondition::default()
                },
            );
        }
        Ok(()) => {
            let ttl = duration(csr.spec.expiration_seconds, context.config.duration);
            let pem = ca.sign(&request, &usages, ttl, now.as_second())?;
            status.certificate = Some(ByteString(pem.into_bytes()));
        }
    }
    write_status(&context.api, &csr, status).await?;
    Ok(done)
}

/// The DER of the PKCS#10 request in `csr` (upstream's `ParseCSR` up to the parse).
fn request_der(csr: &CertificateSigningRequest) -> Result<Vec<u8>, &'static str> {
    x509::csr_request_der(&csr.spec.request.0)
}

async fn write_status(
    api: &Api<CertificateSigningRequest>,
    csr: &CertificateSigningRequest,
    status: CertificateSigningRequestStatus,
) -> Result<(), Error> {
    let mut updated = csr.clone();
    updated.status = Some(status);
    api.replace_status(&csr.name_any(), &PostParams::default(), &updated)
        .await
        .map_err(|source| Error::Api {
            name: csr.name_any(),
            source,
        })?;
    Ok(())
}

/// Upstream's `duration`: the request's `expirationSeconds`, at least [`MIN_DURATION`], at
/// most `max`.
fn duration(expiration_seconds: Option<i32>, max: Duration) -> Duration {
    let Some(seconds) = expiration_seconds else {
        return max;
    };
    let requested = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    if requested > max {
        max
    } else {
        requested.max(MIN_DURATION)
    }
}

/// The signer's restrictions on a request (upstream's `isKubeAPIServerClient`,
/// `ValidateKubeletClientCSR`, `ValidateKubeletServingCSR`); the error is the message of the
/// `Failed` condition.
pub fn check_signer(
    signer: &str,
    request: &CertificateRequest<'_>,
    usages: &[String],
) -> Result<(), String> {
    let has = |u: &str| usages.iter().any(|x| x == u);
    // Set equality, as upstream compares usages (duplicates collapse).
    let usages_are = |wanted: &[&str]| {
        wanted.iter().all(|w| has(w)) && usages.iter().all(|u| wanted.contains(&u.as_str()))
    };
    let names = &request.alt_names;
    let nodes_only = request.organizations() == ["system:nodes"];
    let node_name = request.common_name().starts_with("system:node:");
    match signer {
        KUBE_APISERVER_CLIENT => {
            if let Some(bad) = usages.iter().find(|u| {
                !matches!(
                    u.as_str(),
                    "digital signature" | "key encipherment" | "client auth"
                )
            }) {
                return Err(format!("invalid usage for client certificate: {bad}"));
            }
            if !has("client auth") {
                return Err("missing required usage for client certificate: client auth".into());
            }
        }
        KUBELET_CLIENT => {
            if !nodes_only {
                return Err("subject organization is not system:nodes".into());
            }
            if !names.dns.is_empty() {
                return Err("DNS subjectAltNames are not allowed".into());
            }
            if !names.emails.is_empty() {
                return Err("Email subjectAltNames are not allowed".into());
            }
            if !names.ips.is_empty() {
                return Err("IP subjectAltNames are not allowed".into());
            }
            if !names.uris.is_empty() {
                return Err("URI subjectAltNames are not allowed".into());
            }
            if !node_name {
                return Err("subject common name does not begin with system:node:".into());
            }
            if !usages_are(&["digital signature", "key encipherment", "client auth"])
                && !usages_are(&["digital signature", "client auth"])
            {
                return Err(
                    "usages did not match [client auth digital signature key encipherment]".into(),
                );
            }
        }
        KUBELET_SERVING => {
            if !nodes_only {
                return Err("subject organization is not system:nodes".into());
            }
            if names.dns.is_empty() && names.ips.is_empty() {
                return Err("DNS or IP subjectAltName is required".into());
            }
            if !names.emails.is_empty() {
                return Err("Email subjectAltNames are not allowed".into());
            }
            if !names.uris.is_empty() {
                return Err("URI subjectAltNames are not allowed".into());
            }
            if !usages_are(&["digital signature", "key encipherment", "server auth"])
                && !usages_are(&["digital signature", "server auth"])
            {
                return Err(
                    "usages did not match [digital signature key encipherment server auth]".into(),
                );
            }
            if !node_name {
                return Err("subject common name does not begin with system:node:".into());
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER request for `cn` in `org` with DNS names `dns`.
    fn request(cn: &str, org: &str, dns: &[&str]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params =
            rcgen::CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, org);
        params.serialize_request(&key).expect("csr").der().to_vec()
    }

    fn check(signer: &str, der: &[u8], usages: &[&str]) -> Result<(), String> {
        let request = CertificateRequest::parse(der).expect("request");
        let usages: Vec<String> = usages.iter().map(|u| u.to_string()).collect();
        check_signer(signer, &request, &usages)
    }

    #[test]
    fn signers_restrict_usages_subjects_and_names() {
        let serving = request("system:node:n1", "system:nodes", &["n1.example"]);
        let ok = ["digital signature", "key encipherment", "server auth"];
        assert_eq!(check(KUBELET_SERVING, &serving, &ok), Ok(()));
        assert_eq!(
            check(KUBELET_SERVING, &serving, &["server auth"]),
            Err("usages did not match [digital signature key encipherment server auth]".into())
        );
        let no_names = request("system:node:n1", "system:nodes", &[]);
        assert_eq!(
            check(KUBELET_SERVING, &no_names, &ok),
            Err("DNS or IP subjectAltName is required".into())
        );
        // The kubelet client signer refuses the serving request's DNS names.
        assert_eq!(
            check(
                KUBELET_CLIENT,
                &serving,
                &["digital signature", "client auth"]
            ),
            Err("DNS subjectAltNames are not allowed".into())
        );
        let user = request("alice", "devs", &[]);
        assert_eq!(
            check(
                KUBE_APISERVER_CLIENT,
                &user,
                &["client auth", "server auth"]
            ),
            Err("invalid usage for client certificate: server auth".into())
        );
        assert_eq!(
            check(KUBE_APISERVER_CLIENT, &user, &["digital signature"]),
            Err("missing required usage for client certificate: client auth".into())
        );
    }

    #[test]
    fn durations_are_the_request_within_ten_minutes_and_the_maximum() {
        let year = DEFAULT_DURATION;
        assert_eq!(duration(None, year), year);
        assert_eq!(duration(Some(60), year), MIN_DURATION);
        assert_eq!(duration(Some(3600), year), Duration::from_secs(3600));
        assert_eq!(duration(Some(i32::MAX), year), year);
    }
}
