//! Audit logging as an operator meets it: `rkube server --audit-policy-file --audit-log-path`
//! driven by stock kubectl and curl, the log read back line by line after a graceful stop,
//! and a bad policy refusing the start.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

use rkube_e2e::credentials::{Credential, kubeconfig, kubectl_as};
use rkube_e2e::{Cluster, api_kubectls, refused_start};
use serde_json::{Value, json};

const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  resources: [{group: "", resources: [secrets]}]
# The controllers' own traffic would drown the test's requests.
- level: None
  userGroups: ["system:serviceaccounts"]
- level: RequestResponse
  verbs: [create]
  resources: [{group: "", resources: [configmaps]}]
- level: Request
  nonResourceURLs: [/version]
- level: Metadata
"#;

/// curl as the cluster's admin with extra `args`; answers the response headers (lowercased
/// names) and the body.
fn curl_with_headers(
    cluster: &Cluster,
    path: &str,
    args: &[&str],
) -> (Vec<(String, String)>, String) {
    let files = cluster.client_files().unwrap();
    let out = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--dump-header",
            "-",
        ])
        .args(files.curl_args())
        .args(args)
        .arg(format!("{}{path}", cluster.url()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

/// The events of one request, in the order written.
fn request<'a>(events: &'a [Value], audit_id: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["auditID"] == audit_id).collect()
}

fn stages<'a>(events: &[&'a Value]) -> Vec<&'a str> {
    events
        .iter()
        .map(|e| e["stage"].as_str().unwrap())
        .collect()
}

/// The one event matching `pred` at `stage`.
fn find<'a>(events: &'a [Value], stage: &str, pred: impl Fn(&Value) -> bool) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| e["stage"] == stage && pred(e))
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    found[0]
}

#[test]
fn kubectl_and_curl_requests_are_audited_per_policy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "d4ve-token,dave,1001,\"devs\"\n").unwrap();
    let log = dir.path().join("logs").join("audit.log");
    let mut cluster = Cluster::start(&[
        "--audit-policy-file",
        policy.to_str().unwrap(),
        "--audit-log-path",
        log.to_str().unwrap(),
        "--token-auth-file",
        tokens.to_str().unwrap(),
    ])
    .unwrap();
    let kubectl = api_kubectls().pop().unwrap();
    let ok = |args: &[&str]| {
        let out = cluster.kubectl(&kubectl, args).unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(&["create", "configmap", "audited", "--from-literal=k=v"]);
    // PodSecurity in audit mode admits a privileged pod and says why in its audit event.
    ok(&["create", "namespace", "watched"]);
    ok(&[
        "label",
        "namespace",
        "watched",
        "pod-security.kubernetes.io/audit=baseline",
    ]);
    ok(&[
        "run",
        "root",
        "-n",
        "watched",
        "--image=busybox",
        "--overrides={\"spec\":{\"containers\":[{\"name\":\"root\",\"image\":\"busybox\",\"securityContext\":{\"privileged\":true}}]}}",
    ]);
    ok(&["get", "configmap", "audited", "-o", "name"]);
    ok(&[
        "create",
        "secret",
        "generic",
        "hidden",
        "--from-literal=k=v",
    ]);
    let dave = kubeconfig(
        &cluster,
        &dir.path().join("dave.yaml"),
        Credential::Token("d4ve-token"),
    );
    let out = kubectl_as(&kubectl, &dave, &["get", "configmaps"]);
    assert!(!out.status.success());
    let stranger = kubeconfig(
        &cluster,
        &dir.path().join("bad.yaml"),
        Credential::Token("nobody"),
    );
    let out = kubectl_as(&kubectl, &stranger, &["get", "configmaps"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("provide credentials"), "{stderr}");
    let (version_headers, _) = curl_with_headers(&cluster, "/version", &[]);
    let version_id = header(&version_headers, "audit-id").to_owned();
    let (own_headers, _) = curl_with_headers(&cluster, "/healthz", &["-H", "Audit-ID: e2e-own-id"]);
    assert_eq!(header(&own_headers, "audit-id"), "e2e-own-id");

    // A graceful stop writes out everything still queued.
    let exit = cluster.terminate().unwrap();
    assert!(exit.status.success(), "{}", exit.stderr);
    let text = std::fs::read_to_string(&log).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for event in &events {
        assert_eq!(
            (&event["kind"], &event["apiVersion"]),
            (&json!("Event"), &json!("audit.k8s.io/v1"))
        );
    }

    // kubectl create configmap (a protobuf body): RequestResponse, both bodies as JSON.
    let is_created =
        |e: &Value| e["verb"] == "create" && e["objectRef"]["resource"] == "configmaps";
    let created = find(&events, "ResponseComplete", is_created);
    let id = created["auditID"].as_str().unwrap();
    assert_eq!(
        stages(&request(&events, id)),
        ["RequestReceived", "ResponseComplete"]
    );
    assert_eq!(created["level"], "RequestResponse");
    assert_eq!(created["user"]["username"], "system:admin");
    assert!(
        created["userAgent"]
            .as_str()
            .unwrap()
            .starts_with("kubectl"),
        "{created}"
    );
    assert_eq!(created["sourceIPs"], json!(["127.0.0.1"]));
    assert_eq!(
        created["objectRef"],
        json!({"resource": "configmaps", "namespace": "default", "name": "audited", "apiVersion": "v1"})
    );
    assert_eq!(created["requestObject"]["data"], json!({"k": "v"}));
    assert_eq!(created["responseObject"]["metadata"]["name"], "audited");
    assert!(created["responseObject"]["metadata"]["uid"].is_string());
    assert_eq!(
        created["responseStatus"],
        json!({"metadata": {}, "code": 201})
    );
    assert_eq!(
        created["annotations"]["authorization.k8s.io/decision"],
        "allow"
    );

    // The pod's event carries PodSecurity's verdicts (upstream's annotation keys and text).
    let pod = find(&events, "ResponseComplete", |e| {
        e["verb"] == "create" && e["objectRef"]["resource"] == "pods"
    });
    assert_eq!(pod["responseStatus"]["code"], 201, "{pod}");
    assert_eq!(
        pod["annotations"]["pod-security.kubernetes.io/enforce-policy"],
        "privileged:latest"
    );
    let violations = pod["annotations"]["pod-security.kubernetes.io/audit-violations"]
        .as_str()
        .unwrap_or_default();
    assert!(
        violations.contains(r#"would violate PodSecurity "baseline:latest": privileged"#),
        "{pod}"
    );

    // kubectl get: Metadata, no bodies.
    let got = find(&events, "ResponseComplete", |e| {
        e["verb"] == "get" && e["objectRef"]["name"] == "audited"
    });
    assert_eq!(got["level"], "Metadata");
    assert!(got.get("requestObject").is_none() && got.get("responseObject").is_none());

    // Secrets are level None.
    assert!(
        !events
            .iter()
            .any(|e| e["objectRef"]["resource"] == "secrets")
    );

    // dave has no bindings: the 403 is logged with authorization's verdict.
    let refused = find(&events, "ResponseComplete", |e| {
        e["user"]["username"] == "dave" && e["verb"] == "list"
    });
    assert_eq!(
        refused["annotations"]["authorization.k8s.io/decision"],
        "forbid"
    );
    assert_eq!(refused["responseStatus"]["reason"], "Forbidden");
    assert_eq!(refused["responseStatus"]["code"], 403);

    // A bad token: one event without a user, as upstream's failed-authentication audit.
    // (kubectl tries discovery a few times.)
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["responseStatus"]["code"] == 401)
        .collect();
    assert!(!failed.is_empty());
    for event in failed {
        assert_eq!(event["user"], json!({}));
        assert_eq!(event["responseStatus"]["reason"], "Unauthorized");
        let id = event["auditID"].as_str().unwrap();
        assert_eq!(stages(&request(&events, id)), ["ResponseStarted"]);
    }

    // curl: the Audit-ID answered is the one logged; a client's own ID is kept.
    let version = request(&events, &version_id);
    assert_eq!(stages(&version), ["RequestReceived", "ResponseComplete"]);
    assert_eq!(
        (&version[1]["requestURI"], &version[1]["level"]),
        (&json!("/version"), &json!("Request"))
    );
    assert_eq!(version[1]["verb"], "get");
    assert!(version[1].get("objectRef").is_none());
    assert_eq!(request(&events, "e2e-own-id")[1]["requestURI"], "/healthz");
}

#[test]
fn a_bad_policy_refuses_the_start_naming_file_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n- verbs: [get]\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("audit.log");
    let exit = refused_start(
        &data,
        &[
            "--audit-policy-file",
            policy.to_str().unwrap(),
            "--audit-log-path",
            log.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert!(!exit.status.success());
    assert!(!exit.stderr.contains("panicked"), "{}", exit.stderr);
    let message = format!(
        "loading audit policy file {}: rules[1].level: Required value",
        policy.display()
    );
    assert!(exit.stderr.contains(&message), "{}", exit.stderr);
    // Nothing was started: no datastore, no log.
    assert!(!data.join("server").join("db").exists());
    assert!(!log.exists());
}

#[test]
fn every_response_names_its_audit_id_even_without_auditing() {
    let cluster = Cluster::start(&[]).unwrap();
    let (first, _) = curl_with_headers(&cluster, "/version", &[]);
    let (second, _) = curl_with_headers(&cluster, "/api/v1/namespaces/nope", &[]);
    let (first, second) = (header(&first, "audit-id"), header(&second, "audit-id"));
    for id in [first, second] {
        assert_eq!(
            uuid_shape(id),
            [8, 4, 4, 4, 12],
            "audit IDs are UUIDs: {id}"
        );
    }
    assert_ne!(first, second);
    let (own, _) = curl_with_headers(&cluster, "/healthz", &["-H", "Audit-ID: mine"]);
    assert_eq!(header(&own, "audit-id"), "mine");
}

/// The lengths of the dash-separated groups of `id`.
fn uuid_shape(id: &str) -> Vec<usize> {
    id.split('-').map(str::len).collect()
}
