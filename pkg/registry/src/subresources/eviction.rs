//! [`EvictionRest`]: `POST pods/<name>/eviction`, a delete that honours the
//! PodDisruptionBudget covering the pod (upstream's `EvictionREST`).
//!
//! Terminal, pending and already deleting pods are deleted at once. Otherwise the one budget
//! whose selector matches the pod must allow a disruption: it is decremented through its
//! status (the pod recorded in `disruptedPods`, which the disruption controller reads), then
//! the pod gets the `DisruptionTarget` condition and is deleted with the eviction's
//! `deleteOptions`.

use std::sync::Arc;

use async_trait::async_trait;
use rkube_api::k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use rkube_api::meta;
use rkube_api::resources::{GroupResource, Resource};
use rkube_api::selector::LabelSelector;
use rkube_api::status::{ApiError, Reason, StatusCause, StatusDetails};
use rkube_storage::Object;
use serde_json::{Value, json};

use super::{set_pod_condition, status_object};
use crate::generic::{GenericRest, Mode, now};
use crate::rest::{Answer, CreateOptions, DeleteOptions, ListOptions, Rest, Result, Scope};

/// How often a conflicting delete is retried (upstream's `EvictionsRetry.Steps`).
const RETRIES: usize = 20;
/// Beyond this many evictions not yet seen by the disruption controller, more are refused
/// (upstream's `MaxDisruptedPodSize`).
const MAX_DISRUPTED_PODS: usize = 2000;
/// The cause type of a refusal by a budget (`policyv1.DisruptionBudgetCause`).
const DISRUPTION_BUDGET_CAUSE: &str = "DisruptionBudget";
/// Upstream's message of every 429 refusal.
const VIOLATES_BUDGET: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
/// What a pod covered by several budgets gets (answered as a result Status with code 500).
const SEVERAL_BUDGETS: &str = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";
/// How upstream names budgets in its 403s (`policy.Resource("poddisruptionbudget")`).
const BUDGET: GroupResource<'static> = GroupResource::new("policy", "poddisruptionbudget");
/// How upstream names pods in the conflicts of the condition write.
const POD_KIND: GroupResource<'static> = GroupResource::new("", "Pod");

/// `pods/eviction`. See the [module docs](self).
#[derive(Debug)]
pub struct EvictionRest {
    pods: Arc<GenericRest>,
    budgets: Arc<GenericRest>,
}

impl EvictionRest {
    /// Evicts pods of `pods`, checking the PodDisruptionBudgets of `budgets`.
    pub fn new(pods: Arc<GenericRest>, budgets: Arc<GenericRest>) -> Self {
        EvictionRest { pods, budgets }
    }

    /// The budgets in the pod's namespace whose selector matches it (a missing selector
    /// matches nothing, an empty one everything; an invalid one nothing).
    async fn matching_budgets(&self, scope: &Scope, pod: &Value) -> Result<Vec<Object>> {
        let listed = self.budgets.list(scope, &ListOptions::default()).await?;
        let labels = meta::labels(pod);
        Ok(listed
            .items
            .into_iter()
            .filter(|budget| {
                let selector = budget
                    .value()
                    .pointer("/spec/selector")
                    .filter(|s| !s.is_null())
                    .map(|s| serde_json::from_value::<metav1::LabelSelector>(s.clone()));
                let selector = match selector {
                    None => LabelSelector::nothing(),
                    Some(Ok(s)) => match LabelSelector::from_label_selector(Some(&s)) {
                        Ok(s) => s,
                        Err(_) => return false,
                    },
                    Some(Err(_)) => return false,
                };
                selector.matches(&labels)
            })
            .collect())
    }

    /// Upstream's `checkAndDecrement`, as a status write of the budget (re-run on conflicts).
    async fn decrement(&self, scope: &Scope, budget: &str, pod: &str, dry_run: bool) -> Result<()> {
        self.budgets
            .write(
                scope,
                budget,
                dry_run,
                false,
                Mode::Status,
                &mut |current| {
                    let current = current.ok_or_else(|| {
                        ApiError::not_found(self.budgets.served().group_resource(), budget)
                    })?;
                    decremented(current.value(), pod, dry_run)
                },
            )
            .await
            .map(drop)
    }

    /// Upstream's `addConditionAndDeletePod`: the `DisruptionTarget` condition (not on dry
    /// runs), then the delete with `options`.
    async fn delete_pod(
        &self,
        scope: &Scope,
        name: &str,
        mut options: DeleteOptions,
    ) -> Result<()> {
        if !options.dry_run {
            let (written, _) = self
                .pods
                .write(scope, name, false, false, Mode::Status, &mut |current| {
                    let current = current.ok_or_else(|| {
                        ApiError::not_found(self.pods.served().group_resource(), name)
                    })?;
                    check_preconditions(current, &options)?;
                    let mut pod = current.value().clone();
                    set_pod_condition(
                        &mut pod,
                        json!({
                            "type": "DisruptionTarget",
                            "status": "True",
                            "reason": "EvictionByEvictionAPI",
                            "message": "Eviction API: evicting",
                        }),
                    );
                    Ok(pod)
                })
                .await?;
            if options.precondition_resource_version.is_some() {
                // Our own write moved the resourceVersion the client (or we) pinned.
                options.precondition_resource_version = Some(written.revision().to_string());
            }
        }
        self.pods.delete(scope, name, &options).await.map(drop)
    }
}

/// The eviction's `deleteOptions` with the request's dry run folded in (upstream's
/// `propagateDryRun`).
fn delete_options(eviction: &Value, dry_run: bool) -> Result<DeleteOptions> {
    let Some(options) = eviction.get("deleteOptions").filter(|o| !o.is_null()) else {
        return Ok(DeleteOptions {
            dry_run,
            ..DeleteOptions::default()
        });
    };
    let text = |pointer: &str| {
        options
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let body_dry_run: Vec<&str> = options
        .get("dryRun")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(bad) = body_dry_run.iter().find(|v| **v != "All") {
        return Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: {bad:?}: supported values: \"All\""
        )));
    }
    let propagation_policy = text("/propagationPolicy").or_else(|| {
        match options.get("orphanDependents").and_then(Value::as_bool) {
            Some(true) => Some("Orphan".to_string()),
            Some(false) => Some("Background".to_string()),
            None => None,
        }
    });
    Ok(DeleteOptions {
        dry_run: dry_run || !body_dry_run.is_empty(),
        grace_period_seconds: options.get("gracePeriodSeconds").and_then(Value::as_i64),
        precondition_uid: text("/preconditions/uid"),
        precondition_resource_version: text("/preconditions/resourceVersion"),
        propagation_policy,
        // The eviction itself was admitted; deleting the pod is its consequence.
        admission: Default::default(),
    })
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn deleting(pod: &Value) -> bool {
    meta::field(pod, "deletionTimestamp").is_some()
}

/// Pods an eviction deletes without asking a budget (upstream's `canIgnorePDB`).
fn can_ignore_budget(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || deleting(pod)
}

/// Whether the delete of a budget-free pod must pin its resourceVersion, so that it does not
/// race a pod turning ready (upstream's `shouldEnforceResourceVersion`).
fn should_pin_version(pod: &Value) -> bool {
    !(matches!(phase(pod), "Succeeded" | "Failed") || deleting(pod))
}

/// `podutil.IsPodReady`.
fn ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.get("type") == Some(&json!("Ready")) && c.get("status") == Some(&json!("True"))
            })
        })
}

fn status_i64(budget: &Value, field: &str) -> i64 {
    budget
        .get("status")
        .and_then(|s| s.get(field))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The 429 of a budget, with upstream's `DisruptionBudget` cause.
fn refused(cause: String, retry_after_seconds: i32) -> ApiError {
    ApiError::new(
        429,
        Reason::TooManyRequests,
        VIOLATES_BUDGET,
        Some(StatusDetails {
            causes: vec![StatusCause {
                cause_type: DISRUPTION_BUDGET_CAUSE.into(),
                message: cause,
                field: String::new(),
            }],
            retry_after_seconds,
            ..StatusDetails::default()
        }),
    )
}

/// The budget has not caught up with its spec, or the delete raced a pod turning ready
/// (upstream's `createTooManyRequestsError`).
fn still_processing(budget: &str) -> ApiError {
    refused(
        format!("The disruption budget {budget} is still being processed by the server."),
        10,
    )
}

/// The budget with one disruption taken for `pod`, or why none is left.
fn decremented(budget: &Value, pod: &str, dry_run: bool) -> Result<Value> {
    let name = meta::name(budget).unwrap_or_default();
    let generation = budget
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if status_i64(budget, "observedGeneration") < generation {
        return Err(still_processing(name));
    }
    let allowed = status_i64(budget, "disruptionsAllowed");
    if allowed < 0 {
        return Err(ApiError::forbidden(
            BUDGET,
            name,
            "pdb disruptions allowed is negative",
        ));
    }
    let disrupted = budget
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(ApiError::forbidden(
            BUDGET,
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(refused(
            format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                status_i64(budget, "desiredHealthy"),
                status_i64(budget, "currentHealthy")
            ),
            0,
        ));
    }
    let mut budget = budget.clone();
    let status = &mut budget["status"];
    status["disruptionsAllowed"] = json!(allowed - 1);
    if allowed == 1 {
        set_allowed_condition(status);
    }
    if !dry_run {
        if !status["disruptedPods"].is_object() {
            status["disruptedPods"] = json!({});
        }
        status["disruptedPods"][pod] = Value::String(now(0));
    }
    Ok(budget)
}

/// `pdbhelper.UpdateDisruptionAllowedCondition` once no disruption is left:
/// `DisruptionAllowed` False with reason `InsufficientPods`.
fn set_allowed_condition(status: &mut Value) {
    let observed = status
        .get("observedGeneration")
        .cloned()
        .unwrap_or(json!(0));
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let Some(conditions) = status["conditions"].as_array_mut() else {
        return;
    };
    let mut condition = json!({
        "type": "DisruptionAllowed",
        "status": "False",
        "reason": "InsufficientPods",
        "message": "",
        "observedGeneration": observed,
        "lastTransitionTime": now(0),
    });
    match conditions
        .iter_mut()
        .find(|c| c.get("type") == Some(&json!("DisruptionAllowed")))
    {
        Some(old) => {
            if old.get("status") == condition.get("status")
                && let Some(t) = old.get("lastTransitionTime")
            {
                condition["lastTransitionTime"] = t.clone();
            }
            *old = condition;
        }
        None => conditions.push(condition),
    }
}

/// The delete options' preconditions against the latest pod, worded as upstream's condition
/// write words them.
fn check_preconditions(current: &Object, options: &DeleteOptions) -> Result<()> {
    let pod = current.value();
    let name = meta::name(pod).unwrap_or_default();
    if let Some(uid) = options
        .precondition_uid
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        let actual = meta::uid(pod).unwrap_or_default();
        if uid != actual {
            return Err(ApiError::conflict(
                POD_KIND,
                name,
                format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({actual}). The object might have been deleted and then recreated"
                ),
            ));
        }
    }
    if let Some(rv) = options
        .precondition_resource_version
        .as_deref()
        .filter(|r| !r.is_empty())
    {
        let actual = current.revision().to_string();
        if rv != actual {
            return Err(ApiError::conflict(
                POD_KIND,
                name,
                format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({actual}). The object might have been modified"
                ),
            ));
        }
    }
    Ok(())
}

fn is_conflict(err: &ApiError) -> bool {
    err.code() == 409 && err.reason() == Reason::Conflict
}

#[async_trait]
impl Rest for EvictionRest {
    fn resource(&self) -> &'static Resource {
        self.pods.served()
    }

    async fn create(
        &self,
        scope: &Scope,
        object: Value,
        options: &CreateOptions,
    ) -> Result<Answer<Object>> {
        // NodeRestriction: a node evicts only its own pods.
        let object = options.admission.admit_request(object).await?;
        let name = meta::name(&object).unwrap_or_default().to_string();
        let original = delete_options(&object, options.dry_run)?;
        let pinned_by_client = original.precondition_resource_version.is_some();
        let key = self.pods.key(scope, &name)?;
        let success = || status_object(&key, "Success", None, 201).map(Answer::new);

        // Pods no budget protects go at once; conflicts are retried unless the client pinned
        // a resourceVersion.
        let mut attempt = 0;
        let pod = loop {
            attempt += 1;
            let pod = self.pods.current(scope, &name).await?;
            if !can_ignore_budget(pod.value()) {
                break pod;
            }
            let mut delete = original.clone();
            if should_pin_version(pod.value()) && !pinned_by_client {
                delete.precondition_resource_version = Some(pod.revision().to_string());
            }
            match self.delete_pod(scope, &name, delete).await {
                Ok(()) => return success(),
                Err(e) if is_conflict(&e) && !pinned_by_client && attempt < RETRIES => {}
                Err(e) => return Err(e),
            }
        };

        let budgets = self.matching_budgets(scope, pod.value()).await?;
        if budgets.len() > 1 {
            // Upstream returns this Status as the result, not as an error.
            return status_object(&key, "Failure", Some(SEVERAL_BUDGETS), 500).map(Answer::new);
        }
        let mut pin_pod = false;
        let mut budget_name = String::new();
        if let Some(budget) = budgets.first() {
            let value = budget.value();
            budget_name = meta::name(value).unwrap_or_default().to_string();
            let always_allow =
                value.pointer("/spec/unhealthyPodEvictionPolicy") == Some(&json!("AlwaysAllow"));
            let desired = status_i64(value, "desiredHealthy");
            let healthy_enough = status_i64(value, "currentHealthy") >= desired && desired > 0;
            if !ready(pod.value()) && (always_allow || healthy_enough) {
                // An unready pod does not count towards the budget: delete it without taking a
                // disruption, as long as it does not turn ready meanwhile.
                pin_pod = true;
            } else {
                self.decrement(scope, &budget_name, &name, original.dry_run)
                    .await?;
            }
        }
        let mut delete = original.clone();
        if pin_pod {
            delete.precondition_resource_version = Some(pod.revision().to_string());
        }
        match self.delete_pod(scope, &name, delete).await {
            Ok(()) => success(),
            Err(e) if is_conflict(&e) && pin_pod && !pinned_by_client => {
                Err(still_processing(&budget_name))
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(status: Value) -> Value {
        json!({"metadata": {"name": "b", "generation": 2}, "status": status})
    }

    #[test]
    fn a_budget_with_room_is_decremented_and_records_the_pod() {
        let b = budget(json!({"observedGeneration": 2, "disruptionsAllowed": 1}));
        let after = decremented(&b, "web-1", false).unwrap();
        assert_eq!(after["status"]["disruptionsAllowed"], 0);
        assert!(after["status"]["disruptedPods"]["web-1"].is_string());
        let condition = &after["status"]["conditions"][0];
        assert_eq!(condition["type"], "DisruptionAllowed");
        assert_eq!(condition["status"], "False");
        assert_eq!(condition["reason"], "InsufficientPods");

        let dry = decremented(&b, "web-1", true).unwrap();
        assert!(dry["status"].get("disruptedPods").is_none());
    }

    #[test]
    fn budgets_refuse_as_upstream() {
        let full = budget(json!({"observedGeneration": 2, "disruptionsAllowed": 0,
            "desiredHealthy": 2, "currentHealthy": 2}));
        let err = decremented(&full, "p", false).unwrap_err();
        assert_eq!(err.code(), 429);
        assert_eq!(err.message(), VIOLATES_BUDGET);
        let details = err.details().unwrap();
        assert_eq!(details.causes[0].cause_type, "DisruptionBudget");
        assert_eq!(
            details.causes[0].message,
            "The disruption budget b needs 2 healthy pods and has 2 currently"
        );

        let stale = budget(json!({"observedGeneration": 1, "disruptionsAllowed": 5}));
        let err = decremented(&stale, "p", false).unwrap_err();
        assert_eq!(err.code(), 429);
        assert_eq!(err.details().unwrap().retry_after_seconds, 10);

        let negative = budget(json!({"observedGeneration": 2, "disruptionsAllowed": -1}));
        let err = decremented(&negative, "p", false).unwrap_err();
        assert_eq!(err.code(), 403);
        assert_eq!(
            err.message(),
            r#"poddisruptionbudget.policy "b" is forbidden: pdb disruptions allowed is negative"#
        );
    }

    #[test]
    fn eviction_delete_options() {
        let e = json!({"deleteOptions": {"gracePeriodSeconds": 5,
            "preconditions": {"uid": "u", "resourceVersion": "7"}, "dryRun": ["All"]}});
        let o = delete_options(&e, false).unwrap();
        assert!(o.dry_run);
        assert_eq!(o.grace_period_seconds, Some(5));
        assert_eq!(o.precondition_uid.as_deref(), Some("u"));
        assert_eq!(o.precondition_resource_version.as_deref(), Some("7"));
        assert!(delete_options(&json!({}), true).unwrap().dry_run);
        assert_eq!(
            delete_options(&json!({"deleteOptions": {"dryRun": ["x"]}}), false)
                .unwrap_err()
                .code(),
            400
        );
    }

    #[test]
    fn which_pods_skip_the_budget() {
        let pod = |phase: &str| json!({"metadata": {}, "status": {"phase": phase}});
        assert!(can_ignore_budget(&pod("Pending")));
        assert!(can_ignore_budget(&pod("Succeeded")));
        assert!(!can_ignore_budget(&pod("Running")));
        assert!(should_pin_version(&pod("Pending")));
        assert!(!should_pin_version(&pod("Failed")));
        let deleting =
            json!({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}});
        assert!(can_ignore_budget(&deleting));
        assert!(!should_pin_version(&deleting));
    }
}
