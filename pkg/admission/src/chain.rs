//! The [`Plugin`] contract, the [`Cluster`] state plugins read, and the [`Chain`] that runs
//! plugins in upstream's order.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rkube_api::status::ApiError;
use serde_json::Value;

use crate::attributes::{Attributes, UserInfo};

/// The result of admission: an upstream-shaped `Status` on refusal.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// A resource plugins read, by group and plural (`("", "namespaces")`).
pub type ResourceRef<'a> = (&'a str, &'a str);

/// Cluster state, as the server's registry serves it (from its watch caches where it can).
/// Admission never reaches storage itself: the composition root implements this.
#[async_trait]
pub trait Cluster: Send + Sync + std::fmt::Debug {
    /// One object; `None` when absent.
    async fn get(
        &self,
        resource: ResourceRef<'_>,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>>;

    /// Every object of `resource` in `namespace` (all namespaces, or cluster-scoped, when
    /// `None`).
    async fn list(&self, resource: ResourceRef<'_>, namespace: Option<&str>) -> Result<Vec<Value>>;

    /// Replaces the object's status if its `metadata.resourceVersion` is still current
    /// (409 Conflict otherwise); answers the stored object.
    async fn update_status(&self, resource: ResourceRef<'_>, object: Value) -> Result<Value>;
}

/// One question to the authorizer: may the user `verb` the `resource` of `group` named `name`
/// (in `namespace`; "" for cluster scope)?
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The verb (`approve`, `request-serviceaccounts-token-audience`).
    pub verb: &'a str,
    /// The API group ("" for core).
    pub group: &'a str,
    /// The resource.
    pub resource: &'a str,
    /// The namespace ("" for cluster scope).
    pub namespace: &'a str,
    /// The object's name.
    pub name: &'a str,
}

/// Authorization as admission plugins ask it (upstream's `WantsAuthorizer`): the server's
/// authorizer, implemented by the composition root.
#[async_trait]
pub trait Authorize: Send + Sync + std::fmt::Debug {
    /// Whether `user` is allowed `access`.
    async fn allowed(&self, user: &UserInfo, access: &Access<'_>) -> bool;
}

/// The warnings admission collects for the response's `Warning` headers.
#[derive(Debug, Default, Clone)]
pub struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    /// Adds one warning.
    pub fn add(&self, warning: impl Into<String>) {
        if let Ok(mut list) = self.0.lock() {
            list.push(warning.into());
        }
    }

    /// Everything collected so far.
    pub fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut list| std::mem::take(&mut *list))
            .unwrap_or_default()
    }
}

/// Upstream's reinvocation context: a plugin that changes the object after others ran asks
/// for one more pass of mutating admission, in which every plugin runs again (webhooks only
/// those their reinvocationPolicy allows).
#[derive(Debug, Clone, Default)]
pub struct Reinvocation {
    /// Whether this is the second pass.
    pub is_reinvoke: bool,
    /// Whether a plugin asked for a second pass.
    pub should_reinvoke: bool,
    /// MutatingAdmissionWebhook's record across the passes.
    pub(crate) webhooks: crate::webhook::ReinvokeState,
}

/// One admission plugin. A plugin may mutate, validate, or both (as upstream's plugins
/// implement `MutationInterface` and `ValidationInterface`); the defaults do nothing.
#[async_trait]
pub trait Plugin: Send + Sync {
    /// Upstream's plugin name (`NamespaceLifecycle`).
    fn name(&self) -> &'static str;

    /// Mutating admission: may change `attrs.object`.
    async fn admit(&self, _attrs: &mut Attributes, _warnings: &Warnings) -> Result<()> {
        Ok(())
    }

    /// Validating admission: sees the object as the registry will store it.
    async fn validate(&self, _attrs: &Attributes, _warnings: &Warnings) -> Result<()> {
        Ok(())
    }
}

/// The plugins of one API server, in order. Mutating admission runs every plugin's `admit`
/// in order, then validating admission every plugin's `validate` in order.
#[derive(Clone, Default)]
pub struct Chain {
    plugins: Vec<Arc<dyn Plugin>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| p.name()))
            .finish()
    }
}

impl Chain {
    /// A chain of `plugins`, run in the given order.
    pub fn new(plugins: Vec<Arc<dyn Plugin>>) -> Self {
        Chain { plugins }
    }

    /// The plugins' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.plugins.iter().map(|p| p.name()).collect()
    }

    /// Mutating admission; run a second time when a plugin asked for it (upstream's
    /// reinvocation: a webhook changed the object after other plugins saw it).
    pub async fn admit(&self, attrs: &mut Attributes, warnings: &Warnings) -> Result<()> {
        for plugin in &self.plugins {
            plugin.admit(attrs, warnings).await?;
        }
        if attrs.reinvocation.should_reinvoke && !attrs.reinvocation.is_reinvoke {
            attrs.reinvocation.is_reinvoke = true;
            for plugin in &self.plugins {
                plugin.admit(attrs, warnings).await?;
            }
        }
        Ok(())
    }

    /// Validating admission.
    pub async fn validate(&self, attrs: &Attributes, warnings: &Warnings) -> Result<()> {
        for plugin in &self.plugins {
            plugin.validate(attrs, warnings).await?;
        }
        Ok(())
    }
}
