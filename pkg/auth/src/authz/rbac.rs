//! RBAC: Roles and ClusterRoles granted through RoleBindings and ClusterRoleBindings, matched
//! as upstream's `rbac` authorizer does, from an in-memory [`RbacIndex`] the server keeps
//! current from the registry's watches.
//!
//! Matching (upstream's `RuleAllows`): a verb, group, resource or URL of `*` matches all;
//! a rule's resource `pods/log` matches that subresource only and `*/scale` every `scale`;
//! resourceNames, when set, require the request's name; a non-resource URL ending in `*` is a
//! prefix. ClusterRoleBindings apply everywhere, RoleBindings in their namespace (a
//! ServiceAccount subject without a namespace means the binding's).
//!
//! [`covers`] is upstream's escalation check: the rules someone may grant are the ones they
//! hold.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use rkube_api::field::go_quote;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Attributes, Authorizer, Decision, Rules};
use crate::user::{UserInfo, split_service_account};

/// One rule of a role (`rbac.authorization.k8s.io/v1` PolicyRule).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Verbs, `*` for all.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// API groups, `*` for all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    /// Resources (`pods`, `pods/log`, `*/scale`, `*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Object names; empty for all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    /// Non-resource URLs (`/healthz`, `/api/*`).
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

fn has(set: &[String], value: &str) -> bool {
    set.iter().any(|s| s == value)
}

fn has_or_all(set: &[String], value: &str) -> bool {
    set.iter().any(|s| s == "*" || s == value)
}

impl PolicyRule {
    /// Whether this rule allows `attributes` (upstream's `RuleAllows`).
    pub fn allows(&self, a: &Attributes<'_>) -> bool {
        if !has_or_all(&self.verbs, a.verb) {
            return false;
        }
        if !a.resource_request {
            return self.non_resource_urls.iter().any(|url| {
                url == "*"
                    || url == a.path
                    || url
                        .strip_suffix('*')
                        .is_some_and(|prefix| a.path.starts_with(prefix))
            });
        }
        has_or_all(&self.api_groups, a.api_group)
            && self.resource_matches(a.resource, a.subresource)
            && (self.resource_names.is_empty() || has(&self.resource_names, a.name))
    }

    fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            if r == "*" {
                return true;
            }
            if subresource.is_empty() {
                return r == resource;
            }
            r.strip_prefix(resource)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|s| s == subresource)
                || r.strip_prefix("*/").is_some_and(|s| s == subresource)
        })
    }

    /// Upstream's `CompactString`: `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}`.
    pub fn compact_string(&self) -> String {
        let list = |values: &[String]| {
            let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
            format!("[{}]", quoted.join(" "))
        };
        let mut parts = Vec::new();
        for (label, values) in [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ] {
            if !values.is_empty() {
                parts.push(format!("{label}:{}", list(values)));
            }
        }
        format!("{{{}}}", parts.join(", "))
    }
}

/// A binding subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    #[serde(default)]
    pub kind: String,
    /// The name.
    #[serde(default)]
    pub name: String,
    /// The namespace of a ServiceAccount.
    #[serde(default)]
    pub namespace: String,
}

impl Subject {
    /// Upstream's `appliesToUser`; `namespace` is the binding's ("" for cluster bindings).
    fn applies_to(&self, user: &UserInfo, namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.in_group(&self.name),
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() {
                    namespace
                } else {
                    &self.namespace
                };
                !ns.is_empty()
                    && split_service_account(&user.name) == Some((ns, self.name.as_str()))
            }
            _ => false,
        }
    }

    /// Upstream's `describeSubject`.
    fn describe(&self, binding_namespace: &str) -> String {
        if self.kind == "ServiceAccount" {
            let ns = if self.namespace.is_empty() {
                binding_namespace
            } else {
                &self.namespace
            };
            format!("{} {}", self.kind, go_quote(&format!("{}/{ns}", self.name)))
        } else {
            format!("{} {}", self.kind, go_quote(&self.name))
        }
    }
}

/// The role a binding grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RoleRef {
    /// `Role` or `ClusterRole`.
    #[serde(default)]
    pub kind: String,
    /// The role's name.
    #[serde(default)]
    pub name: String,
}

/// A RoleBinding or ClusterRoleBinding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    /// What it grants.
    #[serde(default)]
    pub role_ref: RoleRef,
    /// To whom.
    #[serde(default)]
    pub subjects: Vec<Subject>,
}

/// The four RBAC kinds, as the index is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `roles`.
    Role,
    /// `clusterroles`.
    ClusterRole,
    /// `rolebindings`.
    RoleBinding,
    /// `clusterrolebindings`.
    ClusterRoleBinding,
}

impl Kind {
    /// All four.
    pub const ALL: [Kind; 4] = [
        Kind::Role,
        Kind::ClusterRole,
        Kind::RoleBinding,
        Kind::ClusterRoleBinding,
    ];

    /// The plural resource.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Role => "roles",
            Kind::ClusterRole => "clusterroles",
            Kind::RoleBinding => "rolebindings",
            Kind::ClusterRoleBinding => "clusterrolebindings",
        }
    }
}

type Key = (String, String);

/// Everything RBAC knows, by `(namespace, name)` ("" namespace for cluster objects).
#[derive(Debug, Default)]
struct Policy {
    roles: HashMap<Key, Arc<[PolicyRule]>>,
    cluster_roles: HashMap<String, Arc<[PolicyRule]>>,
    // Ordered, so that the binding an allow names is the same from run to run.
    role_bindings: HashMap<String, BTreeMap<String, Binding>>,
    cluster_role_bindings: BTreeMap<String, Binding>,
}

/// The in-memory RBAC objects, fed by the server from the registry's watches.
#[derive(Debug, Default)]
pub struct RbacIndex {
    policy: RwLock<Policy>,
}

fn key(object: &Value) -> Key {
    let meta = |f| {
        rkube_api::meta::field(object, f)
            .unwrap_or_default()
            .to_owned()
    };
    (meta("namespace"), meta("name"))
}

fn rules_of(object: &Value) -> Arc<[PolicyRule]> {
    let rules: Vec<PolicyRule> = object
        .get("rules")
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default();
    rules.into()
}

fn binding_of(object: &Value) -> Binding {
    serde_json::from_value(object.clone()).unwrap_or_default()
}

impl RbacIndex {
    /// An empty index.
    pub fn new() -> Self {
        RbacIndex::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Policy> {
        // A panic while writing leaves consistent maps (each write is one insert or remove).
        self.policy
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self, change: impl FnOnce(&mut Policy)) {
        let mut policy = self
            .policy
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut policy);
    }

    /// Adds or replaces an object of `kind`.
    pub fn upsert(&self, kind: Kind, object: &Value) {
        let (namespace, name) = key(object);
        self.write(|p| match kind {
            Kind::Role => {
                p.roles.insert((namespace, name), rules_of(object));
            }
            Kind::ClusterRole => {
                p.cluster_roles.insert(name, rules_of(object));
            }
            Kind::RoleBinding => {
                p.role_bindings
                    .entry(namespace)
                    .or_default()
                    .insert(name, binding_of(object));
            }
            Kind::ClusterRoleBinding => {
                p.cluster_role_bindings.insert(name, binding_of(object));
            }
        });
    }

    /// Removes an object of `kind`.
    pub fn remove(&self, kind: Kind, object: &Value) {
        let (namespace, name) = key(object);
        self.write(|p| match kind {
            Kind::Role => {
                p.roles.remove(&(namespace, name));
            }
            Kind::ClusterRole => {
                p.cluster_roles.remove(&name);
            }
            Kind::RoleBinding => {
                if let Some(bindings) = p.role_bindings.get_mut(&namespace) {
                    bindings.remove(&name);
                }
            }
            Kind::ClusterRoleBinding => {
                p.cluster_role_bindings.remove(&name);
            }
        });
    }

    /// Replaces every object of `kind` (after a list).
    pub fn replace(&self, kind: Kind, objects: &[Value]) {
        self.write(|p| match kind {
            Kind::Role => p.roles = objects.iter().map(|o| (key(o), rules_of(o))).collect(),
            Kind::ClusterRole => {
                p.cluster_roles = objects.iter().map(|o| (key(o).1, rules_of(o))).collect();
            }
            Kind::RoleBinding => {
                p.role_bindings.clear();
                for o in objects {
                    let (namespace, name) = key(o);
                    p.role_bindings
                        .entry(namespace)
                        .or_default()
                        .insert(name, binding_of(o));
                }
            }
            Kind::ClusterRoleBinding => {
                p.cluster_role_bindings =
                    objects.iter().map(|o| (key(o).1, binding_of(o))).collect();
            }
        });
    }

    /// The rules of the role `role_ref` names, for a binding in `namespace`.
    fn role_rules(
        policy: &Policy,
        role_ref: &RoleRef,
        namespace: &str,
    ) -> Result<Arc<[PolicyRule]>, String> {
        let found = match role_ref.kind.as_str() {
            "ClusterRole" => policy.cluster_roles.get(&role_ref.name),
            "Role" if !namespace.is_empty() => policy
                .roles
                .get(&(namespace.to_owned(), role_ref.name.clone())),
            _ => None,
        };
        found.cloned().ok_or_else(|| {
            format!(
                "{}.rbac.authorization.k8s.io {} not found",
                role_ref.kind.to_ascii_lowercase(),
                go_quote(&role_ref.name)
            )
        })
    }

    /// The rules of the role a binding in `namespace` refers to (`Role` or `ClusterRole`),
    /// or upstream's not-found message.
    pub fn role_ref_rules(
        &self,
        role_ref: &RoleRef,
        namespace: &str,
    ) -> Result<Vec<PolicyRule>, String> {
        Self::role_rules(&self.read(), role_ref, namespace).map(|rules| rules.to_vec())
    }

    /// Calls `visit` with each rule `user` holds in `namespace` and a description of where it
    /// comes from, until it returns true; errors resolving roles are collected.
    fn visit(
        &self,
        user: &UserInfo,
        namespace: &str,
        errors: &mut Vec<String>,
        mut visit: impl FnMut(&dyn Fn() -> String, &PolicyRule) -> bool,
    ) {
        let policy = self.read();
        let cluster = policy
            .cluster_role_bindings
            .iter()
            .map(|(name, b)| (name, "", b));
        let local = (!namespace.is_empty())
            .then(|| policy.role_bindings.get(namespace))
            .flatten()
            .into_iter()
            .flat_map(|bindings| bindings.iter().map(|(name, b)| (name, namespace, b)));
        for (name, binding_namespace, binding) in cluster.chain(local) {
            let Some(subject) = binding
                .subjects
                .iter()
                .find(|s| s.applies_to(user, binding_namespace))
            else {
                continue;
            };
            let rules = match Self::role_rules(&policy, &binding.role_ref, binding_namespace) {
                Ok(rules) => rules,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let describe = || {
                let (what, shown) = if binding_namespace.is_empty() {
                    ("ClusterRoleBinding", name.clone())
                } else {
                    ("RoleBinding", format!("{name}/{binding_namespace}"))
                };
                format!(
                    "{what} {} of {} {} to {}",
                    go_quote(&shown),
                    binding.role_ref.kind,
                    go_quote(&binding.role_ref.name),
                    subject.describe(binding_namespace)
                )
            };
            if rules.iter().any(|rule| visit(&describe, rule)) {
                return;
            }
        }
    }
}

/// The RBAC authorizer over an index.
#[derive(Debug, Clone)]
pub struct RbacAuthorizer {
    index: Arc<RbacIndex>,
}

impl RbacAuthorizer {
    /// Authorizes from `index`.
    pub fn new(index: Arc<RbacIndex>) -> Self {
        RbacAuthorizer { index }
    }
}

impl Authorizer for RbacAuthorizer {
    fn authorize(&self, attributes: &Attributes<'_>) -> Decision {
        let mut errors = Vec::new();
        let mut allowed_by = None;
        self.index.visit(
            attributes.user,
            attributes.namespace,
            &mut errors,
            |describe, rule| {
                let allows = rule.allows(attributes);
                if allows {
                    allowed_by = Some(describe());
                }
                allows
            },
        );
        if let Some(source) = allowed_by {
            return Decision::Allow(format!("RBAC: allowed by {source}"));
        }
        if errors.is_empty() {
            Decision::NoOpinion(String::new())
        } else {
            Decision::NoOpinion(format!("RBAC: [{}]", errors.join(", ")))
        }
    }

    fn rules_for(&self, user: &UserInfo, namespace: &str) -> Rules {
        let mut rules = Rules::default();
        self.index
            .visit(user, namespace, &mut rules.errors, |_, rule| {
                rules.rules.push(rule.clone());
                false
            });
        rules
    }
}

/// One verb on one group/resource/name, or on one URL (upstream's `BreakdownRule`).
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| vec![s.clone()];
    let mut atoms = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                let base = PolicyRule {
                    verbs: one(verb),
                    api_groups: one(group),
                    resources: one(resource),
                    ..PolicyRule::default()
                };
                if rule.resource_names.is_empty() {
                    atoms.push(base);
                } else {
                    for name in &rule.resource_names {
                        atoms.push(PolicyRule {
                            resource_names: one(name),
                            ..base.clone()
                        });
                    }
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            atoms.push(PolicyRule {
                verbs: one(verb),
                non_resource_urls: one(url),
                ..PolicyRule::default()
            });
        }
    }
    atoms
}

/// Upstream's `ruleCovers`: whether `owner` grants all of `sub`.
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let all =
        |set: &[String], wanted: &[String]| has(set, "*") || wanted.iter().all(|w| has(set, w));
    let resources = sub.resources.iter().all(|r| {
        has(&owner.resources, "*")
            || has(&owner.resources, r)
            || r.split_once('/')
                .is_some_and(|(_, s)| has(&owner.resources, &format!("*/{s}")))
    });
    let urls = sub.non_resource_urls.iter().all(|u| {
        owner.non_resource_urls.iter().any(|o| {
            o == u
                || o.strip_suffix('*')
                    .is_some_and(|prefix| u.starts_with(prefix))
        })
    });
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || all(&owner.resource_names, &sub.resource_names)
    };
    all(&owner.verbs, &sub.verbs)
        && all(&owner.api_groups, &sub.api_groups)
        && resources
        && urls
        && names
}

/// Upstream's `Covers`: the parts of `requested` that `owner` does not grant, compacted and
/// sorted (empty when covered).
pub fn covers(owner: &[PolicyRule], requested: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut missing: Vec<PolicyRule> = Vec::new();
    for atom in requested.iter().flat_map(breakdown) {
        if owner.iter().any(|o| rule_covers(o, &atom)) {
            continue;
        }
        // Atoms differing only in their verb become one rule (upstream's `CompactRules`).
        let same = missing.iter_mut().find(|m| {
            m.api_groups == atom.api_groups
                && m.resources == atom.resources
                && m.resource_names == atom.resource_names
                && m.non_resource_urls == atom.non_resource_urls
        });
        match same {
            Some(m) => {
                if !has(&m.verbs, &atom.verbs[0]) {
                    m.verbs.extend(atom.verbs);
                }
            }
            None => missing.push(atom),
        }
    }
    missing.sort_by_key(PolicyRule::compact_string);
    missing
}

/// Upstream's escalation message for `missing` rules.
pub fn escalation_message(user: &UserInfo, missing: &[PolicyRule], errors: &[String]) -> String {
    let groups: Vec<String> = user.groups.iter().map(|g| go_quote(g)).collect();
    let rules: Vec<String> = missing.iter().map(PolicyRule::compact_string).collect();
    let mut message = format!(
        "user {} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        go_quote(&user.name),
        groups.join(" "),
        rules.join("\n")
    );
    if !errors.is_empty() {
        message.push_str(&format!("; resolution errors: [{}]", errors.join(", ")));
    }
    message
}

impl fmt::Display for PolicyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.compact_string())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(value: Value) -> PolicyRule {
        serde_json::from_value(value).unwrap()
    }

    /// Upstream's rule matching, case by case (from `rbac/v1/evaluation_helpers` and the
    /// authorizer's tests).
    #[test]
    fn rules_match_as_upstream() {
        let user = UserInfo::new("u", &[]);
        let res = |verb, group, resource, sub, name| {
            Attributes::resource(&user, verb, group, resource, sub, "ns", name)
        };
        let cases: &[(Value, Attributes<'_>, bool)] = &[
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}),
                res("get", "", "pods", "", "p"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}),
                res("list", "", "pods", "", ""),
                false,
            ),
            (
                json!({"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]}),
                res("delete", "", "pods", "", "p"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["pods"]}),
                res("get", "", "pods", "", "p"),
                false,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*"]}),
                res("get", "apps", "deployments", "scale", "d"),
                true,
            ),
            // A resource does not grant its subresources, nor a subresource its resource.
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}),
                res("get", "", "pods", "log", "p"),
                false,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}),
                res("get", "", "pods", "log", "p"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}),
                res("get", "", "pods", "", "p"),
                false,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["*/scale"]}),
                res("get", "apps", "deployments", "scale", "d"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["*/scale"]}),
                res("get", "apps", "deployments", "", "d"),
                false,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/*"]}),
                res("get", "", "pods", "log", "p"),
                false,
            ),
            // resourceNames require the name; a collection request has none.
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}),
                res("get", "", "configmaps", "", "a"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}),
                res("get", "", "configmaps", "", "b"),
                false,
            ),
            (
                json!({"verbs": ["list"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}),
                res("list", "", "configmaps", "", ""),
                false,
            ),
            // Non-resource rules never grant resources.
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["*"]}),
                res("get", "", "pods", "", ""),
                false,
            ),
        ];
        for (i, (r, attributes, expected)) in cases.iter().enumerate() {
            assert_eq!(
                rule(r.clone()).allows(attributes),
                *expected,
                "case {i}: {r}"
            );
        }
        let path = |verb, p| Attributes::non_resource(&user, verb, p);
        let urls = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}));
        assert!(urls.allows(&path("get", "/healthz")));
        assert!(!urls.allows(&path("get", "/healthz/etcd")));
        assert!(urls.allows(&path("get", "/apis/apps/v1")));
        assert!(urls.allows(&path("get", "/apis/")));
        assert!(!urls.allows(&path("get", "/apis")));
        assert!(!urls.allows(&path("post", "/healthz")));
        let resources = rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        assert!(!resources.allows(&path("get", "/healthz")));
    }

    fn index() -> Arc<RbacIndex> {
        let index = Arc::new(RbacIndex::new());
        index.replace(
            Kind::ClusterRole,
            &[json!({
                "metadata": {"name": "view"},
                "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}],
            })],
        );
        index.replace(
            Kind::Role,
            &[json!({
                "metadata": {"name": "cm", "namespace": "ns"},
                "rules": [{"verbs": ["create"], "apiGroups": [""], "resources": ["configmaps"]}],
            })],
        );
        index.replace(Kind::RoleBinding, &[
            json!({"metadata": {"name": "b1", "namespace": "ns"},
                "roleRef": {"kind": "ClusterRole", "name": "view"},
                "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "sa"}]}),
            json!({"metadata": {"name": "b2", "namespace": "ns"},
                "roleRef": {"kind": "Role", "name": "cm"},
                "subjects": [{"kind": "Group", "name": "devs"}]}),
            json!({"metadata": {"name": "b3", "namespace": "ns"},
                "roleRef": {"kind": "Role", "name": "missing"},
                "subjects": [{"kind": "Group", "name": "devs"}]}),
        ]);
        index
    }

    #[test]
    fn bindings_grant_roles_where_they_apply() {
        let rbac = RbacAuthorizer::new(index());
        let alice = UserInfo::new("alice", &[]);
        let get =
            |user, ns| rbac.authorize(&Attributes::resource(user, "get", "", "pods", "", ns, "p"));
        assert_eq!(
            get(&alice, "ns"),
            Decision::Allow(
                r#"RBAC: allowed by RoleBinding "b1/ns" of ClusterRole "view" to User "alice""#
                    .into()
            )
        );
        assert!(!get(&alice, "other").allowed());
        assert!(!get(&alice, "").allowed());
        let sa = UserInfo::new("system:serviceaccount:ns:sa", &[]);
        assert!(get(&sa, "ns").allowed());
        let other_sa = UserInfo::new("system:serviceaccount:other:sa", &[]);
        assert!(!get(&other_sa, "ns").allowed());
        let dev = UserInfo::new("dev", &["devs"]);
        assert!(
            rbac.authorize(&Attributes::resource(
                &dev,
                "create",
                "",
                "configmaps",
                "",
                "ns",
                ""
            ))
            .allowed()
        );
        assert_eq!(
            get(&dev, "ns"),
            Decision::NoOpinion(
                r#"RBAC: [role.rbac.authorization.k8s.io "missing" not found]"#.into()
            )
        );
        let rules = rbac.rules_for(&dev, "ns");
        assert_eq!(rules.rules.len(), 1);
        assert_eq!(rules.errors.len(), 1);
    }

    #[test]
    fn removal_revokes() {
        let index = index();
        let rbac = RbacAuthorizer::new(index.clone());
        let alice = UserInfo::new("alice", &[]);
        let attributes = Attributes::resource(&alice, "list", "", "pods", "", "ns", "");
        assert!(rbac.authorize(&attributes).allowed());
        index.remove(
            Kind::RoleBinding,
            &json!({"metadata": {"name": "b1", "namespace": "ns"}}),
        );
        assert!(!rbac.authorize(&attributes).allowed());
    }

    #[test]
    fn escalation_needs_every_part_held() {
        let owner = [
            rule(
                json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "*/status"]}),
            ),
            rule(json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]})),
        ];
        let held = [rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods", "services/status"]}),
        )];
        assert!(covers(&owner, &held).is_empty());
        assert!(
            covers(
                &owner,
                &[rule(
                    json!({"verbs": ["get"], "nonResourceURLs": ["/apis/apps"]})
                )]
            )
            .is_empty()
        );
        let wanted = [rule(
            json!({"verbs": ["get", "delete", "watch"], "apiGroups": [""], "resources": ["pods", "secrets"]}),
        )];
        let missing = covers(&owner, &wanted);
        let shown: Vec<String> = missing.iter().map(PolicyRule::compact_string).collect();
        assert_eq!(
            shown,
            [
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete" "watch"]}"#,
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete" "watch"]}"#,
            ]
        );
        assert_eq!(
            escalation_message(
                &UserInfo::new("bob", &["system:authenticated"]),
                &missing[..1],
                &[]
            ),
            "user \"bob\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\" \"watch\"]}"
        );
        // A named grant does not cover an unnamed one.
        let named = [rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]}),
        )];
        assert_eq!(
            covers(
                &named,
                &[rule(
                    json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]})
                )]
            )
            .len(),
            1
        );
    }
}
