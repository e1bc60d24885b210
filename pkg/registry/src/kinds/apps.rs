//! Workloads with a selector and a pod template: Deployments, ReplicaSets, StatefulSets,
//! DaemonSets (`pkg/registry/apps/*`, `pkg/apis/apps/v1/defaults.go`,
//! `pkg/apis/apps/validation`) and ReplicationControllers. One generic strategy over a small
//! per-kind description, since they share the selector/template/replicas rules.

use std::marker::PhantomData;

use rkube_api::field::{FieldError, Path};
use rkube_api::k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use rkube_api::k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController};
use rkube_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as MetaSelector;
use rkube_api::selector::{LabelSelector, validate_label_selector};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::common::{
    child_map, clear_status, decode, default_field, default_if_empty, ensure_map, immutable,
    keep_status, map_mut, non_negative,
};
use super::pod::{default_pod_spec, restart_policy_error, validate_pod_spec};
use crate::Strategy;

/// What one workload kind adds to the shared rules.
pub trait WorkloadKind: Send + Sync + 'static {
    /// The word upstream's "empty selector is invalid for ..." uses.
    const WORD: &'static str;
    /// Whether `spec.selector` is required (apps/v1) or defaulted from the template (v1 RCs).
    const SELECTOR_REQUIRED: bool = true;
    /// Whether `status.replicas` is a selectable field.
    const REPLICAS_FIELD: bool = false;
    /// The kind's own defaults on `spec` (the template's pod spec is defaulted for all).
    fn defaults(spec: &mut Map<String, Value>);
    /// Decodes the whole object, for field errors on anything that does not fit its type.
    fn check(object: &Value) -> Result<(), FieldError>;
    /// Update rules beyond the selector's immutability.
    fn update_rules(_new: &Value, _old: &Value) -> Vec<FieldError> {
        Vec::new()
    }
    /// Whether an update bumps `metadata.generation`.
    fn generation_changes(old: &Value, new: &Value) -> bool {
        old.get("spec") != new.get("spec")
    }
}

/// The strategy of a workload kind `K`.
pub struct Workload<K>(PhantomData<K>);

impl<K> Default for Workload<K> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

/// Deployments.
pub type DeploymentStrategy = Workload<DeploymentKind>;
/// ReplicaSets.
pub type ReplicaSetStrategy = Workload<ReplicaSetKind>;
/// StatefulSets.
pub type StatefulSetStrategy = Workload<StatefulSetKind>;
/// DaemonSets.
pub type DaemonSetStrategy = Workload<DaemonSetKind>;
/// ReplicationControllers.
pub type ReplicationControllerStrategy = Workload<ReplicationControllerKind>;

/// The fields every workload shares, decoded on their own so each rule sees typed values.
#[derive(Deserialize, Default)]
struct Shape {
    #[serde(default)]
    spec: Option<ShapeSpec>,
}

#[derive(Deserialize, Default)]
struct ShapeSpec {
    replicas: Option<i32>,
    selector: Option<Value>,
    template: Option<PodTemplateSpec>,
}

fn template_spec(spec: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    child_map(spec, "template").and_then(|t| child_map(t, "spec"))
}

impl<K: WorkloadKind> Strategy for Workload<K> {
    fn default(&self, object: &mut Value) {
        let Some(spec) = map_mut(object, "spec") else {
            return;
        };
        K::defaults(spec);
        if let Some(pod) = template_spec(spec) {
            default_pod_spec(pod);
        }
    }

    fn prepare_for_create(&self, object: &mut Value) {
        clear_status(object);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        if let Err(e) = K::check(object) {
            return vec![e];
        }
        let spec = decode::<Shape>(object)
            .ok()
            .and_then(|s| s.spec)
            .unwrap_or_default();
        let path = Path::new("spec");
        let mut errs = Vec::new();
        if let Some(r) = spec.replicas {
            errs.extend(non_negative(r.into(), &path.child("replicas")));
        }
        let sel_path = path.child("selector");
        let selector = match &spec.selector {
            // v1 RCs carry a plain label map.
            Some(Value::Object(m)) if !K::SELECTOR_REQUIRED => {
                let labels = m
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect();
                Some(MetaSelector {
                    match_labels: Some(labels),
                    match_expressions: None,
                })
            }
            Some(v) => serde_json::from_value::<MetaSelector>(v.clone()).ok(),
            None => None,
        };
        match &selector {
            None if K::SELECTOR_REQUIRED => errs.push(FieldError::required(&sel_path, "")),
            None => {}
            Some(s) => {
                if K::SELECTOR_REQUIRED {
                    errs.extend(validate_label_selector(s, &sel_path));
                }
                let n = s.match_labels.as_ref().map_or(0, |m| m.len())
                    + s.match_expressions.as_ref().map_or(0, Vec::len);
                if n == 0 {
                    errs.push(FieldError::invalid(
                        &sel_path,
                        spec.selector.clone().unwrap_or(Value::Null),
                        format!("empty selector is invalid for {}", K::WORD),
                    ));
                }
            }
        }
        let tpl = path.child("template");
        let Some(template) = &spec.template else {
            errs.push(FieldError::required(&tpl, ""));
            return errs;
        };
        let labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        if let Some(Ok(sel)) = selector
            .as_ref()
            .map(|s| LabelSelector::from_label_selector(Some(s)))
            && !sel.is_empty()
            && !sel.matches(&labels)
        {
            errs.push(FieldError::invalid(
                &tpl.child("metadata").child("labels"),
                json!(labels),
                "`selector` does not match template `labels`",
            ));
        }
        let pod_spec = template.spec.clone().unwrap_or_default();
        errs.extend(validate_pod_spec(&pod_spec, &tpl.child("spec")));
        errs.extend(restart_policy_error(
            &pod_spec,
            &["Always"],
            &tpl.child("spec").child("restartPolicy"),
        ));
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        if K::SELECTOR_REQUIRED {
            let (n, o) = (new.pointer("/spec/selector"), old.pointer("/spec/selector"));
            errs.extend(immutable(&n, &o, &Path::new("spec").child("selector")));
        }
        errs.extend(K::update_rules(new, old));
        errs
    }

    fn has_status_subresource(&self) -> bool {
        true
    }

    fn generation_changes(&self, old: &Value, new: &Value) -> bool {
        K::generation_changes(old, new)
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        if K::REPLICAS_FIELD {
            &["status.replicas"]
        } else {
            &[]
        }
    }

    fn field_value(&self, object: &Value, field: &str) -> Option<String> {
        (K::REPLICAS_FIELD && field == "status.replicas").then(|| {
            let n = object.pointer("/status/replicas").and_then(Value::as_i64);
            n.unwrap_or(0).to_string()
        })
    }
}

/// `spec.replicas` defaults to 1 in every workload that has it.
fn default_replicas(spec: &mut Map<String, Value>) {
    default_field(spec, "replicas", 1);
}

/// Sets `spec[key].type` (default `ty`) and, when it is `RollingUpdate`, fills `rollingUpdate`.
fn default_update_strategy(spec: &mut Map<String, Value>, key: &str, rolling: &[(&str, Value)]) {
    let Some(strategy) = ensure_map(spec, key) else {
        return;
    };
    default_if_empty(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
        && let Some(ru) = ensure_map(strategy, "rollingUpdate")
    {
        for (k, v) in rolling {
            default_field(ru, k, v.clone());
        }
    }
}

/// The Deployment kind.
pub struct DeploymentKind;

impl WorkloadKind for DeploymentKind {
    const WORD: &'static str = "deployment";

    fn defaults(spec: &mut Map<String, Value>) {
        default_replicas(spec);
        default_update_strategy(
            spec,
            "strategy",
            &[("maxUnavailable", json!("25%")), ("maxSurge", json!("25%"))],
        );
        default_field(spec, "revisionHistoryLimit", 10);
        default_field(spec, "progressDeadlineSeconds", 600);
    }

    fn check(object: &Value) -> Result<(), FieldError> {
        decode::<Deployment>(object).map(drop)
    }

    /// Upstream also bumps the generation on annotation changes (rollbacks are requested
    /// through one).
    fn generation_changes(old: &Value, new: &Value) -> bool {
        old.get("spec") != new.get("spec")
            || old.pointer("/metadata/annotations") != new.pointer("/metadata/annotations")
    }
}

/// The ReplicaSet kind.
pub struct ReplicaSetKind;

impl WorkloadKind for ReplicaSetKind {
    // Upstream's ReplicaSet validation shares the Deployment wording.
    const WORD: &'static str = "deployment";
    const REPLICAS_FIELD: bool = true;

    fn defaults(spec: &mut Map<String, Value>) {
        default_replicas(spec);
    }

    fn check(object: &Value) -> Result<(), FieldError> {
        decode::<ReplicaSet>(object).map(drop)
    }
}

/// The StatefulSet kind.
pub struct StatefulSetKind;

/// The spec fields a StatefulSet update may change.
const STATEFULSET_UPDATABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

impl WorkloadKind for StatefulSetKind {
    const WORD: &'static str = "statefulset";

    fn defaults(spec: &mut Map<String, Value>) {
        default_if_empty(spec, "podManagementPolicy", "OrderedReady");
        default_update_strategy(spec, "updateStrategy", &[("partition", json!(0))]);
        default_replicas(spec);
        default_field(spec, "revisionHistoryLimit", 10);
        if let Some(policy) = ensure_map(spec, "persistentVolumeClaimRetentionPolicy") {
            default_if_empty(policy, "whenDeleted", "Retain");
            default_if_empty(policy, "whenScaled", "Retain");
        }
    }

    fn check(object: &Value) -> Result<(), FieldError> {
        decode::<StatefulSet>(object).map(drop)
    }

    fn update_rules(new: &Value, old: &Value) -> Vec<FieldError> {
        let rest = |v: &Value| {
            let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
            if let Some(m) = spec.as_object_mut() {
                m.retain(|k, _| !STATEFULSET_UPDATABLE.contains(&k.as_str()));
            }
            spec
        };
        if rest(new) == rest(old) {
            return Vec::new();
        }
        vec![FieldError::forbidden(
            &Path::new("spec"),
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        )]
    }
}

/// The DaemonSet kind.
pub struct DaemonSetKind;

impl WorkloadKind for DaemonSetKind {
    const WORD: &'static str = "daemonset";

    fn defaults(spec: &mut Map<String, Value>) {
        default_update_strategy(
            spec,
            "updateStrategy",
            &[("maxUnavailable", json!(1)), ("maxSurge", json!(0))],
        );
        default_field(spec, "revisionHistoryLimit", 10);
    }

    fn check(object: &Value) -> Result<(), FieldError> {
        decode::<DaemonSet>(object).map(drop)
    }
}

/// The ReplicationController kind (core/v1): its selector is a label map that defaults to
/// the template's labels, and may change.
pub struct ReplicationControllerKind;

impl WorkloadKind for ReplicationControllerKind {
    const WORD: &'static str = "replicationcontroller";
    const SELECTOR_REQUIRED: bool = false;
    const REPLICAS_FIELD: bool = true;

    fn defaults(spec: &mut Map<String, Value>) {
        default_replicas(spec);
        let labels = spec
            .get("template")
            .and_then(|t| t.pointer("/metadata/labels"))
            .cloned();
        if let Some(labels) = labels {
            let empty = spec
                .get("selector")
                .is_none_or(|s| s.as_object().is_none_or(Map::is_empty));
            if empty {
                spec.insert("selector".into(), labels);
            }
        }
    }

    fn check(object: &Value) -> Result<(), FieldError> {
        decode::<ReplicationController>(object).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.to_string()).collect()
    }

    fn workload(spec: Value) -> Value {
        json!({"metadata": {"name": "w"}, "spec": spec})
    }

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "a"}},
               "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}})
    }

    #[test]
    fn deployment_defaults() {
        let mut d = workload(json!({"selector": {"matchLabels": {"app": "a"}},
            "template": template()}));
        <DeploymentStrategy as Default>::default().default(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate",
                   "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        // Template specs don't get the pod-only defaults.
        assert_eq!(
            d["spec"]["template"]["spec"].get("enableServiceLinks"),
            None
        );
        assert!(
            <DeploymentStrategy as Default>::default()
                .validate(&d)
                .is_empty()
        );
    }

    #[test]
    fn statefulset_and_daemonset_defaults() {
        let mut s = workload(json!({"template": template()}));
        <StatefulSetStrategy as Default>::default().default(&mut s);
        assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            s["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            s["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        let mut d = workload(json!({"template": template()}));
        <DaemonSetStrategy as Default>::default().default(&mut d);
        assert_eq!(
            d["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate",
                   "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(d["spec"].get("replicas"), None);
    }

    #[test]
    fn workload_validation_messages() {
        let s = <DeploymentStrategy as Default>::default();
        let mut d = workload(json!({"replicas": -1,
            "selector": {"matchLabels": {"app": "b"}}, "template": template()}));
        s.default(&mut d);
        assert_eq!(
            msgs(s.validate(&d)),
            [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                r#"spec.template.metadata.labels: Invalid value: {"app":"a"}: `selector` does not match template `labels`"#,
            ]
        );
        let mut d = workload(json!({"template": template()}));
        s.default(&mut d);
        assert_eq!(msgs(s.validate(&d)), ["spec.selector: Required value"]);
        let mut d = workload(json!({"selector": {}, "template": template()}));
        s.default(&mut d);
        assert_eq!(
            msgs(s.validate(&d)),
            ["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]
        );
        let mut d = workload(json!({"selector": {"matchLabels": {"app": "a"}},
            "template": template()}));
        d["spec"]["template"]["spec"]["restartPolicy"] = "Never".into();
        s.default(&mut d);
        assert_eq!(
            msgs(s.validate(&d)),
            [
                r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#
            ]
        );
        let bad = workload(json!({"replicas": "x"}));
        assert_eq!(
            msgs(s.validate(&bad)),
            [r#"spec.replicas: Invalid value: "x": invalid type: string "x", expected i32"#]
        );
    }

    #[test]
    fn selector_is_immutable() {
        let s = <ReplicaSetStrategy as Default>::default();
        let mut old = workload(json!({"selector": {"matchLabels": {"app": "a"}},
            "template": template()}));
        s.default(&mut old);
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "a", "x": "y"}});
        new["spec"]["template"]["metadata"]["labels"]["x"] = "y".into();
        assert_eq!(
            msgs(s.validate_update(&new, &old)),
            [
                r#"spec.selector: Invalid value: {"matchLabels":{"app":"a","x":"y"}}: field is immutable"#
            ]
        );
        assert_eq!(
            s.field_value(&json!({"status": {"replicas": 3}}), "status.replicas")
                .as_deref(),
            Some("3")
        );
        assert_eq!(
            s.field_value(&json!({}), "status.replicas").as_deref(),
            Some("0")
        );
    }

    #[test]
    fn statefulset_spec_is_mostly_immutable() {
        let s = <StatefulSetStrategy as Default>::default();
        let mut old = workload(json!({"selector": {"matchLabels": {"app": "a"}},
            "serviceName": "x", "template": template()}));
        s.default(&mut old);
        let mut new = old.clone();
        new["spec"]["replicas"] = 3.into();
        assert!(s.validate_update(&new, &old).is_empty());
        new["spec"]["serviceName"] = "y".into();
        assert_eq!(
            msgs(s.validate_update(&new, &old)),
            [
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
            ]
        );
    }

    #[test]
    fn replication_controller_selector_defaults_to_labels() {
        let s = <ReplicationControllerStrategy as Default>::default();
        let mut rc = workload(json!({"template": template()}));
        s.default(&mut rc);
        assert_eq!(rc["spec"]["selector"], json!({"app": "a"}));
        assert!(s.validate(&rc).is_empty());
    }

    #[test]
    fn deployment_generation_follows_annotations() {
        let s = <DeploymentStrategy as Default>::default();
        let old = json!({"spec": {}, "metadata": {}});
        let new = json!({"spec": {}, "metadata": {"annotations": {"a": "b"}}});
        assert!(s.generation_changes(&old, &new));
        assert!(!<ReplicaSetStrategy as Default>::default().generation_changes(&old, &new));
    }
}
