//! autoscaling/v1 <-> autoscaling/v2 HorizontalPodAutoscaler, after upstream's
//! `pkg/apis/autoscaling/v1/conversion.go`. v2 is the stored version.
//!
//! v1 has one metric, the CPU utilization target (`targetCPUUtilizationPercentage`, and its
//! current value in the status). Everything else v2 holds travels in annotations of the v1
//! object, so a v1 client that reads, edits and writes back loses nothing:
//! - [`METRICS_ANNOTATION`]: the other metrics, as a JSON list of autoscaling/v1 `MetricSpec`s
//!   (the v2beta1-era shapes: `targetAverageValue`, `metricName`, ...);
//! - [`CURRENT_METRICS_ANNOTATION`]: every current metric, as v1 `MetricStatus`es;
//! - [`CONDITIONS_ANNOTATION`]: the status conditions;
//! - [`BEHAVIOR_ANNOTATION`]: `spec.behavior` as upstream writes it: its *internal* Go struct
//!   marshalled without JSON tags, so the keys are Go field names (`ScaleUp`, `Policies`,
//!   `PeriodSeconds`, ...); read back case-insensitively, as Go's decoder does.
//!
//! Converting to v2 consumes these annotations; annotations that do not decode are ignored,
//! as upstream only moves well-formed data into fields.

use serde_json::{Map, Value, json};

use super::{Object, present};

/// Spec metrics other than the CPU utilization target, as v1 `MetricSpec`s.
pub const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// All current metrics, as v1 `MetricStatus`es.
pub const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// The status conditions.
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// `spec.behavior`, in Go's internal field names.
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// Annotations v2beta2 used for the scaling tolerances; dropped with the others.
const TOLERANCE_ANNOTATIONS: [&str; 2] = [
    "autoscaling.alpha.kubernetes.io/scale-up-tolerance",
    "autoscaling.alpha.kubernetes.io/scale-down-tolerance",
];
/// The CPU target a v1 HPA without one has had since v1 (upstream's `DefaultCPUUtilization`).
const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// Every annotation used to carry fields between versions.
fn round_trip_annotations() -> impl Iterator<Item = &'static str> {
    [
        METRICS_ANNOTATION,
        CURRENT_METRICS_ANNOTATION,
        CONDITIONS_ANNOTATION,
        BEHAVIOR_ANNOTATION,
    ]
    .into_iter()
    .chain(TOLERANCE_ANNOTATIONS)
}

fn annotations(hpa: &Object) -> Option<&Map<String, Value>> {
    hpa.get("metadata")?.get("annotations")?.as_object()
}

fn annotations_mut(hpa: &mut Object) -> Option<&mut Map<String, Value>> {
    hpa.get_mut("metadata")?
        .get_mut("annotations")?
        .as_object_mut()
}

/// True when no round-trip annotation is set (a v2 object reads back as stored).
pub(super) fn has_no_round_trip_annotations(hpa: &Object) -> bool {
    annotations(hpa).is_none_or(|a| round_trip_annotations().all(|k| !a.contains_key(k)))
}

/// Removes the round-trip annotations, and the annotations map if that empties it (Go omits
/// an empty map).
pub(super) fn drop_round_trip_annotations(hpa: &mut Object) {
    let Some(map) = annotations_mut(hpa) else {
        return;
    };
    for key in round_trip_annotations() {
        map.remove(key);
    }
    if map.is_empty()
        && let Some(metadata) = hpa.get_mut("metadata").and_then(Value::as_object_mut)
    {
        metadata.remove("annotations");
    }
}

fn set_annotation(hpa: &mut Object, key: &str, value: &Value) {
    let metadata = hpa.entry("metadata").or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    let annotations = &mut metadata["annotations"];
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations[key] = Value::String(value.to_string());
}

/// Copies `from[key]` into `to[as_key]` when present.
fn copy(to: &mut Object, as_key: &str, from: &Value, key: &str) {
    if let Some(value) = present(from, key) {
        to.insert(as_key.into(), value.clone());
    }
}

/// A Go `resource.Quantity` that is not a pointer: its zero value marshals as `"0"`.
fn quantity(from: &Value, key: &str) -> Value {
    present(from, key).cloned().unwrap_or_else(|| json!("0"))
}

/// A Go string that is not omitted when empty.
fn string(from: &Value, key: &str) -> Value {
    present(from, key).cloned().unwrap_or_else(|| json!(""))
}

fn list(from: Option<&Value>, key: &str) -> Vec<Value> {
    from.and_then(|v| present(v, key))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// `{kind, name, apiVersion}`: the same shape in v1 and v2.
fn reference(from: &Value, key: &str) -> Value {
    let reference = present(from, key).unwrap_or(&Value::Null);
    let mut out = Map::new();
    out.insert("kind".into(), string(reference, "kind"));
    out.insert("name".into(), string(reference, "name"));
    copy(&mut out, "apiVersion", reference, "apiVersion");
    Value::Object(out)
}

fn is_cpu_resource(metric: &Value) -> bool {
    metric.get("type").and_then(Value::as_str) == Some("Resource")
        && metric["resource"]["name"].as_str() == Some("cpu")
}

fn cpu_utilization_metric(percent: Value) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": percent}}})
}

// ---- autoscaling/v2 -> autoscaling/v1 ----

/// autoscaling/v2 -> autoscaling/v1.
pub(super) fn v2_to_v1(hpa: &mut Object) {
    drop_round_trip_annotations(hpa);
    let spec = hpa.remove("spec").unwrap_or(Value::Null);
    let status = hpa.remove("status");
    let metrics = list(Some(&spec), "metrics");
    let cpu_target = |metric: &Value| -> Option<Value> {
        is_cpu_resource(metric)
            .then(|| present(&metric["resource"]["target"], "averageUtilization").cloned())
            .flatten()
    };

    let mut v1_spec = Map::new();
    copy(&mut v1_spec, "scaleTargetRef", &spec, "scaleTargetRef");
    copy(&mut v1_spec, "minReplicas", &spec, "minReplicas");
    copy(&mut v1_spec, "maxReplicas", &spec, "maxReplicas");
    // The first CPU metric with a utilization target (upstream #101370), not merely the first
    // CPU metric.
    if let Some(percent) = metrics.iter().find_map(cpu_target) {
        v1_spec.insert("targetCPUUtilizationPercentage".into(), percent);
    }
    hpa.insert("spec".into(), Value::Object(v1_spec));

    let current = list(status.as_ref(), "currentMetrics");
    let conditions = list(status.as_ref(), "conditions");
    if let Some(status) = &status {
        let mut v1_status = Map::new();
        for key in [
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ] {
            copy(&mut v1_status, key, status, key);
        }
        // Upstream's loop does not stop at the first match: the last CPU value wins.
        let cpu_now = current.iter().rev().find_map(|metric| {
            is_cpu_resource(metric)
                .then(|| present(&metric["resource"]["current"], "averageUtilization").cloned())
                .flatten()
        });
        if let Some(percent) = cpu_now {
            v1_status.insert("currentCPUUtilizationPercentage".into(), percent);
        }
        hpa.insert("status".into(), Value::Object(v1_status));
    }

    // Every CPU utilization target is said by `targetCPUUtilizationPercentage`; upstream keeps
    // only the first.
    let others: Vec<Value> = metrics
        .iter()
        .filter(|m| cpu_target(m).is_none())
        .map(metric_spec_to_v1)
        .collect();
    if !others.is_empty() {
        set_annotation(hpa, METRICS_ANNOTATION, &Value::Array(others));
    }
    if !current.is_empty() {
        let statuses = current.iter().map(metric_status_to_v1).collect();
        set_annotation(hpa, CURRENT_METRICS_ANNOTATION, &Value::Array(statuses));
    }
    if let Some(behavior) = present(&spec, "behavior") {
        set_annotation(hpa, BEHAVIOR_ANNOTATION, &behavior_to_internal(behavior));
    }
    if !conditions.is_empty() {
        set_annotation(hpa, CONDITIONS_ANNOTATION, &Value::Array(conditions));
    }
}

/// The metric identifier of a v2 source or status: `(name, selector)`.
fn identifier(source: &Value) -> (Value, Option<&Value>) {
    let metric = present(source, "metric").unwrap_or(&Value::Null);
    (string(metric, "name"), present(metric, "selector"))
}

/// A v2 `MetricSpec` as a v1 `MetricSpec`.
fn metric_spec_to_v1(metric: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), string(metric, "type"));
    if let Some(source) = present(metric, "object") {
        let target = &source["target"];
        let (name, selector) = identifier(source);
        let mut v1 = Map::new();
        v1.insert("target".into(), reference(source, "describedObject"));
        v1.insert("metricName".into(), name);
        v1.insert("targetValue".into(), quantity(target, "value"));
        if let Some(selector) = selector {
            v1.insert("selector".into(), selector.clone());
        }
        copy(&mut v1, "averageValue", target, "averageValue");
        out.insert("object".into(), Value::Object(v1));
    }
    if let Some(source) = present(metric, "pods") {
        let (name, selector) = identifier(source);
        let mut v1 = Map::new();
        v1.insert("metricName".into(), name);
        v1.insert(
            "targetAverageValue".into(),
            quantity(&source["target"], "averageValue"),
        );
        if let Some(selector) = selector {
            v1.insert("selector".into(), selector.clone());
        }
        out.insert("pods".into(), Value::Object(v1));
    }
    for (key, container) in [("resource", false), ("containerResource", true)] {
        if let Some(source) = present(metric, key) {
            let target = &source["target"];
            let mut v1 = Map::new();
            v1.insert("name".into(), string(source, "name"));
            copy(
                &mut v1,
                "targetAverageUtilization",
                target,
                "averageUtilization",
            );
            copy(&mut v1, "targetAverageValue", target, "averageValue");
            if container {
                v1.insert("container".into(), string(source, "container"));
            }
            out.insert(key.into(), Value::Object(v1));
        }
    }
    if let Some(source) = present(metric, "external") {
        let target = &source["target"];
        let (name, selector) = identifier(source);
        let mut v1 = Map::new();
        v1.insert("metricName".into(), name);
        if let Some(selector) = selector {
            v1.insert("metricSelector".into(), selector.clone());
        }
        copy(&mut v1, "targetValue", target, "value");
        copy(&mut v1, "targetAverageValue", target, "averageValue");
        out.insert("external".into(), Value::Object(v1));
    }
    Value::Object(out)
}

/// A v2 `MetricStatus` as a v1 `MetricStatus`.
fn metric_status_to_v1(metric: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), string(metric, "type"));
    if let Some(source) = present(metric, "object") {
        let current = &source["current"];
        let (name, selector) = identifier(source);
        let mut v1 = Map::new();
        v1.insert("target".into(), reference(source, "describedObject"));
        v1.insert("metricName".into(), name);
        v1.insert("currentValue".into(), quantity(current, "value"));
        if let Some(selector) = selector {
            v1.insert("selector".into(), selector.clone());
        }
        copy(&mut v1, "averageValue", current, "averageValue");
        out.insert("object".into(), Value::Object(v1));
    }
    if let Some(source) = present(metric, "pods") {
        let (name, selector) = identifier(source);
        let mut v1 = Map::new();
        v1.insert("metricName".into(), name);
        v1.insert(
            "currentAverageValue".into(),
            quantity(&source["current"], "averageValue"),
        );
        if let Some(selector) = selector {
            v1.insert("selector".into(), selector.clone());
        }
        out.insert("pods".into(), Value::Object(v1));
    }
    for (key, container) in [("resource", false), ("containerResource", true)] {
        if let Some(source) = present(metric, key) {
            let current = &source["current"];
            let mut v1 = Map::new();
            v1.insert("name".into(), string(source, "name"));
            copy(
                &mut v1,
                "currentAverageUtilization",
                current,
                "averageUtilization",
            );
            v1.insert(
                "currentAverageValue".into(),
                quantity(current, "averageValue"),
            );
            if container {
                v1.insert("container".into(), string(source, "container"));
            }
            out.insert(key.into(), Value::Object(v1));
        }
    }
    if let Some(source) = present(metric, "external") {
        let current = &source["current"];
        let (name, selector) = identifier(source);
        let mut v1 = Map::new();
        v1.insert("metricName".into(), name);
        if let Some(selector) = selector {
            v1.insert("metricSelector".into(), selector.clone());
        }
        v1.insert("currentValue".into(), quantity(current, "value"));
        copy(&mut v1, "currentAverageValue", current, "averageValue");
        out.insert("external".into(), Value::Object(v1));
    }
    Value::Object(out)
}

/// `spec.behavior` as Go marshals the internal struct: every field, by its Go name, nil
/// pointers as null.
fn behavior_to_internal(behavior: &Value) -> Value {
    let rules = |key: &str| -> Value {
        let Some(rules) = present(behavior, key) else {
            return Value::Null;
        };
        let policies =
            present(rules, "policies")
                .and_then(Value::as_array)
                .map_or(Value::Null, |policies| {
                    policies
                        .iter()
                        .map(|p| {
                            json!({
                                "Type": string(p, "type"),
                                "Value": present(p, "value").cloned().unwrap_or(json!(0)),
                                "PeriodSeconds":
                                    present(p, "periodSeconds").cloned().unwrap_or(json!(0)),
                            })
                        })
                        .collect()
                });
        let field = |key: &str| present(rules, key).cloned().unwrap_or(Value::Null);
        json!({
            "StabilizationWindowSeconds": field("stabilizationWindowSeconds"),
            "SelectPolicy": field("selectPolicy"),
            "Policies": policies,
            "Tolerance": field("tolerance"),
        })
    };
    json!({"ScaleUp": rules("scaleUp"), "ScaleDown": rules("scaleDown")})
}

// ---- autoscaling/v1 -> autoscaling/v2 ----

/// autoscaling/v1 -> autoscaling/v2.
pub(super) fn v1_to_v2(hpa: &mut Object) {
    let spec = hpa.remove("spec").unwrap_or(Value::Null);
    let status = hpa.remove("status");
    let carried = |key: &str| -> Option<Value> {
        let text = annotations(hpa)?.get(key)?.as_str()?;
        serde_json::from_str(text).ok()
    };
    // Go decodes `null` into an empty list; anything but a list of objects fails to decode.
    let carried_list = |key: &str| -> Option<Vec<Value>> {
        match carried(key)? {
            Value::Null => Some(Vec::new()),
            Value::Array(items) => items.iter().all(Value::is_object).then_some(items),
            _ => None,
        }
    };
    let other_metrics = carried_list(METRICS_ANNOTATION);
    let current_metrics = carried_list(CURRENT_METRICS_ANNOTATION);
    let conditions = carried_list(CONDITIONS_ANNOTATION);
    let behavior = carried(BEHAVIOR_ANNOTATION).and_then(|b| behavior_from_internal(&b));
    drop_round_trip_annotations(hpa);

    let mut v2_spec = Map::new();
    copy(&mut v2_spec, "scaleTargetRef", &spec, "scaleTargetRef");
    copy(&mut v2_spec, "minReplicas", &spec, "minReplicas");
    copy(&mut v2_spec, "maxReplicas", &spec, "maxReplicas");
    let cpu =
        present(&spec, "targetCPUUtilizationPercentage").map(|p| cpu_utilization_metric(p.clone()));
    // The carried metrics come first, the CPU target after them, as upstream appends it.
    let mut metrics: Vec<Value> = other_metrics
        .unwrap_or_default()
        .iter()
        .map(metric_spec_from_v1)
        .chain(cpu)
        .collect();
    // v1's implicit target, made explicit (upstream does this in the conversion, where the
    // carried metrics are known).
    if metrics.is_empty() {
        metrics.push(cpu_utilization_metric(json!(DEFAULT_CPU_UTILIZATION)));
    }
    v2_spec.insert("metrics".into(), Value::Array(metrics));
    if let Some(behavior) = behavior {
        v2_spec.insert("behavior".into(), behavior);
    }
    hpa.insert("spec".into(), Value::Object(v2_spec));

    let status = status.unwrap_or(Value::Null);
    let mut v2_status = Map::new();
    for key in [
        "observedGeneration",
        "lastScaleTime",
        "currentReplicas",
        "desiredReplicas",
    ] {
        copy(&mut v2_status, key, &status, key);
    }
    // The carried list has more to say than the percentage, so it wins.
    let current = match current_metrics {
        Some(metrics) => Some(metrics.iter().map(metric_status_from_v1).collect()),
        None => present(&status, "currentCPUUtilizationPercentage").map(|percent| {
            vec![json!({"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": percent}}})]
        }),
    };
    if let Some(current) = current {
        v2_status.insert("currentMetrics".into(), Value::Array(current));
    }
    if let Some(conditions) = conditions {
        v2_status.insert("conditions".into(), Value::Array(conditions));
    }
    if !status.is_null() || !v2_status.is_empty() {
        hpa.insert("status".into(), Value::Object(v2_status));
    }
}

/// A v1 metric source's identifier: `{name, selector}` from its `metricName` and `selector_key`.
fn identifier_from_v1(source: &Value, selector_key: &str) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), string(source, "metricName"));
    copy(&mut out, "selector", source, selector_key);
    Value::Object(out)
}

/// A v1 `MetricSpec` as a v2 `MetricSpec`.
fn metric_spec_from_v1(metric: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), string(metric, "type"));
    if let Some(source) = present(metric, "object") {
        let kind = if present(source, "averageValue").is_some() {
            "AverageValue"
        } else {
            "Value"
        };
        let mut target = typed(kind);
        // `Value: &in.TargetValue`: always set, zero when absent.
        target.insert("value".into(), quantity(source, "targetValue"));
        copy(&mut target, "averageValue", source, "averageValue");
        out.insert(
            "object".into(),
            json!({"describedObject": reference(source, "target"),
                "target": target, "metric": identifier_from_v1(source, "selector")}),
        );
    }
    if let Some(source) = present(metric, "pods") {
        out.insert(
            "pods".into(),
            json!({"metric": identifier_from_v1(source, "selector"),
                "target": {"type": "AverageValue",
                    "averageValue": quantity(source, "targetAverageValue")}}),
        );
    }
    for (key, container) in [("resource", false), ("containerResource", true)] {
        if let Some(source) = present(metric, key) {
            let kind = if present(source, "targetAverageUtilization").is_some() {
                "Utilization"
            } else {
                "AverageValue"
            };
            let mut target = typed(kind);
            copy(&mut target, "averageValue", source, "targetAverageValue");
            copy(
                &mut target,
                "averageUtilization",
                source,
                "targetAverageUtilization",
            );
            let mut v2 = Map::new();
            v2.insert("name".into(), string(source, "name"));
            v2.insert("target".into(), Value::Object(target));
            if container {
                v2.insert("container".into(), string(source, "container"));
            }
            out.insert(key.into(), Value::Object(v2));
        }
    }
    if let Some(source) = present(metric, "external") {
        let kind = if present(source, "targetValue").is_some() {
            "Value"
        } else {
            "AverageValue"
        };
        let mut target = typed(kind);
        copy(&mut target, "value", source, "targetValue");
        copy(&mut target, "averageValue", source, "targetAverageValue");
        out.insert(
            "external".into(),
            json!({"metric": identifier_from_v1(source, "metricSelector"), "target": target}),
        );
    }
    Value::Object(out)
}

/// A v1 `MetricStatus` as a v2 `MetricStatus`.
fn metric_status_from_v1(metric: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), string(metric, "type"));
    if let Some(source) = present(metric, "object") {
        let mut current = Map::new();
        current.insert("value".into(), quantity(source, "currentValue"));
        copy(&mut current, "averageValue", source, "averageValue");
        out.insert(
            "object".into(),
            json!({"metric": identifier_from_v1(source, "selector"), "current": current,
                "describedObject": reference(source, "target")}),
        );
    }
    if let Some(source) = present(metric, "pods") {
        out.insert(
            "pods".into(),
            json!({"metric": identifier_from_v1(source, "selector"),
                "current": {"averageValue": quantity(source, "currentAverageValue")}}),
        );
    }
    for (key, container) in [("resource", false), ("containerResource", true)] {
        if let Some(source) = present(metric, key) {
            let mut current = Map::new();
            current.insert(
                "averageValue".into(),
                quantity(source, "currentAverageValue"),
            );
            copy(
                &mut current,
                "averageUtilization",
                source,
                "currentAverageUtilization",
            );
            let mut v2 = Map::new();
            v2.insert("name".into(), string(source, "name"));
            v2.insert("current".into(), Value::Object(current));
            if container {
                v2.insert("container".into(), string(source, "container"));
            }
            out.insert(key.into(), Value::Object(v2));
        }
    }
    if let Some(source) = present(metric, "external") {
        let mut current = Map::new();
        current.insert("value".into(), quantity(source, "currentValue"));
        copy(&mut current, "averageValue", source, "currentAverageValue");
        out.insert(
            "external".into(),
            json!({"metric": identifier_from_v1(source, "metricSelector"), "current": current}),
        );
    }
    Value::Object(out)
}

/// A v2 `MetricTarget` of type `kind`, its values still to fill in.
fn typed(kind: &str) -> Object {
    let mut target = Map::new();
    target.insert("type".into(), json!(kind));
    target
}

/// The field `name` of a Go struct decoded from JSON: an exact key first, then any key equal
/// to it ignoring case, as Go's decoder matches.
fn go_field<'a>(object: &'a Object, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The behavior annotation back as `spec.behavior`; `None` when it does not decode into the
/// internal struct or decodes to an empty one (upstream keeps only well-formed data).
fn behavior_from_internal(carried: &Value) -> Option<Value> {
    let carried = carried.as_object()?;
    let mut out = Map::new();
    for (go, key) in [("ScaleUp", "scaleUp"), ("ScaleDown", "scaleDown")] {
        match go_field(carried, go) {
            None | Some(Value::Null) => {}
            Some(Value::Object(rules)) => {
                out.insert(key.into(), rules_from_internal(rules)?);
            }
            Some(_) => return None,
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// One direction's scaling rules from their internal form; `None` when a field has the wrong
/// type (Go's decoder would fail).
fn rules_from_internal(rules: &Object) -> Option<Value> {
    let field = |name: &str| go_field(rules, name).filter(|v| !v.is_null());
    let mut out = Map::new();
    if let Some(window) = field("StabilizationWindowSeconds") {
        window.as_i64()?;
        out.insert("stabilizationWindowSeconds".into(), window.clone());
    }
    if let Some(select) = field("SelectPolicy") {
        select.as_str()?;
        out.insert("selectPolicy".into(), select.clone());
    }
    if let Some(policies) = field("Policies") {
        let policies = policies
            .as_array()?
            .iter()
            .map(|p| {
                let p = p.as_object()?;
                let get = |name: &str| go_field(p, name).filter(|v| !v.is_null());
                let kind = get("Type").map_or(Some(""), Value::as_str)?;
                let value = get("Value").map_or(Some(0), Value::as_i64)?;
                let period = get("PeriodSeconds").map_or(Some(0), Value::as_i64)?;
                Some(json!({"type": kind, "value": value, "periodSeconds": period}))
            })
            .collect::<Option<Vec<_>>>()?;
        // An empty list is omitted from v2 (`omitempty`).
        if !policies.is_empty() {
            out.insert("policies".into(), Value::Array(policies));
        }
    }
    if let Some(tolerance) = field("Tolerance") {
        if !(tolerance.is_string() || tolerance.is_number()) {
            return None;
        }
        out.insert("tolerance".into(), tolerance.clone());
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::super::convert;
    use super::*;

    const KIND: &str = "HorizontalPodAutoscaler";

    fn to(version: &str, hpa: &Value) -> Value {
        convert(KIND, hpa, version)
            .unwrap()
            .unwrap_or_else(|| hpa.clone())
    }

    fn carried(v1: &Value, key: &str) -> Value {
        serde_json::from_str(v1["metadata"]["annotations"][key].as_str().unwrap()).unwrap()
    }

    /// A v2 HPA with one metric of every kind, current metrics, conditions and behavior, in
    /// the shapes upstream keeps through a v1 round trip (the CPU utilization target last,
    /// quantities that v1 cannot leave out present).
    fn full_v2() -> Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "memory",
                    "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "rps",
                    "selector": {"matchLabels": {"a": "b"}}},
                    "target": {"type": "AverageValue", "averageValue": "10"}}},
                {"type": "Object", "object": {
                    "describedObject": {"apiVersion": "networking.k8s.io/v1",
                        "kind": "Ingress", "name": "main"},
                    "metric": {"name": "hits"},
                    "target": {"type": "Value", "value": "2k"}}},
                {"type": "External", "external": {"metric": {"name": "queue",
                    "selector": {"matchLabels": {"q": "jobs"}}},
                    "target": {"type": "AverageValue", "averageValue": "30"}}},
                {"type": "ContainerResource", "containerResource": {"name": "cpu",
                    "container": "app",
                    "target": {"type": "Utilization", "averageUtilization": 60}}},
                {"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70}}},
            ],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                 {"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 300, "tolerance": "50m",
                    "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]},
            },
        },
        "status": {
            "observedGeneration": 3, "lastScaleTime": "2025-01-01T00:00:00Z",
            "currentReplicas": 3, "desiredReplicas": 4,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageValue": "250m", "averageUtilization": 83}}},
                {"type": "Pods", "pods": {"metric": {"name": "rps"},
                    "current": {"averageValue": "12"}}},
                {"type": "Object", "object": {"metric": {"name": "hits"},
                    "current": {"value": "1500"},
                    "describedObject": {"kind": "Ingress", "name": "main"}}},
            ],
            "conditions": [
                {"type": "AbleToScale", "status": "True",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                    "reason": "ReadyForNewScale", "message": "ok"},
                {"type": "ScalingActive", "status": "True",
                    "lastTransitionTime": "2025-01-01T00:00:00Z", "reason": "ValidMetricFound"},
            ],
        }})
    }

    #[test]
    fn v2_reads_as_v1_with_the_cpu_target_and_annotations() {
        let v1 = to("autoscaling/v1", &full_v2());
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(
            v1["spec"],
            json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                "name": "web"}, "minReplicas": 2, "maxReplicas": 10,
                "targetCPUUtilizationPercentage": 70})
        );
        assert_eq!(
            v1["status"],
            json!({"observedGeneration": 3, "lastScaleTime": "2025-01-01T00:00:00Z",
                "currentReplicas": 3, "desiredReplicas": 4,
                "currentCPUUtilizationPercentage": 83})
        );
        assert_eq!(v1["metadata"]["annotations"]["team"], "a");
        // The v1 shapes of the other metrics.
        let metrics = carried(&v1, METRICS_ANNOTATION);
        assert_eq!(metrics.as_array().unwrap().len(), 5);
        assert_eq!(
            metrics[0],
            json!({"type": "Resource", "resource": {"name": "memory",
                "targetAverageValue": "500Mi"}})
        );
        assert_eq!(
            metrics[1],
            json!({"type": "Pods", "pods": {"metricName": "rps", "targetAverageValue": "10",
                "selector": {"matchLabels": {"a": "b"}}}})
        );
        assert_eq!(
            metrics[2],
            json!({"type": "Object", "object": {"metricName": "hits", "targetValue": "2k",
                "target": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                    "name": "main"}}})
        );
        assert_eq!(
            metrics[3],
            json!({"type": "External", "external": {"metricName": "queue",
                "metricSelector": {"matchLabels": {"q": "jobs"}},
                "targetAverageValue": "30"}})
        );
        assert_eq!(
            metrics[4]["containerResource"],
            json!({"name": "cpu", "container": "app", "targetAverageUtilization": 60})
        );
        let current = carried(&v1, CURRENT_METRICS_ANNOTATION);
        assert_eq!(
            current[0],
            json!({"type": "Resource", "resource": {"name": "cpu",
                "currentAverageUtilization": 83, "currentAverageValue": "250m"}})
        );
        assert_eq!(
            current[2]["object"],
            json!({"metricName": "hits", "currentValue": "1500",
                "target": {"kind": "Ingress", "name": "main"}})
        );
        // Behavior in Go's internal field names.
        let behavior = carried(&v1, BEHAVIOR_ANNOTATION);
        assert_eq!(
            behavior["ScaleUp"]["Policies"][0],
            json!({"Type": "Pods", "Value": 4, "PeriodSeconds": 15})
        );
        assert_eq!(behavior["ScaleUp"]["Tolerance"], Value::Null);
        assert_eq!(behavior["ScaleDown"]["Tolerance"], "50m");
        assert_eq!(behavior["ScaleDown"]["SelectPolicy"], Value::Null);
        assert_eq!(
            carried(&v1, CONDITIONS_ANNOTATION),
            full_v2()["status"]["conditions"]
        );
    }

    #[test]
    fn v2_survives_a_v1_round_trip() {
        let v2 = full_v2();
        let v1 = to("autoscaling/v1", &v2);
        assert_eq!(to("autoscaling/v2", &v1), v2);
    }

    #[test]
    fn v1_survives_a_v2_round_trip() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
            "status": {"currentReplicas": 1, "desiredReplicas": 1,
                "currentCPUUtilizationPercentage": 20}});
        let v2 = to("autoscaling/v2", &v1);
        assert_eq!(
            v2["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}])
        );
        assert_eq!(
            v2["status"]["currentMetrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": 20}}}])
        );
        assert!(v2["metadata"].get("annotations").is_none());
        // The current CPU percentage comes back through the current-metrics annotation,
        // which also records the (zero) raw value v1 cannot leave out.
        let back = to("autoscaling/v1", &v2);
        assert_eq!(back["spec"], v1["spec"]);
        assert_eq!(back["status"], v1["status"]);
        assert_eq!(back["metadata"]["labels"], v1["metadata"]["labels"]);
    }

    #[test]
    fn a_v1_hpa_without_a_target_gets_the_default_cpu_metric() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "metadata": {},
            "spec": {"maxReplicas": 3}});
        let v2 = to("autoscaling/v2", &v1);
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert!(v2.get("status").is_none());
        assert_eq!(
            to("autoscaling/v1", &v2)["spec"]["targetCPUUtilizationPercentage"],
            80
        );
    }

    #[test]
    fn the_first_cpu_utilization_target_is_the_v1_one() {
        // Upstream #101370: a CPU average-value target before it is not a percentage.
        let v2 = json!({"apiVersion": "autoscaling/v2", "metadata": {}, "spec": {"metrics": [
            {"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "AverageValue", "averageValue": "300m"}}},
            {"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70}}}]}});
        let v1 = to("autoscaling/v1", &v2);
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
        assert_eq!(
            carried(&v1, METRICS_ANNOTATION),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "targetAverageValue": "300m"}}])
        );
    }

    #[test]
    fn malformed_annotations_are_ignored_and_dropped() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "metadata": {"annotations": {
                METRICS_ANNOTATION: "not json", CURRENT_METRICS_ANNOTATION: "{}",
                CONDITIONS_ANNOTATION: "", BEHAVIOR_ANNOTATION: "{\"ScaleUp\": 3}"}},
            "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 40},
            "status": {"currentCPUUtilizationPercentage": 10}});
        let v2 = to("autoscaling/v2", &v1);
        assert_eq!(v2["spec"]["metrics"].as_array().unwrap().len(), 1);
        assert!(v2["spec"].get("behavior").is_none());
        assert_eq!(
            v2["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
            10
        );
        assert!(v2["status"].get("conditions").is_none());
        assert!(v2["metadata"].get("annotations").is_none());
    }

    #[test]
    fn behavior_keys_match_case_insensitively_and_empty_behavior_is_none() {
        let carried = json!({"scaleup": {"policies": [{"type": "Pods", "value": 2,
            "periodseconds": 30}]}, "ScaleDown": null});
        assert_eq!(
            behavior_from_internal(&carried),
            Some(json!({"scaleUp": {"policies": [
                {"type": "Pods", "value": 2, "periodSeconds": 30}]}}))
        );
        assert_eq!(
            behavior_from_internal(&json!({"ScaleUp": null, "ScaleDown": null})),
            None
        );
        assert_eq!(
            behavior_from_internal(&json!({"ScaleUp": {"Policies": "x"}})),
            None
        );
    }
}
