//! The Node authorizer's graph (upstream's `node.Graph`): which objects each node reaches
//! through the pods bound to it, kept in memory from the registry's watches of pods,
//! persistent volumes, volume attachments and resource slices.
//!
//! Upstream keeps a general directed graph and walks it. Its shape is fixed, though
//! (`secret -> pv -> pvc -> pod -> node`, everything else one step from a pod or a node), so
//! here each relation is an index and every question is a few hash lookups:
//!
//! - a bound pod names its node and the secrets, config maps, claims, resource claims and
//!   service account it uses (none for a mirror pod); `used` counts, per object, the pods of
//!   each node that use it;
//! - a persistent volume with a `claimRef` leads to that claim and from the kubelet-visible
//!   secrets it names;
//! - a volume attachment and a resource slice lead to their `spec.nodeName`.

use std::collections::{HashMap, HashSet};
use std::sync::{RwLock, RwLockReadGuard};

use rkube_api::references;
use serde_json::Value;

/// The annotation of a pod the kubelet mirrors from a static manifest.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// What the graph is fed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// `pods`.
    Pods,
    /// `persistentvolumes`.
    PersistentVolumes,
    /// `volumeattachments.storage.k8s.io`.
    VolumeAttachments,
    /// `resourceslices.resource.k8s.io`.
    ResourceSlices,
}

/// The objects the authorizer asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vertex {
    /// A secret.
    Secret,
    /// A config map.
    ConfigMap,
    /// A persistent volume claim.
    PersistentVolumeClaim,
    /// A persistent volume.
    PersistentVolume,
    /// A ResourceClaim.
    ResourceClaim,
    /// A service account.
    ServiceAccount,
    /// A pod.
    Pod,
    /// A volume attachment.
    VolumeAttachment,
    /// A resource slice.
    ResourceSlice,
}

/// The kinds a pod refers to, in its own namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Used {
    Secret,
    ConfigMap,
    Claim,
    ResourceClaim,
    ServiceAccount,
}

/// `namespace -> name -> T`: lookups by `&str` without building a key.
#[derive(Debug)]
struct ByName<T>(HashMap<String, HashMap<String, T>>);

impl<T> Default for ByName<T> {
    fn default() -> Self {
        ByName(HashMap::new())
    }
}

impl<T> ByName<T> {
    fn get(&self, namespace: &str, name: &str) -> Option<&T> {
        self.0.get(namespace)?.get(name)
    }

    fn insert(&mut self, namespace: &str, name: &str, value: T) -> Option<T> {
        self.0
            .entry(namespace.to_owned())
            .or_default()
            .insert(name.to_owned(), value)
    }

    fn remove(&mut self, namespace: &str, name: &str) -> Option<T> {
        let names = self.0.get_mut(namespace)?;
        let removed = names.remove(name);
        if names.is_empty() {
            self.0.remove(namespace);
        }
        removed
    }

    /// Changes the value at `(namespace, name)` (made with `Default`), dropping it when `change`
    /// says it is now empty.
    fn update(&mut self, namespace: &str, name: &str, change: impl FnOnce(&mut T) -> bool)
    where
        T: Default,
    {
        let names = self.0.entry(namespace.to_owned()).or_default();
        let value = names.entry(name.to_owned()).or_default();
        if change(value) {
            names.remove(name);
            if names.is_empty() {
                self.0.remove(namespace);
            }
        }
    }
}

/// A bound pod: its node and what it uses.
#[derive(Debug, PartialEq, Eq)]
struct PodEdges {
    node: String,
    uses: Vec<(Used, String)>,
}

/// A bound persistent volume: its claim and the secrets the kubelet reads for it.
#[derive(Debug, PartialEq, Eq)]
struct VolumeEdges {
    claim: (String, String),
    secrets: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct Graph {
    pods: ByName<PodEdges>,
    /// Per used object, how many pods of each node use it.
    used: HashMap<Used, ByName<HashMap<String, usize>>>,
    volumes: HashMap<String, VolumeEdges>,
    /// The volumes bound to each claim.
    claim_volumes: ByName<HashSet<String>>,
    /// The volumes naming each secret.
    secret_volumes: ByName<HashSet<String>>,
    attachments: HashMap<String, String>,
    slices: HashMap<String, String>,
}

fn key(object: &Value) -> (&str, &str) {
    (
        rkube_api::meta::namespace(object).unwrap_or_default(),
        rkube_api::meta::name(object).unwrap_or_default(),
    )
}

fn node_name(object: &Value) -> &str {
    object
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The edges of a pod, `None` when it is not bound to a node.
fn pod_edges(pod: &Value) -> Option<PodEdges> {
    let node = node_name(pod);
    if node.is_empty() {
        return None;
    }
    let mut uses: Vec<(Used, String)> = Vec::new();
    // A node creates mirror pods itself: they must never lead it anywhere else.
    let mirror = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(MIRROR_POD_ANNOTATION))
        .is_some();
    if !mirror {
        let account = pod
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let claims = references::pod_volume_claims(pod);
        let named: [(Used, Vec<&str>); 5] = [
            (Used::ServiceAccount, account.into_iter().collect()),
            (Used::Secret, references::pod_secrets(pod)),
            (Used::ConfigMap, references::pod_config_maps(pod)),
            (Used::Claim, claims.iter().map(String::as_str).collect()),
            (Used::ResourceClaim, references::pod_resource_claims(pod)),
        ];
        for (kind, names) in named {
            uses.extend(names.into_iter().map(|n| (kind, n.to_owned())));
        }
        // A pod naming one secret twice still leads to it once.
        let mut seen = HashSet::new();
        uses.retain(|u| seen.insert(u.clone()));
    }
    Some(PodEdges {
        node: node.to_owned(),
        uses,
    })
}

/// The edges of a persistent volume, `None` when it is not bound to a claim.
fn volume_edges(pv: &Value) -> Option<VolumeEdges> {
    let claim = pv.pointer("/spec/claimRef").filter(|c| c.is_object())?;
    let field = |f: &str| claim.get(f).and_then(Value::as_str).unwrap_or_default();
    let mut secrets: Vec<(String, String)> = references::volume_secrets(pv)
        .into_iter()
        .filter(|s| s.kubelet_visible)
        .map(|s| (s.namespace.to_owned(), s.name.to_owned()))
        .collect();
    secrets.sort();
    secrets.dedup();
    Some(VolumeEdges {
        claim: (field("namespace").to_owned(), field("name").to_owned()),
        secrets,
    })
}

impl Graph {
    fn add_pod(&mut self, namespace: &str, name: &str, edges: PodEdges) {
        for (kind, used) in &edges.uses {
            self.used
                .entry(*kind)
                .or_default()
                .update(namespace, used, |nodes| {
                    *nodes.entry(edges.node.clone()).or_default() += 1;
                    false
                });
        }
        self.pods.insert(namespace, name, edges);
    }

    fn remove_pod(&mut self, namespace: &str, name: &str) {
        let Some(edges) = self.pods.remove(namespace, name) else {
            return;
        };
        for (kind, used) in &edges.uses {
            if let Some(index) = self.used.get_mut(kind) {
                index.update(namespace, used, |nodes| {
                    if let Some(count) = nodes.get_mut(&edges.node) {
                        *count -= 1;
                        if *count == 0 {
                            nodes.remove(&edges.node);
                        }
                    }
                    nodes.is_empty()
                });
            }
        }
    }

    fn set_pod(&mut self, pod: &Value) {
        let (namespace, name) = key(pod);
        let edges = pod_edges(pod);
        if edges.as_ref() == self.pods.get(namespace, name) {
            return;
        }
        self.remove_pod(namespace, name);
        if let Some(edges) = edges {
            self.add_pod(namespace, name, edges);
        }
    }

    fn remove_volume(&mut self, name: &str) {
        let Some(edges) = self.volumes.remove(name) else {
            return;
        };
        let forget = |volumes: &mut HashSet<String>| {
            volumes.remove(name);
            volumes.is_empty()
        };
        self.claim_volumes
            .update(&edges.claim.0, &edges.claim.1, forget);
        for (namespace, secret) in &edges.secrets {
            self.secret_volumes.update(namespace, secret, forget);
        }
    }

    fn set_volume(&mut self, pv: &Value) {
        let name = key(pv).1;
        self.remove_volume(name);
        let Some(edges) = volume_edges(pv) else {
            return;
        };
        let remember = |volumes: &mut HashSet<String>| {
            volumes.insert(name.to_owned());
            false
        };
        self.claim_volumes
            .update(&edges.claim.0, &edges.claim.1, remember);
        for (namespace, secret) in &edges.secrets {
            self.secret_volumes.update(namespace, secret, remember);
        }
        self.volumes.insert(name.to_owned(), edges);
    }

    fn set_on_node(map: &mut HashMap<String, String>, object: &Value) {
        let (name, node) = (key(object).1, node_name(object));
        if node.is_empty() {
            map.remove(name);
        } else {
            map.insert(name.to_owned(), node.to_owned());
        }
    }

    fn set(&mut self, source: Source, object: &Value) {
        match source {
            Source::Pods => self.set_pod(object),
            Source::PersistentVolumes => self.set_volume(object),
            Source::VolumeAttachments => Self::set_on_node(&mut self.attachments, object),
            Source::ResourceSlices => Self::set_on_node(&mut self.slices, object),
        }
    }

    fn remove(&mut self, source: Source, object: &Value) {
        let (namespace, name) = key(object);
        match source {
            Source::Pods => self.remove_pod(namespace, name),
            Source::PersistentVolumes => self.remove_volume(name),
            Source::VolumeAttachments => {
                self.attachments.remove(name);
            }
            Source::ResourceSlices => {
                self.slices.remove(name);
            }
        }
    }

    fn clear(&mut self, source: Source) {
        match source {
            Source::Pods => {
                self.pods = ByName::default();
                self.used.clear();
            }
            Source::PersistentVolumes => {
                self.volumes.clear();
                self.claim_volumes = ByName::default();
                self.secret_volumes = ByName::default();
            }
            Source::VolumeAttachments => self.attachments.clear(),
            Source::ResourceSlices => self.slices.clear(),
        }
    }

    /// Whether a pod of `node` uses the `kind` object `namespace/name`.
    fn used_on(&self, kind: Used, node: &str, namespace: &str, name: &str) -> bool {
        self.used
            .get(&kind)
            .and_then(|index| index.get(namespace, name))
            .is_some_and(|nodes| nodes.contains_key(node))
    }

    /// Whether `node` reaches the persistent volume `name` (through its bound claim).
    fn volume_on(&self, node: &str, name: &str) -> bool {
        self.volumes
            .get(name)
            .is_some_and(|edges| self.used_on(Used::Claim, node, &edges.claim.0, &edges.claim.1))
    }

    fn reaches(&self, node: &str, vertex: Vertex, namespace: &str, name: &str) -> bool {
        let on = |map: &HashMap<String, String>| map.get(name).is_some_and(|n| n == node);
        match vertex {
            Vertex::Secret => {
                self.used_on(Used::Secret, node, namespace, name)
                    || self
                        .secret_volumes
                        .get(namespace, name)
                        .is_some_and(|volumes| volumes.iter().any(|v| self.volume_on(node, v)))
            }
            Vertex::ConfigMap => self.used_on(Used::ConfigMap, node, namespace, name),
            Vertex::PersistentVolumeClaim => self.used_on(Used::Claim, node, namespace, name),
            Vertex::ResourceClaim => self.used_on(Used::ResourceClaim, node, namespace, name),
            Vertex::ServiceAccount => self.used_on(Used::ServiceAccount, node, namespace, name),
            Vertex::PersistentVolume => self.volume_on(node, name),
            Vertex::Pod => self
                .pods
                .get(namespace, name)
                .is_some_and(|edges| edges.node == node),
            Vertex::VolumeAttachment => on(&self.attachments),
            Vertex::ResourceSlice => on(&self.slices),
        }
    }
}

/// The graph, shared by the authorizer (reads) and the server's feed (writes).
#[derive(Debug, Default)]
pub struct NodeGraph {
    graph: RwLock<Graph>,
}

impl NodeGraph {
    /// An empty graph.
    pub fn new() -> Self {
        NodeGraph::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Graph> {
        // A panic while writing leaves the indexes usable: at worst one object is half applied.
        self.graph
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self, change: impl FnOnce(&mut Graph)) {
        let mut graph = self
            .graph
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut graph);
    }

    /// Adds or replaces an object from `source`.
    pub fn upsert(&self, source: Source, object: &Value) {
        self.write(|g| g.set(source, object));
    }

    /// Removes an object from `source`.
    pub fn remove(&self, source: Source, object: &Value) {
        self.write(|g| g.remove(source, object));
    }

    /// Replaces everything from `source` (after a list).
    pub fn replace(&self, source: Source, objects: &[Value]) {
        self.write(|g| {
            g.clear(source);
            for object in objects {
                g.set(source, object);
            }
        });
    }

    /// Whether `node` reaches the `vertex` object `namespace/name` ("" namespace for
    /// cluster-scoped objects).
    pub fn reaches(&self, node: &str, vertex: Vertex, namespace: &str, name: &str) -> bool {
        self.read().reaches(node, vertex, namespace, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, spec: Value) -> Value {
        let mut pod = json!({"metadata": {"namespace": "ns", "name": name}, "spec": spec});
        if !node.is_empty() {
            pod["spec"]["nodeName"] = node.into();
        }
        pod
    }

    #[test]
    fn pods_lead_their_node_to_what_they_use_until_deleted() {
        let graph = NodeGraph::new();
        let spec = json!({
            "serviceAccountName": "sa",
            "volumes": [
                {"name": "s", "secret": {"secretName": "shared"}},
                {"name": "p", "projected": {"sources": [{"configMap": {"name": "cm"}}]}},
            ],
        });
        graph.upsert(Source::Pods, &pod("a", "node-a", spec.clone()));
        graph.upsert(Source::Pods, &pod("b", "node-b", spec.clone()));
        let reaches = |node, vertex, name| graph.reaches(node, vertex, "ns", name);
        for node in ["node-a", "node-b"] {
            assert!(reaches(node, Vertex::Secret, "shared"));
            assert!(reaches(node, Vertex::ConfigMap, "cm"));
            assert!(reaches(node, Vertex::ServiceAccount, "sa"));
        }
        assert!(reaches("node-a", Vertex::Pod, "a"));
        assert!(!reaches("node-a", Vertex::Pod, "b"));
        assert!(!reaches("node-c", Vertex::Secret, "shared"));
        assert!(!graph.reaches("node-a", Vertex::Secret, "other", "shared"));

        graph.remove(Source::Pods, &pod("a", "node-a", spec.clone()));
        assert!(!reaches("node-a", Vertex::Secret, "shared"));
        assert!(!reaches("node-a", Vertex::Pod, "a"));
        assert!(reaches("node-b", Vertex::Secret, "shared"));

        // Recreated under the same name on another node: the old node loses it.
        graph.upsert(Source::Pods, &pod("b", "node-c", json!({})));
        assert!(!reaches("node-b", Vertex::Secret, "shared"));
        assert!(reaches("node-c", Vertex::Pod, "b"));
        assert!(!reaches("node-c", Vertex::Secret, "shared"));
    }

    #[test]
    fn unbound_pods_lead_nowhere_and_mirror_pods_only_to_themselves() {
        let graph = NodeGraph::new();
        let spec = json!({"volumes": [{"name": "s", "secret": {"secretName": "x"}}]});
        graph.upsert(Source::Pods, &pod("pending", "", spec.clone()));
        assert!(!graph.reaches("node-a", Vertex::Secret, "ns", "x"));
        // Binding it (an update) adds its edges.
        graph.upsert(Source::Pods, &pod("pending", "node-a", spec.clone()));
        assert!(graph.reaches("node-a", Vertex::Secret, "ns", "x"));

        let mut mirror = pod("static", "node-b", spec);
        mirror["metadata"]["annotations"] = json!({MIRROR_POD_ANNOTATION: "hash"});
        graph.upsert(Source::Pods, &mirror);
        assert!(graph.reaches("node-b", Vertex::Pod, "ns", "static"));
        assert!(!graph.reaches("node-b", Vertex::Secret, "ns", "x"));
    }

    #[test]
    fn volumes_lead_through_their_bound_claim() {
        let graph = NodeGraph::new();
        let pv = json!({
            "metadata": {"name": "pv1"},
            "spec": {
                "claimRef": {"namespace": "ns", "name": "data"},
                "csi": {
                    "driver": "d",
                    "nodePublishSecretRef": {"namespace": "sys", "name": "node-secret"},
                    "controllerPublishSecretRef": {"namespace": "sys", "name": "controller-secret"},
                },
            },
        });
        graph.upsert(Source::PersistentVolumes, &pv);
        assert!(!graph.reaches("node-a", Vertex::PersistentVolume, "", "pv1"));
        let spec =
            json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]});
        graph.upsert(Source::Pods, &pod("db", "node-a", spec));
        assert!(graph.reaches("node-a", Vertex::PersistentVolumeClaim, "ns", "data"));
        assert!(graph.reaches("node-a", Vertex::PersistentVolume, "", "pv1"));
        assert!(graph.reaches("node-a", Vertex::Secret, "sys", "node-secret"));
        assert!(!graph.reaches("node-a", Vertex::Secret, "sys", "controller-secret"));
        assert!(!graph.reaches("node-b", Vertex::PersistentVolume, "", "pv1"));

        // Released: the claim no longer leads to the volume or its secrets.
        graph.upsert(
            Source::PersistentVolumes,
            &json!({"metadata": {"name": "pv1"}, "spec": {}}),
        );
        assert!(!graph.reaches("node-a", Vertex::PersistentVolume, "", "pv1"));
        assert!(!graph.reaches("node-a", Vertex::Secret, "sys", "node-secret"));
    }

    #[test]
    fn attachments_and_slices_lead_to_their_node_and_a_relist_forgets_the_rest() {
        let graph = NodeGraph::new();
        let on = |name: &str, node: &str| json!({"metadata": {"name": name}, "spec": {"nodeName": node}});
        graph.upsert(Source::VolumeAttachments, &on("va", "node-a"));
        graph.upsert(Source::ResourceSlices, &on("slice", "node-b"));
        assert!(graph.reaches("node-a", Vertex::VolumeAttachment, "", "va"));
        assert!(!graph.reaches("node-b", Vertex::VolumeAttachment, "", "va"));
        assert!(graph.reaches("node-b", Vertex::ResourceSlice, "", "slice"));
        graph.replace(Source::VolumeAttachments, &[on("other", "node-a")]);
        assert!(!graph.reaches("node-a", Vertex::VolumeAttachment, "", "va"));
        assert!(graph.reaches("node-a", Vertex::VolumeAttachment, "", "other"));
        assert!(graph.reaches("node-b", Vertex::ResourceSlice, "", "slice"));
    }
}
