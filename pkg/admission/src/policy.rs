//! ValidatingAdmissionPolicy: policies and their bindings, matched against each request
//! (matchConstraints, the binding's matchResources, matchConditions), evaluated with CEL
//! ([`crate::cel`]: composited `variables`, `validations` with their messages and
//! `messageExpression`s, `auditAnnotations`) against the bound params, and enforced by the
//! binding's validationActions (Deny, Warn, Audit) and the policy's failurePolicy.
//!
//! As upstream, every matching policy and binding is evaluated: warnings and audit
//! annotations are recorded for all of them, and the first denial is the answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use rkube_api::status::{ApiError, Reason, StatusCause};
use serde::Serialize;
use serde_json::Value;

use crate::attributes::Attributes;
use crate::cel::{Activation, Answer, Program, Variables};
use crate::chain::{Cluster, Plugin, Result, Warnings};
use crate::webhook::matching;

const GROUP: &str = "admissionregistration.k8s.io";

/// The audit annotation listing validations that failed under the Audit action.
const VALIDATION_FAILURE_KEY: &str = "validation.policy.admission.k8s.io/validation_failure";
/// Upstream's caps: failures listed, audit annotation value length, evaluated message length.
const MAX_VALIDATION_FAILURES: usize = 50;
const MAX_AUDIT_ANNOTATION_VALUE: usize = 10 * 1024;
const MAX_MESSAGE_EXPRESSION_BYTES: usize = 5 * 1024;

/// The plugin.
#[derive(Debug)]
pub struct ValidatingAdmissionPolicy {
    cluster: Arc<dyn Cluster>,
}

impl ValidatingAdmissionPolicy {
    /// The plugin over `cluster`'s policies, bindings and params.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        ValidatingAdmissionPolicy { cluster }
    }
}

/// `matchConstraints` or a binding's `matchResources`: resource rules minus excluded ones,
/// namespace and object selectors.
fn resources_match(constraints: &Value, attrs: &Attributes, namespace: Option<&Value>) -> bool {
    if constraints.is_null() {
        return true;
    }
    let included = constraints["resourceRules"].is_null()
        || matching::rules_match(&constraints["resourceRules"], attrs);
    included
        && !matching::rules_match(&constraints["excludeResourceRules"], attrs)
        && matching::namespace_selector_matches(&constraints["namespaceSelector"], attrs, namespace)
        && matching::object_selector_matches(&constraints["objectSelector"], attrs)
}

fn reason(text: Option<&str>) -> Reason {
    match text {
        Some("Unauthorized") => Reason::Unauthorized,
        Some("Forbidden") => Reason::Forbidden,
        Some("RequestEntityTooLarge") => Reason::RequestEntityTooLarge,
        _ => Reason::Invalid,
    }
}

fn code(reason: Reason) -> u16 {
    match reason {
        Reason::Unauthorized => 401,
        Reason::Forbidden => 403,
        Reason::RequestEntityTooLarge => 413,
        _ => 422,
    }
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("")
}

/// A validation that failed (or could not be evaluated under failurePolicy Fail): the
/// binding's validationActions decide what happens to it.
struct Failure {
    /// The index of the validation (upstream's `expressionIndex`).
    index: usize,
    message: String,
    reason: Reason,
}

/// An audit annotation of one evaluation: a value to publish, or an error that denies.
enum AuditAnnotation {
    Publish(String, String),
    Error(String),
}

/// What one policy concluded for one binding and param.
#[derive(Default)]
struct Evaluation {
    failures: Vec<Failure>,
    annotations: Vec<AuditAnnotation>,
}

/// One entry of the `validation_failure` audit annotation, in upstream's field order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ValidationFailure<'a> {
    message: &'a str,
    policy: &'a str,
    binding: &'a str,
    expression_index: usize,
    validation_actions: &'a [&'a str],
}

/// A denial: the policy, the binding (none for a policy-level error), the message, the
/// reason.
struct Denial {
    policy: String,
    binding: Option<String>,
    message: String,
    reason: Reason,
}

impl Denial {
    fn into_error(self, attrs: &Attributes) -> ApiError {
        let message = match &self.binding {
            Some(binding) => format!(
                "ValidatingAdmissionPolicy '{}' with binding '{binding}' denied request: {}",
                self.policy, self.message
            ),
            None => format!(
                "ValidatingAdmissionPolicy '{}' denied request: {}",
                self.policy, self.message
            ),
        };
        let forbidden = attrs.forbidden(&message);
        let mut details = forbidden.details().cloned().unwrap_or_default();
        details.causes.push(StatusCause {
            message,
            ..StatusCause::default()
        });
        ApiError::new(
            code(self.reason),
            self.reason,
            forbidden.message(),
            Some(details),
        )
    }
}

/// Whether the policy fails closed (the default) on errors.
fn fails_closed(policy: &Value) -> bool {
    policy["spec"]["failurePolicy"].as_str() != Some("Ignore")
}

impl ValidatingAdmissionPolicy {
    /// The params a binding selects (`[None]`: the policy has no paramKind or the binding no
    /// paramRef). `Err((policy_level, message))`: a configuration error.
    async fn params(
        &self,
        policy: &Value,
        binding: &Value,
        attrs: &Attributes,
    ) -> Result<Vec<Option<Value>>, (bool, String)> {
        let kind = &policy["spec"]["paramKind"];
        if kind.is_null() {
            return Ok(vec![None]);
        }
        let api_version = kind["apiVersion"].as_str().unwrap_or("");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let kind_name = kind["kind"].as_str().unwrap_or("");
        let resource = rkube_api::resources::lookup_kind(group, version, kind_name).ok_or_else(
            || {
                (
                    true,
                    format!("failed to find resource referenced by paramKind: '{api_version}, Kind={kind_name}'"),
                )
            },
        )?;
        let param_ref = &binding["spec"]["paramRef"];
        if param_ref.is_null() {
            return Ok(vec![None]);
        }
        let config = |m: &str| Err((false, m.to_owned()));
        let text = |f: &str| param_ref[f].as_str().filter(|s| !s.is_empty());
        let namespace = match (resource.namespaced, text("namespace")) {
            (false, Some(_)) => {
                return config(
                    "paramRef.namespace must not be provided for a cluster-scoped `paramKind`",
                );
            }
            (false, None) => String::new(),
            (true, Some(ns)) => ns.to_owned(),
            (true, None) if attrs.namespace.is_empty() => {
                return config(
                    "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources",
                );
            }
            (true, None) => attrs.namespace.clone(),
        };
        let unavailable = |e: ApiError| (false, e.message().to_owned());
        let found: Vec<Value> = match (text("name"), param_ref["selector"].is_null()) {
            (Some(_), false) => {
                return config("paramRef.name and paramRef.selector are mutually exclusive");
            }
            (Some(name), true) => self
                .cluster
                .get((resource.group, resource.plural), &namespace, name)
                .await
                .map_err(unavailable)?
                .into_iter()
                .collect(),
            (None, false) => {
                let ns = (!namespace.is_empty()).then_some(namespace.as_str());
                let all = self
                    .cluster
                    .list((resource.group, resource.plural), ns)
                    .await
                    .map_err(unavailable)?;
                all.into_iter()
                    .filter(|p| {
                        let probe = Attributes {
                            object: Some(p.clone()),
                            ..Attributes::default()
                        };
                        matching::object_selector_matches(&param_ref["selector"], &probe)
                    })
                    .collect()
            }
            (None, true) => return config("one of name or selector must be provided"),
        };
        if found.is_empty() && param_ref["parameterNotFoundAction"].as_str() == Some("Deny") {
            return config(
                "no params found for policy binding with `Deny` parameterNotFoundAction",
            );
        }
        Ok(found.into_iter().map(Some).collect())
    }

    /// Upstream's validator: match conditions, then every validation and audit annotation,
    /// errors decided by the failure policy.
    fn evaluate(
        policy: &Value,
        attrs: &Attributes,
        namespace: Option<&Value>,
        params: Option<Value>,
    ) -> Evaluation {
        crate::cel::on_deep_stack(|| Self::evaluate_here(policy, attrs, namespace, params))
            .unwrap_or_else(|e| {
                let mut out = Evaluation::default();
                if fails_closed(policy) {
                    out.failures.push(Failure {
                        index: 0,
                        message: e,
                        reason: Reason::Invalid,
                    });
                }
                out
            })
    }

    /// [`Self::evaluate`] on the current thread.
    fn evaluate_here(
        policy: &Value,
        attrs: &Attributes,
        namespace: Option<&Value>,
        params: Option<Value>,
    ) -> Evaluation {
        let spec = &policy["spec"];
        let closed = fails_closed(policy);
        let mut out = Evaluation::default();
        let conditions_vars = Variables {
            params: params.clone(),
            namespace: None,
        };
        match crate::cel::match_conditions(attrs, &conditions_vars, &spec["matchConditions"]) {
            Ok(true) => {}
            Ok(false) => return out,
            Err(e) => {
                if closed {
                    out.failures.push(Failure {
                        index: 0,
                        message: e,
                        reason: Reason::Invalid,
                    });
                }
                return out;
            }
        }
        let list = |field: &str| spec[field].as_array().cloned().unwrap_or_default();
        let composited: Vec<(String, String)> = list("variables")
            .iter()
            .map(|v| {
                let text = |f: &str| v[f].as_str().unwrap_or("").to_owned();
                (text("name"), text("expression"))
            })
            .collect();
        let vars = Variables {
            params,
            namespace: namespace.cloned(),
        };
        let activation = Activation::new(attrs, &vars, &composited);
        for (index, validation) in list("validations").iter().enumerate() {
            let expression = validation["expression"].as_str().unwrap_or("");
            let failure = |message: String, reason: Reason| Failure {
                index,
                message,
                reason,
            };
            match activation.eval_bool(&Program::compile(expression)) {
                Ok(true) => {}
                Ok(false) => out.failures.push(failure(
                    Self::message(&activation, validation, expression),
                    reason(validation["reason"].as_str()),
                )),
                Err(e) if closed => out.failures.push(failure(e, Reason::Invalid)),
                Err(_) => {}
            }
        }
        for annotation in list("auditAnnotations") {
            let key = annotation["key"].as_str().unwrap_or("").to_owned();
            let source = annotation["valueExpression"].as_str().unwrap_or("");
            match activation.eval(&Program::compile(source)) {
                Ok(Answer::String(value)) => {
                    let value = value.trim();
                    if !value.is_empty() {
                        let mut end = value.len().min(MAX_AUDIT_ANNOTATION_VALUE);
                        while !value.is_char_boundary(end) {
                            end -= 1;
                        }
                        out.annotations
                            .push(AuditAnnotation::Publish(key, value[..end].to_owned()));
                    }
                }
                Ok(Answer::Null) => {}
                Ok(other) => out.annotations.push(AuditAnnotation::Error(format!(
                    "valueExpression '{source}' resulted in unsupported return type: {}. Return type must be either string or null.",
                    other.type_name()
                ))),
                Err(e) if closed => out.annotations.push(AuditAnnotation::Error(e)),
                Err(_) => {}
            }
        }
        out
    }

    /// A failed validation's message: its messageExpression's (one line, not too long),
    /// else its message, else the expression.
    fn message(activation: &Activation, validation: &Value, expression: &str) -> String {
        let evaluated = validation["messageExpression"]
            .as_str()
            .and_then(|m| match activation.eval(&Program::compile(m)) {
                Ok(Answer::String(s)) => Some(s.trim().to_owned()),
                Ok(_) => None,
                Err(e) => {
                    tracing::debug!(error = %e, "messageExpression failed");
                    None
                }
            })
            .filter(|m| {
                !m.is_empty() && m.len() <= MAX_MESSAGE_EXPRESSION_BYTES && !m.contains('\n')
            });
        evaluated
            .or_else(|| {
                validation["message"]
                    .as_str()
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
            })
            .unwrap_or_else(|| format!("failed expression: {}", expression.trim()))
    }
}

#[async_trait]
impl Plugin for ValidatingAdmissionPolicy {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionPolicy"
    }

    async fn validate(&self, attrs: &Attributes, warnings: &Warnings) -> Result<()> {
        let mut bindings = self
            .cluster
            .list((GROUP, "validatingadmissionpolicybindings"), None)
            .await?;
        if bindings.is_empty() {
            return Ok(());
        }
        let mut policies = self
            .cluster
            .list((GROUP, "validatingadmissionpolicies"), None)
            .await?;
        policies.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        bindings.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        // A namespace's own requests see no namespaceObject, as upstream.
        let namespace = if attrs.namespace.is_empty() || attrs.kind.is_core("Namespace") {
            None
        } else {
            self.cluster
                .get(("", "namespaces"), "", &attrs.namespace)
                .await?
        };
        let mut denials: Vec<Denial> = Vec::new();
        let mut failures: Vec<(String, String, Vec<&str>, Failure)> = Vec::new();
        for policy in &policies {
            let policy_name = name_of(policy);
            if !resources_match(
                &policy["spec"]["matchConstraints"],
                attrs,
                namespace.as_ref(),
            ) {
                continue;
            }
            let deny = |binding: Option<&str>, message: String, reason: Reason| Denial {
                policy: policy_name.to_owned(),
                binding: binding.map(str::to_owned),
                message,
                reason,
            };
            // Values of each audit annotation key, over all bindings, without repeats.
            let mut annotations: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for binding in bindings
                .iter()
                .filter(|b| b["spec"]["policyName"].as_str() == Some(policy_name))
            {
                let binding_name = name_of(binding);
                if !resources_match(
                    &binding["spec"]["matchResources"],
                    attrs,
                    namespace.as_ref(),
                ) {
                    continue;
                }
                let params = match self.params(policy, binding, attrs).await {
                    Ok(params) => params,
                    Err((policy_level, e)) => {
                        if fails_closed(policy) {
                            let (binding, message) = if policy_level {
                                (None, format!("failed to configure policy: {e}"))
                            } else {
                                (
                                    Some(binding_name),
                                    format!("failed to configure binding: {e}"),
                                )
                            };
                            denials.push(deny(binding, message, Reason::Invalid));
                        }
                        continue;
                    }
                };
                let actions: Vec<&str> = binding["spec"]["validationActions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                for param in params {
                    let evaluation = Self::evaluate(policy, attrs, namespace.as_ref(), param);
                    for failure in evaluation.failures {
                        if actions.contains(&"Deny") {
                            denials.push(deny(
                                Some(binding_name),
                                failure.message.clone(),
                                failure.reason,
                            ));
                        }
                        if actions.contains(&"Warn") {
                            warnings.add(format!(
                                "Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}': {}",
                                failure.message
                            ));
                        }
                        if actions.contains(&"Audit") {
                            failures.push((
                                policy_name.to_owned(),
                                binding_name.to_owned(),
                                actions.clone(),
                                failure,
                            ));
                        }
                    }
                    for annotation in evaluation.annotations {
                        match annotation {
                            AuditAnnotation::Publish(key, value) => {
                                let values = annotations.entry(key).or_default();
                                if !values.contains(&value) {
                                    values.push(value);
                                }
                            }
                            AuditAnnotation::Error(e) => {
                                denials.push(deny(Some(binding_name), e, Reason::Invalid));
                            }
                        }
                    }
                }
            }
            for (key, values) in annotations {
                attrs
                    .audit_annotations
                    .add(format!("{policy_name}/{key}"), values.join(", "));
            }
        }
        if !failures.is_empty() {
            let listed: Vec<ValidationFailure<'_>> = failures
                .iter()
                .take(MAX_VALIDATION_FAILURES)
                .map(|(policy, binding, actions, f)| ValidationFailure {
                    message: &f.message,
                    policy,
                    binding,
                    expression_index: f.index,
                    validation_actions: actions,
                })
                .collect();
            if let Ok(value) = serde_json::to_string(&listed) {
                attrs.audit_annotations.add(VALIDATION_FAILURE_KEY, value);
            }
        }
        match denials.into_iter().next() {
            Some(denial) => Err(denial.into_error(attrs)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::Operation;
    use crate::testing::{FakeCluster, attrs};
    use serde_json::json;

    fn cluster(actions: Value) -> Arc<FakeCluster> {
        let cluster = FakeCluster::default();
        cluster.put((GROUP, "validatingadmissionpolicies"), json!({
            "metadata": {"name": "max-replicas"},
            "spec": {
                "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
                "validations": [{"expression": "object.spec.replicas <= 5"}]
            }
        }));
        cluster.put(
            (GROUP, "validatingadmissionpolicybindings"),
            json!({
                "metadata": {"name": "max-replicas-binding"},
                "spec": {"policyName": "max-replicas", "validationActions": actions}
            }),
        );
        Arc::new(cluster)
    }

    fn deployment(replicas: i64) -> Attributes {
        attrs(
            Operation::Create,
            "apps",
            "deployments",
            "Deployment",
            "ns",
            Some(json!({"metadata": {"name": "web"}, "spec": {"replicas": replicas}})),
        )
    }

    #[tokio::test]
    async fn deny_refuses_with_upstreams_message() {
        let plugin = ValidatingAdmissionPolicy::new(cluster(json!(["Deny"])));
        let w = Warnings::default();
        plugin.validate(&deployment(5), &w).await.unwrap();
        let err = plugin.validate(&deployment(6), &w).await.unwrap_err();
        assert_eq!(err.code(), 422);
        assert_eq!(
            err.message(),
            "deployments.apps \"web\" is forbidden: ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: failed expression: object.spec.replicas <= 5"
        );
    }

    #[tokio::test]
    async fn warn_only_warns_and_audit_records_upstreams_failure_annotation() {
        let plugin = ValidatingAdmissionPolicy::new(cluster(json!(["Warn", "Audit"])));
        let w = Warnings::default();
        let a = deployment(6);
        plugin.validate(&a, &w).await.unwrap();
        assert_eq!(
            w.take(),
            vec!["Validation failed for ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding': failed expression: object.spec.replicas <= 5".to_owned()]
        );
        assert_eq!(
            a.audit_annotations.snapshot(),
            [(
                "validation.policy.admission.k8s.io/validation_failure".to_owned(),
                r#"[{"message":"failed expression: object.spec.replicas <= 5","policy":"max-replicas","binding":"max-replicas-binding","expressionIndex":0,"validationActions":["Warn","Audit"]}]"#.to_owned()
            )]
        );
    }

    /// A cluster with one policy of `spec` bound with `actions`.
    fn policy_cluster(spec: Value, actions: Value) -> Arc<FakeCluster> {
        let cluster = FakeCluster::default();
        let mut spec = spec;
        spec["matchConstraints"] = json!({"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"]}]});
        cluster.put(
            (GROUP, "validatingadmissionpolicies"),
            json!({"metadata": {"name": "p"}, "spec": spec}),
        );
        cluster.put(
            (GROUP, "validatingadmissionpolicybindings"),
            json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "validationActions": actions}}),
        );
        Arc::new(cluster)
    }

    #[tokio::test]
    async fn variables_message_expressions_and_audit_annotations() {
        let plugin = ValidatingAdmissionPolicy::new(policy_cluster(
            json!({
                "variables": [
                    {"name": "replicas", "expression": "object.spec.replicas"},
                    {"name": "limit", "expression": "variables.replicas > 10 ? 20 : 5"}
                ],
                "validations": [
                    {"expression": "variables.replicas <= variables.limit",
                     "messageExpression": "'replicas ' + string(variables.replicas) + ' over ' + string(variables.limit)",
                     "reason": "Forbidden"},
                    {"expression": "variables.replicas >= 0", "message": "never shown"}
                ],
                "auditAnnotations": [
                    {"key": "replicas", "valueExpression": "'seen ' + string(variables.replicas)"},
                    {"key": "skipped", "valueExpression": "null"}
                ]
            }),
            json!(["Deny"]),
        ));
        let a = deployment(6);
        let err = plugin.validate(&a, &Warnings::default()).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (
                403,
                "deployments.apps \"web\" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: replicas 6 over 5"
            )
        );
        assert_eq!(
            a.audit_annotations.snapshot(),
            [("p/replicas".to_owned(), "seen 6".to_owned())]
        );
        plugin
            .validate(&deployment(5), &Warnings::default())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn errors_deny_unless_the_failure_policy_ignores_them() {
        let spec = |failure: &str| {
            json!({
                "failurePolicy": failure,
                "variables": [{"name": "bad", "expression": "object.spec.nothing"}],
                "validations": [{"expression": "variables.bad == 1"}],
                "auditAnnotations": [{"key": "k", "valueExpression": "1"}]
            })
        };
        let closed = ValidatingAdmissionPolicy::new(policy_cluster(spec("Fail"), json!(["Deny"])));
        let err = closed
            .validate(&deployment(1), &Warnings::default())
            .await
            .unwrap_err();
        assert_eq!(
            err.message(),
            "deployments.apps \"web\" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: expression 'variables.bad == 1' resulted in error: composited variable \"bad\" fails to evaluate: No such key: nothing"
        );
        // Ignore: the evaluation error is dropped, but an audit annotation of the wrong type
        // still denies, as upstream.
        let open = ValidatingAdmissionPolicy::new(policy_cluster(spec("Ignore"), json!(["Deny"])));
        let err = open
            .validate(&deployment(1), &Warnings::default())
            .await
            .unwrap_err();
        assert!(
            err.message().ends_with("denied request: valueExpression '1' resulted in unsupported return type: int. Return type must be either string or null."),
            "{}",
            err.message()
        );
    }

    #[tokio::test]
    async fn every_policy_is_evaluated_before_the_first_denial_answers() {
        let cluster = cluster(json!(["Deny"]));
        cluster.put(
            (GROUP, "validatingadmissionpolicies"),
            json!({"metadata": {"name": "z-warn"}, "spec": {"validations": [{"expression": "false", "message": "late"}]}}),
        );
        cluster.put(
            (GROUP, "validatingadmissionpolicybindings"),
            json!({"metadata": {"name": "z-warn-binding"}, "spec": {"policyName": "z-warn", "validationActions": ["Warn"]}}),
        );
        let plugin = ValidatingAdmissionPolicy::new(cluster);
        let w = Warnings::default();
        assert_eq!(
            plugin
                .validate(&deployment(6), &w)
                .await
                .unwrap_err()
                .code(),
            422
        );
        assert_eq!(
            w.take(),
            [
                "Validation failed for ValidatingAdmissionPolicy 'z-warn' with binding 'z-warn-binding': late"
            ]
        );
    }
}
