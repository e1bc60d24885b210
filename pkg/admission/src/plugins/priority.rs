//! Priority (pods get the priority of their PriorityClass, or of the global default; one
//! global default at most) and RuntimeClass (pods get their RuntimeClass's overhead and
//! scheduling constraints).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::attributes::{Attributes, Operation};
use crate::chain::{Cluster, Plugin, Result, Warnings};

const PRIORITY_CLASSES: (&str, &str) = ("scheduling.k8s.io", "priorityclasses");

/// The plugin `Priority`.
#[derive(Debug)]
pub struct Priority {
    cluster: Arc<dyn Cluster>,
}

impl Priority {
    /// The plugin over `cluster`'s PriorityClasses.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        Priority { cluster }
    }
}

#[async_trait]
impl Plugin for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    async fn admit(&self, attrs: &mut Attributes, _warnings: &Warnings) -> Result<()> {
        if attrs.op() != Operation::Create || !attrs.is_core("pods") {
            return Ok(());
        }
        let Some(pod) = attrs.object.as_ref() else {
            return Ok(());
        };
        let name = pod["spec"]["priorityClassName"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let class = if name.is_empty() {
            let classes = self.cluster.list(PRIORITY_CLASSES, None).await?;
            // Several defaults can only exist through races: upstream takes the lowest.
            classes
                .into_iter()
                .filter(|c| c["globalDefault"].as_bool() == Some(true))
                .min_by_key(|c| c["value"].as_i64().unwrap_or(0))
        } else {
            let found = self.cluster.get(PRIORITY_CLASSES, "", &name).await?;
            if found.is_none() {
                return Err(attrs.forbidden(format!("no PriorityClass with name {name} was found")));
            }
            found
        };
        let value = class
            .as_ref()
            .and_then(|c| c["value"].as_i64())
            .unwrap_or(0);
        let policy = class
            .as_ref()
            .and_then(|c| c["preemptionPolicy"].as_str())
            .unwrap_or("PreemptLowerPriority")
            .to_owned();
        if let Some(given) = pod["spec"]["priority"].as_i64()
            && given != value
        {
            return Err(attrs.forbidden(format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
            )));
        }
        if let Some(given) = pod["spec"]["preemptionPolicy"].as_str()
            && given != policy
        {
            return Err(attrs.forbidden(format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            )));
        }
        let class_name = class
            .as_ref()
            .and_then(|c| c["metadata"]["name"].as_str())
            .map(str::to_owned);
        let Some(spec) = attrs.object.as_mut().and_then(|p| p.get_mut("spec")) else {
            return Ok(());
        };
        if let Some(class_name) = class_name {
            spec["priorityClassName"] = class_name.into();
        }
        spec["priority"] = value.into();
        spec["preemptionPolicy"] = policy.into();
        Ok(())
    }

    async fn validate(&self, attrs: &Attributes, _warnings: &Warnings) -> Result<()> {
        let is_class = attrs.resource.group == PRIORITY_CLASSES.0
            && attrs.resource.name == PRIORITY_CLASSES.1
            && matches!(attrs.op(), Operation::Create | Operation::Update);
        let Some(class) = attrs.object.as_ref().filter(|_| is_class) else {
            return Ok(());
        };
        if class["globalDefault"].as_bool() != Some(true) {
            return Ok(());
        }
        let own = class["metadata"]["name"].as_str().unwrap_or("");
        let classes = self.cluster.list(PRIORITY_CLASSES, None).await?;
        if let Some(other) = classes.iter().find(|c| {
            c["globalDefault"].as_bool() == Some(true)
                && c["metadata"]["name"].as_str() != Some(own)
        }) {
            let other = other["metadata"]["name"].as_str().unwrap_or("");
            return Err(attrs.forbidden(format!(
                "PriorityClass {other} is marked as default. Only one default can exist"
            )));
        }
        Ok(())
    }
}

/// The plugin `RuntimeClass`.
#[derive(Debug)]
pub struct RuntimeClass {
    cluster: Arc<dyn Cluster>,
}

impl RuntimeClass {
    /// The plugin over `cluster`'s RuntimeClasses.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        RuntimeClass { cluster }
    }
}

#[async_trait]
impl Plugin for RuntimeClass {
    fn name(&self) -> &'static str {
        "RuntimeClass"
    }

    async fn admit(&self, attrs: &mut Attributes, _warnings: &Warnings) -> Result<()> {
        if attrs.op() != Operation::Create || !attrs.is_core("pods") {
            return Ok(());
        }
        let Some(name) = attrs
            .object
            .as_ref()
            .and_then(|p| p["spec"]["runtimeClassName"].as_str())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
        else {
            return Ok(());
        };
        let Some(class) = self
            .cluster
            .get(("node.k8s.io", "runtimeclasses"), "", &name)
            .await?
        else {
            return Err(attrs.forbidden(format!("pod rejected: RuntimeClass {name:?} not found")));
        };
        let Some(spec) = attrs.object.as_mut().and_then(|p| p.get_mut("spec")) else {
            return Ok(());
        };
        let fixed = &class["overhead"]["podFixed"];
        if fixed.is_object() {
            match spec.get("overhead") {
                Some(given) if !given.is_null() && given != fixed => {
                    return Err(attrs.forbidden(
                        "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead",
                    ));
                }
                _ => spec["overhead"] = fixed.clone(),
            }
        }
        if let Some(selector) = class["scheduling"]["nodeSelector"].as_object() {
            if !spec["nodeSelector"].is_object() {
                spec["nodeSelector"] = json!({});
            }
            for (key, value) in selector {
                match spec["nodeSelector"].get(key) {
                    Some(own) if own != value => {
                        return Err(attrs.forbidden(
                            "pod rejected: conflict in node selectors between RuntimeClass and pod",
                        ));
                    }
                    _ => spec["nodeSelector"][key] = value.clone(),
                }
            }
        }
        if let Some(tolerations) = class["scheduling"]["tolerations"].as_array() {
            for t in tolerations {
                let present = spec["tolerations"]
                    .as_array()
                    .is_some_and(|ts| ts.contains(t));
                if !present {
                    match spec["tolerations"].as_array_mut() {
                        Some(ts) => ts.push(t.clone()),
                        None => spec["tolerations"] = Value::Array(vec![t.clone()]),
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeCluster, attrs};

    fn cluster() -> Arc<FakeCluster> {
        let cluster = FakeCluster::default();
        cluster.put(
            PRIORITY_CLASSES,
            json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000}),
        );
        cluster.put(
            PRIORITY_CLASSES,
            json!({"metadata": {"name": "low"}, "value": 10, "globalDefault": true, "preemptionPolicy": "Never"}),
        );
        Arc::new(cluster)
    }

    #[tokio::test]
    async fn pods_get_their_class_priority_or_the_default() {
        let plugin = Priority::new(cluster());
        let w = Warnings::default();
        let pod = json!({"metadata": {"name": "p"}, "spec": {"priorityClassName": "system-node-critical"}});
        let mut a = attrs(Operation::Create, "", "pods", "Pod", "ns", Some(pod));
        plugin.admit(&mut a, &w).await.unwrap();
        let spec = &a.object.as_ref().unwrap()["spec"];
        assert_eq!(
            (spec["priority"].as_i64(), spec["preemptionPolicy"].as_str()),
            (Some(2000001000), Some("PreemptLowerPriority"))
        );

        let mut a = attrs(
            Operation::Create,
            "",
            "pods",
            "Pod",
            "ns",
            Some(json!({"metadata": {"name": "p"}, "spec": {}})),
        );
        plugin.admit(&mut a, &w).await.unwrap();
        let spec = &a.object.as_ref().unwrap()["spec"];
        assert_eq!(
            (
                spec["priorityClassName"].as_str(),
                spec["priority"].as_i64()
            ),
            (Some("low"), Some(10))
        );

        let pod = json!({"metadata": {"name": "p"}, "spec": {"priorityClassName": "nope"}});
        let mut a = attrs(Operation::Create, "", "pods", "Pod", "ns", Some(pod));
        let err = plugin.admit(&mut a, &w).await.unwrap_err();
        assert_eq!(
            err.message(),
            r#"pods "p" is forbidden: no PriorityClass with name nope was found"#
        );
    }

    #[tokio::test]
    async fn only_one_default_class() {
        let plugin = Priority::new(cluster());
        let class = json!({"metadata": {"name": "other"}, "value": 5, "globalDefault": true});
        let a = attrs(
            Operation::Create,
            "scheduling.k8s.io",
            "priorityclasses",
            "PriorityClass",
            "",
            Some(class),
        );
        let err = plugin.validate(&a, &Warnings::default()).await.unwrap_err();
        assert_eq!(
            err.message(),
            r#"priorityclasses.scheduling.k8s.io "other" is forbidden: PriorityClass low is marked as default. Only one default can exist"#
        );
    }

    #[tokio::test]
    async fn runtime_class_overhead() {
        let cluster = FakeCluster::default();
        cluster.put(
            ("node.k8s.io", "runtimeclasses"),
            json!({"metadata": {"name": "kata"}, "handler": "kata", "overhead": {"podFixed": {"cpu": "250m"}}}),
        );
        let plugin = RuntimeClass::new(Arc::new(cluster));
        let pod = json!({"metadata": {"name": "p"}, "spec": {"runtimeClassName": "kata"}});
        let mut a = attrs(Operation::Create, "", "pods", "Pod", "ns", Some(pod));
        plugin.admit(&mut a, &Warnings::default()).await.unwrap();
        assert_eq!(
            a.object.unwrap()["spec"]["overhead"],
            json!({"cpu": "250m"})
        );
    }
}
