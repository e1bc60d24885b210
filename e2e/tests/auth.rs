//! Authentication and authorization through stock kubectl: client certificates from the
//! cluster CA, static tokens (`--token-auth-file`), service account tokens from
//! `kubectl create token`, RBAC with the bootstrap policy (`kubectl auth can-i`, `--list`,
//! `whoami`), impersonation, and the 401s of bad credentials.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rkube_e2e::client::Client;
use rkube_e2e::credentials::{Credential, kubeconfig, kubectl_as, openssl, p256_request};
use rkube_e2e::{Cluster, Kubectl, api_kubectls, curl};
use serde_json::{Value, json};

/// The static token file's one user.
const BOB_TOKEN: &str = "b0b-static-token";

/// A client certificate and key (PEM) for `subject`, signed by `ca` (`<ca>.crt`/`<ca>.key`)
/// or self-signed when `ca` is `None`.
fn certificate(dir: &Path, name: &str, subject: &str, ca: Option<&Path>) -> (String, String) {
    let key = format!("{name}.key");
    let crt = format!("{name}.crt");
    let ext = dir.join("client.ext");
    std::fs::write(
        &ext,
        "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n",
    )
    .unwrap();
    let ext = ext.to_str().unwrap();
    match ca {
        Some(ca) => {
            let csr = format!("{name}.csr");
            p256_request(dir, name, subject);
            let (ca_crt, ca_key) = (ca.with_extension("crt"), ca.with_extension("key"));
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    ca_crt.to_str().unwrap(),
                    "-CAkey",
                    ca_key.to_str().unwrap(),
                    "-CAcreateserial",
                    "-days",
                    "1",
                    "-extfile",
                    ext,
                    "-out",
                    &crt,
                ],
            );
        }
        None => openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-subj",
                subject,
                "-days",
                "1",
                "-addext",
                "extendedKeyUsage=clientAuth",
                "-out",
                &crt,
            ],
        ),
    }
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    (read(&crt), read(&key))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn unauthorized(out: &Output) {
    assert!(!out.status.success(), "{}", stdout(out));
    assert!(
        stderr(out).contains("error: You must be logged in to the server"),
        "{}",
        stderr(out)
    );
}

/// `kubectl auth whoami -o json`'s user name.
fn whoami(kubectl: &Kubectl, config: &Path) -> Value {
    let out = kubectl_as(kubectl, config, &["auth", "whoami", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let review: Value = serde_json::from_slice(&out.stdout).unwrap();
    review["status"]["userInfo"].clone()
}

/// A JWT signed with the server's service account key (what a forger with the key could do;
/// used to make tokens `kubectl create token` cannot: already expired).
fn signed_token(cluster: &Cluster, claims: &Value) -> String {
    let pem = std::fs::read_to_string(cluster.data_dir().join("server/tls/service.key")).unwrap();
    let key = rcgen::KeyPair::from_pem(&pem).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &key.serialize_der(),
        &rng,
    )
    .unwrap();
    let url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let input = format!(
        "{}.{}",
        url(br#"{"alg":"ES256"}"#),
        url(&serde_json::to_vec(claims).unwrap())
    );
    let signature = pair.sign(&rng, input.as_bytes()).unwrap();
    format!("{input}.{}", url(signature.as_ref()))
}

/// Retries `check` until it holds (RBAC changes reach the authorizer through a watch).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `kubectl auth can-i` answers for a user bound to `view` in its namespace, from upstream's
/// bootstrap policy (`view` aggregates `system:aggregate-to-view`).
const VIEW_TABLE: &[(&str, &str, bool)] = &[
    ("get", "pods", true),
    ("list", "pods", true),
    ("watch", "configmaps", true),
    ("get", "pods/log", true),
    ("get", "pods/status", true),
    ("list", "deployments.apps", true),
    ("get", "deployments.apps/scale", true),
    ("list", "jobs.batch", true),
    ("list", "cronjobs.batch", true),
    ("get", "horizontalpodautoscalers.autoscaling", true),
    ("list", "poddisruptionbudgets.policy", true),
    ("list", "endpointslices.discovery.k8s.io", true),
    ("list", "ingresses.networking.k8s.io", true),
    ("get", "resourcequotas", true),
    ("get", "serviceaccounts", true),
    // view never shows secrets, nor anything that escalates.
    ("get", "secrets", false),
    ("list", "secrets", false),
    ("create", "pods/exec", false),
    ("get", "pods/exec", false),
    ("create", "pods", false),
    ("delete", "pods", false),
    ("update", "deployments.apps", false),
    ("patch", "configmaps", false),
    ("create", "serviceaccounts/token", false),
    ("impersonate", "serviceaccounts", false),
    ("list", "roles.rbac.authorization.k8s.io", false),
    ("create", "rolebindings.rbac.authorization.k8s.io", false),
    ("get", "leases.coordination.k8s.io", false),
];

#[test]
fn users_are_who_their_credentials_say_and_may_do_what_rbac_grants() {
    let work = tempfile::tempdir().unwrap();
    let tokens = work.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        format!("{BOB_TOKEN},bob,bob-uid,\"team-a,team-b\"\n"),
    )
    .unwrap();
    let cluster = Cluster::start(&["--token-auth-file", tokens.to_str().unwrap()])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let client_ca = cluster.data_dir().join("server/tls/client-ca");
    let (alice_crt, alice_key) =
        certificate(work.path(), "alice", "/CN=alice/O=dev", Some(&client_ca));
    let alice = kubeconfig(
        &cluster,
        &work.path().join("alice.json"),
        Credential::Cert(&alice_crt, &alice_key),
    );
    let (forged_crt, forged_key) =
        certificate(work.path(), "forged", "/CN=alice/O=system:masters", None);
    let forged = kubeconfig(
        &cluster,
        &work.path().join("forged.json"),
        Credential::Cert(&forged_crt, &forged_key),
    );
    let bob = kubeconfig(
        &cluster,
        &work.path().join("bob.json"),
        Credential::Token(BOB_TOKEN),
    );
    let garbage = kubeconfig(
        &cluster,
        &work.path().join("garbage.json"),
        Credential::Token("not-a-token"),
    );

    for kubectl in &api_kubectls() {
        let admin = Client {
            cluster: &cluster,
            kubectl,
        };
        let ns = admin.namespace("auth");
        let v = kubectl.version.as_str();

        // Authenticated, but nothing bound yet: upstream's 403.
        let out = kubectl_as(kubectl, &alice, &["get", "pods", "-n", &ns]);
        assert!(!out.status.success(), "{v}");
        assert!(
            stderr(&out).contains(&format!(
                r#"Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "{ns}""#
            )),
            "{v}: {}",
            stderr(&out)
        );
        let me = whoami(kubectl, &alice);
        assert_eq!(me["username"], "alice", "{v}");
        assert_eq!(me["groups"], json!(["dev", "system:authenticated"]), "{v}");

        admin.ok(&[
            "create",
            "rolebinding",
            "alice-view",
            "-n",
            &ns,
            "--clusterrole=view",
            "--user=alice",
        ]);
        let can_i = |verb: &str, resource: &str, namespace: &str| {
            // `pods/log` is the resource `pods` and `--subresource log` (`pods/x` names a pod).
            let mut args = vec!["auth", "can-i", verb, "-n", namespace];
            match resource.split_once('/') {
                Some((resource, sub)) => args.extend([resource, "--subresource", sub]),
                None => args.push(resource),
            }
            let out = kubectl_as(kubectl, &alice, &args);
            stdout(&out).trim() == "yes"
        };
        eventually("the view binding taking effect", || {
            can_i("list", "pods", &ns)
        });
        for (verb, resource, expected) in VIEW_TABLE {
            assert_eq!(
                can_i(verb, resource, &ns),
                *expected,
                "{v}: can-i {verb} {resource}"
            );
            // Bound in its namespace only.
            assert!(
                !can_i(verb, resource, "default"),
                "{v}: can-i {verb} {resource} in default"
            );
        }
        let listed = stdout(&kubectl_as(
            kubectl,
            &alice,
            &["auth", "can-i", "--list", "-n", &ns],
        ));
        let pods_line = listed
            .lines()
            .find(|l| l.starts_with("pods "))
            .unwrap_or_else(|| panic!("{v}: {listed}"));
        assert!(pods_line.contains("[get list watch]"), "{v}: {pods_line}");
        assert!(
            listed.contains("selfsubjectaccessreviews.authorization.k8s.io"),
            "{v}: {listed}"
        );
        let out = kubectl_as(kubectl, &alice, &["get", "pods", "-n", &ns]);
        assert!(out.status.success(), "{v}: {}", stderr(&out));

        // Granting needs holding (or `escalate`/`bind`).
        admin.ok(&[
            "create",
            "role",
            "rbac-writer",
            "-n",
            &ns,
            "--verb=create,get",
            "--resource=roles,rolebindings",
        ]);
        admin.ok(&[
            "create",
            "rolebinding",
            "alice-rbac",
            "-n",
            &ns,
            "--role=rbac-writer",
            "--user=alice",
        ]);
        eventually("the rbac-writer binding taking effect", || {
            can_i("create", "roles.rbac.authorization.k8s.io", &ns)
        });
        let out = kubectl_as(
            kubectl,
            &alice,
            &[
                "create",
                "role",
                "readers",
                "-n",
                &ns,
                "--verb=get,list",
                "--resource=pods",
            ],
        );
        assert!(out.status.success(), "{v}: {}", stderr(&out));
        let out = kubectl_as(
            kubectl,
            &alice,
            &[
                "create",
                "role",
                "secrets",
                "-n",
                &ns,
                "--verb=get",
                "--resource=secrets",
            ],
        );
        assert!(
            stderr(&out).contains(r#"roles.rbac.authorization.k8s.io "secrets" is forbidden: user "alice" (groups=["dev" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#)
                && stderr(&out).contains(r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#),
            "{v}: {}",
            stderr(&out)
        );
        let out = kubectl_as(
            kubectl,
            &alice,
            &[
                "create",
                "rolebinding",
                "carol-edit",
                "-n",
                &ns,
                "--clusterrole=edit",
                "--user=carol",
            ],
        );
        assert!(
            stderr(&out).contains(
                r#"rolebindings.rbac.authorization.k8s.io "carol-edit" is forbidden: user "alice""#
            ),
            "{v}: {}",
            stderr(&out)
        );
        let out = kubectl_as(
            kubectl,
            &alice,
            &[
                "create",
                "rolebinding",
                "carol-view",
                "-n",
                &ns,
                "--clusterrole=view",
                "--user=carol",
            ],
        );
        assert!(out.status.success(), "{v}: {}", stderr(&out));

        // Impersonation needs the verb.
        let out = kubectl_as(kubectl, &alice, &["get", "pods", "-n", &ns, "--as", "bob"]);
        assert!(
            stderr(&out).contains(r#"users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope"#),
            "{v}: {}",
            stderr(&out)
        );
        let acting = admin.json(&["auth", "whoami", "--as", "alice", "--as-group", "dev"]);
        assert_eq!(acting["status"]["userInfo"]["username"], "alice", "{v}");
        assert_eq!(
            acting["status"]["userInfo"]["groups"],
            json!(["dev", "system:authenticated"]),
            "{v}"
        );

        // The static token file.
        let me = whoami(kubectl, &bob);
        assert_eq!(
            me,
            json!({"username": "bob", "uid": "bob-uid", "groups": ["team-a", "team-b", "system:authenticated"]}),
            "{v}"
        );

        // Bad credentials are refused, never anonymous.
        unauthorized(&kubectl_as(kubectl, &garbage, &["get", "pods"]));
        unauthorized(&kubectl_as(kubectl, &forged, &["get", "pods"]));

        // A token bound to a pod works while the pod exists.
        admin.ok(&["create", "serviceaccount", "robot", "-n", &ns]);
        admin.create_file(&ns, r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"serviceAccountName": "robot", "containers": [{"name": "c", "image": "busybox"}]}}"#);
        let token = admin.ok(&[
            "create",
            "token",
            "robot",
            "-n",
            &ns,
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "p",
        ]);
        let robot = kubeconfig(
            &cluster,
            &work.path().join(format!("robot-{v}.json")),
            Credential::Token(token.trim()),
        );
        let me = whoami(kubectl, &robot);
        assert_eq!(
            me["username"],
            format!("system:serviceaccount:{ns}:robot"),
            "{v}"
        );
        assert_eq!(
            me["extra"]["authentication.kubernetes.io/pod-name"],
            json!(["p"]),
            "{v}"
        );
        // Service accounts may read the issuer's keys; anonymous may not.
        let jwks = curl(
            &format!("{}/openid/v1/jwks", cluster.url()),
            &[
                "--cacert".into(),
                cluster.client_files().unwrap().ca.display().to_string(),
                "-H".into(),
                format!("Authorization: Bearer {}", token.trim()),
            ],
        )
        .unwrap();
        assert_eq!(jwks.status, 200, "{v}: {}", jwks.body);
        assert_eq!(jwks.json().unwrap()["keys"][0]["alg"], "ES256");
        // TokenReview, as an authenticating proxy asks.
        let review = work.path().join(format!("review-{v}.json"));
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token.trim()}});
        std::fs::write(&review, body.to_string()).unwrap();
        // kubectl validates it client-side (a kind without PATCH): from /openapi/v2's protobuf.
        let reviewed = admin.json(&["create", "-f", review.to_str().unwrap()]);
        assert_eq!(reviewed["status"]["authenticated"], true, "{v}: {reviewed}");
        assert_eq!(
            reviewed["status"]["user"]["username"],
            format!("system:serviceaccount:{ns}:robot"),
            "{v}"
        );
        admin.ok(&[
            "delete",
            "pod",
            "p",
            "-n",
            &ns,
            "--grace-period=0",
            "--force",
        ]);
        unauthorized(&kubectl_as(kubectl, &robot, &["auth", "whoami"]));

        // An expired token (signed with the right key) is refused.
        let sa = admin.json(&["get", "serviceaccount", "robot", "-n", &ns]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let expired = signed_token(
            &cluster,
            &json!({
                "iss": "https://kubernetes.default.svc.cluster.local",
                "aud": ["https://kubernetes.default.svc.cluster.local"],
                "sub": format!("system:serviceaccount:{ns}:robot"),
                "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600,
                "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": "robot", "uid": sa["metadata"]["uid"]}},
            }),
        );
        let expired = kubeconfig(
            &cluster,
            &work.path().join(format!("expired-{v}.json")),
            Credential::Token(&expired),
        );
        unauthorized(&kubectl_as(kubectl, &expired, &["get", "pods"]));
    }

    // Anonymous requests get only what system:public-info-viewer grants.
    assert_eq!(cluster.get_anonymous("/version").unwrap().status, 200);
    assert_eq!(cluster.get_anonymous("/readyz").unwrap().status, 200);
    let api = cluster.get_anonymous("/api").unwrap();
    assert_eq!(api.status, 403);
    assert_eq!(
        api.json().unwrap()["message"],
        r#"forbidden: User "system:anonymous" cannot get path "/api""#
    );
    assert_eq!(
        cluster.get_anonymous("/openid/v1/jwks").unwrap().status,
        403
    );
}
