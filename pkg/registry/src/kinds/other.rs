//! Smaller kinds: Events (core/v1 and events.k8s.io/v1), Nodes, RBAC roles and bindings,
//! PersistentVolumeClaims and PersistentVolumes.

use rkube_api::field::{FieldError, Path};
use rkube_api::k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use rkube_api::k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{
    clear_status, decode, decode_or_errors, default_if_empty, dotted, enum_value, keep_status,
    map_mut,
};
use crate::Strategy;

/// Field selectors of events, by their core/v1 names (upstream's `ToSelectableFields`).
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// The core/v1 Event strategy: field selectors only.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreEventStrategy;

impl Strategy for CoreEventStrategy {
    fn selectable_fields(&self) -> &'static [&'static str] {
        EVENT_FIELDS
    }

    fn field_value(&self, object: &Value, field: &str) -> Option<String> {
        if !EVENT_FIELDS.contains(&field) {
            return None;
        }
        Some(match field {
            // `source` is the reporting component, falling back to the controller.
            "source" => {
                let component = dotted(object, "source.component");
                if component.is_empty() {
                    dotted(object, "reportingComponent")
                } else {
                    component
                }
            }
            _ => dotted(object, field),
        })
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }
}

/// Field selectors of events.k8s.io/v1 events: upstream's field label conversions for that
/// version name the renamed fields (`regarding.*`, `reportingController`); the core names are
/// not accepted there.
const EVENTS_V1_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "source",
    "type",
];

/// The events.k8s.io/v1 Event strategy: that version's selectable fields, read from its
/// objects (the registry converts the stored core Events before selecting).
#[derive(Debug, Clone, Copy, Default)]
pub struct EventsEventStrategy;

impl Strategy for EventsEventStrategy {
    fn selectable_fields(&self) -> &'static [&'static str] {
        EVENTS_V1_FIELDS
    }

    fn field_value(&self, object: &Value, field: &str) -> Option<String> {
        if !EVENTS_V1_FIELDS.contains(&field) {
            return None;
        }
        Some(match field {
            "source" => {
                let component = dotted(object, "deprecatedSource.component");
                if component.is_empty() {
                    dotted(object, "reportingController")
                } else {
                    component
                }
            }
            _ => dotted(object, field),
        })
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }
}

/// The Node strategy: kubelets create nodes with their status, so create keeps it; updates
/// of the main resource keep the old one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeStrategy;

const NODE_FIELDS: &[&str] = &["spec.unschedulable"];

impl Strategy for NodeStrategy {
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn has_status_subresource(&self) -> bool {
        true
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        NODE_FIELDS
    }

    fn field_value(&self, object: &Value, field: &str) -> Option<String> {
        (field == "spec.unschedulable").then(|| {
            (object.pointer("/spec/unschedulable") == Some(&Value::Bool(true))).to_string()
        })
    }
}

/// Roles (`NAMESPACED`) and ClusterRoles: `ValidatePolicyRule` on every rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyStrategy<const NAMESPACED: bool>;

/// Roles.
pub type RoleStrategy = PolicyStrategy<true>;
/// ClusterRoles.
pub type ClusterRoleStrategy = PolicyStrategy<false>;

#[derive(Deserialize)]
struct Rules {
    rules: Option<Vec<PolicyRule>>,
}

impl<const NAMESPACED: bool> Strategy for PolicyStrategy<NAMESPACED> {
    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let rules = match decode::<Rules>(object) {
            Ok(r) => r.rules.unwrap_or_default(),
            Err(e) => return vec![e],
        };
        let mut errs = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let p = Path::new("rules").index(i);
            if rule.verbs.is_empty() {
                errs.push(FieldError::required(
                    &p.child("verbs"),
                    "verbs must contain at least one value",
                ));
            }
            let len = |v: &Option<Vec<String>>| v.as_ref().map_or(0, Vec::len);
            if let Some(urls) = rule.non_resource_urls.as_ref().filter(|u| !u.is_empty()) {
                let up = p.child("nonResourceURLs");
                if NAMESPACED {
                    errs.push(FieldError::invalid(
                        &up,
                        json!(urls),
                        "namespaced rules cannot apply to non-resource URLs",
                    ));
                }
                if len(&rule.api_groups) + len(&rule.resources) + len(&rule.resource_names) > 0 {
                    errs.push(FieldError::invalid(
                        &up,
                        json!(urls),
                        "rules cannot apply to both regular resources and non-resource URLs",
                    ));
                }
                continue;
            }
            if len(&rule.api_groups) == 0 {
                errs.push(FieldError::required(
                    &p.child("apiGroups"),
                    "resource rules must supply at least one api group",
                ));
            }
            if len(&rule.resources) == 0 {
                errs.push(FieldError::required(
                    &p.child("resources"),
                    "resource rules must supply at least one resource",
                ));
            }
        }
        errs
    }
}

/// RoleBindings (`NAMESPACED`) and ClusterRoleBindings.
#[derive(Debug, Clone, Copy, Default)]
pub struct BindingStrategy<const NAMESPACED: bool>;

/// RoleBindings.
pub type RoleBindingStrategy = BindingStrategy<true>;
/// ClusterRoleBindings.
pub type ClusterRoleBindingStrategy = BindingStrategy<false>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Binding {
    role_ref: RoleRef,
    subjects: Option<Vec<Subject>>,
}

impl<const NAMESPACED: bool> Strategy for BindingStrategy<NAMESPACED> {
    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let binding = match decode::<Binding>(object) {
            Ok(b) => b,
            Err(e) => return vec![e],
        };
        let mut errs = Vec::new();
        let rr = Path::new("roleRef");
        let r = &binding.role_ref;
        if r.api_group != "rbac.authorization.k8s.io" {
            errs.push(FieldError::not_supported(
                &rr.child("apiGroup"),
                r.api_group.as_str(),
                &["rbac.authorization.k8s.io"],
            ));
        }
        let kinds: &[&str] = if NAMESPACED {
            &["Role", "ClusterRole"]
        } else {
            &["ClusterRole"]
        };
        if !kinds.contains(&r.kind.as_str()) {
            errs.push(FieldError::not_supported(
                &rr.child("kind"),
                r.kind.as_str(),
                kinds,
            ));
        }
        if r.name.is_empty() {
            errs.push(FieldError::required(&rr.child("name"), ""));
        }
        for (i, s) in binding.subjects.iter().flatten().enumerate() {
            let p = Path::new("subjects").index(i);
            if s.name.is_empty() {
                errs.push(FieldError::required(&p.child("name"), ""));
            }
            errs.extend(enum_value(
                &s.kind,
                &["ServiceAccount", "User", "Group"],
                &p.child("kind"),
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let (n, o) = (new.get("roleRef"), old.get("roleRef"));
        if n != o {
            errs.push(FieldError::invalid(
                &Path::new("roleRef"),
                n.cloned().unwrap_or(Value::Null),
                "cannot change roleRef",
            ));
        }
        errs
    }
}

/// PersistentVolumeClaims: volumeMode default, `Pending` on create, spec fixed after creation
/// except requests (growth) and the volume attributes class (and binding to a volume).
#[derive(Debug, Clone, Copy, Default)]
pub struct PvcStrategy;

impl Strategy for PvcStrategy {
    fn default(&self, object: &mut Value) {
        if let Some(spec) = map_mut(object, "spec") {
            default_if_empty(spec, "volumeMode", "Filesystem");
        }
    }

    fn prepare_for_create(&self, object: &mut Value) {
        clear_status(object);
        if let Some(map) = object.as_object_mut() {
            map.insert("status".into(), json!({"phase": "Pending"}));
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let pvc = match decode_or_errors::<PersistentVolumeClaim>(object) {
            Ok(p) => p,
            Err(errs) => return errs,
        };
        let spec = pvc.spec.unwrap_or_default();
        let path = Path::new("spec");
        let mut errs = Vec::new();
        if spec.access_modes.as_ref().is_none_or(Vec::is_empty) {
            errs.push(FieldError::required(
                &path.child("accessModes"),
                "at least 1 access mode is required",
            ));
        }
        let has_storage = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .is_some_and(|r| r.contains_key("storage"));
        if !has_storage {
            errs.push(FieldError::required(
                &path.child("resources").key("storage"),
                "",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let binding = old
            .pointer("/spec/volumeName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        let fixed = |v: &Value| {
            let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
            if let Some(m) = spec.as_object_mut() {
                m.remove("volumeAttributesClassName");
                if binding {
                    m.remove("volumeName");
                }
                if let Some(r) = m.get_mut("resources").and_then(Value::as_object_mut) {
                    r.remove("requests");
                }
            }
            spec
        };
        if fixed(new) != fixed(old) {
            errs.push(FieldError::forbidden(
                &Path::new("spec"),
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
        let storage = |v: &Value| {
            v.pointer("/spec/resources/requests/storage")
                .and_then(Value::as_str)
                .and_then(super::pod::parse_quantity)
        };
        if let (Some(n), Some(o)) = (storage(new), storage(old))
            && n < o
        {
            errs.push(FieldError::forbidden(
                &Path::new("spec")
                    .child("resources")
                    .child("requests")
                    .child("storage"),
                "field can not be less than previous value",
            ));
        }
        errs
    }

    fn has_status_subresource(&self) -> bool {
        true
    }
}

/// PersistentVolumes: reclaim policy and volume mode defaults, `Pending` on create.
#[derive(Debug, Clone, Copy, Default)]
pub struct PvStrategy;

impl Strategy for PvStrategy {
    fn default(&self, object: &mut Value) {
        if let Some(spec) = map_mut(object, "spec") {
            default_if_empty(spec, "persistentVolumeReclaimPolicy", "Retain");
            default_if_empty(spec, "volumeMode", "Filesystem");
        }
    }

    fn prepare_for_create(&self, object: &mut Value) {
        clear_status(object);
        if let Some(map) = object.as_object_mut() {
            map.insert("status".into(), json!({"phase": "Pending"}));
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        decode_or_errors::<PersistentVolume>(object)
            .err()
            .unwrap_or_default()
    }

    fn has_status_subresource(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn event_field_selectors() {
        let core = json!({"involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Started",
            "source": {"component": "kubelet"}, "type": "Normal"});
        let s = CoreEventStrategy;
        assert_eq!(
            s.field_value(&core, "involvedObject.kind").as_deref(),
            Some("Pod")
        );
        assert_eq!(s.field_value(&core, "source").as_deref(), Some("kubelet"));
        assert_eq!(
            s.field_value(&core, "involvedObject.uid").as_deref(),
            Some("")
        );
        assert_eq!(s.field_value(&core, "note"), None);
        let ev = json!({"regarding": {"name": "p"}, "reportingController": "sched"});
        let s = EventsEventStrategy;
        assert_eq!(s.field_value(&ev, "regarding.name").as_deref(), Some("p"));
        assert_eq!(s.field_value(&ev, "source").as_deref(), Some("sched"));
        assert_eq!(
            s.field_value(&ev, "reportingController").as_deref(),
            Some("sched")
        );
        // The core spellings are not field labels of events.k8s.io/v1.
        assert_eq!(s.field_value(&ev, "involvedObject.name"), None);
        assert_eq!(s.field_value(&ev, "reportingComponent"), None);
    }

    #[test]
    fn node_keeps_status_and_selects_unschedulable() {
        let s = NodeStrategy;
        let mut n = json!({"spec": {"unschedulable": true}, "status": {"x": 1}});
        s.prepare_for_create(&mut n);
        assert_eq!(n["status"]["x"], 1);
        assert_eq!(
            s.field_value(&n, "spec.unschedulable").as_deref(),
            Some("true")
        );
        assert_eq!(
            s.field_value(&json!({}), "spec.unschedulable").as_deref(),
            Some("false")
        );
        let mut upd = json!({"status": {"x": 2}});
        s.prepare_for_update(&mut upd, &n);
        assert_eq!(upd["status"]["x"], 1);
    }

    #[test]
    fn rbac_rules() {
        let role = json!({"rules": [{"verbs": [], "resources": ["pods"]},
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
        assert_eq!(
            msgs(<RoleStrategy as Default>::default().validate(&role)),
            [
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                r#"rules[1].nonResourceURLs: Invalid value: ["/healthz"]: namespaced rules cannot apply to non-resource URLs"#,
            ]
        );
        let binding = json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role", "name": "r"}, "subjects": [{"kind": "User", "name": "u"}]});
        let s = <RoleBindingStrategy as Default>::default();
        assert!(s.validate(&binding).is_empty());
        assert_eq!(
            msgs(<ClusterRoleBindingStrategy as Default>::default().validate(&binding)),
            [r#"roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole""#]
        );
        let mut changed = binding.clone();
        changed["roleRef"]["name"] = "other".into();
        assert_eq!(
            msgs(s.validate_update(&changed, &binding)),
            [
                r#"roleRef: Invalid value: {"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"other"}: cannot change roleRef"#
            ]
        );
    }

    #[test]
    fn pvc_rules() {
        let s = PvcStrategy;
        let mut pvc = json!({"spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
        s.default(&mut pvc);
        s.prepare_for_create(&mut pvc);
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pvc["status"], json!({"phase": "Pending"}));
        assert!(s.validate(&pvc).is_empty());
        assert_eq!(
            msgs(s.validate(&json!({"spec": {}}))),
            [
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value",
            ]
        );
        let mut grown = pvc.clone();
        grown["spec"]["resources"]["requests"]["storage"] = "2Gi".into();
        grown["spec"]["volumeName"] = "pv-1".into();
        assert!(s.validate_update(&grown, &pvc).is_empty());
        let mut shrunk = grown.clone();
        shrunk["spec"]["resources"]["requests"]["storage"] = "1Gi".into();
        assert_eq!(
            msgs(s.validate_update(&shrunk, &grown)),
            [
                "spec.resources.requests.storage: Forbidden: field can not be less than previous value"
            ]
        );
        let mut other = grown.clone();
        other["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(
            msgs(s.validate_update(&other, &grown)),
            [
                "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
            ]
        );
    }
}
