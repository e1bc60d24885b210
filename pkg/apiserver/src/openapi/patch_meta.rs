//! How the common lists of built-in kinds merge: upstream's `patchStrategy`/`patchMergeKey`
//! struct tags and `listType`/`listMapKeys` markers, which the OpenAPI documents publish as
//! `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type` and
//! `x-kubernetes-list-map-keys`. k8s-openapi's schemas do not carry them, so this one table is
//! their source: the OpenAPI documents are decorated from it, and strategic merge patch reads
//! it through [`patch_meta`] to merge lists by key instead of replacing them.

use serde_json::{Map, Value, json};

/// How one list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListMeta {
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub list_type: &'static str,
    /// `x-kubernetes-list-map-keys` (for `map` lists).
    pub map_keys: &'static [&'static str],
    /// `x-kubernetes-patch-strategy` (`merge`, `merge,retainKeys`), if any.
    pub patch_strategy: Option<&'static str>,
    /// `x-kubernetes-patch-merge-key`, if any.
    pub merge_key: Option<&'static str>,
}

/// A list merged by key: `map` list type, `merge` strategy.
const fn by_key(keys: &'static [&'static str]) -> ListMeta {
    ListMeta {
        list_type: "map",
        map_keys: keys,
        patch_strategy: Some("merge"),
        merge_key: Some(keys[0]),
    }
}

/// A list replaced whole.
const ATOMIC: ListMeta = ListMeta {
    list_type: "atomic",
    map_keys: &[],
    patch_strategy: None,
    merge_key: None,
};

const CONTAINERS: ListMeta = by_key(&["name"]);
const CONDITIONS: ListMeta = by_key(&["type"]);
const VOLUMES: ListMeta = ListMeta {
    patch_strategy: Some("merge,retainKeys"),
    ..by_key(&["name"])
};
const FINALIZERS: ListMeta = ListMeta {
    list_type: "set",
    map_keys: &[],
    patch_strategy: Some("merge"),
    merge_key: None,
};

/// (schema name, field, how it merges), as upstream's types declare them.
pub static PATCH_META: &[(&str, &str, ListMeta)] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        FINALIZERS,
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        by_key(&["uid"]),
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "managedFields",
        ATOMIC,
    ),
    ("io.k8s.api.core.v1.PodSpec", "containers", CONTAINERS),
    ("io.k8s.api.core.v1.PodSpec", "initContainers", CONTAINERS),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        CONTAINERS,
    ),
    ("io.k8s.api.core.v1.PodSpec", "volumes", VOLUMES),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        by_key(&["name"]),
    ),
    ("io.k8s.api.core.v1.PodSpec", "tolerations", ATOMIC),
    ("io.k8s.api.core.v1.PodSpec", "hostAliases", by_key(&["ip"])),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        by_key(&["containerPort", "protocol"]),
    ),
    ("io.k8s.api.core.v1.Container", "env", by_key(&["name"])),
    ("io.k8s.api.core.v1.Container", "envFrom", ATOMIC),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        by_key(&["mountPath"]),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        by_key(&["devicePath"]),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        by_key(&["containerPort", "protocol"]),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        by_key(&["name"]),
    ),
    ("io.k8s.api.core.v1.EphemeralContainer", "envFrom", ATOMIC),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        by_key(&["mountPath"]),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        by_key(&["devicePath"]),
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        by_key(&["port", "protocol"]),
    ),
    ("io.k8s.api.core.v1.PodStatus", "conditions", CONDITIONS),
    ("io.k8s.api.core.v1.NodeStatus", "conditions", CONDITIONS),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        by_key(&["type"]),
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        CONDITIONS,
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        CONDITIONS,
    ),
    (
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        CONDITIONS,
    ),
    ("io.k8s.api.core.v1.ServiceStatus", "conditions", CONDITIONS),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        CONDITIONS,
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        CONDITIONS,
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        CONDITIONS,
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        CONDITIONS,
    ),
    (
        "io.k8s.api.batch.v1.JobStatus",
        "conditions",
        ListMeta {
            list_type: "atomic",
            map_keys: &[],
            ..CONDITIONS
        },
    ),
];

/// How the list field `field` of the schema named `schema` merges, when the table says.
pub fn patch_meta(schema: &str, field: &str) -> Option<&'static ListMeta> {
    PATCH_META
        .iter()
        .find(|(s, f, _)| *s == schema && *f == field)
        .map(|(_, _, meta)| meta)
}

/// Writes the table's extensions onto the property schemas in `definitions` (keyed by schema
/// name).
pub(crate) fn decorate(definitions: &mut Map<String, Value>) {
    for (schema, field, meta) in PATCH_META {
        let Some(property) = definitions
            .get_mut(*schema)
            .and_then(|d| d.pointer_mut(&format!("/properties/{field}")))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        property.insert("x-kubernetes-list-type".into(), meta.list_type.into());
        if !meta.map_keys.is_empty() {
            property.insert("x-kubernetes-list-map-keys".into(), json!(meta.map_keys));
        }
        if let Some(key) = meta.merge_key {
            property.insert("x-kubernetes-patch-merge-key".into(), key.into());
        }
        if let Some(strategy) = meta.patch_strategy {
            property.insert("x-kubernetes-patch-strategy".into(), strategy.into());
        }
    }
}
