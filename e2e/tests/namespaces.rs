//! Deleting a namespace as a user does it: `kubectl delete namespace`, which waits by default,
//! returns once the namespace controller has emptied the namespace and the namespace is gone.

// Helpers of tests: a failed expectation is a test failure, as in the tests themselves.
#![allow(clippy::unwrap_used)]

use rkube_e2e::{Cluster, Kubectl, api_kubectls};

/// Runs kubectl against `cluster`, asserts success, returns stdout.
fn ok(cluster: &Cluster, kubectl: &Kubectl, args: &[&str]) -> String {
    let out = cluster.kubectl(kubectl, args).unwrap();
    assert!(
        out.status.success(),
        "kubectl {} {args:?} failed:\n{}",
        kubectl.version,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn kubectl_delete_namespace_returns_once_it_and_its_objects_are_gone() {
    let cluster = Cluster::start(&[]).unwrap();
    for kubectl in &api_kubectls() {
        let k = |args: &[&str]| ok(&cluster, kubectl, args);
        let ns = format!("doomed-{}", kubectl.version.replace('.', "-"));
        k(&["create", "namespace", &ns]);
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

        let out = cluster
            .kubectl(kubectl, &["get", "namespace", &ns])
            .unwrap();
        assert!(!out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("Error from server (NotFound): namespaces \"{ns}\" not found\n")
        );
        let left = cluster
            .kubectl(
                kubectl,
                &[
                    "get",
                    "configmaps,secrets,deployments",
                    "-n",
                    &ns,
                    "-o",
                    "name",
                ],
            )
            .unwrap();
        assert!(left.status.success());
        assert_eq!(String::from_utf8_lossy(&left.stdout), "");
    }
}
