//! The Kubernetes API as stock kubectl (1.33 and newer) uses it: discovery, the bootstrap
//! objects, create/get/label/annotate/delete of everyday kinds, output formats, watches,
//! chunked lists, scale, and deletion held by finalizers.

// Helpers of tests: a failed expectation is a test failure, as in the tests themselves.
#![allow(clippy::unwrap_used)]

use std::io::BufReader;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use rkube_e2e::{Client, with_each_kubectl};
use serde_json::Value;

#[test]
fn discovery_lists_every_group_and_resource() {
    with_each_kubectl(|k| {
        let versions = k.ok(&["api-versions"]);
        let versions: Vec<&str> = versions.lines().collect();
        for gv in [
            "v1",
            "apps/v1",
            "batch/v1",
            "autoscaling/v1",
            "autoscaling/v2",
            "policy/v1",
            "rbac.authorization.k8s.io/v1",
            "networking.k8s.io/v1",
            "storage.k8s.io/v1",
            "coordination.k8s.io/v1",
            "discovery.k8s.io/v1",
            "events.k8s.io/v1",
            "certificates.k8s.io/v1",
            "admissionregistration.k8s.io/v1",
            "apiextensions.k8s.io/v1",
            "scheduling.k8s.io/v1",
            "node.k8s.io/v1",
            "flowcontrol.apiserver.k8s.io/v1",
        ] {
            assert!(
                versions.contains(&gv),
                "kubectl {}: no {gv} in {versions:?}",
                k.kubectl.version
            );
        }
        let resources = k.ok(&["api-resources", "--no-headers"]);
        let rows: Vec<Vec<&str>> = resources
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        for expected in [
            vec!["pods", "po", "v1", "true", "Pod"],
            vec!["namespaces", "ns", "v1", "false", "Namespace"],
            vec!["deployments", "deploy", "apps/v1", "true", "Deployment"],
            vec!["cronjobs", "cj", "batch/v1", "true", "CronJob"],
            vec!["configmaps", "cm", "v1", "true", "ConfigMap"],
        ] {
            assert!(
                rows.contains(&expected),
                "kubectl {}: no {expected:?} row",
                k.kubectl.version
            );
        }
    });
}

#[test]
fn bootstrap_creates_system_namespaces_and_the_kubernetes_service() {
    with_each_kubectl(|k| {
        let names = k.ok(&["get", "namespaces", "-o", "name"]);
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            assert!(
                names.lines().any(|l| l == format!("namespace/{ns}")),
                "{names}"
            );
        }
        let ip = k.ok(&[
            "get",
            "service",
            "kubernetes",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ]);
        assert_eq!(ip, "10.43.0.1");
    });
}

#[test]
fn configmaps_live_and_die_as_upstream_shapes_them() {
    with_each_kubectl(|k| {
        let ns = k.namespace("cm");
        k.ok(&[
            "create",
            "configmap",
            "app",
            "-n",
            &ns,
            "--from-literal=color=blue",
        ]);
        let cm = k.json(&["get", "configmap", "app", "-n", &ns]);
        assert_eq!(cm["data"]["color"], "blue");
        assert_eq!(
            (cm["kind"].as_str(), cm["apiVersion"].as_str()),
            (Some("ConfigMap"), Some("v1"))
        );
        for field in ["uid", "resourceVersion", "creationTimestamp"] {
            assert!(
                cm["metadata"][field]
                    .as_str()
                    .is_some_and(|v| !v.is_empty()),
                "{field}: {cm}"
            );
        }
        k.ok(&["label", "configmap", "app", "-n", &ns, "tier=web"]);
        k.ok(&["annotate", "configmap", "app", "-n", &ns, "note=hello"]);
        let tier = k.ok(&[
            "get",
            "cm",
            "app",
            "-n",
            &ns,
            "-o",
            "jsonpath={.metadata.labels.tier}",
        ]);
        assert_eq!(tier, "web");
        let columns = k.ok(&[
            "get",
            "cm",
            "-n",
            &ns,
            // Every namespace also has the root CA publisher's ConfigMap.
            "--field-selector=metadata.name!=kube-root-ca.crt",
            "--no-headers",
            "-o",
            "custom-columns=NAME:.metadata.name,COLOR:.data.color,NOTE:.metadata.annotations.note",
        ]);
        assert_eq!(
            columns.split_whitespace().collect::<Vec<_>>(),
            ["app", "blue", "hello"]
        );
        let yaml = k.ok(&["get", "cm", "app", "-n", &ns, "-o", "yaml"]);
        assert!(
            yaml.contains("  color: blue\n") && yaml.contains("kind: ConfigMap\n"),
            "{yaml}"
        );
        let table = k.ok(&["get", "cm", "app", "-n", &ns]);
        let header: Vec<&str> = table
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(header, ["NAME", "DATA", "AGE"], "{table}");
        k.ok(&["describe", "configmap", "app", "-n", &ns]);
        let err = k.fails(&["create", "configmap", "app", "-n", &ns]);
        assert!(err.contains(r#"configmaps "app" already exists"#), "{err}");
        k.ok(&["delete", "configmap", "app", "-n", &ns]);
        let err = k.fails(&["get", "configmap", "app", "-n", &ns]);
        assert!(
            err.contains(r#"Error from server (NotFound): configmaps "app" not found"#),
            "{err}"
        );
    });
}

#[test]
fn secrets_of_every_kubectl_flavour() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=e2e",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    with_each_kubectl(|k| {
        let ns = k.namespace("secret");
        k.ok(&[
            "create",
            "secret",
            "generic",
            "plain",
            "-n",
            &ns,
            "--from-literal=password=hunter2",
        ]);
        let s = k.json(&["get", "secret", "plain", "-n", &ns]);
        assert_eq!(
            (s["type"].as_str(), s["data"]["password"].as_str()),
            (Some("Opaque"), Some("aHVudGVyMg=="))
        );
        let (cert, key) = (
            format!("--cert={}", cert.display()),
            format!("--key={}", key.display()),
        );
        k.ok(&["create", "secret", "tls", "web-tls", "-n", &ns, &cert, &key]);
        let s = k.json(&["get", "secret", "web-tls", "-n", &ns]);
        assert_eq!(s["type"], "kubernetes.io/tls");
        assert!(s["data"]["tls.crt"].is_string() && s["data"]["tls.key"].is_string());
        k.ok(&[
            "create",
            "secret",
            "docker-registry",
            "pull",
            "-n",
            &ns,
            "--docker-server=registry.local",
            "--docker-username=u",
            "--docker-password=p",
        ]);
        let s = k.json(&["get", "secret", "pull", "-n", &ns]);
        assert_eq!(s["type"], "kubernetes.io/dockerconfigjson");
        let listed = k.ok(&["get", "secrets", "-n", &ns, "-o", "name"]);
        assert_eq!(listed.lines().count(), 3, "{listed}");
    });
}

/// Reads `{"type": .., "object": ..}` documents from a `kubectl get -w -o json
/// --output-watch-events` until `done` says stop or the deadline passes.
fn watch_events(
    child: &mut Child,
    done: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let events =
            serde_json::Deserializer::from_reader(BufReader::new(stdout)).into_iter::<Value>();
        for event in events.map_while(Result::ok) {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    while !done(&seen) {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(event) => seen.push((
                event["type"].as_str().unwrap_or_default().to_string(),
                event["object"].clone(),
            )),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

#[test]
fn get_watch_sees_added_modified_deleted() {
    with_each_kubectl(|k| {
        let ns = k.namespace("watch");
        let mut watch = k.spawn(&[
            "get",
            "configmaps",
            "-n",
            &ns,
            "--field-selector=metadata.name=w1",
            "-w",
            "-o",
            "json",
            "--output-watch-events",
        ]);
        k.ok(&["create", "configmap", "w1", "-n", &ns, "--from-literal=a=1"]);
        k.ok(&["label", "configmap", "w1", "-n", &ns, "step=two"]);
        k.ok(&["delete", "configmap", "w1", "-n", &ns]);
        let events = watch_events(&mut watch, |seen| seen.iter().any(|(t, _)| t == "DELETED"));
        let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            types,
            ["ADDED", "MODIFIED", "DELETED"],
            "kubectl {}",
            k.kubectl.version
        );
        assert_eq!(events[1].1["metadata"]["labels"]["step"], "two");
    });
}

#[test]
fn chunked_lists_page_through_every_object() {
    with_each_kubectl(|k| {
        let ns = k.namespace("chunks");
        // Named to sort after the root CA publisher's `kube-root-ca.crt`, which the selector
        // skips: pages fill with matches whether or not it exists yet.
        for i in 0..10 {
            k.ok(&["create", "configmap", &format!("x{i:02}"), "-n", &ns]);
        }
        let out = k.run(&[
            "get",
            "configmaps",
            "-n",
            &ns,
            "--field-selector=metadata.name!=kube-root-ca.crt",
            "--chunk-size=2",
            "-o",
            "name",
            "-v=6",
        ]);
        assert!(out.status.success());
        let names = String::from_utf8_lossy(&out.stdout);
        let expected: Vec<String> = (0..10).map(|i| format!("configmap/x{i:02}")).collect();
        assert_eq!(names.lines().collect::<Vec<_>>(), expected);
        let log = String::from_utf8_lossy(&out.stderr);
        let pages = log.lines().filter(|l| l.contains("limit=2")).count();
        assert_eq!(pages, 5, "five requests of two: {log}");
        assert!(log.contains("continue="), "{log}");
    });
}

#[test]
fn deletion_waits_for_finalizers_until_a_patch_removes_them() {
    with_each_kubectl(|k| {
        let ns = k.namespace("finalizers");
        k.create_file(
            &ns,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n",
        );
        k.ok(&["delete", "configmap", "held", "-n", &ns, "--wait=false"]);
        let held = k.json(&["get", "configmap", "held", "-n", &ns]);
        assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");
        let mut waiter = k.spawn(&[
            "wait",
            "--for=delete",
            "configmap/held",
            "-n",
            &ns,
            "--timeout=60s",
        ]);
        k.ok(&[
            "patch",
            "configmap",
            "held",
            "-n",
            &ns,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ]);
        let status = waiter.wait().context("kubectl wait").unwrap();
        assert!(status.success(), "kubectl wait --for=delete failed");
        let err = k.fails(&["get", "configmap", "held", "-n", &ns]);
        assert!(err.contains("not found"), "{err}");
    });
}

#[test]
fn workloads_services_and_rbac_from_kubectl_generators() {
    with_each_kubectl(|k| {
        let ns = k.namespace("workloads");
        let n = ["-n", ns.as_str()];
        let with_ns = |args: &[&str]| -> Vec<String> {
            // Before the arguments: anything after a `--` belongs to the container's command.
            n.iter().chain(args).map(|a| a.to_string()).collect()
        };
        let run = |args: &[&str]| {
            let args = with_ns(args);
            k.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
        };
        let json = |args: &[&str]| -> Value {
            let mut args = with_ns(args);
            args.extend(["-o".into(), "json".into()]);
            serde_json::from_str(&k.ok(&args.iter().map(String::as_str).collect::<Vec<_>>()))
                .unwrap()
        };
        run(&[
            "create",
            "deployment",
            "web",
            "--image=registry.local/web:1.0",
            "--replicas=2",
            "--port=8080",
        ]);
        let d = json(&["get", "deployment", "web"]);
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            (
                c["imagePullPolicy"].as_str(),
                c["ports"][0]["protocol"].as_str()
            ),
            (Some("IfNotPresent"), Some("TCP"))
        );
        assert_eq!(d["metadata"]["generation"], 1);
        run(&["scale", "deployment", "web", "--replicas=3"]);
        let d = json(&["get", "deployment", "web"]);
        assert_eq!(
            (
                d["spec"]["replicas"].as_i64(),
                d["metadata"]["generation"].as_i64()
            ),
            (Some(3), Some(2))
        );
        run(&["label", "deployment", "web", "tier=front"]);
        run(&["annotate", "deployment", "web", "owner=e2e"]);
        run(&["describe", "deployment", "web"]);

        run(&["create", "service", "clusterip", "web", "--tcp=80:8080"]);
        let s = json(&["get", "service", "web"]);
        let ip = s["spec"]["clusterIP"].as_str().unwrap_or_default();
        assert!(
            ip.starts_with("10.43."),
            "a ClusterIP from the service range: {s}"
        );
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 8080);

        run(&[
            "create",
            "job",
            "once",
            "--image=registry.local/tool:1",
            "--",
            "/bin/true",
        ]);
        let j = json(&["get", "job", "once"]);
        assert_eq!(j["spec"]["backoffLimit"], 6);
        assert_eq!(j["spec"]["template"]["spec"]["restartPolicy"], "Never");
        run(&[
            "create",
            "cronjob",
            "nightly",
            "--image=registry.local/tool:1",
            "--schedule=0 3 * * *",
            "--",
            "/bin/true",
        ]);
        let cj = json(&["get", "cronjob", "nightly"]);
        assert_eq!(
            (
                cj["spec"]["concurrencyPolicy"].as_str(),
                cj["spec"]["successfulJobsHistoryLimit"].as_i64()
            ),
            (Some("Allow"), Some(3))
        );

        run(&["create", "serviceaccount", "robot"]);
        run(&[
            "create",
            "role",
            "reader",
            "--verb=get,list",
            "--resource=pods",
        ]);
        run(&[
            "create",
            "rolebinding",
            "robot-reads",
            "--role=reader",
            "--serviceaccount",
            &format!("{ns}:robot"),
        ]);
        let rb = json(&["get", "rolebinding", "robot-reads"]);
        assert_eq!(rb["roleRef"]["name"], "reader");
        assert_eq!(rb["subjects"][0]["name"], "robot");
        for (kind, name) in [
            ("role", "reader"),
            ("serviceaccount", "robot"),
            ("cronjob", "nightly"),
            ("job", "once"),
        ] {
            run_describe(k, &ns, kind, name);
        }
        let wide = run(&["get", "deployments", "-o", "wide"]);
        assert!(
            wide.lines().next().unwrap_or("").contains("SELECTOR"),
            "{wide}"
        );
        for (kind, name) in [
            ("rolebinding", "robot-reads"),
            ("role", "reader"),
            ("serviceaccount", "robot"),
            ("cronjob", "nightly"),
            ("job", "once"),
            ("service", "web"),
            ("deployment", "web"),
        ] {
            k.ok(&["delete", kind, name, "-n", &ns]);
            let err = k.fails(&["get", kind, name, "-n", &ns]);
            assert!(err.contains("NotFound"), "{kind}: {err}");
        }
    });
}

fn run_describe(k: &Client<'_>, ns: &str, kind: &str, name: &str) {
    let out = k.ok(&["describe", kind, name, "-n", ns]);
    assert!(out.contains(name), "describe {kind} {name}: {out}");
}

#[test]
fn explain_and_raw_discovery_and_openapi() {
    with_each_kubectl(|k| {
        let containers = k.ok(&["explain", "pod.spec.containers"]);
        assert!(
            containers.contains("KIND:") && containers.contains("Pod"),
            "{containers}"
        );
        assert!(containers.contains("image"), "{containers}");
        let strategy = k.ok(&["explain", "deployment.spec.strategy"]);
        assert!(
            strategy.contains("rollingUpdate") && strategy.contains("apps"),
            "{strategy}"
        );
        let api: Value = serde_json::from_str(&k.ok(&["get", "--raw", "/api"])).unwrap();
        assert_eq!(api["kind"], "APIVersions");
        let apis: Value = serde_json::from_str(&k.ok(&["get", "--raw", "/apis"])).unwrap();
        assert_eq!(apis["kind"], "APIGroupList");
        let apps: Value = serde_json::from_str(&k.ok(&["get", "--raw", "/apis/apps/v1"])).unwrap();
        assert_eq!(apps["groupVersion"], "apps/v1");
        let index: Value = serde_json::from_str(&k.ok(&["get", "--raw", "/openapi/v3"])).unwrap();
        assert!(
            index["paths"]["apis/apps/v1"]["serverRelativeURL"].is_string(),
            "{index}"
        );
        let doc: Value =
            serde_json::from_str(&k.ok(&["get", "--raw", "/openapi/v3/apis/apps/v1"])).unwrap();
        assert!(doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"].is_object());
        let v2: Value = serde_json::from_str(&k.ok(&["get", "--raw", "/openapi/v2"])).unwrap();
        assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    });
}
