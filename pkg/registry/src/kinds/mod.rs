//! One strategy per built-in kind, and the table from resource to strategy.
//!
//! - [`common`]: decoding into k8s-openapi types with field errors, in-place defaulting,
//!   status handling, immutable fields, shared messages.
//! - [`pod`]: pods, and the pod-spec defaults and validation every workload template shares.
//! - [`service`], [`core`] (namespaces, configmaps, secrets), [`apps`]
//!   (deployments, replicasets, statefulsets, daemonsets, replicationcontrollers), [`batch`]
//!   (jobs, cronjobs), [`certificates`] (CertificateSigningRequests, with `status` and
//!   `approval`), [`other`] (events, nodes, RBAC, volumes and the kinds that only have a
//!   status subresource), [`admissionregistration`] (webhook configurations, validating
//!   admission policies and bindings).

use std::sync::Arc;

use rkube_api::resources::Resource;

use crate::Strategy;

pub(crate) mod admissionregistration;
pub(crate) mod apps;
pub(crate) mod batch;
pub(crate) mod certificates;
pub(crate) mod common;
pub(crate) mod core;
pub(crate) mod other;
pub(crate) mod pod;
pub(crate) mod service;

/// The strategy of a kind that adds nothing to the generic registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Generic;

impl Strategy for Generic {}

/// A kind whose only rule is its status subresource: the main resource may not write
/// `status` (HorizontalPodAutoscaler, PodDisruptionBudget, Ingress, ...).
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusOnly;

impl Strategy for StatusOnly {
    fn prepare_for_create(&self, object: &mut serde_json::Value) {
        common::clear_status(object);
    }

    fn prepare_for_update(&self, new: &mut serde_json::Value, old: &serde_json::Value) {
        common::keep_status(new, old);
    }

    fn has_status_subresource(&self) -> bool {
        true
    }
}

/// A kind's strategy, built once per lookup (strategies are stateless).
type Make = fn() -> Arc<dyn Strategy>;

fn make<S: Strategy + Default>() -> Arc<dyn Strategy> {
    Arc::new(<S as Default>::default())
}

/// `(group, kind) -> strategy`; kinds not listed get [`Generic`], or [`StatusOnly`] when the
/// resource has a `status` subresource.
const TABLE: &[(&str, &str, Make)] = &[
    ("", "Pod", make::<pod::PodStrategy>),
    ("", "Service", make::<service::ServiceStrategy>),
    ("", "Namespace", make::<core::NamespaceStrategy>),
    ("", "ConfigMap", make::<core::ConfigMapStrategy>),
    ("", "Secret", make::<core::SecretStrategy>),
    ("apps", "Deployment", make::<apps::DeploymentStrategy>),
    ("apps", "ReplicaSet", make::<apps::ReplicaSetStrategy>),
    ("apps", "StatefulSet", make::<apps::StatefulSetStrategy>),
    ("apps", "DaemonSet", make::<apps::DaemonSetStrategy>),
    (
        "",
        "ReplicationController",
        make::<apps::ReplicationControllerStrategy>,
    ),
    ("batch", "Job", make::<batch::JobStrategy>),
    ("batch", "CronJob", make::<batch::CronJobStrategy>),
    ("", "Event", make::<other::CoreEventStrategy>),
    ("events.k8s.io", "Event", make::<other::EventsEventStrategy>),
    ("", "Node", make::<other::NodeStrategy>),
    (
        "rbac.authorization.k8s.io",
        "Role",
        make::<other::RoleStrategy>,
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRole",
        make::<other::ClusterRoleStrategy>,
    ),
    (
        "rbac.authorization.k8s.io",
        "RoleBinding",
        make::<other::RoleBindingStrategy>,
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        make::<other::ClusterRoleBindingStrategy>,
    ),
    ("", "PersistentVolumeClaim", make::<other::PvcStrategy>),
    ("", "PersistentVolume", make::<other::PvStrategy>),
    (
        "certificates.k8s.io",
        "CertificateSigningRequest",
        make::<certificates::CsrStrategy>,
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        make::<admissionregistration::MutatingWebhookConfigurationStrategy>,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        make::<admissionregistration::ValidatingWebhookConfigurationStrategy>,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        make::<admissionregistration::ValidatingAdmissionPolicyStrategy>,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        make::<admissionregistration::ValidatingAdmissionPolicyBindingStrategy>,
    ),
];

/// The strategy for `resource`.
pub fn strategy_for(resource: &Resource) -> Arc<dyn Strategy> {
    if let Some((_, _, make)) = TABLE
        .iter()
        .find(|(group, kind, _)| *group == resource.group && *kind == resource.kind)
    {
        return make();
    }
    if resource.subresource("status").is_some() {
        Arc::new(StatusOnly)
    } else {
        Arc::new(Generic)
    }
}
