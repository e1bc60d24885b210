//! CEL evaluation of admission expressions (policy validations, webhook and policy
//! matchConditions) with Kubernetes' CEL library (`kube-cel`), over the variables upstream
//! binds: `object`, `oldObject`, `request`, `params`, `namespaceObject`.

use kube_cel::{
    AdmissionRequest, GroupVersionKind, GroupVersionResource, VapEvaluator, VapExpression,
};
use serde_json::Value;

use crate::attributes::Attributes;

/// What one expression said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It held.
    Pass,
    /// It was false; the message to show.
    Fail(String),
    /// It could not be evaluated (does not compile, type error, not a bool).
    Error(String),
}

/// An expression with its failure message.
#[derive(Debug, Clone, Default)]
pub struct Expression {
    /// The CEL source.
    pub expression: String,
    /// Static message when false.
    pub message: Option<String>,
    /// CEL producing the message when false.
    pub message_expression: Option<String>,
}

/// The variables of one evaluation.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    /// `params` (policies with a paramKind).
    pub params: Option<Value>,
    /// `namespaceObject`.
    pub namespace: Option<Value>,
}

fn request(attrs: &Attributes) -> AdmissionRequest {
    AdmissionRequest {
        operation: attrs.op().as_str().to_owned(),
        username: attrs.user.name.clone(),
        uid: attrs.user.uid.clone(),
        groups: attrs.user.groups.clone(),
        name: attrs.name.clone(),
        namespace: attrs.namespace.clone(),
        dry_run: attrs.dry_run,
        kind: GroupVersionKind {
            group: attrs.kind.group.clone(),
            version: attrs.kind.version.clone(),
            kind: attrs.kind.name.clone(),
        },
        resource: GroupVersionResource {
            group: attrs.resource.group.clone(),
            version: attrs.resource.version.clone(),
            resource: attrs.resource.name.clone(),
        },
    }
}

/// Evaluates `expressions` for the request `attrs`, in order.
pub fn evaluate(attrs: &Attributes, vars: &Variables, expressions: &[Expression]) -> Vec<Outcome> {
    let mut builder = VapEvaluator::builder()
        .object(attrs.object.clone().unwrap_or(Value::Null))
        .request(request(attrs));
    if let Some(old) = &attrs.old_object {
        builder = builder.old_object(old.clone());
    }
    if let Some(params) = &vars.params {
        builder = builder.params(params.clone());
    }
    if let Some(ns) = &vars.namespace {
        builder = builder.namespace_object(ns.clone());
    }
    let exprs: Vec<VapExpression> = expressions
        .iter()
        .map(|e| VapExpression {
            expression: e.expression.clone(),
            message: e.message.clone(),
            message_expression: e.message_expression.clone(),
        })
        .collect();
    builder
        .build()
        .evaluate(&exprs)
        .into_iter()
        .map(|r| match (r.passed, r.message) {
            (true, _) => Outcome::Pass,
            (false, Some(m))
                if m.starts_with("evaluation error: ")
                    || m.starts_with("failed to compile VAP expression")
                    || m.starts_with("expression returned non-boolean") =>
            {
                Outcome::Error(m)
            }
            (false, m) => Outcome::Fail(m.unwrap_or_default()),
        })
        .collect()
}

/// Upstream's `matchConditions`: every condition must hold for the webhook or policy to
/// apply. `Ok(false)`: one is false; `Err`: one could not be evaluated (and none was false),
/// which the failure policy decides.
pub fn match_conditions(
    attrs: &Attributes,
    vars: &Variables,
    conditions: &Value,
) -> Result<bool, String> {
    let Some(list) = conditions.as_array().filter(|l| !l.is_empty()) else {
        return Ok(true);
    };
    let exprs: Vec<Expression> = list
        .iter()
        .map(|c| Expression {
            expression: c["expression"].as_str().unwrap_or("").to_owned(),
            ..Expression::default()
        })
        .collect();
    let mut error = None;
    for (outcome, condition) in evaluate(attrs, vars, &exprs).into_iter().zip(list) {
        match outcome {
            Outcome::Pass => {}
            Outcome::Fail(_) => return Ok(false),
            Outcome::Error(e) => {
                let name = condition["name"].as_str().unwrap_or("");
                error.get_or_insert(format!("failed to evaluate match condition {name:?}: {e}"));
            }
        }
    }
    error.map_or(Ok(true), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::Operation;
    use crate::testing::attrs;
    use serde_json::json;

    #[test]
    fn expressions_see_object_request_and_params() {
        let a = attrs(
            Operation::Create,
            "apps",
            "deployments",
            "Deployment",
            "ns",
            Some(json!({"metadata": {"name": "d"}, "spec": {"replicas": 6}})),
        );
        let vars = Variables {
            params: Some(json!({"max": 5})),
            namespace: None,
        };
        let outcomes = evaluate(
            &a,
            &vars,
            &[
                Expression {
                    expression: "object.spec.replicas <= 5".into(),
                    message: Some("too many".into()),
                    ..Default::default()
                },
                Expression {
                    expression: "object.spec.replicas <= params.max".into(),
                    message_expression: Some("'at most ' + string(params.max)".into()),
                    ..Default::default()
                },
                Expression {
                    expression: "request.operation == 'CREATE'".into(),
                    ..Default::default()
                },
                Expression {
                    expression: "object.spec.nope > 1".into(),
                    ..Default::default()
                },
            ],
        );
        assert_eq!(outcomes[0], Outcome::Fail("too many".into()));
        assert_eq!(outcomes[1], Outcome::Fail("at most 5".into()));
        assert_eq!(outcomes[2], Outcome::Pass);
        assert!(
            matches!(outcomes[3], Outcome::Error(_)),
            "{:?}",
            outcomes[3]
        );
    }
}
