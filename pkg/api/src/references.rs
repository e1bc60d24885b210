//! The API objects a pod or a persistent volume refers to, read from their JSON form: upstream's
//! `VisitPodSecretNames`, `VisitPodConfigmapNames` and `VisitPVSecretNames`, and the claims a
//! pod uses (`persistentVolumeClaim` and ephemeral volumes, `resourceClaims`).
//!
//! What a node may read follows from these (the Node authorizer's graph), and what a node may
//! not put in the pods it creates (NodeRestriction), so both ask here.

use serde_json::Value;

/// The array at `pointer` in `object`, empty when absent.
fn items<'a>(object: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The non-empty string at `pointer` in `object`.
fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Init, regular and ephemeral containers, in upstream's order.
fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    [
        "/spec/initContainers",
        "/spec/containers",
        "/spec/ephemeralContainers",
    ]
    .into_iter()
    .flat_map(move |list| items(pod, list))
}

/// The names each container's `envFrom` entries hold at `env_from`, then its `env` entries at
/// `env`.
fn container_refs<'a>(pod: &'a Value, env_from: &str, env: &str) -> Vec<&'a str> {
    let mut names = Vec::new();
    for container in containers(pod) {
        names.extend(items(container, "/envFrom").filter_map(|e| text(e, env_from)));
        names.extend(items(container, "/env").filter_map(|e| text(e, env)));
    }
    names
}

/// The first volume source a volume has, as upstream's `switch` over the source pointers reads
/// it: `(source key, source)`.
fn source<'a>(volume: &'a Value, keys: &[&'static str]) -> Option<(&'static str, &'a Value)> {
    keys.iter()
        .find_map(|key| volume.get(*key).filter(|s| !s.is_null()).map(|s| (*key, s)))
}

/// Every secret a pod's spec names: image pull secrets, container environments and volumes
/// (upstream's `VisitPodSecretNames`), in that order, empty names skipped.
pub fn pod_secrets(pod: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = items(pod, "/spec/imagePullSecrets")
        .filter_map(|r| text(r, "/name"))
        .collect();
    names.extend(container_refs(
        pod,
        "/secretRef/name",
        "/valueFrom/secretKeyRef/name",
    ));
    const SOURCES: &[&str] = &[
        "azureFile",
        "cephfs",
        "cinder",
        "flexVolume",
        "projected",
        "rbd",
        "secret",
        "scaleIO",
        "iscsi",
        "storageos",
        "csi",
    ];
    for volume in items(pod, "/spec/volumes") {
        match source(volume, SOURCES) {
            Some(("azureFile", s)) => names.extend(text(s, "/secretName")),
            Some(("projected", s)) => {
                names.extend(items(s, "/sources").filter_map(|p| text(p, "/secret/name")));
            }
            Some(("secret", s)) => names.extend(text(s, "/secretName")),
            Some(("csi", s)) => names.extend(text(s, "/nodePublishSecretRef/name")),
            Some((_, s)) => names.extend(text(s, "/secretRef/name")),
            None => {}
        }
    }
    names
}

/// Every config map a pod's spec names: container environments, then `configMap` and
/// projected volumes (upstream's `VisitPodConfigmapNames`), empty names skipped.
pub fn pod_config_maps(pod: &Value) -> Vec<&str> {
    let mut names = container_refs(pod, "/configMapRef/name", "/valueFrom/configMapKeyRef/name");
    for volume in items(pod, "/spec/volumes") {
        match source(volume, &["projected", "configMap"]) {
            Some(("projected", s)) => {
                names.extend(items(s, "/sources").filter_map(|p| text(p, "/configMap/name")));
            }
            Some((_, s)) => names.extend(text(s, "/name")),
            None => {}
        }
    }
    names
}

/// The persistent volume claims a pod's volumes use: `persistentVolumeClaim.claimName`, and
/// `<pod>-<volume>` for an ephemeral volume (upstream's `ephemeral.VolumeClaimName`).
pub fn pod_volume_claims(pod: &Value) -> Vec<String> {
    let pod_name = text(pod, "/metadata/name").unwrap_or_default();
    items(pod, "/spec/volumes")
        .filter_map(|volume| {
            if let Some(claim) = text(volume, "/persistentVolumeClaim/claimName") {
                return Some(claim.to_owned());
            }
            volume
                .get("ephemeral")
                .filter(|e| !e.is_null())
                .map(|_| format!("{pod_name}-{}", text(volume, "/name").unwrap_or_default()))
        })
        .collect()
}

/// The ResourceClaims a pod uses (upstream's `resourceclaim.Name` over `spec.resourceClaims`):
/// a claim named outright, or the one made from a template as `status.resourceClaimStatuses`
/// records it (none yet, or none needed, when it records nothing); then the claim of extended
/// resources (`status.extendedResourceClaimStatus`).
pub fn pod_resource_claims(pod: &Value) -> Vec<&str> {
    let mut names = Vec::new();
    for claim in items(pod, "/spec/resourceClaims") {
        if let Some(name) = claim.get("resourceClaimName").and_then(Value::as_str) {
            names.push(name);
        } else if claim
            .get("resourceClaimTemplateName")
            .is_some_and(Value::is_string)
        {
            let entry = claim.get("name").and_then(Value::as_str);
            names.extend(
                items(pod, "/status/resourceClaimStatuses")
                    .find(|s| s.get("name").and_then(Value::as_str) == entry)
                    .and_then(|s| s.get("resourceClaimName").and_then(Value::as_str)),
            );
        }
    }
    names.extend(text(
        pod,
        "/status/extendedResourceClaimStatus/resourceClaimName",
    ));
    names.retain(|n| !n.is_empty());
    names
}

/// A secret a persistent volume names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeSecret<'a> {
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Whether the kubelet reads it (the controller-only CSI secrets are not).
    pub kubelet_visible: bool,
}

/// The secret a volume source's `pointer` refers to, in `default_namespace` when the reference
/// names none.
fn secret_ref<'a>(
    source: &'a Value,
    pointer: &str,
    default_namespace: &'a str,
    kubelet_visible: bool,
) -> Option<VolumeSecret<'a>> {
    let reference = source.pointer(pointer).filter(|r| !r.is_null())?;
    Some(VolumeSecret {
        namespace: text(reference, "/namespace").unwrap_or(default_namespace),
        name: text(reference, "/name")?,
        kubelet_visible,
    })
}

/// The secrets a persistent volume's source names (upstream's `VisitPVSecretNames`). Older
/// sources without a secret namespace mean the bound claim's namespace.
pub fn volume_secrets(pv: &Value) -> Vec<VolumeSecret<'_>> {
    let claim_namespace = text(pv, "/spec/claimRef/namespace").unwrap_or_default();
    const SOURCES: &[&str] = &[
        "azureFile",
        "cephfs",
        "cinder",
        "flexVolume",
        "rbd",
        "scaleIO",
        "iscsi",
        "storageos",
        "csi",
    ];
    let Some(spec) = pv.get("spec") else {
        return Vec::new();
    };
    match source(spec, SOURCES) {
        Some(("azureFile", s)) => text(s, "/secretName")
            .map(|name| VolumeSecret {
                namespace: text(s, "/secretNamespace").unwrap_or(claim_namespace),
                name,
                kubelet_visible: true,
            })
            .into_iter()
            .collect(),
        // These always carried their namespace.
        Some(("cinder" | "storageos", s)) => {
            secret_ref(s, "/secretRef", "", true).into_iter().collect()
        }
        Some(("csi", s)) => [
            ("/controllerPublishSecretRef", false),
            ("/controllerExpandSecretRef", false),
            ("/nodePublishSecretRef", true),
            ("/nodeStageSecretRef", true),
            ("/nodeExpandSecretRef", true),
        ]
        .into_iter()
        .filter_map(|(pointer, visible)| secret_ref(s, pointer, "", visible))
        .collect(),
        Some((_, s)) => secret_ref(s, "/secretRef", claim_namespace, true)
            .into_iter()
            .collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pods_secrets_and_config_maps_come_from_every_place_upstream_looks() {
        let pod = json!({
            "metadata": {"name": "web"},
            "spec": {
                "imagePullSecrets": [{"name": "pull"}, {"name": ""}],
                "initContainers": [{"envFrom": [{"secretRef": {"name": "init-env"}}]}],
                "containers": [{
                    "env": [
                        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "key", "key": "k"}}},
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm-key", "key": "k"}}},
                        {"name": "C", "value": "plain"},
                    ],
                    "envFrom": [{"configMapRef": {"name": "cm-env"}}],
                }],
                "ephemeralContainers": [{"envFrom": [{"secretRef": {"name": "debug"}}]}],
                "volumes": [
                    {"name": "s", "secret": {"secretName": "vol"}},
                    {"name": "p", "projected": {"sources": [
                        {"secret": {"name": "proj"}},
                        {"configMap": {"name": "cm-proj"}},
                        {"serviceAccountToken": {"path": "t"}},
                    ]}},
                    {"name": "c", "configMap": {"name": "cm-vol"}},
                    {"name": "r", "rbd": {"secretRef": {"name": "ceph"}}},
                    {"name": "d", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "csi"}}},
                    {"name": "a", "azureFile": {"secretName": "azure", "shareName": "s"}},
                    {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}},
                ],
            },
        });
        assert_eq!(
            pod_secrets(&pod),
            [
                "pull", "init-env", "key", "debug", "vol", "proj", "ceph", "csi", "azure"
            ]
        );
        assert_eq!(
            pod_config_maps(&pod),
            ["cm-env", "cm-key", "cm-proj", "cm-vol"]
        );
        assert_eq!(pod_volume_claims(&pod), ["data", "web-scratch"]);
    }

    #[test]
    fn resource_claims_come_from_the_spec_or_the_status_of_templated_ones() {
        let pod = json!({
            "spec": {"resourceClaims": [
                {"name": "a", "resourceClaimName": "named"},
                {"name": "b", "resourceClaimTemplateName": "t"},
                {"name": "c", "resourceClaimTemplateName": "t"},
            ]},
            "status": {
                "resourceClaimStatuses": [{"name": "b", "resourceClaimName": "made-b"}, {"name": "c"}],
                "extendedResourceClaimStatus": {"resourceClaimName": "extended"},
            },
        });
        assert_eq!(pod_resource_claims(&pod), ["named", "made-b", "extended"]);
    }

    #[test]
    fn volume_secrets_default_to_the_claims_namespace_only_for_older_sources() {
        let pv = |mut spec: Value| {
            spec["claimRef"] = json!({"namespace": "apps", "name": "data"});
            json!({ "spec": spec })
        };
        let rbd = pv(json!({"rbd": {"secretRef": {"name": "ceph"}}}));
        assert_eq!(
            volume_secrets(&rbd),
            [VolumeSecret {
                namespace: "apps",
                name: "ceph",
                kubelet_visible: true
            }]
        );
        let csi = pv(json!({"csi": {
            "controllerPublishSecretRef": {"namespace": "sys", "name": "ctl"},
            "nodeStageSecretRef": {"namespace": "sys", "name": "stage"},
        }}));
        assert_eq!(
            volume_secrets(&csi),
            [
                VolumeSecret {
                    namespace: "sys",
                    name: "ctl",
                    kubelet_visible: false
                },
                VolumeSecret {
                    namespace: "sys",
                    name: "stage",
                    kubelet_visible: true
                },
            ]
        );
        let azure = pv(json!({"azureFile": {"secretName": "az", "secretNamespace": "other"}}));
        assert_eq!(volume_secrets(&azure)[0].namespace, "other");
    }
}
