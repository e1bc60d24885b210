//! RBAC's data for the authorizer: the bootstrap policy (`manifests/rbac/`, embedded)
//! reconciled into the registry at start, and the in-memory [`RbacIndex`] kept current from
//! the registry's watches of the four RBAC resources.

use std::collections::BTreeMap;
use std::sync::Arc;

use rkube_api::resources::{self, Resource};
use rkube_api::status::ApiError;
use rkube_auth::authz::PolicyRule;
use rkube_auth::authz::rbac::{Kind, covers};
use rkube_registry::Registry;
use rkube_registry::rest::{CreateOptions, DeleteOptions, GetOptions, Scope, UpdateOptions};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::feed;

pub use rkube_auth::authz::RbacIndex;

/// The bootstrap policy as shipped.
const BOOTSTRAP_POLICY: &str = include_str!("../../../manifests/rbac/bootstrap-policy.yaml");
/// The annotation that stops reconciliation when `"false"`.
const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

/// What can go wrong with the bootstrap policy.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// The embedded policy does not parse (a build defect, caught by the tests).
    #[error("the embedded bootstrap RBAC policy is malformed")]
    Policy(#[source] serde_yaml_ng::Error),
    /// Reading or writing an RBAC object failed.
    #[error("reconciling the bootstrap RBAC policy: {0}")]
    Api(Box<ApiError>),
    /// An RBAC resource is not served (a build defect).
    #[error("{0} is not served")]
    NotServed(&'static str),
}

impl From<ApiError> for RbacError {
    fn from(e: ApiError) -> Self {
        RbacError::Api(Box::new(e))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyFile {
    cluster_roles: Vec<RoleEntry>,
    cluster_role_bindings: Vec<BindingEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleEntry {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<PolicyRule>,
    /// The label whose `"true"` selects the roles this one aggregates.
    aggregate_from: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BindingEntry {
    name: String,
    role: Option<String>,
    subjects: Vec<Value>,
}

fn metadata(name: &str, labels: &BTreeMap<String, String>) -> Value {
    let mut labels = labels.clone();
    labels.insert("kubernetes.io/bootstrapping".into(), "rbac-defaults".into());
    json!({"name": name, "labels": labels, "annotations": {AUTOUPDATE: "true"}})
}

/// The bootstrap ClusterRoles and ClusterRoleBindings, as objects.
pub fn bootstrap_policy() -> Result<Vec<(Kind, Value)>, RbacError> {
    let file: PolicyFile = serde_yaml_ng::from_str(BOOTSTRAP_POLICY).map_err(RbacError::Policy)?;
    let mut objects = Vec::new();
    for role in file.cluster_roles {
        let mut object = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": metadata(&role.name, &role.labels),
            "rules": role.rules,
        });
        if let Some(label) = role.aggregate_from {
            object["aggregationRule"] =
                json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
        }
        objects.push((Kind::ClusterRole, object));
    }
    for binding in file.cluster_role_bindings {
        let role = binding.role.as_deref().unwrap_or(&binding.name);
        let subjects: Vec<Value> = binding
            .subjects
            .into_iter()
            .map(|mut s| {
                if s.get("kind").and_then(Value::as_str) != Some("ServiceAccount") {
                    s["apiGroup"] = "rbac.authorization.k8s.io".into();
                }
                s
            })
            .collect();
        objects.push((
            Kind::ClusterRoleBinding,
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": metadata(&binding.name, &BTreeMap::new()),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": subjects,
            }),
        ));
    }
    Ok(objects)
}

fn rest(registry: &Registry, kind: Kind) -> Result<Arc<dyn rkube_registry::Rest>, RbacError> {
    resources::lookup("rbac.authorization.k8s.io", "v1", kind.plural())
        .and_then(|resource: &'static Resource| registry.rest(resource, None))
        .ok_or(RbacError::NotServed(kind.plural()))
}

/// Adds to `existing` the keys of `expected` it lacks (labels, annotations).
fn merge_map(existing: &mut Value, expected: &Value) {
    if let (Some(have), Some(want)) = (existing.as_object_mut(), expected.as_object()) {
        for (k, v) in want {
            have.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// The reconciled form of `existing` against `expected`, `None` when nothing changes
/// (upstream's `computeReconciledRole` / `computeReconciledRoleBinding` without removals).
fn reconciled(kind: Kind, existing: &Value, expected: &Value) -> Option<Value> {
    let mut object = existing.clone();
    for field in ["labels", "annotations"] {
        let want = &expected["metadata"][field];
        if object["metadata"].get(field).is_none_or(Value::is_null) {
            object["metadata"][field] = json!({});
        }
        merge_map(&mut object["metadata"][field], want);
    }
    let rules = |o: &Value| -> Vec<PolicyRule> {
        serde_json::from_value(o.get("rules").cloned().unwrap_or(Value::Null)).unwrap_or_default()
    };
    match kind {
        Kind::ClusterRole => {
            let mut have = rules(existing);
            have.extend(covers(&rules(existing), &rules(expected)));
            object["rules"] = serde_json::to_value(have).unwrap_or_default();
            if let Some(want) = expected.get("aggregationRule") {
                let selectors = object["aggregationRule"]["clusterRoleSelectors"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let mut all = selectors.clone();
                for s in want["clusterRoleSelectors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if !all.contains(s) {
                        all.push(s.clone());
                    }
                }
                object["aggregationRule"] = json!({"clusterRoleSelectors": all});
            }
        }
        _ => {
            let mut subjects = existing["subjects"].as_array().cloned().unwrap_or_default();
            for s in expected["subjects"].as_array().into_iter().flatten() {
                let same = |t: &Value| {
                    ["kind", "name", "namespace"]
                        .iter()
                        .all(|f| t.get(f) == s.get(f))
                };
                if !subjects.iter().any(same) {
                    subjects.push(s.clone());
                }
            }
            object["subjects"] = Value::Array(subjects);
        }
    }
    (object != *existing).then_some(object)
}

/// Creates the bootstrap policy's missing objects and adds back what is missing from the
/// others, unless they opted out with `autoupdate: "false"`. A binding whose role changed is
/// recreated (a roleRef cannot be updated).
pub async fn reconcile(registry: &Registry) -> Result<(), RbacError> {
    let cluster = Scope::default();
    for (kind, expected) in bootstrap_policy()? {
        let rest = rest(registry, kind)?;
        let name = rkube_api::meta::name(&expected)
            .unwrap_or_default()
            .to_owned();
        let existing = match rest.get(&cluster, &name, &GetOptions::default()).await {
            Ok(object) => object.into_value(),
            Err(e) if e.code() == 404 => {
                rest.create(&cluster, expected, &CreateOptions::default())
                    .await?;
                tracing::debug!(%name, kind = kind.plural(), "created bootstrap RBAC object");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if existing["metadata"]["annotations"][AUTOUPDATE] == "false" {
            continue;
        }
        if kind == Kind::ClusterRoleBinding && existing["roleRef"] != expected["roleRef"] {
            rest.delete(&cluster, &name, &DeleteOptions::default())
                .await?;
            rest.create(&cluster, expected, &CreateOptions::default())
                .await?;
            continue;
        }
        if let Some(object) = reconciled(kind, &existing, &expected) {
            rest.update(&cluster, &name, object, &UpdateOptions::default())
                .await?;
            tracing::info!(%name, kind = kind.plural(), "reconciled bootstrap RBAC object");
        }
    }
    Ok(())
}

/// The tasks keeping an [`RbacIndex`] current; they stop when this is dropped.
pub use crate::feed::Feed;

/// The index's objects of one kind, as the feed sees them.
struct KindIndex {
    index: Arc<RbacIndex>,
    kind: Kind,
}

impl feed::Index for KindIndex {
    fn replace(&self, objects: &[Value]) {
        self.index.replace(self.kind, objects);
    }

    fn upsert(&self, object: &Value) {
        self.index.upsert(self.kind, object);
    }

    fn remove(&self, object: &Value) {
        self.index.remove(self.kind, object);
    }
}

/// Starts feeding `index` from the registry's watches; returns once every kind has been
/// listed, so that authorization is complete from the first request on.
pub async fn feed(registry: Arc<Registry>, index: Arc<RbacIndex>) -> Result<Feed, RbacError> {
    let mut sources = Vec::new();
    for kind in Kind::ALL {
        sources.push(feed::Source {
            what: kind.plural(),
            rest: rest(&registry, kind)?,
            index: Arc::new(KindIndex {
                index: index.clone(),
                kind,
            }),
        });
    }
    Ok(feed::start(sources).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bootstrap_policy_parses_and_binds_existing_roles() {
        let policy = bootstrap_policy().unwrap();
        let roles: Vec<&str> = policy
            .iter()
            .filter(|(k, _)| *k == Kind::ClusterRole)
            .filter_map(|(_, o)| rkube_api::meta::name(o))
            .collect();
        for (kind, object) in &policy {
            if *kind == Kind::ClusterRoleBinding {
                let role = object["roleRef"]["name"].as_str().unwrap();
                assert!(roles.contains(&role), "{role}");
            }
        }
        assert!(roles.contains(&"cluster-admin") && roles.contains(&"view"));
    }

    #[test]
    fn reconciliation_adds_back_what_is_missing_and_keeps_the_rest() {
        let expected = json!({"metadata": {"labels": {"a": "1"}, "annotations": {AUTOUPDATE: "true"}},
            "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]});
        let existing = json!({"metadata": {"name": "r", "labels": {"b": "2"}},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                      {"verbs": ["delete"], "apiGroups": [""], "resources": ["secrets"]}]});
        let merged = reconciled(Kind::ClusterRole, &existing, &expected).unwrap();
        assert_eq!(merged["metadata"]["labels"], json!({"a": "1", "b": "2"}));
        assert_eq!(merged["rules"].as_array().unwrap().len(), 3);
        assert_eq!(merged["rules"][2]["verbs"], json!(["list"]));
        assert_eq!(reconciled(Kind::ClusterRole, &merged, &expected), None);

        let binding = json!({"metadata": {}, "subjects": [{"kind": "Group", "name": "g"}]});
        let have = json!({"metadata": {"labels": {}, "annotations": {}}, "subjects": [{"kind": "User", "name": "u"}]});
        let merged = reconciled(Kind::ClusterRoleBinding, &have, &binding).unwrap();
        assert_eq!(merged["subjects"].as_array().unwrap().len(), 2);
    }
}
