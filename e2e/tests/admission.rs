//! The admission chain as users meet it, with stock kubectl: PodSecurity from namespace
//! labels and from `--admission-control-config-file`, ResourceQuota, the protected system
//! namespaces, what pods get on the way in (service account token volume, default
//! tolerations, priority), webhooks by URL and by Service, and admission policies.

// Helpers of tests: a failed expectation is a test failure, as in the tests themselves.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;

use rkube_e2e::client::{Client, with_each_kubectl};
use rkube_e2e::{Cluster, api_kubectls, refused_start};

/// `kubectl create -f` of `manifest` in `ns`, expected to fail; returns stderr.
fn create_fails(k: &Client<'_>, ns: &str, manifest: &str) -> String {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(manifest.as_bytes()).unwrap();
    k.fails(&["create", "-n", ns, "-f", file.path().to_str().unwrap()])
}

fn pod(name: &str, security_context: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: nginx\n    securityContext: {security_context}\n"
    )
}

#[test]
fn admission_as_kubectl_sees_it() {
    with_each_kubectl(|k| {
        // The namespaces every cluster needs cannot be deleted.
        let err = k.fails(&["delete", "namespace", "default"]);
        assert_eq!(
            err,
            "Error from server (Forbidden): namespaces \"default\" is forbidden: this namespace may not be deleted\n"
        );

        // PodSecurity `restricted` refuses a privileged pod with upstream's message.
        let ns = k.namespace("psa");
        k.ok(&[
            "label",
            "namespace",
            &ns,
            "pod-security.kubernetes.io/enforce=restricted",
        ]);
        let err = create_fails(k, &ns, &pod("x", "{privileged: true}"));
        assert!(
            err.contains(
                "pods \"x\" is forbidden: violates PodSecurity \"restricted:latest\": privileged (container \"c\" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
            ),
            "{err}"
        );
        k.create_file(
            &ns,
            &pod(
                "fine",
                "{runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}",
            ),
        );

        // Pods get the default service account's token volume, tolerations and priority.
        let ns = k.namespace("quota");
        k.ok(&["create", "quota", "two", "--hard=pods=2", "-n", &ns]);
        k.ok(&["run", "a", "--image=nginx", "-n", &ns]);
        k.ok(&["run", "b", "--image=nginx", "-n", &ns]);
        let a = k.json(&["get", "pod", "a", "-n", &ns]);
        let volume = a["spec"]["volumes"][0]["name"].as_str().unwrap();
        assert!(volume.starts_with("kube-api-access-"), "{a}");
        assert_eq!(
            a["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
            "/var/run/secrets/kubernetes.io/serviceaccount"
        );
        assert_eq!(a["spec"]["serviceAccountName"], "default");
        assert_eq!(a["spec"]["priority"], 0);
        assert_eq!(a["spec"]["tolerations"].as_array().unwrap().len(), 2, "{a}");

        // A quota of 2 pods makes the third create 403.
        let err = k.fails(&["run", "c", "--image=nginx", "-n", &ns]);
        assert_eq!(
            err,
            "Error from server (Forbidden): pods \"c\" is forbidden: exceeded quota: two, requested: pods=1, used: pods=2, limited: pods=2\n"
        );
        let quota = k.json(&["get", "quota", "two", "-n", &ns]);
        assert_eq!(quota["status"]["used"]["pods"], "2", "{quota}");
    });
}

/// A tiny HTTPS admission webhook (python3's http.server behind ssl): `/mutate` adds the label
/// `mutated=yes`, `/validate` refuses objects labelled `deny=yes`.
const WEBHOOK_SERVER: &str = r#"
import base64, http.server, json, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        response = {"uid": request["uid"], "allowed": True}
        labels = (request.get("object") or {}).get("metadata", {}).get("labels") or {}
        # kube-apiserver sends its timeout as a query (`?timeout=10s`).
        if self.path.split("?")[0] == "/mutate":
            op = {"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}
            if not labels:
                op = {"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps([op]).encode()).decode()
            response["warnings"] = ["mutated by the test webhook"]
        elif labels.get("deny") == "yes":
            response["allowed"] = False
            response["status"] = {"code": 403, "message": "objects labelled deny=yes are refused"}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// The webhook server, stopped when dropped.
struct WebhookServer {
    child: std::process::Child,
    port: u16,
    ca_bundle: String,
    _dir: tempfile::TempDir,
}

impl WebhookServer {
    /// The server, its certificate valid for 127.0.0.1 and `names`.
    fn start(names: &[String]) -> WebhookServer {
        use base64::Engine as _;
        use std::io::BufRead as _;
        let dir = tempfile::tempdir().unwrap();
        let mut sans = vec!["127.0.0.1".to_owned()];
        sans.extend_from_slice(names);
        let cert = rcgen::generate_simple_self_signed(sans).unwrap();
        let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        let mut child = std::process::Command::new("python3")
            .args(["-c", WEBHOOK_SERVER])
            .arg(&cert_path)
            .arg(&key_path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        WebhookServer {
            child,
            port: line.trim().parse().unwrap(),
            ca_bundle: base64::engine::general_purpose::STANDARD.encode(cert.cert.pem()),
            _dir: dir,
        }
    }

    /// A webhook configuration of `kind` calling `path` for pods in namespaces labelled
    /// `webhooks=<ns>`.
    fn configuration(&self, kind: &str, name: &str, path: &str, ns: &str) -> String {
        format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: {name}\nwebhooks:\n- name: {name}.rkube.test\n  clientConfig:\n    url: https://127.0.0.1:{port}{path}\n    caBundle: {ca}\n  rules:\n  - operations: [CREATE]\n    apiGroups: [\"\"]\n    apiVersions: [v1]\n    resources: [configmaps]\n  namespaceSelector:\n    matchLabels:\n      webhooks: {ns}\n  sideEffects: None\n  admissionReviewVersions: [v1]\n  failurePolicy: Fail\n",
            port = self.port,
            ca = self.ca_bundle,
        )
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The namespace `Client::namespace("hooks")` makes for `kubectl`.
fn hooks_namespace(kubectl: &rkube_e2e::Kubectl) -> String {
    format!("hooks-{}", kubectl.version.replace('.', "-"))
}

#[test]
fn webhooks_and_policies_with_kubectl() {
    // The webhook is also reached as Service `hook` of each kubectl's namespace.
    let services: Vec<String> = api_kubectls()
        .iter()
        .map(|k| format!("hook.{}.svc", hooks_namespace(k)))
        .collect();
    let server = WebhookServer::start(&services);
    with_each_kubectl(|k| {
        let ns = k.namespace("hooks");
        k.ok(&["label", "namespace", &ns, &format!("webhooks={ns}")]);
        let mutating = format!("mutate-{ns}");
        let validating = format!("validate-{ns}");
        k.create_file(
            &ns,
            &server.configuration("MutatingWebhookConfiguration", &mutating, "/mutate", &ns),
        );
        k.create_file(
            &ns,
            &server.configuration(
                "ValidatingWebhookConfiguration",
                &validating,
                "/validate",
                &ns,
            ),
        );
        // The mutating webhook's JSONPatch lands, and its warning reaches kubectl.
        let out = k.run(&["create", "configmap", "plain", "-n", &ns]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Warning: mutated by the test webhook"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cm = k.json(&["get", "configmap", "plain", "-n", &ns]);
        assert_eq!(cm["metadata"]["labels"]["mutated"], "yes", "{cm}");
        // The validating webhook refuses with upstream's message.
        let err = create_fails(
            k,
            &ns,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: refused\n  labels:\n    deny: \"yes\"\n",
        );
        assert!(
            err.contains("admission webhook \"validate-hooks-")
                && err.contains(
                    ".rkube.test\" denied the request: objects labelled deny=yes are refused"
                ),
            "{err}"
        );
        k.ok(&["delete", "validatingwebhookconfiguration", &validating]);
        k.ok(&["delete", "mutatingwebhookconfiguration", &mutating]);

        // The same webhook as a Service: called at the ready endpoint of its EndpointSlice
        // on the port named as the Service's port.
        assert_eq!(ns, hooks_namespace(k.kubectl));
        k.create_file(
            &ns,
            &format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: hook\nspec:\n  ports:\n  - name: https\n    port: 443\n    targetPort: {port}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: hook-1\n  labels:\n    kubernetes.io/service-name: hook\naddressType: IPv4\nports:\n- name: https\n  port: {port}\nendpoints:\n- addresses: [\"127.0.0.1\"]\n  conditions:\n    ready: true\n",
                port = server.port
            ),
        );
        let by_service = server
            .configuration("ValidatingWebhookConfiguration", &validating, "/validate", &ns)
            .replace(
                &format!("    url: https://127.0.0.1:{}/validate\n", server.port),
                &format!("    service:\n      namespace: {ns}\n      name: hook\n      port: 443\n      path: /validate\n"),
            );
        assert!(by_service.contains("name: hook"), "{by_service}");
        k.create_file(&ns, &by_service);
        let err = create_fails(
            k,
            &ns,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: refused\n  labels:\n    deny: \"yes\"\n",
        );
        assert!(
            err.contains(".rkube.test\" denied the request: objects labelled deny=yes are refused"),
            "{err}"
        );
        k.ok(&["delete", "validatingwebhookconfiguration", &validating]);

        // ValidatingAdmissionPolicy `object.spec.replicas <= 5` refuses 6 replicas.
        let policy = format!("replicas-{ns}");
        k.create_file(
            &ns,
            &format!(
                "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: {policy}\nspec:\n  failurePolicy: Fail\n  matchConstraints:\n    resourceRules:\n    - apiGroups: [apps]\n      apiVersions: [v1]\n      operations: [CREATE, UPDATE]\n      resources: [deployments]\n    namespaceSelector:\n      matchLabels:\n        webhooks: {ns}\n  variables:\n  - name: replicas\n    expression: object.spec.replicas\n  validations:\n  - expression: variables.replicas <= 5\n    messageExpression: \"'at most 5 replicas, not ' + string(variables.replicas)\"\n---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: {policy}-binding\nspec:\n  policyName: {policy}\n  validationActions: [Deny]\n"
            ),
        );
        k.ok(&[
            "create",
            "deployment",
            "five",
            "--image=nginx",
            "--replicas=5",
            "-n",
            &ns,
        ]);
        let err = k.fails(&[
            "create",
            "deployment",
            "six",
            "--image=nginx",
            "--replicas=6",
            "-n",
            &ns,
        ]);
        assert!(
            err.contains(&format!(
                "ValidatingAdmissionPolicy '{policy}' with binding '{policy}-binding' denied request: at most 5 replicas, not 6"
            )),
            "{err}"
        );
        k.ok(&[
            "delete",
            "validatingadmissionpolicybinding",
            &format!("{policy}-binding"),
        ]);
        k.ok(&["delete", "validatingadmissionpolicy", &policy]);
    });
}

const ADMISSION_CONFIGURATION: &str = "apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  path: pod-security.yaml
";

#[test]
fn pod_security_defaults_and_exemptions_from_the_admission_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("admission.yaml");
    std::fs::write(&config, ADMISSION_CONFIGURATION).unwrap();
    std::fs::write(
        dir.path().join("pod-security.yaml"),
        "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\ndefaults:\n  enforce: baseline\nexemptions:\n  namespaces: [free]\n",
    )
    .unwrap();
    let cluster =
        Cluster::start(&["--admission-control-config-file", config.to_str().unwrap()]).unwrap();
    let kubectls = api_kubectls();
    let k = Client {
        cluster: &cluster,
        kubectl: &kubectls[0],
    };
    let privileged = pod("priv", "{privileged: true}");
    // Unlabelled namespaces get the configured default.
    k.ok(&["create", "namespace", "plain"]);
    let err = create_fails(&k, "plain", &privileged);
    assert!(
        err.contains(r#"pods "priv" is forbidden: violates PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)"#),
        "{err}"
    );
    // Exempt namespaces are never checked, and say so when labelled.
    k.ok(&["create", "namespace", "free"]);
    k.create_file("free", &privileged);
    let out = k.run(&[
        "label",
        "namespace",
        "free",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            r#"Warning: namespace "free" is exempt from Pod Security, and the policy (enforce=restricted:latest) will be ignored"#
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Labels must be valid.
    let err = k.fails(&[
        "label",
        "namespace",
        "plain",
        "pod-security.kubernetes.io/enforce=strict",
    ]);
    assert!(
        err.contains(r#"Namespace "plain" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#),
        "{err}"
    );
    // A label lifts the default; making it stricter again warns about the pods already there.
    k.ok(&["create", "namespace", "lax"]);
    k.ok(&[
        "label",
        "namespace",
        "lax",
        "pod-security.kubernetes.io/enforce=privileged",
    ]);
    k.create_file("lax", &privileged);
    let out = k.run(&[
        "label",
        "namespace",
        "lax",
        "--overwrite",
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"Warning: existing pods in namespace "lax" violate the new PodSecurity enforce level "baseline:latest""#)
            && stderr.contains("Warning: priv: privileged"),
        "{stderr}"
    );
}

#[test]
fn a_bad_admission_configuration_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("admission.yaml");
    std::fs::write(&config, ADMISSION_CONFIGURATION).unwrap();
    std::fs::write(
        dir.path().join("pod-security.yaml"),
        "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\ndefaults:\n  enforce: strict\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let exit = refused_start(
        &data,
        &["--admission-control-config-file", config.to_str().unwrap()],
    )
    .unwrap();
    assert!(!exit.status.success());
    assert!(
        exit.stderr.contains(r#"couldn't init admission plugin "PodSecurity": defaults.enforce: Invalid value: "strict": must be one of privileged, baseline, restricted"#),
        "{}",
        exit.stderr
    );
    assert!(!data.join("server").exists());
}
