//! The ClusterRole aggregation controller (upstream's `pkg/controller/clusterroleaggregation`):
//! a ClusterRole with an `aggregationRule` gets as its rules the rules of every other
//! ClusterRole its `clusterRoleSelectors` select, in name order, without duplicates.
//!
//! Every ClusterRole change can change any aggregate, so the controller keeps all ClusterRoles
//! in memory (one watch) and, after each change, recomputes every aggregate; only aggregates
//! whose rules differ are written (a merge patch of `rules`). Chains (`view` into `edit` into
//! `admin`) settle over successive changes, as upstream's.

use std::collections::BTreeMap;
use std::future::Future;

use futures::StreamExt as _;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};

/// Whether `selector` selects an object with `labels` (`matchLabels` and
/// `matchExpressions`, all of them; an empty selector selects everything).
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let exact = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    exact && expressions
}

/// The rules `role` aggregates from `all` (by name); `None` when it is not an aggregate.
pub fn aggregated_rules(
    role: &ClusterRole,
    all: &BTreeMap<String, ClusterRole>,
) -> Option<Vec<PolicyRule>> {
    let selectors = role
        .aggregation_rule
        .as_ref()?
        .cluster_role_selectors
        .as_ref()?;
    let mut rules: Vec<PolicyRule> = Vec::new();
    for selector in selectors {
        for (name, other) in all {
            if *name == role.name_any() || !selects(selector, other.labels()) {
                continue;
            }
            for rule in other.rules.iter().flatten() {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    Some(rules)
}

/// Runs the controller over `client` until `shutdown` completes.
pub async fn run(client: Client, shutdown: impl Future<Output = ()>) {
    let api: Api<ClusterRole> = Api::all(client);
    let mut roles: BTreeMap<String, ClusterRole> = BTreeMap::new();
    let mut listing: BTreeMap<String, ClusterRole> = BTreeMap::new();
    let mut events = Box::pin(watcher(api.clone(), watcher::Config::default()).default_backoff());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let event = tokio::select! {
            () = &mut shutdown => return,
            event = events.next() => event,
        };
        match event {
            None => return,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "clusterrole aggregation controller: watch");
                continue;
            }
            Some(Ok(watcher::Event::Init)) => listing.clear(),
            Some(Ok(watcher::Event::InitApply(role))) => {
                listing.insert(role.name_any(), role);
                continue;
            }
            Some(Ok(watcher::Event::InitDone)) => roles = std::mem::take(&mut listing),
            Some(Ok(watcher::Event::Apply(role))) => {
                roles.insert(role.name_any(), role);
            }
            Some(Ok(watcher::Event::Delete(role))) => {
                roles.remove(&role.name_any());
            }
        }
        sync(&api, &roles).await;
    }
}

/// Writes every aggregate whose rules are not what its selectors select.
async fn sync(api: &Api<ClusterRole>, roles: &BTreeMap<String, ClusterRole>) {
    for (name, role) in roles {
        let Some(rules) = aggregated_rules(role, roles) else {
            continue;
        };
        if role.rules.as_deref().unwrap_or_default() == rules.as_slice() {
            continue;
        }
        let patch = serde_json::json!({"rules": rules});
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => tracing::debug!(%name, "aggregated ClusterRole rules"),
            // The next change of any ClusterRole retries it.
            Err(e) => tracing::warn!(%name, error = %e, "aggregating ClusterRole rules"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn role(value: serde_json::Value) -> ClusterRole {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn aggregates_collect_the_selected_roles_rules_once_in_name_order() {
        let rule = |verb: &str| json!({"verbs": [verb], "apiGroups": [""], "resources": ["pods"]});
        let all: BTreeMap<String, ClusterRole> = [
            role(json!({"metadata": {"name": "view"}, "aggregationRule": {"clusterRoleSelectors": [
                {"matchLabels": {"agg": "true"}}]}})),
            role(json!({"metadata": {"name": "b", "labels": {"agg": "true"}}, "rules": [rule("list"), rule("get")]})),
            role(json!({"metadata": {"name": "a", "labels": {"agg": "true"}}, "rules": [rule("get")]})),
            role(json!({"metadata": {"name": "c", "labels": {"agg": "false"}}, "rules": [rule("delete")]})),
        ]
        .into_iter()
        .map(|r| (r.name_any(), r))
        .collect();
        let rules = aggregated_rules(&all["view"], &all).unwrap();
        let verbs: Vec<&str> = rules.iter().map(|r| r.verbs[0].as_str()).collect();
        assert_eq!(verbs, ["get", "list"]);
        assert_eq!(aggregated_rules(&all["a"], &all), None);
    }

    #[test]
    fn selectors_match_as_upstream() {
        let selector: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"a": "1"},
            "matchExpressions": [{"key": "b", "operator": "In", "values": ["x", "y"]},
                                 {"key": "c", "operator": "DoesNotExist"}]}))
        .unwrap();
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        assert!(selects(&selector, &labels(&[("a", "1"), ("b", "y")])));
        assert!(!selects(&selector, &labels(&[("a", "1"), ("b", "z")])));
        assert!(!selects(
            &selector,
            &labels(&[("a", "1"), ("b", "x"), ("c", "")])
        ));
        assert!(selects(&LabelSelector::default(), &labels(&[])));
    }
}
