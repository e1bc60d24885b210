//! NodeRestriction (upstream's `plugin/pkg/admission/noderestriction`, 1.34 defaults): a node
//! (`system:node:<name>` in `system:nodes`) may write only what concerns itself.
//!
//! The Node authorizer lets nodes create Nodes, pods, pod statuses, evictions, leases,
//! CSINodes, resource slices and tokens without seeing the object; this plugin looks at it:
//!
//! - pods: only mirror pods bound to the node, owned by its Node and using no other object;
//!   delete only pods bound to it; status and evictions only of its pods;
//! - nodes: only its own; no config source, no taint changes, and no `node-restriction`
//!   or unknown `kubernetes.io`/`k8s.io` labels added, changed or removed;
//! - persistent volume claims: status only, and only capacity, conditions and the
//!   allocated resources of an expansion;
//! - service account tokens: bound to a pod of the node, for an audience that pod uses (or one
//!   the authorizer grants with `request-serviceaccounts-token-audience`);
//! - leases (in `kube-node-lease`), CSINodes and resource slices: its own;
//! - kubelet certificate requests: only for its own name.
//!
//! Upstream runs it as mutating admission; deletes here reach only validating admission, so it
//! checks them there.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use rkube_api::field::go_quote;
use rkube_api::resources::GroupResource;
use rkube_api::status::ApiError;
use rkube_api::user::node_identity;
use rkube_api::{meta, references};
use serde_json::{Map, Value};

use crate::attributes::{Attributes, Operation};
use crate::chain::{Access, Authorize, Cluster, Plugin, Result, Warnings};

/// The annotation of a pod the kubelet mirrors from a static manifest.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// The namespace of node leases.
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// Labels no kubelet may set on its Node (upstream's `LabelNamespaceNodeRestriction`).
const NODE_RESTRICTION_LABELS: &str = "node-restriction.kubernetes.io";
/// The `kubernetes.io` and `k8s.io` labels kubelets set on their Node (`kubeletapis`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];
/// Label namespaces kubelets may use freely.
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];
/// The signers whose certificates name a node.
const NODE_SIGNERS: &[&str] = &[
    "kubernetes.io/kubelet-serving",
    "kubernetes.io/kube-apiserver-client-kubelet",
];
/// The CSI drivers in-tree volume sources migrate to (the CSI translation library's names).
const MIGRATED_DRIVERS: &[(&str, &str)] = &[
    ("awsElasticBlockStore", "ebs.csi.aws.com"),
    ("azureDisk", "disk.csi.azure.com"),
    ("azureFile", "file.csi.azure.com"),
    ("cinder", "cinder.csi.openstack.org"),
    ("gcePersistentDisk", "pd.csi.storage.gke.io"),
    ("portworxVolume", "pxd.portworx.com"),
    ("vsphereVolume", "csi.vsphere.vmware.com"),
];

/// The plugin.
#[derive(Debug)]
pub struct NodeRestriction {
    cluster: Arc<dyn Cluster>,
    authz: Arc<dyn Authorize>,
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn node_name(object: &Value) -> &str {
    text(object, "/spec/nodeName")
}

/// A pod or node as a lister answers its absence (`pod "x" not found`).
fn not_found(kind: &str, name: &str) -> ApiError {
    ApiError::not_found(GroupResource::new("", kind), name)
}

/// What a label key's prefix is (`example.com` of `example.com/x`), "" without one.
fn label_namespace(key: &str) -> &str {
    key.split_once('/').map(|(ns, _)| ns).unwrap_or_default()
}

/// Whether `namespace` is `domain` or one of its subdomains.
fn in_domain(namespace: &str, domain: &str) -> bool {
    namespace == domain
        || namespace
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Upstream's `getForbiddenLabels`: of the `modified` keys, the node-restriction ones and the
/// `kubernetes.io`/`k8s.io` ones kubelets do not own, sorted.
fn forbidden_labels(modified: BTreeSet<&str>) -> Vec<&str> {
    modified
        .into_iter()
        .filter(|key| {
            let namespace = label_namespace(key);
            let kubernetes = ["kubernetes.io", "k8s.io"]
                .iter()
                .any(|d| in_domain(namespace, d));
            let kubelet = KUBELET_LABELS.contains(key)
                || KUBELET_LABEL_NAMESPACES
                    .iter()
                    .any(|d| in_domain(namespace, d));
            in_domain(namespace, NODE_RESTRICTION_LABELS) || (kubernetes && !kubelet)
        })
        .collect()
}

fn labels(object: Option<&Value>) -> Map<String, Value> {
    object.and_then(meta::labels).cloned().unwrap_or_default()
}

/// The keys added, removed or changed between two label maps.
fn modified_labels<'a>(
    new: &'a Map<String, Value>,
    old: &'a Map<String, Value>,
) -> BTreeSet<&'a str> {
    let changed = |a: &'a Map<String, Value>, b: &Map<String, Value>| {
        a.iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
    };
    changed(new, old)
        .into_iter()
        .chain(changed(old, new))
        .collect()
}

/// `value` with empty strings, lists, maps and nulls dropped (and `null` when nothing is
/// left), as Go's semantic equality sees an object: absent and empty are the same there.
fn semantic(value: &Value) -> Value {
    let value = match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), semantic(v)))
                .filter(|(_, v)| !v.is_null())
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(semantic).collect()),
        other => other.clone(),
    };
    if is_empty(&value) { Value::Null } else { value }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// The status of `pod`'s resource claims as NodeRestriction compares them: name and claim.
fn claim_statuses(pod: Option<&Value>) -> Vec<(String, Option<String>)> {
    pod.and_then(|p| p.pointer("/status/resourceClaimStatuses"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| {
            (
                text(s, "/name").to_owned(),
                s.get("resourceClaimName")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            )
        })
        .collect()
}

impl NodeRestriction {
    /// The plugin, reading pods, nodes and volumes from `cluster` and asking `authz` about
    /// token audiences.
    pub fn new(cluster: Arc<dyn Cluster>, authz: Arc<dyn Authorize>) -> Self {
        NodeRestriction { cluster, authz }
    }

    /// The stored object of `kind` (`pods`, `nodes`), or a lister's NotFound.
    async fn existing(
        &self,
        plural: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value> {
        self.cluster
            .get(("", plural), namespace, name)
            .await?
            .ok_or_else(|| not_found(kind, name))
    }

    async fn check(&self, attrs: &Attributes) -> Result<()> {
        let Some(node) = node_identity(&attrs.user) else {
            return Ok(());
        };
        if node.is_empty() {
            return Err(attrs.forbidden(format!(
                "could not determine node from user {}",
                go_quote(&attrs.user.name)
            )));
        }
        let resource = (attrs.resource.group.as_str(), attrs.resource.name.as_str());
        match resource {
            ("", "pods") => match attrs.subresource.as_str() {
                "" => self.pod(node, attrs).await,
                "status" => pod_status(node, attrs),
                "eviction" => self.eviction(node, attrs).await,
                other => Err(attrs.forbidden(format!(
                    "unexpected pod subresource {}, only 'status' and 'eviction' are allowed",
                    go_quote(other)
                ))),
            },
            ("", "nodes") => node_write(node, attrs),
            ("", "persistentvolumeclaims") if attrs.subresource == "status" => {
                claim_status(node, attrs)
            }
            ("", "persistentvolumeclaims") => Err(attrs.forbidden("may only update PVC status")),
            ("", "serviceaccounts") => self.token(node, attrs).await,
            ("coordination.k8s.io", "leases") => lease(node, attrs),
            ("storage.k8s.io", "csinodes") => own_name(node, attrs, "CSINode"),
            ("resource.k8s.io", "resourceslices") => resource_slice(node, attrs),
            ("certificates.k8s.io", "certificatesigningrequests") => csr(node, attrs),
            _ => Ok(()),
        }
    }

    async fn pod(&self, node: &str, attrs: &Attributes) -> Result<()> {
        match attrs.op() {
            Operation::Create => self.mirror_pod(node, attrs).await,
            Operation::Delete => {
                let pod = match &attrs.old_object {
                    Some(pod) => pod.clone(),
                    None => {
                        self.existing("pods", "pod", &attrs.namespace, &attrs.name)
                            .await?
                    }
                };
                if node_name(&pod) != node {
                    return Err(attrs.forbidden(format!(
                        "node {} can only delete pods with spec.nodeName set to itself",
                        go_quote(node)
                    )));
                }
                Ok(())
            }
            other => Err(attrs.forbidden(format!(
                "unexpected operation {}, node {} can only create and delete mirror pods",
                go_quote(other.as_str()),
                go_quote(node)
            ))),
        }
    }

    /// Upstream's `admitPodCreate`.
    async fn mirror_pod(&self, node: &str, attrs: &Attributes) -> Result<()> {
        let pod = attrs.object.as_ref().unwrap_or(&Value::Null);
        let quoted = go_quote(node);
        let refuse = |why: String| Err(attrs.forbidden(why));
        let annotated = pod
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(MIRROR_ANNOTATION))
            .is_some();
        if !annotated {
            return refuse(format!(
                "pod does not have {} annotation, node {quoted} can only create mirror pods",
                go_quote(MIRROR_ANNOTATION)
            ));
        }
        if node_name(pod) != node {
            return refuse(format!(
                "node {quoted} can only create pods with spec.nodeName set to itself"
            ));
        }
        let owners = pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let owner = match owners {
            [] => {
                return refuse(format!(
                    "node {quoted} can only create pods with an owner reference set to itself"
                ));
            }
            [owner] => owner,
            _ => {
                return refuse(format!(
                    "node {quoted} can only create pods with a single owner reference set to itself"
                ));
            }
        };
        if text(owner, "/apiVersion") != "v1"
            || text(owner, "/kind") != "Node"
            || text(owner, "/name") != node
        {
            return refuse(format!(
                "node {quoted} can only create pods with an owner reference set to itself"
            ));
        }
        if owner.get("controller").and_then(Value::as_bool) != Some(true) {
            return refuse(format!(
                "node {quoted} can only create pods with a controller owner reference set to itself"
            ));
        }
        if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
            return refuse(format!(
                "node {quoted} must not set blockOwnerDeletion on an owner reference"
            ));
        }
        let stored = self.existing("nodes", "node", "", node).await?;
        let (want, have) = (text(owner, "/uid"), meta::uid(&stored).unwrap_or_default());
        if want != have {
            return refuse(format!(
                "node {node} UID mismatch: expected {want} got {have}"
            ));
        }
        // A node must not gain access to other objects through a pod it made up.
        if !text(pod, "/spec/serviceAccountName").is_empty() {
            return refuse(format!(
                "node {quoted} can not create pods that reference a service account"
            ));
        }
        let volumes = || {
            pod.pointer("/spec/volumes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        };
        let trust_bundles = volumes().any(|v| {
            v.pointer("/projected/sources")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|s| s.get("clusterTrustBundle").is_some()))
        });
        let refused = if !references::pod_secrets(pod).is_empty() {
            Some("secrets")
        } else if !references::pod_config_maps(pod).is_empty() {
            Some("configmaps")
        } else if trust_bundles {
            Some("clustertrustbundles")
        } else if volumes().any(|v| v.get("persistentVolumeClaim").is_some_and(|c| !c.is_null())) {
            Some("persistentvolumeclaims")
        } else {
            None
        };
        match refused {
            Some(what) => refuse(format!(
                "node {quoted} can not create pods that reference {what}"
            )),
            None => Ok(()),
        }
    }

    /// Upstream's `admitPodEviction`.
    async fn eviction(&self, node: &str, attrs: &Attributes) -> Result<()> {
        if attrs.op() != Operation::Create {
            return Err(attrs.forbidden(format!("unexpected operation {}", attrs.op().as_str())));
        }
        // The pod in the URL, rather than the one the Eviction names.
        let pod_name = match attrs.name.as_str() {
            "" => attrs
                .object
                .as_ref()
                .and_then(meta::name)
                .unwrap_or_default(),
            name => name,
        };
        if pod_name.is_empty() {
            return Err(attrs.forbidden("could not determine pod from request data"));
        }
        let pod = self
            .existing("pods", "pod", &attrs.namespace, pod_name)
            .await?;
        if node_name(&pod) != node {
            return Err(attrs.forbidden(format!(
                "node {node} can only evict pods with spec.nodeName set to itself"
            )));
        }
        Ok(())
    }

    /// Upstream's `admitServiceAccount`: tokens bound to a pod of this node, for an audience
    /// that pod uses.
    async fn token(&self, node: &str, attrs: &Attributes) -> Result<()> {
        if attrs.op() != Operation::Create || attrs.subresource != "token" {
            return Ok(());
        }
        let request = attrs.object.as_ref().unwrap_or(&Value::Null);
        let reference = request
            .pointer("/spec/boundObjectRef")
            .filter(|r| r.is_object())
            .unwrap_or(&Value::Null);
        if text(reference, "/apiVersion") != "v1"
            || text(reference, "/kind") != "Pod"
            || text(reference, "/name").is_empty()
        {
            return Err(attrs.forbidden("node requested token not bound to a pod"));
        }
        let uid = text(reference, "/uid");
        if uid.is_empty() {
            return Err(attrs.forbidden("node requested token with a pod binding without a uid"));
        }
        let pod = self
            .existing("pods", "pod", &attrs.namespace, text(reference, "/name"))
            .await?;
        if meta::uid(&pod) != Some(uid) {
            return Err(attrs.forbidden(format!(
                "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
            )));
        }
        if node_name(&pod) != node {
            return Err(attrs
                .forbidden("node requested token bound to a pod scheduled on a different node"));
        }
        let audiences: Vec<&str> = request
            .pointer("/spec/audiences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let audience = match audiences.as_slice() {
            [] => return Ok(()),
            [one] => *one,
            _ => return Err(attrs.forbidden("node may only request 0 or 1 audiences")),
        };
        let used = self.pod_uses_audience(&pod, audience).await.map_err(|e| {
            attrs.forbidden(format!(
                "error validating audience {}: {}",
                go_quote(audience),
                e.message()
            ))
        })?;
        if used {
            return Ok(());
        }
        let granted = self
            .authz
            .allowed(
                &attrs.user,
                &Access {
                    verb: "request-serviceaccounts-token-audience",
                    group: "",
                    resource: audience,
                    namespace: &attrs.namespace,
                    name: &attrs.name,
                },
            )
            .await;
        if granted {
            return Ok(());
        }
        Err(attrs.forbidden(format!(
            "audience {} not found in pod spec volume, {} is not authorized to request tokens for this audience",
            go_quote(audience),
            attrs.user.name
        )))
    }

    /// Whether `pod` asks for tokens of `audience`: a projected token with it, or a volume of
    /// a CSI driver (inline, migrated in-tree, or behind a bound claim) whose CSIDriver
    /// requests tokens for it.
    async fn pod_uses_audience(&self, pod: &Value, audience: &str) -> Result<bool> {
        let volumes = pod
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let projected = volumes.iter().any(|v| {
            v.pointer("/projected/sources")
                .and_then(Value::as_array)
                .is_some_and(|sources| {
                    sources.iter().any(|s| {
                        s.get("serviceAccountToken")
                            .is_some_and(|t| text(t, "/audience") == audience)
                    })
                })
        });
        if projected {
            return Ok(true);
        }
        let namespace = meta::namespace(pod).unwrap_or_default();
        let pod_name = meta::name(pod).unwrap_or_default();
        for volume in volumes {
            let claim = match text(volume, "/persistentVolumeClaim/claimName") {
                "" if volume.get("ephemeral").is_some_and(|e| !e.is_null()) => {
                    Some(format!("{pod_name}-{}", text(volume, "/name")))
                }
                "" => None,
                claim => Some(claim.to_owned()),
            };
            let driver = match claim {
                Some(claim) => self.claim_driver(namespace, &claim).await?,
                None => volume_driver(volume),
            };
            let Some(driver) = driver.filter(|d| !d.is_empty()) else {
                continue;
            };
            let Some(csi_driver) = self
                .cluster
                .get(("storage.k8s.io", "csidrivers"), "", &driver)
                .await?
            else {
                continue;
            };
            let requested = csi_driver
                .pointer("/spec/tokenRequests")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|t| text(t, "/audience") == audience));
            if requested {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The CSI driver of the volume bound to claim `namespace/name`, if any.
    async fn claim_driver(&self, namespace: &str, name: &str) -> Result<Option<String>> {
        let Some(claim) = self
            .cluster
            .get(("", "persistentvolumeclaims"), namespace, name)
            .await?
        else {
            return Ok(None);
        };
        let volume = text(&claim, "/spec/volumeName");
        if volume.is_empty() {
            return Ok(None);
        }
        let pv = self
            .cluster
            .get(("", "persistentvolumes"), "", volume)
            .await?;
        Ok(pv.and_then(|pv| pv.get("spec").and_then(volume_driver)))
    }
}

/// The CSI driver a volume source (a pod's volume or a persistent volume's spec) uses.
fn volume_driver(source: &Value) -> Option<String> {
    let csi = text(source, "/csi/driver");
    if !csi.is_empty() {
        return Some(csi.to_owned());
    }
    MIGRATED_DRIVERS
        .iter()
        .find(|(key, _)| source.get(*key).is_some_and(|s| !s.is_null()))
        .map(|(_, driver)| (*driver).to_owned())
}

/// Upstream's `admitPodStatus`.
fn pod_status(node: &str, attrs: &Attributes) -> Result<()> {
    if attrs.op() != Operation::Update {
        return Err(attrs.forbidden(format!(
            "unexpected operation {}",
            go_quote(attrs.op().as_str())
        )));
    }
    let old = attrs.old_object.as_ref();
    if old.map(node_name) != Some(node) {
        return Err(attrs.forbidden(format!(
            "node {} can only update pod status for pods with spec.nodeName set to itself",
            go_quote(node)
        )));
    }
    if labels(attrs.object.as_ref()) != labels(old) {
        return Err(attrs.forbidden(format!(
            "node {} cannot update labels through pod status",
            go_quote(node)
        )));
    }
    if claim_statuses(attrs.object.as_ref()) != claim_statuses(old) {
        return Err(attrs.forbidden(format!(
            "node {} cannot update resource claim statues",
            go_quote(node)
        )));
    }
    Ok(())
}

/// Upstream's `admitPVCStatus`: nothing but the status' capacity, conditions and expansion
/// bookkeeping may change.
fn claim_status(node: &str, attrs: &Attributes) -> Result<()> {
    if attrs.op() != Operation::Update {
        return Err(attrs.forbidden(format!(
            "unexpected operation {}",
            go_quote(attrs.op().as_str())
        )));
    }
    let comparable = |claim: Option<&Value>| {
        let mut claim = claim.cloned().unwrap_or(Value::Null);
        if let Some(metadata) = claim.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("resourceVersion");
            metadata.remove("managedFields");
        }
        if let Some(status) = claim.get_mut("status").and_then(Value::as_object_mut) {
            for field in [
                "capacity",
                "conditions",
                "allocatedResourceStatuses",
                "allocatedResources",
            ] {
                status.remove(field);
            }
        }
        semantic(&claim)
    };
    let (old, new) = (
        comparable(attrs.old_object.as_ref()),
        comparable(attrs.object.as_ref()),
    );
    if old == new {
        return Ok(());
    }
    let changed: Vec<String> = changed_fields(&old, &new, "");
    Err(attrs.forbidden(format!(
        "node {} is not allowed to update fields other than status.quantity and status.conditions: changed {}",
        go_quote(node),
        changed.join(", ")
    )))
}

/// The paths (`metadata.labels`) at which two objects differ, down to the first level that
/// is not an object on both sides.
fn changed_fields(old: &Value, new: &Value, prefix: &str) -> Vec<String> {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter()
                .flat_map(|k| {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    let none = Value::Null;
                    let (x, y) = (a.get(k).unwrap_or(&none), b.get(k).unwrap_or(&none));
                    if x == y {
                        Vec::new()
                    } else {
                        changed_fields(x, y, &path)
                    }
                })
                .collect()
        }
        _ => vec![prefix.to_owned()],
    }
}

/// Upstream's `admitNode`.
fn node_write(node: &str, attrs: &Attributes) -> Result<()> {
    let quoted = go_quote(node);
    if attrs.name != node {
        return Err(attrs.forbidden(format!(
            "node {quoted} is not allowed to modify node {}",
            go_quote(&attrs.name)
        )));
    }
    let new = attrs.object.as_ref();
    let config_source = |n: Option<&Value>| {
        n.and_then(|n| n.pointer("/spec/configSource"))
            .filter(|c| !c.is_null())
            .map(semantic)
    };
    match attrs.op() {
        Operation::Create => {
            if config_source(new).is_some() {
                return Err(attrs.forbidden(format!(
                    "node {quoted} is not allowed to create pods with a non-nil configSource"
                )));
            }
            let labels = labels(new);
            let forbidden = forbidden_labels(labels.keys().map(String::as_str).collect());
            if !forbidden.is_empty() {
                return Err(attrs.forbidden(format!(
                    "node {quoted} is not allowed to set the following labels: {}",
                    forbidden.join(", ")
                )));
            }
        }
        Operation::Update => {
            let old = attrs.old_object.as_ref();
            let source = config_source(new);
            if source.is_some() && source != config_source(old) {
                return Err(attrs.forbidden(format!(
                    "node {quoted} is not allowed to update configSource to a new non-nil configSource"
                )));
            }
            let taints = |n: Option<&Value>| {
                semantic(
                    n.and_then(|n| n.pointer("/spec/taints"))
                        .unwrap_or(&Value::Null),
                )
            };
            if taints(new) != taints(old) {
                return Err(
                    attrs.forbidden(format!("node {quoted} is not allowed to modify taints"))
                );
            }
            let (new_labels, old_labels) = (labels(new), labels(old));
            let forbidden = forbidden_labels(modified_labels(&new_labels, &old_labels));
            if !forbidden.is_empty() {
                return Err(attrs.forbidden(format!(
                    "is not allowed to modify labels: {}",
                    forbidden.join(", ")
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Upstream's `admitLease`.
fn lease(node: &str, attrs: &Attributes) -> Result<()> {
    if attrs.namespace != NODE_LEASE_NAMESPACE {
        return Err(attrs.forbidden(format!(
            "can only access leases in the {} system namespace",
            go_quote(NODE_LEASE_NAMESPACE)
        )));
    }
    own_name(node, attrs, "node lease")
}

/// A lease or CSINode must carry the node's name (on create, the object's).
fn own_name(node: &str, attrs: &Attributes, what: &str) -> Result<()> {
    let name = match attrs.op() {
        Operation::Create => attrs
            .object
            .as_ref()
            .and_then(meta::name)
            .unwrap_or_default(),
        _ => &attrs.name,
    };
    if name != node {
        return Err(attrs.forbidden(format!(
            "can only access {what} with the same name as the requesting node"
        )));
    }
    Ok(())
}

/// Upstream's `admitResourceSlice`: other writes are the authorizer's (it knows the stored
/// slice's node).
fn resource_slice(node: &str, attrs: &Attributes) -> Result<()> {
    let (slice, verb) = match attrs.op() {
        Operation::Create => (attrs.object.as_ref(), "create"),
        Operation::Delete => (attrs.old_object.as_ref(), "delete"),
        _ => return Ok(()),
    };
    if slice.map(node_name) != Some(node) {
        return Err(attrs.forbidden(format!(
            "can only {verb} ResourceSlice with the same NodeName as the requesting node"
        )));
    }
    Ok(())
}

/// Upstream's `admitCSR`: a node asks for certificates in its own name only.
fn csr(node: &str, attrs: &Attributes) -> Result<()> {
    let Some(request) = attrs.object.as_ref() else {
        return Ok(());
    };
    if attrs.op() != Operation::Create
        || !attrs.subresource.is_empty()
        || !NODE_SIGNERS.contains(&text(request, "/spec/signerName"))
    {
        return Ok(());
    }
    let common_name = super::certificates::read_request(request, |r| r.common_name().into_owned())
        .map_err(|e| attrs.forbidden(format!("unable to parse csr: {e}")))?;
    if common_name != format!("system:node:{node}") {
        return Err(attrs.forbidden(format!(
            "can only create a node CSR with CN=system:node:{node}"
        )));
    }
    Ok(())
}

#[async_trait]
impl Plugin for NodeRestriction {
    fn name(&self) -> &'static str {
        "NodeRestriction"
    }

    async fn admit(&self, attrs: &mut Attributes, _warnings: &Warnings) -> Result<()> {
        match attrs.op() {
            Operation::Create | Operation::Update => self.check(attrs).await,
            Operation::Delete | Operation::Connect => Ok(()),
        }
    }

    async fn validate(&self, attrs: &Attributes, _warnings: &Warnings) -> Result<()> {
        match attrs.op() {
            Operation::Delete => self.check(attrs).await,
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use rkube_api::user::{NODES_GROUP, UserInfo};
    use serde_json::json;

    use super::*;
    use crate::attributes::Gvn;
    use crate::testing::{FakeCluster, attrs};

    /// Grants exactly the `(verb, resource, name)` triples listed.
    #[derive(Debug, Default)]
    struct Grants(Vec<(&'static str, &'static str, &'static str)>);

    #[async_trait]
    impl Authorize for Grants {
        async fn allowed(&self, _: &UserInfo, a: &Access<'_>) -> bool {
            self.0.contains(&(a.verb, a.resource, a.name))
        }
    }

    fn node_user(name: &str) -> UserInfo {
        UserInfo::new(format!("system:node:{name}"), &[NODES_GROUP])
    }

    fn plugin(cluster: FakeCluster, grants: Grants) -> NodeRestriction {
        NodeRestriction::new(Arc::new(cluster), Arc::new(grants))
    }

    fn cluster() -> FakeCluster {
        let cluster = FakeCluster::default();
        cluster.put(
            ("", "nodes"),
            json!({"metadata": {"name": "node-a", "uid": "uid-a"}}),
        );
        for (name, node) in [("mine", "node-a"), ("theirs", "node-b")] {
            cluster.put(
                ("", "pods"),
                json!({"metadata": {"namespace": "ns", "name": name, "uid": format!("uid-{name}")},
                       "spec": {"nodeName": node, "volumes": [
                           {"name": "t", "projected": {"sources": [{"serviceAccountToken": {"audience": "vault", "path": "t"}}]}},
                           {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
                       ]}}),
            );
        }
        cluster.put(
            ("", "persistentvolumeclaims"),
            json!({"metadata": {"namespace": "ns", "name": "data"}, "spec": {"volumeName": "pv1"}}),
        );
        cluster.put(
            ("", "persistentvolumes"),
            json!({"metadata": {"name": "pv1"}, "spec": {"csi": {"driver": "csi.example.com"}}}),
        );
        cluster.put(
            ("storage.k8s.io", "csidrivers"),
            json!({"metadata": {"name": "csi.example.com"}, "spec": {"tokenRequests": [{"audience": "storage"}]}}),
        );
        cluster
    }

    /// `attrs` as `user` does them, with a name and a stored object.
    fn by(user: UserInfo, mut a: Attributes, name: &str, old: Option<Value>) -> Attributes {
        a.user = user;
        a.name = name.into();
        a.old_object = old;
        a
    }

    /// Runs the plugin where upstream's would, answering the refusal's message.
    async fn refusal(plugin: &NodeRestriction, mut a: Attributes) -> Option<String> {
        let warnings = Warnings::default();
        let result = match a.op() {
            Operation::Delete => plugin.validate(&a, &warnings).await,
            _ => plugin.admit(&mut a, &warnings).await,
        };
        result.err().map(|e| e.message().to_owned())
    }

    fn mirror(node: &str, uid: &str, spec: Value) -> Value {
        let mut spec = spec;
        spec["nodeName"] = node.into();
        json!({
            "metadata": {"namespace": "ns", "name": "static",
                         "annotations": {MIRROR_ANNOTATION: "h"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node,
                                              "uid": uid, "controller": true}]},
            "spec": spec,
        })
    }

    #[tokio::test]
    async fn nodes_create_only_plain_mirror_pods_of_their_own() {
        let plugin = plugin(cluster(), Grants::default());
        let create = |pod: Value| {
            by(
                node_user("node-a"),
                attrs(Operation::Create, "", "pods", "Pod", "ns", Some(pod)),
                "static",
                None,
            )
        };
        assert_eq!(
            refusal(&plugin, create(mirror("node-a", "uid-a", json!({})))).await,
            None
        );
        let cases = [
            (
                json!({"metadata": {"name": "static"}, "spec": {"nodeName": "node-a"}}),
                r#"pods "static" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "node-a" can only create mirror pods"#,
            ),
            (
                mirror("node-b", "uid-a", json!({})),
                r#"pods "static" is forbidden: node "node-a" can only create pods with spec.nodeName set to itself"#,
            ),
            (
                mirror("node-a", "other", json!({})),
                r#"pods "static" is forbidden: node node-a UID mismatch: expected other got uid-a"#,
            ),
            (
                mirror("node-a", "uid-a", json!({"serviceAccountName": "sa"})),
                r#"pods "static" is forbidden: node "node-a" can not create pods that reference a service account"#,
            ),
            (
                mirror(
                    "node-a",
                    "uid-a",
                    json!({"containers": [{"envFrom": [{"secretRef": {"name": "s"}}]}]}),
                ),
                r#"pods "static" is forbidden: node "node-a" can not create pods that reference secrets"#,
            ),
            (
                mirror(
                    "node-a",
                    "uid-a",
                    json!({"volumes": [{"name": "c", "configMap": {"name": "c"}}]}),
                ),
                r#"pods "static" is forbidden: node "node-a" can not create pods that reference configmaps"#,
            ),
            (
                mirror(
                    "node-a",
                    "uid-a",
                    json!({"volumes": [{"name": "c", "persistentVolumeClaim": {"claimName": "data"}}]}),
                ),
                r#"pods "static" is forbidden: node "node-a" can not create pods that reference persistentvolumeclaims"#,
            ),
        ];
        for (pod, want) in cases {
            assert_eq!(refusal(&plugin, create(pod)).await.as_deref(), Some(want));
        }
        let mut unowned = mirror("node-a", "uid-a", json!({}));
        unowned["metadata"]["ownerReferences"][0]["controller"] = false.into();
        assert!(refusal(&plugin, create(unowned)).await.unwrap().ends_with(
            r#"node "node-a" can only create pods with a controller owner reference set to itself"#
        ));
    }

    #[tokio::test]
    async fn nodes_delete_evict_and_report_only_their_pods() {
        let plugin = plugin(cluster(), Grants::default());
        let (mine, theirs) = (
            json!({"metadata": {"namespace": "ns", "name": "mine", "labels": {"a": "1"}}, "spec": {"nodeName": "node-a"}}),
            json!({"metadata": {"namespace": "ns", "name": "theirs"}, "spec": {"nodeName": "node-b"}}),
        );
        let a = || node_user("node-a");
        let delete = |old: &Value, name| {
            by(
                a(),
                attrs(Operation::Delete, "", "pods", "Pod", "ns", None),
                name,
                Some(old.clone()),
            )
        };
        assert_eq!(refusal(&plugin, delete(&mine, "mine")).await, None);
        assert_eq!(
            refusal(&plugin, delete(&theirs, "theirs")).await.as_deref(),
            Some(
                r#"pods "theirs" is forbidden: node "node-a" can only delete pods with spec.nodeName set to itself"#
            )
        );

        let evict = |name: &str| {
            let mut e = by(
                a(),
                attrs(
                    Operation::Create,
                    "policy",
                    "pods",
                    "Eviction",
                    "ns",
                    Some(json!({"metadata": {"name": name}})),
                ),
                name,
                None,
            );
            e.resource = Gvn::new("", "v1", "pods");
            e.subresource = "eviction".into();
            e
        };
        assert_eq!(refusal(&plugin, evict("mine")).await, None);
        assert_eq!(
            refusal(&plugin, evict("theirs")).await.as_deref(),
            Some(
                r#"pods "theirs" is forbidden: node node-a can only evict pods with spec.nodeName set to itself"#
            )
        );
        assert_eq!(
            refusal(&plugin, evict("gone")).await.as_deref(),
            Some(r#"pod "gone" not found"#)
        );

        let status = |old: &Value, new: Value, name| {
            let mut s = by(
                a(),
                attrs(Operation::Update, "", "pods", "Pod", "ns", Some(new)),
                name,
                Some(old.clone()),
            );
            s.subresource = "status".into();
            s
        };
        assert_eq!(
            refusal(&plugin, status(&mine, mine.clone(), "mine")).await,
            None
        );
        let mut relabelled = mine.clone();
        relabelled["metadata"]["labels"]["a"] = "2".into();
        assert_eq!(
            refusal(&plugin, status(&mine, relabelled, "mine"))
                .await
                .as_deref(),
            Some(
                r#"pods "mine" is forbidden: node "node-a" cannot update labels through pod status"#
            )
        );
        assert_eq!(
            refusal(&plugin, status(&theirs, theirs.clone(), "theirs"))
                .await
                .as_deref(),
            Some(
                r#"pods "theirs" is forbidden: node "node-a" can only update pod status for pods with spec.nodeName set to itself"#
            )
        );
        let update = by(
            a(),
            attrs(
                Operation::Update,
                "",
                "pods",
                "Pod",
                "ns",
                Some(mine.clone()),
            ),
            "mine",
            Some(mine.clone()),
        );
        assert_eq!(
            refusal(&plugin, update).await.as_deref(),
            Some(
                r#"pods "mine" is forbidden: unexpected operation "UPDATE", node "node-a" can only create and delete mirror pods"#
            )
        );
    }

    #[tokio::test]
    async fn nodes_write_only_their_own_node_and_labels_kubelets_own() {
        let plugin = plugin(cluster(), Grants::default());
        let node = |name: &str, labels: Value, taints: Value| json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}});
        let write = |op, new: Value, old: Option<Value>| {
            let name = meta::name(&new).unwrap_or_default().to_owned();
            by(
                node_user("node-a"),
                attrs(op, "", "nodes", "Node", "", Some(new)),
                &name,
                old,
            )
        };
        let own = node(
            "node-a",
            json!({"kubernetes.io/hostname": "a", "team": "x"}),
            json!([]),
        );
        assert_eq!(
            refusal(&plugin, write(Operation::Create, own.clone(), None)).await,
            None
        );
        assert_eq!(
            refusal(
                &plugin,
                write(
                    Operation::Update,
                    node("node-b", json!({}), json!([])),
                    None
                )
            )
            .await
            .as_deref(),
            Some(
                r#"nodes "node-b" is forbidden: node "node-a" is not allowed to modify node "node-b""#
            )
        );
        let restricted = node(
            "node-a",
            json!({"node-restriction.kubernetes.io/pool": "gpu", "x.k8s.io/y": "1", "node.kubernetes.io/ok": "1", "sub.kubelet.kubernetes.io/ok": "1"}),
            json!([]),
        );
        assert_eq!(
            refusal(&plugin, write(Operation::Create, restricted.clone(), None))
                .await
                .as_deref(),
            Some(
                r#"nodes "node-a" is forbidden: node "node-a" is not allowed to set the following labels: node-restriction.kubernetes.io/pool, x.k8s.io/y"#
            )
        );
        let mut relabelled = own.clone();
        relabelled["metadata"]["labels"]["node-restriction.kubernetes.io/pool"] = "gpu".into();
        relabelled["metadata"]["labels"]["team"] = "y".into();
        assert_eq!(
            refusal(
                &plugin,
                write(Operation::Update, relabelled, Some(own.clone()))
            )
            .await
            .as_deref(),
            Some(
                r#"nodes "node-a" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool"#
            )
        );
        // Removing one is modifying it too.
        assert!(
            refusal(
                &plugin,
                write(Operation::Update, own.clone(), Some(restricted))
            )
            .await
            .is_some()
        );
        let tainted = node(
            "node-a",
            own["metadata"]["labels"].clone(),
            json!([{"key": "k", "effect": "NoSchedule"}]),
        );
        assert_eq!(
            refusal(
                &plugin,
                write(Operation::Update, own.clone(), Some(tainted))
            )
            .await
            .as_deref(),
            Some(r#"nodes "node-a" is forbidden: node "node-a" is not allowed to modify taints"#)
        );
        // No taints and an empty list are the same.
        let untainted = node("node-a", own["metadata"]["labels"].clone(), Value::Null);
        assert_eq!(
            refusal(&plugin, write(Operation::Update, own, Some(untainted))).await,
            None
        );
    }

    #[tokio::test]
    async fn tokens_are_for_pods_of_the_node_and_audiences_they_use() {
        let plugin = plugin(
            cluster(),
            Grants(vec![(
                "request-serviceaccounts-token-audience",
                "registry",
                "sa",
            )]),
        );
        let token = |pod: &str, uid: &str, audiences: Value| {
            let request = json!({"metadata": {"name": "sa"}, "spec": {
                "audiences": audiences,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": uid}}});
            let mut a = by(
                node_user("node-a"),
                attrs(
                    Operation::Create,
                    "authentication.k8s.io",
                    "serviceaccounts",
                    "TokenRequest",
                    "ns",
                    Some(request),
                ),
                "sa",
                None,
            );
            a.resource = Gvn::new("", "v1", "serviceaccounts");
            a.subresource = "token".into();
            a
        };
        for allowed in [
            json!([]),
            json!(["vault"]),
            json!(["storage"]),
            json!(["registry"]),
        ] {
            assert_eq!(
                refusal(&plugin, token("mine", "uid-mine", allowed.clone())).await,
                None,
                "{allowed}"
            );
        }
        let refused = |want: &str| Some(format!(r#"serviceaccounts "sa" is forbidden: {want}"#));
        assert_eq!(
            refusal(&plugin, token("mine", "uid-mine", json!(["other"]))).await,
            refused(
                r#"audience "other" not found in pod spec volume, system:node:node-a is not authorized to request tokens for this audience"#
            )
        );
        assert_eq!(
            refusal(
                &plugin,
                token("mine", "uid-mine", json!(["vault", "storage"]))
            )
            .await,
            refused("node may only request 0 or 1 audiences")
        );
        assert_eq!(
            refusal(&plugin, token("theirs", "uid-theirs", json!([]))).await,
            refused("node requested token bound to a pod scheduled on a different node")
        );
        assert_eq!(
            refusal(&plugin, token("mine", "stale", json!([]))).await,
            refused(
                "the UID in the bound object reference (stale) does not match the UID in record. The object might have been deleted and then recreated"
            )
        );
        assert_eq!(
            refusal(&plugin, token("mine", "", json!([]))).await,
            refused("node requested token with a pod binding without a uid")
        );
        let mut unbound = token("mine", "uid-mine", json!([]));
        unbound.object.as_mut().unwrap()["spec"]["boundObjectRef"] = Value::Null;
        assert_eq!(
            refusal(&plugin, unbound).await,
            refused("node requested token not bound to a pod")
        );
    }

    #[tokio::test]
    async fn leases_csinodes_slices_and_claims_are_the_nodes_own() {
        let plugin = plugin(cluster(), Grants::default());
        let a = || node_user("node-a");
        let named = |name: &str| json!({"metadata": {"name": name}});
        let lease = |ns: &str, name: &str| {
            by(
                a(),
                attrs(
                    Operation::Create,
                    "coordination.k8s.io",
                    "leases",
                    "Lease",
                    ns,
                    Some(named(name)),
                ),
                name,
                None,
            )
        };
        assert_eq!(
            refusal(&plugin, lease("kube-node-lease", "node-a")).await,
            None
        );
        assert_eq!(
            refusal(&plugin, lease("kube-node-lease", "node-b"))
                .await
                .as_deref(),
            Some(
                r#"leases.coordination.k8s.io "node-b" is forbidden: can only access node lease with the same name as the requesting node"#
            )
        );
        assert_eq!(
            refusal(&plugin, lease("default", "node-a"))
                .await
                .as_deref(),
            Some(
                r#"leases.coordination.k8s.io "node-a" is forbidden: can only access leases in the "kube-node-lease" system namespace"#
            )
        );
        let csinode = by(
            a(),
            attrs(
                Operation::Update,
                "storage.k8s.io",
                "csinodes",
                "CSINode",
                "",
                Some(named("node-b")),
            ),
            "node-b",
            None,
        );
        assert!(
            refusal(&plugin, csinode)
                .await
                .unwrap()
                .ends_with("can only access CSINode with the same name as the requesting node")
        );
        let slice = |node: &str| json!({"metadata": {"name": "s"}, "spec": {"nodeName": node}});
        let create = by(
            a(),
            attrs(
                Operation::Create,
                "resource.k8s.io",
                "resourceslices",
                "ResourceSlice",
                "",
                Some(slice("node-b")),
            ),
            "s",
            None,
        );
        assert!(refusal(&plugin, create).await.unwrap().ends_with(
            "can only create ResourceSlice with the same NodeName as the requesting node"
        ));
        let delete = by(
            a(),
            attrs(
                Operation::Delete,
                "resource.k8s.io",
                "resourceslices",
                "ResourceSlice",
                "",
                None,
            ),
            "s",
            Some(slice("node-a")),
        );
        assert_eq!(refusal(&plugin, delete).await, None);

        let claim = json!({"metadata": {"namespace": "ns", "name": "data", "resourceVersion": "1"},
                           "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}});
        let status = |new: Value| {
            let mut s = by(
                a(),
                attrs(
                    Operation::Update,
                    "",
                    "persistentvolumeclaims",
                    "PersistentVolumeClaim",
                    "ns",
                    Some(new),
                ),
                "data",
                Some(claim.clone()),
            );
            s.subresource = "status".into();
            s
        };
        let mut grown = claim.clone();
        grown["status"]["capacity"]["storage"] = "2Gi".into();
        grown["metadata"]["resourceVersion"] = "".into();
        assert_eq!(refusal(&plugin, status(grown)).await, None);
        let mut relabelled = claim.clone();
        relabelled["metadata"]["labels"] = json!({"x": "y"});
        assert_eq!(
            refusal(&plugin, status(relabelled)).await.as_deref(),
            Some(
                r#"persistentvolumeclaims "data" is forbidden: node "node-a" is not allowed to update fields other than status.quantity and status.conditions: changed metadata.labels"#
            )
        );
        let spec = by(
            a(),
            attrs(
                Operation::Update,
                "",
                "persistentvolumeclaims",
                "PersistentVolumeClaim",
                "ns",
                Some(claim.clone()),
            ),
            "data",
            Some(claim.clone()),
        );
        assert!(
            refusal(&plugin, spec)
                .await
                .unwrap()
                .ends_with("may only update PVC status")
        );
    }

    #[tokio::test]
    async fn only_nodes_are_restricted_and_unnamed_nodes_refused() {
        let plugin = plugin(cluster(), Grants::default());
        let pod = json!({"metadata": {"name": "p"}, "spec": {}});
        let mut admin = attrs(
            Operation::Create,
            "",
            "pods",
            "Pod",
            "ns",
            Some(pod.clone()),
        );
        admin.user = UserInfo::new("admin", &["system:masters"]);
        assert_eq!(refusal(&plugin, admin).await, None);
        let unnamed = by(
            UserInfo::new("system:node:", &[NODES_GROUP]),
            attrs(Operation::Create, "", "pods", "Pod", "ns", Some(pod)),
            "p",
            None,
        );
        assert_eq!(
            refusal(&plugin, unnamed).await.as_deref(),
            Some(r#"pods "p" is forbidden: could not determine node from user "system:node:""#)
        );
    }

    #[tokio::test]
    async fn nodes_ask_for_kubelet_certificates_in_their_own_name_only() {
        let plugin = plugin(cluster(), Grants::default());
        let request = |cn: &str, signer: &str| {
            let csr = crate::testing::csr_with_request(signer, cn, &[]);
            by(
                node_user("node-a"),
                attrs(
                    Operation::Create,
                    "certificates.k8s.io",
                    "certificatesigningrequests",
                    "CertificateSigningRequest",
                    "",
                    Some(csr),
                ),
                "req",
                None,
            )
        };
        let kubelet = "kubernetes.io/kube-apiserver-client-kubelet";
        assert_eq!(
            refusal(&plugin, request("system:node:node-a", kubelet)).await,
            None
        );
        assert_eq!(
            refusal(
                &plugin,
                request("system:node:node-b", "kubernetes.io/kubelet-serving")
            )
            .await
            .as_deref(),
            Some(
                r#"certificatesigningrequests.certificates.k8s.io "req" is forbidden: can only create a node CSR with CN=system:node:node-a"#
            )
        );
        // Other signers are the signers' business.
        assert_eq!(
            refusal(&plugin, request("anyone", "example.com/signer")).await,
            None
        );
        let mut garbled = request("system:node:node-a", kubelet);
        garbled.object.as_mut().unwrap()["spec"]["request"] = "bm90IHBlbQ==".into();
        assert!(
            refusal(&plugin, garbled)
                .await
                .unwrap()
                .ends_with("unable to parse csr: PEM block type must be CERTIFICATE REQUEST")
        );
    }
}
