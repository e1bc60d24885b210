//! Printer tests: expected cells follow upstream's `printers_test.go` where it has a case.

use jiff::{SignedDuration, Timestamp};
use rkube_api::resources::{self, Resource};
use serde_json::{Value, json};

use super::format::human_duration;
use super::{cells, columns};

/// The fixed "now" of every test.
fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

/// A timestamp `ago` before [`now`], as the API writes it.
fn ago(ago: SignedDuration) -> String {
    (now() - ago).to_string()
}

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

fn resource(group: &str, plural: &str) -> &'static Resource {
    resources::all()
        .iter()
        .find(|r| r.group == group && r.plural == plural)
        .unwrap()
}

/// The cells for `object` as `group/plural`, checked against the column count.
fn row(group: &str, plural: &str, object: Value) -> Vec<Value> {
    let r = resource(group, plural);
    let cells = cells(r, &object, now());
    assert_eq!(cells.len(), columns(r).len(), "{group}/{plural}");
    cells
}

/// Metadata with a name and a creation time 5 hours ago (AGE `5h`).
fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": ago(hours(5))})
}

#[test]
fn human_duration_matches_upstream() {
    let cases = [
        (-2, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (1, "1s"),
        (70, "70s"),
        (119, "119s"),
        (120, "2m"),
        (190, "3m10s"),
        (10 * 60, "10m"),
        (70 * 60, "70m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 15 * 60, "3h15m"),
        (47 * 3600, "47h"),
        (49 * 3600, "2d1h"),
        (48 * 3600, "2d"),
        ((8 * 24 + 2) * 3600, "8d"),
        (367 * 24 * 3600, "367d"),
        ((365 * 2 * 24 + 25) * 3600, "2y1d"),
        ((365 * 3 + 45) * 24 * 3600, "3y45d"),
        ((365 * 8 * 24 + 2) * 3600, "8y"),
    ];
    for (secs, want) in cases {
        assert_eq!(
            human_duration(SignedDuration::from_secs(secs)),
            want,
            "{secs}s"
        );
    }
}

#[test]
fn every_resource_has_one_cell_per_column() {
    let full = json!({
        "metadata": meta("x"),
        "spec": {"containers": [{"name": "c", "image": "i"}], "selector": {"matchLabels": {"a": "b"}}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    });
    for r in resources::all() {
        let columns = columns(r);
        assert!(!columns.is_empty(), "{}/{}", r.group, r.plural);
        for object in [
            json!({}),
            json!(null),
            json!({"spec": 5, "status": []}),
            full.clone(),
        ] {
            assert_eq!(
                cells(r, &object, now()).len(),
                columns.len(),
                "{}/{} with {object}",
                r.group,
                r.plural
            );
        }
    }
}

#[test]
fn columns_match_upstream_names_and_priorities() {
    let shape = |group, plural| -> Vec<(&str, i32)> {
        columns(resource(group, plural))
            .iter()
            .map(|c| (c.name, c.priority))
            .collect()
    };
    assert_eq!(
        shape("", "pods"),
        [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1),
        ]
    );
    assert_eq!(
        shape("apps", "deployments"),
        [
            ("Name", 0),
            ("Ready", 0),
            ("Up-to-date", 0),
            ("Available", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1),
        ]
    );
    assert_eq!(
        shape("", "events"),
        shape("events.k8s.io", "events"),
        "both event APIs print alike"
    );
    let name = columns(resource("", "pods"))[0];
    assert_eq!((name.type_, name.format), ("string", "name"));
    // Resources without an upstream printer use the default table.
    assert_eq!(
        shape("rbac.authorization.k8s.io", "roles"),
        [("Name", 0), ("Created At", 0)]
    );
    assert_eq!(
        shape("apiextensions.k8s.io", "customresourcedefinitions"),
        [("Name", 0), ("Created At", 0)]
    );
}

#[test]
fn default_table_shows_name_and_creation_time() {
    let created = ago(hours(2));
    let cells = row(
        "rbac.authorization.k8s.io",
        "roles",
        json!({"metadata": {"name": "r", "creationTimestamp": created}}),
    );
    assert_eq!(cells, [json!("r"), json!(created)]);
}

/// A pod with the given status and two containers.
fn pod(status: Value) -> Value {
    json!({
        "metadata": meta("test1"),
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        "status": status,
    })
}

/// READY, STATUS, RESTARTS of a pod row.
fn pod_summary(pod: Value) -> (String, String, String) {
    let cells = row("", "pods", pod);
    let s = |i: usize| cells[i].as_str().unwrap().to_owned();
    (s(1), s(2), s(3))
}

#[test]
fn pod_status_reasons() {
    let summary = |status: Value| pod_summary(pod(status));
    let t = |ready: &str, status: &str, restarts: &str| {
        (ready.to_owned(), status.to_owned(), restarts.to_owned())
    };
    // Running containers, one ready; restarts add up.
    assert_eq!(
        summary(json!({"phase": "podPhase", "containerStatuses": [
            {"ready": true, "restartCount": 3, "state": {"running": {}}},
            {"restartCount": 3, "state": {"running": {}}},
        ]})),
        t("1/2", "podPhase", "6")
    );
    // A terminated container's reason wins over the phase.
    assert_eq!(
        summary(json!({"phase": "podPhase", "containerStatuses": [
            {"ready": true, "restartCount": 3, "state": {"running": {}}},
            {"restartCount": 3, "state": {"terminated": {"reason": "ContainerTerminatedReason"}}},
        ]})),
        t("1/2", "ContainerTerminatedReason", "6")
    );
    // A waiting reason such as CrashLoopBackOff.
    assert_eq!(
        summary(json!({"phase": "Running", "containerStatuses": [
            {"restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
        ]})),
        t("0/2", "CrashLoopBackOff", "1")
    );
    // Terminated without a reason: the signal, else the exit code.
    assert_eq!(
        summary(json!({"containerStatuses": [{"state": {"terminated": {"signal": 9}}}]})).1,
        "Signal:9"
    );
    assert_eq!(
        summary(json!({"containerStatuses": [{"state": {"terminated": {"exitCode": 2}}}]})).1,
        "ExitCode:2"
    );
    // status.reason overrides the phase.
    assert_eq!(
        summary(json!({"phase": "Failed", "reason": "Evicted"})).1,
        "Evicted"
    );
    // A completed container next to a running one: Running if the pod is ready.
    let completed_and_running = |ready: &str| {
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": ready}],
        "containerStatuses": [
            {"state": {"terminated": {"reason": "Completed", "exitCode": 0}}},
            {"ready": true, "state": {"running": {}}},
        ]})
    };
    // Statuses are walked last to first, so the first container's reason is the one left.
    assert_eq!(summary(completed_and_running("True")).1, "Running");
    assert_eq!(summary(completed_and_running("False")).1, "NotReady");
    assert_eq!(
        summary(json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
        ]}))
        .1,
        "SchedulingGated"
    );
}

#[test]
fn pod_init_container_reasons() {
    let with_inits = |statuses: Value| {
        json!({
            "metadata": meta("test1"),
            "spec": {
                "initContainers": [{"name": "i1"}, {"name": "i2"}],
                "containers": [{"name": "a"}],
            },
            "status": {"phase": "Pending", "initContainerStatuses": statuses},
        })
    };
    let status = |statuses| pod_summary(with_inits(statuses)).1;
    assert_eq!(
        status(json!([{"name": "i1", "state": {"running": {}}}])),
        "Init:0/2"
    );
    assert_eq!(
        status(json!([
            {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
            {"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}},
        ])),
        "Init:1/2"
    );
    assert_eq!(
        status(json!([{"name": "i1", "state": {"waiting": {"reason": "ImagePullBackOff"}}}])),
        "Init:ImagePullBackOff"
    );
    assert_eq!(
        status(
            json!([{"name": "i1", "state": {"terminated": {"reason": "Error", "exitCode": 1}}}])
        ),
        "Init:Error"
    );
    assert_eq!(
        status(json!([{"name": "i1", "state": {"terminated": {"exitCode": 3}}}])),
        "Init:ExitCode:3"
    );
}

#[test]
fn pod_sidecars_count_toward_ready_and_restarts() {
    let p = json!({
        "metadata": meta("test1"),
        "spec": {
            "initContainers": [{"name": "side", "restartPolicy": "Always"}],
            "containers": [{"name": "a"}],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [{"name": "side", "started": true, "ready": true,
                "restartCount": 2, "state": {"running": {}}}],
            "containerStatuses": [{"name": "a", "ready": true, "restartCount": 1,
                "state": {"running": {}}}],
        },
    });
    assert_eq!(pod_summary(p), ("2/2".into(), "Running".into(), "3".into()));
}

#[test]
fn pod_restarts_show_when_the_last_one_was() {
    let p = pod(json!({"phase": "Running", "containerStatuses": [
        {"restartCount": 3, "state": {"running": {}},
         "lastState": {"terminated": {"finishedAt": ago(SignedDuration::from_mins(5))}}},
        {"restartCount": 1, "state": {"running": {}},
         "lastState": {"terminated": {"finishedAt": ago(hours(1))}}},
    ]}));
    assert_eq!(pod_summary(p).2, "4 (5m ago)");
}

#[test]
fn pod_terminating_and_node_lost() {
    let mut p = pod(json!({"phase": "Running"}));
    p["metadata"]["deletionTimestamp"] = json!(ago(SignedDuration::from_secs(1)));
    assert_eq!(pod_summary(p.clone()).1, "Terminating");
    p["status"]["reason"] = json!("NodeLost");
    assert_eq!(pod_summary(p.clone()).1, "Unknown");
    // A finished pod being deleted keeps its phase.
    p["status"] = json!({"phase": "Succeeded"});
    assert_eq!(pod_summary(p).1, "Succeeded");
}

#[test]
fn pod_wide_cells() {
    let p = json!({
        "metadata": meta("test1"),
        "spec": {"containers": [{"name": "a"}], "nodeName": "node1",
            "readinessGates": [{"conditionType": "c1"}, {"conditionType": "c2"}]},
        "status": {"phase": "Running", "podIPs": [{"ip": "1.1.1.1"}, {"ip": "::1"}],
            "nominatedNodeName": "node2",
            "conditions": [{"type": "c1", "status": "True"}, {"type": "c2", "status": "False"}]},
    });
    assert_eq!(
        row("", "pods", p),
        json!([
            "test1", "0/1", "Running", "0", "5h", "1.1.1.1", "node1", "node2", "1/2"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    let bare = row("", "pods", json!({"metadata": {"name": "p"}}));
    assert_eq!(
        bare,
        json!([
            "p",
            "0/0",
            "",
            "0",
            "<unknown>",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
}

/// Asserts a printer's cells equal `want` (a JSON array).
fn check(group: &str, plural: &str, object: Value, want: Value) {
    assert_eq!(
        Value::Array(row(group, plural, object)),
        want,
        "{group}/{plural}"
    );
}

#[test]
fn service_rows() {
    let svc = |spec: Value, status: Value| json!({"metadata": meta("svc1"), "spec": spec, "status": status});
    check(
        "",
        "services",
        svc(
            json!({"type": "ClusterIP", "clusterIPs": ["10.9.8.7"], "selector": {"foo": "bar"},
                "ports": [{"protocol": "TCP", "port": 2233}]}),
            json!({}),
        ),
        json!([
            "svc1",
            "ClusterIP",
            "10.9.8.7",
            "<none>",
            "2233/TCP",
            "5h",
            "foo=bar"
        ]),
    );
    check(
        "",
        "services",
        svc(
            json!({"type": "NodePort", "clusterIPs": ["10.9.8.7"], "externalIPs": ["1.2.3.4"],
                "ports": [{"protocol": "TCP", "port": 8888, "nodePort": 9999},
                          {"protocol": "UDP", "port": 53}]}),
            json!({}),
        ),
        json!([
            "svc1",
            "NodePort",
            "10.9.8.7",
            "1.2.3.4",
            "8888:9999/TCP,53/UDP",
            "5h",
            "<none>"
        ]),
    );
    check(
        "",
        "services",
        svc(
            json!({"type": "LoadBalancer", "clusterIPs": ["10.9.8.7"], "ports": []}),
            json!({}),
        ),
        json!([
            "svc1",
            "LoadBalancer",
            "10.9.8.7",
            "<pending>",
            "<none>",
            "5h",
            "<none>"
        ]),
    );
    check(
        "",
        "services",
        svc(
            json!({"type": "LoadBalancer", "clusterIPs": ["10.9.8.7"], "externalIPs": ["5.6.7.8"]}),
            json!({"loadBalancer": {"ingress": [{"ip": "3.4.5.6"}, {"hostname": "lb.example"}, {"ip": "2.3.4.5"}]}}),
        ),
        json!([
            "svc1",
            "LoadBalancer",
            "10.9.8.7",
            "2.3.4.5,3.4.5.6,lb.example,5.6.7.8",
            "<none>",
            "5h",
            "<none>"
        ]),
    );
    check(
        "",
        "services",
        svc(
            json!({"type": "ExternalName", "externalName": "my.database.example.com"}),
            json!({}),
        ),
        json!([
            "svc1",
            "ExternalName",
            "<none>",
            "my.database.example.com",
            "<none>",
            "5h",
            "<none>"
        ]),
    );
}

#[test]
fn workload_rows() {
    let template = json!({"spec": {"containers": [
        {"name": "fake-container1", "image": "fake-image1"},
        {"name": "fake-container2", "image": "fake-image2"},
    ]}});
    check(
        "apps",
        "deployments",
        json!({"metadata": meta("test1"), "spec": {"replicas": 5, "template": template,
            "selector": {"matchLabels": {"foo": "bar"}}},
            "status": {"replicas": 10, "updatedReplicas": 2, "availableReplicas": 1, "readyReplicas": 1}}),
        json!([
            "test1",
            "1/5",
            2,
            1,
            "5h",
            "fake-container1,fake-container2",
            "fake-image1,fake-image2",
            "foo=bar"
        ]),
    );
    check(
        "apps",
        "replicasets",
        json!({"metadata": meta("test1"), "spec": {"replicas": 5, "template": template,
            "selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}},
            "status": {"replicas": 5, "readyReplicas": 2}}),
        json!([
            "test1",
            5,
            5,
            2,
            "5h",
            "fake-container1,fake-container2",
            "fake-image1,fake-image2",
            "tier in (api,web)"
        ]),
    );
    check(
        "apps",
        "statefulsets",
        json!({"metadata": meta("test1"), "spec": {"replicas": 5, "template": template},
            "status": {"replicas": 5, "readyReplicas": 2}}),
        json!([
            "test1",
            "2/5",
            "5h",
            "fake-container1,fake-container2",
            "fake-image1,fake-image2"
        ]),
    );
    check(
        "apps",
        "daemonsets",
        json!({"metadata": meta("test1"), "spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "i"}], "nodeSelector": {"disk": "ssd"}}}},
            "status": {"currentNumberScheduled": 2, "desiredNumberScheduled": 3, "numberReady": 1,
                "updatedNumberScheduled": 2, "numberAvailable": 0}}),
        json!(["test1", 3, 2, 1, 2, 0, "disk=ssd", "5h", "c", "i", "<none>"]),
    );
    check(
        "",
        "replicationcontrollers",
        json!({"metadata": meta("rc1"), "spec": {"replicas": 1, "selector": {"a": "b"}},
            "status": {"replicas": 1}}),
        json!(["rc1", 1, 1, 0, "5h", "", "", "a=b"]),
    );
    check(
        "apps",
        "controllerrevisions",
        json!({"metadata": {"name": "test1", "creationTimestamp": ago(hours(5)),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "foo",
                "controller": true}]}, "revision": 1}),
        json!(["test1", "daemonset.apps/foo", 1, "5h"]),
    );
}

#[test]
fn job_rows() {
    let job = |spec: Value, status: Value| json!({"metadata": meta("job1"), "spec": spec, "status": status});
    check(
        "batch",
        "jobs",
        job(
            json!({"completions": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}},
                "selector": {"matchLabels": {"job-name": "job1"}}}),
            json!({"succeeded": 1, "startTime": ago(hours(1))}),
        ),
        json!([
            "job1",
            "Running",
            "1/2",
            "60m",
            "5h",
            "c",
            "i",
            "job-name=job1"
        ]),
    );
    check(
        "batch",
        "jobs",
        job(
            json!({"parallelism": 2}),
            json!({"succeeded": 2, "startTime": ago(hours(2)),
                "completionTime": ago(SignedDuration::from_mins(110)),
                "conditions": [{"type": "Complete", "status": "True"}]}),
        ),
        json!([
            "job1", "Complete", "2/1 of 2", "10m", "5h", "", "", "<none>"
        ]),
    );
    check(
        "batch",
        "jobs",
        job(
            json!({}),
            json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
        ),
        json!(["job1", "Suspended", "0/1", "", "5h", "", "", "<none>"]),
    );
    check(
        "batch",
        "cronjobs",
        json!({"metadata": meta("cj1"), "spec": {"schedule": "0/5 * * * ?", "suspend": false,
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}},
            "status": {"lastScheduleTime": ago(SignedDuration::from_secs(30)), "active": [{"name": "a"}]}}),
        json!([
            "cj1",
            "0/5 * * * ?",
            "<none>",
            "False",
            1,
            "30s",
            "5h",
            "c",
            "i",
            "<none>"
        ]),
    );
}

#[test]
fn node_rows() {
    check(
        "",
        "nodes",
        json!({"metadata": {"name": "foo", "creationTimestamp": ago(hours(5)),
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "node",
                "node-role.kubernetes.io/": "x"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "False"}],
                "addresses": [{"type": "InternalIP", "address": "1.1.1.1"}],
                "nodeInfo": {"kubeletVersion": "v1.34.0", "osImage": "Debian", "kernelVersion": "6.1"}}}),
        json!([
            "foo",
            "NotReady,SchedulingDisabled",
            "control-plane,node",
            "5h",
            "v1.34.0",
            "1.1.1.1",
            "<none>",
            "Debian",
            "6.1",
            "<unknown>"
        ]),
    );
    check(
        "",
        "nodes",
        json!({"metadata": {"name": "bare"}}),
        json!([
            "bare",
            "Unknown",
            "<none>",
            "<unknown>",
            "",
            "<none>",
            "<none>",
            "<unknown>",
            "<unknown>",
            "<unknown>"
        ]),
    );
}

#[test]
fn event_rows() {
    check(
        "",
        "events",
        json!({"metadata": {"name": "event1"}, "type": "Normal", "reason": "Started",
            "involvedObject": {"kind": "Pod", "name": "foo", "fieldPath": "spec.containers{c}"},
            "source": {"component": "kubelet", "host": "node1"}, "message": " Started container \n",
            "firstTimestamp": ago(hours(3)), "lastTimestamp": ago(SignedDuration::from_secs(5)),
            "count": 6}),
        json!([
            "5s",
            "Normal",
            "Started",
            "pod/foo",
            "spec.containers{c}",
            "kubelet, node1",
            "Started container",
            "3h",
            6,
            "event1"
        ]),
    );
    // The events.k8s.io shape: eventTime, regarding, note, reportingController. The
    // microseconds make it 59.88s old, which truncates to 59s as upstream does.
    check(
        "events.k8s.io",
        "events",
        json!({"metadata": {"name": "event2"}, "type": "Warning", "reason": "Failed",
            "regarding": {"kind": "Node"}, "note": "boom", "reportingController": "ctl",
            "eventTime": "2025-12-31T23:59:00.123456Z"}),
        json!([
            "59s", "Warning", "Failed", "node", "", "ctl", "boom", "59s", 1, "event2"
        ]),
    );
    check(
        "",
        "events",
        json!({"metadata": {"name": "event3"}, "eventTime": ago(hours(1)),
            "series": {"count": 4, "lastObservedTime": ago(SignedDuration::from_secs(10))}}),
        json!(["10s", "", "", "", "", "", "", "60m", 4, "event3"]),
    );
}

#[test]
fn config_and_identity_rows() {
    check(
        "",
        "configmaps",
        json!({"metadata": meta("cm"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
        json!(["cm", 3, "5h"]),
    );
    check(
        "",
        "secrets",
        json!({"metadata": meta("s"), "type": "Opaque", "data": {"a": "MQ=="}}),
        json!(["s", "Opaque", 1, "5h"]),
    );
    check(
        "",
        "serviceaccounts",
        json!({"metadata": meta("sa"), "secrets": [{"name": "t"}]}),
        json!(["sa", 1, "5h"]),
    );
    check(
        "",
        "namespaces",
        json!({"metadata": meta("ns"), "status": {"phase": "Active"}}),
        json!(["ns", "Active", "5h"]),
    );
    check(
        "rbac.authorization.k8s.io",
        "rolebindings",
        json!({"metadata": meta("rb"), "roleRef": {"kind": "Role", "name": "r"}, "subjects": [
            {"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "namespace": "kube-system", "name": "default"}]}),
        json!([
            "rb",
            "Role/r",
            "5h",
            "alice, bob",
            "devs",
            "kube-system/default"
        ]),
    );
    check(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        json!({"metadata": meta("crb"), "roleRef": {"kind": "ClusterRole", "name": "admin"}}),
        json!(["crb", "ClusterRole/admin", "5h", "", "", ""]),
    );
    check(
        "certificates.k8s.io",
        "certificatesigningrequests",
        json!({"metadata": meta("csr1"), "spec": {"username": "CSRRequestor",
            "signerName": "example.com/signer", "expirationSeconds": 7200},
            "status": {"conditions": [{"type": "Approved"}, {"type": "Failed"}], "certificate": "Y2VydA=="}}),
        json!([
            "csr1",
            "5h",
            "example.com/signer",
            "CSRRequestor",
            "120m",
            "Approved,Failed,Issued"
        ]),
    );
    check(
        "coordination.k8s.io",
        "leases",
        json!({"metadata": meta("l"), "spec": {"holderIdentity": "node1"}}),
        json!(["l", "node1", "5h"]),
    );
}

#[test]
fn networking_rows() {
    check(
        "",
        "endpoints",
        json!({"metadata": meta("ep"), "subsets": [
            {"addresses": [{"ip": "1.2.3.4"}, {"ip": "5.6.7.8"}], "ports": [{"port": 8080}, {"port": 8443}]},
            {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]}),
        json!([
            "ep",
            "1.2.3.4:8080,5.6.7.8:8080,1.2.3.4:8443 + 2 more...",
            "5h"
        ]),
    );
    check(
        "",
        "endpoints",
        json!({"metadata": meta("ep"), "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]}),
        json!(["ep", "[fd00::1]:80", "5h"]),
    );
    check(
        "",
        "endpoints",
        json!({"metadata": meta("ep")}),
        json!(["ep", "<none>", "5h"]),
    );
    check(
        "discovery.k8s.io",
        "endpointslices",
        json!({"metadata": meta("es"), "addressType": "IPv4",
            "ports": [{"port": 80}, {"name": "http"}, {}, {"port": 443}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}]}),
        json!([
            "es",
            "IPv4",
            "80,http,* + 1 more...",
            "10.0.0.1,10.0.0.2,10.0.0.3",
            "5h"
        ]),
    );
    check(
        "discovery.k8s.io",
        "endpointslices",
        json!({"metadata": meta("es"), "addressType": "IPv6"}),
        json!(["es", "IPv6", "<unset>", "<unset>", "5h"]),
    );
    check(
        "networking.k8s.io",
        "ingresses",
        json!({"metadata": meta("test1"), "spec": {"ingressClassName": "foo",
            "rules": [{"host": "foo.bar.com"}, {}, {"host": "a"}, {"host": "b"}, {"host": "c"}],
            "tls": [{"hosts": ["foo.bar.com"]}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "2.3.4.5"}, {"hostname": "localhost.localdomain"}]}}}),
        json!([
            "test1",
            "foo",
            "foo.bar.com,a,b + 2 more...",
            "2.3.4.5,localhost.localdomain",
            "80, 443",
            "5h"
        ]),
    );
    check(
        "networking.k8s.io",
        "ingresses",
        json!({"metadata": meta("test2"), "spec": {}}),
        json!(["test2", "<none>", "*", "", "80", "5h"]),
    );
    check(
        "networking.k8s.io",
        "ingressclasses",
        json!({"metadata": meta("ic"), "spec": {"controller": "example.com/controller",
            "parameters": {"apiGroup": "example.com", "kind": "IngressParameters", "name": "external-lb"}}}),
        json!([
            "ic",
            "example.com/controller",
            "IngressParameters.example.com/external-lb",
            "5h"
        ]),
    );
    check(
        "networking.k8s.io",
        "networkpolicies",
        json!({"metadata": meta("np"), "spec": {"podSelector": {}}}),
        json!(["np", "<none>", "5h"]),
    );
    check(
        "networking.k8s.io",
        "ipaddresses",
        json!({"metadata": meta("10.0.0.1"), "spec": {"parentRef": {"group": "", "resource": "services",
            "namespace": "default", "name": "svc"}}}),
        json!(["10.0.0.1", "services/default/svc"]),
    );
    check(
        "networking.k8s.io",
        "servicecidrs",
        json!({"metadata": meta("kubernetes"), "spec": {"cidrs": ["10.43.0.0/16", "fd00::/108"]}}),
        json!(["kubernetes", "10.43.0.0/16,fd00::/108", "5h"]),
    );
}

#[test]
fn storage_rows() {
    check(
        "",
        "persistentvolumes",
        json!({"metadata": meta("pv1"), "spec": {"capacity": {"storage": "4Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
            "claimRef": {"namespace": "default", "name": "claim1"}, "storageClassName": "fast"},
            "status": {"phase": "Bound"}}),
        json!([
            "pv1",
            "4Gi",
            "RWO,RWX",
            "Retain",
            "Bound",
            "default/claim1",
            "fast",
            "<unset>",
            "",
            "5h",
            "<unset>"
        ]),
    );
    let mut pvc = json!({"metadata": meta("pvc1"), "spec": {"volumeName": "pv1", "volumeMode": "Filesystem",
        "storageClassName": "fast"},
        "status": {"phase": "Bound", "capacity": {"storage": "4Gi"}, "accessModes": ["ReadWriteOnce"]}});
    check(
        "",
        "persistentvolumeclaims",
        pvc.clone(),
        json!([
            "pvc1",
            "Bound",
            "pv1",
            "4Gi",
            "RWO",
            "fast",
            "<unset>",
            "5h",
            "Filesystem"
        ]),
    );
    pvc["metadata"]["deletionTimestamp"] = json!(ago(SignedDuration::from_secs(1)));
    pvc["spec"] = json!({});
    check(
        "",
        "persistentvolumeclaims",
        pvc,
        json!([
            "pvc1",
            "Terminating",
            "",
            "",
            "",
            "",
            "<unset>",
            "5h",
            "<unset>"
        ]),
    );
    check(
        "storage.k8s.io",
        "storageclasses",
        json!({"metadata": {"name": "local-path", "creationTimestamp": ago(hours(5)),
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}),
        json!([
            "local-path (default)",
            "rancher.io/local-path",
            "Delete",
            "WaitForFirstConsumer",
            false,
            "5h"
        ]),
    );
    check(
        "storage.k8s.io",
        "csidrivers",
        json!({"metadata": meta("csi"), "spec": {"volumeLifecycleModes": ["Persistent"]}}),
        json!([
            "csi",
            true,
            false,
            false,
            "<unset>",
            false,
            "Persistent",
            "5h"
        ]),
    );
    check(
        "storage.k8s.io",
        "volumeattachments",
        json!({"metadata": meta("va"), "spec": {"attacher": "a", "nodeName": "n",
            "source": {"persistentVolumeName": "pv"}}, "status": {"attached": true}}),
        json!(["va", "a", "pv", "n", true, "5h"]),
    );
}

#[test]
fn policy_and_scaling_rows() {
    check(
        "policy",
        "poddisruptionbudgets",
        json!({"metadata": meta("pdb1"), "spec": {"minAvailable": "22%"}, "status": {"disruptionsAllowed": 5}}),
        json!(["pdb1", "22%", "N/A", 5, "5h"]),
    );
    check(
        "autoscaling",
        "horizontalpodautoscalers",
        json!({"metadata": meta("hpa"), "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "100"}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}},
            ]},
            "status": {"currentReplicas": 3, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 50}}}]}}),
        json!([
            "hpa",
            "Deployment/web",
            "cpu: 50%/80%, <unknown>/100 + 1 more...",
            "1",
            10,
            3,
            "5h"
        ]),
    );
    check(
        "autoscaling",
        "horizontalpodautoscalers",
        json!({"metadata": meta("hpa"), "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "maxReplicas": 4, "targetCPUUtilizationPercentage": 70}}),
        json!([
            "hpa",
            "Deployment/web",
            "cpu: <unknown>/70%",
            "<unset>",
            4,
            0,
            "5h"
        ]),
    );
    check(
        "",
        "resourcequotas",
        json!({"metadata": meta("rq"), "status": {
            "hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
            "used": {"pods": "3", "requests.cpu": "500m"}}}),
        json!([
            "rq",
            "pods: 3/10, requests.cpu: 500m/1",
            "limits.cpu: 0/2",
            "5h"
        ]),
    );
    check(
        "scheduling.k8s.io",
        "priorityclasses",
        json!({"metadata": meta("pc"), "value": 1000, "globalDefault": true,
            "preemptionPolicy": "PreemptLowerPriority"}),
        json!(["pc", 1000, true, "5h", "PreemptLowerPriority"]),
    );
    check(
        "node.k8s.io",
        "runtimeclasses",
        json!({"metadata": meta("rc"), "handler": "runc"}),
        json!(["rc", "runc", "5h"]),
    );
}

#[test]
fn control_plane_rows() {
    check(
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        json!({"metadata": meta("mw"), "webhooks": [{"name": "a"}, {"name": "b"}]}),
        json!(["mw", 2, "5h"]),
    );
    check(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
        json!({"metadata": meta("vap"), "spec": {"validations": [{"expression": "true"}],
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}}),
        json!(["vap", 1, "v1/ConfigMap", "5h"]),
    );
    check(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
        json!({"metadata": meta("vapb"), "spec": {"policyName": "vap", "paramRef": {"name": "p"}}}),
        json!(["vapb", "vap", "*/p", "5h"]),
    );
    check(
        "flowcontrol.apiserver.k8s.io",
        "flowschemas",
        json!({"metadata": meta("fs"), "spec": {"priorityLevelConfiguration": {"name": "global-default"},
            "matchingPrecedence": 9900, "distinguisherMethod": {"type": "ByUser"}},
            "status": {"conditions": [{"type": "Dangling", "status": "False"}]}}),
        json!(["fs", "global-default", 9900, "ByUser", "5h", "False"]),
    );
    check(
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
        json!({"metadata": meta("plc"), "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 30, "limitResponse": {"type": "Queue",
                "queuing": {"queues": 64, "handSize": 6, "queueLengthLimit": 50}}}}}),
        json!(["plc", "Limited", 30, 64, 6, 50, "5h"]),
    );
    check(
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
        json!({"metadata": meta("exempt"), "spec": {"type": "Exempt"}}),
        json!([
            "exempt", "Exempt", "<none>", "<none>", "<none>", "<none>", "5h"
        ]),
    );
    check(
        "apiregistration.k8s.io",
        "apiservices",
        json!({"metadata": meta("v1beta1.metrics.k8s.io"), "spec": {"service": {"namespace": "kube-system",
            "name": "metrics-server"}}, "status": {"conditions": [{"type": "Available", "status": "False",
            "reason": "MissingEndpoints"}]}}),
        json!([
            "v1beta1.metrics.k8s.io",
            "kube-system/metrics-server",
            "False (MissingEndpoints)",
            "5h"
        ]),
    );
    check(
        "apiregistration.k8s.io",
        "apiservices",
        json!({"metadata": meta("v1.apps")}),
        json!(["v1.apps", "Local", "Unknown", "5h"]),
    );
    check(
        "resource.k8s.io",
        "resourceclaims",
        json!({"metadata": meta("claim"), "status": {"allocation": {}, "reservedFor": [{"name": "p"}]}}),
        json!(["claim", "allocated,reserved", "5h"]),
    );
    check(
        "resource.k8s.io",
        "deviceclasses",
        json!({"metadata": meta("gpu")}),
        json!(["gpu", "5h"]),
    );
}
