//! Strategic merge patch as stock kubectl (1.33 and newer) sends it: client-side `apply` and
//! re-apply of an edited file, `apply --prune`, `set image`, `rollout restart`, `patch
//! --type=strategic` with `$patch: delete`, and `edit` through a scripted editor.

// Helpers of tests: a failed expectation is a test failure, as in the tests themselves.
#![allow(clippy::unwrap_used)]

use rkube_e2e::with_each_kubectl;
use serde_json::{Value, json};

/// A Deployment of one container `app` with the given image, replicas and env vars.
fn deployment(image: &str, replicas: u32, env: &[(&str, &str)]) -> String {
    let env: String = env
        .iter()
        .map(|(n, v)| format!("\n        - name: {n}\n          value: \"{v}\""))
        .collect();
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: app
        image: {image}
        ports:
        - containerPort: 80
        env:{env}
      - name: sidecar
        image: busybox:1
"
    )
}

fn containers(deploy: &Value) -> &Vec<Value> {
    deploy["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
}

fn container<'a>(deploy: &'a Value, name: &str) -> &'a Value {
    containers(deploy)
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {deploy}"))
}

#[test]
fn client_side_apply_merges_edits_of_the_file() {
    with_each_kubectl(|k| {
        let ns = k.namespace("apply");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("deploy.yaml");
        let get = || k.json(&["get", "deployment", "web", "-n", &ns]);

        let out = k.apply(
            &ns,
            &file,
            &deployment("nginx:1", 1, &[("A", "1"), ("B", "2")]),
            &[],
        );
        assert!(out.contains("deployment.apps/web created"), "{out}");

        // A field set by someone else survives the re-apply: the patch merges, not replaces.
        k.ok(&["label", "deployment", "web", "-n", &ns, "extra=kept"]);
        let out = k.apply(
            &ns,
            &file,
            &deployment("nginx:2", 3, &[("A", "1"), ("B", "2")]),
            &[],
        );
        assert!(out.contains("deployment.apps/web configured"), "{out}");
        let live = get();
        assert_eq!(live["spec"]["replicas"], 3);
        assert_eq!(container(&live, "app")["image"], "nginx:2");
        assert_eq!(container(&live, "sidecar")["image"], "busybox:1");
        assert_eq!(live["metadata"]["labels"]["extra"], "kept");
        let names: Vec<&Value> = containers(&live).iter().map(|c| &c["name"]).collect();
        assert_eq!(names, ["app", "sidecar"]);

        // An env var removed from the file leaves the live object; the rest keep their order.
        k.apply(
            &ns,
            &file,
            &deployment("nginx:2", 3, &[("C", "3"), ("A", "1")]),
            &[],
        );
        let live = get();
        assert_eq!(
            container(&live, "app")["env"],
            json!([{"name": "C", "value": "3"}, {"name": "A", "value": "1"}])
        );
        assert_eq!(container(&live, "app")["ports"][0]["containerPort"], 80);

        // Unchanged: nothing to patch.
        let out = k.apply(
            &ns,
            &file,
            &deployment("nginx:2", 3, &[("C", "3"), ("A", "1")]),
            &[],
        );
        assert!(out.contains("deployment.apps/web unchanged"), "{out}");
    });
}

#[test]
fn kubectl_commands_that_send_strategic_patches() {
    with_each_kubectl(|k| {
        let ns = k.namespace("smp");
        let dir = tempfile::tempdir().unwrap();
        k.apply(
            &ns,
            &dir.path().join("deploy.yaml"),
            &deployment("nginx:1", 1, &[("A", "1")]),
            &[],
        );
        let get = || k.json(&["get", "deployment", "web", "-n", &ns]);

        k.ok(&["set", "image", "deployment/web", "-n", &ns, "app=nginx:3"]);
        let live = get();
        assert_eq!(container(&live, "app")["image"], "nginx:3");
        assert_eq!(container(&live, "sidecar")["image"], "busybox:1");

        k.ok(&["rollout", "restart", "deployment/web", "-n", &ns]);
        let live = get();
        let restarted = &live["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"];
        assert!(restarted.is_string(), "{live}");
        assert_eq!(live["spec"]["template"]["metadata"]["labels"]["app"], "web");

        let delete = r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#;
        k.ok(&[
            "patch",
            "deployment",
            "web",
            "-n",
            &ns,
            "--type=strategic",
            "-p",
            delete,
        ]);
        let live = get();
        let names: Vec<&Value> = containers(&live).iter().map(|c| &c["name"]).collect();
        assert_eq!(names, ["app"]);
        assert_eq!(
            container(&live, "app")["env"],
            json!([{"name": "A", "value": "1"}])
        );

        // A strategic patch naming a container without its merge key: upstream's 500.
        let bad = r#"{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#;
        let stderr = k.fails(&[
            "patch",
            "deployment",
            "web",
            "-n",
            &ns,
            "--type=strategic",
            "-p",
            bad,
        ]);
        assert!(
            stderr.contains("does not contain declared merge key: name"),
            "{stderr}"
        );

        // `kubectl edit` diffs the edited file into a strategic merge patch.
        let editor = dir.path().join("editor.sh");
        std::fs::write(
            &editor,
            "#!/bin/sh\nsed -i -e 's/replicas: 1$/replicas: 4/' -e 's/nginx:3/nginx:4/' \"$1\"\n",
        )
        .unwrap();
        let editor_cmd = format!("sh {}", editor.display());
        k.ok_with(
            &[("KUBE_EDITOR", &editor_cmd), ("EDITOR", &editor_cmd)],
            &["edit", "deployment", "web", "-n", &ns],
        );
        let live = get();
        assert_eq!(live["spec"]["replicas"], 4);
        assert_eq!(container(&live, "app")["image"], "nginx:4");
        assert!(live["spec"]["template"]["metadata"]["annotations"]
            ["kubectl.kubernetes.io/restartedAt"]
            .is_string());
    });
}

#[test]
fn apply_prune_removes_what_left_the_file_set() {
    with_each_kubectl(|k| {
        let ns = k.namespace("prune");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("set.yaml");
        let cm = |name: &str| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{app: x}}\ndata:\n  k: v\n"
            )
        };
        let both = format!("{}---\n{}", cm("one"), cm("two"));
        k.apply(&ns, &file, &both, &["--prune", "-l", "app=x"]);
        k.ok(&["create", "configmap", "unmanaged", "-n", &ns]);
        k.ok(&["label", "configmap", "unmanaged", "-n", &ns, "app=x"]);

        let out = k.apply(&ns, &file, &cm("one"), &["--prune", "-l", "app=x"]);
        assert!(out.contains("configmap/two pruned"), "{out}");
        let names = k.ok(&["get", "configmaps", "-n", &ns, "-l", "app=x", "-o", "name"]);
        let mut names: Vec<&str> = names.lines().collect();
        names.sort_unstable();
        // Objects never applied carry no last-applied configuration and are left alone.
        assert_eq!(names, ["configmap/one", "configmap/unmanaged"]);
    });
}
