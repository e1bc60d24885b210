//! admissionregistration.k8s.io objects as stock kubectl meets them: upstream's defaults on
//! webhook configurations, policies and bindings, and upstream's 422s for the mistakes users
//! make (a webhook without sideEffects, a policy whose CEL does not parse, a binding without
//! validationActions).

// Helpers of tests: a failed expectation is a test failure, as in the tests themselves.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;

use rkube_e2e::client::{Client, with_each_kubectl};

/// `kubectl apply -f` of `manifest`, expected to fail; returns stderr.
fn apply_fails(k: &Client<'_>, manifest: &str) -> String {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(manifest.as_bytes()).unwrap();
    k.fails(&["apply", "-f", file.path().to_str().unwrap()])
}

/// `kubectl apply -f` of `manifest`.
fn apply(k: &Client<'_>, manifest: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    k.apply("default", file.path(), manifest, &[]);
}

/// A webhook configuration of `kind` named `name` whose one webhook has `extra` (indented
/// YAML lines) and watches a resource nothing creates.
fn webhook_configuration(kind: &str, name: &str, extra: &str) -> String {
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: {name}\nwebhooks:\n- name: {name}.rkube.test\n  clientConfig:\n    service:\n      namespace: default\n      name: hook\n  rules:\n  - operations: [CREATE]\n    apiGroups: [rkube.test]\n    apiVersions: [v1]\n    resources: [widgets]\n  admissionReviewVersions: [v1]\n{extra}"
    )
}

/// A policy on deployments with one validation `expression`.
fn policy(name: &str, expression: &str) -> String {
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: {name}\nspec:\n  matchConstraints:\n    resourceRules:\n    - apiGroups: [apps]\n      apiVersions: [v1]\n      operations: [CREATE]\n      resources: [deployments]\n  validations:\n  - expression: {expression:?}\n"
    )
}

#[test]
fn admission_configuration_defaults_and_validation() {
    with_each_kubectl(|k| {
        let v = k.kubectl.version.replace('.', "-");

        // A webhook without sideEffects: upstream's 422.
        let name = format!("no-side-effects-{v}");
        let err = apply_fails(
            k,
            &webhook_configuration("ValidatingWebhookConfiguration", &name, ""),
        );
        assert!(
            err.contains(&format!(
                "The ValidatingWebhookConfiguration \"{name}\" is invalid: webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun"
            )),
            "{err}"
        );

        // A valid one comes back with upstream's defaults.
        let name = format!("defaults-{v}");
        apply(
            k,
            &webhook_configuration(
                "ValidatingWebhookConfiguration",
                &name,
                "  sideEffects: None\n",
            ),
        );
        let yaml = k.ok(&["get", "validatingwebhookconfiguration", &name, "-o", "yaml"]);
        for line in [
            "failurePolicy: Fail",
            "matchPolicy: Equivalent",
            "namespaceSelector: {}",
            "objectSelector: {}",
            "timeoutSeconds: 10",
            "port: 443",
            "scope: '*'",
            "generation: 1",
        ] {
            assert!(yaml.contains(line), "{line} missing from\n{yaml}");
        }
        assert!(!yaml.contains("reinvocationPolicy"), "{yaml}");
        // Changing a webhook bumps the generation, as upstream.
        apply(
            k,
            &webhook_configuration(
                "ValidatingWebhookConfiguration",
                &name,
                "  sideEffects: None\n  timeoutSeconds: 5\n",
            ),
        );
        let hook = k.json(&["get", "validatingwebhookconfiguration", &name]);
        assert_eq!(hook["metadata"]["generation"], 2, "{hook}");
        assert_eq!(hook["webhooks"][0]["timeoutSeconds"], 5, "{hook}");
        k.ok(&["delete", "validatingwebhookconfiguration", &name]);

        let name = format!("mutating-{v}");
        apply(
            k,
            &webhook_configuration(
                "MutatingWebhookConfiguration",
                &name,
                "  sideEffects: NoneOnDryRun\n",
            ),
        );
        let hook = k.json(&["get", "mutatingwebhookconfiguration", &name]);
        assert_eq!(hook["webhooks"][0]["reinvocationPolicy"], "Never", "{hook}");
        k.ok(&["delete", "mutatingwebhookconfiguration", &name]);

        // A policy whose expression does not parse: 422 with the parser's words.
        let name = format!("broken-{v}");
        let err = apply_fails(k, &policy(&name, "object.spec.replicas <="));
        assert!(
            err.contains(&format!(
                "The ValidatingAdmissionPolicy \"{name}\" is invalid: spec.validations[0].expression: Invalid value: \"object.spec.replicas <=\": compilation failed: ERROR: <input>:1:24: Syntax error: mismatched input '<EOF>'"
            )),
            "{err}"
        );

        // A valid policy is defaulted; a binding needs validationActions.
        let name = format!("replicas-{v}");
        apply(k, &policy(&name, "object.spec.replicas <= 5"));
        let p = k.json(&["get", "validatingadmissionpolicy", &name]);
        assert_eq!(p["spec"]["failurePolicy"], "Fail", "{p}");
        assert_eq!(
            p["spec"]["matchConstraints"]["matchPolicy"], "Equivalent",
            "{p}"
        );
        assert_eq!(
            p["spec"]["matchConstraints"]["namespaceSelector"],
            serde_json::json!({}),
            "{p}"
        );
        assert_eq!(
            p["spec"]["matchConstraints"]["resourceRules"][0]["scope"], "*",
            "{p}"
        );
        let binding = format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: {name}\nspec:\n  policyName: {name}\n"
        );
        let err = apply_fails(k, &binding);
        assert!(
            err.contains(&format!(
                "The ValidatingAdmissionPolicyBinding \"{name}\" is invalid: spec.validationActions: Required value: at least one validation action is required"
            )),
            "{err}"
        );
        apply(k, &format!("{binding}  validationActions: [Warn, Audit]\n"));
        k.ok(&["delete", "validatingadmissionpolicybinding", &name]);
        k.ok(&["delete", "validatingadmissionpolicy", &name]);
    });
}
