//! The pod row: upstream's `printPod`, whose READY, STATUS and RESTARTS cells are derived
//! from the container statuses.

use jiff::Timestamp;
use serde_json::Value;

use super::format::{
    age, arr_at, at, condition_true, human_duration, int_at, name, or, str_at, timestamp,
};

/// The pod reason upstream shows when the node is gone (`node.NodeUnreachablePodReason`).
const NODE_LOST: &str = "NodeLost";

/// Whether an init container is a sidecar (`restartPolicy: Always`).
fn restartable(init: Option<&Value>) -> bool {
    init.is_some_and(|c| str_at(c, &["restartPolicy"]) == "Always")
}

/// Restart count and latest restart time, accumulated over container statuses.
#[derive(Default, Clone, Copy)]
struct Restarts {
    count: i64,
    last: Option<Timestamp>,
}

impl Restarts {
    fn add(&mut self, status: &Value) {
        self.count += int_at(status, &["restartCount"]);
        let finished = timestamp(at(status, &["lastState", "terminated", "finishedAt"]));
        if finished > self.last {
            self.last = finished;
        }
    }
}

/// The reason a terminated container shows: its reason, else its signal or exit code.
fn terminated_reason(terminated: &Value, prefix: &str) -> String {
    match str_at(terminated, &["reason"]) {
        "" => match int_at(terminated, &["signal"]) {
            0 => format!("{prefix}ExitCode:{}", int_at(terminated, &["exitCode"])),
            signal => format!("{prefix}Signal:{signal}"),
        },
        reason => format!("{prefix}{reason}"),
    }
}

/// NAME, READY, STATUS, RESTARTS, AGE, IP, NODE, NOMINATED NODE, READINESS GATES.
pub(super) fn row(pod: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(pod, &["spec"]);
    let status = at(pod, &["status"]);
    let conditions = arr_at(status, &["conditions"]);
    let inits = arr_at(spec, &["initContainers"]);
    let init_named = |n: &str| inits.iter().find(|c| str_at(c, &["name"]) == n);

    let phase = str_at(status, &["phase"]);
    let mut reason = or(status, &["reason"], phase).to_owned();
    if conditions.iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    }) {
        reason = "SchedulingGated".to_owned();
    }

    let sidecars = inits.iter().filter(|c| restartable(Some(c))).count();
    let total = arr_at(spec, &["containers"]).len() + sidecars;
    let mut ready = 0usize;
    let mut restarts = Restarts::default();
    let mut sidecar_restarts = Restarts::default();

    let mut initializing = false;
    for (i, c) in arr_at(status, &["initContainerStatuses"])
        .iter()
        .enumerate()
    {
        restarts.add(c);
        let sidecar = restartable(init_named(str_at(c, &["name"])));
        if sidecar {
            sidecar_restarts.add(c);
        }
        let terminated = at(c, &["state", "terminated"]);
        let waiting = str_at(c, &["state", "waiting", "reason"]);
        if !terminated.is_null() && int_at(terminated, &["exitCode"]) == 0 {
            continue;
        }
        if sidecar && at(c, &["started"]).as_bool() == Some(true) {
            if at(c, &["ready"]).as_bool() == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if !terminated.is_null() {
            terminated_reason(terminated, "Init:")
        } else if !waiting.is_empty() && waiting != "PodInitializing" {
            format!("Init:{waiting}")
        } else {
            format!("Init:{i}/{}", inits.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        let mut has_running = false;
        for c in arr_at(status, &["containerStatuses"]).iter().rev() {
            restarts.add(c);
            let waiting = str_at(c, &["state", "waiting", "reason"]);
            let terminated = at(c, &["state", "terminated"]);
            if !waiting.is_empty() {
                reason = waiting.to_owned();
            } else if !terminated.is_null() {
                reason = terminated_reason(terminated, "");
            } else if at(c, &["ready"]).as_bool() == Some(true)
                && !at(c, &["state", "running"]).is_null()
            {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed but another still runs is not "Completed".
        if reason == "Completed" && has_running {
            reason = if condition_true(conditions, "Ready") {
                "Running".to_owned()
            } else {
                "NotReady".to_owned()
            };
        }
    }

    if super::format::deleting(pod) {
        if str_at(status, &["reason"]) == NODE_LOST {
            reason = "Unknown".to_owned();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_owned();
        }
    }

    let restarts_cell = match restarts.last {
        Some(last) if restarts.count != 0 => format!(
            "{} ({} ago)",
            restarts.count,
            human_duration(now.duration_since(last))
        ),
        _ => restarts.count.to_string(),
    };

    let gates = arr_at(spec, &["readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let passing = gates
            .iter()
            .filter(|g| condition_true(conditions, str_at(g, &["conditionType"])))
            .count();
        format!("{passing}/{}", gates.len())
    };
    let pod_ip = arr_at(status, &["podIPs"])
        .first()
        .map_or("", |ip| str_at(ip, &["ip"]));

    super::row![
        name(pod),
        format!("{ready}/{total}"),
        reason,
        restarts_cell,
        age(pod, now),
        if pod_ip.is_empty() { "<none>" } else { pod_ip },
        or(spec, &["nodeName"], "<none>"),
        or(status, &["nominatedNodeName"], "<none>"),
        readiness_gates,
    ]
}
