//! MutatingAdmissionWebhook and ValidatingAdmissionWebhook: the cluster's
//! (Mutating|Validating)WebhookConfigurations, matched against each request (rules with
//! operations, groups, versions, resources and subresources, scope; namespaceSelector;
//! objectSelector; CEL matchConditions) and called over HTTPS ([`client`]) with an
//! `admission.k8s.io/v1` AdmissionReview.

pub mod client;
pub mod matching;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use rkube_api::status::{ApiError, Reason, StatusDetails};
use serde_json::{Value, json};

use crate::attributes::Attributes;
use crate::cel::{self, Variables};
use crate::chain::{Cluster, Plugin, Result, Warnings};

const GROUP: &str = "admissionregistration.k8s.io";

/// Which of the two plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// MutatingAdmissionWebhook.
    Mutating,
    /// ValidatingAdmissionWebhook.
    Validating,
}

/// One of the two webhook plugins.
#[derive(Debug)]
pub struct Webhooks {
    cluster: Arc<dyn Cluster>,
    kind: Kind,
}

impl Webhooks {
    /// The plugin of `kind` over `cluster`'s webhook configurations.
    pub fn new(cluster: Arc<dyn Cluster>, kind: Kind) -> Self {
        Webhooks { cluster, kind }
    }

    /// Every webhook of every configuration, configurations sorted by name (upstream's
    /// order), each with its configuration's name.
    async fn webhooks(&self) -> Result<Vec<Value>> {
        let plural = match self.kind {
            Kind::Mutating => "mutatingwebhookconfigurations",
            Kind::Validating => "validatingwebhookconfigurations",
        };
        let mut configs = self.cluster.list((GROUP, plural), None).await?;
        configs.sort_by(|a, b| {
            a["metadata"]["name"]
                .as_str()
                .cmp(&b["metadata"]["name"].as_str())
        });
        Ok(configs
            .iter()
            .flat_map(|c| c["webhooks"].as_array().cloned().unwrap_or_default())
            .collect())
    }

    /// Whether `hook` applies to `attrs` (rules, selectors, then match conditions); an
    /// error only from a match condition that could not be evaluated.
    async fn applies(&self, hook: &Value, attrs: &Attributes) -> Result<bool, String> {
        if !matching::rules_match(&hook["rules"], attrs) {
            return Ok(false);
        }
        if !matching::object_selector_matches(&hook["objectSelector"], attrs) {
            return Ok(false);
        }
        let namespace = if attrs.namespace.is_empty() {
            None
        } else {
            self.cluster
                .get(("", "namespaces"), "", &attrs.namespace)
                .await
                .map_err(|e| e.to_string())?
        };
        if !matching::namespace_selector_matches(
            &hook["namespaceSelector"],
            attrs,
            namespace.as_ref(),
        ) {
            return Ok(false);
        }
        let vars = Variables {
            params: None,
            namespace,
        };
        cel::match_conditions(attrs, &vars, &hook["matchConditions"])
    }

    /// Calls `hook`; `Ok(None)` when a failure is ignored by its failure policy.
    async fn call(&self, hook: &Value, attrs: &Attributes) -> Result<Option<Value>> {
        let name = hook["name"].as_str().unwrap_or("");
        let ignore = hook["failurePolicy"].as_str() == Some("Ignore");
        let failed = |why: String| {
            if ignore {
                tracing::warn!(webhook = name, error = %why, "failed calling webhook, failing open");
                Ok(None)
            } else {
                Err(ApiError::internal(format!(
                    "failed calling webhook \"{name}\": {why}"
                )))
            }
        };
        let uid = uuid::Uuid::new_v4().to_string();
        let review = review(&uid, attrs);
        let timeout =
            Duration::from_secs(hook["timeoutSeconds"].as_u64().unwrap_or(10).clamp(1, 30));
        let config = &hook["clientConfig"];
        let target = match client::resolve(self.cluster.as_ref(), config).await {
            Ok(t) => t,
            Err(e) => return failed(e.to_string()),
        };
        let answer =
            match client::call(&target, config["caBundle"].as_str(), &review, timeout).await {
                Ok(a) => a,
                Err(e) => return failed(e.to_string()),
            };
        let response = &answer["response"];
        if answer["apiVersion"] != "admission.k8s.io/v1" || answer["kind"] != "AdmissionReview" {
            return failed(
                "received invalid webhook response: expected admission.k8s.io/v1 AdmissionReview"
                    .into(),
            );
        }
        if response["uid"].as_str() != Some(uid.as_str()) {
            return failed(format!(
                "expected response.uid={uid:?}, got {:?}",
                response["uid"].as_str().unwrap_or("")
            ));
        }
        Ok(Some(response.clone()))
    }
}

/// The `admission.k8s.io/v1` AdmissionReview upstream sends for `attrs`.
fn review(uid: &str, attrs: &Attributes) -> Value {
    let kind =
        json!({"group": attrs.kind.group, "version": attrs.kind.version, "kind": attrs.kind.name});
    let resource = json!({"group": attrs.resource.group, "version": attrs.resource.version, "resource": attrs.resource.name});
    let mut request = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "operation": attrs.op().as_str(),
        "userInfo": attrs.user,
        "object": attrs.object.clone().unwrap_or(Value::Null),
        "oldObject": attrs.old_object.clone().unwrap_or(Value::Null),
        "dryRun": attrs.dry_run,
        "options": attrs.options.clone().unwrap_or(Value::Null),
    });
    if !attrs.subresource.is_empty() {
        request["subResource"] = attrs.subresource.clone().into();
        request["requestSubResource"] = attrs.subresource.clone().into();
    }
    if !attrs.name.is_empty() {
        request["name"] = attrs.name.clone().into();
    }
    if !attrs.namespace.is_empty() {
        request["namespace"] = attrs.namespace.clone().into();
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// Upstream's `ToStatusErr`: a refusal as the client sees it.
fn denied(name: &str, status: &Value) -> ApiError {
    let denied_by = format!("admission webhook {name:?} denied the request");
    let text = |f: &str| status[f].as_str().filter(|s| !s.is_empty());
    let message = match (text("message"), text("reason")) {
        (Some(m), _) => format!("{denied_by}: {m}"),
        (None, Some(r)) => format!("{denied_by}: {r}"),
        _ => format!("{denied_by} without explanation"),
    };
    let code = status["code"].as_u64().filter(|c| *c >= 400).unwrap_or(400) as u16;
    let reason = reason_for(code);
    let details: Option<StatusDetails> = serde_json::from_value(status["details"].clone()).ok();
    ApiError::new(code, reason, message, details)
}

fn reason_for(code: u16) -> Reason {
    match code {
        401 => Reason::Unauthorized,
        403 => Reason::Forbidden,
        404 => Reason::NotFound,
        409 => Reason::Conflict,
        422 => Reason::Invalid,
        429 => Reason::TooManyRequests,
        500 => Reason::InternalError,
        503 => Reason::ServiceUnavailable,
        _ => Reason::BadRequest,
    }
}

/// Whether upstream refuses to call `hook` for a dry run (side effects other than None).
fn refuses_dry_run(hook: &Value, attrs: &Attributes) -> Option<ApiError> {
    let safe = matches!(hook["sideEffects"].as_str(), Some("None" | "NoneOnDryRun"));
    (attrs.dry_run && !safe).then(|| {
        ApiError::bad_request(format!(
            "admission webhook {:?} does not support dry run",
            hook["name"].as_str().unwrap_or("")
        ))
    })
}

/// Webhook configurations and policies are never sent to webhooks (a broken webhook could
/// otherwise lock itself in).
fn exempt(attrs: &Attributes) -> bool {
    attrs.resource.group == GROUP
}

impl Webhooks {
    /// Runs `hooks` once in order on `attrs`; answers the names of those that changed the
    /// object.
    async fn mutate_once(
        &self,
        hooks: &[&Value],
        attrs: &mut Attributes,
        warnings: &Warnings,
    ) -> Result<Vec<String>> {
        let mut changed = Vec::new();
        for hook in hooks {
            match self.applies(hook, attrs).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) if hook["failurePolicy"].as_str() == Some("Ignore") => {
                    tracing::warn!(error = %e, "webhook match condition failed, failing open");
                    continue;
                }
                Err(e) => return Err(ApiError::internal(e)),
            }
            if let Some(err) = refuses_dry_run(hook, attrs) {
                return Err(err);
            }
            let name = hook["name"].as_str().unwrap_or("").to_owned();
            let Some(response) = self.call(hook, attrs).await? else {
                continue;
            };
            for w in response["warnings"].as_array().into_iter().flatten() {
                if let Some(w) = w.as_str() {
                    warnings.add(w);
                }
            }
            if response["allowed"].as_bool() != Some(true) {
                return Err(denied(&name, &response["status"]));
            }
            let Some(patch) = response["patch"].as_str() else {
                continue;
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(patch)
                .map_err(|e| {
                    ApiError::internal(format!(
                        "failed calling webhook \"{name}\": patch is not base64: {e}"
                    ))
                })?;
            let ops: json_patch::Patch = serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::internal(format!("failed calling webhook \"{name}\": {e}"))
            })?;
            let Some(object) = attrs.object.as_mut() else {
                continue;
            };
            let before = object.clone();
            json_patch::patch(object, &ops).map_err(|e| {
                ApiError::internal(format!("failed calling webhook \"{name}\": {e}"))
            })?;
            if *object != before {
                changed.push(name);
            }
        }
        Ok(changed)
    }
}

#[async_trait]
impl Plugin for Webhooks {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Mutating => "MutatingAdmissionWebhook",
            Kind::Validating => "ValidatingAdmissionWebhook",
        }
    }

    async fn admit(&self, attrs: &mut Attributes, warnings: &Warnings) -> Result<()> {
        if self.kind != Kind::Mutating || exempt(attrs) {
            return Ok(());
        }
        let hooks = self.webhooks().await?;
        if hooks.is_empty() {
            return Ok(());
        }
        let all: Vec<&Value> = hooks.iter().collect();
        let changed = self.mutate_once(&all, attrs, warnings).await?;
        // reinvocationPolicy IfNeeded: once more, for the webhooks that ran before another
        // one changed the object (upstream reinvokes at most once).
        if changed.is_empty() {
            return Ok(());
        }
        let last_change = all
            .iter()
            .rposition(|h| changed.iter().any(|c| h["name"].as_str() == Some(c)))
            .unwrap_or(0);
        let again: Vec<&Value> = all[..last_change]
            .iter()
            .copied()
            .filter(|h| h["reinvocationPolicy"].as_str() == Some("IfNeeded"))
            .collect();
        self.mutate_once(&again, attrs, warnings).await?;
        Ok(())
    }

    async fn validate(&self, attrs: &Attributes, warnings: &Warnings) -> Result<()> {
        if self.kind != Kind::Validating || exempt(attrs) {
            return Ok(());
        }
        for hook in self.webhooks().await? {
            match self.applies(&hook, attrs).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) if hook["failurePolicy"].as_str() == Some("Ignore") => {
                    tracing::warn!(error = %e, "webhook match condition failed, failing open");
                    continue;
                }
                Err(e) => return Err(ApiError::internal(e)),
            }
            if let Some(err) = refuses_dry_run(&hook, attrs) {
                return Err(err);
            }
            let Some(response) = self.call(&hook, attrs).await? else {
                continue;
            };
            for w in response["warnings"].as_array().into_iter().flatten() {
                if let Some(w) = w.as_str() {
                    warnings.add(w);
                }
            }
            if response["allowed"].as_bool() != Some(true) {
                return Err(denied(
                    hook["name"].as_str().unwrap_or(""),
                    &response["status"],
                ));
            }
        }
        Ok(())
    }
}

/// Labels of an object, for selectors.
pub(crate) fn labels(object: Option<&Value>) -> BTreeMap<String, String> {
    object
        .and_then(|o| o["metadata"]["labels"].as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_runs_need_webhooks_without_side_effects() {
        let mut a = crate::testing::attrs(
            crate::attributes::Operation::Create,
            "",
            "pods",
            "Pod",
            "ns",
            None,
        );
        a.dry_run = true;
        let hook = |effects: &str| json!({"name": "w.example.com", "sideEffects": effects});
        assert!(refuses_dry_run(&hook("None"), &a).is_none());
        assert!(refuses_dry_run(&hook("NoneOnDryRun"), &a).is_none());
        let err = refuses_dry_run(&hook("Some"), &a).unwrap();
        assert_eq!(
            (err.code(), err.message()),
            (
                400,
                r#"admission webhook "w.example.com" does not support dry run"#
            )
        );
        a.dry_run = false;
        assert!(refuses_dry_run(&hook("Some"), &a).is_none());
    }

    #[test]
    fn denials_read_as_upstream_writes_them() {
        let err = denied(
            "deny.example.com",
            &json!({"message": "no thanks", "code": 403}),
        );
        assert_eq!(
            (err.code(), err.message()),
            (
                403,
                r#"admission webhook "deny.example.com" denied the request: no thanks"#
            )
        );
        let err = denied("d", &Value::Null);
        assert_eq!(
            (err.code(), err.message()),
            (
                400,
                r#"admission webhook "d" denied the request without explanation"#
            )
        );
    }
}
