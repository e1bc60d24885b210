//! `Rest`: what the API server calls for one resource (or subresource), as upstream's
//! `rest.Creater`, `rest.Getter`, `rest.Lister`, `rest.Watcher`, `rest.Updater`,
//! `rest.Patcher`, `rest.GracefulDeleter` and `rest.CollectionDeleter` together.
//!
//! Requests arrive here already parsed (query parameters decoded, body decoded to JSON); the
//! answer is an object or an [`ApiError`] shaped as upstream's `Status`. Encoding (JSON, YAML,
//! Table) is the API server's business.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use rkube_api::resources::Resource;
use rkube_api::status::ApiError;
use rkube_api::user::UserInfo;
use rkube_storage::{Object, ObjectList, WatchStream};
use serde_json::Value;

/// The result type of every registry call.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Where a request is aimed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The namespace of a namespaced request; `None` for cluster-scoped resources and for
    /// all-namespaces lists and watches.
    pub namespace: Option<String>,
}

/// `fieldValidation`: what to do with unknown or duplicate fields in a body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and warn (upstream's default).
    #[default]
    Warn,
    /// Refuse the request.
    Strict,
}

/// Mutating admission of one write: given the object the write builds and the stored one
/// (updates), answers the object to go on with.
pub type MutateHook =
    dyn Fn(Value, Option<Value>) -> BoxFuture<'static, Result<Value>> + Send + Sync;

/// Validating admission of one write: the new object as the strategy prepared it (`None` for a
/// delete) and the stored one (updates and deletes); an error refuses the write.
pub type ValidateHook =
    dyn Fn(Option<Value>, Option<Value>) -> BoxFuture<'static, Result<()>> + Send + Sync;

/// The admission the API server hands the registry with a write (upstream's `admit` of the
/// create and update handlers and the `createValidation`/`updateValidation`/`deleteValidation`
/// callbacks): mutating runs on the object before the strategy prepares it (inside the update
/// loop, so a patch is admitted as patched), validating after, right before storage.
#[derive(Clone, Default)]
pub struct AdmissionHooks {
    /// Mutating admission; `None`: none.
    pub mutate: Option<Arc<MutateHook>>,
    /// Validating admission; `None`: none.
    pub validate: Option<Arc<ValidateHook>>,
}

impl AdmissionHooks {
    /// Runs mutating admission on `object` (the object itself when there is none).
    pub async fn mutate(&self, object: Value, old: Option<&Value>) -> Result<Value> {
        match &self.mutate {
            Some(hook) => hook(object, old.cloned()).await,
            None => Ok(object),
        }
    }

    /// Runs validating admission.
    pub async fn validate(&self, object: Option<&Value>, old: Option<&Value>) -> Result<()> {
        match &self.validate {
            Some(hook) => hook(object.cloned(), old.cloned()).await,
            None => Ok(()),
        }
    }

    /// Mutating then validating admission of a request object that is not itself stored (an
    /// Eviction, a TokenRequest): what the subresource then acts on.
    pub async fn admit_request(&self, object: Value) -> Result<Value> {
        let object = self.mutate(object, None).await?;
        self.validate(Some(&object), None).await?;
        Ok(object)
    }
}

impl fmt::Debug for AdmissionHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdmissionHooks")
            .field("mutate", &self.mutate.is_some())
            .field("validate", &self.validate.is_some())
            .finish()
    }
}

/// Options of a create.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `dryRun=All`: run everything, store nothing.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// The request's `User-Agent`, whose prefix names the manager when `fieldManager` is
    /// absent.
    pub user_agent: Option<String>,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// Admission of the write.
    pub admission: AdmissionHooks,
    /// Who asks, for kinds that record it (CSRs' `spec.username`...); `None` inside the server.
    pub user: Option<UserInfo>,
}

/// Options of an update (PUT).
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// The request's `User-Agent`, whose prefix names the manager when `fieldManager` is
    /// absent.
    pub user_agent: Option<String>,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// Admission of the write.
    pub admission: AdmissionHooks,
}

/// The patch formats upstream accepts, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

/// Upstream's strict decode of a patched object, handed from the API server (which owns the
/// schemas) to the registry (which applies patches): drops the fields the kind's schema does not
/// have and names each one (`unknown field "spec.foo"`).
#[derive(Clone)]
pub struct FieldCheck(pub Arc<CheckFields>);

/// The function inside a [`FieldCheck`].
pub type CheckFields = dyn Fn(&mut Value) -> Vec<String> + Send + Sync;

impl fmt::Debug for FieldCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FieldCheck")
    }
}

/// Options of a patch.
#[derive(Debug, Clone, Default)]
pub struct PatchOptions {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldManager` (required for apply).
    pub field_manager: Option<String>,
    /// The request's `User-Agent` (see [`CreateOptions::user_agent`]).
    pub user_agent: Option<String>,
    /// `force` (apply only).
    pub force: bool,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// The kind's field check of the patched object; `None` for kinds without a schema.
    pub field_check: Option<FieldCheck>,
    /// What a strict decode found in the patch body itself (duplicate keys), reported together
    /// with the patched object's findings.
    pub patch_findings: Vec<String>,
    /// Admission of the write.
    pub admission: AdmissionHooks,
}

/// Options of a get.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// `resourceVersion` as sent ("" when absent).
    pub resource_version: String,
}

/// Options of a list or watch, as the query string carries them.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `limit`.
    pub limit: Option<i64>,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion` ("" when absent).
    pub resource_version: String,
    /// `resourceVersionMatch` ("" when absent).
    pub resource_version_match: String,
    /// `allowWatchBookmarks`.
    pub allow_watch_bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<i64>,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_resource_version: Option<String>,
    /// `propagationPolicy` (`Orphan`, `Background`, `Foreground`).
    pub propagation_policy: Option<String>,
    /// Admission of the write.
    pub admission: AdmissionHooks,
}

/// A successful answer, with the warnings to send as `Warning` headers.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    /// The answer.
    pub value: T,
    /// Human-readable warnings (deprecated fields, unknown fields under `Warn`).
    pub warnings: Vec<String>,
}

impl<T> Answer<T> {
    /// An answer without warnings.
    pub fn new(value: T) -> Self {
        Answer {
            value,
            warnings: Vec::new(),
        }
    }
}

/// What a delete did.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object is gone; this was its last state (upstream answers 200 with it).
    Gone(Object),
    /// Deletion started but waits for finalizers or a grace period; the object now carries
    /// `deletionTimestamp` (upstream answers 202 Accepted with it, or 200 when only finalizers
    /// hold it).
    Pending {
        /// The object as it now stands.
        object: Object,
        /// True when the wait is a grace period (202), false when only finalizers hold it (200).
        graceful: bool,
    },
}

/// A connect request (`pods/log`, `exec`, `attach`, `portforward`, `proxy`, `nodes/proxy`,
/// `services/proxy`), as upstream's `rest.Connecter` receives it.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// The query parameters as sent (`container`, `tailLines`, `command`, ...).
    pub query: Vec<(String, String)>,
    /// What follows the subresource in the path (`proxy/<path>`), without a leading slash.
    pub path: String,
}

/// Where a connect request goes once upstream's checks passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connected {
    /// Nothing to stream: upstream answers 204 (the log of a pod not on a node yet).
    NoContent,
    /// The node's (kubelet's) URL that serves the request.
    Node {
        /// The node's name.
        node: String,
        /// The kubelet URL, with the query upstream passes on.
        url: String,
    },
}

/// One resource or subresource as the API server sees it. A method the resource does not
/// support answers `405 MethodNotSupported` (the provided defaults do).
#[async_trait]
pub trait Rest: Send + Sync + 'static {
    /// The resource served (for a subresource, its parent).
    fn resource(&self) -> &'static Resource;

    /// POST to the collection.
    async fn create(
        &self,
        _scope: &Scope,
        _object: Value,
        _options: &CreateOptions,
    ) -> Result<Answer<Object>> {
        Err(self.unsupported("create"))
    }

    /// GET of one object.
    async fn get(&self, _scope: &Scope, _name: &str, _options: &GetOptions) -> Result<Object> {
        Err(self.unsupported("get"))
    }

    /// GET of the collection.
    async fn list(&self, _scope: &Scope, _options: &ListOptions) -> Result<ObjectList> {
        Err(self.unsupported("list"))
    }

    /// GET of the collection with `watch=true`, or of one object with a name field selector.
    async fn watch(&self, _scope: &Scope, _options: &ListOptions) -> Result<WatchStream> {
        Err(self.unsupported("watch"))
    }

    /// PUT of one object; the flag is true when it was created.
    async fn update(
        &self,
        _scope: &Scope,
        _name: &str,
        _object: Value,
        _options: &UpdateOptions,
    ) -> Result<Answer<(Object, bool)>> {
        Err(self.unsupported("update"))
    }

    /// PATCH of one object; `patch` is the body as sent. The flag is true when it was created
    /// (an apply of a missing object).
    async fn patch(
        &self,
        _scope: &Scope,
        _name: &str,
        _patch_type: PatchType,
        _patch: &[u8],
        _options: &PatchOptions,
    ) -> Result<Answer<(Object, bool)>> {
        Err(self.unsupported("patch"))
    }

    /// DELETE of one object.
    async fn delete(
        &self,
        _scope: &Scope,
        _name: &str,
        _options: &DeleteOptions,
    ) -> Result<Answer<Deleted>> {
        Err(self.unsupported("delete"))
    }

    /// DELETE of the collection: deletes every object the list options select; answers the
    /// list of what was deleted (or started deleting).
    async fn delete_collection(
        &self,
        _scope: &Scope,
        _delete: &DeleteOptions,
        _list: &ListOptions,
    ) -> Result<ObjectList> {
        Err(self.unsupported("deletecollection"))
    }

    /// A connect subresource's request (any method): checks it as upstream does and says
    /// where it goes.
    async fn connect(
        &self,
        _scope: &Scope,
        _name: &str,
        _options: &ConnectOptions,
    ) -> Result<Connected> {
        Err(self.unsupported("connect"))
    }

    /// The 405 answer for a verb this resource does not serve.
    fn unsupported(&self, verb: &str) -> ApiError {
        ApiError::method_not_supported(self.resource().group_resource(), verb)
    }
}
