//! Namespaces as users see them: `kubectl delete namespace`, which waits by default, returns
//! once the namespace controller has emptied the namespace and the namespace is gone; and every
//! namespace has its `default` ServiceAccount (the service account controller), so `kubectl
//! create token default` works in a namespace just made, and its `kube-root-ca.crt` ConfigMap
//! with the CA that verifies the API server (the root CA publisher).

// Helpers of tests: a failed expectation is a test failure, as in the tests themselves.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use rkube_e2e::{Client, with_each_kubectl};

#[test]
fn kubectl_delete_namespace_returns_once_it_and_its_objects_are_gone() {
    with_each_kubectl(|client| {
        let k = |args: &[&str]| client.ok(args);
        let ns = client.namespace("doomed");
        k(&[
            "create",
            "configmap",
            "settings",
            "-n",
            &ns,
            "--from-literal=k=v",
        ]);
        k(&[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            &ns,
            "--from-literal=p=x",
        ]);
        k(&["create", "deployment", "web", "-n", &ns, "--image=nginx"]);
        let listed = k(&[
            "get",
            "configmaps,secrets,deployments",
            "-n",
            &ns,
            "-o",
            "name",
        ]);
        for object in ["configmap/settings", "secret/creds", "deployment.apps/web"] {
            assert!(listed.lines().any(|l| l == object), "{listed}");
        }

        // Waits (kubectl's default) until the namespace is gone.
        let deleted = k(&["delete", "namespace", &ns]);
        assert_eq!(deleted, format!("namespace \"{ns}\" deleted\n"));

        let out = client.run(&["get", "namespace", &ns]);
        assert!(!out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("Error from server (NotFound): namespaces \"{ns}\" not found\n")
        );
        let left = k(&[
            "get",
            "configmaps,secrets,deployments",
            "-n",
            &ns,
            "-o",
            "name",
        ]);
        assert_eq!(left, "");
    });
}

/// Waits (a few seconds at most) until `kubectl get <kind> <name> -n <ns>` succeeds.
fn wait_for(client: &Client<'_>, kind: &str, name: &str, ns: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.run(&["get", kind, name, "-n", ns]).status.success() {
        assert!(Instant::now() < deadline, "no {kind} {name} in {ns}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_default_account(client: &Client<'_>, ns: &str) {
    wait_for(client, "serviceaccount", "default", ns);
}

#[test]
fn every_namespace_gets_its_default_service_account_back() {
    with_each_kubectl(|client| {
        let ns = client.namespace("accounts");
        wait_for_default_account(client, &ns);
        let token = client.ok(&["create", "token", "default", "-n", &ns]);
        assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");

        // Deleted, it comes back.
        client.ok(&["delete", "serviceaccount", "default", "-n", &ns]);
        wait_for_default_account(client, &ns);
        for system in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            wait_for_default_account(client, system);
        }
    });
}

#[test]
fn every_namespace_gets_the_root_ca_that_verifies_the_api_server() {
    with_each_kubectl(|client| {
        let ns = client.namespace("root-ca");
        let ca =
            std::fs::read_to_string(client.cluster.data_dir().join("server/tls/server-ca.crt"))
                .unwrap();
        let published = || {
            wait_for(client, "configmap", "kube-root-ca.crt", &ns);
            client.ok(&[
                "get",
                "configmap",
                "kube-root-ca.crt",
                "-n",
                &ns,
                "-o",
                "jsonpath={.data.ca\\.crt}",
            ])
        };
        assert_eq!(published(), ca);
        // Deleted, it comes back.
        client.ok(&["delete", "configmap", "kube-root-ca.crt", "-n", &ns]);
        assert_eq!(published(), ca);
        for system in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            wait_for(client, "configmap", "kube-root-ca.crt", system);
        }
    });
}
