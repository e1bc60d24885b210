//! The Node authorizer (upstream's `plugin/pkg/auth/authorizer/node`, as a 1.34 API server
//! runs it with `--authorization-mode=Node,RBAC`): what a kubelet (`system:node:<name>` in
//! `system:nodes`) may do.
//!
//! Objects a node only needs for its own pods are checked against the [`NodeGraph`]: single
//! secrets, config maps, claims, volumes, resource claims, service accounts (and their tokens),
//! volume attachments, pods and resource slices that a pod bound to the node (or the node
//! itself) leads to. Its own Node, Lease and CSINode are checked by name; writes whose object
//! the authorizer cannot see (creating a Node, a mirror pod, a pod's status) are allowed here
//! and narrowed by the NodeRestriction admission plugin. Everything else is upstream's static
//! [`node_rules`]. Users that are not nodes get no opinion.

pub mod graph;

use std::sync::Arc;

use rkube_api::field::go_quote;
use rkube_api::selector::FieldOperator;
use rkube_api::user::node_identity;

use super::{Attributes, Authorizer, Decision, PolicyRule, Rules};
use crate::user::UserInfo;
pub use graph::{NodeGraph, Source, Vertex};

/// The namespace of node leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

const READ: &[&str] = &["get", "list", "watch"];
const READ_WRITE: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Upstream's `bootstrappolicy.NodeRules()` with 1.34's default features (dynamic resource
/// allocation, service account tokens for credential providers): what every node may do
/// beyond the graph, and the rules of the `system:node` ClusterRole.
pub fn node_rules() -> Vec<PolicyRule> {
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        PolicyRule {
            verbs: owned(verbs),
            api_groups: owned(groups),
            resources: owned(resources),
            ..PolicyRule::default()
        }
    };
    vec![
        rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
        rule(
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews", "subjectaccessreviews"],
            &["create"],
        ),
        rule(&[""], &["services"], READ),
        rule(&[""], &["nodes"], &["create", "get", "list", "watch"]),
        rule(&[""], &["nodes/status"], &["patch", "update"]),
        rule(&[""], &["nodes"], &["patch", "update"]),
        rule(&[""], &["events"], &["create", "patch", "update"]),
        rule(&[""], &["pods"], READ),
        rule(&[""], &["pods"], &["create", "delete"]),
        rule(&[""], &["pods/status"], &["patch", "update"]),
        rule(&[""], &["pods/eviction"], &["create"]),
        rule(&[""], &["configmaps", "secrets"], READ),
        rule(
            &[""],
            &["persistentvolumeclaims", "persistentvolumes"],
            &["get"],
        ),
        rule(&[""], &["endpoints"], &["get"]),
        rule(
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
            &["create", "get", "list", "watch"],
        ),
        rule(
            &["coordination.k8s.io"],
            &["leases"],
            &["create", "delete", "get", "patch", "update"],
        ),
        rule(&["storage.k8s.io"], &["volumeattachments"], &["get"]),
        rule(&[""], &["serviceaccounts/token"], &["create"]),
        rule(
            &[""],
            &["persistentvolumeclaims/status"],
            &["get", "patch", "update"],
        ),
        rule(&["storage.k8s.io"], &["csidrivers"], READ),
        rule(
            &["storage.k8s.io"],
            &["csinodes"],
            &["create", "delete", "get", "patch", "update"],
        ),
        rule(&["node.k8s.io"], &["runtimeclasses"], READ),
        rule(&["resource.k8s.io"], &["resourceclaims"], &["get"]),
        rule(&["resource.k8s.io"], &["resourceslices"], READ_WRITE),
        rule(&[""], &["serviceaccounts"], &["get"]),
    ]
}

/// The Node authorizer over a graph.
#[derive(Debug, Clone)]
pub struct NodeAuthorizer {
    graph: Arc<NodeGraph>,
    rules: Vec<PolicyRule>,
}

fn allow() -> Decision {
    Decision::Allow(String::new())
}

fn refuse(reason: impl Into<String>) -> Decision {
    Decision::NoOpinion(reason.into())
}

/// Whether the request's field selector pins `field` to `value`.
fn selects(a: &Attributes<'_>, field: &str, value: &str) -> bool {
    a.field_selector.is_some_and(|s| {
        s.terms()
            .iter()
            .any(|t| t.field == field && t.operator == FieldOperator::Equals && t.value == value)
    })
}

impl NodeAuthorizer {
    /// Authorizes nodes from `graph` and [`node_rules`].
    pub fn new(graph: Arc<NodeGraph>) -> Self {
        NodeAuthorizer {
            graph,
            rules: node_rules(),
        }
    }

    /// Upstream's `authorize`: a named object the graph leads `node` to.
    fn related(&self, node: &str, vertex: Vertex, a: &Attributes<'_>) -> Decision {
        if a.name.is_empty() {
            return refuse("No Object name found");
        }
        if self.graph.reaches(node, vertex, a.namespace, a.name) {
            allow()
        } else {
            refuse(format!(
                "no relationship found between node '{node}' and this object"
            ))
        }
    }

    /// Upstream's `authorizeReadNamespacedObject`: get, list or watch of one namespaced
    /// object.
    fn read_namespaced(&self, node: &str, vertex: Vertex, a: &Attributes<'_>) -> Decision {
        if !READ.contains(&a.verb) {
            return refuse("can only read resources of this type");
        }
        if !a.subresource.is_empty() {
            return refuse("cannot read subresource");
        }
        if a.namespace.is_empty() {
            return refuse("can only read namespaced object of this type");
        }
        self.related(node, vertex, a)
    }

    /// Upstream's `authorizeGet`.
    fn get(&self, node: &str, vertex: Vertex, a: &Attributes<'_>) -> Decision {
        if a.verb != "get" {
            return refuse("can only get individual resources of this type");
        }
        if !a.subresource.is_empty() {
            return refuse("cannot get subresource");
        }
        self.related(node, vertex, a)
    }

    fn claim(&self, node: &str, a: &Attributes<'_>) -> Decision {
        if a.subresource != "status" {
            return self.get(node, Vertex::PersistentVolumeClaim, a);
        }
        // Upstream's `authorizeStatusUpdate`.
        if !matches!(a.verb, "update" | "patch") {
            return refuse("can only get/update/patch this type");
        }
        self.related(node, Vertex::PersistentVolumeClaim, a)
    }

    /// Service accounts: read one a pod of the node runs as, or create a token for it.
    fn service_account(&self, node: &str, a: &Attributes<'_>) -> Decision {
        if a.verb == "get" && a.subresource.is_empty() {
            return self.read_namespaced(node, Vertex::ServiceAccount, a);
        }
        if a.verb != "create" || a.name.is_empty() {
            return refuse("can only create tokens for individual service accounts");
        }
        if a.subresource != "token" {
            return refuse("can only create token subresource of serviceaccount");
        }
        self.related(node, Vertex::ServiceAccount, a)
    }

    /// Leases and CSINodes: the node's own, by name (on create NodeRestriction checks it).
    fn own_object(node: &str, a: &Attributes<'_>, what: &str) -> Decision {
        if !matches!(a.verb, "get" | "create" | "update" | "patch" | "delete") {
            return refuse(format!(
                "can only get, create, update, patch, or delete a {what}"
            ));
        }
        if a.verb != "create" && a.name != node {
            return refuse(format!(
                "can only access {what} with the same name as the requesting node"
            ));
        }
        allow()
    }

    fn lease(node: &str, a: &Attributes<'_>) -> Decision {
        let verbs_ok = matches!(a.verb, "get" | "create" | "update" | "patch" | "delete");
        if verbs_ok && a.namespace != NODE_LEASE_NAMESPACE {
            return refuse(format!(
                "can only access leases in the {} system namespace",
                go_quote(NODE_LEASE_NAMESPACE)
            ));
        }
        Self::own_object(node, a, "node lease")
    }

    fn csi_node(node: &str, a: &Attributes<'_>) -> Decision {
        let verbs_ok = matches!(a.verb, "get" | "create" | "update" | "patch" | "delete");
        if verbs_ok && !a.subresource.is_empty() {
            return refuse("cannot authorize CSINode subresources");
        }
        Self::own_object(node, a, "CSINode")
    }

    fn resource_slice(&self, node: &str, a: &Attributes<'_>) -> Decision {
        if !a.subresource.is_empty() {
            return refuse("cannot authorize ResourceSlice subresources");
        }
        match a.verb {
            // NodeRestriction checks the new slice's node.
            "create" => allow(),
            "get" | "update" | "patch" | "delete" => self.related(node, Vertex::ResourceSlice, a),
            "watch" | "list" | "deletecollection" => {
                if selects(a, "nodeName", node) {
                    allow()
                } else {
                    refuse(
                        "can only list/watch/deletecollection resourceslices with nodeName field selector",
                    )
                }
            }
            _ => refuse(
                "only the following verbs are allowed for a ResourceSlice: get, watch, list, create, update, patch, delete, deletecollection",
            ),
        }
    }

    /// Upstream's `authorizeNode`: write any Node (NodeRestriction narrows it to its own), read
    /// only its own.
    fn node(node: &str, a: &Attributes<'_>) -> Decision {
        match (a.subresource, a.verb) {
            ("", "create" | "update" | "patch") | ("status", "update" | "patch") => allow(),
            ("", "get" | "list" | "watch") => {
                if a.name == node {
                    allow()
                } else if a.name.is_empty() {
                    refuse(format!(
                        "node '{node}' cannot read all nodes, only its own Node object"
                    ))
                } else {
                    refuse(format!(
                        "node '{node}' cannot read '{}', only its own Node object",
                        a.name
                    ))
                }
            }
            _ => refuse(""),
        }
    }

    /// Upstream's `authorizePod`: read the pods bound to it, create and delete mirror pods,
    /// write pod status and evictions (NodeRestriction narrows those to its own pods).
    fn pod(&self, node: &str, a: &Attributes<'_>) -> Decision {
        match (a.subresource, a.verb) {
            ("", "get") => self.get(node, Vertex::Pod, a),
            ("", "list" | "watch") => {
                if selects(a, "spec.nodeName", node) {
                    allow()
                } else if !a.name.is_empty() {
                    self.related(node, Vertex::Pod, a)
                } else {
                    refuse("can only list/watch pods with spec.nodeName field selector")
                }
            }
            ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => {
                allow()
            }
            _ => refuse(""),
        }
    }
}

impl Authorizer for NodeAuthorizer {
    fn authorize(&self, a: &Attributes<'_>) -> Decision {
        let Some(node) = node_identity(a.user) else {
            return Decision::NoOpinion(String::new());
        };
        if node.is_empty() {
            return refuse(format!("unknown node for user {}", go_quote(&a.user.name)));
        }
        if a.resource_request {
            match (a.api_group, a.resource) {
                ("", "secrets") => return self.read_namespaced(node, Vertex::Secret, a),
                ("", "configmaps") => return self.read_namespaced(node, Vertex::ConfigMap, a),
                ("", "persistentvolumeclaims") => return self.claim(node, a),
                ("", "persistentvolumes") => return self.get(node, Vertex::PersistentVolume, a),
                ("resource.k8s.io", "resourceclaims") => {
                    return self.get(node, Vertex::ResourceClaim, a);
                }
                ("storage.k8s.io", "volumeattachments") => {
                    return self.get(node, Vertex::VolumeAttachment, a);
                }
                ("", "serviceaccounts") => return self.service_account(node, a),
                ("coordination.k8s.io", "leases") => return Self::lease(node, a),
                ("storage.k8s.io", "csinodes") => return Self::csi_node(node, a),
                ("resource.k8s.io", "resourceslices") => return self.resource_slice(node, a),
                ("", "nodes") => return Self::node(node, a),
                ("", "pods") => return self.pod(node, a),
                _ => {}
            }
        }
        if self.rules.iter().any(|rule| rule.allows(a)) {
            allow()
        } else {
            refuse("")
        }
    }

    fn rules_for(&self, user: &UserInfo, _namespace: &str) -> Rules {
        match node_identity(user) {
            // A node's permissions depend on objects: they cannot be listed.
            Some(_) => Rules {
                rules: Vec::new(),
                errors: vec!["node authorizer does not support user rule resolution".to_owned()],
            },
            None => Rules::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_api::selector::FieldSelector;
    use rkube_api::user::NODES_GROUP;
    use serde_json::json;

    fn authorizer() -> NodeAuthorizer {
        let graph = Arc::new(NodeGraph::new());
        graph.upsert(
            Source::Pods,
            &json!({
                "metadata": {"namespace": "ns", "name": "web"},
                "spec": {
                    "nodeName": "node-a",
                    "serviceAccountName": "sa",
                    "volumes": [
                        {"name": "s", "secret": {"secretName": "used"}},
                        {"name": "p", "projected": {"sources": [{"configMap": {"name": "projected"}}]}},
                        {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                    ],
                },
            }),
        );
        graph.upsert(
            Source::PersistentVolumes,
            &json!({"metadata": {"name": "pv1"}, "spec": {"claimRef": {"namespace": "ns", "name": "data"}}}),
        );
        NodeAuthorizer::new(graph)
    }

    /// One request: `(user, verb, group, resource, subresource, namespace, name)`.
    type Request<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
    );

    fn decide(authz: &NodeAuthorizer, request: Request<'_>, selector: Option<&str>) -> Decision {
        let (user, verb, group, resource, sub, ns, name) = request;
        let user = UserInfo::new(user, &[NODES_GROUP]);
        let selector = selector.map(|s| FieldSelector::parse(s).unwrap());
        let mut a = Attributes::resource(&user, verb, group, resource, sub, ns, name);
        a.field_selector = selector.as_ref();
        authz.authorize(&a)
    }

    #[test]
    fn nodes_reach_only_what_their_pods_use() {
        let authz = authorizer();
        let a = "system:node:node-a";
        let b = "system:node:node-b";
        let no_relation = |node: &str| {
            refuse(format!(
                "no relationship found between node '{node}' and this object"
            ))
        };
        let table: &[(Request<'_>, Decision)] = &[
            ((a, "get", "", "secrets", "", "ns", "used"), allow()),
            ((a, "watch", "", "secrets", "", "ns", "used"), allow()),
            (
                (b, "get", "", "secrets", "", "ns", "used"),
                no_relation("node-b"),
            ),
            (
                (a, "get", "", "secrets", "", "ns", "unused"),
                no_relation("node-a"),
            ),
            (
                (a, "list", "", "secrets", "", "ns", ""),
                refuse("No Object name found"),
            ),
            (
                (a, "delete", "", "secrets", "", "ns", "used"),
                refuse("can only read resources of this type"),
            ),
            ((a, "get", "", "configmaps", "", "ns", "projected"), allow()),
            (
                (a, "get", "", "persistentvolumeclaims", "", "ns", "data"),
                allow(),
            ),
            ((a, "get", "", "persistentvolumes", "", "", "pv1"), allow()),
            (
                (b, "get", "", "persistentvolumes", "", "", "pv1"),
                no_relation("node-b"),
            ),
            (
                (a, "list", "", "persistentvolumes", "", "", ""),
                refuse("can only get individual resources of this type"),
            ),
            (
                (
                    a,
                    "patch",
                    "",
                    "persistentvolumeclaims",
                    "status",
                    "ns",
                    "data",
                ),
                allow(),
            ),
            ((a, "get", "", "serviceaccounts", "", "ns", "sa"), allow()),
            (
                (a, "create", "", "serviceaccounts", "token", "ns", "sa"),
                allow(),
            ),
            (
                (b, "create", "", "serviceaccounts", "token", "ns", "sa"),
                no_relation("node-b"),
            ),
            ((a, "get", "", "pods", "", "ns", "web"), allow()),
            (
                (b, "get", "", "pods", "", "ns", "web"),
                no_relation("node-b"),
            ),
            ((a, "create", "", "pods", "", "ns", ""), allow()),
            ((a, "create", "", "pods", "eviction", "ns", "web"), allow()),
            (
                (a, "list", "", "pods", "", "", ""),
                refuse("can only list/watch pods with spec.nodeName field selector"),
            ),
            ((a, "get", "", "nodes", "", "", "node-a"), allow()),
            ((a, "update", "", "nodes", "", "", "node-b"), allow()),
            (
                (a, "get", "", "nodes", "", "", "node-b"),
                refuse("node 'node-a' cannot read 'node-b', only its own Node object"),
            ),
            (
                (a, "list", "", "nodes", "", "", ""),
                refuse("node 'node-a' cannot read all nodes, only its own Node object"),
            ),
            ((a, "delete", "", "nodes", "", "", "node-a"), refuse("")),
            (
                (
                    a,
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    "",
                    "kube-node-lease",
                    "node-a",
                ),
                allow(),
            ),
            (
                (
                    a,
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    "",
                    "kube-node-lease",
                    "node-b",
                ),
                refuse("can only access node lease with the same name as the requesting node"),
            ),
            (
                (
                    a,
                    "get",
                    "coordination.k8s.io",
                    "leases",
                    "",
                    "default",
                    "node-a",
                ),
                refuse(r#"can only access leases in the "kube-node-lease" system namespace"#),
            ),
            (
                (a, "create", "storage.k8s.io", "csinodes", "", "", ""),
                allow(),
            ),
            (
                (a, "get", "storage.k8s.io", "csinodes", "", "", "node-b"),
                refuse("can only access CSINode with the same name as the requesting node"),
            ),
            // The static rules.
            ((a, "list", "", "services", "", "", ""), allow()),
            ((a, "create", "", "events", "", "ns", ""), allow()),
            (
                (
                    a,
                    "create",
                    "certificates.k8s.io",
                    "certificatesigningrequests",
                    "",
                    "",
                    "",
                ),
                allow(),
            ),
            ((a, "delete", "", "services", "", "ns", "x"), refuse("")),
        ];
        for (request, want) in table {
            assert_eq!(&decide(&authz, *request, None), want, "{request:?}");
        }
    }

    #[test]
    fn lists_scoped_to_the_node_are_allowed() {
        let authz = authorizer();
        let a = "system:node:node-a";
        let pods = (a, "watch", "", "pods", "", "", "");
        assert_eq!(decide(&authz, pods, Some("spec.nodeName=node-a")), allow());
        assert!(!decide(&authz, pods, Some("spec.nodeName=node-b")).allowed());
        assert!(!decide(&authz, pods, Some("spec.nodeName!=node-a")).allowed());
        let slices = (
            a,
            "deletecollection",
            "resource.k8s.io",
            "resourceslices",
            "",
            "",
            "",
        );
        assert_eq!(decide(&authz, slices, Some("nodeName=node-a")), allow());
        assert!(!decide(&authz, slices, None).allowed());
    }

    #[test]
    fn other_users_get_no_opinion_and_nodes_no_rule_list() {
        let authz = authorizer();
        let alice = UserInfo::new("alice", &[]);
        let a = Attributes::resource(&alice, "get", "", "secrets", "", "ns", "used");
        assert_eq!(authz.authorize(&a), refuse(""));
        // A node name without the nodes group is not a node.
        let pretender = UserInfo::new("system:node:node-a", &[]);
        let a = Attributes::resource(&pretender, "get", "", "secrets", "", "ns", "used");
        assert_eq!(authz.authorize(&a), refuse(""));
        let unnamed = UserInfo::new("system:node:", &[NODES_GROUP]);
        let a = Attributes::resource(&unnamed, "get", "", "secrets", "", "ns", "used");
        assert_eq!(
            authz.authorize(&a),
            refuse(r#"unknown node for user "system:node:""#)
        );
        assert!(authz.rules_for(&alice, "ns").errors.is_empty());
        let node = UserInfo::new("system:node:node-a", &[NODES_GROUP]);
        assert_eq!(authz.rules_for(&node, "ns").errors.len(), 1);
    }
}
