//! # Layout
//! Admission: every write the API server accepts passes the same plugins, in upstream's
//! order, after authorization and before storage.
//!
//! - [`attributes`]: [`Attributes`], what admission knows about a request (operation, kind,
//!   resource, subresource, namespace, name, object, old object, user, dryRun, options).
//! - [`chain`]: the [`Plugin`] contract (mutating `admit`, validating `validate`), the
//!   [`Chain`] running plugins in order (mutating ones a second time when a webhook changed
//!   the object: upstream's reinvocation), the [`Cluster`] state plugins read (implemented by
//!   the composition root over the registry's watch caches, so this crate never depends on
//!   the registry or storage), and the [`Warnings`] sent back as `Warning` headers.
//! - [`plugins`]: the built-in plugins; [`quantity`]: resource quantities as numbers;
//!   [`config`]: the plugins' configuration file (`--admission-control-config-file`). The
//!   certificate plugins ask the server's authorizer through [`Authorize`], which the
//!   composition root implements like [`Cluster`].
//! - [`webhook`]: MutatingAdmissionWebhook and ValidatingAdmissionWebhook (matching, the
//!   HTTPS AdmissionReview call, JSONPatch responses, reinvocation).
//! - [`policy`]: ValidatingAdmissionPolicy with its bindings and params.
//! - [`cel`]: CEL evaluation (Kubernetes' library, `kube-cel`) for matchConditions and
//!   policies, with their lazily evaluated composited `variables`.
//!
//! Data flows: the API server's write handler builds [`Attributes`] and hands the registry two
//! callbacks; the registry calls [`Chain::admit`] on the object before its strategy prepares
//! it (inside the update loop for updates and patches) and [`Chain::validate`] on the prepared
//! object right before storage (and on the stored object before a delete).

// `ApiError` is what admission answers with (it reaches the client as is): boxing it inside
// only to unbox it at the boundary would buy nothing.
#![allow(clippy::result_large_err)]

pub mod attributes;
pub mod cel;
pub mod chain;
pub mod config;
pub mod plugins;
pub mod policy;
pub mod quantity;
#[cfg(test)]
mod testing;
pub mod webhook;

use std::sync::Arc;

pub use attributes::{Attributes, Gvn, Operation, UserInfo};
pub use chain::{Access, Authorize, Chain, Cluster, Plugin, ResourceRef, Result, Warnings};

/// The built-in plugins kube-apiserver enables by default, in its order (upstream's
/// `AllOrderedPlugins` filtered to the default set, plus NodeRestriction as k3s enables it);
/// webhooks and policies follow them there. `authz` answers the plugins that ask the server's
/// authorizer (NodeRestriction, the certificate ones);
/// `config` is what `--admission-control-config-file` configures.
pub fn default_chain(
    cluster: Arc<dyn Cluster>,
    authz: Arc<dyn Authorize>,
    config: &config::AdmissionConfiguration,
) -> Chain {
    use plugins::*;
    let c = || cluster.clone();
    Chain::new(vec![
        Arc::new(namespace_lifecycle::NamespaceLifecycle::new(c())),
        Arc::new(limit_ranger::LimitRanger::new(c())),
        Arc::new(service_account::ServiceAccount::new(c())),
        Arc::new(node_restriction::NodeRestriction::new(c(), authz.clone())),
        Arc::new(defaults::TaintNodesByCondition),
        Arc::new(pod_security::PodSecurity::new(
            c(),
            config.pod_security.clone(),
        )),
        Arc::new(priority::Priority::new(c())),
        Arc::new(defaults::DefaultTolerationSeconds),
        Arc::new(defaults::DefaultStorageClass::new(c())),
        Arc::new(defaults::StorageObjectInUseProtection),
        Arc::new(pvc_resize::PersistentVolumeClaimResize::new(c())),
        Arc::new(priority::RuntimeClass::new(c())),
        Arc::new(certificates::CertificateApproval::new(authz.clone())),
        Arc::new(certificates::CertificateSigning::new(authz)),
        Arc::new(certificates::CertificateSubjectRestriction),
        Arc::new(defaults::DefaultIngressClass::new(c())),
        Arc::new(webhook::Webhooks::new(c(), webhook::Kind::Mutating)),
        Arc::new(policy::ValidatingAdmissionPolicy::new(c())),
        Arc::new(webhook::Webhooks::new(c(), webhook::Kind::Validating)),
        Arc::new(resource_quota::ResourceQuota::new(c())),
    ])
}
