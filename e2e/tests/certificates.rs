//! CertificateSigningRequests through stock kubectl: a request made with openssl is submitted,
//! `kubectl certificate approve`d, signed by the cluster's client CA, and the issued
//! certificate then logs its user in; `kubectl certificate deny` leaves a request unsigned;
//! a request that is not PEM is refused with upstream's message. Approving needs `approve` on
//! the signer (CertificateApproval), nobody gets a `system:masters` certificate from the client
//! signer (CertificateSubjectRestriction), and a node's request for its own kubelet client
//! certificate is approved and issued by the controllers alone.

// Test code: a failed expectation panics.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use rkube_e2e::client::{Client, with_each_kubectl};
use rkube_e2e::credentials::{Credential, b64, kubeconfig, kubectl_as, p256_request};
use rkube_e2e::{Cluster, api_kubectls};
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

/// Polls the CSR `name` until `done` holds.
fn wait_for(client: &Client<'_>, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let current = csr(client, name);
        if done(&current) {
            return current;
        }
        assert!(Instant::now() < deadline, "never got there: {current}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes to `dir` a CSR manifest named `name` for `signer` with `usages` and the request PEM
/// `request`; answers its path.
fn manifest(
    dir: &std::path::Path,
    name: &str,
    signer: &str,
    usages: &[&str],
    request: &str,
) -> String {
    let manifest = json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": b64(request.as_bytes()), "signerName": signer, "usages": usages},
    });
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, manifest.to_string()).unwrap();
    file.to_str().unwrap().to_owned()
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

/// The static token file's users: carol, and the kubelet of node n1.
const TOKENS: &str = "carol-token,carol,carol-uid\nn1-token,system:node:n1,n1-uid,system:nodes\n";

/// Runs kubectl as the user of `config`, answering whether it succeeded and what it printed
/// (stdout, then stderr).
fn as_user(client: &Client<'_>, config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = kubectl_as(client.kubectl, config, args);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

#[test]
fn signers_guard_approval_and_kubelets_get_their_client_certificates_alone() {
    let work = tempfile::tempdir().unwrap();
    let tokens = work.path().join("tokens.csv");
    std::fs::write(&tokens, TOKENS).unwrap();
    let cluster = Cluster::start(&["--token-auth-file", tokens.to_str().unwrap()])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let kubectls = api_kubectls();
    let admin = Client {
        cluster: &cluster,
        kubectl: &kubectls[0],
    };
    // carol may create, read and approve requests, but holds no signer.
    admin.ok(&[
        "create",
        "clusterrole",
        "csr-approver",
        "--verb=create,get,list",
        "--resource=certificatesigningrequests",
    ]);
    admin.ok(&[
        "create",
        "clusterrole",
        "csr-approval",
        "--verb=update",
        "--resource=certificatesigningrequests/approval",
    ]);
    for role in ["csr-approver", "csr-approval"] {
        admin.ok(&[
            "create",
            "clusterrolebinding",
            &format!("carol-{role}"),
            &format!("--clusterrole={role}"),
            "--user=carol",
        ]);
    }
    // As kubeadm binds them: nodes may ask for certificates, and renew their own.
    admin.ok(&[
        "create",
        "clusterrolebinding",
        "nodes-request",
        "--clusterrole=system:node-bootstrapper",
        "--group=system:nodes",
    ]);
    admin.ok(&[
        "create",
        "clusterrolebinding",
        "nodes-renew",
        "--clusterrole=system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        "--group=system:nodes",
    ]);
    let carol = kubeconfig(
        &cluster,
        &work.path().join("carol.json"),
        Credential::Token("carol-token"),
    );
    let node = kubeconfig(
        &cluster,
        &work.path().join("n1.json"),
        Credential::Token("n1-token"),
    );

    for kubectl in &kubectls {
        let client = Client {
            cluster: &cluster,
            kubectl,
        };
        let version = kubectl.version.replace('.', "-");
        let dir = work.path().join(&version);
        std::fs::create_dir(&dir).unwrap();

        // carol's own request, which she may not approve.
        let name = format!("carol-{version}");
        let (request, _) = p256_request(&dir, "carol", "/CN=carol");
        let file = manifest(
            &dir,
            &name,
            "kubernetes.io/kube-apiserver-client",
            &["client auth"],
            &request,
        );
        let (created, out) = as_user(&client, &carol, &["create", "-f", &file]);
        assert!(created, "{out}");
        let (approved, out) = as_user(&client, &carol, &["certificate", "approve", &name]);
        assert!(!approved, "{out}");
        assert!(
            out.contains(&format!(
                r#"certificatesigningrequests.certificates.k8s.io "{name}" is forbidden: user not permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client""#
            )),
            "{out}"
        );
        assert_eq!(csr(&client, &name)["status"], json!({}));

        // Nobody gets a system:masters client certificate, the admin included.
        let masters = format!("masters-{version}");
        let (request, _) = p256_request(&dir, "eve", "/CN=eve/O=system:masters");
        let file = manifest(
            &dir,
            &masters,
            "kubernetes.io/kube-apiserver-client",
            &["client auth"],
            &request,
        );
        let err = client.fails(&["create", "-f", &file]);
        assert!(
            err.contains(&format!(
                r#"certificatesigningrequests.certificates.k8s.io "{masters}" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"#
            )),
            "{err}"
        );

        // The kubelet of n1 asks for its own client certificate: approved and issued alone.
        let kubelet = format!("n1-{version}");
        let (request, key) = p256_request(&dir, "n1", "/O=system:nodes/CN=system:node:n1");
        let file = manifest(
            &dir,
            &kubelet,
            "kubernetes.io/kube-apiserver-client-kubelet",
            &["digital signature", "client auth"],
            &request,
        );
        let (created, out) = as_user(&client, &node, &["create", "-f", &file]);
        assert!(created, "{out}");
        let issued = wait_for(&client, &kubelet, |c| {
            c["status"]["certificate"].is_string()
        });
        let approval = &issued["status"]["conditions"][0];
        assert_eq!(approval["type"], "Approved", "{issued}");
        assert_eq!(approval["reason"], "AutoApproved");
        assert_eq!(
            approval["message"],
            "Auto approving self kubelet client certificate after SubjectAccessReview."
        );
        let cert = base64::engine::general_purpose::STANDARD
            .decode(issued["status"]["certificate"].as_str().unwrap())
            .unwrap();
        let cert = String::from_utf8(cert).unwrap();
        let login = kubeconfig(
            &cluster,
            &dir.join("n1-cert.json"),
            Credential::Cert(&cert, &key),
        );
        let (ok, out) = as_user(&client, &login, &["auth", "whoami", "-o", "json"]);
        assert!(ok, "{out}");
        let review: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(review["status"]["userInfo"]["username"], "system:node:n1");
    }

    // With `approve` on every kubernetes.io signer, carol's approval goes through.
    // (A manifest: kubectl's `create clusterrole` looks `signers` up in discovery.)
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "kubernetes-signers"},
        "rules": [{"apiGroups": ["certificates.k8s.io"], "resources": ["signers"],
                   "resourceNames": ["kubernetes.io/*"], "verbs": ["approve"]}],
    });
    admin.create_file("default", &role.to_string());
    admin.ok(&[
        "create",
        "clusterrolebinding",
        "carol-signers",
        "--clusterrole=kubernetes-signers",
        "--user=carol",
    ]);
    let name = format!("carol-{}", kubectls[0].version.replace('.', "-"));
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let (approved, out) = as_user(&admin, &carol, &["certificate", "approve", &name]);
        if approved {
            break;
        }
        // The binding reaches the authorizer through a watch.
        assert!(Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for(&admin, &name, |c| c["status"]["certificate"].is_string());
}
