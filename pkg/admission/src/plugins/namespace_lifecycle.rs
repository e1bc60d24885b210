//! NamespaceLifecycle: no new content in a missing or terminating namespace, and the
//! namespaces every cluster needs cannot be deleted.

use std::sync::Arc;

use async_trait::async_trait;
use rkube_api::resources::GroupResource;
use rkube_api::status::{ApiError, StatusCause};

use crate::attributes::{Attributes, Operation};
use crate::chain::{Cluster, Plugin, Result, Warnings};

/// The namespaces upstream refuses to delete (its `immortalNamespaces`).
pub const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// The plugin.
#[derive(Debug)]
pub struct NamespaceLifecycle {
    cluster: Arc<dyn Cluster>,
}

impl NamespaceLifecycle {
    /// The plugin over `cluster`'s namespaces.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        NamespaceLifecycle { cluster }
    }
}

/// Reviews are not stored and name no real object: upstream lets them through.
fn is_access_review(attrs: &Attributes) -> bool {
    attrs.resource.group == "authorization.k8s.io"
        && matches!(
            attrs.resource.name.as_str(),
            "localsubjectaccessreviews" | "subjectaccessreviews" | "selfsubjectaccessreviews"
        )
}

#[async_trait]
impl Plugin for NamespaceLifecycle {
    fn name(&self) -> &'static str {
        "NamespaceLifecycle"
    }

    async fn validate(&self, attrs: &Attributes, _warnings: &Warnings) -> Result<()> {
        let op = attrs.op();
        if attrs.kind.is_core("Namespace") {
            if op == Operation::Delete && IMMORTAL_NAMESPACES.contains(&attrs.name.as_str()) {
                return Err(ApiError::forbidden(
                    attrs.group_resource(),
                    &attrs.name,
                    "this namespace may not be deleted",
                ));
            }
            return Ok(());
        }
        if op == Operation::Delete || attrs.namespace.is_empty() || is_access_review(attrs) {
            return Ok(());
        }
        let Some(namespace) = self
            .cluster
            .get(("", "namespaces"), "", &attrs.namespace)
            .await?
        else {
            return Err(ApiError::not_found(
                GroupResource::new("", "namespaces"),
                &attrs.namespace,
            ));
        };
        let terminating =
            namespace.pointer("/status/phase").and_then(|p| p.as_str()) == Some("Terminating");
        if op == Operation::Create && terminating {
            let message = format!(
                "unable to create new content in namespace {} because it is being terminated",
                attrs.namespace
            );
            let err = attrs.forbidden(&message);
            let mut details = err.details().cloned().unwrap_or_default();
            details.causes.push(StatusCause {
                cause_type: "NamespaceTerminating".into(),
                message,
                field: "metadata.namespace".into(),
            });
            return Err(ApiError::new(
                err.code(),
                err.reason(),
                err.message(),
                Some(details),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeCluster, attrs};
    use serde_json::json;

    #[tokio::test]
    async fn system_namespaces_cannot_be_deleted() {
        let plugin = NamespaceLifecycle::new(Arc::new(FakeCluster::default()));
        let mut a = attrs(Operation::Delete, "", "namespaces", "Namespace", "", None);
        a.name = "default".into();
        let err = plugin.validate(&a, &Warnings::default()).await.unwrap_err();
        assert_eq!(err.code(), 403);
        assert_eq!(
            err.message(),
            r#"namespaces "default" is forbidden: this namespace may not be deleted"#
        );
        a.name = "team".into();
        plugin.validate(&a, &Warnings::default()).await.unwrap();
    }

    #[tokio::test]
    async fn creates_need_a_live_namespace() {
        let cluster = FakeCluster::default();
        cluster.put(
            ("", "namespaces"),
            json!({"metadata": {"name": "gone"}, "status": {"phase": "Terminating"}}),
        );
        let plugin = NamespaceLifecycle::new(Arc::new(cluster));
        let pod = json!({"metadata": {"name": "p"}});
        let a = attrs(
            Operation::Create,
            "",
            "pods",
            "Pod",
            "missing",
            Some(pod.clone()),
        );
        let err = plugin.validate(&a, &Warnings::default()).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (404, r#"namespaces "missing" not found"#)
        );
        let a = attrs(Operation::Create, "", "pods", "Pod", "gone", Some(pod));
        let err = plugin.validate(&a, &Warnings::default()).await.unwrap_err();
        assert_eq!(
            err.message(),
            r#"pods "p" is forbidden: unable to create new content in namespace gone because it is being terminated"#
        );
        let a = attrs(Operation::Delete, "", "pods", "Pod", "missing", None);
        plugin.validate(&a, &Warnings::default()).await.unwrap();
    }
}
