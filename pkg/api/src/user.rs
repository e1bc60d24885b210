//! [`UserInfo`], who made a request (upstream's `user.Info`), and the well-known names. Shared by
//! authentication (which finds it), authorization, admission (which shows it to webhooks and
//! policies) and the registry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The anonymous user's name.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// The group of requests without credentials.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The group every authenticated user is in.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The group that may do everything, whatever the authorizers say.
pub const MASTERS_GROUP: &str = "system:masters";
/// The group of every service account.
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";
/// The prefix of service account user names: `system:serviceaccount:<namespace>:<name>`.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
/// The group of every node (kubelet).
pub const NODES_GROUP: &str = "system:nodes";
/// The prefix of node user names: `system:node:<node name>`.
pub const NODE_USER_PREFIX: &str = "system:node:";

/// Who made a request: name, uid, groups and extra attributes, as the review APIs show them
/// (`user`, `uid`, `groups`, `extra`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user name, e.g. `system:admin`.
    #[serde(rename = "username", default)]
    pub name: String,
    /// A unique id, empty when the authenticator has none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The groups, e.g. `system:masters`, `system:authenticated`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Extra attributes (service account tokens carry their pod and credential id).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user named `name` in `groups`, without uid or extras.
    pub fn new(name: impl Into<String>, groups: &[&str]) -> Self {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..UserInfo::default()
        }
    }

    /// `system:anonymous` in `system:unauthenticated`.
    pub fn anonymous() -> Self {
        UserInfo::new(ANONYMOUS_USER, &[UNAUTHENTICATED_GROUP])
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// The node a user speaks for (upstream's default `NodeIdentifier`): `Some(name)` for
/// `system:node:<name>` in `system:nodes`, where the name may be empty (a node that cannot be
/// identified); `None` for everyone else.
pub fn node_identity(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    user.in_group(NODES_GROUP).then_some(name)
}

/// The user name of service account `name` in `namespace`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
}

/// The groups of a service account of `namespace` (without `system:authenticated`).
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        SERVICE_ACCOUNTS_GROUP.to_owned(),
        format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}"),
    ]
}

/// `(namespace, name)` of a service account user name, if it is one.
pub fn split_service_account(user: &str) -> Option<(&str, &str)> {
    let (namespace, name) = user.strip_prefix(SERVICE_ACCOUNT_PREFIX)?.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some((namespace, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_names_split_as_upstream() {
        assert_eq!(
            split_service_account("system:serviceaccount:ns:sa"),
            Some(("ns", "sa"))
        );
        for bad in [
            "system:serviceaccount:ns",
            "system:serviceaccount::sa",
            "system:serviceaccount:ns:",
            "system:serviceaccount:ns:a:b",
            "alice",
        ] {
            assert_eq!(split_service_account(bad), None, "{bad}");
        }
        assert_eq!(
            service_account_user("ns", "sa"),
            "system:serviceaccount:ns:sa"
        );
    }

    #[test]
    fn nodes_are_their_name_in_the_nodes_group() {
        let node = |name: &str, groups: &[&str]| UserInfo::new(name, groups);
        let a = node("system:node:a", &[NODES_GROUP]);
        assert_eq!(node_identity(&a), Some("a"));
        let unnamed = node("system:node:", &[NODES_GROUP]);
        assert_eq!(node_identity(&unnamed), Some(""));
        assert_eq!(node_identity(&node("system:node:a", &["other"])), None);
        assert_eq!(node_identity(&node("alice", &[NODES_GROUP])), None);
    }
}
