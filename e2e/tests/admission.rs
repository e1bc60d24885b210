//! The admission chain as users meet it, with stock kubectl: PodSecurity from namespace
//! labels, ResourceQuota, the protected system namespaces, and what pods get on the way in
//! (service account token volume, default tolerations, priority).

// Helpers of tests: a failed expectation is a test failure, as in the tests themselves.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;

use rkube_e2e::client::{Client, with_each_kubectl};

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
        if self.path == "/mutate":
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
    fn start() -> WebhookServer {
        use base64::Engine as _;
        use std::io::BufRead as _;
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
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

#[test]
fn webhooks_and_policies_with_kubectl() {
    let server = WebhookServer::start();
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
        // A webhook with side effects makes a dry run fail.
        k.ok(&["delete", "validatingwebhookconfiguration", &validating]);
        k.ok(&["delete", "mutatingwebhookconfiguration", &mutating]);

        // ValidatingAdmissionPolicy `object.spec.replicas <= 5` refuses 6 replicas.
        let policy = format!("replicas-{ns}");
        k.create_file(
            &ns,
            &format!(
                "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: {policy}\nspec:\n  failurePolicy: Fail\n  matchConstraints:\n    resourceRules:\n    - apiGroups: [apps]\n      apiVersions: [v1]\n      operations: [CREATE, UPDATE]\n      resources: [deployments]\n    namespaceSelector:\n      matchLabels:\n        webhooks: {ns}\n  validations:\n  - expression: object.spec.replicas <= 5\n---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: {policy}-binding\nspec:\n  policyName: {policy}\n  validationActions: [Deny]\n"
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
                "ValidatingAdmissionPolicy '{policy}' with binding '{policy}-binding' denied request: failed expression: object.spec.replicas <= 5"
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
