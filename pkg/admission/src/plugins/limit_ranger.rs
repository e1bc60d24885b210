//! LimitRanger: containers get their namespace's LimitRange defaults (requests and limits)
//! and must stay within its minimums and maximums.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::attributes::{Attributes, Operation};
use crate::chain::{Cluster, Plugin, Result, Warnings};
use crate::quantity;

const LIMIT_RANGES: (&str, &str) = ("", "limitranges");
const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// The plugin.
#[derive(Debug)]
pub struct LimitRanger {
    cluster: Arc<dyn Cluster>,
}

impl LimitRanger {
    /// The plugin over `cluster`'s LimitRanges.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        LimitRanger { cluster }
    }

    /// The `Container` items of the namespace's LimitRanges, in list order.
    async fn container_items(&self, namespace: &str) -> Result<Vec<Value>> {
        let ranges = self.cluster.list(LIMIT_RANGES, Some(namespace)).await?;
        Ok(ranges
            .iter()
            .flat_map(|r| r["spec"]["limits"].as_array().cloned().unwrap_or_default())
            .filter(|item| item["type"].as_str() == Some("Container"))
            .collect())
    }
}

/// Whether LimitRanger looks at this request: pod creates and updates.
fn applies(attrs: &Attributes) -> bool {
    matches!(attrs.op(), Operation::Create | Operation::Update) && attrs.is_core("pods")
}

fn containers_mut(pod: &mut Value) -> impl Iterator<Item = &mut Value> {
    let spec = pod.get_mut("spec").and_then(Value::as_object_mut);
    spec.into_iter().flat_map(|spec| {
        spec.iter_mut()
            .filter(|(k, _)| *k == "initContainers" || *k == "containers")
            .flat_map(|(_, list)| list.as_array_mut().into_iter().flatten())
    })
}

/// Fills absent requests and limits from `item`'s `defaultRequest` and `default` (a missing
/// `defaultRequest` falls back to `default`, a missing `default` to `max`, as the LimitRange
/// defaulting does); returns the resource names set, sorted, for requests and for limits.
fn default_container(container: &mut Value, item: &Value) -> (Vec<String>, Vec<String>) {
    let limits_default = item["default"]
        .as_object()
        .or(item["max"].as_object())
        .cloned();
    let requests_default = item["defaultRequest"]
        .as_object()
        .cloned()
        .or_else(|| limits_default.clone());
    let mut fill = |field: &str, defaults: Option<Map<String, Value>>| {
        let mut set = Vec::new();
        for (name, value) in defaults.unwrap_or_default() {
            if !container["resources"].is_object() {
                container["resources"] = json!({});
            }
            let resources = &mut container["resources"];
            if !resources[field].is_object() {
                resources[field] = json!({});
            }
            if resources[field].get(&name).is_none() {
                resources[field][&name] = value;
                set.push(name);
            }
        }
        set.sort();
        set
    };
    let limits = fill("limits", limits_default);
    let requests = fill("requests", requests_default);
    (requests, limits)
}

/// Upstream's min/max checks of one container against one item.
fn check_container(container: &Value, item: &Value, errs: &mut Vec<String>) {
    let get = |field: &str, name: &str| {
        container["resources"][field][name]
            .as_str()
            .map(str::to_owned)
    };
    for (name, min) in item["min"].as_object().into_iter().flatten() {
        let min_text = min.as_str().unwrap_or("");
        match get("requests", name) {
            None => errs.push(format!(
                "minimum {name} usage per Container is {min_text}.  No request is specified"
            )),
            Some(request) if quantity::parse(&request) < quantity::parse(min_text) => {
                errs.push(format!(
                    "minimum {name} usage per Container is {min_text}, but request is {request}"
                ))
            }
            Some(_) => {}
        }
    }
    for (name, max) in item["max"].as_object().into_iter().flatten() {
        let max_text = max.as_str().unwrap_or("");
        match get("limits", name) {
            None => errs.push(format!(
                "maximum {name} usage per Container is {max_text}.  No limit is specified"
            )),
            Some(limit) if quantity::parse(&limit) > quantity::parse(max_text) => errs.push(
                format!("maximum {name} usage per Container is {max_text}, but limit is {limit}"),
            ),
            Some(_) => {}
        }
    }
}

/// Upstream's aggregate error text: one message alone, several in brackets.
pub(crate) fn aggregate(errs: &[String]) -> String {
    let mut unique: Vec<&String> = Vec::new();
    for e in errs {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    match unique.as_slice() {
        [one] => (*one).clone(),
        many => format!(
            "[{}]",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[async_trait]
impl Plugin for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    async fn admit(&self, attrs: &mut Attributes, _warnings: &Warnings) -> Result<()> {
        if attrs.op() != Operation::Create || !attrs.is_core("pods") {
            return Ok(());
        }
        let items = self.container_items(&attrs.namespace).await?;
        let Some(pod) = attrs.object.as_mut().filter(|_| !items.is_empty()) else {
            return Ok(());
        };
        let mut notes = Vec::new();
        for container in containers_mut(pod) {
            let name = container["name"].as_str().unwrap_or("").to_owned();
            let mut set: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for item in &items {
                let (requests, limits) = default_container(container, item);
                set.entry("request").or_default().extend(requests);
                set.entry("limit").or_default().extend(limits);
            }
            for (what, names) in [("request", &set["request"]), ("limit", &set["limit"])] {
                if !names.is_empty() {
                    notes.push(format!("{} {what} for container {name}", names.join(", ")));
                }
            }
        }
        if !notes.is_empty() {
            if !pod["metadata"]["annotations"].is_object() {
                pod["metadata"]["annotations"] = json!({});
            }
            pod["metadata"]["annotations"][ANNOTATION] =
                format!("LimitRanger plugin set: {}", notes.join("; ")).into();
        }
        Ok(())
    }

    async fn validate(&self, attrs: &Attributes, _warnings: &Warnings) -> Result<()> {
        if !applies(attrs) {
            return Ok(());
        }
        let Some(pod) = attrs.object.as_ref() else {
            return Ok(());
        };
        let items = self.container_items(&attrs.namespace).await?;
        let mut errs = Vec::new();
        for list in ["initContainers", "containers"] {
            for container in pod["spec"][list].as_array().into_iter().flatten() {
                for item in &items {
                    check_container(container, item, &mut errs);
                }
            }
        }
        if errs.is_empty() {
            return Ok(());
        }
        Err(attrs.forbidden(aggregate(&errs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeCluster, attrs};

    fn plugin() -> LimitRanger {
        let cluster = FakeCluster::default();
        cluster.put(
            LIMIT_RANGES,
            json!({"metadata": {"name": "lr", "namespace": "ns"}, "spec": {"limits": [{
                "type": "Container",
                "default": {"cpu": "500m", "memory": "256Mi"},
                "defaultRequest": {"cpu": "100m"},
                "min": {"cpu": "50m"},
                "max": {"cpu": "1"}
            }]}}),
        );
        LimitRanger::new(Arc::new(cluster))
    }

    #[tokio::test]
    async fn containers_get_defaults_and_the_annotation() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "x", "resources": {"limits": {"memory": "1Gi"}}}
        ]}});
        let mut a = attrs(Operation::Create, "", "pods", "Pod", "ns", Some(pod));
        let w = Warnings::default();
        let plugin = plugin();
        plugin.admit(&mut a, &w).await.unwrap();
        let pod = a.object.clone().unwrap();
        assert_eq!(
            pod["spec"]["containers"][0]["resources"],
            json!({"limits": {"memory": "1Gi", "cpu": "500m"}, "requests": {"cpu": "100m"}})
        );
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu request for container c; cpu limit for container c"
        );
        plugin.validate(&a, &w).await.unwrap();
    }

    #[tokio::test]
    async fn limits_beyond_the_maximum_are_refused() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "x", "resources": {"limits": {"cpu": "2"}, "requests": {"cpu": "10m"}}}
        ]}});
        let a = attrs(Operation::Create, "", "pods", "Pod", "ns", Some(pod));
        let err = plugin()
            .validate(&a, &Warnings::default())
            .await
            .unwrap_err();
        assert_eq!(
            err.message(),
            r#"pods "p" is forbidden: [minimum cpu usage per Container is 50m, but request is 10m, maximum cpu usage per Container is 1, but limit is 2]"#
        );
    }
}
