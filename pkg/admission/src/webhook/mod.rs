//! MutatingAdmissionWebhook and ValidatingAdmissionWebhook: the cluster's
//! (Mutating|Validating)WebhookConfigurations, matched against each request (rules with
//! operations, groups, versions, resources and subresources, scope; namespaceSelector;
//! objectSelector; CEL matchConditions) and called over HTTPS ([`client`], a URL or a
//! Service's endpoints) with an `admission.k8s.io/v1` AdmissionReview.
//!
//! Mutating webhooks apply JSONPatch answers in order. When one changes the object, mutating
//! admission runs a second time ([`crate::chain::Reinvocation`]), in which the webhooks with
//! `reinvocationPolicy: IfNeeded` that ran before a change are called again, as upstream.
//! Validating webhooks that match are all called at once, as upstream's validating
//! dispatcher does; the refusal that arrives first is the answer.
//! Calls leave upstream's audit annotations (`mutation.webhook.admission.k8s.io/...`, the
//! webhooks' own `auditAnnotations` as `<webhook>/<key>`, `failed-open...` when a failure is
//! ignored).

pub mod client;
pub mod matching;
#[cfg(test)]
mod test_server;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
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

impl Kind {
    /// The prefix of the audit annotations of this kind's calls.
    fn annotation_prefix(self) -> &'static str {
        match self {
            Kind::Mutating => "mutation.webhook.admission.k8s.io/",
            Kind::Validating => "validating.webhook.admission.k8s.io/",
        }
    }
}

/// One of the two plugins.
#[derive(Debug)]
pub struct Webhooks {
    cluster: Arc<dyn Cluster>,
    kind: Kind,
}

/// One webhook of a configuration.
struct Hook {
    /// Upstream's webhook UID: `<configuration>/<webhook>/<index in the configuration>`.
    uid: String,
    configuration: String,
    /// Its position among all webhooks (the `index` of its audit annotations).
    index: usize,
    spec: Value,
}

impl Hook {
    fn name(&self) -> &str {
        self.spec["name"].as_str().unwrap_or("")
    }

    fn ignores_failures(&self) -> bool {
        self.spec["failurePolicy"].as_str() == Some("Ignore")
    }
}

/// What MutatingAdmissionWebhook remembers between the two passes (upstream's
/// `webhookReinvokeContext`).
#[derive(Debug, Clone, Default)]
pub(crate) struct ReinvokeState {
    /// `IfNeeded` webhooks called since the object last changed.
    previously_invoked: BTreeSet<String>,
    /// The webhooks the second pass calls.
    reinvoke: BTreeSet<String>,
    /// The object as the webhooks last left it.
    last_output: Option<Value>,
}

impl ReinvokeState {
    /// The object changed: every `IfNeeded` webhook called before gets called again.
    fn require_reinvoking_previously_invoked(&mut self) {
        let invoked = std::mem::take(&mut self.previously_invoked);
        self.reinvoke.extend(invoked);
    }
}

/// Upstream's `mutation.webhook.admission.k8s.io/round_<r>_index_<i>` value, in its field
/// order.
#[derive(serde::Serialize)]
struct MutationAnnotation<'a> {
    configuration: &'a str,
    webhook: &'a str,
    mutated: bool,
}

/// Why a webhook's call did not go through.
enum Failed {
    /// No usable answer (the call failed, or the answer is malformed): the webhook's failure
    /// policy decides.
    Call(String),
    /// The webhook refused.
    Refused(ApiError),
    /// Its patch cannot be applied: the request fails.
    Patch(String),
}

impl Webhooks {
    /// The plugin of `kind` over `cluster`'s webhook configurations.
    pub fn new(cluster: Arc<dyn Cluster>, kind: Kind) -> Self {
        Webhooks { cluster, kind }
    }

    /// Every webhook of every configuration, configurations sorted by name (upstream's
    /// order).
    async fn webhooks(&self) -> Result<Vec<Hook>> {
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
        let mut hooks = Vec::new();
        for config in &configs {
            let configuration = config["metadata"]["name"].as_str().unwrap_or("").to_owned();
            for (i, spec) in config["webhooks"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                hooks.push(Hook {
                    uid: format!(
                        "{configuration}/{}/{i}",
                        spec["name"].as_str().unwrap_or("")
                    ),
                    configuration: configuration.clone(),
                    index: hooks.len(),
                    spec: spec.clone(),
                });
            }
        }
        Ok(hooks)
    }

    /// Whether `hook` applies to `attrs` (rules, selectors, then match conditions). A match
    /// condition that cannot be evaluated refuses the request (403) unless the webhook
    /// ignores failures.
    async fn applies(&self, hook: &Hook, attrs: &Attributes) -> Result<bool> {
        let spec = &hook.spec;
        if !matching::rules_match(&spec["rules"], attrs)
            || !matching::object_selector_matches(&spec["objectSelector"], attrs)
        {
            return Ok(false);
        }
        let namespace = if attrs.namespace.is_empty() {
            None
        } else {
            self.cluster
                .get(("", "namespaces"), "", &attrs.namespace)
                .await?
        };
        if !matching::namespace_selector_matches(
            &spec["namespaceSelector"],
            attrs,
            namespace.as_ref(),
        ) {
            return Ok(false);
        }
        // Webhook match conditions see neither params nor the namespace, as upstream.
        match cel::match_conditions(attrs, &Variables::default(), &spec["matchConditions"]) {
            Ok(matches) => Ok(matches),
            Err(e) if hook.ignores_failures() => {
                tracing::warn!(webhook = hook.name(), error = %e, "webhook match condition failed, failing open");
                Ok(false)
            }
            Err(e) => Err(attrs.forbidden(e)),
        }
    }

    /// Calls `hook`: its AdmissionReview response, or why there is none.
    async fn call(&self, hook: &Hook, attrs: &Attributes) -> Result<Value, String> {
        let uid = uuid::Uuid::new_v4().to_string();
        let review = review(&uid, attrs);
        let timeout = Duration::from_secs(
            hook.spec["timeoutSeconds"]
                .as_u64()
                .unwrap_or(10)
                .clamp(1, 30),
        );
        let config = &hook.spec["clientConfig"];
        let failed = |e: client::CallError| e.to_string();
        let target = client::resolve(self.cluster.as_ref(), config)
            .await
            .map_err(failed)?;
        let answer = client::call(&target, config["caBundle"].as_str(), &review, timeout)
            .await
            .map_err(failed)?;
        let response = &answer["response"];
        let invalid = |why: String| format!("received invalid webhook response: {why}");
        if answer["apiVersion"] != "admission.k8s.io/v1" || answer["kind"] != "AdmissionReview" {
            return Err(invalid(
                "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview".into(),
            ));
        }
        if response["uid"].as_str() != Some(uid.as_str()) {
            return Err(invalid(format!(
                "expected response.uid={uid:?}, got {:?}",
                response["uid"].as_str().unwrap_or("")
            )));
        }
        Ok(response.clone())
    }

    /// A failed call: ignored (recorded as upstream's failed-open annotation at `index`) or a
    /// 500.
    fn failure(
        &self,
        hook: &Hook,
        (round, index): (usize, usize),
        attrs: &Attributes,
        why: &str,
    ) -> Result<()> {
        let message = format!("failed calling webhook {:?}: {why}", hook.name());
        if !hook.ignores_failures() {
            return Err(ApiError::internal(message));
        }
        tracing::warn!(webhook = hook.name(), error = %message, "failed calling webhook, failing open");
        attrs.audit_annotations.add(
            format!(
                "failed-open.{}round_{round}_index_{index}",
                self.kind.annotation_prefix(),
            ),
            hook.name(),
        );
        Ok(())
    }

    /// The answer's warnings and audit annotations, and its refusal if it refuses.
    fn take_answer(
        hook: &Hook,
        attrs: &Attributes,
        warnings: &Warnings,
        response: &Value,
    ) -> Result<()> {
        for w in response["warnings"].as_array().into_iter().flatten() {
            if let Some(w) = w.as_str() {
                warnings.add(w);
            }
        }
        for (key, value) in response["auditAnnotations"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if let Some(value) = value.as_str() {
                attrs
                    .audit_annotations
                    .add(format!("{}/{key}", hook.name()), value);
            }
        }
        if response["allowed"].as_bool() != Some(true) {
            return Err(denied(hook.name(), &response["status"]));
        }
        Ok(())
    }
}

/// The `admission.k8s.io/v1` AdmissionReview upstream sends for `attrs`.
fn review(uid: &str, attrs: &Attributes) -> Value {
    let mut request = cel::request(attrs);
    request["uid"] = uid.into();
    request["object"] = attrs.object.clone().unwrap_or(Value::Null);
    request["oldObject"] = attrs.old_object.clone().unwrap_or(Value::Null);
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

/// Applies a webhook's JSONPatch to the object: whether it changed it.
fn apply_patch(name: &str, response: &Value, object: Option<&mut Value>) -> Result<bool, Failed> {
    let Some(patch) = response["patch"].as_str().filter(|p| !p.is_empty()) else {
        return Ok(false);
    };
    let undecodable = |e: &dyn std::fmt::Display| {
        Failed::Call(format!(
            "received undecodable patch in webhook response: {e}"
        ))
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .map_err(|e| undecodable(&e))?;
    let ops: json_patch::Patch = serde_json::from_slice(&bytes).map_err(|e| undecodable(&e))?;
    if ops.0.is_empty() {
        return Ok(false);
    }
    let Some(object) = object else {
        return Err(Failed::Patch(format!(
            "admission webhook {name:?} attempted to modify the object, which is not supported for this operation"
        )));
    };
    let patch_type = response["patchType"].as_str().unwrap_or("");
    if patch_type != "JSONPatch" {
        return Err(Failed::Call(format!(
            "unsupported patch type {patch_type:?}"
        )));
    }
    let before = object.clone();
    json_patch::patch(object, &ops).map_err(|e| Failed::Patch(e.to_string()))?;
    Ok(*object != before)
}

impl Webhooks {
    /// Upstream's mutating dispatcher, for one pass.
    async fn mutate(&self, attrs: &mut Attributes, warnings: &Warnings) -> Result<()> {
        let hooks = self.webhooks().await?;
        let round = usize::from(attrs.reinvocation.is_reinvoke);
        if attrs.reinvocation.is_reinvoke {
            let state = &mut attrs.reinvocation.webhooks;
            // In-tree plugins changed the object since the webhooks last saw it.
            if state.last_output.as_ref() != attrs.object.as_ref() {
                state.require_reinvoking_previously_invoked();
            }
        }
        let result = self.mutate_hooks(&hooks, round, attrs, warnings).await;
        attrs.reinvocation.webhooks.last_output = attrs.object.clone();
        result
    }

    async fn mutate_hooks(
        &self,
        hooks: &[Hook],
        round: usize,
        attrs: &mut Attributes,
        warnings: &Warnings,
    ) -> Result<()> {
        for hook in hooks {
            if !self.applies(hook, attrs).await? {
                continue;
            }
            // A webhook is never called for the first time in the second pass.
            if attrs.reinvocation.is_reinvoke
                && !attrs.reinvocation.webhooks.reinvoke.contains(&hook.uid)
            {
                continue;
            }
            if let Some(err) = refuses_dry_run(&hook.spec, attrs) {
                return Err(err);
            }
            let answer = match self.call(hook, attrs).await {
                Err(why) => Err(Failed::Call(why)),
                Ok(response) => Self::take_answer(hook, attrs, warnings, &response)
                    .map_err(Failed::Refused)
                    .and_then(|()| apply_patch(hook.name(), &response, attrs.object.as_mut())),
            };
            let changed = matches!(answer, Ok(true));
            let annotation = MutationAnnotation {
                configuration: &hook.configuration,
                webhook: hook.name(),
                mutated: changed,
            };
            if let Ok(value) = serde_json::to_string(&annotation) {
                attrs.audit_annotations.add(
                    format!(
                        "{}round_{round}_index_{}",
                        self.kind.annotation_prefix(),
                        hook.index
                    ),
                    value,
                );
            }
            if changed {
                attrs
                    .reinvocation
                    .webhooks
                    .require_reinvoking_previously_invoked();
                attrs.reinvocation.should_reinvoke = true;
            }
            if hook.spec["reinvocationPolicy"].as_str() == Some("IfNeeded") {
                attrs
                    .reinvocation
                    .webhooks
                    .previously_invoked
                    .insert(hook.uid.clone());
            }
            match answer {
                Ok(_) => {}
                Err(Failed::Call(why)) => self.failure(hook, (round, hook.index), attrs, &why)?,
                Err(Failed::Refused(refusal)) => return Err(refusal),
                Err(Failed::Patch(why)) => return Err(ApiError::internal(why)),
            }
        }
        Ok(())
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
        self.mutate(attrs, warnings).await
    }

    async fn validate(&self, attrs: &Attributes, warnings: &Warnings) -> Result<()> {
        if self.kind != Kind::Validating || exempt(attrs) {
            return Ok(());
        }
        self.validate_all(attrs, warnings).await
    }
}

impl Webhooks {
    /// Upstream's validating dispatcher: every webhook is matched first (a match that cannot
    /// be decided fails the request before any call), then the matching ones are called
    /// concurrently and all of them are awaited; the first refusal to arrive is the answer.
    async fn validate_all(&self, attrs: &Attributes, warnings: &Warnings) -> Result<()> {
        let mut relevant = Vec::new();
        for hook in self.webhooks().await? {
            if self.applies(&hook, attrs).await? {
                relevant.push(hook);
            }
        }
        let mut calls: FuturesUnordered<_> = relevant
            .iter()
            .enumerate()
            .map(|(i, hook)| self.validate_one(hook, i, attrs, warnings))
            .collect();
        let mut first = None;
        while let Some(result) = calls.next().await {
            match (result, &first) {
                (Ok(()), _) => {}
                (Err(e), None) => first = Some(e),
                (Err(e), Some(_)) => {
                    tracing::warn!(error = %e.message(), "a later webhook refusal is dropped");
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// One validating webhook; `index` is its position among the matching ones (the index
    /// of upstream's failed-open annotation).
    async fn validate_one(
        &self,
        hook: &Hook,
        index: usize,
        attrs: &Attributes,
        warnings: &Warnings,
    ) -> Result<()> {
        if let Some(err) = refuses_dry_run(&hook.spec, attrs) {
            return Err(err);
        }
        match self.call(hook, attrs).await {
            Ok(response) => Self::take_answer(hook, attrs, warnings, &response),
            Err(why) => self.failure(hook, (0, index), attrs, &why),
        }
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

    use crate::attributes::Operation;
    use crate::chain::{Chain, Plugin};
    use crate::testing::FakeCluster;
    use test_server::{Server, patch};

    /// A configuration of `kind` named `name` with one webhook for pods.
    fn configuration(name: &str, client_config: Value, extra: Value) -> Value {
        let mut hook = json!({
            "name": format!("{name}.rkube.test"),
            "clientConfig": client_config,
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            hook[k] = v.clone();
        }
        json!({"metadata": {"name": name}, "webhooks": [hook]})
    }

    fn pod() -> Attributes {
        crate::testing::attrs(
            Operation::Create,
            "",
            "pods",
            "Pod",
            "ns",
            Some(
                json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}),
            ),
        )
    }

    /// `/first` records in an annotation whether `/second`'s label was there; `/second`
    /// adds a sidecar container and that label once.
    async fn two_webhooks() -> Server {
        Server::start(Arc::new(|path: &str, request: &Value| {
            let object = &request["object"];
            let labelled = object["metadata"]["labels"]["second"] == "yes";
            match path {
                "/first" => patch(json!([{"op": "add", "path": "/metadata/annotations", "value": {"first-saw-second": labelled.to_string()}}])),
                "/second" if !labelled => patch(json!([
                    {"op": "add", "path": "/metadata/labels", "value": {"second": "yes"}},
                    {"op": "add", "path": "/spec/containers/-", "value": {"name": "sidecar", "image": "proxy"}}
                ])),
                _ => patch(Value::Null),
            }
        }))
        .await
    }

    #[tokio::test]
    async fn if_needed_webhooks_are_called_again_after_a_later_one_changes_the_object() {
        // (first's policy, second's policy, calls of each, what first saw last). When the
        // first changes the object again in the second pass, an IfNeeded second runs again
        // too, as upstream.
        for (first, second, calls, saw) in [
            ("IfNeeded", "Never", (2, 1), "true"),
            ("Never", "IfNeeded", (1, 1), "false"),
            ("IfNeeded", "IfNeeded", (2, 2), "true"),
        ] {
            let server = two_webhooks().await;
            let cluster = FakeCluster::default();
            cluster.put(
                (GROUP, "mutatingwebhookconfigurations"),
                configuration(
                    "a",
                    server.url("/first"),
                    json!({"reinvocationPolicy": first}),
                ),
            );
            cluster.put(
                (GROUP, "mutatingwebhookconfigurations"),
                configuration(
                    "b",
                    server.url("/second"),
                    json!({"reinvocationPolicy": second}),
                ),
            );
            let cluster = Arc::new(cluster);
            let chain = Chain::new(vec![Arc::new(Webhooks::new(cluster, Kind::Mutating))]);
            let mut a = pod();
            chain.admit(&mut a, &Warnings::default()).await.unwrap();
            let object = a.object.as_ref().unwrap();
            assert_eq!(
                object["metadata"]["annotations"]["first-saw-second"], saw,
                "{first}"
            );
            assert_eq!(object["spec"]["containers"].as_array().unwrap().len(), 2);
            assert_eq!(
                (server.calls("/first"), server.calls("/second")),
                calls,
                "{first} {second}"
            );
            let annotations: BTreeMap<String, String> =
                a.audit_annotations.snapshot().into_iter().collect();
            assert_eq!(
                annotations["mutation.webhook.admission.k8s.io/round_0_index_1"],
                r#"{"configuration":"b","webhook":"b.rkube.test","mutated":true}"#
            );
            assert_eq!(
                annotations.contains_key("mutation.webhook.admission.k8s.io/round_1_index_0"),
                first == "IfNeeded"
            );
        }
    }

    #[tokio::test]
    async fn the_second_pass_runs_the_built_in_plugins_again() {
        // A sidecar added by a webhook gets the service account token mount as upstream's
        // reinvocation of ServiceAccount gives it.
        let server = two_webhooks().await;
        let cluster = FakeCluster::default();
        cluster.put(
            (GROUP, "mutatingwebhookconfigurations"),
            configuration("b", server.url("/second"), json!({})),
        );
        let cluster: Arc<FakeCluster> = Arc::new(cluster);
        let chain = Chain::new(vec![
            Arc::new(crate::plugins::service_account::ServiceAccount::new(
                cluster.clone(),
            )),
            Arc::new(Webhooks::new(cluster, Kind::Mutating)),
        ]);
        let mut a = pod();
        chain.admit(&mut a, &Warnings::default()).await.unwrap();
        let containers = a.object.as_ref().unwrap()["spec"]["containers"].clone();
        for c in containers.as_array().unwrap() {
            assert_eq!(
                c["volumeMounts"][0]["mountPath"], "/var/run/secrets/kubernetes.io/serviceaccount",
                "{containers}"
            );
        }
        assert_eq!(server.calls("/second"), 1);
    }

    #[tokio::test]
    async fn services_are_reached_at_their_endpoints() {
        let server = Server::start(Arc::new(
            |_: &str, _: &Value| json!({"allowed": true, "auditAnnotations": {"seen": "yes"}}),
        ))
        .await;
        let service_ref = json!({"service": {"namespace": "ns", "name": "hook", "port": 443, "path": "/check"}, "caBundle": server.ca_bundle});
        let cluster = FakeCluster::default();
        cluster.put(
            (GROUP, "validatingwebhookconfigurations"),
            configuration("v", service_ref.clone(), json!({"failurePolicy": "Fail"})),
        );
        cluster.put(
            ("", "services"),
            json!({"metadata": {"name": "hook", "namespace": "ns"}, "spec": {"type": "ClusterIP", "clusterIP": "10.43.0.9",
                "ports": [{"name": "https", "port": 443, "targetPort": 8443}]}}),
        );
        let cluster = Arc::new(cluster);
        let plugin = Webhooks::new(cluster.clone(), Kind::Validating);
        // No endpoints yet: upstream's error, a 500 as failurePolicy Fail says.
        let err = plugin
            .validate(&pod(), &Warnings::default())
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (
                500,
                r#"Internal error occurred: failed calling webhook "v.rkube.test": failed to call webhook: Post "https://hook.ns.svc:443/check": no endpoints available for service "hook""#
            )
        );
        // A ready endpoint of its EndpointSlice, on the port named as the Service's.
        let port = i64::from(server.address.port());
        cluster.put(
            ("discovery.k8s.io", "endpointslices"),
            json!({"metadata": {"name": "hook-x1", "namespace": "ns", "labels": {"kubernetes.io/service-name": "hook"}},
                "addressType": "IPv4",
                "ports": [{"name": "metrics", "port": 1}, {"name": "https", "port": port}],
                "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": false}},
                              {"addresses": ["127.0.0.1"], "conditions": {"ready": true}}]}),
        );
        let a = pod();
        plugin.validate(&a, &Warnings::default()).await.unwrap();
        assert_eq!(server.calls("/check"), 1);
        assert_eq!(
            a.audit_annotations.snapshot(),
            [("v.rkube.test/seen".to_owned(), "yes".to_owned())]
        );
    }

    /// A validating plugin over configurations `(name, clientConfig, extra)`.
    fn validating(configs: Vec<(&str, Value, Value)>) -> Webhooks {
        let cluster = FakeCluster::default();
        for (name, client_config, extra) in configs {
            cluster.put(
                (GROUP, "validatingwebhookconfigurations"),
                configuration(name, client_config, extra),
            );
        }
        Webhooks::new(Arc::new(cluster), Kind::Validating)
    }

    #[tokio::test]
    async fn validating_webhooks_are_called_at_once() {
        let server = Server::start_slow(
            Arc::new(|path: &str, _: &Value| {
                json!({"allowed": true, "warnings": [format!("from {path}")], "auditAnnotations": {"path": path}})
            }),
            Duration::from_millis(300),
        )
        .await;
        let plugin = validating(vec![
            ("a", server.url("/a"), json!({})),
            ("b", server.url("/b"), json!({})),
        ]);
        let (a, warnings) = (pod(), Warnings::default());
        plugin.validate(&a, &warnings).await.unwrap();
        let (first, second) = (server.timings("/a"), server.timings("/b"));
        assert_eq!((first.len(), second.len()), (1, 1));
        // Each call arrived while the other was still waiting for its answer.
        assert!(
            second[0].arrived < first[0].answered,
            "{first:?} {second:?}"
        );
        assert!(
            first[0].arrived < second[0].answered,
            "{first:?} {second:?}"
        );
        let mut warnings = warnings.take();
        warnings.sort();
        assert_eq!(warnings, ["from /a", "from /b"]);
        let annotations: BTreeMap<String, String> =
            a.audit_annotations.snapshot().into_iter().collect();
        assert_eq!(annotations["a.rkube.test/path"], "/a");
        assert_eq!(annotations["b.rkube.test/path"], "/b");
    }

    #[tokio::test]
    async fn the_first_refusal_to_arrive_is_the_answer() {
        let refuse = |path: &str, _: &Value| json!({"allowed": false, "status": {"code": 403, "message": format!("no from {path}")}});
        let slow = Server::start_slow(Arc::new(refuse), Duration::from_millis(300)).await;
        let fast = Server::start(Arc::new(refuse)).await;
        // "a" comes first in upstream's order, but "b" answers first.
        let plugin = validating(vec![
            ("a", slow.url("/slow"), json!({})),
            ("b", fast.url("/fast"), json!({})),
        ]);
        let err = plugin
            .validate(&pod(), &Warnings::default())
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (
                403,
                r#"admission webhook "b.rkube.test" denied the request: no from /fast"#
            )
        );
        // The slower one is still awaited, as upstream waits for every call.
        assert_eq!(slow.calls("/slow"), 1);
    }

    #[tokio::test]
    async fn validating_failed_open_annotations_count_only_matching_webhooks() {
        let services = json!({"rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["services"]}]});
        let nowhere = json!({"service": {"namespace": "ns", "name": "missing"}});
        let plugin = validating(vec![
            ("a", nowhere.clone(), services),
            ("b", nowhere, json!({"failurePolicy": "Ignore"})),
        ]);
        let a = pod();
        plugin.validate(&a, &Warnings::default()).await.unwrap();
        assert_eq!(
            a.audit_annotations.snapshot(),
            [(
                "failed-open.validating.webhook.admission.k8s.io/round_0_index_0".to_owned(),
                "b.rkube.test".to_owned()
            )]
        );
    }

    #[tokio::test]
    async fn ignored_failures_leave_a_failed_open_annotation() {
        let cluster = FakeCluster::default();
        let nowhere = json!({"service": {"namespace": "ns", "name": "missing"}});
        cluster.put(
            (GROUP, "mutatingwebhookconfigurations"),
            configuration("m", nowhere, json!({"failurePolicy": "Ignore"})),
        );
        let plugin = Webhooks::new(Arc::new(cluster), Kind::Mutating);
        let mut a = pod();
        plugin.admit(&mut a, &Warnings::default()).await.unwrap();
        let annotations: BTreeMap<String, String> =
            a.audit_annotations.snapshot().into_iter().collect();
        assert_eq!(
            annotations["failed-open.mutation.webhook.admission.k8s.io/round_0_index_0"],
            "m.rkube.test"
        );
    }
}
