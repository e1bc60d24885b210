//! Pods (`pkg/registry/core/pod/strategy.go`), and the pod-spec defaults and validation every
//! workload's template shares (`SetDefaults_PodSpec`, `ValidatePodSpec`).

use std::collections::{BTreeMap, HashSet};

use rkube_api::field::{FieldError, Path};
use rkube_api::k8s_openapi::api::core::v1::{Container, Pod, PodSpec, Toleration};
use rkube_api::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::{Map, Value, json};

use super::common::{
    child_map, clear_status, decode_or_errors, default_field, default_if_empty, dns_label,
    dns_subdomain, each_map, enum_value, keep_status, map_mut, range_error, selectable,
    validate_port,
};
use crate::Strategy;

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
/// Protocols of container and service ports (`supportedPortProtocols`, sorted).
pub(crate) const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// The fields a pod update may change, as upstream lists them in its error.
const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `SetDefaults_PodSpec` and the defaults of everything inside it (containers, ports, probes,
/// volumes), on a pod spec or a template's spec in JSON form.
pub(crate) fn default_pod_spec(spec: &mut Map<String, Value>) {
    default_if_empty(spec, "dnsPolicy", "ClusterFirst");
    default_if_empty(spec, "restartPolicy", "Always");
    default_field(spec, "securityContext", json!({}));
    default_field(spec, "terminationGracePeriodSeconds", 30);
    default_if_empty(spec, "schedulerName", "default-scheduler");
    let host_network = spec.get("hostNetwork") == Some(&Value::Bool(true));
    for key in ["containers", "initContainers"] {
        for c in each_map(spec, key) {
            default_container(c, host_network);
        }
    }
    for v in each_map(spec, "volumes") {
        default_volume(v);
    }
}

pub(crate) fn default_container(c: &mut Map<String, Value>, host_network: bool) {
    if c.get("imagePullPolicy")
        .is_none_or(|p| p.is_null() || p == "")
    {
        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
        let policy = if image_tag(image) == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.insert("imagePullPolicy".into(), policy.into());
    }
    default_if_empty(c, "terminationMessagePath", "/dev/termination-log");
    default_if_empty(c, "terminationMessagePolicy", "File");
    default_field(c, "resources", json!({}));
    for p in each_map(c, "ports") {
        default_if_empty(p, "protocol", "TCP");
        // On the host's network the container port is the host port.
        if host_network
            && p.get("hostPort").is_none_or(|h| h.is_null() || h == 0)
            && let Some(port) = p.get("containerPort").cloned()
        {
            p.insert("hostPort".into(), port);
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child_map(c, probe) {
            default_field(p, "timeoutSeconds", 1);
            default_field(p, "periodSeconds", 10);
            default_field(p, "successThreshold", 1);
            default_field(p, "failureThreshold", 3);
            if let Some(http) = child_map(p, "httpGet") {
                default_if_empty(http, "scheme", "HTTP");
            }
        }
    }
    for env in each_map(c, "env") {
        if let Some(field_ref) = child_map(env, "valueFrom").and_then(|v| child_map(v, "fieldRef"))
        {
            default_if_empty(field_ref, "apiVersion", "v1");
        }
    }
}

fn default_volume(v: &mut Map<String, Value>) {
    // A volume naming no source is an emptyDir (`SetDefaults_Volume`).
    if v.iter().all(|(k, val)| k == "name" || val.is_null()) {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "projected", "downwardAPI"] {
        if let Some(s) = child_map(v, source) {
            default_field(s, "defaultMode", 0o644);
        }
    }
}

/// The tag of an image reference as the pull-policy default sees it: `latest` when it names
/// neither a tag nor a digest (upstream's `ParseImageName`).
fn image_tag(image: &str) -> Option<&str> {
    if image.is_empty() {
        return None;
    }
    let (name, has_digest) = match image.split_once('@') {
        Some((name, _)) => (name, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => Some(tag),
        None if has_digest => None,
        None => Some("latest"),
    }
}

/// `IsValidPortName`: container port names (IANA service names).
pub(crate) fn port_name_errors(name: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if name.len() > 15 {
        errs.push("must be no more than 15 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.is_empty()
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)");
    }
    if name.contains("--") {
        errs.push("must not contain consecutive hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.push("must not begin or end with a hyphen");
    }
    errs
}

/// `ValidatePodSpec`: the rules clients meet most, with upstream's messages.
pub(crate) fn validate_pod_spec(spec: &PodSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut volumes = HashSet::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let p = path.child("volumes").index(i).child("name");
        if v.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else {
            errs.extend(dns_label(&v.name, &p));
        }
        if !volumes.insert(v.name.as_str()) {
            errs.push(FieldError::duplicate(&p, &v.name));
        }
    }
    if spec.containers.is_empty() {
        errs.push(FieldError::required(&path.child("containers"), ""));
    }
    let mut names = HashSet::new();
    for (key, list) in [
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
        ("containers", spec.containers.as_slice()),
    ] {
        for (i, c) in list.iter().enumerate() {
            let p = path.child(key).index(i);
            errs.extend(validate_container(c, &p, &volumes));
            if !c.name.is_empty() && !names.insert(c.name.as_str()) {
                errs.push(FieldError::duplicate(&p.child("name"), &c.name));
            }
        }
    }
    errs.extend(enum_value(
        spec.restart_policy.as_deref().unwrap_or_default(),
        RESTART_POLICIES,
        &path.child("restartPolicy"),
    ));
    errs.extend(enum_value(
        spec.dns_policy.as_deref().unwrap_or_default(),
        DNS_POLICIES,
        &path.child("dnsPolicy"),
    ));
    if let Some(ads) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&ads)
    {
        errs.push(FieldError::invalid(
            &path.child("activeDeadlineSeconds"),
            ads,
            range_error(1, i32::MAX.into()),
        ));
    }
    for (key, value) in [
        ("serviceAccountName", &spec.service_account_name),
        ("nodeName", &spec.node_name),
        ("schedulerName", &spec.scheduler_name),
        ("priorityClassName", &spec.priority_class_name),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.extend(dns_subdomain(v, &path.child(key)));
        }
    }
    errs
}

pub(crate) fn validate_container(
    c: &Container,
    path: &Path,
    volumes: &HashSet<&str>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = path.child("name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name, ""));
    } else {
        errs.extend(dns_label(&c.name, &name));
    }
    let image = c.image.as_deref().unwrap_or_default();
    if image.is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    } else if image.trim() != image {
        errs.push(FieldError::invalid(
            &path.child("image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
    errs.extend(enum_value(
        c.image_pull_policy.as_deref().unwrap_or_default(),
        PULL_POLICIES,
        &path.child("imagePullPolicy"),
    ));
    errs.extend(enum_value(
        c.termination_message_policy.as_deref().unwrap_or_default(),
        MESSAGE_POLICIES,
        &path.child("terminationMessagePolicy"),
    ));
    let mut port_names = HashSet::new();
    for (i, port) in c.ports.iter().flatten().enumerate() {
        let p = path.child("ports").index(i);
        if let Some(n) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let np = p.child("name");
            errs.extend(
                port_name_errors(n)
                    .into_iter()
                    .map(|m| FieldError::invalid(&np, n, m)),
            );
            if !port_names.insert(n) {
                errs.push(FieldError::duplicate(&np, n));
            }
        }
        errs.extend(validate_port(
            port.container_port,
            &p.child("containerPort"),
        ));
        if let Some(h) = port.host_port.filter(|h| *h != 0) {
            errs.extend(validate_port(h, &p.child("hostPort")));
        }
        errs.extend(enum_value(
            port.protocol.as_deref().unwrap_or_default(),
            PROTOCOLS,
            &p.child("protocol"),
        ));
    }
    for (i, env) in c.env.iter().flatten().enumerate() {
        if env.name.is_empty() {
            errs.push(FieldError::required(
                &path.child("env").index(i).child("name"),
                "",
            ));
        }
    }
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let p = path.child("volumeMounts").index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else if !volumes.contains(m.name.as_str()) {
            errs.push(FieldError::not_found(&p.child("name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        }
    }
    if let Some(r) = &c.resources {
        errs.extend(validate_requests_within_limits(
            r.requests.as_ref(),
            r.limits.as_ref(),
            &path.child("resources"),
        ));
    }
    errs
}

/// Requests may not exceed limits (`ValidateResourceRequirements`).
fn validate_requests_within_limits(
    requests: Option<&BTreeMap<String, Quantity>>,
    limits: Option<&BTreeMap<String, Quantity>>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (Some(requests), Some(limits)) = (requests, limits) else {
        return errs;
    };
    for (name, req) in requests {
        let Some(limit) = limits.get(name) else {
            continue;
        };
        if let (Some(r), Some(l)) = (parse_quantity(&req.0), parse_quantity(&limit.0))
            && r > l
        {
            errs.push(FieldError::invalid(
                &path.child("requests").key(name),
                req.0.as_str(),
                format!("must be less than or equal to {name} limit of {}", limit.0),
            ));
        }
    }
    errs
}

/// A resource quantity in billionths (`1Gi`, `500m`, `1e3`), exact for anything a pod spec
/// holds; `None` when malformed or too large.
pub(crate) fn parse_quantity(s: &str) -> Option<i128> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let (negative, number) = match number.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut mantissa: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        if !b.is_ascii_digit() {
            return None;
        }
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(b - b'0'))?;
    }
    let (multiplier, exp10): (i128, i64) = match suffix {
        "" => (1, 0),
        "n" => (1, -9),
        "u" => (1, -6),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        e if e.starts_with(['e', 'E']) => (1, e[1..].parse().ok()?),
        _ => return None,
    };
    let exp = exp10 + 9 - i64::try_from(frac.len()).ok()?;
    let mut v = mantissa.checked_mul(multiplier)?;
    if exp >= 0 {
        v = v.checked_mul(10i128.checked_pow(u32::try_from(exp).ok()?)?)?;
    } else {
        v /= 10i128.checked_pow(u32::try_from(-exp).ok()?)?;
    }
    Some(if negative { -v } else { v })
}

/// `qos.GetPodQOS`: BestEffort without CPU or memory requests and limits, Guaranteed when
/// every container limits both and requests equal limits, Burstable otherwise.
pub(crate) fn qos_class(spec: &PodSpec) -> &'static str {
    let mut requests: BTreeMap<String, i128> = BTreeMap::new();
    let mut limits: BTreeMap<String, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in all {
        let r = c.resources.as_ref();
        // Requests default to limits; count them so even if defaulting has not run yet.
        let mut effective = r.and_then(|r| r.limits.clone()).unwrap_or_default();
        effective.extend(r.and_then(|r| r.requests.clone()).unwrap_or_default());
        for (map, sum) in [
            (Some(&effective), &mut requests),
            (r.and_then(|r| r.limits.as_ref()), &mut limits),
        ] {
            for (name, q) in map.into_iter().flatten() {
                let v = parse_quantity(&q.0).unwrap_or_default();
                if matches!(name.as_str(), "cpu" | "memory") && v > 0 {
                    *sum.entry(name.clone()).or_default() += v;
                }
            }
        }
        let has_limit = |name: &str| {
            r.and_then(|r| r.limits.as_ref())
                .and_then(|l| l.get(name))
                .and_then(|q| parse_quantity(&q.0))
                .is_some_and(|v| v > 0)
        };
        if !(has_limit("cpu") && has_limit("memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.len() == limits.len()
        && requests.iter().all(|(k, v)| limits.get(k) == Some(v))
    {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The pod strategy.
#[derive(Debug, Clone, Copy, Default)]
pub struct PodStrategy;

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

impl Strategy for PodStrategy {
    fn default(&self, object: &mut Value) {
        let Some(spec) = map_mut(object, "spec") else {
            return;
        };
        default_pod_spec(spec);
        default_field(spec, "enableServiceLinks", true);
        // A container's requests default to its limits (`SetDefaults_Pod`).
        for key in ["containers", "initContainers"] {
            for c in each_map(spec, key) {
                let Some(res) = child_map(c, "resources") else {
                    continue;
                };
                let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
                    continue;
                };
                if let Some(requests) = super::common::ensure_map(res, "requests") {
                    for (k, v) in limits {
                        requests.entry(k).or_insert(v);
                    }
                }
            }
        }
    }

    fn prepare_for_create(&self, object: &mut Value) {
        clear_status(object);
        let spec = super::common::decode::<PodSpec>(object.get("spec").unwrap_or(&Value::Null));
        let mut status = json!({"phase": "Pending"});
        if let Ok(spec) = &spec {
            status["qosClass"] = qos_class(spec).into();
            if spec
                .scheduling_gates
                .as_ref()
                .is_some_and(|g| !g.is_empty())
            {
                status["conditions"] = json!([{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "SchedulingGated",
                    "message": "Scheduling is blocked due to non-empty scheduling gates",
                }]);
            }
        }
        if let Some(map) = object.as_object_mut() {
            map.insert("status".into(), status);
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        match decode_or_errors::<Pod>(object) {
            Ok(pod) => validate_pod_spec(&pod.spec.unwrap_or_default(), &Path::new("spec")),
            Err(errs) => errs,
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        if !errs.is_empty() {
            return errs;
        }
        let (Ok(new), Ok(old)) = (decode_or_errors::<Pod>(new), decode_or_errors::<Pod>(old))
        else {
            return errs;
        };
        errs.extend(validate_pod_spec_update(
            &new.spec.unwrap_or_default(),
            &old.spec.unwrap_or_default(),
        ));
        errs
    }

    fn has_status_subresource(&self) -> bool {
        true
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        POD_FIELDS
    }

    fn field_value(&self, object: &Value, field: &str) -> Option<String> {
        match field {
            // Upstream reads the first of `podIPs`; `podIP` is its v1 mirror.
            "status.podIP" => {
                let first = object
                    .pointer("/status/podIPs/0/ip")
                    .and_then(Value::as_str);
                let ip = first.or_else(|| object.pointer("/status/podIP").and_then(Value::as_str));
                Some(ip.unwrap_or_default().to_owned())
            }
            "spec.hostNetwork" => {
                Some((object.pointer("/spec/hostNetwork") == Some(&Value::Bool(true))).to_string())
            }
            _ => selectable(object, POD_FIELDS, field),
        }
    }

    fn default_grace_period_seconds(&self, object: &Value) -> Option<i64> {
        // `CheckGracefulDelete`: unscheduled or finished pods go at once; a negative period
        // becomes 1.
        let scheduled = object
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let phase = object.pointer("/status/phase").and_then(Value::as_str);
        if !scheduled || matches!(phase, Some("Succeeded" | "Failed")) {
            return Some(0);
        }
        let period = object
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        Some(if period < 0 { 1 } else { period })
    }
}

/// `ValidatePodUpdate`'s spec rules: only images, a shorter active deadline, added
/// tolerations, removed scheduling gates and the negative grace period fix may change.
fn validate_pod_spec_update(new: &PodSpec, old: &PodSpec) -> Vec<FieldError> {
    let spec = Path::new("spec");
    let mut errs = Vec::new();
    errs.extend(only_added_tolerations(
        new.tolerations.as_deref().unwrap_or_default(),
        old.tolerations.as_deref().unwrap_or_default(),
        &spec.child("tolerations"),
    ));
    let old_gates = old.scheduling_gates.as_deref().unwrap_or_default();
    for gate in new.scheduling_gates.iter().flatten() {
        if !old_gates.contains(gate) {
            errs.push(FieldError::forbidden(
                &spec.child("schedulingGates"),
                format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    gate.name
                ),
            ));
        }
    }
    if new == old {
        return errs;
    }
    let ads = spec.child("activeDeadlineSeconds");
    match (new.active_deadline_seconds, old.active_deadline_seconds) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(FieldError::invalid(
                &ads,
                n,
                range_error(0, i32::MAX.into()),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                &ads,
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &ads,
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    let mut munged = new.clone();
    let old_init = old.init_containers.as_deref().unwrap_or_default();
    let munged_init = munged.init_containers.iter_mut().flatten();
    for (c, o) in munged.containers.iter_mut().zip(&old.containers) {
        c.image.clone_from(&o.image);
    }
    for (c, o) in munged_init.zip(old_init) {
        c.image.clone_from(&o.image);
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    munged.tolerations.clone_from(&old.tolerations);
    munged.scheduling_gates.clone_from(&old.scheduling_gates);
    if old.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && new.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    if munged != *old {
        errs.push(FieldError::forbidden(
            &spec,
            format!(
                "pod updates may not change fields other than {UPDATABLE}\n{}",
                spec_diff(&munged, old)
            ),
        ));
    }
    errs
}

/// Which top-level spec fields an update changed, old and new, in the spirit of the diff
/// upstream appends to its error.
fn spec_diff(new: &PodSpec, old: &PodSpec) -> String {
    let (Ok(Value::Object(new)), Ok(Value::Object(old))) =
        (serde_json::to_value(new), serde_json::to_value(old))
    else {
        return String::new();
    };
    let mut keys: Vec<&String> = new.keys().chain(old.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = String::from("  v1.PodSpec{\n");
    for k in keys {
        let (n, o) = (new.get(k), old.get(k));
        if n != o {
            let show = |v: Option<&Value>| v.map_or("nil".to_owned(), Value::to_string);
            out.push_str(&format!("- \t{k}: {},\n+ \t{k}: {},\n", show(o), show(n)));
        }
    }
    out.push_str("  }\n");
    out
}

/// `validateOnlyAddedTolerations`: every old toleration must still be there (only its
/// `tolerationSeconds` may change).
fn only_added_tolerations(new: &[Toleration], old: &[Toleration], path: &Path) -> Vec<FieldError> {
    let same = |a: &Toleration, b: &Toleration| {
        a.key == b.key && a.operator == b.operator && a.value == b.value && a.effect == b.effect
    };
    let mut errs = Vec::new();
    for o in old {
        if !new.iter().any(|n| same(n, o)) {
            errs.push(FieldError::forbidden(
                path,
                "existing toleration can not be modified except its tolerationSeconds",
            ));
        }
    }
    errs
}

/// A template's `restartPolicy` must be one of `allowed` (workload controllers restrict it).
pub(crate) fn restart_policy_error(
    spec: &PodSpec,
    allowed: &[&str],
    path: &Path,
) -> Option<FieldError> {
    let policy = spec.restart_policy.as_deref().unwrap_or_default();
    (!allowed.contains(&policy)).then(|| FieldError::not_supported(path, policy, allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
    }

    fn defaulted(spec: Value) -> Value {
        let mut p = pod(spec);
        PodStrategy.default(&mut p);
        p
    }

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn pod_defaults() {
        let p = defaulted(json!({"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}],
             "resources": {"limits": {"cpu": "1"}},
             "readinessProbe": {"httpGet": {"port": 80}}},
            {"name": "b", "image": "nginx:1.27", "imagePullPolicy": "Never"},
            {"name": "c", "image": "reg:5000/x@sha256:abc"},
        ], "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}]}));
        assert_eq!(
            p["spec"],
            json!({
                "containers": [
                    {"name": "a", "image": "nginx", "imagePullPolicy": "Always",
                     "ports": [{"containerPort": 80, "protocol": "TCP"}],
                     "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}},
                     "readinessProbe": {"httpGet": {"port": 80, "scheme": "HTTP"},
                        "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                        "failureThreshold": 3},
                     "terminationMessagePath": "/dev/termination-log",
                     "terminationMessagePolicy": "File"},
                    {"name": "b", "image": "nginx:1.27", "imagePullPolicy": "Never",
                     "resources": {}, "terminationMessagePath": "/dev/termination-log",
                     "terminationMessagePolicy": "File"},
                    {"name": "c", "image": "reg:5000/x@sha256:abc",
                     "imagePullPolicy": "IfNotPresent", "resources": {},
                     "terminationMessagePath": "/dev/termination-log",
                     "terminationMessagePolicy": "File"},
                ],
                "volumes": [{"name": "v", "emptyDir": {}},
                            {"name": "s", "secret": {"secretName": "x", "defaultMode": 420}}],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30,
                "enableServiceLinks": true,
            })
        );
        assert_eq!(image_tag("nginx:1.2"), Some("1.2"));
        assert_eq!(image_tag("localhost:5000/nginx"), Some("latest"));
        assert_eq!(image_tag("nginx:latest"), Some("latest"));
    }

    #[test]
    fn pod_status_on_create() {
        let mut p = defaulted(json!({"containers": [{"name": "a", "image": "x"}]}));
        p["status"] = json!({"phase": "Running"});
        PodStrategy.prepare_for_create(&mut p);
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        // Limits alone make a Guaranteed pod, whether or not defaulting ran first.
        let mut p = pod(json!({"containers": [{"name": "a", "image": "x",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}));
        PodStrategy.prepare_for_create(&mut p);
        assert_eq!(p["status"]["qosClass"], "Guaranteed");
        let mut p = defaulted(json!({"containers": [{"name": "a", "image": "x",
            "resources": {"requests": {"cpu": "100m"}}}],
            "schedulingGates": [{"name": "g"}]}));
        PodStrategy.prepare_for_create(&mut p);
        assert_eq!(p["status"]["qosClass"], "Burstable");
        assert_eq!(p["status"]["conditions"][0]["reason"], "SchedulingGated");
    }

    #[test]
    fn pod_validation_messages() {
        let p = defaulted(json!({"containers": []}));
        assert_eq!(
            msgs(PodStrategy.validate(&p)),
            ["spec.containers: Required value"]
        );
        let p = defaulted(json!({"restartPolicy": "Sometimes", "containers": [
            {"name": "A", "image": ""},
            {"name": "b", "image": "x", "ports": [{"containerPort": 70000, "protocol": "tcp"}],
             "volumeMounts": [{"name": "nope", "mountPath": "/x"}]},
            {"name": "b", "image": "x"},
        ]}));
        assert_eq!(
            msgs(PodStrategy.validate(&p)),
            [
                r#"spec.containers[0].name: Invalid value: "A": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
                "spec.containers[0].image: Required value",
                "spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                r#"spec.containers[1].ports[0].protocol: Unsupported value: "tcp": supported values: "SCTP", "TCP", "UDP""#,
                r#"spec.containers[1].volumeMounts[0].name: Not found: "nope""#,
                r#"spec.containers[2].name: Duplicate value: "b""#,
                r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
            ]
        );
        let p = pod(json!({"containers": [{"name": "a", "image": "x",
            "ports": [{"containerPort": "80"}]}]}));
        assert_eq!(
            msgs(PodStrategy.validate(&p)),
            [
                r#"spec.containers[0].ports[0].containerPort: Invalid value: "80": invalid type: string "80", expected i32"#
            ]
        );
    }

    #[test]
    fn pod_update_rules() {
        let old = defaulted(json!({"containers": [{"name": "a", "image": "x"}],
            "activeDeadlineSeconds": 100, "tolerations": [{"key": "k", "operator": "Exists"}]}));
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = "y".into();
        new["spec"]["activeDeadlineSeconds"] = 50.into();
        new["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "j", "operator": "Exists"}));
        assert!(PodStrategy.validate_update(&new, &old).is_empty());

        let mut bad = old.clone();
        bad["spec"]["restartPolicy"] = "Never".into();
        let errs = PodStrategy.validate_update(&bad, &old);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().starts_with(
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
        ));
        assert!(errs[0].detail.contains("restartPolicy"));

        let mut longer = old.clone();
        longer["spec"]["activeDeadlineSeconds"] = 200.into();
        assert_eq!(
            msgs(PodStrategy.validate_update(&longer, &old)),
            [
                "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"
            ]
        );
        let mut removed = old.clone();
        removed["spec"]["tolerations"] = json!([]);
        assert_eq!(
            msgs(PodStrategy.validate_update(&removed, &old)),
            [
                "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
            ]
        );

        let mut with_status = new.clone();
        with_status["status"] = json!({"phase": "Running"});
        PodStrategy.prepare_for_update(&mut with_status, &json!({"status": {"phase": "Pending"}}));
        assert_eq!(with_status["status"]["phase"], "Pending");
    }

    #[test]
    fn pod_field_selectors() {
        let p = json!({"spec": {"nodeName": "n1", "restartPolicy": "Always"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}], "podIP": "10.0.0.1"}});
        let s = PodStrategy;
        assert_eq!(s.field_value(&p, "spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(
            s.field_value(&p, "status.phase").as_deref(),
            Some("Running")
        );
        assert_eq!(
            s.field_value(&p, "status.podIP").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            s.field_value(&p, "spec.hostNetwork").as_deref(),
            Some("false")
        );
        assert_eq!(s.field_value(&p, "spec.schedulerName").as_deref(), Some(""));
        assert_eq!(s.field_value(&p, "status.podIPs"), None);
        assert!(s.selectable_fields().contains(&"status.nominatedNodeName"));
    }

    #[test]
    fn pod_grace_period() {
        let s = PodStrategy;
        let running = json!({"spec": {"nodeName": "n", "terminationGracePeriodSeconds": 30},
            "status": {"phase": "Running"}});
        assert_eq!(s.default_grace_period_seconds(&running), Some(30));
        let unscheduled = json!({"spec": {"terminationGracePeriodSeconds": 30}});
        assert_eq!(s.default_grace_period_seconds(&unscheduled), Some(0));
        let done = json!({"spec": {"nodeName": "n", "terminationGracePeriodSeconds": 30},
            "status": {"phase": "Succeeded"}});
        assert_eq!(s.default_grace_period_seconds(&done), Some(0));
        let negative = json!({"spec": {"nodeName": "n", "terminationGracePeriodSeconds": -5}});
        assert_eq!(s.default_grace_period_seconds(&negative), Some(1));
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("1"), parse_quantity("1000m"));
        assert_eq!(parse_quantity("1Ki"), Some(1024 * 1_000_000_000));
        assert_eq!(parse_quantity("1.5G"), parse_quantity("1500M"));
        assert_eq!(parse_quantity("1e3"), parse_quantity("1k"));
        assert_eq!(parse_quantity("x"), None);
    }
}
