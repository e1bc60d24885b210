//! The CSR approving controller (upstream's `pkg/controller/certificates/approver`, the
//! `csrapproving` controller of kube-controller-manager): approves kubelet client certificate
//! requests whose requester may have them, so that nodes get and renew their credentials
//! without an administrator.
//!
//! A pending request (neither approved nor denied, not signed) of
//! `kubernetes.io/kube-apiserver-client-kubelet` that is a node client request (the signer's
//! own rules: `O=system:nodes`, `CN=system:node:<name>`, no alternative names, client usages)
//! is approved when a SubjectAccessReview, created through the API as upstream does, says its
//! requester (`spec.username`, `groups`, `uid`, `extra`) may `create`
//! `certificatesigningrequests/selfnodeclient` (a node renewing its own certificate: the
//! requester's name is the request's common name) or `certificatesigningrequests/nodeclient`
//! (any node's, as a bootstrap identity). The approval is an `Approved` condition with reason
//! `AutoApproved` written through the `approval` subresource. Who may do either is RBAC's
//! business: the bootstrap policy has the two ClusterRoles and, as upstream and k3s, binds them
//! to no one.
//!
//! A request recognized but not (yet) allowed, like any failed pass, is looked at again after
//! a per-request exponential backoff (upstream's certificate controller queue: 200 ms
//! doubling to 1000 s), which a pass that goes through resets.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use kube::api::{Api, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt as _};
use rkube_api::x509::CertificateRequest;

use super::{KUBELET_CLIENT, check_signer, request_der};
use crate::backoff::ItemBackoff;

/// The wait after a request's first failed pass (upstream's certificate controller's
/// `ItemExponentialFailureRateLimiter`); each further failure doubles it.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// The longest wait between passes over a failing request.
const BACKOFF_MAX: Duration = Duration::from_secs(1000);

/// One kind of request the controller approves, and the permission that approves it.
struct Recognizer {
    /// The subresource of `certificatesigningrequests` the requester needs `create` on.
    subresource: &'static str,
    /// Whether the request is of this kind.
    recognize: fn(&CertificateSigningRequest, &CertificateRequest<'_>) -> bool,
    /// The approval condition's message.
    message: &'static str,
}

/// Upstream's recognizers, in its order.
const RECOGNIZERS: [Recognizer; 2] = [
    Recognizer {
        subresource: "selfnodeclient",
        recognize: is_self_node_client,
        message: "Auto approving self kubelet client certificate after SubjectAccessReview.",
    },
    Recognizer {
        subresource: "nodeclient",
        recognize: is_node_client,
        message: "Auto approving kubelet client certificate after SubjectAccessReview.",
    },
];

/// A kubelet client certificate request (upstream's `isNodeClientCert`).
fn is_node_client(csr: &CertificateSigningRequest, request: &CertificateRequest<'_>) -> bool {
    let usages = csr.spec.usages.clone().unwrap_or_default();
    csr.spec.signer_name == KUBELET_CLIENT && check_signer(KUBELET_CLIENT, request, &usages).is_ok()
}

/// A node's request for its own client certificate (upstream's `isSelfNodeClientCert`).
fn is_self_node_client(csr: &CertificateSigningRequest, request: &CertificateRequest<'_>) -> bool {
    csr.spec.username.as_deref() == Some(&*request.common_name()) && is_node_client(csr, request)
}

/// Why a pass over a CSR failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request in the CSR does not parse (validation should have refused it).
    #[error("unable to parse csr {name:?}: {message}")]
    Parse {
        /// The CSR.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The SubjectAccessReview could not be made.
    #[error("reviewing the requester of csr {name:?}")]
    Review {
        /// The CSR.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The approval could not be written.
    #[error("error updating approval for csr {name:?}")]
    Approve {
        /// The CSR.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The request is recognized, but its requester may not have it (yet): RBAC may change,
    /// so it is asked about again (upstream's ignorable error).
    #[error("recognized csr {name:?} as {tried} but subject access review was not approved")]
    NotApproved {
        /// The CSR.
        name: String,
        /// The subresources asked about, as upstream lists them (`[selfnodeclient nodeclient]`).
        tried: String,
    },
}

struct Context {
    csrs: Api<CertificateSigningRequest>,
    reviews: Api<SubjectAccessReview>,
    failures: ItemBackoff,
}

/// Runs the approving controller until `shutdown` completes.
pub async fn run(client: Client, shutdown: impl Future<Output = ()> + Send + 'static) {
    let csrs: Api<CertificateSigningRequest> = Api::all(client.clone());
    let context = Arc::new(Context {
        csrs: csrs.clone(),
        reviews: Api::all(client),
        failures: ItemBackoff::new(BACKOFF_BASE, BACKOFF_MAX),
    });
    let passes = Controller::new(csrs, watcher::Config::default())
        .run(reconcile, error_policy, context)
        .for_each(|outcome| async move {
            match outcome {
                Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
                Err(e) => tracing::warn!(error = %e, "csr approving controller"),
            }
        });
    // A pass cut short loses nothing: a pending request is looked at again by the next start.
    tokio::select! {
        () = passes => {}
        () = shutdown => {}
    }
}

fn error_policy(
    csr: Arc<CertificateSigningRequest>,
    error: &Error,
    context: Arc<Context>,
) -> Action {
    let delay = context.failures.failed(&csr.name_any());
    match error {
        Error::NotApproved { .. } => tracing::debug!(%error, "retrying in {delay:?}"),
        _ => tracing::warn!(%error, "approving certificate failed; retrying in {delay:?}"),
    }
    Action::requeue(delay)
}

async fn reconcile(
    csr: Arc<CertificateSigningRequest>,
    context: Arc<Context>,
) -> Result<Action, Error> {
    let action = pass(&csr, &context).await?;
    context.failures.forget(&csr.name_any());
    Ok(action)
}

/// One pass over `csr`: approves it if it is a request the controller approves and its
/// requester may have it.
async fn pass(csr: &CertificateSigningRequest, context: &Context) -> Result<Action, Error> {
    let done = Action::await_change();
    let status = csr.status.as_ref();
    let signed = status
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty());
    // Upstream's `GetCertApprovalCondition`: any Approved or Denied condition decides.
    let decided = status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| c.type_ == "Approved" || c.type_ == "Denied");
    if signed || decided {
        return Ok(done);
    }
    let name = csr.name_any();
    let parse_error = |message: String| Error::Parse {
        name: name.clone(),
        message,
    };
    let der = request_der(csr).map_err(|m| parse_error(m.to_owned()))?;
    let request = CertificateRequest::parse(&der).map_err(|e| parse_error(e.to_string()))?;
    let mut tried = Vec::new();
    for recognizer in &RECOGNIZERS {
        if !(recognizer.recognize)(csr, &request) {
            continue;
        }
        tried.push(recognizer.subresource);
        if allowed(&context.reviews, csr, recognizer.subresource).await? {
            approve(&context.csrs, csr, recognizer.message).await?;
            return Ok(done);
        }
    }
    if tried.is_empty() {
        return Ok(done);
    }
    Err(Error::NotApproved {
        name,
        tried: format!("[{}]", tried.join(" ")),
    })
}

/// Whether the requester of `csr` may `create` `certificatesigningrequests/<subresource>`.
async fn allowed(
    reviews: &Api<SubjectAccessReview>,
    csr: &CertificateSigningRequest,
    subresource: &str,
) -> Result<bool, Error> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: csr.spec.username.clone(),
            uid: csr.spec.uid.clone(),
            groups: csr.spec.groups.clone(),
            extra: csr.spec.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".into()),
                resource: Some("certificatesigningrequests".into()),
                subresource: Some(subresource.into()),
                verb: Some("create".into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let answer = reviews
        .create(&PostParams::default(), &review)
        .await
        .map_err(|source| Error::Review {
            name: csr.name_any(),
            source,
        })?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// Appends the `Approved` condition and writes it through the `approval` subresource.
async fn approve(
    csrs: &Api<CertificateSigningRequest>,
    csr: &CertificateSigningRequest,
    message: &str,
) -> Result<(), Error> {
    let mut approved = csr.clone();
    approved
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some("AutoApproved".into()),
            message: Some(message.into()),
            ..CertificateSigningRequestCondition::default()
        });
    csrs.replace_subresource(
        "approval",
        &csr.name_any(),
        &PostParams::default(),
        &approved,
    )
    .await
    .map_err(|source| Error::Approve {
        name: csr.name_any(),
        source,
    })?;
    Ok(())
}
