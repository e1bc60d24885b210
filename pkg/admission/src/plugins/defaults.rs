//! The small defaulting plugins: DefaultTolerationSeconds, TaintNodesByCondition,
//! StorageObjectInUseProtection, DefaultStorageClass and DefaultIngressClass.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::attributes::{Attributes, Operation};
use crate::chain::{Cluster, Plugin, ResourceRef, Result, Warnings};

/// Whether `attrs` creates the resource `(group, plural)` itself (no subresource).
fn creates(attrs: &Attributes, group: &str, plural: &str) -> bool {
    attrs.op() == Operation::Create
        && attrs.resource.group == group
        && attrs.resource.name == plural
        && attrs.subresource.is_empty()
}

/// Appends `item` to the array at `object[key]`, creating it.
fn push(object: &mut Value, key: &str, item: Value) {
    match object[key].as_array_mut() {
        Some(items) => items.push(item),
        None => object[key] = json!([item]),
    }
}

/// DefaultTolerationSeconds: pods tolerate `not-ready` and `unreachable` nodes for 300s.
#[derive(Debug, Default)]
pub struct DefaultTolerationSeconds;

#[async_trait]
impl Plugin for DefaultTolerationSeconds {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    async fn admit(&self, attrs: &mut Attributes, _warnings: &Warnings) -> Result<()> {
        if !creates(attrs, "", "pods") {
            return Ok(());
        }
        let Some(spec) = attrs.object.as_mut().and_then(|p| p.get_mut("spec")) else {
            return Ok(());
        };
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let tolerated = spec["tolerations"].as_array().is_some_and(|ts| {
                ts.iter().any(|t| {
                    let k = t["key"].as_str().unwrap_or("");
                    let effect = t["effect"].as_str().unwrap_or("");
                    (k.is_empty() || k == key) && (effect.is_empty() || effect == "NoExecute")
                })
            });
            if !tolerated {
                push(
                    spec,
                    "tolerations",
                    json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}),
                );
            }
        }
        Ok(())
    }
}

/// TaintNodesByCondition: a new node is `not-ready` (NoSchedule) until its agent says otherwise.
#[derive(Debug, Default)]
pub struct TaintNodesByCondition;

#[async_trait]
impl Plugin for TaintNodesByCondition {
    fn name(&self) -> &'static str {
        "TaintNodesByCondition"
    }

    async fn admit(&self, attrs: &mut Attributes, _warnings: &Warnings) -> Result<()> {
        if !creates(attrs, "", "nodes") {
            return Ok(());
        }
        let Some(node) = attrs.object.as_mut() else {
            return Ok(());
        };
        let key = "node.kubernetes.io/not-ready";
        let tainted = node["spec"]["taints"].as_array().is_some_and(|ts| {
            ts.iter()
                .any(|t| t["key"] == key && t["effect"] == "NoSchedule")
        });
        if !tainted {
            if !node["spec"].is_object() {
                node["spec"] = json!({});
            }
            push(
                &mut node["spec"],
                "taints",
                json!({"key": key, "effect": "NoSchedule"}),
            );
        }
        Ok(())
    }
}

/// StorageObjectInUseProtection: PVCs and PVs are created with their protection finalizer.
#[derive(Debug, Default)]
pub struct StorageObjectInUseProtection;

#[async_trait]
impl Plugin for StorageObjectInUseProtection {
    fn name(&self) -> &'static str {
        "StorageObjectInUseProtection"
    }

    async fn admit(&self, attrs: &mut Attributes, _warnings: &Warnings) -> Result<()> {
        let finalizer = if creates(attrs, "", "persistentvolumeclaims") {
            "kubernetes.io/pvc-protection"
        } else if creates(attrs, "", "persistentvolumes") {
            "kubernetes.io/pv-protection"
        } else {
            return Ok(());
        };
        let Some(meta) = attrs.object.as_mut().and_then(|o| o.get_mut("metadata")) else {
            return Ok(());
        };
        let present = meta["finalizers"]
            .as_array()
            .is_some_and(|fs| fs.iter().any(|f| f == finalizer));
        if !present {
            push(meta, "finalizers", finalizer.into());
        }
        Ok(())
    }
}

/// The default among `resource`'s objects by `annotation` (the newest when several are, as
/// upstream since 1.26), or `None`.
async fn default_class(
    cluster: &dyn Cluster,
    resource: ResourceRef<'_>,
    annotations: &[&str],
) -> Result<Option<String>> {
    let classes = cluster.list(resource, None).await?;
    let mut defaults: Vec<&Value> = classes
        .iter()
        .filter(|c| {
            annotations
                .iter()
                .any(|a| c["metadata"]["annotations"][*a].as_str() == Some("true"))
        })
        .collect();
    // Newest first; equal times by name, as upstream breaks ties.
    defaults.sort_by(|a, b| {
        let time = |o: &Value| {
            o["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        };
        let name = |o: &Value| o["metadata"]["name"].as_str().unwrap_or("").to_owned();
        time(b).cmp(&time(a)).then_with(|| name(a).cmp(&name(b)))
    });
    Ok(defaults
        .first()
        .and_then(|c| c["metadata"]["name"].as_str())
        .map(str::to_owned))
}

/// DefaultStorageClass: a PVC without `storageClassName` gets the default StorageClass.
#[derive(Debug)]
pub struct DefaultStorageClass {
    cluster: Arc<dyn Cluster>,
}

impl DefaultStorageClass {
    /// The plugin over `cluster`'s StorageClasses.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        DefaultStorageClass { cluster }
    }
}

#[async_trait]
impl Plugin for DefaultStorageClass {
    fn name(&self) -> &'static str {
        "DefaultStorageClass"
    }

    async fn admit(&self, attrs: &mut Attributes, _warnings: &Warnings) -> Result<()> {
        if !creates(attrs, "", "persistentvolumeclaims") {
            return Ok(());
        }
        let Some(pvc) = attrs.object.as_mut() else {
            return Ok(());
        };
        // An explicit "" asks for no class at all.
        if !pvc["spec"]["storageClassName"].is_null() {
            return Ok(());
        }
        let annotations = [
            "storageclass.kubernetes.io/is-default-class",
            "storageclass.beta.kubernetes.io/is-default-class",
        ];
        let found = default_class(
            self.cluster.as_ref(),
            ("storage.k8s.io", "storageclasses"),
            &annotations,
        )
        .await?;
        if let Some(class) = found {
            pvc["spec"]["storageClassName"] = class.into();
        }
        Ok(())
    }
}

/// DefaultIngressClass: an Ingress without a class gets the default IngressClass.
#[derive(Debug)]
pub struct DefaultIngressClass {
    cluster: Arc<dyn Cluster>,
}

impl DefaultIngressClass {
    /// The plugin over `cluster`'s IngressClasses.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        DefaultIngressClass { cluster }
    }
}

#[async_trait]
impl Plugin for DefaultIngressClass {
    fn name(&self) -> &'static str {
        "DefaultIngressClass"
    }

    async fn admit(&self, attrs: &mut Attributes, _warnings: &Warnings) -> Result<()> {
        if !creates(attrs, "networking.k8s.io", "ingresses") {
            return Ok(());
        }
        let Some(ingress) = attrs.object.as_mut() else {
            return Ok(());
        };
        let annotated =
            ingress["metadata"]["annotations"]["kubernetes.io/ingress.class"].is_string();
        if !ingress["spec"]["ingressClassName"].is_null() || annotated {
            return Ok(());
        }
        let found = default_class(
            self.cluster.as_ref(),
            ("networking.k8s.io", "ingressclasses"),
            &["ingressclass.kubernetes.io/is-default-class"],
        )
        .await?;
        if let Some(class) = found {
            ingress["spec"]["ingressClassName"] = class.into();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeCluster, attrs};

    #[tokio::test]
    async fn pods_tolerate_unready_nodes_for_five_minutes() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"tolerations": [
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}
        ]}});
        let mut a = attrs(Operation::Create, "", "pods", "Pod", "ns", Some(pod));
        DefaultTolerationSeconds
            .admit(&mut a, &Warnings::default())
            .await
            .unwrap();
        let tolerations = a.object.unwrap()["spec"]["tolerations"].clone();
        assert_eq!(
            tolerations,
            json!([
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10},
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ])
        );
    }

    #[tokio::test]
    async fn nodes_pvcs_and_pvs_get_their_taint_and_finalizers() {
        let w = Warnings::default();
        let mut a = attrs(
            Operation::Create,
            "",
            "nodes",
            "Node",
            "",
            Some(json!({"metadata": {"name": "n"}})),
        );
        TaintNodesByCondition.admit(&mut a, &w).await.unwrap();
        assert_eq!(
            a.object.unwrap()["spec"]["taints"],
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
        );
        let claim = json!({"metadata": {"name": "c"}, "spec": {}});
        let mut a = attrs(
            Operation::Create,
            "",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            "ns",
            Some(claim),
        );
        StorageObjectInUseProtection
            .admit(&mut a, &w)
            .await
            .unwrap();
        assert_eq!(
            a.object.unwrap()["metadata"]["finalizers"],
            json!(["kubernetes.io/pvc-protection"])
        );
    }

    #[tokio::test]
    async fn claims_get_the_newest_default_class() {
        let cluster = FakeCluster::default();
        let annotated = |name: &str, time: &str| {
            json!({"metadata": {"name": name, "creationTimestamp": time,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}})
        };
        let sc = ("storage.k8s.io", "storageclasses");
        cluster.put(sc, annotated("old", "2024-01-01T00:00:00Z"));
        cluster.put(sc, annotated("new", "2025-01-01T00:00:00Z"));
        cluster.put(sc, json!({"metadata": {"name": "plain"}}));
        let plugin = DefaultStorageClass::new(Arc::new(cluster));
        let w = Warnings::default();
        let claim = json!({"metadata": {"name": "c"}, "spec": {}});
        let mut a = attrs(
            Operation::Create,
            "",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            "ns",
            Some(claim),
        );
        plugin.admit(&mut a, &w).await.unwrap();
        assert_eq!(a.object.unwrap()["spec"]["storageClassName"], "new");
        let none = json!({"metadata": {"name": "c"}, "spec": {"storageClassName": ""}});
        let mut a = attrs(
            Operation::Create,
            "",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            "ns",
            Some(none),
        );
        plugin.admit(&mut a, &w).await.unwrap();
        assert_eq!(a.object.unwrap()["spec"]["storageClassName"], "");
    }
}
