//! How lists and objects of built-in kinds merge, published as kube-apiserver publishes it:
//! `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-patch-strategy`,
//! `x-kubernetes-patch-merge-key` and `x-kubernetes-map-type`. k8s-openapi's schemas do not
//! carry them; the source is the table of upstream's types in [`rkube_api::types`], the same
//! one strategic merge patch merges by, so what clients read and what the server does agree.

use rkube_api::types::{ListType, TypeRef};
use serde_json::{Map, Value, json};

/// Writes the extensions onto the schemas in `definitions` (keyed by schema name): on each
/// property as its field declares them, and `x-kubernetes-map-type: atomic` on the schemas of
/// `+structType=atomic` types.
pub(crate) fn decorate(definitions: &mut Map<String, Value>) {
    for t in TypeRef::all() {
        let Some(Value::Object(schema)) = definitions.get_mut(&t.definition_name()) else {
            continue;
        };
        if t.is_atomic() {
            schema.insert("x-kubernetes-map-type".into(), "atomic".into());
        }
        let Some(Value::Object(properties)) = schema.get_mut("properties") else {
            continue;
        };
        for field in t.fields() {
            let Some(Value::Object(property)) = properties.get_mut(field.name()) else {
                continue;
            };
            if let Some(list_type) = field.list_type() {
                property.insert("x-kubernetes-list-type".into(), list_type.as_str().into());
                if list_type == ListType::Map {
                    property.insert(
                        "x-kubernetes-list-map-keys".into(),
                        json!(field.list_map_keys()),
                    );
                }
            }
            if let Some(key) = field.patch_merge_key() {
                property.insert("x-kubernetes-patch-merge-key".into(), key.into());
            }
            if let Some(strategy) = field.patch_strategy() {
                property.insert("x-kubernetes-patch-strategy".into(), strategy.into());
            }
            if let Some(map_type) = field.map_type() {
                property.insert("x-kubernetes-map-type".into(), map_type.as_str().into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::schemas::V3;
    use super::*;

    #[test]
    fn every_marked_field_is_published() {
        let mut published = 0;
        for t in TypeRef::all() {
            let Some(schema) = V3.get(&t.definition_name()) else {
                continue;
            };
            for field in t.fields() {
                let marked = field.list_type().is_some()
                    || field.patch_strategy().is_some()
                    || field.map_type().is_some();
                if !marked {
                    continue;
                }
                // A JSON name that k8s-openapi spells otherwise would lose its extensions.
                let property = &schema["properties"][field.name()];
                assert!(property.is_object(), "{t:?}.{} not in schema", field.name());
                if let Some(list_type) = field.list_type() {
                    assert_eq!(property["x-kubernetes-list-type"], list_type.as_str());
                }
                published += 1;
            }
        }
        assert!(published > 250, "only {published} marked fields");
    }

    #[test]
    fn extensions_match_upstream() {
        let prop = |schema: &str, field: &str| V3[schema]["properties"][field].clone();
        let volumes = prop("io.k8s.api.core.v1.PodSpec", "volumes");
        assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
        assert_eq!(volumes["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(volumes["x-kubernetes-list-map-keys"], json!(["name"]));
        let ports = prop("io.k8s.api.core.v1.ServiceSpec", "ports");
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["port", "protocol"])
        );
        let tolerations = prop("io.k8s.api.core.v1.PodSpec", "tolerations");
        assert_eq!(tolerations["x-kubernetes-list-type"], "atomic");
        assert!(tolerations.get("x-kubernetes-patch-strategy").is_none());
        let selector = prop("io.k8s.api.core.v1.PodSpec", "nodeSelector");
        assert_eq!(selector["x-kubernetes-map-type"], "atomic");
        assert_eq!(
            V3["io.k8s.api.core.v1.ObjectReference"]["x-kubernetes-map-type"],
            "atomic"
        );
        let strategy = prop("io.k8s.api.apps.v1.DeploymentSpec", "strategy");
        assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    }
}
