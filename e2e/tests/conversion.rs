//! Versions that share storage, as stock kubectl sees them: an HPA `kubectl autoscale`
//! creates (autoscaling/v2) read through autoscaling/v1, and an events.k8s.io/v1 Event read
//! through core v1 `kubectl get events`.

// Helpers of tests: a failed expectation is a test failure, as in the tests themselves.
#![allow(clippy::unwrap_used)]

use rkube_e2e::with_each_kubectl;
use serde_json::Value;

#[test]
fn each_version_reads_what_the_other_wrote() {
    with_each_kubectl(|client| {
        let k = |args: &[&str]| client.ok(args);
        let ns = client.namespace("conv");

        // `kubectl autoscale` writes autoscaling/v2; v1 shows its CPU target. (The full
        // resource name: kubectl expands the short `hpa.v1.autoscaling` to the preferred
        // version, whatever the server.)
        k(&["create", "deployment", "web", "--image=nginx", "-n", &ns]);
        k(&[
            "autoscale",
            "deployment",
            "web",
            "--min=1",
            "--max=4",
            "--cpu-percent=65",
            "-n",
            &ns,
        ]);
        let v1 = client.json(&[
            "get",
            "horizontalpodautoscalers.v1.autoscaling",
            "web",
            "-n",
            &ns,
        ]);
        assert_eq!(v1["apiVersion"], "autoscaling/v1", "{v1}");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 65, "{v1}");
        assert_eq!(v1["spec"]["maxReplicas"], 4, "{v1}");
        let v2 = client.json(&[
            "get",
            "horizontalpodautoscalers.v2.autoscaling",
            "web",
            "-n",
            &ns,
        ]);
        assert_eq!(v2["apiVersion"], "autoscaling/v2", "{v2}");
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 65,
            "{v2}"
        );

        // An events.k8s.io/v1 Event shows up in core `kubectl get events`.
        let manifest = r#"{"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web-scaled"},
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "reportingController": "e2e/controller", "reportingInstance": "e2e-1",
            "action": "Scale", "reason": "Scaled", "type": "Normal",
            "regarding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "note": "scaled web from the new API"}"#;
        client.create_file(&ns, manifest);
        let table = k(&["get", "events", "-n", &ns]);
        assert!(
            table.contains("scaled web from the new API"),
            "kubectl {}: {table}",
            client.kubectl.version
        );
        let path = format!("/api/v1/namespaces/{ns}/events/web-scaled");
        let core: Value = serde_json::from_str(&k(&["get", "--raw", &path])).unwrap();
        assert_eq!(core["apiVersion"], "v1", "{core}");
        assert_eq!(core["message"], "scaled web from the new API", "{core}");
        assert_eq!(core["involvedObject"]["kind"], "Deployment", "{core}");
    });
}
