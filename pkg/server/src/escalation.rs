//! RBAC escalation prevention, as upstream's RBAC storage does it: nobody creates or updates a
//! Role or ClusterRole with rules they do not hold themselves (unless they may `escalate` it),
//! nor binds a role whose rules they do not hold (unless they may `bind` it). `system:masters`
//! may do both.
//!
//! The check needs the caller, which the registry does not see: the gate runs RBAC writes
//! inside [`CALLER`]'s scope, and [`EscalationCheck`], a decorator of the four RBAC
//! resources' handlers, reads it when a write starts and adds the check in front of the
//! write's validating admission, where the final object (patched, defaulted) is known.
//! Writes from inside the server (the bootstrap policy) have no caller and are not checked.

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt as _;
use rkube_api::resources::{GroupResource, Resource};
use rkube_api::status::ApiError;
use rkube_auth::UserInfo;
use rkube_auth::authz::rbac::{Binding, Kind, covers, escalation_message};
use rkube_auth::authz::{Attributes, Authorizer, PolicyRule, RbacIndex};
use rkube_registry::Rest;
use rkube_registry::rest::{
    AdmissionHooks, Answer, ConnectOptions, Connected, CreateOptions, DeleteOptions, Deleted,
    GetOptions, ListOptions, PatchOptions, PatchType, Result, Scope, UpdateOptions, ValidateHook,
};
use rkube_storage::{Object, ObjectList, WatchStream};
use serde_json::Value;

/// The group of the RBAC resources.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

tokio::task_local! {
    /// The caller of the RBAC write being served.
    pub static CALLER: UserInfo;
}

/// Whether a request (group, resource, verb) writes an RBAC object.
pub fn is_rbac_write(group: &str, subresource: &str, verb: &str) -> bool {
    group == RBAC_GROUP && subresource.is_empty() && matches!(verb, "create" | "update" | "patch")
}

/// An RBAC resource's handler with the escalation check. See the [module docs](self).
pub struct EscalationCheck {
    inner: Arc<dyn Rest>,
    kind: Kind,
    authorizer: Arc<dyn Authorizer>,
    index: Arc<RbacIndex>,
}

impl EscalationCheck {
    /// Wraps `inner`, the handler of `resource` if it is an RBAC resource; `inner` as is
    /// otherwise.
    pub fn wrap(
        resource: &Resource,
        inner: Arc<dyn Rest>,
        authorizer: &Arc<dyn Authorizer>,
        index: &Arc<RbacIndex>,
    ) -> Arc<dyn Rest> {
        if resource.group != RBAC_GROUP {
            return inner;
        }
        let Some(kind) = Kind::ALL
            .into_iter()
            .find(|k| k.plural() == resource.plural)
        else {
            return inner;
        };
        Arc::new(EscalationCheck {
            inner,
            kind,
            authorizer: authorizer.clone(),
            index: index.clone(),
        })
    }

    /// `hooks` with the check in front of validation, when there is a caller.
    fn guarded(&self, hooks: &AdmissionHooks) -> AdmissionHooks {
        let Ok(user) = CALLER.try_with(Clone::clone) else {
            return hooks.clone();
        };
        let check = Check {
            kind: self.kind,
            plural: self.inner.resource().plural,
            user,
            authorizer: self.authorizer.clone(),
            index: self.index.clone(),
        };
        let next = hooks.validate.clone();
        let validate: Arc<ValidateHook> =
            Arc::new(move |object: Option<Value>, old: Option<Value>| {
                let refused = object.as_ref().and_then(|o| check.refusal(o, old.as_ref()));
                let next = next.clone();
                async move {
                    if let Some(refused) = refused {
                        return Err(refused);
                    }
                    match next {
                        Some(next) => next(object, old).await,
                        None => Ok(()),
                    }
                }
                .boxed()
            });
        AdmissionHooks {
            mutate: hooks.mutate.clone(),
            validate: Some(validate),
        }
    }
}

impl std::fmt::Debug for EscalationCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscalationCheck")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The check of one write.
struct Check {
    kind: Kind,
    plural: &'static str,
    user: UserInfo,
    authorizer: Arc<dyn Authorizer>,
    index: Arc<RbacIndex>,
}

fn rules_of(object: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(object.get("rules").cloned().unwrap_or(Value::Null)).unwrap_or_default()
}

impl Check {
    fn allowed(&self, verb: &str, resource: &str, namespace: &str, name: &str) -> bool {
        let attributes =
            Attributes::resource(&self.user, verb, RBAC_GROUP, resource, "", namespace, name);
        self.authorizer.authorize(&attributes).allowed()
    }

    fn forbidden(&self, name: &str, message: impl std::fmt::Display) -> ApiError {
        ApiError::forbidden(GroupResource::new(RBAC_GROUP, self.plural), name, message)
    }

    /// Whether the user holds `rules` in `namespace`; the 403 if not.
    fn confirm_held(&self, name: &str, namespace: &str, rules: &[PolicyRule]) -> Option<ApiError> {
        let held = self.authorizer.rules_for(&self.user, namespace);
        let missing = covers(&held.rules, rules);
        (!missing.is_empty())
            .then(|| self.forbidden(name, escalation_message(&self.user, &missing, &held.errors)))
    }

    /// The refusal of writing `object` (over `old`), if any.
    fn refusal(&self, object: &Value, old: Option<&Value>) -> Option<ApiError> {
        let namespace = rkube_api::meta::namespace(object).unwrap_or_default();
        let name = rkube_api::meta::name(object).unwrap_or_default();
        match self.kind {
            Kind::Role | Kind::ClusterRole => {
                let rules = rules_of(object);
                let aggregates = object.get("aggregationRule").is_some_and(|a| !a.is_null());
                let unchanged = old.is_some_and(|old| {
                    rules_of(old) == rules
                        && old.get("aggregationRule") == object.get("aggregationRule")
                });
                if unchanged || self.allowed("escalate", self.plural, namespace, name) {
                    return None;
                }
                if aggregates {
                    let all = PolicyRule {
                        verbs: vec!["*".into()],
                        api_groups: vec!["*".into()],
                        resources: vec!["*".into()],
                        ..PolicyRule::default()
                    };
                    if self.confirm_held(name, namespace, &[all]).is_some() {
                        return Some(self.forbidden(
                            name,
                            "must have cluster-admin privileges to use the aggregationRule",
                        ));
                    }
                }
                self.confirm_held(name, namespace, &rules)
            }
            Kind::RoleBinding | Kind::ClusterRoleBinding => {
                let binding: Binding = serde_json::from_value(object.clone()).unwrap_or_default();
                let unchanged = old.is_some_and(|old| {
                    old.get("roleRef") == object.get("roleRef")
                        && old.get("subjects") == object.get("subjects")
                });
                let role_resource = if binding.role_ref.kind == "Role" {
                    "roles"
                } else {
                    "clusterroles"
                };
                if unchanged
                    || self.allowed("bind", role_resource, namespace, &binding.role_ref.name)
                {
                    return None;
                }
                match self.index.role_ref_rules(&binding.role_ref, namespace) {
                    Ok(rules) => self.confirm_held(name, namespace, &rules),
                    Err(e) => Some(self.forbidden(name, e)),
                }
            }
        }
    }
}

#[async_trait]
impl Rest for EscalationCheck {
    fn resource(&self) -> &'static Resource {
        self.inner.resource()
    }

    async fn create(
        &self,
        scope: &Scope,
        object: Value,
        options: &CreateOptions,
    ) -> Result<Answer<Object>> {
        let options = CreateOptions {
            admission: self.guarded(&options.admission),
            ..options.clone()
        };
        self.inner.create(scope, object, &options).await
    }

    async fn get(&self, scope: &Scope, name: &str, options: &GetOptions) -> Result<Object> {
        self.inner.get(scope, name, options).await
    }

    async fn list(&self, scope: &Scope, options: &ListOptions) -> Result<ObjectList> {
        self.inner.list(scope, options).await
    }

    async fn watch(&self, scope: &Scope, options: &ListOptions) -> Result<WatchStream> {
        self.inner.watch(scope, options).await
    }

    async fn update(
        &self,
        scope: &Scope,
        name: &str,
        object: Value,
        options: &UpdateOptions,
    ) -> Result<Answer<(Object, bool)>> {
        let options = UpdateOptions {
            admission: self.guarded(&options.admission),
            ..options.clone()
        };
        self.inner.update(scope, name, object, &options).await
    }

    async fn patch(
        &self,
        scope: &Scope,
        name: &str,
        patch_type: PatchType,
        patch: &[u8],
        options: &PatchOptions,
    ) -> Result<Answer<(Object, bool)>> {
        let options = PatchOptions {
            admission: self.guarded(&options.admission),
            ..options.clone()
        };
        self.inner
            .patch(scope, name, patch_type, patch, &options)
            .await
    }

    async fn delete(
        &self,
        scope: &Scope,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Answer<Deleted>> {
        self.inner.delete(scope, name, options).await
    }

    async fn delete_collection(
        &self,
        scope: &Scope,
        delete: &DeleteOptions,
        list: &ListOptions,
    ) -> Result<ObjectList> {
        self.inner.delete_collection(scope, delete, list).await
    }

    async fn connect(
        &self,
        scope: &Scope,
        name: &str,
        options: &ConnectOptions,
    ) -> Result<Connected> {
        self.inner.connect(scope, name, options).await
    }
}
