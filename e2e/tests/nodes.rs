//! What a node may do, through stock kubectl with a kubelet's credentials: a client
//! certificate for `system:node:node-a` in `system:nodes` from the kubelet client signer. The
//! Node authorizer gives it its own Node and the secrets of pods bound to it (and takes them
//! back when the pod goes); NodeRestriction keeps it off other Nodes and off the labels that
//! steer workloads.

// Test code: a failed expectation panics.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rkube_e2e::client::Client;
use rkube_e2e::credentials::{Credential, b64, kubeconfig, kubectl_as, p256_request};
use rkube_e2e::{Cluster, Kubectl, api_kubectls};
use serde_json::{Value, json};

/// A guard against a hang: every change here reaches the server's indexes in milliseconds.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// A kubeconfig for `system:node:<node>`, its certificate issued by the kubelet client signer
/// on a request the admin approves.
fn node_kubeconfig(admin: &Client<'_>, dir: &Path, node: &str) -> std::path::PathBuf {
    let subject = format!("/O=system:nodes/CN=system:node:{node}");
    let (request, key) = p256_request(dir, node, &subject);
    let csr = json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": node},
        "spec": {"request": b64(request.as_bytes()),
                 "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                 "usages": ["digital signature", "client auth"]},
    });
    admin.create_file("default", &csr.to_string());
    // The approver may have been quicker: then kubectl has nothing to add.
    admin.run(&["certificate", "approve", node]);
    let deadline = Instant::now() + HANG_GUARD;
    let certificate = loop {
        let current = admin.json(&["get", "csr", node]);
        if let Some(signed) = current["status"]["certificate"].as_str() {
            break signed.to_owned();
        }
        assert!(Instant::now() < deadline, "never signed: {current}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let pem = base64::engine::general_purpose::STANDARD
        .decode(certificate)
        .unwrap();
    let pem = String::from_utf8(pem).unwrap();
    kubeconfig(
        admin.cluster,
        &dir.join(format!("{node}.kubeconfig")),
        Credential::Cert(&pem, &key),
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs kubectl as the node and asserts it succeeds.
fn ok(kubectl: &Kubectl, config: &Path, args: &[&str]) -> String {
    let out = kubectl_as(kubectl, config, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs kubectl as the node and answers its error when it fails (`None` when it succeeds).
fn refused(kubectl: &Kubectl, config: &Path, args: &[&str]) -> Option<String> {
    let out = kubectl_as(kubectl, config, args);
    (!out.status.success()).then(|| stderr(&out))
}

/// Retries `check` until it holds (the graph follows the registry through a watch).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !check() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn node(name: &str, labels: Value) -> String {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}})
        .to_string()
}

#[test]
fn nodes_reach_their_own_node_and_the_secrets_of_their_pods_only() {
    let cluster = Cluster::start(&[]).unwrap_or_else(|e| panic!("{e:#}"));
    let kubectls = api_kubectls();
    let kubectl = kubectls.first().expect("a kubectl of 1.33 or newer");
    let admin = Client {
        cluster: &cluster,
        kubectl,
    };
    let dir = tempfile::tempdir().unwrap();
    let node_a = node_kubeconfig(&admin, dir.path(), "node-a");
    let whoami = ok(kubectl, &node_a, &["auth", "whoami", "-o", "json"]);
    let whoami: Value = serde_json::from_str(&whoami).unwrap();
    assert_eq!(
        whoami["status"]["userInfo"]["username"],
        "system:node:node-a"
    );

    // Its own Node: registered and read back; another's: neither written nor read.
    let manifest = dir.path().join("node-a.json");
    std::fs::write(
        &manifest,
        node("node-a", json!({"kubernetes.io/hostname": "node-a"})),
    )
    .unwrap();
    ok(
        kubectl,
        &node_a,
        &["create", "-f", manifest.to_str().unwrap()],
    );
    ok(kubectl, &node_a, &["get", "node", "node-a"]);
    admin.create_file("default", &node("node-b", json!({})));
    // A replace sends the object as is (a patch would read it first, which is refused).
    let mut other = admin.json(&["get", "node", "node-b"]);
    other["metadata"]["labels"] = json!({"x": "y"});
    let replaced = dir.path().join("node-b.json");
    std::fs::write(&replaced, other.to_string()).unwrap();
    let error = refused(
        kubectl,
        &node_a,
        &["replace", "-f", replaced.to_str().unwrap()],
    )
    .expect("node-a replaced node-b");
    assert!(
        error.contains(
            r#"nodes "node-b" is forbidden: node "node-a" is not allowed to modify node "node-b""#
        ),
        "{error}"
    );
    let error = refused(kubectl, &node_a, &["get", "node", "node-b"]).expect("node-a read node-b");
    assert!(
        error.contains(r#"User "system:node:node-a" cannot get resource "nodes" in API group "" at the cluster scope: node 'node-a' cannot read 'node-b', only its own Node object"#),
        "{error}"
    );

    // Labels that steer workloads are not the node's to set; its own namespace's are.
    let error = refused(
        kubectl,
        &node_a,
        &[
            "label",
            "node",
            "node-a",
            "node-restriction.kubernetes.io/pool=gpu",
        ],
    )
    .expect("node-a set a node-restriction label");
    assert!(
        error.contains(r#"nodes "node-a" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool"#),
        "{error}"
    );
    ok(
        kubectl,
        &node_a,
        &["label", "node", "node-a", "node.kubernetes.io/pool=gpu"],
    );

    // A secret is the node's while a pod bound to it uses it.
    admin.ok(&["create", "namespace", "apps"]);
    for secret in ["used", "unused"] {
        admin.ok(&[
            "create",
            "secret",
            "generic",
            secret,
            "-n",
            "apps",
            "--from-literal=k=v",
        ]);
    }
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "s", "secret": {"secretName": "used"}}]},
    });
    admin.create_file("apps", &pod.to_string());
    let get_used = ["get", "secret", "used", "-n", "apps"];
    eventually("node-a reading the used secret", || {
        refused(kubectl, &node_a, &get_used).is_none()
    });
    ok(kubectl, &node_a, &["get", "pod", "web", "-n", "apps"]);
    let error = refused(kubectl, &node_a, &["get", "secret", "unused", "-n", "apps"])
        .expect("node-a read a secret no pod of it uses");
    assert!(
        error.contains(r#"secrets "unused" is forbidden: User "system:node:node-a" cannot get resource "secrets" in API group "" in the namespace "apps": no relationship found between node 'node-a' and this object"#),
        "{error}"
    );
    let error = refused(kubectl, &node_a, &["get", "secrets", "-n", "apps"])
        .expect("node-a listed secrets");
    assert!(error.contains("No Object name found"), "{error}");

    admin.ok(&[
        "delete",
        "pod",
        "web",
        "-n",
        "apps",
        "--grace-period=0",
        "--force",
    ]);
    eventually("node-a losing the secret with its pod", || {
        refused(kubectl, &node_a, &get_used)
            .is_some_and(|e| e.contains("no relationship found between node 'node-a'"))
    });
}
