//! [`ScaleRest`]: the `scale` subresource (deployments, replicasets, statefulsets,
//! replicationcontrollers), an `autoscaling/v1` `Scale` view of the parent's replicas.
//!
//! Reads build the Scale from the parent; writes (update or patch of the Scale) set the
//! parent's `spec.replicas` through the parent's own update path, so generation, validation and
//! the resourceVersion check behave as for a write of the parent itself. A server-side apply
//! runs on the Scale view, whose managedFields are those of the parent's entries that own the
//! replicas (upstream's `ScaleHandler`), and hands the outcome back to the parent's entries.

// `ApiError` is the error of the `Rest` contract: boxing it inside only to unbox it at the
// boundary would buy nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use rkube_api::field::{FieldError, Path};
use rkube_api::meta;
use rkube_api::resources::{GroupKind, Resource};
use rkube_api::selector::LabelSelector;
use rkube_api::status::ApiError;
use rkube_storage::Object;
use serde_json::{Value, json};

use rkube_api::apply::fieldpath;
use rkube_api::apply::managed::{self, Managed};

use crate::field_manager::{Track, apply_scale, check_apply_body, parse_apply};
use crate::generic::{GenericRest, Mode, ParsedPatch, now, object_at};
use crate::rest::{
    Answer, GetOptions, PatchOptions, PatchType, Rest, Result, Scope, UpdateOptions,
};

const SCALE_API_VERSION: &str = "autoscaling/v1";
const SCALE_KIND: &str = "Scale";

/// The resources that serve `scale` through this type.
pub const SCALABLE: &[(&str, &str)] = &[
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("", "replicationcontrollers"),
];

/// The `scale` subresource of a [`GenericRest`].
#[derive(Debug)]
pub struct ScaleRest {
    parent: Arc<GenericRest>,
}

impl ScaleRest {
    /// The scale subresource of `parent`; `None` if its resource has no scale.
    pub fn new(parent: Arc<GenericRest>) -> Option<Self> {
        let r = parent.served();
        SCALABLE
            .contains(&(r.group, r.plural))
            .then_some(ScaleRest { parent })
    }

    /// The Scale of a stored parent object.
    fn scale_of(&self, parent: &Object) -> Result<Object> {
        let value = parent.value();
        let replicas = value
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let status_replicas = value
            .pointer("/status/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let selector = selector_string(self.parent.served(), value.pointer("/spec/selector"))?;
        let mut metadata = serde_json::Map::new();
        for field in ["name", "namespace", "uid", "creationTimestamp"] {
            if let Some(v) = value.get("metadata").and_then(|m| m.get(field)) {
                metadata.insert(field.into(), v.clone());
            }
        }
        let scale = json!({
            "apiVersion": SCALE_API_VERSION,
            "kind": SCALE_KIND,
            "metadata": metadata,
            "spec": {"replicas": replicas},
            "status": {"replicas": status_replicas, "selector": selector},
        });
        object_at(parent.key(), scale, parent.revision())
    }

    /// Server-side apply of a Scale by the manager of `options`.
    async fn apply_patch(
        &self,
        scope: &Scope,
        name: &str,
        body: &[u8],
        options: &PatchOptions,
    ) -> Result<Answer<(Object, bool)>> {
        let config = parse_apply(body)?;
        let mut track = Track::new(
            options.field_manager.as_deref(),
            options.user_agent.as_deref(),
            "scale",
        );
        track.applied = true;
        // The replicas are `.spec.replicas` in every scalable kind and in the Scale.
        let replicas = fieldpath::Path::fields(&["spec", "replicas"]);
        let parent_version = self.parent.served().api_version();
        let mut warnings = Vec::new();
        let (parent, _) = self
            .parent
            .write_tracked(
                scope,
                name,
                options.dry_run,
                false,
                Mode::Main,
                &track,
                &mut |current| {
                    let current = current.ok_or_else(|| not_found(self, name))?;
                    let owners = Managed::decode(current.value()).map_err(ApiError::internal)?;
                    let mut view = self.scale_of(current)?.value().clone();
                    managed::to_subresource(&owners, &replicas, &replicas, SCALE_API_VERSION)
                        .store(&mut view);
                    let applied = apply_scale(&track, &view, &config, options.force, &now(0))?;
                    warnings = check_apply_body(body, options.field_validation)?;
                    let applied_owners = Managed::decode(&applied).map_err(ApiError::internal)?;
                    let mut object = self.apply(current, applied)?;
                    managed::to_parent(
                        &owners,
                        &applied_owners,
                        &replicas,
                        &replicas,
                        parent_version.as_ref(),
                    )
                    .store(&mut object);
                    Ok(object)
                },
            )
            .await?;
        // A scale never creates its parent.
        Ok(Answer {
            value: (self.scale_of(&parent)?, false),
            warnings,
        })
    }

    /// The parent with the replicas of `scale` (already patched, if a patch); the Scale's
    /// resourceVersion, when set, must be the parent's (checked by the update path).
    fn apply(&self, parent: &Object, mut scale: Value) -> Result<Value> {
        GenericRest::check_type(&mut scale, SCALE_API_VERSION, SCALE_KIND)?;
        let name = meta::name(&scale).unwrap_or("").to_string();
        let replicas = match scale.pointer("/spec/replicas") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_i64().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal {v} into Go struct field ScaleSpec.spec.replicas of type int32"
                ))
            })?,
        };
        if replicas < 0 {
            return Err(ApiError::invalid(
                GroupKind::new("autoscaling", SCALE_KIND),
                &name,
                &[FieldError::invalid(
                    &Path::new("spec").child("replicas"),
                    replicas,
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let mut object = parent.value().clone();
        object["spec"]["replicas"] = json!(replicas);
        if let Some(rv) = meta::resource_version(&scale).filter(|rv| !rv.is_empty()) {
            meta::set_resource_version(&mut object, Some(rv));
        }
        Ok(object)
    }
}

/// `status.selector` as the string form of the parent's selector: a `LabelSelector` for the
/// apps kinds, a plain label map for replication controllers.
fn selector_string(resource: &Resource, selector: Option<&Value>) -> Result<String> {
    let selector = match selector {
        None | Some(Value::Null) => return Ok(String::new()),
        Some(s) => s,
    };
    let parsed = if resource.group.is_empty() {
        let labels: std::collections::BTreeMap<String, String> =
            serde_json::from_value(selector.clone()).map_err(ApiError::internal)?;
        metav1::LabelSelector {
            match_labels: Some(labels),
            ..Default::default()
        }
    } else {
        serde_json::from_value(selector.clone()).map_err(ApiError::internal)?
    };
    LabelSelector::from_label_selector(Some(&parsed))
        .map(|s| s.to_string())
        .map_err(ApiError::internal)
}

#[async_trait]
impl Rest for ScaleRest {
    fn resource(&self) -> &'static Resource {
        self.parent.served()
    }

    async fn get(&self, scope: &Scope, name: &str, options: &GetOptions) -> Result<Object> {
        let parent = self.parent.get(scope, name, options).await?;
        self.scale_of(&parent)
    }

    async fn update(
        &self,
        scope: &Scope,
        name: &str,
        object: Value,
        options: &UpdateOptions,
    ) -> Result<Answer<(Object, bool)>> {
        let got = meta::name(&object).unwrap_or("");
        if got != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({got}) does not match the name on the URL ({name})"
            )));
        }
        let (parent, _) = self
            .parent
            .write_tracked(
                scope,
                name,
                options.dry_run,
                false,
                Mode::Main,
                &Track::new(
                    options.field_manager.as_deref(),
                    options.user_agent.as_deref(),
                    "scale",
                ),
                &mut |current| {
                    let current = current.ok_or_else(|| not_found(self, name))?;
                    self.apply(current, object.clone())
                },
            )
            .await?;
        Ok(Answer::new((self.scale_of(&parent)?, false)))
    }

    async fn patch(
        &self,
        scope: &Scope,
        name: &str,
        patch_type: PatchType,
        patch: &[u8],
        options: &PatchOptions,
    ) -> Result<Answer<(Object, bool)>> {
        if patch_type == PatchType::Apply {
            return self.apply_patch(scope, name, patch, options).await;
        }
        let patch = ParsedPatch::parse(patch_type, patch)?;
        let mut warnings = Vec::new();
        let (parent, _) = self
            .parent
            .write_tracked(
                scope,
                name,
                options.dry_run,
                false,
                Mode::Main,
                &Track::new(
                    options.field_manager.as_deref(),
                    options.user_agent.as_deref(),
                    "scale",
                ),
                &mut |current| {
                    let current = current.ok_or_else(|| not_found(self, name))?;
                    let scale = self.scale_of(current)?;
                    let patched =
                        GenericRest::patched(scale.value(), &patch, options, &mut warnings)?;
                    self.apply(current, patched)
                },
            )
            .await?;
        // A scale never creates its parent.
        Ok(Answer {
            value: (self.scale_of(&parent)?, false),
            warnings,
        })
    }
}

fn not_found(rest: &ScaleRest, name: &str) -> ApiError {
    ApiError::not_found(rest.parent.served().group_resource(), name)
}
