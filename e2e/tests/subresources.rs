//! Pods' and service accounts' subresources driven by stock kubectl: `kubectl create token`
//! (claims and the ES256 signature checked against the server's key file), binding and
//! eviction as raw POSTs, ephemeral containers and resize through `kubectl patch
//! --subresource`, and `kubectl logs` before a pod has a node and once it has one.

// Helpers of tests: a failed expectation is a test failure, as in the tests themselves.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use rkube_e2e::{Cluster, Kubectl, api_kubectls};
use serde_json::{Value, json};

/// Runs kubectl, returning (success, stdout, stderr).
fn run(cluster: &Cluster, kubectl: &Kubectl, args: &[&str]) -> (bool, String, String) {
    let out = cluster.kubectl(kubectl, args).unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs kubectl, asserts success, returns stdout.
fn ok(cluster: &Cluster, kubectl: &Kubectl, args: &[&str]) -> String {
    let (success, stdout, stderr) = run(cluster, kubectl, args);
    assert!(
        success,
        "kubectl {} {args:?} failed:\n{stderr}",
        kubectl.version
    );
    stdout
}

/// Runs kubectl, asserts failure, returns stderr.
fn fails(cluster: &Cluster, kubectl: &Kubectl, args: &[&str]) -> String {
    let (success, stdout, stderr) = run(cluster, kubectl, args);
    assert!(
        !success,
        "kubectl {} {args:?} succeeded:\n{stdout}",
        kubectl.version
    );
    stderr
}

/// `kubectl create --raw <path> -f <body>`.
fn post(cluster: &Cluster, kubectl: &Kubectl, path: &str, body: &Value) -> (bool, String, String) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body.to_string()).unwrap();
    let file_path = file.path().to_str().unwrap();
    run(
        cluster,
        kubectl,
        &["create", "--raw", path, "-f", file_path],
    )
}

fn b64(part: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap()
}

/// A JWT's header and payload, after checking its ES256 signature with the public key of the
/// server's `service.key`.
fn verified(cluster: &Cluster, token: &str) -> (Value, Value) {
    let pem = std::fs::read_to_string(cluster.data_dir().join("server/tls/service.key")).unwrap();
    let key = rcgen::KeyPair::from_pem(&pem).unwrap();
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let signed = format!("{}.{}", parts[0], parts[1]);
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        key.public_key_raw(),
    )
    .verify(signed.as_bytes(), &b64(parts[2]))
    .expect("the token's signature verifies with service.key");
    (
        serde_json::from_slice(&b64(parts[0])).unwrap(),
        serde_json::from_slice(&b64(parts[1])).unwrap(),
    )
}

#[test]
fn kubectl_create_token_issues_a_signed_service_account_jwt() {
    let mut cluster = Cluster::start(&[]).unwrap();
    let kubectl = &api_kubectls()[0];
    ok(&cluster, kubectl, &["create", "serviceaccount", "robot"]);
    let token = ok(&cluster, kubectl, &["create", "token", "robot"]);
    let (header, claims) = verified(&cluster, &token);
    assert_eq!(header["alg"], "ES256");
    let uid = ok(
        &cluster,
        kubectl,
        &[
            "get",
            "serviceaccount",
            "robot",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    );
    assert_eq!(
        claims["iss"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert_eq!(claims["sub"], "system:serviceaccount:default:robot");
    assert_eq!(
        claims["aud"],
        json!(["https://kubernetes.default.svc.cluster.local", "k3s"])
    );
    assert_eq!(
        claims["kubernetes.io"],
        json!({"namespace": "default", "serviceaccount": {"name": "robot", "uid": uid}})
    );
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["nbf"].as_i64(), Some(iat));
    assert_eq!(claims["exp"].as_i64(), Some(iat + 3600));
    assert!(claims["jti"].is_string());

    let custom = ok(
        &cluster,
        kubectl,
        &[
            "create",
            "token",
            "robot",
            "--duration=20m",
            "--audience=vault",
        ],
    );
    let (_, claims) = verified(&cluster, &custom);
    assert_eq!(claims["aud"], json!(["vault"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        1200
    );

    assert_eq!(
        fails(
            &cluster,
            kubectl,
            &["create", "token", "robot", "--duration=5m"]
        ),
        "error: failed to create token: TokenRequest.authentication.k8s.io \"\" is invalid: \
         spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes\n"
    );
    assert_eq!(
        fails(&cluster, kubectl, &["create", "token", "nobody"]),
        "error: failed to create token: serviceaccounts \"nobody\" not found\n"
    );

    // The key survives a restart: tokens keep verifying and new ones carry the same key id.
    cluster.terminate().unwrap();
    cluster.restart().unwrap();
    verified(&cluster, &token);
    let (again, _) = verified(
        &cluster,
        &ok(&cluster, kubectl, &["create", "token", "robot"]),
    );
    assert_eq!(again["kid"], header["kid"]);
}

#[test]
fn binding_eviction_and_pod_parts_through_kubectl() {
    let cluster = Cluster::start(&[]).unwrap();
    for kubectl in &api_kubectls() {
        let ns = format!("sub-{}", kubectl.version.replace('.', "-"));
        let k = |args: &[&str]| ok(&cluster, kubectl, &[&["-n", &ns][..], args].concat());
        let no = |args: &[&str]| fails(&cluster, kubectl, &[&["-n", &ns][..], args].concat());
        k(&["create", "namespace", &ns]);
        k(&["run", "web", "--image=nginx", "--labels=app=web"]);
        k(&["run", "idle", "--image=nginx"]);

        // An unscheduled pod has no log yet: upstream answers 204, kubectl prints nothing.
        assert_eq!(k(&["logs", "idle"]), "");

        let pods = format!("/api/v1/namespaces/{ns}/pods");
        let binding = json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": "web", "annotations": {"bound-by": "e2e"}},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}});
        let (bound, stdout, stderr) =
            post(&cluster, kubectl, &format!("{pods}/web/binding"), &binding);
        assert!(bound, "{stderr}");
        let status: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(
            (status["kind"].as_str(), status["status"].as_str()),
            (Some("Status"), Some("Success"))
        );
        assert_eq!(
            k(&[
                "get",
                "pod",
                "web",
                "-o",
                "jsonpath={.spec.nodeName} {.metadata.annotations.bound-by}"
            ]),
            "n1 e2e"
        );
        let (again, _, stderr) = post(&cluster, kubectl, &format!("{pods}/web/binding"), &binding);
        assert!(!again);
        assert_eq!(
            stderr,
            "Error from server (Conflict): Operation cannot be fulfilled on pods/binding \"web\": \
             pod web is already assigned to node \"n1\"\n"
        );

        // On a node the agent does not serve yet: the checks pass, then upstream-shaped 503s.
        assert_eq!(
            no(&["logs", "web"]),
            "Error from server (NotFound): nodes \"n1\" not found\n"
        );

        // Eviction: the budget decides.
        k(&[
            "patch",
            "pod",
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
        ]);
        k(&[
            "create",
            "poddisruptionbudget",
            "web",
            "--selector=app=web",
            "--min-available=1",
        ]);
        let budget_status = |allowed: i64| {
            json!({"status": {"observedGeneration": 1, "disruptionsAllowed": allowed,
                              "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}})
            .to_string()
        };
        k(&[
            "patch",
            "pdb",
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            &budget_status(0),
        ]);
        let eviction =
            json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web"}});
        let (evicted, _, stderr) = post(
            &cluster,
            kubectl,
            &format!("{pods}/web/eviction"),
            &eviction,
        );
        assert!(!evicted);
        assert_eq!(
            stderr,
            "Error from server (TooManyRequests): Cannot evict pod as it would violate the pod's disruption budget.\n"
        );
        k(&[
            "patch",
            "pdb",
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            &budget_status(1),
        ]);
        let (evicted, _, stderr) = post(
            &cluster,
            kubectl,
            &format!("{pods}/web/eviction"),
            &eviction,
        );
        assert!(evicted, "{stderr}");
        assert_eq!(
            k(&[
                "get",
                "pdb",
                "web",
                "-o",
                "jsonpath={.status.disruptionsAllowed}"
            ]),
            "0"
        );
        let conditions = k(&[
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.status.conditions[*].type}",
        ]);
        assert!(conditions.contains("DisruptionTarget"), "{conditions}");

        // Ephemeral containers: added through their subresource, then immutable.
        k(&[
            "patch",
            "pod",
            "idle",
            "--subresource=ephemeralcontainers",
            "--type=merge",
            "-p",
            r#"{"spec":{"ephemeralContainers":[{"name":"debugger","image":"busybox","targetContainerName":"idle"}]}}"#,
        ]);
        assert_eq!(
            k(&[
                "get",
                "pod",
                "idle",
                "-o",
                "jsonpath={.spec.ephemeralContainers[0].name}"
            ]),
            "debugger"
        );
        let err = no(&[
            "patch",
            "pod",
            "idle",
            "--subresource=ephemeralcontainers",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/ephemeralContainers/0/image","value":"alpine"}]"#,
        ]);
        assert!(
            err.starts_with(
                "The Pod \"idle\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be changed"
            ),
            "{err}"
        );

        // Resize may not change the pod's QoS class.
        let err = no(&[
            "patch",
            "pod",
            "idle",
            "--subresource=resize",
            "--type=merge",
            "-p",
            r#"{"spec":{"containers":[{"name":"idle","resources":{"requests":{"cpu":"100m"}}}]}}"#,
        ]);
        assert_eq!(
            err,
            "The Pod \"idle\" is invalid: spec: Invalid value: \"BestEffort\": Pod QOS Class may not change as a result of resizing\n"
        );
    }
}
