//! ValidatingAdmissionPolicy: policies and their bindings, matched against each request
//! (matchConstraints, the binding's matchResources, matchConditions), evaluated with CEL
//! ([`crate::cel`]) against the bound params, and enforced by the binding's
//! validationActions (Deny, Warn, Audit) and the policy's failurePolicy.

use std::sync::Arc;

use async_trait::async_trait;
use rkube_api::status::{ApiError, Reason, StatusCause};
use serde_json::Value;

use crate::attributes::Attributes;
use crate::cel::{self, Expression, Outcome, Variables};
use crate::chain::{Cluster, Plugin, Result, Warnings};
use crate::webhook::matching;

const GROUP: &str = "admissionregistration.k8s.io";

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

/// One decision to enforce.
struct Decision {
    message: String,
    reason: Reason,
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

impl ValidatingAdmissionPolicy {
    /// The params a binding selects (`None` in the list: the policy has no paramKind).
    async fn params(
        &self,
        policy: &Value,
        binding: &Value,
        attrs: &Attributes,
    ) -> Result<Option<Vec<Value>>, String> {
        let kind = &policy["spec"]["paramKind"];
        if kind.is_null() {
            return Ok(None);
        }
        let api_version = kind["apiVersion"].as_str().unwrap_or("");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let kind_name = kind["kind"].as_str().unwrap_or("");
        let resource = rkube_api::resources::lookup_kind(group, version, kind_name)
            .ok_or_else(|| format!("failed to configure policy: failed to find resource referenced by paramKind: '{api_version}, Kind={kind_name}'"))?;
        let param_ref = &binding["spec"]["paramRef"];
        let namespace = if resource.namespaced {
            param_ref["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(&attrs.namespace)
                .to_owned()
        } else {
            String::new()
        };
        let found: Vec<Value> =
            if let Some(name) = param_ref["name"].as_str().filter(|n| !n.is_empty()) {
                self.cluster
                    .get((resource.group, resource.plural), &namespace, name)
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .collect()
            } else {
                let ns = (!namespace.is_empty()).then_some(namespace.as_str());
                let all = self
                    .cluster
                    .list((resource.group, resource.plural), ns)
                    .await
                    .map_err(|e| e.to_string())?;
                let selector = &param_ref["selector"];
                all.into_iter()
                    .filter(|p| {
                        let probe = Attributes {
                            object: Some(p.clone()),
                            ..Attributes::default()
                        };
                        matching::object_selector_matches(selector, &probe)
                    })
                    .collect()
            };
        if found.is_empty() && param_ref["parameterNotFoundAction"].as_str() != Some("Allow") {
            return Err("failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction".into());
        }
        Ok(Some(found))
    }

    /// The decisions of one policy through one binding.
    async fn evaluate(
        &self,
        policy: &Value,
        binding: &Value,
        attrs: &Attributes,
        namespace: Option<&Value>,
    ) -> Result<Vec<Decision>, String> {
        let params = match self.params(policy, binding, attrs).await? {
            None => vec![None],
            Some(list) => list.into_iter().map(Some).collect(),
        };
        let validations = policy["spec"]["validations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let exprs: Vec<Expression> = validations
            .iter()
            .map(|v| {
                let expression = v["expression"].as_str().unwrap_or("").to_owned();
                let message = v["message"]
                    .as_str()
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("failed expression: {expression}"));
                Expression {
                    expression,
                    message: Some(message),
                    message_expression: v["messageExpression"].as_str().map(str::to_owned),
                }
            })
            .collect();
        let mut decisions = Vec::new();
        for param in params {
            let vars = Variables {
                params: param,
                namespace: namespace.cloned(),
            };
            if !cel::match_conditions(attrs, &vars, &policy["spec"]["matchConditions"])? {
                continue;
            }
            for (outcome, v) in cel::evaluate(attrs, &vars, &exprs)
                .into_iter()
                .zip(&validations)
            {
                match outcome {
                    Outcome::Pass => {}
                    Outcome::Fail(message) => decisions.push(Decision {
                        message,
                        reason: reason(v["reason"].as_str()),
                    }),
                    Outcome::Error(e) => {
                        return Err(format!(
                            "expression '{}' resulted in error: {e}",
                            v["expression"].as_str().unwrap_or("")
                        ));
                    }
                }
            }
        }
        Ok(decisions)
    }
}

#[async_trait]
impl Plugin for ValidatingAdmissionPolicy {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionPolicy"
    }

    async fn validate(&self, attrs: &Attributes, warnings: &Warnings) -> Result<()> {
        let bindings = self
            .cluster
            .list((GROUP, "validatingadmissionpolicybindings"), None)
            .await?;
        if bindings.is_empty() {
            return Ok(());
        }
        let policies = self
            .cluster
            .list((GROUP, "validatingadmissionpolicies"), None)
            .await?;
        let namespace = if attrs.namespace.is_empty() {
            None
        } else {
            self.cluster
                .get(("", "namespaces"), "", &attrs.namespace)
                .await?
        };
        for binding in &bindings {
            let binding_name = binding["metadata"]["name"].as_str().unwrap_or("");
            let policy_name = binding["spec"]["policyName"].as_str().unwrap_or("");
            let Some(policy) = policies
                .iter()
                .find(|p| p["metadata"]["name"].as_str() == Some(policy_name))
            else {
                continue;
            };
            if !resources_match(
                &policy["spec"]["matchConstraints"],
                attrs,
                namespace.as_ref(),
            ) || !resources_match(
                &binding["spec"]["matchResources"],
                attrs,
                namespace.as_ref(),
            ) {
                continue;
            }
            let actions: Vec<&str> = binding["spec"]["validationActions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let decisions = match self
                .evaluate(policy, binding, attrs, namespace.as_ref())
                .await
            {
                Ok(d) => d,
                Err(_) if policy["spec"]["failurePolicy"].as_str() == Some("Ignore") => continue,
                Err(e) => vec![Decision {
                    message: e,
                    reason: Reason::Invalid,
                }],
            };
            for decision in decisions {
                let message = format!(
                    "ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}' denied request: {}",
                    decision.message
                );
                if actions.contains(&"Warn") {
                    warnings.add(format!(
                        "Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}': {}",
                        decision.message
                    ));
                }
                if actions.contains(&"Audit") {
                    tracing::info!(policy = policy_name, binding = binding_name, "{message}");
                }
                if actions.contains(&"Deny") {
                    let forbidden = attrs.forbidden(&message);
                    let mut details = forbidden.details().cloned().unwrap_or_default();
                    details.causes.push(StatusCause {
                        message,
                        ..StatusCause::default()
                    });
                    return Err(ApiError::new(
                        code(decision.reason),
                        decision.reason,
                        forbidden.message(),
                        Some(details),
                    ));
                }
            }
        }
        Ok(())
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
    async fn warn_only_warns() {
        let plugin = ValidatingAdmissionPolicy::new(cluster(json!(["Warn", "Audit"])));
        let w = Warnings::default();
        plugin.validate(&deployment(6), &w).await.unwrap();
        assert_eq!(
            w.take(),
            vec!["Validation failed for ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding': failed expression: object.spec.replicas <= 5".to_owned()]
        );
    }
}
