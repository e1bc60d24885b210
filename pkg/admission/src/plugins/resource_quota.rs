//! ResourceQuota: a create is charged to every quota of its namespace that limits what it
//! uses, and refused with upstream's 403 when a quota would be exceeded. The charge is
//! written to the quota's `status.used` with a resourceVersion compare-and-swap, so two
//! concurrent creates cannot both take the last unit; a delete gives its usage back.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use rkube_api::status::Reason;
use serde_json::{Value, json};

use crate::attributes::{Attributes, Operation};
use crate::chain::{Cluster, Plugin, Result, Warnings};
use crate::quantity;

const QUOTAS: (&str, &str) = ("", "resourcequotas");

/// How often a charge is retried when another writer updated the quota first.
const CAS_ATTEMPTS: usize = 16;

/// Core resources quota counts under their plain name (`pods`) as well as `count/pods`.
const LEGACY_COUNTED: &[&str] = &[
    "pods",
    "services",
    "configmaps",
    "secrets",
    "persistentvolumeclaims",
    "replicationcontrollers",
    "resourcequotas",
];

/// The plugin.
#[derive(Debug)]
pub struct ResourceQuota {
    cluster: Arc<dyn Cluster>,
}

impl ResourceQuota {
    /// The plugin over `cluster`'s ResourceQuotas.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        ResourceQuota { cluster }
    }
}

type Usage = BTreeMap<String, f64>;

/// What one object of `(group, plural)` uses, by quota resource name.
pub fn usage(group: &str, plural: &str, object: &Value) -> Usage {
    let mut used = Usage::new();
    let count = if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    };
    used.insert(count, 1.0);
    if group.is_empty() && LEGACY_COUNTED.contains(&plural) {
        used.insert(plural.to_owned(), 1.0);
    }
    match (group, plural) {
        ("", "pods") => {
            // Containers add up; an init container runs alone, so only the largest counts.
            let sum = |list: &str, field: &str, name: &str, add: bool| {
                object["spec"][list]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["resources"][field][name].as_str())
                    .filter_map(quantity::parse)
                    .fold(0.0, |acc, v| if add { acc + v } else { f64::max(acc, v) })
            };
            for (field, name, keys) in [
                ("requests", "cpu", &["requests.cpu", "cpu"][..]),
                ("requests", "memory", &["requests.memory", "memory"][..]),
                ("limits", "cpu", &["limits.cpu"][..]),
                ("limits", "memory", &["limits.memory"][..]),
            ] {
                let total = f64::max(
                    sum("containers", field, name, true),
                    sum("initContainers", field, name, false),
                );
                if total > 0.0 {
                    for key in keys {
                        used.insert((*key).to_owned(), total);
                    }
                }
            }
        }
        ("", "services") => {
            let kind = object["spec"]["type"].as_str().unwrap_or("ClusterIP");
            let ports = object["spec"]["ports"].as_array().map_or(0, Vec::len) as f64;
            if kind == "LoadBalancer" {
                used.insert("services.loadbalancers".into(), 1.0);
            }
            if kind == "NodePort" || kind == "LoadBalancer" {
                used.insert("services.nodeports".into(), ports);
            }
        }
        ("", "persistentvolumeclaims") => {
            if let Some(size) = object["spec"]["resources"]["requests"]["storage"]
                .as_str()
                .and_then(quantity::parse)
            {
                used.insert("requests.storage".into(), size);
            }
        }
        _ => {}
    }
    used
}

fn quantities(map: &Value) -> Usage {
    map.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), quantity::parse(v.as_str()?)?)))
        .collect()
}

fn pretty(usage: &Usage, keys: &[&String]) -> String {
    keys.iter()
        .map(|k| {
            format!(
                "{k}={}",
                quantity::format(usage.get(*k).copied().unwrap_or(0.0))
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl ResourceQuota {
    /// What the namespace's `group/plural` objects use of `key`, counted live (for quotas
    /// whose status does not cover it yet).
    async fn live(&self, attrs: &Attributes, key: &str) -> Result<f64> {
        let (group, plural) = (&attrs.resource.group, &attrs.resource.name);
        let objects = self
            .cluster
            .list((group, plural), Some(&attrs.namespace))
            .await?;
        Ok(objects
            .iter()
            .filter_map(|o| usage(group, plural, o).get(key).copied())
            .sum())
    }

    /// Charges `delta` (negative: a refund) to `quota`, re-reading it when a concurrent
    /// writer got there first. `check` refuses charges beyond the hard limits.
    async fn charge(
        &self,
        attrs: &Attributes,
        mut quota: Value,
        delta: &Usage,
        check: bool,
    ) -> Result<()> {
        let name = quota["metadata"]["name"].as_str().unwrap_or("").to_owned();
        for _ in 0..CAS_ATTEMPTS {
            let hard = quantities(&quota["spec"]["hard"]);
            let mut used = quantities(&quota["status"]["used"]);
            let keys: Vec<&String> = delta.keys().filter(|k| hard.contains_key(*k)).collect();
            if keys.is_empty() {
                return Ok(());
            }
            for key in &keys {
                if !used.contains_key(*key) {
                    used.insert((*key).clone(), self.live(attrs, key).await?);
                }
            }
            let mut next = used.clone();
            for key in &keys {
                let value = next.get(*key).copied().unwrap_or(0.0) + delta[*key];
                next.insert((*key).clone(), value.max(0.0));
            }
            let exceeded: Vec<&String> = keys
                .iter()
                .copied()
                .filter(|k| next[*k] > hard[*k] + 1e-9)
                .collect();
            if check && !exceeded.is_empty() {
                return Err(attrs.forbidden(format!(
                    "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                    pretty(delta, &exceeded),
                    pretty(&used, &exceeded),
                    pretty(&hard, &exceeded)
                )));
            }
            if attrs.dry_run {
                return Ok(());
            }
            let mut status_used = quota["status"]["used"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for key in &keys {
                status_used.insert((*key).clone(), quantity::format(next[*key]).into());
            }
            quota["status"] =
                json!({"hard": quota["spec"]["hard"].clone(), "used": Value::Object(status_used)});
            match self.cluster.update_status(QUOTAS, quota.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) if e.reason() == Reason::Conflict => {
                    match self.cluster.get(QUOTAS, &attrs.namespace, &name).await? {
                        Some(fresh) => quota = fresh,
                        None => return Ok(()),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(attrs.forbidden(format!(
            "status unknown for quota: {name}, resources: too many concurrent updates"
        )))
    }
}

#[async_trait]
impl Plugin for ResourceQuota {
    fn name(&self) -> &'static str {
        "ResourceQuota"
    }

    async fn validate(&self, attrs: &Attributes, _warnings: &Warnings) -> Result<()> {
        let op = attrs.op();
        if attrs.namespace.is_empty()
            || !attrs.subresource.is_empty()
            || !matches!(op, Operation::Create | Operation::Delete)
        {
            return Ok(());
        }
        let object = match op {
            Operation::Create => attrs.object.as_ref(),
            _ => attrs.old_object.as_ref(),
        };
        let Some(object) = object else {
            return Ok(());
        };
        let quotas = self.cluster.list(QUOTAS, Some(&attrs.namespace)).await?;
        if quotas.is_empty() {
            return Ok(());
        }
        let mut delta = usage(&attrs.resource.group, &attrs.resource.name, object);
        if op == Operation::Delete {
            delta.values_mut().for_each(|v| *v = -*v);
        }
        for quota in quotas {
            self.charge(attrs, quota, &delta, op == Operation::Create)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeCluster, attrs};

    #[tokio::test]
    async fn the_third_pod_exceeds_a_quota_of_two() {
        let cluster = Arc::new(FakeCluster::default());
        cluster.put(
            QUOTAS,
            json!({"metadata": {"name": "q", "namespace": "ns", "resourceVersion": "1"}, "spec": {"hard": {"pods": "2"}}}),
        );
        let plugin = ResourceQuota::new(cluster.clone());
        let w = Warnings::default();
        for name in ["a", "b"] {
            let pod = json!({"metadata": {"name": name}, "spec": {"containers": []}});
            let a = attrs(Operation::Create, "", "pods", "Pod", "ns", Some(pod));
            plugin.validate(&a, &w).await.unwrap();
        }
        let quota = cluster.get(QUOTAS, "ns", "q").await.unwrap().unwrap();
        assert_eq!(quota["status"]["used"]["pods"], "2");
        let pod = json!({"metadata": {"name": "c"}, "spec": {"containers": []}});
        let a = attrs(
            Operation::Create,
            "",
            "pods",
            "Pod",
            "ns",
            Some(pod.clone()),
        );
        let err = plugin.validate(&a, &w).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (
                403,
                r#"pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"#
            )
        );
        // Deleting one gives its unit back.
        let mut a = attrs(Operation::Delete, "", "pods", "Pod", "ns", None);
        a.old_object = Some(pod.clone());
        plugin.validate(&a, &w).await.unwrap();
        let a = attrs(Operation::Create, "", "pods", "Pod", "ns", Some(pod));
        plugin.validate(&a, &w).await.unwrap();
    }

    #[test]
    fn pods_use_their_containers_resources() {
        let pod = json!({"spec": {"containers": [
            {"resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}}},
            {"resources": {"requests": {"cpu": "250m"}}}
        ], "initContainers": [{"resources": {"requests": {"cpu": "2"}}}]}});
        let used = usage("", "pods", &pod);
        assert_eq!(used["requests.cpu"], 2.0);
        assert_eq!(used["limits.memory"], 1073741824.0);
        assert_eq!(used["count/pods"], 1.0);
    }
}
