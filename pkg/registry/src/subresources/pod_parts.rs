//! What pods' `ephemeralcontainers` and `resize` subresources may change, as upstream's
//! `podEphemeralContainersStrategy` and `podResizeStrategy` decide it: the stored pod with only
//! that part taken from the request (everything else sent is dropped), defaulted, then
//! `ValidatePodEphemeralContainersUpdate` or `ValidatePodResize`.
//!
//! The write itself is the generic part write ([`crate::generic::Mode`]), so resourceVersion
//! checks, dry run and conflicts behave as for `status`.

use std::collections::HashSet;

use rkube_api::field::{FieldError, Path};
use rkube_api::k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod, PodSpec};
use serde_json::{Value, json};

use crate::Strategy;
use crate::generic::Mode;
use crate::kinds::common::decode_or_errors;
use crate::kinds::pod::{
    PodStrategy, default_container, qos_class, validate_container, validate_pod_spec,
};

/// The annotation of a kubelet's mirror of a static pod.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Fields an ephemeral container may not set, in upstream's field order (its
/// `allowedEphemeralContainerFields` lists the others).
const NOT_FOR_EPHEMERAL: &[&str] = &[
    "ports",
    "resources",
    "resizePolicy",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
];
const NOT_FOR_EPHEMERAL_MESSAGE: &str = "cannot be set for an Ephemeral Container";

/// The pod to store for a write of `mode` (ephemeral containers or resize) that sent `new`
/// over the stored `old`, and what is wrong with it.
pub(crate) fn prepare(mode: Mode, new: &Value, old: &Value) -> (Value, Vec<FieldError>) {
    let mut pod = old.clone();
    let errs = if mode == Mode::EphemeralContainers {
        take_ephemeral_containers(&mut pod, new);
        validate_ephemeral_update(&pod, old)
    } else {
        take_resources(&mut pod, new);
        validate_resize(&pod, old)
    };
    if errs.is_empty() && pod.get("spec") != old.get("spec") {
        // Upstream's `updatePodGeneration`: any spec change is a new generation.
        if let Some(g) = pod.pointer("/metadata/generation").and_then(Value::as_i64) {
            pod["metadata"]["generation"] = json!(g + 1);
        }
    }
    (pod, errs)
}

fn spec_list<'a>(pod: &'a Value, key: &str) -> &'a [Value] {
    pod.get("spec")
        .and_then(|s| s.get(key))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn set_spec_field(pod: &mut Value, key: &str, value: Option<Value>) {
    if !pod.get("spec").is_some_and(Value::is_object) {
        pod["spec"] = json!({});
    }
    let Some(spec) = pod["spec"].as_object_mut() else {
        return;
    };
    match value {
        Some(v) if !v.is_null() => {
            spec.insert(key.into(), v);
        }
        _ => {
            spec.remove(key);
        }
    }
}

/// `dropNonEphemeralContainerUpdates`, then the container defaults for the new list.
fn take_ephemeral_containers(pod: &mut Value, new: &Value) {
    let sent = new
        .get("spec")
        .and_then(|s| s.get("ephemeralContainers"))
        .cloned();
    set_spec_field(pod, "ephemeralContainers", sent);
    let host_network = pod.pointer("/spec/hostNetwork") == Some(&Value::Bool(true));
    if let Some(list) = pod
        .pointer_mut("/spec/ephemeralContainers")
        .and_then(Value::as_array_mut)
    {
        for c in list.iter_mut().filter_map(Value::as_object_mut) {
            default_container(c, host_network);
            // `resources: {}` is a regular container's default, not an ephemeral one's.
            if c.get("resources") == Some(&json!({})) {
                c.remove("resources");
            }
        }
    }
}

/// `dropNonResizeUpdates`: each named container's (and init container's) resources and
/// resize policy from the request, everything else from the stored pod; then the pod
/// defaults (requests default to limits).
fn take_resources(pod: &mut Value, new: &Value) {
    for key in ["containers", "initContainers"] {
        let sent = spec_list(new, key).to_vec();
        let Some(stored) = pod
            .pointer_mut(&format!("/spec/{key}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in &sent {
            let Some(target) = stored
                .iter_mut()
                .find(|s| s.get("name").is_some() && s.get("name") == c.get("name"))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for field in ["resources", "resizePolicy"] {
                match c.get(field).filter(|v| !v.is_null()) {
                    Some(v) => target.insert(field.into(), v.clone()),
                    None => target.remove(field),
                };
            }
        }
    }
    PodStrategy.default(pod);
}

fn mirror(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(MIRROR_ANNOTATION))
        .is_some()
}

/// `ValidatePodEphemeralContainersUpdate`.
fn validate_ephemeral_update(pod: &Value, old: &Value) -> Vec<FieldError> {
    if mirror(old) {
        return vec![FieldError::forbidden(
            &Path::none(),
            "static pods do not support ephemeral containers",
        )];
    }
    let typed = match decode_or_errors::<Pod>(pod) {
        Ok(p) => p,
        Err(errs) => return errs,
    };
    let spec = typed.spec.unwrap_or_default();
    let mut errs = validate_pod_spec(&spec, &Path::new("spec"));
    errs.extend(validate_ephemeral_containers(&spec));
    let path = Path::new("spec").child("ephemeralContainers");
    let new_list = spec_list(pod, "ephemeralContainers");
    for o in spec_list(old, "ephemeralContainers") {
        let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
        match new_list.iter().find(|n| n.get("name") == o.get("name")) {
            None => errs.push(FieldError::forbidden(
                &path,
                format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(n) if n != o => errs.push(FieldError::forbidden(
                &path,
                format!(
                    "existing ephemeral containers {name:?} may not be changed\n- {o}\n+ {n}\n"
                ),
            )),
            Some(_) => {}
        }
    }
    errs
}

/// `validateEphemeralContainers`: each is a valid container, uniquely named across all
/// containers, targets an existing regular or init container, and sets none of the fields
/// only long-running containers may have.
fn validate_ephemeral_containers(spec: &PodSpec) -> Vec<FieldError> {
    let volumes: HashSet<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    let regular: HashSet<&str> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .collect();
    let mut all = regular.clone();
    let mut errs = Vec::new();
    let list: &[EphemeralContainer] = spec.ephemeral_containers.as_deref().unwrap_or_default();
    for (i, ec) in list.iter().enumerate() {
        let path = Path::new("spec").child("ephemeralContainers").index(i);
        let mut as_container = serde_json::to_value(ec).unwrap_or(Value::Null);
        if let Some(map) = as_container.as_object_mut() {
            map.remove("targetContainerName");
        }
        if let Ok(c) = serde_json::from_value::<Container>(as_container.clone()) {
            errs.extend(validate_container(&c, &path, &volumes));
        }
        if !ec.name.is_empty() && !all.insert(ec.name.as_str()) {
            errs.push(FieldError::duplicate(&path.child("name"), ec.name.as_str()));
        }
        if let Some(target) = ec
            .target_container_name
            .as_deref()
            .filter(|t| !t.is_empty())
            && !regular.contains(target)
        {
            errs.push(FieldError::not_found(
                &path.child("targetContainerName"),
                target,
            ));
        }
        for field in NOT_FOR_EPHEMERAL {
            let set = as_container.get(*field).is_some_and(|v| match v {
                Value::Null => false,
                Value::Object(m) => !m.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            });
            if set {
                errs.push(FieldError::forbidden(
                    &path.child(field),
                    NOT_FOR_EPHEMERAL_MESSAGE,
                ));
            }
        }
        for (j, m) in ec.volume_mounts.iter().flatten().enumerate() {
            let mount = path.child("volumeMounts").index(j);
            if m.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
                errs.push(FieldError::forbidden(
                    &mount.child("subPath"),
                    NOT_FOR_EPHEMERAL_MESSAGE,
                ));
            }
            if m.sub_path_expr.as_deref().is_some_and(|s| !s.is_empty()) {
                errs.push(FieldError::forbidden(
                    &mount.child("subPathExpr"),
                    NOT_FOR_EPHEMERAL_MESSAGE,
                ));
            }
        }
        if ec.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                &path.child("restartPolicy"),
                NOT_FOR_EPHEMERAL_MESSAGE,
            ));
        }
    }
    errs
}

/// `ValidatePodResize`.
fn validate_resize(pod: &Value, old: &Value) -> Vec<FieldError> {
    let (new_typed, old_typed) = match (decode_or_errors::<Pod>(pod), decode_or_errors::<Pod>(old))
    {
        (Ok(n), Ok(o)) => (n, o),
        (Err(errs), _) | (_, Err(errs)) => return errs,
    };
    let (new_spec, old_spec) = (
        new_typed.spec.unwrap_or_default(),
        old_typed.spec.clone().unwrap_or_default(),
    );
    let pod_level = |s: &PodSpec| {
        s.resources.as_ref().is_some_and(|r| {
            r.requests.as_ref().is_some_and(|m| !m.is_empty())
                || r.limits.as_ref().is_some_and(|m| !m.is_empty())
        })
    };
    let whole = Path::none();
    if pod_level(&old_spec) || pod_level(&new_spec) {
        return vec![FieldError::forbidden(
            &whole,
            "pods with pod-level resources cannot be resized",
        )];
    }
    if mirror(old) {
        return vec![FieldError::forbidden(
            &whole,
            "static pods cannot be resized",
        )];
    }
    if old_spec.os.as_ref().is_some_and(|os| os.name == "windows") {
        return vec![FieldError::forbidden(
            &whole,
            "windows pods cannot be resized",
        )];
    }
    let spec = Path::new("spec");
    let mut errs = validate_pod_spec(&new_spec, &spec);
    let restart_never = new_spec.restart_policy.as_deref() == Some("Never");
    for (key, list) in [
        ("containers", new_spec.containers.as_slice()),
        (
            "initContainers",
            new_spec.init_containers.as_deref().unwrap_or_default(),
        ),
    ] {
        for (i, c) in list.iter().enumerate() {
            errs.extend(validate_resize_policy(
                c,
                &spec.child(key).index(i).child("resizePolicy"),
                restart_never,
            ));
        }
    }
    if qos_class(&old_spec) != qos_class(&new_spec) {
        let class = old_typed
            .status
            .as_ref()
            .and_then(|s| s.qos_class.clone())
            .unwrap_or_default();
        errs.push(FieldError::invalid(
            &spec,
            class,
            "Pod QOS Class may not change as a result of resizing",
        ));
    }
    let running = old_typed
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .find(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
    if running.is_some_and(|c| c.resources.is_none()) {
        errs.push(FieldError::forbidden(
            &spec,
            "Pod running on node without support for resize",
        ));
    }
    for (key, restartable_only) in [("containers", false), ("initContainers", true)] {
        for (i, (n, o)) in spec_list(pod, key)
            .iter()
            .zip(spec_list(old, key))
            .enumerate()
        {
            if restartable_only && o.get("restartPolicy") != Some(&json!("Always")) {
                continue;
            }
            let path = spec.child(key).index(i).child("resources");
            for part in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    let has = |c: &Value| {
                        c.pointer(&format!("/resources/{part}/{resource}"))
                            .is_some()
                    };
                    if has(o) && !has(n) {
                        errs.push(FieldError::forbidden(
                            &path.child(part).key(resource),
                            "resource removal is not supported",
                        ));
                    }
                }
            }
        }
    }
    if only_cpu_memory_undone(pod, old).as_ref() != old.get("spec") {
        errs.push(FieldError::forbidden(
            &spec,
            "only cpu and memory resources are mutable",
        ));
    }
    errs
}

/// The new spec with every allowed resize change undone (cpu and memory of containers and
/// restartable init containers, and their resize policies): equal to the old spec unless
/// something else changed.
fn only_cpu_memory_undone(pod: &Value, old: &Value) -> Option<Value> {
    let mut spec = pod.get("spec")?.clone();
    for key in ["containers", "initContainers"] {
        let olds = spec_list(old, key);
        let Some(list) = spec.get_mut(key).and_then(Value::as_array_mut) else {
            continue;
        };
        for (c, o) in list.iter_mut().zip(olds) {
            if key == "initContainers" && o.get("restartPolicy") != Some(&json!("Always")) {
                continue;
            }
            let Some(c) = c.as_object_mut() else {
                continue;
            };
            let mut resources = serde_json::Map::new();
            for part in ["limits", "requests"] {
                let Some(old_part) = o
                    .pointer(&format!("/resources/{part}"))
                    .and_then(Value::as_object)
                else {
                    continue;
                };
                let mut merged = c
                    .get("resources")
                    .and_then(|r| r.get(part))
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                for resource in ["cpu", "memory"] {
                    match old_part.get(resource) {
                        Some(v) => merged.insert(resource.into(), v.clone()),
                        None => merged.remove(resource),
                    };
                }
                resources.insert(part.into(), Value::Object(merged));
            }
            if let Some(claims) = c.get("resources").and_then(|r| r.get("claims")) {
                resources.insert("claims".into(), claims.clone());
            }
            c.insert("resources".into(), Value::Object(resources));
            match o.get("resizePolicy") {
                Some(p) => c.insert("resizePolicy".into(), p.clone()),
                None => c.remove("resizePolicy"),
            };
        }
    }
    Some(spec)
}

/// `validateResizePolicy`: cpu or memory, once each, `NotRequired` or `RestartContainer`
/// (only `NotRequired` when the pod never restarts).
fn validate_resize_policy(c: &Container, path: &Path, restart_never: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (i, p) in c.resize_policy.iter().flatten().enumerate() {
        if !seen.insert(p.resource_name.as_str()) {
            errs.push(FieldError::duplicate(
                &path.index(i),
                p.resource_name.as_str(),
            ));
        }
        match p.resource_name.as_str() {
            "cpu" | "memory" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(path, other, &["cpu", "memory"])),
        }
        match p.restart_policy.as_str() {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(
                path,
                other,
                &["NotRequired", "RestartContainer"],
            )),
        }
        if restart_never && p.restart_policy != "NotRequired" {
            errs.push(FieldError::invalid(
                path,
                p.restart_policy.as_str(),
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> Value {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "generation": 1},
            "spec": {"containers": [{"name": "app", "image": "nginx",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                              "limits": {"cpu": "200m", "memory": "128Mi"}}}]},
            "status": {"phase": "Running", "qosClass": "Burstable"},
        });
        PodStrategy.default(&mut pod);
        pod
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn ephemeral_containers_are_added_defaulted_and_nothing_else_changes() {
        let old = stored();
        let mut sent = old.clone();
        sent["spec"]["ephemeralContainers"] =
            json!([{"name": "debug", "image": "busybox", "targetContainerName": "app"}]);
        sent["spec"]["containers"][0]["image"] = json!("changed");
        sent["metadata"]["labels"] = json!({"x": "y"});
        let (pod, errs) = prepare(Mode::EphemeralContainers, &sent, &old);
        assert!(errs.is_empty(), "{:?}", messages(&errs));
        assert_eq!(pod["spec"]["containers"][0]["image"], "nginx");
        assert!(pod["metadata"].get("labels").is_none());
        let ec = &pod["spec"]["ephemeralContainers"][0];
        assert_eq!(ec["imagePullPolicy"], "Always");
        assert_eq!(ec["terminationMessagePolicy"], "File");
        assert_eq!(pod["metadata"]["generation"], 2);

        // Existing ones can neither change nor go.
        let mut changed = pod.clone();
        changed["spec"]["ephemeralContainers"][0]["image"] = json!("alpine");
        let (_, errs) = prepare(Mode::EphemeralContainers, &changed, &pod);
        assert!(
            messages(&errs)[0].starts_with(
                "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debug\" may not be changed"
            ),
            "{:?}",
            messages(&errs)
        );
        let mut removed = pod.clone();
        removed["spec"]["ephemeralContainers"] = json!([]);
        let (_, errs) = prepare(Mode::EphemeralContainers, &removed, &pod);
        assert_eq!(
            messages(&errs),
            [
                "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debug\" may not be removed\n"
            ]
        );
    }

    #[test]
    fn ephemeral_container_rules() {
        let old = stored();
        let mut sent = old.clone();
        sent["spec"]["ephemeralContainers"] = json!([{
            "name": "app", "image": "busybox", "targetContainerName": "nope",
            "ports": [{"containerPort": 80}], "restartPolicy": "Always",
        }]);
        let (_, errs) = prepare(Mode::EphemeralContainers, &sent, &old);
        assert_eq!(
            messages(&errs),
            [
                r#"spec.ephemeralContainers[0].name: Duplicate value: "app""#,
                r#"spec.ephemeralContainers[0].targetContainerName: Not found: "nope""#,
                "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].restartPolicy: Forbidden: cannot be set for an Ephemeral Container",
            ]
        );
    }

    #[test]
    fn resize_takes_only_resources() {
        let old = stored();
        let mut sent = old.clone();
        sent["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "150m", "memory": "64Mi"}, "limits": {"cpu": "300m", "memory": "128Mi"}});
        sent["spec"]["containers"][0]["image"] = json!("changed");
        let (pod, errs) = prepare(Mode::Resize, &sent, &old);
        assert!(errs.is_empty(), "{:?}", messages(&errs));
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "300m"
        );
        assert_eq!(pod["spec"]["containers"][0]["image"], "nginx");
        assert_eq!(pod["metadata"]["generation"], 2);
    }

    #[test]
    fn resize_rules() {
        let old = stored();
        let with = |resources: Value| {
            let mut sent = old.clone();
            sent["spec"]["containers"][0]["resources"] = resources;
            messages(&prepare(Mode::Resize, &sent, &old).1)
        };
        assert_eq!(
            with(json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}})),
            [
                "spec.containers[0].resources.limits[memory]: Forbidden: resource removal is not supported"
            ]
        );
        assert_eq!(
            with(
                json!({"requests": {"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "1Gi"},
                        "limits": {"cpu": "200m", "memory": "128Mi"}})
            ),
            ["spec: Forbidden: only cpu and memory resources are mutable"]
        );
        assert_eq!(
            with(json!({"requests": {"cpu": "200m", "memory": "128Mi"},
                        "limits": {"cpu": "200m", "memory": "128Mi"}})),
            [
                r#"spec: Invalid value: "Burstable": Pod QOS Class may not change as a result of resizing"#
            ]
        );
        let mut policy = old.clone();
        policy["spec"]["containers"][0]["resizePolicy"] =
            json!([{"resourceName": "gpu", "restartPolicy": "NotRequired"}]);
        assert_eq!(
            messages(&prepare(Mode::Resize, &policy, &old).1),
            [
                r#"spec.containers[0].resizePolicy: Unsupported value: "gpu": supported values: "cpu", "memory""#
            ]
        );
        let mut mirrored = old.clone();
        mirrored["metadata"]["annotations"] = json!({MIRROR_ANNOTATION: "x"});
        let errs = prepare(Mode::Resize, &mirrored, &mirrored).1;
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].body(), "Forbidden: static pods cannot be resized");
    }
}
