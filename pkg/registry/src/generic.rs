//! [`GenericRest`]: one stored resource with upstream's generic registry semantics
//! (`apiserver/pkg/registry/generic/registry/store.go` with `rest/create.go`, `rest/update.go`
//! and `rest/delete.go`), and [`StatusRest`], its `status` subresource.
//!
//! Every write funnels through one path: build the new object (from the body, a patch, a status
//! or a scale), then [`GenericRest::prepare_update`] or [`GenericRest::prepare_create`] apply
//! the common metadata rules and the kind's [`Strategy`], inside `Store::guaranteed_update` so a
//! lost race re-runs them on the fresh object.
//!
//! Status ownership lives here, not in strategies: for every resource with a `status`
//! subresource (in the resource table, or as the strategy says), the main resource starts with
//! an empty status on create and keeps the stored status on update, and the `status`
//! subresource writes nothing but status.

// `ApiError` is the error of the `Rest` contract: boxing it inside only to unbox it at the
// boundary would buy nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt as _;
use futures::future::{BoxFuture, ready};
use rkube_api::field::{FieldError, Path};
use rkube_api::meta;
use rkube_api::patch;
use rkube_api::resources::{GroupKind, Resource};
use rkube_api::selector::{FieldOperator, FieldSelector, LabelSelector, unsupported_field_label};
use rkube_api::status::{ApiError, Reason};
use rkube_api::types;
use rkube_api::validation;
use rkube_storage::{
    GetOptions as StoreGet, ListOptions as StoreList, Object, ObjectList, Preconditions, Predicate,
    ReadAt, Revision, StorageError, Store, Update, WatchOptions, WatchStart, WatchStream,
};
use serde_json::{Map, Value, json};

use crate::errors::{Operation, invalid_resource_version, list_error, reject, to_api_error};
use crate::field_manager::{Track, apply, check_apply_body, parse_apply, track_update};
use crate::rest::{
    AdmissionHooks, Answer, CreateOptions, DeleteOptions, Deleted, FieldValidation, GetOptions,
    ListOptions, PatchOptions, PatchType, Rest, Result, Scope, UpdateOptions,
};
use crate::strategy::Strategy;

/// How long events live (kube-apiserver's `--event-ttl` default).
const EVENT_TTL: Duration = Duration::from_secs(3600);

/// How many names `generateName` tries before giving up (upstream's
/// `maxNameGenerationCreateAttempts`).
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// The finalizers the garbage collector reads (`metav1.FinalizerOrphanDependents`,
/// `metav1.FinalizerDeleteDependents`).
const FINALIZER_ORPHAN: &str = "orphan";
const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

/// Upstream's `OptimisticLockErrorMsg`.
pub const OPTIMISTIC_LOCK_MESSAGE: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// The API group of the option kinds (`ListOptions.meta.k8s.io`) whose validation fails 422.
const META_GROUP: &str = "meta.k8s.io";

/// What a write through [`GenericRest::write`] may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The main resource: everything but status (for kinds with a status subresource).
    Main,
    /// The `status` subresource: only status.
    Status,
    /// The `finalize` subresource (namespaces): only `spec.finalizers`.
    Finalize,
    /// Pods' `ephemeralcontainers` subresource: only `spec.ephemeralContainers`.
    EphemeralContainers,
    /// Pods' `resize` subresource: only the containers' resources and resize policies.
    Resize,
    /// CertificateSigningRequests' `approval` subresource: only `status.conditions`.
    Approval,
}

impl Mode {
    /// The subresource a write in this mode goes through ("" for the main resource).
    fn subresource(self) -> &'static str {
        match self {
            Mode::Main => "",
            Mode::Status => "status",
            Mode::Finalize => "finalize",
            Mode::EphemeralContainers => "ephemeralcontainers",
            Mode::Resize => "resize",
            Mode::Approval => "approval",
        }
    }
}

/// One stored resource. See the [module docs](self).
pub struct GenericRest {
    resource: &'static Resource,
    prefix: &'static str,
    store: Arc<dyn Store>,
    strategy: Arc<dyn Strategy>,
}

impl std::fmt::Debug for GenericRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericRest")
            .field("resource", &self.resource.group_resource())
            .finish_non_exhaustive()
    }
}

/// A closure that builds the object to write from the current one (`None`: absent).
type Make<'a> = dyn FnMut(Option<&Object>) -> Result<Value> + Send + 'a;

impl GenericRest {
    /// The registry of `resource` over `store`, with `strategy` for its kind; `None` for
    /// resources that are not stored (reviews, bindings).
    pub fn new(
        resource: &'static Resource,
        store: Arc<dyn Store>,
        strategy: Arc<dyn Strategy>,
    ) -> Option<Self> {
        Some(GenericRest {
            resource,
            prefix: resource.storage_prefix?,
            store,
            strategy,
        })
    }

    /// The storage prefix a list or watch of `namespace` (all namespaces when `None`, and for
    /// cluster-scoped resources) reads: `/registry/<prefix>/` or `/registry/<prefix>/<ns>/`.
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|ns| self.resource.namespaced && !ns.is_empty()) {
            Some(ns) => format!("/registry/{}/{ns}/", self.prefix),
            None => format!("/registry/{}/", self.prefix),
        }
    }

    /// The strategy of this resource's kind.
    pub fn strategy(&self) -> &Arc<dyn Strategy> {
        &self.strategy
    }

    /// Whether the main resource must leave `status` alone (see the module docs).
    fn owns_status_separately(&self) -> bool {
        self.resource.subresource("status").is_some() || self.strategy.has_status_subresource()
    }

    /// The namespace a request on one object is aimed at ("" for cluster-scoped resources).
    fn namespace<'s>(&self, scope: &'s Scope) -> Result<&'s str> {
        if !self.resource.namespaced {
            return Ok("");
        }
        match scope.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => Ok(ns),
            _ => Err(ApiError::bad_request("Namespace parameter required.")),
        }
    }

    /// The storage key of `name`, which must be a valid path segment (upstream's `KeyFunc`).
    pub(crate) fn key(&self, scope: &Scope, name: &str) -> Result<String> {
        let namespace = self.namespace(scope)?;
        if name.is_empty() {
            return Err(ApiError::bad_request("Name parameter required."));
        }
        let problems = validation::is_valid_path_segment_name(name);
        if !problems.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Name parameter invalid: {name:?}: {}",
                problems.join(";")
            )));
        }
        Ok(if self.resource.namespaced {
            format!("/registry/{}/{namespace}/{name}", self.prefix)
        } else {
            format!("/registry/{}/{name}", self.prefix)
        })
    }

    fn storage_error(&self, name: &str, op: Operation) -> impl FnOnce(StorageError) -> ApiError {
        let resource = self.resource;
        let name = name.to_string();
        move |err| to_api_error(err, resource, &name, op)
    }

    fn ttl(&self) -> Option<Duration> {
        (self.resource.kind == "Event").then_some(EVENT_TTL)
    }

    /// The current object at the latest revision.
    pub(crate) async fn current(&self, scope: &Scope, name: &str) -> Result<Object> {
        let key = self.key(scope, name)?;
        self.store
            .get(&key, &StoreGet { at: ReadAt::Latest })
            .await
            .map_err(self.storage_error(name, Operation::Get))
    }

    /// The resource this registry serves.
    pub(crate) fn served(&self) -> &'static Resource {
        self.resource
    }

    /// The store, for subresources whose writes skip the strategy (pods' `binding`).
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    // ---- building objects ----

    /// Checks a body's `apiVersion` and `kind` against `(api_version, kind)`; missing ones are
    /// filled in, as upstream's decoder defaults them from the URL.
    pub(crate) fn check_type(object: &mut Value, api_version: &str, kind: &str) -> Result<()> {
        let Some(map) = object.as_object_mut() else {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {kind})"
            )));
        };
        let text = |map: &Map<String, Value>, field: &str| {
            map.get(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        if let Some(got) = text(map, "apiVersion")
            && got != api_version
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({got}) does not match the expected API version ({api_version})"
            )));
        }
        if let Some(got) = text(map, "kind")
            && got != kind
        {
            let version = api_version.rsplit('/').next().unwrap_or(api_version);
            return Err(ApiError::bad_request(format!(
                "{got} in version {version:?} cannot be handled as a {kind}: the kind in the data ({got}) does not match the expected kind ({kind})"
            )));
        }
        map.insert("apiVersion".into(), Value::String(api_version.into()));
        map.insert("kind".into(), Value::String(kind.into()));
        if !map.get("metadata").is_none_or(Value::is_object) {
            return Err(decode_error(
                kind,
                api_version,
                "metadata must be an object",
            ));
        }
        map.entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        Ok(())
    }

    /// Upstream's `checkName` for bodies of updates and patches.
    fn check_name(object: &Value, name: &str, namespace: &str) -> Result<()> {
        let got = meta::name(object).unwrap_or("");
        if got != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({got}) does not match the name on the URL ({name})"
            )));
        }
        let got_ns = meta::namespace(object).unwrap_or("");
        if !namespace.is_empty() && !got_ns.is_empty() && got_ns != namespace {
            return Err(ApiError::bad_request(format!(
                "the namespace of the object ({got_ns}) does not match the namespace on the request ({namespace})"
            )));
        }
        Ok(())
    }

    /// Puts the request's namespace on the object (upstream's `BeforeCreate` namespace rules).
    fn set_namespace(&self, object: &mut Value, namespace: &str) -> Result<()> {
        let meta = metadata(object)?;
        if !self.resource.namespaced {
            meta.remove("namespace");
            return Ok(());
        }
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != namespace => Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            )),
            _ => {
                meta.insert("namespace".into(), Value::String(namespace.into()));
                Ok(())
            }
        }
    }

    /// A new object as create (or create-on-update) stores it, before its name is generated:
    /// namespace, server-set metadata, then the strategy's prepare and defaults.
    fn prepare_create(&self, mut object: Value, namespace: &str) -> Result<Value> {
        let resource = self.resource;
        Self::check_type(&mut object, &resource.api_version(), resource.kind)?;
        self.set_namespace(&mut object, namespace)?;
        check_metadata_shape(&object, resource)?;
        if meta::resource_version(&object).is_some_and(|rv| !rv.is_empty()) {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let has_spec = object.get("spec").is_some();
        let meta = metadata(&mut object)?;
        meta.remove("resourceVersion");
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("selfLink");
        meta.insert(
            "uid".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        meta.insert("creationTimestamp".into(), Value::String(now(0)));
        if has_spec {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        if self.owns_status_separately() {
            object["status"] = json!({});
        }
        // Upstream defaults while decoding the body, before the strategy prepares it.
        self.strategy.default(&mut object);
        self.strategy.prepare_for_create(&mut object);
        Ok(object)
    }

    /// Validation of a new object: metadata, then the kind's rules; 422 on any error.
    fn validate_create(&self, object: &Value) -> Result<()> {
        let mut errs = self.validate_metadata(object);
        errs.extend(self.strategy.validate(object));
        self.invalid(object, errs)
    }

    fn invalid(&self, object: &Value, errs: Vec<FieldError>) -> Result<()> {
        if errs.is_empty() {
            return Ok(());
        }
        let name = meta::name(object).unwrap_or("");
        Err(ApiError::invalid(self.resource.group_kind(), name, &errs))
    }

    /// Upstream's `ValidateObjectMeta`: name (by the kind's rule), namespace, labels,
    /// annotations, finalizers.
    fn validate_metadata(&self, object: &Value) -> Vec<FieldError> {
        let path = Path::new("metadata");
        let field = |f: &str| meta::field(object, f).unwrap_or("");
        let mut errs = validation::validate_object_name(
            field("name"),
            field("generateName"),
            name_rule(self.resource),
            &path,
        );
        if self.resource.namespaced {
            let ns = field("namespace");
            let ns_path = path.child("namespace");
            if ns.is_empty() {
                errs.push(FieldError::required(&ns_path, ""));
            } else {
                errs.extend(
                    validation::name_is_dns_label(ns, false)
                        .into_iter()
                        .map(|m| FieldError::invalid(&ns_path, ns, m)),
                );
            }
        }
        let strings = |key: &str| -> Vec<(String, String)> {
            object
                .get("metadata")
                .and_then(|m| m.get(key))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let labels = strings("labels");
        errs.extend(validation::validate_labels(
            labels.iter().map(|(k, v)| (k, v)),
            &path.child("labels"),
        ));
        let annotations = strings("annotations");
        errs.extend(validation::validate_annotations(
            annotations.iter().map(|(k, v)| (k, v)),
            &path.child("annotations"),
        ));
        let fin_path = path.child("finalizers");
        for (i, f) in finalizers(object).iter().enumerate() {
            errs.extend(
                validation::is_qualified_name(f)
                    .into_iter()
                    .map(|m| FieldError::invalid(&fin_path.index(i), f.as_str(), m)),
            );
        }
        errs
    }

    /// The object an update (or patch, status or scale write) stores, given the current one:
    /// upstream's `BeforeUpdate` with the resourceVersion check of `GuaranteedUpdate`.
    /// Returns the object and whether it is a create (PUT of a missing object).
    fn prepare_update(
        &self,
        mut new: Value,
        old: Option<&Object>,
        namespace: &str,
        mode: Mode,
    ) -> Result<(Value, bool)> {
        let Some(old) = old else {
            let object = self.prepare_create(new, namespace)?;
            self.validate_create(&object)?;
            return Ok((object, true));
        };
        let old_value = old.value();
        let name = meta::name(old_value).unwrap_or("");
        let resource = self.resource;
        Self::check_type(&mut new, &resource.api_version(), resource.kind)?;
        check_metadata_shape(&new, resource)?;
        let sent_rv = meta::resource_version(&new).unwrap_or("");
        let old_rv = old.revision().to_string();
        if !sent_rv.is_empty() && sent_rv != old_rv {
            return Err(ApiError::conflict(
                resource.group_resource(),
                name,
                OPTIMISTIC_LOCK_MESSAGE,
            ));
        }
        if mode == Mode::Finalize {
            // Everything but `spec.finalizers` comes from the stored object.
            let mut object = old_value.clone();
            let sent = new
                .get("spec")
                .and_then(|s| s.get("finalizers"))
                .cloned()
                .unwrap_or_else(|| json!([]));
            let path = Path::new("spec").child("finalizers");
            let errs: Vec<FieldError> = sent
                .as_array()
                .map(|list| {
                    list.iter()
                        .enumerate()
                        .filter_map(|(i, f)| {
                            let f = f.as_str().unwrap_or_default();
                            validation::is_qualified_name(f)
                                .first()
                                .map(|m| FieldError::invalid(&path.index(i), f, m.clone()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            self.invalid(&object, errs)?;
            object["spec"]["finalizers"] = sent;
            return Ok((object, false));
        }
        if matches!(mode, Mode::EphemeralContainers | Mode::Resize) {
            let (object, errs) = crate::subresources::pod_parts::prepare(mode, &new, old_value);
            self.invalid(&object, errs)?;
            return Ok((object, false));
        }
        if matches!(mode, Mode::Status | Mode::Approval) {
            // Everything but the part (status, or approval's status.conditions) comes from the
            // stored object; the strategy has the last word on the part.
            let mut object = old_value.clone();
            let (sent, holder, field) = match mode {
                Mode::Approval => (
                    new.pointer("/status/conditions").cloned(),
                    object
                        .as_object_mut()
                        .and_then(|map| crate::kinds::common::ensure_map(map, "status")),
                    "conditions",
                ),
                _ => (new.get("status").cloned(), object.as_object_mut(), "status"),
            };
            if let Some(holder) = holder {
                match sent {
                    Some(part) => holder.insert(field.into(), part),
                    None => holder.remove(field),
                };
            }
            let sub = mode.subresource();
            self.strategy
                .prepare_for_subresource_update(sub, &mut object, old_value);
            let errs = self
                .strategy
                .validate_subresource_update(sub, &object, old_value);
            self.invalid(&object, errs)?;
            return Ok((object, false));
        }
        self.set_namespace(&mut new, namespace)?;
        let mut errs = Vec::new();
        let old_meta = old_value.get("metadata").and_then(Value::as_object);
        let old_field = |f: &str| old_meta.and_then(|m| m.get(f)).cloned();
        {
            let meta = metadata(&mut new)?;
            match (meta.get("uid").and_then(Value::as_str), old_field("uid")) {
                (Some(uid), Some(Value::String(old_uid))) if !uid.is_empty() && uid != old_uid => {
                    errs.push(FieldError::invalid(
                        &Path::new("metadata").child("uid"),
                        uid,
                        "field is immutable",
                    ));
                }
                _ => {}
            }
            // System fields an update can never change.
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_field(field) {
                    Some(v) => meta.insert(field.into(), v),
                    None => meta.remove(field),
                };
            }
            meta.insert("resourceVersion".into(), Value::String(old_rv));
        }
        if self.owns_status_separately() {
            match old_value.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    if let Some(map) = new.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
        }
        // Upstream defaults while decoding the body, before the strategy prepares it.
        self.strategy.default(&mut new);
        self.strategy.prepare_for_update(&mut new, old_value);
        errs.extend(self.validate_metadata(&new));
        errs.extend(self.strategy.validate_update(&new, old_value));
        self.invalid(&new, errs)?;
        if self.strategy.generation_changes(old_value, &new) {
            let generation = old_meta
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            metadata(&mut new)?.insert("generation".into(), json!(generation + 1));
        }
        Ok((new, false))
    }

    // ---- the shared write path ----

    /// PUT of a subresource that writes only part of the object (`mode`: status, finalize).
    pub(crate) async fn replace_part(
        &self,
        scope: &Scope,
        name: &str,
        object: Value,
        options: &UpdateOptions,
        mode: Mode,
    ) -> Result<Answer<(Object, bool)>> {
        Self::check_name(&object, name, self.namespace(scope)?)?;
        let track = Track::new(
            options.field_manager.as_deref(),
            options.user_agent.as_deref(),
            mode.subresource(),
        );
        let (object, _) = self
            .write_admitted(
                scope,
                name,
                options.dry_run,
                false,
                mode,
                &track,
                &options.admission,
                &mut |_| Ok(object.clone()),
            )
            .await?;
        Ok(Answer::new((object, false)))
    }

    /// POST of `object`; `track` records the create in its managedFields (an object built by
    /// an apply already carries its own).
    pub(crate) async fn create_object(
        &self,
        scope: &Scope,
        object: Value,
        options: &CreateOptions,
        track: bool,
    ) -> Result<Answer<Object>> {
        let namespace = self.namespace(scope)?.to_string();
        let mut object = self.prepare_create(object, &namespace)?;
        if let Some(user) = &options.user {
            self.strategy.fill_requester(&mut object, user);
        }
        // Mutating admission sees the defaulted object; what it changed is defaulted again.
        let mut object = options.admission.mutate(object, None).await?;
        if options.admission.mutate.is_some() {
            self.strategy.default(&mut object);
        }
        if track {
            let track = Track::new(
                options.field_manager.as_deref(),
                options.user_agent.as_deref(),
                "",
            );
            track_update(
                self.resource,
                &track,
                self.owns_status_separately(),
                None,
                &mut object,
                &now(0),
            );
        }
        let generate_from = (meta::name(&object).unwrap_or("").is_empty())
            .then(|| {
                meta::field(&object, "generateName")
                    .unwrap_or("")
                    .to_string()
            })
            .filter(|g| !g.is_empty());
        let scope = Scope {
            namespace: Some(namespace),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(base) = &generate_from {
                let name = validation::generate_name(base);
                metadata(&mut object)?.insert("name".into(), Value::String(name));
            }
            self.validate_create(&object)?;
            options.admission.validate(Some(&object), None).await?;
            let name = meta::name(&object).unwrap_or("").to_string();
            let key = self.key(&scope, &name)?;
            let warnings = self.strategy.warnings(&object);
            let result = if options.dry_run {
                match self.store.get(&key, &StoreGet::default()).await {
                    Ok(_) => Err(StorageError::AlreadyExists { key: key.clone() }),
                    Err(StorageError::NotFound { .. }) => object_at(&key, object.clone(), 0)
                        .map_err(|e| StorageError::Rejected(reject(e))),
                    Err(e) => Err(e),
                }
            } else {
                self.store.create(&key, object.clone(), self.ttl()).await
            };
            return match result {
                Ok(created) => Ok(Answer {
                    value: created,
                    warnings,
                }),
                Err(StorageError::AlreadyExists { .. }) if generate_from.is_some() => {
                    if attempt < GENERATE_NAME_ATTEMPTS {
                        continue;
                    }
                    Err(ApiError::generate_name_conflict(
                        self.resource.group_resource(),
                        &name,
                        1,
                    ))
                }
                Err(e) => Err(self.storage_error(&name, Operation::Create)(e)),
            };
        }
    }

    /// The object an apply patch creates when none exists yet (for registries that must act
    /// on creates, such as Services' ClusterIP allocation).
    pub(crate) fn applied_new(
        &self,
        scope: &Scope,
        name: &str,
        body: &[u8],
        options: &PatchOptions,
    ) -> Result<Value> {
        let config = parse_apply(body)?;
        Self::check_name(&config, name, self.namespace(scope)?)?;
        let mut track = Track::new(
            options.field_manager.as_deref(),
            options.user_agent.as_deref(),
            "",
        );
        track.applied = true;
        apply(
            self.resource,
            &track,
            self.owns_status_separately(),
            None,
            &config,
            options.force,
            &now(0),
        )
    }

    /// PATCH of the object or of the part `mode` writes: an apply (which creates a missing
    /// object on the main resource, as upstream) or any other patch type.
    pub(crate) async fn patch_part(
        &self,
        scope: &Scope,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        options: &PatchOptions,
        mode: Mode,
    ) -> Result<Answer<(Object, bool)>> {
        let mut track = Track::new(
            options.field_manager.as_deref(),
            options.user_agent.as_deref(),
            mode.subresource(),
        );
        let resource = self.resource;
        let missing = || ApiError::not_found(resource.group_resource(), name);
        let mut warnings = Vec::new();
        let written = if patch_type == PatchType::Apply {
            let config = parse_apply(body)?;
            track.applied = true;
            let owns_status = self.owns_status_separately();
            let allow_create = mode == Mode::Main;
            self.write_admitted(
                scope,
                name,
                options.dry_run,
                allow_create,
                mode,
                &track,
                &options.admission,
                &mut |current| {
                    let live = current.map(Object::value);
                    if live.is_none() && !allow_create {
                        return Err(missing());
                    }
                    let applied = apply(
                        resource,
                        &track,
                        owns_status,
                        live,
                        &config,
                        options.force,
                        &now(0),
                    )?;
                    warnings = check_apply_body(body, options.field_validation)?;
                    Ok(applied)
                },
            )
            .await?
        } else {
            let patch = ParsedPatch::parse(patch_type, body)?;
            self.write_admitted(
                scope,
                name,
                options.dry_run,
                false,
                mode,
                &track,
                &options.admission,
                &mut |current| {
                    let current = current.ok_or_else(missing)?;
                    Self::patched(current.value(), &patch, options, &mut warnings)
                },
            )
            .await?
        };
        Ok(Answer {
            value: written,
            warnings,
        })
    }

    /// Writes the object `make` builds from the current one, through `prepare_update`; deletes
    /// it when the write removed the last finalizer of an object being deleted (upstream's
    /// `shouldDeleteDuringUpdate`). Returns the stored object and whether it was created.
    /// The write is the API server's own (no client names a manager).
    pub(crate) async fn write(
        &self,
        scope: &Scope,
        name: &str,
        dry_run: bool,
        allow_create: bool,
        mode: Mode,
        make: &mut Make<'_>,
    ) -> Result<(Object, bool)> {
        let track = Track::internal(mode.subresource());
        self.write_tracked(scope, name, dry_run, allow_create, mode, &track, make)
            .await
    }

    /// [`Self::write`] by the manager of `track`, whose managedFields entry records what the
    /// write changed (an apply's `make` records its own).
    #[allow(clippy::too_many_arguments)] // `write`'s parameters and the manager
    pub(crate) async fn write_tracked(
        &self,
        scope: &Scope,
        name: &str,
        dry_run: bool,
        allow_create: bool,
        mode: Mode,
        track: &Track,
        make: &mut Make<'_>,
    ) -> Result<(Object, bool)> {
        let none = AdmissionHooks::default();
        self.write_admitted(scope, name, dry_run, allow_create, mode, track, &none, make)
            .await
    }

    /// [`Self::write_tracked`] with the request's admission, run on every attempt of the
    /// update loop: mutating on what `make` built, validating on the prepared object.
    #[allow(clippy::too_many_arguments)] // `write_tracked`'s parameters and the admission
    pub(crate) async fn write_admitted(
        &self,
        scope: &Scope,
        name: &str,
        dry_run: bool,
        allow_create: bool,
        mode: Mode,
        track: &Track,
        admission: &AdmissionHooks,
        make: &mut Make<'_>,
    ) -> Result<(Object, bool)> {
        let key = self.key(scope, name)?;
        let namespace = self.namespace(scope)?.to_string();
        let namespace = namespace.as_str();
        if dry_run {
            let current = match self.store.get(&key, &StoreGet::default()).await {
                Ok(o) => Some(o),
                Err(StorageError::NotFound { .. }) if allow_create => None,
                Err(e) => return Err(self.storage_error(name, Operation::Get)(e)),
            };
            let new = make(current.as_ref())?;
            let (value, created, _) = self
                .build(
                    new,
                    current.as_ref(),
                    name,
                    namespace,
                    mode,
                    track,
                    admission,
                )
                .await?;
            let revision = current.as_ref().map_or(0, Object::revision);
            return Ok((object_at(&key, value, revision)?, created));
        }
        let ttl = self.ttl();
        let created_flag = AtomicBool::new(false);
        let delete_flag = AtomicBool::new(false);
        let (created_ref, delete_ref) = (&created_flag, &delete_flag);
        let written = self
            .store
            .guaranteed_update(
                &key,
                &Preconditions::default(),
                allow_create,
                &mut |current: Option<Object>| -> BoxFuture<'_, _> {
                    let new = make(current.as_ref());
                    Box::pin(async move {
                        let (value, created, delete_now) = self
                            .build(
                                new?,
                                current.as_ref(),
                                name,
                                namespace,
                                mode,
                                track,
                                admission,
                            )
                            .await?;
                        created_ref.store(created, Ordering::Relaxed);
                        delete_ref.store(delete_now, Ordering::Relaxed);
                        Ok(Update { value, ttl })
                    })
                    .map(|r: Result<Update>| r.map_err(reject))
                    .boxed()
                },
            )
            .await
            .map_err(self.storage_error(name, Operation::Update))?;
        let created = created_flag.load(Ordering::Relaxed);
        let delete_now = delete_flag.load(Ordering::Relaxed);
        if !delete_now {
            return Ok((written, created));
        }
        let preconditions = Preconditions {
            uid: meta::uid(written.value()).map(str::to_string),
            resource_version: Some(written.revision().to_string()),
        };
        match self.store.delete(&key, &preconditions, None).await {
            Ok(gone) => Ok((gone, false)),
            // Someone else finished the deletion first.
            Err(StorageError::NotFound { .. }) => Ok((written, false)),
            Err(e) => Err(self.storage_error(name, Operation::Delete)(e)),
        }
    }

    /// One attempt of a write: the object `make` built, admitted (mutating), prepared by
    /// `prepare_update`, tracked, admitted (validating). Returns it, whether it is a create,
    /// and whether the write finishes a deletion.
    #[allow(clippy::too_many_arguments)] // one attempt's whole context
    async fn build(
        &self,
        new: Value,
        current: Option<&Object>,
        name: &str,
        namespace: &str,
        mode: Mode,
        track: &Track,
        admission: &AdmissionHooks,
    ) -> Result<(Value, bool, bool)> {
        Self::check_name(&new, name, namespace)?;
        let old = current.map(Object::value);
        let new = admission.mutate(new, old).await?;
        let (mut value, created) = self.prepare_update(new, current, namespace, mode)?;
        if !track.applied {
            track_update(
                self.resource,
                track,
                self.owns_status_separately(),
                old,
                &mut value,
                &now(0),
            );
        }
        admission.validate(Some(&value), old).await?;
        let delete_now =
            old.is_some_and(|old| finishes_deletion(self.strategy.as_ref(), old, &value));
        Ok((value, created, delete_now))
    }

    /// [`Self::apply_patch`], then `fieldValidation` on the result, as upstream's strict decode
    /// of the patched object: unknown fields are dropped; `Warn` answers them (with the patch
    /// body's duplicate keys) in `warnings`, replacing an earlier attempt's; `Strict` refuses
    /// with upstream's 422 on the field `patch`, whose value is the patched object.
    pub(crate) fn patched(
        current: &Value,
        patch: &ParsedPatch,
        options: &PatchOptions,
        warnings: &mut Vec<String>,
    ) -> Result<Value> {
        let mut doc = Self::apply_patch(current, patch)?;
        warnings.clear();
        let Some(check) = &options.field_check else {
            return Ok(doc);
        };
        let shown = if options.field_validation == FieldValidation::Strict {
            doc.to_string()
        } else {
            String::new()
        };
        let mut findings = options.patch_findings.clone();
        findings.extend((check.0)(&mut doc));
        if findings.is_empty() {
            return Ok(doc);
        }
        match options.field_validation {
            FieldValidation::Ignore => {}
            FieldValidation::Warn => *warnings = findings,
            FieldValidation::Strict => {
                let detail = format!("strict decoding error: {}", findings.join(", "));
                let err = FieldError::invalid(&Path::new("patch"), shown, detail);
                return Err(ApiError::invalid(
                    GroupKind {
                        group: "",
                        kind: "",
                    },
                    "",
                    &[err],
                ));
            }
        }
        Ok(doc)
    }

    /// Applies a patch to `current` (the stored object with its resourceVersion, so an
    /// unconditional patch never conflicts). A strategic merge patch merges by the type of
    /// `current`'s `apiVersion` and `kind`; kinds without a type answer 415 as upstream does
    /// for custom resources.
    pub(crate) fn apply_patch(current: &Value, patch: &ParsedPatch) -> Result<Value> {
        let mut doc = current.clone();
        match patch {
            ParsedPatch::Json(ops) => {
                // Upstream answers a failed JSON patch with a generic 422 whose cause holds
                // the patch library's error; kubectl prints "The request is invalid".
                json_patch::patch(&mut doc, ops).map_err(|e| patch::rejected(e.to_string()))?;
            }
            ParsedPatch::Merge(patch) => json_patch::merge(&mut doc, patch),
            ParsedPatch::Strategic(patch) => {
                let text = |field: &str| current.get(field).and_then(Value::as_str);
                let api_version = text("apiVersion").unwrap_or_default();
                let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
                let ty = text("kind")
                    .and_then(|kind| types::lookup_kind(group, version, kind))
                    .ok_or_else(|| {
                        ApiError::new(
                            415,
                            Reason::UnsupportedMediaType,
                            "strategic merge patch format is not supported",
                            None,
                        )
                    })?;
                doc = patch::strategic::apply(current, patch, ty)?;
            }
        }
        Ok(doc)
    }

    // ---- lists and watches ----

    /// The storage predicate of a list or watch's selectors; 400 for selectors that do not
    /// parse or select on a field this resource does not support.
    fn predicate(&self, options: &ListOptions) -> Result<Predicate> {
        let labels = match options.label_selector.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => LabelSelector::everything(),
        };
        let fields = match options.field_selector.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => FieldSelector::everything(),
        };
        let selectable = self.strategy.selectable_fields();
        for term in fields.terms() {
            let f = term.field.as_str();
            if f != "metadata.name" && f != "metadata.namespace" && !selectable.contains(&f) {
                return Err(ApiError::bad_request(unsupported_field_label(f)));
            }
        }
        if labels.is_empty() && fields.is_empty() {
            return Ok(Predicate::everything());
        }
        let strategy = self.strategy.clone();
        Ok(Predicate::new(move |object| {
            labels.matches(&meta::labels(object))
                && fields.terms().iter().all(|term| {
                    let actual = match term.field.as_str() {
                        "metadata.name" => meta::name(object).unwrap_or("").to_string(),
                        "metadata.namespace" => meta::namespace(object).unwrap_or("").to_string(),
                        other => strategy.field_value(object, other).unwrap_or_default(),
                    };
                    match term.operator {
                        FieldOperator::Equals => actual == term.value,
                        FieldOperator::NotEquals => actual != term.value,
                    }
                })
        }))
    }

    /// Upstream's `ValidateListOptions` (422 `ListOptions.meta.k8s.io "" is invalid`).
    fn validate_list_options(options: &ListOptions, watch: bool) -> Result<()> {
        let rvm = Path::new("resourceVersionMatch");
        let matched = options.resource_version_match.as_str();
        let has_continue = options
            .continue_token
            .as_deref()
            .is_some_and(|c| !c.is_empty());
        let mut errs = Vec::new();
        if watch {
            if options.send_initial_events.is_some() && matched != "NotOlderThan" {
                errs.push(FieldError::forbidden(
                    &rvm,
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !matched.is_empty() {
                if options.send_initial_events.is_none() {
                    errs.push(FieldError::forbidden(
                        &rvm,
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                    ));
                }
                if matched != "NotOlderThan" {
                    errs.push(FieldError::not_supported(&rvm, matched, &["NotOlderThan"]));
                }
                if has_continue {
                    errs.push(FieldError::forbidden(
                        &rvm,
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
            }
        } else {
            if !matched.is_empty() {
                if options.resource_version.is_empty() {
                    errs.push(FieldError::forbidden(
                        &rvm,
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    ));
                }
                if has_continue {
                    errs.push(FieldError::forbidden(
                        &rvm,
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
                if matched != "Exact" && matched != "NotOlderThan" {
                    errs.push(FieldError::not_supported(
                        &rvm,
                        matched,
                        &["Exact", "NotOlderThan", ""],
                    ));
                }
                if matched == "Exact" && options.resource_version == "0" {
                    errs.push(FieldError::forbidden(
                        &rvm,
                        "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                    ));
                }
            }
            if options.send_initial_events.is_some() {
                errs.push(FieldError::forbidden(
                    &Path::new("sendInitialEvents"),
                    "sendInitialEvents is forbidden for list",
                ));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                GroupKind::new(META_GROUP, "ListOptions"),
                "",
                &errs,
            ))
        }
    }

    // ---- deletion ----

    /// The deletion of `current` as upstream's `BeforeDelete` and
    /// `updateForGracefulDeletionAndFinalizers` decide it: `None` deletes now, `Some` is the
    /// object to store instead (with `deletionTimestamp`) and whether a grace period holds it.
    fn plan_delete(
        &self,
        current: &Object,
        options: &DeleteOptions,
    ) -> Result<Option<(Value, bool)>> {
        let value = current.value();
        let name = meta::name(value).unwrap_or("");
        check_delete_preconditions(self.resource, name, current, options)?;
        if let Some(message) = self.strategy.deletion_hold(value) {
            // Upstream's namespace storage: the first delete starts termination; later ones
            // are refused until the hold is released (through `finalize`).
            if meta::field(value, "deletionTimestamp").is_some() {
                return Err(ApiError::conflict(
                    self.resource.group_resource(),
                    name,
                    message,
                ));
            }
            let mut object = value.clone();
            self.strategy.prepare_for_delete(&mut object);
            let meta = metadata(&mut object)?;
            meta.insert("deletionTimestamp".into(), Value::String(now(0)));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            return Ok(Some((object, false)));
        }
        let mut object = value.clone();
        // Negative grace periods count as one second on the delete path, as upstream.
        let requested = options
            .grace_period_seconds
            .map(|g| if g < 0 { 1 } else { g });
        let meta_i64 = |o: &Value, f: &str| {
            o.get("metadata")
                .and_then(|m| m.get(f))
                .and_then(Value::as_i64)
        };
        let mut graceful = false;
        let mut pending_graceful = false;
        if let Some(timestamp) = meta::field(value, "deletionTimestamp") {
            match (meta_i64(value, "deletionGracePeriodSeconds"), requested) {
                // Only a shorter grace period may be given to an object already being deleted.
                (Some(current_grace), Some(period))
                    if current_grace > 0 && period < current_grace =>
                {
                    let shortened = timestamp
                        .parse::<jiff::Timestamp>()
                        .ok()
                        .and_then(|t| {
                            t.checked_add(jiff::SignedDuration::from_secs(period - current_grace))
                                .ok()
                        })
                        .map_or_else(|| now(period), format_time);
                    let meta = metadata(&mut object)?;
                    meta.insert("deletionTimestamp".into(), Value::String(shortened));
                    meta.insert("deletionGracePeriodSeconds".into(), json!(period));
                    graceful = true;
                }
                (Some(current_grace), _) if current_grace > 0 => pending_graceful = true,
                _ => {}
            }
        } else if let Some(default) = self.strategy.default_grace_period_seconds(value) {
            // A strategy's 0 is a verdict, not a default: an unscheduled or finished pod goes
            // at once whatever the client asked (upstream's CheckGracefulDelete).
            let period = if default == 0 {
                0
            } else {
                requested.unwrap_or(default)
            };
            if period > 0 {
                let meta = metadata(&mut object)?;
                meta.insert("deletionTimestamp".into(), Value::String(now(period)));
                meta.insert("deletionGracePeriodSeconds".into(), json!(period));
                bump_generation(meta);
                graceful = true;
            }
        }
        if pending_graceful {
            return Ok(Some((object, true)));
        }
        let gc_finalizers =
            gc_finalizers(&finalizers(value), options.propagation_policy.as_deref());
        if let Some(new) = &gc_finalizers {
            metadata(&mut object)?.insert("finalizers".into(), json!(new));
        }
        if graceful {
            return Ok(Some((object, true)));
        }
        if finalizers(&object).is_empty() {
            return Ok(None);
        }
        // Finalizers hold the object: mark it as deleting (upstream's `markAsDeleting`).
        let meta = metadata(&mut object)?;
        if !meta.contains_key("deletionTimestamp") {
            bump_generation(meta);
            meta.insert("deletionTimestamp".into(), Value::String(now(0)));
        }
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        Ok(Some((object, false)))
    }

    /// Deletes one object (see [`Rest::delete`]).
    async fn delete_one(
        &self,
        scope: &Scope,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted> {
        let key = self.key(scope, name)?;
        let current = self.current(scope, name).await?;
        let plan = self.plan_delete(&current, options)?;
        options
            .admission
            .validate(None, Some(current.value()))
            .await?;
        if options.dry_run {
            return Ok(match plan {
                None => Deleted::Gone(current),
                Some((value, graceful)) => Deleted::Pending {
                    object: object_at(&key, value, current.revision())?,
                    graceful,
                },
            });
        }
        let preconditions = Preconditions {
            uid: options.precondition_uid.clone(),
            resource_version: options.precondition_resource_version.clone(),
        };
        if plan.is_some() {
            let mut held = None;
            let written = self
                .store
                .guaranteed_update(
                    &key,
                    &preconditions,
                    false,
                    &mut |current: Option<Object>| -> BoxFuture<'_, _> {
                        let result = match current {
                            Some(current) => self.plan_delete(&current, options),
                            None => Err(ApiError::not_found(self.resource.group_resource(), name)),
                        };
                        let result = match result {
                            Ok(Some((value, graceful))) => {
                                held = Some(graceful);
                                Ok(Update {
                                    value,
                                    ttl: self.ttl(),
                                })
                            }
                            Ok(None) => Err(reject(DELETE_NOW.clone())),
                            Err(e) => Err(reject(e)),
                        };
                        Box::pin(ready(result))
                    },
                )
                .await;
            match written {
                Ok(object) => {
                    return Ok(Deleted::Pending {
                        object,
                        graceful: held.unwrap_or(false),
                    });
                }
                // The object changed under us and may now be deleted at once.
                Err(StorageError::Rejected(e)) if is_delete_now(&e) => {}
                Err(e) => return Err(self.storage_error(name, Operation::Delete)(e)),
            }
        }
        self.store
            .delete(&key, &preconditions, None)
            .await
            .map(Deleted::Gone)
            .map_err(self.storage_error(name, Operation::Delete))
    }
}

/// The sentinel an update function returns to say "delete at once instead".
static DELETE_NOW: std::sync::LazyLock<ApiError> =
    std::sync::LazyLock::new(|| ApiError::internal("rkube: delete now"));

fn is_delete_now(err: &rkube_storage::BoxError) -> bool {
    err.downcast_ref::<ApiError>() == Some(&*DELETE_NOW)
}

/// A patch body, parsed once before the write loop.
#[derive(Debug)]
pub(crate) enum ParsedPatch {
    /// RFC 6902 operations.
    Json(Vec<json_patch::PatchOperation>),
    /// An RFC 7386 merge patch.
    Merge(Value),
    /// A strategic merge patch (`null` is an empty one, as Go decodes it).
    Strategic(Map<String, Value>),
}

impl ParsedPatch {
    /// Parses a patch of `patch_type`; 400 for a body that does not parse, 415 for what is not
    /// served yet.
    pub(crate) fn parse(patch_type: PatchType, body: &[u8]) -> Result<Self> {
        let json = |body: &[u8]| {
            serde_json::from_slice::<Value>(body).map_err(|e| ApiError::bad_request(e.to_string()))
        };
        match patch_type {
            PatchType::Json => {
                let ops: json_patch::Patch = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                Ok(ParsedPatch::Json(ops.0))
            }
            PatchType::Merge => {
                let patch = json(body)?;
                if !patch.is_object() {
                    return Err(ApiError::bad_request(
                        "json: cannot unmarshal a non-object merge patch into an object",
                    ));
                }
                Ok(ParsedPatch::Merge(patch))
            }
            // Upstream decodes the body into a Go map first; Go's error names the JSON type.
            PatchType::StrategicMerge => match json(body)? {
                Value::Object(patch) => Ok(ParsedPatch::Strategic(patch)),
                Value::Null => Ok(ParsedPatch::Strategic(Map::new())),
                other => {
                    let found = match other {
                        Value::Array(_) => "array",
                        Value::String(_) => "string",
                        Value::Number(_) => "number",
                        _ => "bool",
                    };
                    Err(ApiError::bad_request(format!(
                        "json: cannot unmarshal {found} into Go value of type map[string]interface {{}}"
                    )))
                }
            },
            PatchType::Apply => Err(ApiError::new(
                415,
                Reason::UnsupportedMediaType,
                "server-side apply (application/apply-patch+yaml) is not supported yet; \
                 use application/merge-patch+json or application/json-patch+json",
                None,
            )),
        }
    }
}

#[async_trait]
impl Rest for GenericRest {
    fn resource(&self) -> &'static Resource {
        self.resource
    }

    async fn create(
        &self,
        scope: &Scope,
        object: Value,
        options: &CreateOptions,
    ) -> Result<Answer<Object>> {
        self.create_object(scope, object, options, true).await
    }

    async fn get(&self, scope: &Scope, name: &str, options: &GetOptions) -> Result<Object> {
        let key = self.key(scope, name)?;
        let at = read_at(&options.resource_version)?;
        self.store
            .get(&key, &StoreGet { at })
            .await
            .map_err(self.storage_error(name, Operation::Get))
    }

    async fn list(&self, scope: &Scope, options: &ListOptions) -> Result<ObjectList> {
        Self::validate_list_options(options, false)?;
        let continue_token = options.continue_token.clone().filter(|c| !c.is_empty());
        let rv = options.resource_version.as_str();
        if continue_token.is_some() && !rv.is_empty() && rv != "0" {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let at = match (read_at(rv)?, options.resource_version_match.as_str()) {
            (ReadAt::NotOlderThan(n), "Exact") => ReadAt::Exact(n),
            (at, _) => at,
        };
        let store_options = StoreList {
            at,
            predicate: self.predicate(options)?,
            limit: options.limit.filter(|&l| l > 0).map(|l| l as usize),
            continue_token: continue_token.clone(),
        };
        let prefix = self.list_prefix(scope.namespace.as_deref());
        self.store
            .list(&prefix, &store_options)
            .await
            .map_err(|e| list_error(e, self.resource, continue_token.as_deref()))
    }

    async fn watch(&self, scope: &Scope, options: &ListOptions) -> Result<WatchStream> {
        Self::validate_list_options(options, true)?;
        let rv = options.resource_version.as_str();
        let send_initial = options.send_initial_events;
        let (start, legacy_initial) = match rv {
            "" => (WatchStart::Latest, true),
            "0" => (WatchStart::Any, true),
            n => (WatchStart::At(parse_revision(n)?), false),
        };
        let initial_events = send_initial.unwrap_or(legacy_initial);
        let watch_options = WatchOptions {
            start,
            initial_events,
            // Upstream sends the end-of-initial-events bookmark only to watchers that asked for
            // bookmarks; without them the initial events simply flow into the live ones.
            initial_events_end: send_initial == Some(true) && options.allow_watch_bookmarks,
            bookmarks: options.allow_watch_bookmarks,
            predicate: self.predicate(options)?,
        };
        let prefix = self.list_prefix(scope.namespace.as_deref());
        self.store
            .watch(&prefix, &watch_options)
            .await
            .map_err(self.storage_error("", Operation::Watch))
    }

    async fn update(
        &self,
        scope: &Scope,
        name: &str,
        object: Value,
        options: &UpdateOptions,
    ) -> Result<Answer<(Object, bool)>> {
        // The body must name the object of the URL, whether or not it exists (upstream checks
        // before touching storage).
        Self::check_name(&object, name, self.namespace(scope)?)?;
        let allow_create = self.strategy.allow_create_on_update();
        let track = Track::new(
            options.field_manager.as_deref(),
            options.user_agent.as_deref(),
            "",
        );
        let (object, created) = self
            .write_admitted(
                scope,
                name,
                options.dry_run,
                allow_create,
                Mode::Main,
                &track,
                &options.admission,
                &mut |_| Ok(object.clone()),
            )
            .await?;
        let warnings = self.strategy.warnings(object.value());
        Ok(Answer {
            value: (object, created),
            warnings,
        })
    }

    async fn patch(
        &self,
        scope: &Scope,
        name: &str,
        patch_type: PatchType,
        patch: &[u8],
        options: &PatchOptions,
    ) -> Result<Answer<(Object, bool)>> {
        let Answer {
            value: (object, created),
            mut warnings,
        } = self
            .patch_part(scope, name, patch_type, patch, options, Mode::Main)
            .await?;
        warnings.extend(self.strategy.warnings(object.value()));
        Ok(Answer {
            value: (object, created),
            warnings,
        })
    }

    async fn delete(
        &self,
        scope: &Scope,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Answer<Deleted>> {
        validate_delete_options(options)?;
        self.delete_one(scope, name, options).await.map(Answer::new)
    }

    async fn delete_collection(
        &self,
        scope: &Scope,
        delete: &DeleteOptions,
        list: &ListOptions,
    ) -> Result<ObjectList> {
        validate_delete_options(delete)?;
        let listed = self.list(scope, list).await?;
        let mut items = Vec::with_capacity(listed.items.len());
        for object in &listed.items {
            let name = meta::name(object.value()).unwrap_or("");
            let object_scope = Scope {
                namespace: meta::namespace(object.value()).map(str::to_string),
            };
            match self.delete_one(&object_scope, name, delete).await {
                Ok(Deleted::Gone(o)) | Ok(Deleted::Pending { object: o, .. }) => items.push(o),
                // Deleted meanwhile by someone else: upstream ignores it too.
                Err(e) if e.code() == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ObjectList { items, ..listed })
    }
}

/// The `status` subresource of a [`GenericRest`]: reads the whole object, writes only its
/// `status` (or, made with `StatusRest::part`, another part: pods' ephemeral containers or
/// container resources, CSRs' approval conditions).
#[derive(Debug)]
pub struct StatusRest {
    parent: Arc<GenericRest>,
    mode: Mode,
}

impl StatusRest {
    /// The status subresource of `parent`.
    pub fn new(parent: Arc<GenericRest>) -> Self {
        StatusRest {
            parent,
            mode: Mode::Status,
        }
    }

    /// Another subresource that reads the whole object and writes one part of it, as upstream
    /// serves pods' `ephemeralcontainers` and `resize` (the pod store with another strategy).
    pub(crate) fn part(parent: Arc<GenericRest>, mode: Mode) -> Self {
        StatusRest { parent, mode }
    }
}

#[async_trait]
impl Rest for StatusRest {
    fn resource(&self) -> &'static Resource {
        self.parent.resource
    }

    async fn get(&self, scope: &Scope, name: &str, options: &GetOptions) -> Result<Object> {
        self.parent.get(scope, name, options).await
    }

    async fn update(
        &self,
        scope: &Scope,
        name: &str,
        object: Value,
        options: &UpdateOptions,
    ) -> Result<Answer<(Object, bool)>> {
        self.parent
            .replace_part(scope, name, object, options, self.mode)
            .await
    }

    async fn patch(
        &self,
        scope: &Scope,
        name: &str,
        patch_type: PatchType,
        patch: &[u8],
        options: &PatchOptions,
    ) -> Result<Answer<(Object, bool)>> {
        self.parent
            .patch_part(scope, name, patch_type, patch, options, self.mode)
            .await
    }
}

/// The `finalize` subresource of namespaces: PUT writes only `spec.finalizers` (the namespace
/// controller removes `kubernetes` once the namespace is empty; the namespace is then gone).
#[derive(Debug)]
pub struct FinalizeRest {
    parent: Arc<GenericRest>,
}

impl FinalizeRest {
    /// The finalize subresource of `parent`.
    pub fn new(parent: Arc<GenericRest>) -> Self {
        FinalizeRest { parent }
    }
}

#[async_trait]
impl Rest for FinalizeRest {
    fn resource(&self) -> &'static Resource {
        self.parent.resource
    }

    async fn update(
        &self,
        scope: &Scope,
        name: &str,
        object: Value,
        options: &UpdateOptions,
    ) -> Result<Answer<(Object, bool)>> {
        self.parent
            .replace_part(scope, name, object, options, Mode::Finalize)
            .await
    }
}

// ---- helpers ----

/// `metadata` of an object already checked to be a JSON object.
pub(crate) fn metadata(object: &mut Value) -> Result<&mut Map<String, Value>> {
    meta::metadata_mut(object).ok_or_else(|| {
        ApiError::bad_request("the object provided is unrecognized: metadata must be an object")
    })
}

/// An [`Object`] for an answer that was not stored (dry run) at `revision`.
pub(crate) fn object_at(key: &str, value: Value, revision: Revision) -> Result<Object> {
    Object::new(key, value, revision).map_err(ApiError::internal)
}

/// A decode failure worded as upstream's (`ConfigMap in version "v1" cannot be handled as a
/// ConfigMap: ...`).
fn decode_error(kind: &str, api_version: &str, problem: &str) -> ApiError {
    let version = api_version.rsplit('/').next().unwrap_or(api_version);
    ApiError::bad_request(format!(
        "{kind} in version {version:?} cannot be handled as a {kind}: {problem}"
    ))
}

/// Types of the metadata fields the generic path reads, which a typed decoder would enforce.
fn check_metadata_shape(object: &Value, resource: &Resource) -> Result<()> {
    let Some(meta) = object.get("metadata").and_then(Value::as_object) else {
        return Ok(());
    };
    let bad = |what: &str| {
        Err(decode_error(
            resource.kind,
            &resource.api_version(),
            &format!("json: cannot unmarshal {what} of type ObjectMeta"),
        ))
    };
    for field in [
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
    ] {
        if meta
            .get(field)
            .is_some_and(|v| !v.is_string() && !v.is_null())
        {
            return bad(&format!("into Go struct field metadata.{field}"));
        }
    }
    for field in ["labels", "annotations"] {
        match meta.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.values().all(|v| v.is_string() || v.is_null()) => {}
            Some(_) => return bad(&format!("into Go struct field metadata.{field}")),
        }
    }
    match meta.get("finalizers") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Ok(()),
        Some(_) => bad("into Go struct field metadata.finalizers"),
    }
}

/// `metadata.finalizers`.
fn finalizers(object: &Value) -> Vec<String> {
    object
        .get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether writing `new` over `old` finishes a deletion: the last thing holding it (a
/// finalizer, or the kind's own hold such as a namespace's `spec.finalizers`) went away from an
/// object whose deletion waits only for those (grace period 0).
fn finishes_deletion(strategy: &dyn Strategy, old: &Value, new: &Value) -> bool {
    let held = |o: &Value| !finalizers(o).is_empty() || strategy.deletion_hold(o).is_some();
    let grace = old
        .get("metadata")
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64);
    held(old) && !held(new) && meta::field(old, "deletionTimestamp").is_some() && grace == Some(0)
}

fn bump_generation(meta: &mut Map<String, Value>) {
    if let Some(g) = meta
        .get("generation")
        .and_then(Value::as_i64)
        .filter(|&g| g > 0)
    {
        meta.insert("generation".into(), json!(g + 1));
    }
}

/// The garbage-collection finalizers a delete with `policy` leaves (upstream's
/// `deletionFinalizersForGarbageCollection`); `None` when they do not change.
fn gc_finalizers(current: &[String], policy: Option<&str>) -> Option<Vec<String>> {
    let (orphan, foreground) = match policy {
        Some("Orphan") => (true, false),
        Some("Foreground") => (false, true),
        Some(_) => (false, false),
        // No policy: the finalizers already on the object decide.
        None => return None,
    };
    let mut new: Vec<String> = current
        .iter()
        .filter(|f| *f != FINALIZER_ORPHAN && *f != FINALIZER_FOREGROUND)
        .cloned()
        .collect();
    if orphan {
        new.push(FINALIZER_ORPHAN.into());
    }
    if foreground {
        new.push(FINALIZER_FOREGROUND.into());
    }
    let same = new.len() == current.len() && new.iter().all(|f| current.contains(f));
    (!same).then_some(new)
}

/// Upstream's early precondition check in `BeforeDelete`, worded as it is (naming the kind).
fn check_delete_preconditions(
    resource: &Resource,
    name: &str,
    current: &Object,
    options: &DeleteOptions,
) -> Result<()> {
    let gr = rkube_api::resources::GroupResource::new(resource.group, resource.kind);
    let value = current.value();
    if let Some(uid) = &options.precondition_uid {
        let actual = meta::uid(value).unwrap_or("");
        if uid != actual {
            return Err(ApiError::conflict(
                gr,
                name,
                format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({actual}). The object might have been deleted and then recreated"
                ),
            ));
        }
    }
    if let Some(rv) = &options.precondition_resource_version {
        let actual = current.revision().to_string();
        if *rv != actual {
            return Err(ApiError::conflict(
                gr,
                name,
                format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({actual}). The object might have been modified"
                ),
            ));
        }
    }
    Ok(())
}

/// Upstream's `ValidateDeleteOptions` (422 `DeleteOptions.meta.k8s.io "" is invalid`).
fn validate_delete_options(options: &DeleteOptions) -> Result<()> {
    match options.propagation_policy.as_deref() {
        None | Some("Orphan" | "Background" | "Foreground") => Ok(()),
        Some(other) => Err(ApiError::invalid(
            GroupKind::new(META_GROUP, "DeleteOptions"),
            "",
            &[FieldError::not_supported(
                &Path::new("propagationPolicy"),
                other,
                &["Foreground", "Background", "Orphan"],
            )],
        )),
    }
}

/// The name rule of a resource (upstream's per-kind `ValidateXName`).
fn name_rule(resource: &Resource) -> validation::NameValidator {
    match (resource.group, resource.plural) {
        ("", "namespaces") => validation::name_is_dns_label,
        ("", "services") => validation::name_is_dns1035_label,
        // CSRs: upstream's `ValidateCertificateRequestName` accepts any name.
        ("rbac.authorization.k8s.io", _)
        | ("certificates.k8s.io", "certificatesigningrequests") => path_segment_name,
        _ => validation::name_is_dns_subdomain,
    }
}

/// RBAC objects only need names that work as a URL path segment.
fn path_segment_name(name: &str, _prefix: bool) -> Vec<String> {
    validation::is_valid_path_segment_name(name)
}

/// A resourceVersion as a revision; 400 for anything else.
fn parse_revision(rv: &str) -> Result<Revision> {
    rkube_storage::revision::parse_resource_version(rv).map_err(|_| invalid_resource_version(rv))
}

/// The read semantics of a get or list's `resourceVersion`.
fn read_at(rv: &str) -> Result<ReadAt> {
    Ok(match rv {
        "" => ReadAt::Latest,
        "0" => ReadAt::Any,
        n => ReadAt::NotOlderThan(parse_revision(n)?),
    })
}

/// Now plus `offset_seconds`, as Kubernetes writes times (RFC 3339, seconds, UTC, `Z`).
pub(crate) fn now(offset_seconds: i64) -> String {
    let t = jiff::Timestamp::now();
    format_time(
        t.checked_add(jiff::SignedDuration::from_secs(offset_seconds))
            .unwrap_or(t),
    )
}

pub(crate) fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategic_merge_patches_merge_by_the_objects_type() {
        let parse = |body: &[u8]| ParsedPatch::parse(PatchType::StrategicMerge, body);
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [
            {"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}});
        let patch =
            parse(br#"{"spec":{"containers":[{"name":"b","image":"2"}]}}"#).expect("parses");
        let patched = GenericRest::apply_patch(&pod, &patch).expect("applies");
        assert_eq!(
            patched["spec"]["containers"],
            json!([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}])
        );
        let empty = parse(b"null").expect("null is an empty patch");
        assert_eq!(GenericRest::apply_patch(&pod, &empty), Ok(pod.clone()));
        assert_eq!(parse(b"[]").unwrap_err().code(), 400);
        let custom = json!({"apiVersion": "example.com/v1", "kind": "Widget"});
        assert_eq!(
            GenericRest::apply_patch(&custom, &empty)
                .unwrap_err()
                .code(),
            415
        );
    }

    #[test]
    fn gc_finalizers_follow_the_policy() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(gc_finalizers(&f(&["a"]), None), None);
        assert_eq!(
            gc_finalizers(&f(&["a"]), Some("Orphan")),
            Some(f(&["a", "orphan"]))
        );
        assert_eq!(
            gc_finalizers(&f(&["orphan"]), Some("Foreground")),
            Some(f(&["foregroundDeletion"]))
        );
        assert_eq!(
            gc_finalizers(&f(&["orphan"]), Some("Background")),
            Some(f(&[]))
        );
        assert_eq!(gc_finalizers(&f(&["a"]), Some("Background")), None);
    }

    #[test]
    fn times_are_rfc3339_seconds_utc() {
        let t = now(0);
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z'));
    }
}
