//! The five conditions the namespace controller keeps on a terminating namespace, as upstream's
//! `status_condition_utils.go`: every pass writes all five, `True` with the failure's reason and
//! message, else `False` with the "all is well" reason and message, so a condition that stopped
//! failing says so. Only a change of status moves `lastTransitionTime`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NamespaceCondition, NamespaceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// One condition type: its name and its "all is well" reason and message.
struct ConditionType {
    name: &'static str,
    ok_reason: &'static str,
    ok_message: &'static str,
}

/// The condition types, in the order upstream appends them.
const TYPES: [ConditionType; 5] = [
    ConditionType {
        name: "NamespaceDeletionDiscoveryFailure",
        ok_reason: "ResourcesDiscovered",
        ok_message: "All resources successfully discovered",
    },
    ConditionType {
        name: "NamespaceDeletionGroupVersionParsingFailure",
        ok_reason: "ParsedGroupVersions",
        ok_message: "All legacy kube types successfully parsed",
    },
    ConditionType {
        name: "NamespaceDeletionContentFailure",
        ok_reason: "ContentDeleted",
        ok_message: "All content successfully deleted, may be waiting on finalization",
    },
    ConditionType {
        name: "NamespaceContentRemaining",
        ok_reason: "ContentRemoved",
        ok_message: "All content successfully removed",
    },
    ConditionType {
        name: "NamespaceFinalizersRemaining",
        ok_reason: "ContentHasNoFinalizers",
        ok_message: "All content-preserving finalizers finished",
    },
];

/// What one deletion pass over a namespace found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Findings {
    /// Discovery failed, wholly or for some group versions: the message.
    pub discovery_failure: Option<String>,
    /// Some group versions did not parse: the message.
    pub group_version_failure: Option<String>,
    /// What went wrong deleting content, one message per resource.
    pub content_failures: Vec<String>,
    /// Instances left, keyed by `resource.group` (`pods.` for the core group).
    pub remaining: BTreeMap<String, usize>,
    /// Instances left, keyed by the finalizer holding them.
    pub finalizers: BTreeMap<String, usize>,
}

impl Findings {
    /// The failure reason and message for condition `index` of [`TYPES`], if it failed.
    fn failure(&self, index: usize) -> Option<(&'static str, String)> {
        match index {
            0 => self
                .discovery_failure
                .clone()
                .map(|m| ("DiscoveryFailed", m)),
            1 => self
                .group_version_failure
                .clone()
                .map(|m| ("GroupVersionParsingFailed", m)),
            2 => (!self.content_failures.is_empty()).then(|| {
                let mut messages = self.content_failures.clone();
                messages.sort();
                (
                    "ContentDeletionFailed",
                    format!(
                        "Failed to delete all resource types, {} remaining: {}",
                        messages.len(),
                        messages.join(", ")
                    ),
                )
            }),
            3 => counted(&self.remaining, "has", "resource instances").map(|list| {
                (
                    "SomeResourcesRemain",
                    format!("Some resources are remaining: {list}"),
                )
            }),
            4 => counted(&self.finalizers, "in", "resource instances").map(|list| {
                (
                    "SomeFinalizersRemain",
                    format!("Some content in the namespace has finalizers remaining: {list}"),
                )
            }),
            _ => None,
        }
    }
}

/// `"<key> <verb> <n> <noun>"` for every non-zero count, sorted as strings (upstream sorts the
/// rendered parts for stable updates), joined with `", "`; `None` when nothing is left.
fn counted(counts: &BTreeMap<String, usize>, verb: &str, noun: &str) -> Option<String> {
    let mut parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(key, n)| format!("{key} {verb} {n} {noun}"))
        .collect();
    parts.sort();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Writes the five conditions `findings` imply into `status`, stamping new ones and changed
/// statuses with `now`; returns whether anything changed (the status then needs writing).
pub(crate) fn apply(status: &mut NamespaceStatus, findings: &Findings, now: &Time) -> bool {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let mut changed = false;
    for (index, kind) in TYPES.iter().enumerate() {
        let (status, reason, message) = match findings.failure(index) {
            Some((reason, message)) => ("True", reason, message),
            None => ("False", kind.ok_reason, kind.ok_message.to_string()),
        };
        match conditions.iter_mut().find(|c| c.type_ == kind.name) {
            None => {
                conditions.push(NamespaceCondition {
                    type_: kind.name.to_string(),
                    status: status.to_string(),
                    reason: Some(reason.to_string()),
                    message: Some(message),
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
            Some(old) => {
                if old.status == status
                    && old.reason.as_deref() == Some(reason)
                    && old.message.as_deref() == Some(message.as_str())
                {
                    continue;
                }
                if old.status != status {
                    old.last_transition_time = Some(now.clone());
                    old.status = status.to_string();
                }
                old.reason = Some(reason.to_string());
                old.message = Some(message);
                changed = true;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn by_type<'a>(status: &'a NamespaceStatus, name: &str) -> &'a NamespaceCondition {
        status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == name)
            .unwrap()
    }

    #[test]
    fn a_clean_pass_writes_upstreams_five_ok_conditions() {
        let mut status = NamespaceStatus::default();
        assert!(apply(&mut status, &Findings::default(), &at(1)));
        let got: Vec<_> = status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c.type_.as_str(),
                    c.status.as_str(),
                    c.reason.as_deref().unwrap(),
                    c.message.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "NamespaceDeletionDiscoveryFailure",
                    "False",
                    "ResourcesDiscovered",
                    "All resources successfully discovered"
                ),
                (
                    "NamespaceDeletionGroupVersionParsingFailure",
                    "False",
                    "ParsedGroupVersions",
                    "All legacy kube types successfully parsed"
                ),
                (
                    "NamespaceDeletionContentFailure",
                    "False",
                    "ContentDeleted",
                    "All content successfully deleted, may be waiting on finalization"
                ),
                (
                    "NamespaceContentRemaining",
                    "False",
                    "ContentRemoved",
                    "All content successfully removed"
                ),
                (
                    "NamespaceFinalizersRemaining",
                    "False",
                    "ContentHasNoFinalizers",
                    "All content-preserving finalizers finished"
                ),
            ]
        );
        // The same findings again change nothing: no status write.
        assert!(!apply(&mut status, &Findings::default(), &at(2)));
    }

    #[test]
    fn remaining_content_and_finalizers_read_as_upstreams_messages() {
        let findings = Findings {
            remaining: [
                ("deployments.apps".to_string(), 5),
                ("daemonsets.apps".to_string(), 5),
                ("pods.".to_string(), 0),
            ]
            .into(),
            finalizers: [
                ("service-catalog".to_string(), 6),
                ("kubedb".to_string(), 5),
            ]
            .into(),
            ..Findings::default()
        };
        let mut status = NamespaceStatus::default();
        apply(&mut status, &findings, &at(1));
        let remaining = by_type(&status, "NamespaceContentRemaining");
        assert_eq!(remaining.status, "True");
        assert_eq!(remaining.reason.as_deref(), Some("SomeResourcesRemain"));
        assert_eq!(
            remaining.message.as_deref(),
            Some(
                "Some resources are remaining: daemonsets.apps has 5 resource instances, \
                 deployments.apps has 5 resource instances"
            )
        );
        let finalizers = by_type(&status, "NamespaceFinalizersRemaining");
        assert_eq!(finalizers.reason.as_deref(), Some("SomeFinalizersRemain"));
        assert_eq!(
            finalizers.message.as_deref(),
            Some(
                "Some content in the namespace has finalizers remaining: kubedb in 5 resource \
                 instances, service-catalog in 6 resource instances"
            )
        );
    }

    #[test]
    fn failures_carry_their_messages_and_transition_times_move_only_on_status_changes() {
        let failing = Findings {
            discovery_failure: Some("Discovery failed for some groups, 1 failing: x".into()),
            group_version_failure: Some("unexpected GroupVersion string: a/b/c".into()),
            content_failures: vec!["z failed".into(), "a failed".into()],
            ..Findings::default()
        };
        let foreign = NamespaceCondition {
            type_: "SomeoneElses".into(),
            status: "True".into(),
            ..NamespaceCondition::default()
        };
        let mut status = NamespaceStatus {
            conditions: Some(vec![foreign.clone()]),
            ..NamespaceStatus::default()
        };
        apply(&mut status, &failing, &at(1));
        let content = by_type(&status, "NamespaceDeletionContentFailure");
        assert_eq!(content.reason.as_deref(), Some("ContentDeletionFailed"));
        assert_eq!(
            content.message.as_deref(),
            Some("Failed to delete all resource types, 2 remaining: a failed, z failed")
        );
        assert_eq!(
            by_type(&status, "NamespaceDeletionDiscoveryFailure")
                .reason
                .as_deref(),
            Some("DiscoveryFailed")
        );
        assert_eq!(
            by_type(&status, "NamespaceDeletionGroupVersionParsingFailure").status,
            "True"
        );

        // Another message, same status: updated, but the transition time stays.
        let other = Findings {
            content_failures: vec!["b failed".into()],
            ..failing.clone()
        };
        assert!(apply(&mut status, &other, &at(2)));
        let content = by_type(&status, "NamespaceDeletionContentFailure");
        assert_eq!(content.last_transition_time, Some(at(1)));
        assert_eq!(
            content.message.as_deref(),
            Some("Failed to delete all resource types, 1 remaining: b failed")
        );

        // Recovered: False with the OK reason, and a new transition time.
        assert!(apply(&mut status, &Findings::default(), &at(3)));
        let content = by_type(&status, "NamespaceDeletionContentFailure");
        assert_eq!(
            (content.status.as_str(), content.reason.as_deref()),
            ("False", Some("ContentDeleted"))
        );
        assert_eq!(content.last_transition_time, Some(at(3)));
        // Conditions of other types are kept as they were.
        assert_eq!(status.conditions.as_ref().unwrap().len(), 6);
        assert_eq!(by_type(&status, "SomeoneElses"), &foreign);
    }
}
