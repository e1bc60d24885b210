//! LimitRanger: containers get their namespace's LimitRange defaults (requests and limits);
//! containers and whole pods (`Container` and `Pod` items) must stay within its minimums,
//! maximums and limit-to-request ratios, and claims (`PersistentVolumeClaim` items) within its
//! storage bounds.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::attributes::{Attributes, Operation};
use crate::chain::{Cluster, Plugin, Result, Warnings};
use crate::quantity::{MAX_MILLI_VALUE, Quantity};

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

/// What LimitRanger checks a request against: a pod's containers and their sum, or a
/// claim's storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Pod,
    Claim,
}

/// Upstream's `SupportsAttributes`: pod creates (containers cannot change on update) and claim
/// creates and updates, never subresources nor objects already being deleted.
fn target(attrs: &Attributes) -> Option<Target> {
    let deleting = attrs
        .old_object
        .as_ref()
        .is_some_and(|o| o.pointer("/metadata/deletionTimestamp").is_some());
    match attrs.op() {
        _ if deleting => None,
        Operation::Create if attrs.is_core("pods") => Some(Target::Pod),
        Operation::Create | Operation::Update if attrs.is_core("persistentvolumeclaims") => {
            Some(Target::Claim)
        }
        _ => None,
    }
}

/// The container lists of a pod with the word upstream's annotation uses for each.
const CONTAINER_LISTS: [(&str, &str); 2] = [
    ("containers", "container"),
    ("initContainers", "init container"),
];

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

/// A quantity in a resource list: a string, or a number as JSON may carry it.
fn quantity(value: &Value) -> Option<Quantity> {
    match value {
        Value::String(s) => Quantity::parse(s),
        Value::Number(n) => Quantity::parse(&n.to_string()),
        _ => None,
    }
}

/// A resource list (`requests`, `limits`, a LimitRange item's `min`).
type Amounts = BTreeMap<String, Quantity>;

fn amounts(list: &Value) -> Amounts {
    list.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, v)| Some((name.clone(), quantity(v)?)))
        .collect()
}

/// Adds `other` into `sum`; a new resource keeps the format of its first amount.
fn add(sum: &mut Amounts, other: &Amounts) {
    for (name, amount) in other {
        sum.entry(name.clone())
            .and_modify(|a| *a = a.plus(*amount))
            .or_insert(*amount);
    }
}

/// Raises `max` to `other` wherever `other` is larger.
fn raise(max: &mut Amounts, other: &Amounts) {
    for (name, amount) in other {
        match max.get(name) {
            Some(current) if amount.cmp_value(current).is_le() => {}
            _ => {
                max.insert(name.clone(), *amount);
            }
        }
    }
}

/// A pod's effective `requests` or `limits` (upstream's `podRequests`/`podLimits`): the sum
/// of its containers and sidecars, or the largest init container (plus the sidecars started
/// before it) when that is larger.
fn pod_amounts(pod: &Value, field: &str) -> Amounts {
    let of = |c: &Value| amounts(&c["resources"][field]);
    let mut total = Amounts::new();
    for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
        add(&mut total, &of(container));
    }
    let (mut sidecars, mut init) = (Amounts::new(), Amounts::new());
    for container in pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let own = of(container);
        if container["restartPolicy"].as_str() == Some("Always") {
            add(&mut total, &own);
            add(&mut sidecars, &own);
            raise(&mut init, &sidecars);
        } else {
            let mut running = own;
            add(&mut running, &sidecars);
            raise(&mut init, &running);
        }
    }
    raise(&mut total, &init);
    total
}

/// Upstream's `requestLimitEnforcedValues`: request, limit and bound (absent ones as 0) in
/// milli-units when all three fit, else in whole units; both round up.
fn enforced_values(
    request: Option<&Quantity>,
    limit: Option<&Quantity>,
    bound: Quantity,
) -> (i64, i64, i64) {
    let whole = |q: Option<&Quantity>| q.map_or(0, |q| q.value());
    let milli = |q: Option<&Quantity>| q.map_or(0, |q| q.milli_value());
    let values = [request, limit, Some(&bound)];
    if values.iter().all(|q| whole(*q) <= MAX_MILLI_VALUE) {
        (milli(request), milli(limit), bound.milli_value())
    } else {
        (whole(request), whole(limit), bound.value())
    }
}

/// Upstream's `minConstraint`.
fn min_constraint(
    kind: &str,
    name: &str,
    min: Quantity,
    requests: &Amounts,
    limits: &Amounts,
) -> Option<String> {
    let (request, limit) = (requests.get(name), limits.get(name));
    let (observed_request, observed_limit, bound) = enforced_values(request, limit, min);
    let Some(request) = request else {
        return Some(format!(
            "minimum {name} usage per {kind} is {min}.  No request is specified"
        ));
    };
    if observed_request < bound {
        return Some(format!(
            "minimum {name} usage per {kind} is {min}, but request is {request}"
        ));
    }
    limit
        .filter(|_| observed_limit < bound)
        .map(|limit| format!("minimum {name} usage per {kind} is {min}, but limit is {limit}"))
}

/// Upstream's `maxConstraint`; with `limits` `None`, its `maxRequestConstraint` (claims have
/// only requests).
fn max_constraint(
    kind: &str,
    name: &str,
    max: Quantity,
    requests: &Amounts,
    limits: Option<&Amounts>,
) -> Option<String> {
    let request = requests.get(name);
    let limit = limits.and_then(|l| l.get(name));
    let (observed_request, observed_limit, bound) = enforced_values(request, limit, max);
    let missing = |what: &str| {
        Some(format!(
            "maximum {name} usage per {kind} is {max}.  No {what} is specified"
        ))
    };
    let beyond = |what: &str, got: &Quantity| {
        Some(format!(
            "maximum {name} usage per {kind} is {max}, but {what} is {got}"
        ))
    };
    let request_ok = || match request {
        Some(request) if observed_request > bound => beyond("request", request),
        _ => None,
    };
    match (limits, limit) {
        (None, _) if request.is_none() => missing("request"),
        (None, _) => request_ok(),
        (Some(_), None) => missing("limit"),
        (Some(_), Some(limit)) if observed_limit > bound => beyond("limit", limit),
        (Some(_), Some(_)) => request_ok(),
    }
}

/// Upstream's `limitRequestRatioConstraint`, with its float arithmetic (the ratio of the
/// rounded values, compared in milli-units when the bound allows).
fn ratio_constraint(
    kind: &str,
    name: &str,
    ratio: Quantity,
    requests: &Amounts,
    limits: &Amounts,
) -> Option<String> {
    let prefix = format!("{name} max limit to request ratio per {kind} is {ratio}");
    let (request, limit) = (requests.get(name), limits.get(name));
    let (observed_request, observed_limit, _) = enforced_values(request, limit, ratio);
    if request.is_none() || observed_request == 0 {
        return Some(format!(
            "{prefix}, but no request is specified or request is 0"
        ));
    }
    if limit.is_none() || observed_limit == 0 {
        return Some(format!("{prefix}, but no limit is specified or limit is 0"));
    }
    let observed = observed_limit as f64 / observed_request as f64;
    let (compared, bound) = if ratio.value() <= MAX_MILLI_VALUE {
        (observed * 1000.0, ratio.milli_value() as f64)
    } else {
        (observed, ratio.value() as f64)
    };
    (compared > bound).then(|| format!("{prefix}, but provided ratio is {observed:.6}"))
}

/// The errors of `requests` and `limits` (of a container or a whole pod, `kind`) against one
/// LimitRange item: its minimums, maximums and limit-to-request ratios.
fn check(kind: &str, item: &Value, requests: &Amounts, limits: &Amounts, errs: &mut Vec<String>) {
    for (name, min) in amounts(&item["min"]) {
        errs.extend(min_constraint(kind, &name, min, requests, limits));
    }
    for (name, max) in amounts(&item["max"]) {
        errs.extend(max_constraint(kind, &name, max, requests, Some(limits)));
    }
    for (name, ratio) in amounts(&item["maxLimitRequestRatio"]) {
        errs.extend(ratio_constraint(kind, &name, ratio, requests, limits));
    }
}

/// Upstream's `PodValidateLimitFunc`: each container against `Container` items, the pod's
/// effective requests and limits against `Pod` items.
fn pod_errors(pod: &Value, items: &[Value]) -> Vec<String> {
    let mut errs = Vec::new();
    for item in items {
        match item["type"].as_str() {
            Some("Container") => {
                for (list, _) in CONTAINER_LISTS {
                    for container in pod["spec"][list].as_array().into_iter().flatten() {
                        let resources = &container["resources"];
                        let (requests, limits) = (
                            amounts(&resources["requests"]),
                            amounts(&resources["limits"]),
                        );
                        check("Container", item, &requests, &limits, &mut errs);
                    }
                }
            }
            Some("Pod") => {
                let (requests, limits) = (pod_amounts(pod, "requests"), pod_amounts(pod, "limits"));
                check("Pod", item, &requests, &limits, &mut errs);
            }
            _ => {}
        }
    }
    errs
}

/// Upstream's `PersistentVolumeClaimValidateLimitFunc`: the claim's storage requests against
/// `PersistentVolumeClaim` items (claims are never defaulted).
fn claim_errors(claim: &Value, items: &[Value]) -> Vec<String> {
    let requests = amounts(&claim["spec"]["resources"]["requests"]);
    let kind = "PersistentVolumeClaim";
    let mut errs = Vec::new();
    for item in items.iter().filter(|i| i["type"].as_str() == Some(kind)) {
        for (name, min) in amounts(&item["min"]) {
            errs.extend(min_constraint(kind, &name, min, &requests, &Amounts::new()));
        }
        for (name, max) in amounts(&item["max"]) {
            errs.extend(max_constraint(kind, &name, max, &requests, None));
        }
    }
    errs
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
        for (list, word) in CONTAINER_LISTS {
            let containers = pod["spec"][list].as_array_mut().into_iter().flatten();
            for container in containers {
                let name = container["name"].as_str().unwrap_or("").to_owned();
                let mut set: BTreeMap<&str, Vec<String>> = BTreeMap::new();
                for item in &items {
                    let (requests, limits) = default_container(container, item);
                    set.entry("request").or_default().extend(requests);
                    set.entry("limit").or_default().extend(limits);
                }
                for (what, names) in [("request", &set["request"]), ("limit", &set["limit"])] {
                    if !names.is_empty() {
                        notes.push(format!("{} {what} for {word} {name}", names.join(", ")));
                    }
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
        let (Some(target), Some(object)) = (target(attrs), attrs.object.as_ref()) else {
            return Ok(());
        };
        // Each LimitRange on its own, as upstream: the first one broken is the answer.
        for range in self
            .cluster
            .list(LIMIT_RANGES, Some(&attrs.namespace))
            .await?
        {
            let items = range["spec"]["limits"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let errs = match target {
                Target::Pod => pod_errors(object, &items),
                Target::Claim => claim_errors(object, &items),
            };
            if !errs.is_empty() {
                return Err(attrs.forbidden(aggregate(&errs)));
            }
        }
        Ok(())
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

    fn ranges(limits: Value) -> LimitRanger {
        let cluster = FakeCluster::default();
        cluster.put(
            LIMIT_RANGES,
            json!({"metadata": {"name": "lr", "namespace": "ns"}, "spec": {"limits": limits}}),
        );
        LimitRanger::new(Arc::new(cluster))
    }

    async fn refusal(plugin: &LimitRanger, a: &Attributes) -> String {
        let err = plugin.validate(a, &Warnings::default()).await.unwrap_err();
        assert_eq!(err.code(), 403);
        err.message().to_owned()
    }

    #[tokio::test]
    async fn pods_are_checked_as_a_whole_and_ratios_per_container() {
        let plugin = ranges(json!([
            {"type": "Pod", "max": {"memory": "1Gi"}, "min": {"cpu": "300m"}},
            {"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}
        ]));
        let container = |name: &str, cpu: (&str, &str), memory: &str| {
            json!({"name": name, "image": "x", "resources": {
                "requests": {"cpu": cpu.0, "memory": memory},
                "limits": {"cpu": cpu.1, "memory": memory}}})
        };
        let pod = |containers: Value, init: Value| {
            attrs(
                Operation::Create,
                "",
                "pods",
                "Pod",
                "ns",
                Some(json!({"metadata": {"name": "p"},
                    "spec": {"containers": containers, "initContainers": init}})),
            )
        };
        // 2 x 512Mi is the maximum exactly; 100m + 250m passes the minimum.
        let fits = pod(
            json!([
                container("a", ("100m", "200m"), "512Mi"),
                container("b", ("250m", "500m"), "512Mi")
            ]),
            json!([]),
        );
        plugin.validate(&fits, &Warnings::default()).await.unwrap();
        let big = pod(
            json!([
                container("a", ("100m", "300m"), "768Mi"),
                container("b", ("100m", "100m"), "512Mi")
            ]),
            json!([]),
        );
        assert_eq!(
            refusal(&plugin, &big).await,
            r#"pods "p" is forbidden: [minimum cpu usage per Pod is 300m, but request is 200m, maximum memory usage per Pod is 1Gi, but limit is 1280Mi, cpu max limit to request ratio per Container is 2, but provided ratio is 3.000000]"#
        );
        // A plain init container counts when it is larger than the rest together.
        let init = pod(
            json!([container("a", ("150m", "300m"), "128Mi")]),
            json!([container("i", ("1", "1"), "2Gi")]),
        );
        assert_eq!(
            refusal(&plugin, &init).await,
            r#"pods "p" is forbidden: maximum memory usage per Pod is 1Gi, but limit is 2Gi"#
        );
        let mut no_requests = pod(json!([{"name": "a", "image": "x"}]), json!([]));
        assert_eq!(
            refusal(&plugin, &no_requests).await,
            r#"pods "p" is forbidden: [minimum cpu usage per Pod is 300m.  No request is specified, maximum memory usage per Pod is 1Gi.  No limit is specified, cpu max limit to request ratio per Container is 2, but no request is specified or request is 0]"#
        );
        // Containers cannot change after create: updates are not checked.
        no_requests.operation = Some(Operation::Update);
        plugin
            .validate(&no_requests, &Warnings::default())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn quantities_compare_exactly_as_upstream_rounds_them() {
        let plugin = ranges(json!([
            {"type": "Pod", "max": {"cpu": "300m"}, "maxLimitRequestRatio": {"cpu": "3"}},
            {"type": "Container", "max": {"cpu": "0.2"}, "min": {"cpu": "1m"}}
        ]));
        let pod = |containers: Value| {
            attrs(
                Operation::Create,
                "",
                "pods",
                "Pod",
                "ns",
                Some(json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})),
            )
        };
        let cpu = |name: &str, request: &str, limit: &str| {
            json!({"name": name, "image": "x", "resources": {
                "requests": {"cpu": request}, "limits": {"cpu": limit}}})
        };
        // 0.1 + 0.2 is the 300m maximum and three times the 100m request, exactly (as floats
        // it is more).
        let fits = pod(json!([cpu("a", "50m", "0.1"), cpu("b", "50m", "200m")]));
        plugin.validate(&fits, &Warnings::default()).await.unwrap();
        // A 100u request is 1m once rounded up to milli-units, as upstream compares: it meets
        // the minimum, and the ratio is taken of the rounded values.
        let rounded = pod(json!([cpu("a", "100u", "200m")]));
        assert_eq!(
            refusal(&plugin, &rounded).await,
            r#"pods "p" is forbidden: cpu max limit to request ratio per Pod is 3, but provided ratio is 200.000000"#
        );
        let over = pod(json!([cpu("a", "100m", "201m"), cpu("b", "0", "0")]));
        assert_eq!(
            refusal(&plugin, &over).await,
            r#"pods "p" is forbidden: [maximum cpu usage per Container is 200m, but limit is 201m, minimum cpu usage per Container is 1m, but request is 0]"#
        );
    }

    #[tokio::test]
    async fn exbibyte_claims_are_compared_to_the_byte() {
        let plugin = ranges(json!([{"type": "PersistentVolumeClaim", "max": {"storage": "1Ei"}}]));
        let claim = |storage: &str| {
            attrs(
                Operation::Create,
                "",
                "persistentvolumeclaims",
                "PersistentVolumeClaim",
                "ns",
                Some(json!({"metadata": {"name": "c"},
                    "spec": {"resources": {"requests": {"storage": storage}}}})),
            )
        };
        let w = Warnings::default();
        plugin
            .validate(&claim("1152921504606846976"), &w)
            .await
            .unwrap();
        assert_eq!(
            refusal(&plugin, &claim("1152921504606846977")).await,
            r#"persistentvolumeclaims "c" is forbidden: maximum storage usage per PersistentVolumeClaim is 1Ei, but request is 1152921504606846977"#
        );
    }

    #[tokio::test]
    async fn claims_stay_within_their_storage_bounds() {
        let plugin = ranges(json!([
            {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}
        ]));
        let claim = |op: Operation, storage: Option<&str>| {
            let requests = storage.map_or(json!({}), |s| json!({"storage": s}));
            attrs(
                op,
                "",
                "persistentvolumeclaims",
                "PersistentVolumeClaim",
                "ns",
                Some(json!({"metadata": {"name": "c"},
                    "spec": {"resources": {"requests": requests}}})),
            )
        };
        let w = Warnings::default();
        plugin
            .validate(&claim(Operation::Create, Some("5Gi")), &w)
            .await
            .unwrap();
        assert_eq!(
            refusal(&plugin, &claim(Operation::Create, Some("512Mi"))).await,
            r#"persistentvolumeclaims "c" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 512Mi"#
        );
        // 10240Mi is the maximum exactly; growing past it on update is refused.
        plugin
            .validate(&claim(Operation::Update, Some("10240Mi")), &w)
            .await
            .unwrap();
        assert_eq!(
            refusal(&plugin, &claim(Operation::Update, Some("10753Mi"))).await,
            r#"persistentvolumeclaims "c" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 10753Mi"#
        );
        assert_eq!(
            refusal(&plugin, &claim(Operation::Create, None)).await,
            r#"persistentvolumeclaims "c" is forbidden: [minimum storage usage per PersistentVolumeClaim is 1Gi.  No request is specified, maximum storage usage per PersistentVolumeClaim is 10Gi.  No request is specified]"#
        );
    }
}
