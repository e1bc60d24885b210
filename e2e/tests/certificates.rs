//! CertificateSigningRequests through stock kubectl: a request made with openssl is submitted,
//! `kubectl certificate approve`d, signed by the cluster's client CA, and the issued
//! certificate then logs its user in; `kubectl certificate deny` leaves a request unsigned;
//! a request that is not PEM is refused with upstream's message.

// Test code: a failed expectation panics.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use rkube_e2e::client::{Client, with_each_kubectl};
use rkube_e2e::credentials::{Credential, b64, kubeconfig, kubectl_as, p256_request};
use serde_json::{Value, json};

/// A guard against a hang: signing takes milliseconds.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn submit(client: &Client<'_>, name: &str, request: &[u8]) {
    let manifest = json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": b64(request), "signerName": "kubernetes.io/kube-apiserver-client",
                 "usages": ["client auth"], "expirationSeconds": 86400},
    });
    client.create_file("default", &manifest.to_string());
}

fn csr(client: &Client<'_>, name: &str) -> Value {
    client.json(&["get", "csr", name])
}

#[test]
fn approved_requests_are_signed_and_the_certificate_logs_in() {
    with_each_kubectl(|client| {
        let dir = tempfile::tempdir().unwrap();
        let version = client.kubectl.version.replace('.', "-");
        let name = format!("alice-{version}");
        let (request, key) = p256_request(dir.path(), "user", "/CN=alice/O=devs");
        submit(client, &name, request.as_bytes());
        let created = csr(client, &name);
        // The server, not the client, says who asked: here the admin.
        assert_eq!(created["spec"]["username"], "system:admin", "{created}");
        assert_eq!(
            created["spec"]["groups"],
            json!(["system:masters", "system:authenticated"]),
            "{created}"
        );
        assert_eq!(created["status"], json!({}));

        let out = client.ok(&["certificate", "approve", &name]);
        assert!(out.contains("approved"), "{out}");
        let deadline = Instant::now() + HANG_GUARD;
        let signed = loop {
            let current = csr(client, &name);
            if current["status"]["certificate"].is_string() {
                break current;
            }
            assert!(Instant::now() < deadline, "never signed: {current}");
            std::thread::sleep(Duration::from_millis(100));
        };
        let conditions = &signed["status"]["conditions"];
        assert_eq!(conditions[0]["type"], "Approved");
        assert_eq!(conditions[0]["reason"], "KubectlApprove");
        assert!(conditions[0]["lastTransitionTime"].is_string());
        let cert = base64::engine::general_purpose::STANDARD
            .decode(signed["status"]["certificate"].as_str().unwrap())
            .unwrap();
        let cert = String::from_utf8(cert).unwrap();

        // The issued certificate is a login as alice in devs.
        let config = dir.path().join("alice.kubeconfig");
        kubeconfig(client.cluster, &config, Credential::Cert(&cert, &key));
        let out = kubectl_as(client.kubectl, &config, &["auth", "whoami", "-o", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let review: Value = serde_json::from_slice(&out.stdout).unwrap();
        let user = &review["status"]["userInfo"];
        assert_eq!(user["username"], "alice");
        let groups: Vec<&str> = user["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(groups.contains(&"devs"), "{groups:?}");
        // Authenticated but not authorized: 403 naming alice, never 401.
        let out = kubectl_as(client.kubectl, &config, &["get", "pods", "-n", "default"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(r#"User "alice" cannot list resource "pods""#),
            "{err}"
        );

        // A denied request is never signed.
        let denied = format!("denied-{version}");
        let (request, _) = p256_request(dir.path(), "user", "/CN=mallory");
        submit(client, &denied, request.as_bytes());
        let out = client.ok(&["certificate", "deny", &denied]);
        assert!(out.contains("denied"), "{out}");
        std::thread::sleep(Duration::from_secs(1));
        let current = csr(client, &denied);
        assert_eq!(current["status"]["conditions"][0]["type"], "Denied");
        assert!(current["status"].get("certificate").is_none(), "{current}");
        // kubectl will not approve it afterwards (the server would refuse: see the registry's
        // tests).
        let err = client.fails(&["certificate", "approve", "--force", &denied]);
        assert!(err.contains("is already Denied"), "{err}");

        // Not a request at all.
        let manifest = json!({
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": format!("garbage-{version}")},
            "spec": {"request": b64(b"hello"), "signerName": "kubernetes.io/kube-apiserver-client",
                     "usages": ["client auth"]},
        });
        let file = dir.path().join("garbage.json");
        std::fs::write(&file, manifest.to_string()).unwrap();
        let err = client.fails(&["create", "-f", file.to_str().unwrap()]);
        assert!(
            err.contains("PEM block type must be CERTIFICATE REQUEST"),
            "{err}"
        );
    });
}
