//! Server-side apply and managedFields as users drive them: `kubectl apply --server-side`
//! (re-apply, pruning of removed fields, conflicts between managers), the hand-over between
//! client-side and server-side apply, `kubectl diff`, and Helm 4 (which applies server-side).

// Helpers of tests: a failed expectation is a test failure, as in the tests themselves.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use rkube_e2e::{Client, Cluster, api_kubectls, curl, helm, with_each_kubectl};
use serde_json::Value;

/// A Deployment manifest with these replicas, image and env var names.
fn manifest(ns: &str, replicas: u32, image: &str, env: &[&str]) -> String {
    let env: String = env
        .iter()
        .map(|n| format!("        - name: {n}\n          value: \"1\"\n"))
        .collect();
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels:
    app: web
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: {image}
        env:
{env}"
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// The Deployment `web` in `ns`, with its managedFields.
fn live(client: &Client<'_>, ns: &str) -> Value {
    client.json(&[
        "get",
        "deployment",
        "web",
        "-n",
        ns,
        "--show-managed-fields",
    ])
}

fn env_names(object: &Value) -> Vec<String> {
    object["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn managers(object: &Value) -> Vec<(String, String)> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or("").to_string(),
                        e["operation"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kubectl_server_side_apply_reapplies_prunes_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    with_each_kubectl(|client| {
        let k = |args: &[&str]| client.ok(args);
        let ns = client.namespace("ssa");
        let file = write(
            dir.path(),
            "file.yaml",
            &manifest(&ns, 1, "nginx:1.25", &["A", "B"]),
        );
        k(&["apply", "--server-side", "-f", &file]);
        let object = live(client, &ns);
        assert_eq!(object["spec"]["replicas"], 1);
        assert!(managers(&object).contains(&("kubectl".into(), "Apply".into())));

        // Change image and replicas, drop env B: re-apply updates and prunes.
        let file = write(
            dir.path(),
            "file.yaml",
            &manifest(&ns, 3, "nginx:1.27", &["A"]),
        );
        k(&["apply", "--server-side", "-f", &file]);
        let object = live(client, &ns);
        assert_eq!(object["spec"]["replicas"], 3);
        assert_eq!(
            object["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.27"
        );
        assert_eq!(env_names(&object), ["A"]);

        // Another manager setting replicas conflicts, naming the field, until forced.
        let other = write(
            dir.path(),
            "other.yaml",
            &manifest(&ns, 5, "nginx:1.27", &["A"]),
        );
        let out = client.run(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            &other,
        ]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(".spec.replicas"), "{stderr}");
        assert!(stderr.contains(r#"conflict with "kubectl""#), "{stderr}");
        k(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            &other,
        ]);
        assert_eq!(live(client, &ns)["spec"]["replicas"], 5);

        // kubectl diff: a change exits 1 and shows it; nothing to change exits 0.
        let changed = write(
            dir.path(),
            "changed.yaml",
            &manifest(&ns, 5, "nginx:1.28", &["A"]),
        );
        let out = client.run(&["diff", "--server-side", "--force-conflicts", "-f", &changed]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("nginx:1.28"));
        let out = client.run(&[
            "diff",
            "--server-side",
            "--field-manager=other",
            "-f",
            &other,
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Nothing was stored by the dry runs.
        let object = live(client, &ns);
        assert_eq!(
            object["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.27"
        );
        k(&["delete", "namespace", &ns, "--wait=false"]);
    });
}

/// A server-side apply of `body` to `path` with `query`, by curl with `extra` arguments (kubectl
/// cannot apply a Scale: it finds no resource for the kind, upstream too).
fn apply_raw(
    cluster: &Cluster,
    path: &str,
    query: &str,
    body: &str,
    extra: &[&str],
) -> rkube_e2e::HttpResponse {
    let mut args = cluster.client_files().unwrap().curl_args();
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend(
        [
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/apply-patch+yaml",
            "--data-binary",
            body,
        ]
        .map(String::from),
    );
    curl(&format!("{}{path}?{query}", cluster.url()), &args).unwrap()
}

#[test]
fn server_side_apply_on_the_scale_subresource() {
    let dir = tempfile::tempdir().unwrap();
    with_each_kubectl(|client| {
        let ns = client.namespace("ssa-scale");
        let file = write(dir.path(), "d.yaml", &manifest(&ns, 1, "nginx:1.25", &[]));
        client.ok(&["apply", "--server-side", "-f", &file]);
        let path = format!("/apis/apps/v1/namespaces/{ns}/deployments/web/scale");
        let scale = format!(
            "apiVersion: autoscaling/v1\nkind: Scale\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  replicas: 4\n"
        );
        // kubectl's apply of the Deployment owns the replicas: a conflict until forced.
        let r = apply_raw(client.cluster, &path, "fieldManager=scaler", &scale, &[]);
        assert_eq!(r.status, 409, "{}", r.body);
        let message = r.json().unwrap()["message"].as_str().unwrap().to_string();
        assert_eq!(
            message,
            r#"Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas"#
        );
        let r = apply_raw(
            client.cluster,
            &path,
            "fieldManager=scaler&force=true",
            &scale,
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let answer = r.json().unwrap();
        assert_eq!(answer["kind"], "Scale");
        assert_eq!(answer["spec"]["replicas"], 4);

        let object = live(client, &ns);
        assert_eq!(object["spec"]["replicas"], 4);
        let entries = object["metadata"]["managedFields"].as_array().unwrap();
        let scaler = entries
            .iter()
            .find(|e| e["manager"] == "scaler")
            .expect("an entry for the scale's applier");
        assert_eq!(scaler["operation"], "Apply");
        assert_eq!(scaler["subresource"], "scale");
        assert_eq!(scaler["apiVersion"], "apps/v1");
        assert_eq!(
            scaler["fieldsV1"],
            serde_json::json!({"f:spec": {"f:replicas": {}}})
        );
        let kubectl = entries
            .iter()
            .find(|e| e["manager"] == "kubectl")
            .expect("kubectl keeps the rest");
        assert!(kubectl["fieldsV1"]["f:spec"].get("f:replicas").is_none());

        // The Deployment's applier now conflicts with the scale's, and a Scale of another
        // kind is refused.
        let out = client.run(&["apply", "--server-side", "-f", &file]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(r#"conflict with "scaler" with subresource "scale""#),
            "{stderr}"
        );
        let r = apply_raw(
            client.cluster,
            &path,
            "fieldManager=scaler",
            &scale.replace("kind: Scale", "kind: Deployment"),
            &[],
        );
        assert_eq!(r.status, 400, "{}", r.body);
        client.ok(&["delete", "namespace", &ns, "--wait=false"]);
    });
}

#[test]
fn apply_bodies_are_checked_for_duplicate_keys_only() {
    let cluster = Cluster::start(&[]).unwrap();
    let body = "{\n\"apiVersion\": \"v1\",\n\"kind\": \"ConfigMap\",\n\"metadata\": {\"name\": \"dup\"},\n\"data\": {\n  \"a\": \"1\",\n  \"a\": \"2\"\n}\n}";
    let headers = tempfile::NamedTempFile::new().unwrap();
    let dump = headers.path().display().to_string();
    let apply = |query: &str, body: &str| {
        let path = "/api/v1/namespaces/default/configmaps/dup";
        apply_raw(
            &cluster,
            path,
            &format!("fieldManager=t{query}"),
            body,
            &["--dump-header", &dump],
        )
    };
    let warning = || {
        std::fs::read_to_string(headers.path())
            .unwrap()
            .to_lowercase()
    };
    let strict = apply("&fieldValidation=Strict", body);
    assert_eq!(strict.status, 400, "{}", strict.body);
    assert_eq!(
        strict.json().unwrap()["message"],
        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 7: key \"a\" already set in map"
    );
    // Warn (the default) and Ignore store the last value.
    let warned = apply("", body);
    // The apply that creates answers 201, as upstream; the next ones 200.
    assert_eq!(warned.status, 201, "{}", warned.body);
    assert_eq!(warned.json().unwrap()["data"]["a"], "2");
    assert!(
        warning().contains(r#"warning: 299 - "line 7: key \"a\" already set in map""#),
        "{}",
        warning()
    );
    let ignored = apply("&fieldValidation=Ignore", body);
    assert_eq!(ignored.status, 200, "{}", ignored.body);
    assert!(!warning().contains("warning:"), "{}", warning());
    // Unknown fields are the apply's own error in every mode, as upstream's (500).
    let unknown = body.replace("\"data\"", "\"bogus\"");
    for mode in ["", "&fieldValidation=Ignore"] {
        let r = apply(mode, &unknown);
        assert_eq!(r.status, 500, "{}", r.body);
        let message = r.json().unwrap()["message"].as_str().unwrap().to_string();
        assert!(
            message.ends_with(".bogus: field not declared in schema"),
            "{message}"
        );
    }
}

#[test]
fn client_side_apply_hands_over_to_server_side_and_back() {
    let dir = tempfile::tempdir().unwrap();
    with_each_kubectl(|client| {
        let k = |args: &[&str]| client.ok(args);
        let ns = client.namespace("csa");
        let file = write(
            dir.path(),
            "file.yaml",
            &manifest(&ns, 1, "nginx:1.25", &["A"]),
        );
        k(&["apply", "-f", &file]);
        let object = live(client, &ns);
        assert!(
            managers(&object).contains(&("kubectl-client-side-apply".into(), "Update".into())),
            "{:?}",
            managers(&object)
        );
        assert!(
            object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                .is_string()
        );

        // Server-side apply of a changed file after a client-side apply: no conflict.
        let file = write(
            dir.path(),
            "file.yaml",
            &manifest(&ns, 2, "nginx:1.26", &["A"]),
        );
        k(&["apply", "--server-side", "-f", &file]);
        let object = live(client, &ns);
        assert_eq!(object["spec"]["replicas"], 2);
        let last: Value = serde_json::from_str(
            object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            last["spec"]["replicas"], 2,
            "the annotation follows server-side applies"
        );

        // And back to client-side apply, removing an env var.
        let file = write(
            dir.path(),
            "file.yaml",
            &manifest(&ns, 3, "nginx:1.26", &[]),
        );
        k(&["apply", "-f", &file]);
        let object = live(client, &ns);
        assert_eq!(object["spec"]["replicas"], 3);
        assert!(env_names(&object).is_empty(), "{:?}", env_names(&object));
        k(&["delete", "namespace", &ns, "--wait=false"]);
    });
}

#[test]
fn helm_installs_and_upgrades_a_chart_server_side() {
    let Some(helm) = helm() else {
        eprintln!("no Helm in this run (scripts/test provides it): skipping");
        return;
    };
    let cluster = Cluster::start(&[]).unwrap();
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/rkube-e2e-demo");
    let helm_run = |args: &[&str]| {
        let out = Command::new(&helm)
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("HELM_CACHE_HOME", cluster.data_dir().join("helm-cache"))
            .env("HELM_CONFIG_HOME", cluster.data_dir().join("helm-config"))
            .env("HELM_DATA_HOME", cluster.data_dir().join("helm-data"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "helm {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let chart = chart.to_string_lossy().into_owned();
    helm_run(&["install", "demo", &chart, "--namespace", "default"]);
    let client = Client {
        cluster: &cluster,
        kubectl: &api_kubectls()[0],
    };
    let get = |what: &str| client.json(&["get", what, "-n", "default", "--show-managed-fields"]);
    let deployment = get("deployment/demo-web");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert!(
        managers(&deployment)
            .iter()
            .any(|(m, op)| m == "helm" && op == "Apply"),
        "{:?}",
        managers(&deployment)
    );
    assert_eq!(get("configmap/demo-settings")["data"]["greeting"], "hello");
    assert!(get("service/demo-web")["spec"]["clusterIP"].is_string());

    helm_run(&[
        "upgrade",
        "demo",
        &chart,
        "--namespace",
        "default",
        "--set",
        "replicas=2",
        "--set",
        "image=nginx:1.27",
    ]);
    let deployment = get("deployment/demo-web");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
}
