//! PersistentVolumeClaimResize (upstream's `storage/persistentvolume/resize`): a claim's
//! storage request may grow only once it is bound, and only when its StorageClass says
//! `allowVolumeExpansion: true`.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::attributes::{Attributes, Operation};
use crate::chain::{Cluster, Plugin, Result, Warnings};
use crate::quantity;

const STORAGE_CLASSES: (&str, &str) = ("storage.k8s.io", "storageclasses");
/// The annotation that named a claim's class before `spec.storageClassName`, still honoured.
const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// The plugin.
#[derive(Debug)]
pub struct PersistentVolumeClaimResize {
    cluster: Arc<dyn Cluster>,
}

impl PersistentVolumeClaimResize {
    /// The plugin over `cluster`'s StorageClasses.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        PersistentVolumeClaimResize { cluster }
    }

    /// Upstream's `allowResize`: both versions name the same class, and it allows expansion.
    async fn allows_resize(&self, claim: &Value, old: &Value) -> Result<bool> {
        let (class, old_class) = (class_of(claim), class_of(old));
        if class.is_empty() || class != old_class {
            return Ok(false);
        }
        let found = self.cluster.get(STORAGE_CLASSES, "", class).await?;
        Ok(found.is_some_and(|sc| sc["allowVolumeExpansion"].as_bool() == Some(true)))
    }
}

/// Upstream's `GetPersistentVolumeClaimClass`: the beta annotation, else the spec's field.
fn class_of(claim: &Value) -> &str {
    claim["metadata"]["annotations"][BETA_CLASS_ANNOTATION]
        .as_str()
        .or_else(|| claim["spec"]["storageClassName"].as_str())
        .unwrap_or_default()
}

fn requested_storage(claim: &Value) -> f64 {
    claim["spec"]["resources"]["requests"]["storage"]
        .as_str()
        .and_then(quantity::parse)
        .unwrap_or(0.0)
}

#[async_trait]
impl Plugin for PersistentVolumeClaimResize {
    fn name(&self) -> &'static str {
        "PersistentVolumeClaimResize"
    }

    async fn validate(&self, attrs: &Attributes, _warnings: &Warnings) -> Result<()> {
        if attrs.op() != Operation::Update || !attrs.is_core("persistentvolumeclaims") {
            return Ok(());
        }
        let (Some(claim), Some(old)) = (attrs.object.as_ref(), attrs.old_object.as_ref()) else {
            return Ok(());
        };
        if requested_storage(claim) <= requested_storage(old) {
            return Ok(());
        }
        if old["status"]["phase"].as_str() != Some("Bound") {
            return Err(attrs.forbidden("Only bound persistent volume claims can be expanded"));
        }
        if !self.allows_resize(claim, old).await? {
            return Err(attrs.forbidden(
                "only dynamically provisioned pvc can be resized and the storageclass that \
                 provisions the pvc must support resize",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeCluster, attrs};

    fn claim(class: &str, storage: &str, phase: &str) -> Value {
        json!({"metadata": {"name": "data", "namespace": "ns"},
               "spec": {"storageClassName": class, "resources": {"requests": {"storage": storage}}},
               "status": {"phase": phase}})
    }

    fn resize(old: Value, new: Value) -> Attributes {
        let mut a = attrs(
            Operation::Update,
            "",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            "ns",
            Some(new),
        );
        a.old_object = Some(old);
        a
    }

    #[tokio::test]
    async fn claims_grow_only_bound_and_when_their_class_allows_it() {
        let cluster = FakeCluster::default();
        for (name, expand) in [("fast", Some(true)), ("fixed", None)] {
            let mut sc = json!({"metadata": {"name": name}, "provisioner": "x"});
            if let Some(expand) = expand {
                sc["allowVolumeExpansion"] = expand.into();
            }
            cluster.put(STORAGE_CLASSES, sc);
        }
        let plugin = PersistentVolumeClaimResize::new(Arc::new(cluster));
        let w = Warnings::default();
        let grow = |class: &str, phase: &str| {
            resize(claim(class, "1Gi", phase), claim(class, "2Gi", phase))
        };
        plugin.validate(&grow("fast", "Bound"), &w).await.unwrap();
        let refused = |a: Attributes| {
            let plugin = &plugin;
            let w = &w;
            async move {
                plugin
                    .validate(&a, w)
                    .await
                    .unwrap_err()
                    .message()
                    .to_owned()
            }
        };
        assert_eq!(
            refused(grow("fixed", "Bound")).await,
            r#"persistentvolumeclaims "data" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"#
        );
        assert_eq!(
            refused(grow("missing", "Bound")).await,
            refused(grow("fixed", "Bound")).await
        );
        assert_eq!(
            refused(grow("fast", "Pending")).await,
            r#"persistentvolumeclaims "data" is forbidden: Only bound persistent volume claims can be expanded"#
        );
        // Shrinking or keeping the size is validation's business, not this plugin's.
        let same = resize(
            claim("fixed", "1Gi", "Bound"),
            claim("fixed", "1024Mi", "Bound"),
        );
        plugin.validate(&same, &w).await.unwrap();
    }
}
