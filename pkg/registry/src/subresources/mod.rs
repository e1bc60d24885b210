//! Subresources that do more than write a part of their object, as upstream's pod and
//! serviceaccount storage serves them:
//!
//! - [`binding`]: `pods/binding` and the `bindings` collection (the scheduler's write of
//!   `spec.nodeName`).
//! - [`eviction`]: `pods/eviction`, a delete that honours PodDisruptionBudgets.
//! - [`pod_parts`]: what `pods/ephemeralcontainers` and `pods/resize` may change; the writes
//!   themselves go through the generic part path ([`crate::StatusRest`]).
//! - [`token`]: `serviceaccounts/token`, a TokenRequest answered with a signed JWT, and the
//!   [`token::TokenSigner`] the server hands in.
//! - [`connect`]: `pods/log`, `exec`, `attach`, `portforward`, `proxy`, `nodes/proxy` and
//!   `services/proxy`: upstream's checks before a request is forwarded to a node.
//!
//! Data flows: API server handler -> one of these -> the [`crate::GenericRest`] of the objects
//! involved (pods, PodDisruptionBudgets, service accounts, nodes) -> `Store`.

// `ApiError` is the error of the `Rest` contract, as in `generic`.
#![allow(clippy::result_large_err)]

pub mod binding;
pub mod connect;
pub mod eviction;
pub(crate) mod pod_parts;
pub mod token;

use rkube_api::status::ApiError;
use rkube_storage::Object;
use serde_json::{Value, json};

use crate::generic::now;

/// The `metav1.Status` a subresource create answers with (`Success`, or the few failures
/// upstream returns as a result rather than an error), as an object the API server encodes.
fn status_object(
    key: &str,
    status: &str,
    message: Option<&str>,
    code: u16,
) -> Result<Object, ApiError> {
    let mut value = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": status,
        "code": code,
    });
    if let Some(message) = message {
        value["message"] = message.into();
    }
    Object::new(key, value, 0).map_err(ApiError::internal)
}

/// Upstream's `UpdatePodCondition`: sets the condition of `condition["type"]` in a pod's
/// `status.conditions`, replacing the old one whole but keeping its `lastTransitionTime` when
/// the status did not change.
fn set_pod_condition(pod: &mut Value, mut condition: Value) {
    let now = Value::String(now(0));
    let Some(status) = pod
        .as_object_mut()
        .map(|p| p.entry("status").or_insert_with(|| json!({})))
    else {
        return;
    };
    if !status.is_object() {
        *status = json!({});
    }
    let conditions = status
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(conditions) = conditions else {
        return;
    };
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let Some(list) = conditions.as_array_mut() else {
        return;
    };
    condition["lastProbeTime"] = Value::Null;
    condition["lastTransitionTime"] = now;
    match list
        .iter_mut()
        .find(|c| c.get("type") == condition.get("type"))
    {
        Some(old) => {
            if old.get("status") == condition.get("status")
                && let Some(t) = old.get("lastTransitionTime")
            {
                condition["lastTransitionTime"] = t.clone();
            }
            *old = condition;
        }
        None => list.push(condition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_is_replaced_whole_and_keeps_its_transition_time_when_unchanged() {
        let mut pod = json!({"status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
             "lastTransitionTime": "2020-01-01T00:00:00Z"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
        ]}});
        set_pod_condition(&mut pod, json!({"type": "PodScheduled", "status": "True"}));
        set_pod_condition(&mut pod, json!({"type": "Ready", "status": "True"}));
        let conditions = pod["status"]["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0]["status"], "True");
        assert!(conditions[0].get("reason").is_none(), "{conditions:?}");
        assert_ne!(conditions[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(conditions[1]["lastTransitionTime"], "2020-01-01T00:00:00Z");

        let mut bare = json!({"metadata": {}});
        set_pod_condition(
            &mut bare,
            json!({"type": "DisruptionTarget", "status": "True"}),
        );
        assert_eq!(bare["status"]["conditions"][0]["type"], "DisruptionTarget");
    }
}
