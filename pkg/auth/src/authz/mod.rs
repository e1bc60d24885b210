//! Authorization: may this user do this? Synchronous and in memory, so that it costs a cached
//! GET almost nothing.
//!
//! Each [`Authorizer`] answers allow, deny or no opinion; the [`Union`] asks in order and the
//! first allow or deny decides (upstream's union). [`PrivilegedGroups`] (`system:masters`)
//! comes first, as upstream short-circuits it before any authorizer. No opinion from everyone
//! is a 403 with upstream's message ([`forbidden`]).

pub mod node;
pub mod rbac;

use std::fmt;
use std::sync::Arc;

use rkube_api::field::go_quote;
use rkube_api::resources::GroupResource;
use rkube_api::selector::FieldSelector;
use rkube_api::status::ApiError;

use crate::user::UserInfo;
pub use node::{NodeAuthorizer, NodeGraph};
pub use rbac::{PolicyRule, RbacAuthorizer, RbacIndex};

/// What a request asks to do (upstream's `authorizer.Attributes`).
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// Who asks.
    pub user: &'a UserInfo,
    /// `get`, `list`, `create`, ...; for non-resource requests the lower-cased method.
    pub verb: &'a str,
    /// Whether this is an API resource request (else a path).
    pub resource_request: bool,
    /// The API group ("" for core).
    pub api_group: &'a str,
    /// The API version.
    pub api_version: &'a str,
    /// The plural resource.
    pub resource: &'a str,
    /// The subresource, "" if none.
    pub subresource: &'a str,
    /// The namespace, "" for cluster scope.
    pub namespace: &'a str,
    /// The object name, "" for collections.
    pub name: &'a str,
    /// The URL path (non-resource requests).
    pub path: &'a str,
    /// The field selector of a list, watch or deletecollection, if it has one.
    pub field_selector: Option<&'a FieldSelector>,
}

impl<'a> Attributes<'a> {
    /// A resource request of `user`.
    #[allow(clippy::too_many_arguments)]
    pub fn resource(
        user: &'a UserInfo,
        verb: &'a str,
        api_group: &'a str,
        resource: &'a str,
        subresource: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> Self {
        Attributes {
            user,
            verb,
            resource_request: true,
            api_group,
            api_version: "",
            resource,
            subresource,
            namespace,
            name,
            path: "",
            field_selector: None,
        }
    }

    /// A non-resource request of `user`.
    pub fn non_resource(user: &'a UserInfo, verb: &'a str, path: &'a str) -> Self {
        Attributes {
            user,
            verb,
            resource_request: false,
            api_group: "",
            api_version: "",
            resource: "",
            subresource: "",
            namespace: "",
            name: "",
            path,
            field_selector: None,
        }
    }
}

/// An authorizer's answer, with its reason (shown by the review APIs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow(String),
    /// Explicitly denied: no later authorizer is asked.
    Deny(String),
    /// Neither: the next authorizer decides.
    NoOpinion(String),
}

impl Decision {
    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The reason given.
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow(r) | Decision::Deny(r) | Decision::NoOpinion(r) => r,
        }
    }
}

/// The rules a user holds in a namespace (upstream's `RuleResolver`), for
/// SelfSubjectRulesReview and escalation checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Every rule, resource and non-resource, from every binding that applies.
    pub rules: Vec<PolicyRule>,
    /// Errors met resolving them (a binding to a missing role); the list is then incomplete.
    pub errors: Vec<String>,
}

/// One authorizer. See the [module docs](self).
pub trait Authorizer: Send + Sync + fmt::Debug {
    /// Decides on `attributes`.
    fn authorize(&self, attributes: &Attributes<'_>) -> Decision;

    /// The rules `user` holds in `namespace` ("" for cluster-wide ones only); nothing for
    /// authorizers that are not rule-based.
    fn rules_for(&self, _user: &UserInfo, _namespace: &str) -> Rules {
        Rules::default()
    }
}

/// Allows everything to members of some groups (`system:masters`).
#[derive(Debug, Clone)]
pub struct PrivilegedGroups(pub Vec<String>);

impl Authorizer for PrivilegedGroups {
    fn authorize(&self, attributes: &Attributes<'_>) -> Decision {
        if self.0.iter().any(|g| attributes.user.in_group(g)) {
            Decision::Allow(String::new())
        } else {
            Decision::NoOpinion(String::new())
        }
    }

    fn rules_for(&self, user: &UserInfo, _namespace: &str) -> Rules {
        if !self.0.iter().any(|g| user.in_group(g)) {
            return Rules::default();
        }
        let all = || vec!["*".to_owned()];
        Rules {
            rules: vec![
                PolicyRule {
                    verbs: all(),
                    api_groups: all(),
                    resources: all(),
                    ..PolicyRule::default()
                },
                PolicyRule {
                    verbs: all(),
                    non_resource_urls: all(),
                    ..PolicyRule::default()
                },
            ],
            errors: Vec::new(),
        }
    }
}

/// Authorizers asked in order: the first allow or deny decides.
#[derive(Debug, Clone)]
pub struct Union(Vec<Arc<dyn Authorizer>>);

impl Union {
    /// Asks `authorizers` in order.
    pub fn new(authorizers: Vec<Arc<dyn Authorizer>>) -> Self {
        Union(authorizers)
    }
}

impl Authorizer for Union {
    fn authorize(&self, attributes: &Attributes<'_>) -> Decision {
        let mut reasons = Vec::new();
        for authorizer in &self.0 {
            match authorizer.authorize(attributes) {
                Decision::NoOpinion(reason) => {
                    if !reason.is_empty() {
                        reasons.push(reason);
                    }
                }
                decided => return decided,
            }
        }
        Decision::NoOpinion(reasons.join(", "))
    }

    fn rules_for(&self, user: &UserInfo, namespace: &str) -> Rules {
        let mut all = Rules::default();
        for authorizer in &self.0 {
            let rules = authorizer.rules_for(user, namespace);
            all.rules.extend(rules.rules);
            all.errors.extend(rules.errors);
        }
        all
    }
}

/// Upstream's `forbiddenMessage`: what the user cannot do.
pub fn forbidden_message(attributes: &Attributes<'_>) -> String {
    let user = go_quote(&attributes.user.name);
    let verb = attributes.verb;
    if !attributes.resource_request {
        return format!(
            "User {user} cannot {verb} path {}",
            go_quote(attributes.path)
        );
    }
    let mut resource = attributes.resource.to_owned();
    if !attributes.subresource.is_empty() {
        resource = format!("{resource}/{}", attributes.subresource);
    }
    let (resource, group) = (go_quote(&resource), go_quote(attributes.api_group));
    if attributes.namespace.is_empty() {
        format!(
            "User {user} cannot {verb} resource {resource} in API group {group} at the cluster scope"
        )
    } else {
        format!(
            "User {user} cannot {verb} resource {resource} in API group {group} in the namespace {}",
            go_quote(attributes.namespace)
        )
    }
}

/// The 403 of a refused request, as upstream's `responsewriters.Forbidden`.
pub fn forbidden(attributes: &Attributes<'_>, reason: &str) -> ApiError {
    let message = forbidden_message(attributes);
    let message = if reason.is_empty() {
        message
    } else {
        format!("{message}: {reason}")
    };
    ApiError::forbidden(
        GroupResource::new(attributes.api_group, attributes.resource),
        attributes.name,
        message,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_messages_are_upstreams() {
        let bob = UserInfo::new("bob", &[]);
        let pods = Attributes::resource(&bob, "get", "", "pods", "", "default", "");
        assert_eq!(
            forbidden(&pods, "").message(),
            r#"pods is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default""#
        );
        let named = Attributes::resource(&bob, "update", "apps", "deployments", "scale", "", "web");
        assert_eq!(
            forbidden(
                &named,
                "RBAC: role.rbac.authorization.k8s.io \"x\" not found"
            )
            .message(),
            r#"deployments.apps "web" is forbidden: User "bob" cannot update resource "deployments/scale" in API group "apps" at the cluster scope: RBAC: role.rbac.authorization.k8s.io "x" not found"#
        );
        let path = Attributes::non_resource(&bob, "get", "/metrics");
        assert_eq!(
            forbidden(&path, "").message(),
            r#"forbidden: User "bob" cannot get path "/metrics""#
        );
    }

    #[test]
    fn masters_short_circuit_and_the_first_decision_wins() {
        #[derive(Debug)]
        struct Fixed(Decision);
        impl Authorizer for Fixed {
            fn authorize(&self, _: &Attributes<'_>) -> Decision {
                self.0.clone()
            }
        }
        let union = Union::new(vec![
            Arc::new(PrivilegedGroups(vec!["system:masters".into()])),
            Arc::new(Fixed(Decision::NoOpinion("a".into()))),
            Arc::new(Fixed(Decision::Deny("no".into()))),
            Arc::new(Fixed(Decision::Allow(String::new()))),
        ]);
        let admin = UserInfo::new("admin", &["system:masters"]);
        let bob = UserInfo::new("bob", &[]);
        assert!(
            union
                .authorize(&Attributes::non_resource(&admin, "get", "/x"))
                .allowed()
        );
        assert_eq!(
            union.authorize(&Attributes::non_resource(&bob, "get", "/x")),
            Decision::Deny("no".into())
        );
        let quiet = Union::new(vec![
            Arc::new(Fixed(Decision::NoOpinion("a".into()))),
            Arc::new(Fixed(Decision::NoOpinion("b".into()))),
        ]);
        assert_eq!(
            quiet.authorize(&Attributes::non_resource(&bob, "get", "/x")),
            Decision::NoOpinion("a, b".into())
        );
    }
}
