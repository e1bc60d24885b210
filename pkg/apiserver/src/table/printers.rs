//! The row functions of every printer but the pod's: one per upstream `printX`, each giving
//! all cells (wide ones included, as the API server always prints wide).

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::format::{
    access_modes, age, arr_at, at, bool_ptr, condition_true, containers, deleting,
    format_label_selector, format_labels, human_duration, int_at, int_or_string, len_at,
    list_or_unset, load_balancer, name, or, quantity, selector_string, since, str_at, timestamp,
    with_more,
};
use super::row;

/// NAME, AGE.
pub(super) fn name_age(o: &Value, now: Timestamp) -> Vec<Value> {
    row![name(o), age(o, now)]
}

/// The replica-set shaped rows (replication controllers, replica sets): DESIRED, CURRENT,
/// READY, AGE, then CONTAINERS, IMAGES, SELECTOR.
fn replicas_row(o: &Value, now: Timestamp, selector: String) -> Vec<Value> {
    let (names, images) = containers(at(o, &["spec", "template", "spec"]));
    row![
        name(o),
        int_at(o, &["spec", "replicas"]),
        int_at(o, &["status", "replicas"]),
        int_at(o, &["status", "readyReplicas"]),
        age(o, now),
        names,
        images,
        selector,
    ]
}

pub(super) fn replication_controller(o: &Value, now: Timestamp) -> Vec<Value> {
    replicas_row(o, now, format_labels(at(o, &["spec", "selector"])))
}

pub(super) fn replica_set(o: &Value, now: Timestamp) -> Vec<Value> {
    replicas_row(o, now, format_label_selector(at(o, &["spec", "selector"])))
}

pub(super) fn pod_template(o: &Value, _now: Timestamp) -> Vec<Value> {
    let template = at(o, &["template"]);
    let (names, images) = containers(at(template, &["spec"]));
    row![
        name(o),
        names,
        images,
        format_labels(at(template, &["metadata", "labels"])),
    ]
}

pub(super) fn pod_disruption_budget(o: &Value, now: Timestamp) -> Vec<Value> {
    let bound = |field| match at(o, &["spec", field]) {
        Value::Null => "N/A".to_owned(),
        v => int_or_string(v),
    };
    row![
        name(o),
        bound("minAvailable"),
        bound("maxUnavailable"),
        int_at(o, &["status", "disruptionsAllowed"]),
        age(o, now),
    ]
}

pub(super) fn daemon_set(o: &Value, now: Timestamp) -> Vec<Value> {
    let pod_spec = at(o, &["spec", "template", "spec"]);
    let (names, images) = containers(pod_spec);
    let status = |field| int_at(o, &["status", field]);
    row![
        name(o),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        format_labels(at(pod_spec, &["nodeSelector"])),
        age(o, now),
        names,
        images,
        format_label_selector(at(o, &["spec", "selector"])),
    ]
}

pub(super) fn stateful_set(o: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = containers(at(o, &["spec", "template", "spec"]));
    row![
        name(o),
        format!(
            "{}/{}",
            int_at(o, &["status", "readyReplicas"]),
            int_at(o, &["spec", "replicas"])
        ),
        age(o, now),
        names,
        images,
    ]
}

pub(super) fn deployment(o: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = containers(at(o, &["spec", "template", "spec"]));
    row![
        name(o),
        format!(
            "{}/{}",
            int_at(o, &["status", "readyReplicas"]),
            int_at(o, &["spec", "replicas"])
        ),
        int_at(o, &["status", "updatedReplicas"]),
        int_at(o, &["status", "availableReplicas"]),
        age(o, now),
        names,
        images,
        selector_string(at(o, &["spec", "selector"])),
    ]
}

pub(super) fn controller_revision(o: &Value, now: Timestamp) -> Vec<Value> {
    let controller = arr_at(o, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| at(r, &["controller"]).as_bool() == Some(true))
        .map_or_else(
            || "<none>".to_owned(),
            |r| {
                let kind = str_at(r, &["kind"]);
                // apiVersion is `group/version`, or just `version` for the core group.
                let group = str_at(r, &["apiVersion"])
                    .rsplit_once('/')
                    .map_or("", |(g, _)| g);
                let group_kind = match (kind, group) {
                    ("", "") => return str_at(r, &["name"]).to_owned(),
                    (kind, "") => kind.to_owned(),
                    (kind, group) => format!("{kind}.{group}"),
                };
                format!("{}/{}", group_kind.to_lowercase(), str_at(r, &["name"]))
            },
        );
    row![name(o), controller, int_at(o, &["revision"]), age(o, now)]
}

pub(super) fn job(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    let status = at(o, &["status"]);
    let succeeded = int_at(status, &["succeeded"]);
    let completions = match at(spec, &["completions"]).as_i64() {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int_at(spec, &["parallelism"]) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        timestamp(at(status, &["startTime"])),
        timestamp(at(status, &["completionTime"])),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.duration_since(start)),
        (Some(start), Some(end)) => human_duration(end.duration_since(start)),
    };
    let conditions = arr_at(status, &["conditions"]);
    let state = if condition_true(conditions, "Complete") {
        "Complete"
    } else if condition_true(conditions, "Failed") {
        "Failed"
    } else if deleting(o) {
        "Terminating"
    } else if condition_true(conditions, "Suspended") {
        "Suspended"
    } else if condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(at(spec, &["template", "spec"]));
    row![
        name(o),
        state,
        completions,
        duration,
        age(o, now),
        names,
        images,
        format_label_selector(at(spec, &["selector"])),
    ]
}

pub(super) fn cron_job(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    let last_schedule = match at(o, &["status", "lastScheduleTime"]) {
        Value::Null => "<none>".to_owned(),
        t => since(t, now),
    };
    let job_spec = at(spec, &["jobTemplate", "spec"]);
    let (names, images) = containers(at(job_spec, &["template", "spec"]));
    row![
        name(o),
        str_at(spec, &["schedule"]),
        or(spec, &["timeZone"], "<none>"),
        bool_ptr(at(spec, &["suspend"])),
        len_at(o, &["status", "active"]),
        last_schedule,
        age(o, now),
        names,
        images,
        format_label_selector(at(job_spec, &["selector"])),
    ]
}

/// `getServiceExternalIP` (wide, so load balancer addresses are not clipped).
fn service_external_ip(spec: &Value, status: &Value) -> String {
    let external: Vec<&str> = arr_at(spec, &["externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(spec, &["type"]) {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_owned(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let lb = load_balancer(at(status, &["loadBalancer"]));
            match (lb.is_empty(), external.is_empty()) {
                (true, true) => "<pending>".to_owned(),
                (false, true) => lb,
                (true, false) => external.join(","),
                (false, false) => format!("{lb},{}", external.join(",")),
            }
        }
        "ExternalName" => str_at(spec, &["externalName"]).to_owned(),
        _ => "<unknown>".to_owned(),
    }
}

pub(super) fn service(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    let ports: Vec<String> = arr_at(spec, &["ports"])
        .iter()
        .map(|p| {
            let (port, protocol) = (int_at(p, &["port"]), str_at(p, &["protocol"]));
            match int_at(p, &["nodePort"]) {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    row![
        name(o),
        str_at(spec, &["type"]),
        arr_at(spec, &["clusterIPs"])
            .first()
            .and_then(Value::as_str)
            .unwrap_or("<none>"),
        service_external_ip(spec, at(o, &["status"])),
        if ports.is_empty() {
            "<none>".to_owned()
        } else {
            ports.join(",")
        },
        age(o, now),
        format_labels(at(spec, &["selector"])),
    ]
}

/// `formatEndpoints`: up to three `ip:port` pairs (bare IPs for port-less subsets).
fn format_endpoints(subsets: &[Value]) -> String {
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    let mut list = Vec::new();
    for subset in subsets {
        let addresses: Vec<&str> = arr_at(subset, &["addresses"])
            .iter()
            .map(|a| str_at(a, &["ip"]))
            .collect();
        let ports = arr_at(subset, &["ports"]);
        if ports.is_empty() {
            list.extend(addresses.iter().map(|ip| (*ip).to_owned()));
            continue;
        }
        for port in ports {
            let port = int_at(port, &["port"]);
            list.extend(addresses.iter().map(|ip| {
                if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                }
            }));
        }
    }
    with_more(&list, 3, ",")
}

pub(super) fn endpoints(o: &Value, now: Timestamp) -> Vec<Value> {
    row![
        name(o),
        format_endpoints(arr_at(o, &["subsets"])),
        age(o, now)
    ]
}

pub(super) fn endpoint_slice(o: &Value, now: Timestamp) -> Vec<Value> {
    let ports: Vec<String> = arr_at(o, &["ports"])
        .iter()
        .map(|p| match at(p, &["port"]).as_i64() {
            Some(port) => port.to_string(),
            None => at(p, &["name"]).as_str().unwrap_or("*").to_owned(),
        })
        .collect();
    let addresses: Vec<String> = arr_at(o, &["endpoints"])
        .iter()
        .flat_map(|e| arr_at(e, &["addresses"]))
        .map(|a| a.as_str().unwrap_or("").to_owned())
        .collect();
    row![
        name(o),
        str_at(o, &["addressType"]),
        list_or_unset(&ports),
        list_or_unset(&addresses),
        age(o, now),
    ]
}

pub(super) fn ingress(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    let rules = arr_at(spec, &["rules"]);
    // `formatHosts`: up to three hosts; once three are listed, any further rule counts as
    // "more" (upstream subtracts three from the rule count, hosts or not).
    let (mut hosts, mut more) = (Vec::new(), false);
    for rule in rules {
        more |= hosts.len() == 3;
        match str_at(rule, &["host"]) {
            "" => {}
            _ if more => {}
            host => hosts.push(host),
        }
    }
    let hosts = match (hosts.is_empty(), more) {
        (true, _) => "*".to_owned(),
        (false, true) => format!("{} + {} more...", hosts.join(","), rules.len() - 3),
        (false, false) => hosts.join(","),
    };
    row![
        name(o),
        or(spec, &["ingressClassName"], "<none>"),
        hosts,
        load_balancer(at(o, &["status", "loadBalancer"])),
        if arr_at(spec, &["tls"]).is_empty() {
            "80"
        } else {
            "80, 443"
        },
        age(o, now),
    ]
}

pub(super) fn ingress_class(o: &Value, now: Timestamp) -> Vec<Value> {
    let parameters = match at(o, &["spec", "parameters"]) {
        Value::Null => "<none>".to_owned(),
        p => {
            let kind = match at(p, &["apiGroup"]).as_str() {
                Some(group) => format!("{}.{group}", str_at(p, &["kind"])),
                None => str_at(p, &["kind"]).to_owned(),
            };
            format!("{kind}/{}", str_at(p, &["name"]))
        }
    };
    row![
        name(o),
        str_at(o, &["spec", "controller"]),
        parameters,
        age(o, now)
    ]
}

pub(super) fn network_policy(o: &Value, now: Timestamp) -> Vec<Value> {
    let selector = match at(o, &["spec", "podSelector"]) {
        // The field is a non-pointer struct upstream: absent means the empty selector.
        Value::Null => "<none>".to_owned(),
        s => format_label_selector(s),
    };
    row![name(o), selector, age(o, now)]
}

pub(super) fn node(o: &Value, now: Timestamp) -> Vec<Value> {
    let status = at(o, &["status"]);
    // The last Ready condition wins, as upstream indexes conditions by type.
    let ready = arr_at(status, &["conditions"])
        .iter()
        .rfind(|c| str_at(c, &["type"]) == "Ready");
    let mut state = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if at(o, &["spec", "unschedulable"]).as_bool() == Some(true) {
        state.push("SchedulingDisabled");
    }
    let roles: BTreeSet<&str> = at(o, &["metadata", "labels"])
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) => Some(role),
            None if k == "kubernetes.io/role" => v.as_str(),
            None => None,
        })
        .filter(|role| !role.is_empty())
        .collect();
    let address = |type_| {
        arr_at(status, &["addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == type_)
            .map_or("<none>", |a| str_at(a, &["address"]))
    };
    let info = at(status, &["nodeInfo"]);
    row![
        name(o),
        state.join(","),
        if roles.is_empty() {
            "<none>".to_owned()
        } else {
            roles.into_iter().collect::<Vec<_>>().join(",")
        },
        age(o, now),
        str_at(info, &["kubeletVersion"]),
        address("InternalIP"),
        address("ExternalIP"),
        or(info, &["osImage"], "<unknown>"),
        or(info, &["kernelVersion"], "<unknown>"),
        or(info, &["containerRuntimeVersion"], "<unknown>"),
    ]
}

/// Where an event's fields live: `v1` events and `events.k8s.io/v1` events name them
/// differently.
pub(super) struct EventFields {
    first_timestamp: &'static str,
    last_timestamp: &'static str,
    count: &'static str,
    regarding: &'static str,
    source: &'static str,
    reporting_controller: &'static str,
    message: &'static str,
}

/// Core `v1` events.
pub(super) const CORE_EVENT: EventFields = EventFields {
    first_timestamp: "firstTimestamp",
    last_timestamp: "lastTimestamp",
    count: "count",
    regarding: "involvedObject",
    source: "source",
    reporting_controller: "reportingComponent",
    message: "message",
};

/// `events.k8s.io/v1` events.
pub(super) const EVENTS_API_EVENT: EventFields = EventFields {
    first_timestamp: "deprecatedFirstTimestamp",
    last_timestamp: "deprecatedLastTimestamp",
    count: "deprecatedCount",
    regarding: "regarding",
    source: "deprecatedSource",
    reporting_controller: "reportingController",
    message: "note",
};

pub(super) fn event(o: &Value, now: Timestamp, f: &EventFields) -> Vec<Value> {
    let first = match timestamp(at(o, &[f.first_timestamp])) {
        Some(_) => since(at(o, &[f.first_timestamp]), now),
        None => since(at(o, &["eventTime"]), now),
    };
    let mut last = match timestamp(at(o, &[f.last_timestamp])) {
        Some(_) => since(at(o, &[f.last_timestamp]), now),
        None => first.clone(),
    };
    let series = at(o, &["series"]);
    let count = if series.is_null() {
        // Singleton events of the new API carry no count.
        match int_at(o, &[f.count]) {
            0 => 1,
            c => c,
        }
    } else {
        last = since(at(series, &["lastObservedTime"]), now);
        int_at(series, &["count"])
    };
    let regarding = at(o, &[f.regarding]);
    let kind = str_at(regarding, &["kind"]).to_lowercase();
    let target = match str_at(regarding, &["name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = or(
        o,
        &[f.source, "component"],
        str_at(o, &[f.reporting_controller]),
    );
    let host = or(o, &[f.source, "host"], str_at(o, &["reportingInstance"]));
    let source = if host.is_empty() {
        component.to_owned()
    } else {
        format!("{component}, {host}")
    };
    row![
        last,
        str_at(o, &["type"]),
        str_at(o, &["reason"]),
        target,
        str_at(regarding, &["fieldPath"]),
        source,
        str_at(o, &[f.message]).trim(),
        first,
        count,
        name(o),
    ]
}

pub(super) fn namespace(o: &Value, now: Timestamp) -> Vec<Value> {
    row![name(o), str_at(o, &["status", "phase"]), age(o, now)]
}

pub(super) fn secret(o: &Value, now: Timestamp) -> Vec<Value> {
    row![
        name(o),
        str_at(o, &["type"]),
        len_at(o, &["data"]),
        age(o, now)
    ]
}

pub(super) fn service_account(o: &Value, now: Timestamp) -> Vec<Value> {
    row![name(o), len_at(o, &["secrets"]), age(o, now)]
}

pub(super) fn config_map(o: &Value, now: Timestamp) -> Vec<Value> {
    row![
        name(o),
        len_at(o, &["data"]) + len_at(o, &["binaryData"]),
        age(o, now)
    ]
}

/// The storage class of a volume or claim: the beta annotation wins over the field.
fn volume_class(o: &Value) -> &str {
    or(
        o,
        &[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ],
        str_at(o, &["spec", "storageClassName"]),
    )
}

pub(super) fn persistent_volume(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    let claim = match at(spec, &["claimRef"]) {
        Value::Null => String::new(),
        r => format!("{}/{}", str_at(r, &["namespace"]), str_at(r, &["name"])),
    };
    let phase = if deleting(o) {
        "Terminating"
    } else {
        str_at(o, &["status", "phase"])
    };
    row![
        name(o),
        quantity(at(spec, &["capacity", "storage"]), "0"),
        access_modes(at(spec, &["accessModes"])),
        str_at(spec, &["persistentVolumeReclaimPolicy"]),
        phase,
        claim,
        volume_class(o),
        or(spec, &["volumeAttributesClassName"], "<unset>"),
        str_at(o, &["status", "reason"]),
        age(o, now),
        or(spec, &["volumeMode"], "<unset>"),
    ]
}

pub(super) fn persistent_volume_claim(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    let status = at(o, &["status"]);
    let phase = if deleting(o) {
        "Terminating"
    } else {
        str_at(status, &["phase"])
    };
    let volume = str_at(spec, &["volumeName"]);
    // Capacity and access modes are only meaningful once the claim is bound to a volume.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(status, &["capacity", "storage"]), "0"),
            access_modes(at(status, &["accessModes"])),
        )
    };
    row![
        name(o),
        phase,
        volume,
        capacity,
        modes,
        volume_class(o),
        or(spec, &["volumeAttributesClassName"], "<unset>"),
        age(o, now),
        or(spec, &["volumeMode"], "<unset>"),
    ]
}

pub(super) fn component_status(o: &Value, _now: Timestamp) -> Vec<Value> {
    let healthy = arr_at(o, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        None => ("Unknown", "", ""),
        Some(c) => (
            if str_at(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            str_at(c, &["message"]),
            str_at(c, &["error"]),
        ),
    };
    row![name(o), status, message, error]
}

/// One HPA metric as `current/target` (`formatHPAMetrics`); `status` is the metric's entry
/// in `status.currentMetrics`, `null` when there is none yet.
fn hpa_metric(spec: &Value, status: &Value) -> String {
    let type_ = str_at(spec, &["type"]);
    let source = match type_ {
        "External" => "external",
        "Pods" => "pods",
        "Object" => "object",
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        _ => return "<unknown type>".to_owned(),
    };
    let spec = at(spec, &[source]);
    let target = at(spec, &["target"]);
    let status = at(status, &[source]);
    let current = |field| match at(status, &["current", field]) {
        Value::Null if status.is_null() => "<unknown>".to_owned(),
        v => quantity(v, "<nil>"),
    };
    let average = at(target, &["averageValue"]);
    match type_ {
        "Pods" => format!("{}/{}", current("averageValue"), quantity(average, "<nil>")),
        "External" | "Object" if !average.is_null() => {
            let current = match at(status, &["current", "averageValue"]) {
                Value::Null => "<unknown>".to_owned(),
                v => quantity(v, "<nil>"),
            };
            format!("{current}/{} (avg)", quantity(average, "<nil>"))
        }
        "External" | "Object" => format!(
            "{}/{}",
            current("value"),
            quantity(at(target, &["value"]), "<nil>")
        ),
        _ => {
            let resource = str_at(spec, &["name"]);
            if !average.is_null() {
                return format!(
                    "{resource}: {}/{}",
                    current("averageValue"),
                    quantity(average, "<nil>")
                );
            }
            let percent = |v: &Value| v.as_i64().map(|p| format!("{p}%"));
            let current = percent(at(status, &["current", "averageUtilization"]))
                .unwrap_or_else(|| "<unknown>".to_owned());
            let target =
                percent(at(target, &["averageUtilization"])).unwrap_or_else(|| "<auto>".to_owned());
            format!("{resource}: {current}/{target}")
        }
    }
}

pub(super) fn horizontal_pod_autoscaler(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    let status = at(o, &["status"]);
    let targets = if let Some(target) = at(spec, &["targetCPUUtilizationPercentage"]).as_i64() {
        // autoscaling/v1 shape: one CPU utilization target.
        let current = at(status, &["currentCPUUtilizationPercentage"])
            .as_i64()
            .map_or_else(|| "<unknown>".to_owned(), |c| format!("{c}%"));
        format!("cpu: {current}/{target}%")
    } else {
        let specs = arr_at(spec, &["metrics"]);
        let statuses = arr_at(status, &["currentMetrics"]);
        let list: Vec<String> = specs
            .iter()
            .enumerate()
            .map(|(i, m)| hpa_metric(m, statuses.get(i).unwrap_or(&Value::Null)))
            .collect();
        if list.is_empty() {
            "<none>".to_owned()
        } else {
            with_more(&list, 2, ", ")
        }
    };
    let reference = at(spec, &["scaleTargetRef"]);
    row![
        name(o),
        format!(
            "{}/{}",
            str_at(reference, &["kind"]),
            str_at(reference, &["name"])
        ),
        targets,
        at(spec, &["minReplicas"])
            .as_i64()
            .map_or_else(|| "<unset>".to_owned(), |m| m.to_string()),
        int_at(spec, &["maxReplicas"]),
        int_at(status, &["currentReplicas"]),
        age(o, now),
    ]
}

/// Rows of role bindings and cluster role bindings: ROLE, AGE, USERS, GROUPS,
/// SERVICEACCOUNTS.
pub(super) fn role_binding(o: &Value, now: Timestamp) -> Vec<Value> {
    let subjects = arr_at(o, &["subjects"]);
    let of_kind = |kind: &str| {
        subjects
            .iter()
            .filter(|s| str_at(s, &["kind"]) == kind)
            .map(|s| match kind {
                "ServiceAccount" => {
                    format!("{}/{}", str_at(s, &["namespace"]), str_at(s, &["name"]))
                }
                _ => str_at(s, &["name"]).to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    row![
        name(o),
        format!(
            "{}/{}",
            str_at(o, &["roleRef", "kind"]),
            str_at(o, &["roleRef", "name"])
        ),
        age(o, now),
        of_kind("User"),
        of_kind("Group"),
        of_kind("ServiceAccount"),
    ]
}

pub(super) fn certificate_signing_request(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    let conditions = arr_at(o, &["status", "conditions"]);
    let has = |t: &str| conditions.iter().any(|c| str_at(c, &["type"]) == t);
    // Upstream's precedence: Denied over Approved over Pending, then Failed and Issued.
    let mut condition = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_owned();
    if has("Failed") {
        condition.push_str(",Failed");
    }
    if !str_at(o, &["status", "certificate"]).is_empty() {
        condition.push_str(",Issued");
    }
    let requested = at(spec, &["expirationSeconds"]).as_i64().map_or_else(
        || "<none>".to_owned(),
        |s| human_duration(SignedDuration::from_secs(s)),
    );
    row![
        name(o),
        age(o, now),
        or(spec, &["signerName"], "<none>"),
        str_at(spec, &["username"]),
        requested,
        condition,
    ]
}

pub(super) fn lease(o: &Value, now: Timestamp) -> Vec<Value> {
    row![name(o), str_at(o, &["spec", "holderIdentity"]), age(o, now)]
}

/// The name with ` (default)` when `annotation` marks the class as the default.
fn default_class_name(o: &Value, annotations: &[&str]) -> String {
    let is_default = annotations
        .iter()
        .any(|a| str_at(o, &["metadata", "annotations", a]) == "true");
    if is_default {
        format!("{} (default)", name(o))
    } else {
        name(o).to_owned()
    }
}

pub(super) fn storage_class(o: &Value, now: Timestamp) -> Vec<Value> {
    row![
        default_class_name(
            o,
            &[
                "storageclass.kubernetes.io/is-default-class",
                "storageclass.beta.kubernetes.io/is-default-class",
            ],
        ),
        str_at(o, &["provisioner"]),
        or(o, &["reclaimPolicy"], "Delete"),
        or(o, &["volumeBindingMode"], "Immediate"),
        at(o, &["allowVolumeExpansion"]).as_bool().unwrap_or(false),
        age(o, now),
    ]
}

pub(super) fn volume_attributes_class(o: &Value, now: Timestamp) -> Vec<Value> {
    row![
        default_class_name(
            o,
            &["volumeattributesclass.alpha.kubernetes.io/is-default-class"]
        ),
        str_at(o, &["driverName"]),
        age(o, now),
    ]
}

pub(super) fn resource_quota(o: &Value, now: Timestamp) -> Vec<Value> {
    let status = at(o, &["status"]);
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    let mut hard: Vec<(&String, &Value)> = at(status, &["hard"])
        .as_object()
        .into_iter()
        .flatten()
        .collect();
    hard.sort_by_key(|(k, _)| *k);
    for (resource, hard) in hard {
        let used = quantity(at(status, &["used", resource]), "0");
        let entry = format!("{resource}: {used}/{}", quantity(hard, "0"));
        // `limits.cpu` and friends go to the LIMIT column, everything else to REQUEST.
        match resource.split_once('.') {
            Some(("limits", _)) => limits.push(entry),
            _ => requests.push(entry),
        }
    }
    row![name(o), requests.join(", "), limits.join(", "), age(o, now)]
}

pub(super) fn priority_class(o: &Value, now: Timestamp) -> Vec<Value> {
    row![
        name(o),
        int_at(o, &["value"]),
        at(o, &["globalDefault"]).as_bool().unwrap_or(false),
        age(o, now),
        str_at(o, &["preemptionPolicy"]),
    ]
}

pub(super) fn runtime_class(o: &Value, now: Timestamp) -> Vec<Value> {
    row![name(o), str_at(o, &["handler"]), age(o, now)]
}

pub(super) fn volume_attachment(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    row![
        name(o),
        str_at(spec, &["attacher"]),
        str_at(spec, &["source", "persistentVolumeName"]),
        str_at(spec, &["nodeName"]),
        at(o, &["status", "attached"]).as_bool().unwrap_or(false),
        age(o, now),
    ]
}

pub(super) fn csi_node(o: &Value, now: Timestamp) -> Vec<Value> {
    row![name(o), len_at(o, &["spec", "drivers"]), age(o, now)]
}

pub(super) fn csi_driver(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    let flag = |field, default| at(spec, &[field]).as_bool().unwrap_or(default);
    let token_requests = match at(spec, &["tokenRequests"]) {
        Value::Null => "<unset>".to_owned(),
        t => t
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| str_at(t, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
    };
    let modes: Vec<&str> = arr_at(spec, &["volumeLifecycleModes"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    row![
        name(o),
        flag("attachRequired", true),
        flag("podInfoOnMount", false),
        flag("storageCapacity", false),
        token_requests,
        flag("requiresRepublish", false),
        if modes.is_empty() {
            "<none>".to_owned()
        } else {
            modes.join(",")
        },
        age(o, now),
    ]
}

pub(super) fn csi_storage_capacity(o: &Value, _now: Timestamp) -> Vec<Value> {
    row![
        name(o),
        str_at(o, &["storageClassName"]),
        quantity(at(o, &["capacity"]), "<unset>"),
    ]
}

pub(super) fn webhook_configuration(o: &Value, now: Timestamp) -> Vec<Value> {
    row![name(o), len_at(o, &["webhooks"]), age(o, now)]
}

pub(super) fn validating_admission_policy(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    let param_kind = match at(spec, &["paramKind"]) {
        Value::Null => "<unset>".to_owned(),
        k => format!("{}/{}", str_at(k, &["apiVersion"]), str_at(k, &["kind"])),
    };
    row![
        name(o),
        len_at(spec, &["validations"]),
        param_kind,
        age(o, now)
    ]
}

pub(super) fn validating_admission_policy_binding(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    let param_ref = match at(spec, &["paramRef"]) {
        Value::Null => "<unset>".to_owned(),
        r => match (str_at(r, &["name"]), str_at(r, &["namespace"])) {
            // Without a namespace the param may be cluster-scoped; upstream shows `*`.
            ("", _) if !at(r, &["selector"]).is_null() => selector_string(at(r, &["selector"])),
            ("", _) => "<unset>".to_owned(),
            (name, "") => format!("*/{name}"),
            (name, ns) => format!("{ns}/{name}"),
        },
    };
    row![
        name(o),
        str_at(spec, &["policyName"]),
        param_ref,
        age(o, now)
    ]
}

pub(super) fn flow_schema(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    let missing_pl = arr_at(o, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Dangling")
        .map_or("?", |c| str_at(c, &["status"]));
    row![
        name(o),
        str_at(spec, &["priorityLevelConfiguration", "name"]),
        int_at(spec, &["matchingPrecedence"]),
        or(spec, &["distinguisherMethod", "type"], "<none>"),
        age(o, now),
        missing_pl,
    ]
}

pub(super) fn priority_level_configuration(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    let limited = at(spec, &["limited"]);
    let queuing = at(limited, &["limitResponse", "queuing"]);
    // Integers where configured, the string `<none>` where not (cells are untyped upstream).
    let value = |scope: &Value, field| match scope {
        Value::Null => Value::from("<none>"),
        s => Value::from(int_at(s, &[field])),
    };
    row![
        name(o),
        str_at(spec, &["type"]),
        value(limited, "nominalConcurrencyShares"),
        value(queuing, "queues"),
        value(queuing, "handSize"),
        value(queuing, "queueLengthLimit"),
        age(o, now),
    ]
}

pub(super) fn resource_claim(o: &Value, now: Timestamp) -> Vec<Value> {
    let deleted = deleting(o);
    let mut states = Vec::new();
    if deleted {
        states.push("deleted");
    }
    if at(o, &["status", "allocation"]).is_null() {
        if !deleted {
            states.push("pending");
        }
    } else {
        states.push("allocated");
        if len_at(o, &["status", "reservedFor"]) > 0 {
            states.push("reserved");
        }
    }
    row![name(o), states.join(","), age(o, now)]
}

pub(super) fn resource_slice(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(o, &["spec"]);
    row![
        name(o),
        str_at(spec, &["nodeName"]),
        str_at(spec, &["driver"]),
        str_at(spec, &["pool", "name"]),
        age(o, now),
    ]
}

pub(super) fn service_cidr(o: &Value, now: Timestamp) -> Vec<Value> {
    let cidrs: Vec<&str> = arr_at(o, &["spec", "cidrs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    row![name(o), cidrs.join(","), age(o, now)]
}

/// NAME, PARENTREF. Upstream's row also carries an age, but its table declares only these two
/// columns, which is all kubectl shows.
pub(super) fn ip_address(o: &Value, _now: Timestamp) -> Vec<Value> {
    let parent = match at(o, &["spec", "parentRef"]) {
        Value::Null => "<none>".to_owned(),
        r => {
            let resource = match str_at(r, &["group"]) {
                "" => str_at(r, &["resource"]).to_owned(),
                group => format!("{}.{group}", str_at(r, &["resource"])),
            };
            let mut parent = resource.to_lowercase();
            match str_at(r, &["namespace"]) {
                "" => {}
                ns => parent = format!("{parent}/{ns}"),
            }
            format!("{parent}/{}", str_at(r, &["name"]))
        }
    };
    row![name(o), parent]
}

/// kube-aggregator's row: SERVICE is `namespace/name` or `Local`, AVAILABLE the condition's
/// status with its reason when not `True`.
pub(super) fn api_service(o: &Value, now: Timestamp) -> Vec<Value> {
    let service = match at(o, &["spec", "service"]) {
        Value::Null => "Local".to_owned(),
        s => format!("{}/{}", str_at(s, &["namespace"]), str_at(s, &["name"])),
    };
    let available = arr_at(o, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Available")
        .map_or_else(
            || "Unknown".to_owned(),
            |c| match (str_at(c, &["status"]), str_at(c, &["reason"])) {
                ("True", _) | (_, "") => str_at(c, &["status"]).to_owned(),
                (status, reason) => format!("{status} ({reason})"),
            },
        );
    row![name(o), service, available, age(o, now)]
}
