//! [`BindingRest`]: `POST pods/<name>/binding` and `POST bindings`, how a scheduler assigns a
//! pod to a node (upstream's `BindingREST` and `LegacyBindingREST`).
//!
//! The write skips the pod strategy on purpose: `spec.nodeName` is immutable through the pod
//! itself, and the binding also sets the `PodScheduled` condition in `status`.

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::{BoxFuture, ready};
use rkube_api::field::{self, FieldError, Path};
use rkube_api::meta;
use rkube_api::resources::{GroupResource, Resource};
use rkube_api::status::{ApiError, Reason};
use rkube_storage::{Object, Preconditions, StorageError, Update};
use serde_json::{Map, Value, json};

use super::{set_pod_condition, status_object};
use crate::errors::{Operation, reject, to_api_error};
use crate::generic::GenericRest;
use crate::rest::{Answer, CreateOptions, Rest, Result, Scope};

/// Conflicts of a binding name `pods/binding`, as upstream's `assignPod` wraps them.
const BINDING: GroupResource<'static> = GroupResource::new("", "pods/binding");

/// `pods/binding` (or the `bindings` collection). See the [module docs](self).
#[derive(Debug)]
pub struct BindingRest {
    resource: &'static Resource,
    pods: Arc<GenericRest>,
}

impl BindingRest {
    /// Binds pods of `pods`; `resource` is what is served (`pods` for the subresource,
    /// `bindings` for the collection).
    pub fn new(resource: &'static Resource, pods: Arc<GenericRest>) -> Self {
        BindingRest { resource, pods }
    }
}

/// Upstream's `ValidatePodBinding`.
fn validate(binding: &Value) -> Vec<FieldError> {
    let target = Path::new("target");
    let text = |f: &str| {
        binding
            .get("target")
            .and_then(|t| t.get(f))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let mut errs = Vec::new();
    let kind = text("kind");
    if !kind.is_empty() && kind != "Node" {
        errs.push(FieldError::not_supported(
            &target.child("kind"),
            kind,
            &["Node", "<empty>"],
        ));
    }
    if text("name").is_empty() {
        errs.push(FieldError::required(&target.child("name"), ""));
    }
    errs
}

/// The pod as bound to `node`, or why it cannot be (upstream's `setPodNodeAndMetadata`).
fn bind(pod: &Value, node: &str, annotations: &Map<String, Value>) -> Result<Value, String> {
    let name = meta::name(pod).unwrap_or_default();
    if meta::field(pod, "deletionTimestamp").is_some() {
        return Err(format!(
            "pod {name} is being deleted, cannot be assigned to a host"
        ));
    }
    let current = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !current.is_empty() {
        // Node names are DNS subdomains: Rust's quoting is Go's `%q` for them.
        return Err(format!(
            "pod {name} is already assigned to node {current:?}"
        ));
    }
    if pod
        .pointer("/spec/schedulingGates")
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty())
    {
        return Err(format!("pod {name} has non-empty .spec.schedulingGates"));
    }
    let mut pod = pod.clone();
    match pod.get_mut("spec").and_then(Value::as_object_mut) {
        Some(spec) => {
            spec.insert("nodeName".into(), node.into());
        }
        None => pod["spec"] = json!({ "nodeName": node }),
    }
    if let Some(meta) = meta::metadata_mut(&mut pod) {
        let target = meta.entry("annotations").or_insert_with(|| json!({}));
        if !target.is_object() {
            *target = json!({});
        }
        if let Some(target) = target.as_object_mut() {
            target.extend(annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    set_pod_condition(&mut pod, json!({"type": "PodScheduled", "status": "True"}));
    Ok(pod)
}

#[async_trait]
impl Rest for BindingRest {
    fn resource(&self) -> &'static Resource {
        self.resource
    }

    async fn create(
        &self,
        scope: &Scope,
        object: Value,
        options: &CreateOptions,
    ) -> Result<Answer<Object>> {
        let name = meta::name(&object).unwrap_or_default().to_string();
        let errs = validate(&object);
        if let Some(message) = field::aggregate(&errs) {
            // Upstream returns the aggregate as a plain error, which its handler answers 500.
            return Err(ApiError::new(500, Reason::InternalError, message, None));
        }
        let node = object
            .pointer("/target/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let annotations = object
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let precondition = |field: &str| {
            meta::field(&object, field)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let preconditions = Preconditions {
            uid: precondition("uid"),
            resource_version: precondition("resourceVersion"),
        };
        let key = self.pods.key(scope, &name)?;
        let pods = self.pods.served();
        let refuse = |message: String| ApiError::conflict(BINDING, &name, message);
        if options.dry_run {
            let current = self.pods.current(scope, &name).await?;
            preconditions
                .check(&current)
                .map_err(|e| to_api_error(e, pods, &name, Operation::Update))?;
            bind(current.value(), node, &annotations).map_err(refuse)?;
        } else {
            self.pods
                .store()
                .guaranteed_update(
                    &key,
                    &preconditions,
                    false,
                    &mut |current: Option<Object>| -> BoxFuture<'_, _> {
                        let result = match current {
                            Some(pod) => bind(pod.value(), node, &annotations)
                                .map(|value| Update { value, ttl: None })
                                .map_err(|m| reject(refuse(m))),
                            None => Err(reject(ApiError::not_found(pods.group_resource(), &name))),
                        };
                        Box::pin(ready(result))
                    },
                )
                .await
                .map_err(|e| match e {
                    StorageError::NotFound { .. } => {
                        ApiError::not_found(pods.group_resource(), &name)
                    }
                    e => to_api_error(e, pods, &name, Operation::Update),
                })?;
        }
        Ok(Answer::new(status_object(&key, "Success", None, 201)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_sets_the_node_annotations_and_condition() {
        let pod = json!({
            "metadata": {"name": "p", "annotations": {"a": "1"}},
            "spec": {"containers": []},
            "status": {"phase": "Pending"},
        });
        let annotations = json!({"b": "2"}).as_object().cloned().unwrap();
        let bound = bind(&pod, "n1", &annotations).unwrap();
        assert_eq!(bound["spec"]["nodeName"], "n1");
        assert_eq!(
            bound["metadata"]["annotations"],
            json!({"a": "1", "b": "2"})
        );
        assert_eq!(bound["status"]["conditions"][0]["type"], "PodScheduled");
        assert_eq!(bound["status"]["conditions"][0]["status"], "True");

        assert_eq!(
            bind(&bound, "n2", &Map::new()).unwrap_err(),
            r#"pod p is already assigned to node "n1""#
        );
        let gated =
            json!({"metadata": {"name": "g"}, "spec": {"schedulingGates": [{"name": "x"}]}});
        assert_eq!(
            bind(&gated, "n", &Map::new()).unwrap_err(),
            "pod g has non-empty .spec.schedulingGates"
        );
        let deleting =
            json!({"metadata": {"name": "d", "deletionTimestamp": "2020-01-01T00:00:00Z"}});
        assert_eq!(
            bind(&deleting, "n", &Map::new()).unwrap_err(),
            "pod d is being deleted, cannot be assigned to a host"
        );
    }

    #[test]
    fn binding_validation_messages() {
        let errs = validate(&json!({"target": {"kind": "Pod"}}));
        assert_eq!(
            field::aggregate(&errs).unwrap(),
            r#"[target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>", target.name: Required value]"#
        );
        assert!(validate(&json!({"target": {"name": "n"}})).is_empty());
    }
}
