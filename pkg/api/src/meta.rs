//! Accessors for `metadata` on an object held as JSON.
//!
//! Storage and the generic API paths never deserialize a whole typed object just to read its
//! name or resourceVersion; these helpers read and write the few metadata fields in place.

use serde_json::{Map, Value};

/// Returns the string at `metadata.<field>`, if the object has one.
pub fn field<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// `metadata.name`.
pub fn name(object: &Value) -> Option<&str> {
    field(object, "name")
}

/// `metadata.namespace`.
pub fn namespace(object: &Value) -> Option<&str> {
    field(object, "namespace")
}

/// `metadata.uid`.
pub fn uid(object: &Value) -> Option<&str> {
    field(object, "uid")
}

/// `metadata.resourceVersion`.
pub fn resource_version(object: &Value) -> Option<&str> {
    field(object, "resourceVersion")
}

/// `metadata.labels` as a map, if present.
pub fn labels(object: &Value) -> Option<&Map<String, Value>> {
    object.get("metadata")?.get("labels")?.as_object()
}

/// The `metadata` map of an object, created if missing. Returns `None` when the object itself is
/// not a JSON object or its `metadata` is not a map, which callers report as an invalid object.
pub fn metadata_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = object.as_object_mut()?;
    map.entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}

/// Sets `metadata.resourceVersion`, or removes it when `rv` is `None` (objects are stored
/// without it: the revision a backend assigns is the resourceVersion).
pub fn set_resource_version(object: &mut Value, rv: Option<&str>) -> bool {
    let Some(meta) = metadata_mut(object) else {
        return false;
    };
    match rv {
        Some(rv) => {
            meta.insert("resourceVersion".into(), Value::String(rv.into()));
        }
        None => {
            meta.remove("resourceVersion");
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_metadata_fields() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns", "uid": "u1",
            "resourceVersion": "7", "labels": {"app": "x"}}});
        assert_eq!(name(&obj), Some("a"));
        assert_eq!(namespace(&obj), Some("ns"));
        assert_eq!(uid(&obj), Some("u1"));
        assert_eq!(resource_version(&obj), Some("7"));
        assert_eq!(labels(&obj).and_then(|l| l.get("app")), Some(&json!("x")));
        assert_eq!(name(&json!({})), None);
        assert_eq!(name(&json!({"metadata": {"name": 3}})), None);
    }

    #[test]
    fn sets_and_clears_resource_version() {
        let mut obj = json!({"kind": "ConfigMap"});
        assert!(set_resource_version(&mut obj, Some("12")));
        assert_eq!(resource_version(&obj), Some("12"));
        assert!(set_resource_version(&mut obj, None));
        assert_eq!(resource_version(&obj), None);
        assert!(!set_resource_version(&mut json!([1]), Some("1")));
        assert!(!set_resource_version(
            &mut json!({"metadata": 5}),
            Some("1")
        ));
    }
}
