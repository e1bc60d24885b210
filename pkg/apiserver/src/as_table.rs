//! Server-side transformations of objects and lists: `meta.k8s.io/v1` `Table` (kubectl's
//! `get` output, cells from [`crate::table`]), `PartialObjectMetadata` and
//! `PartialObjectMetadataList` (metadata-only clients), as upstream's `asTable` and
//! `asPartialObjectMetadata[List]`.

use jiff::Timestamp;
use rkube_api::resources::Resource;
use rkube_api::status::ApiError;

use crate::response::Failure;
use serde_json::{Map, Value, json};

use crate::options::Query;
use crate::table;

/// What each Table row carries in `object` (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Include {
    /// Nothing.
    None,
    /// A `PartialObjectMetadata` (upstream's default).
    Metadata,
    /// The whole object.
    Object,
}

impl Include {
    /// `includeObject` from the query; an unknown value is upstream's 400.
    pub fn from_query(q: &Query) -> Result<Self, Failure> {
        match q.get("includeObject").unwrap_or("") {
            "" | "Metadata" => Ok(Include::Metadata),
            "Object" => Ok(Include::Object),
            "None" => Ok(Include::None),
            other => Err(ApiError::bad_request(format!(
                "unrecognized includeObject value: {}",
                Value::from(other)
            ))
            .into()),
        }
    }
}

/// List metadata shared by lists and tables.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListMeta {
    /// `resourceVersion`.
    pub resource_version: String,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `remainingItemCount`.
    pub remaining_item_count: Option<u64>,
}

impl ListMeta {
    /// As JSON.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.resource_version.is_empty() {
            m.insert(
                "resourceVersion".into(),
                self.resource_version.clone().into(),
            );
        }
        if let Some(c) = &self.continue_token {
            m.insert("continue".into(), c.clone().into());
        }
        if let Some(n) = self.remaining_item_count {
            m.insert("remainingItemCount".into(), n.into());
        }
        Value::Object(m)
    }
}

/// `PartialObjectMetadata` of an object.
pub(crate) fn partial_object_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// `PartialObjectMetadataList` of a list.
pub(crate) fn partial_object_metadata_list<'a>(
    items: impl Iterator<Item = &'a Value>,
    meta: &ListMeta,
) -> Value {
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta.to_json(),
        "items": items.map(partial_object_metadata).collect::<Vec<_>>(),
    })
}

/// A Table of `objects`. `headers` false leaves out the column definitions (watch events
/// after the first, as upstream).
pub(crate) fn table<'a>(
    resource: &Resource,
    objects: impl Iterator<Item = &'a Value>,
    meta: &ListMeta,
    include: Include,
    headers: bool,
) -> Value {
    let now = Timestamp::now();
    let rows: Vec<Value> = objects
        .map(|o| {
            let mut row = Map::new();
            row.insert("cells".into(), table::cells(resource, o, now).into());
            let object = match include {
                Include::None => Value::Null,
                Include::Metadata => partial_object_metadata(o),
                Include::Object => o.clone(),
            };
            row.insert("object".into(), object);
            Value::Object(row)
        })
        .collect();
    let columns = if headers {
        serde_json::to_value(table::columns(resource)).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta.to_json(),
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm() -> Value {
        json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a", "namespace": "d",
               "creationTimestamp": "2024-01-01T00:00:00Z", "resourceVersion": "5"}, "data": {"k": "v"}})
    }

    #[test]
    fn table_rows_follow_include_object() {
        let r = rkube_api::resources::lookup("", "v1", "configmaps").expect("configmaps");
        let o = cm();
        let meta = ListMeta {
            resource_version: "9".into(),
            ..ListMeta::default()
        };
        let t = table(r, std::iter::once(&o), &meta, Include::Metadata, true);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], json!({"resourceVersion": "9"}));
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        assert_eq!(t["rows"][0]["cells"][0], "a");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "a");
        let t = table(r, std::iter::once(&o), &meta, Include::Object, false);
        assert_eq!(t["rows"][0]["object"]["data"], json!({"k": "v"}));
        assert_eq!(t["columnDefinitions"], Value::Null);
        let t = table(r, std::iter::once(&o), &meta, Include::None, true);
        assert_eq!(t["rows"][0]["object"], Value::Null);
    }

    #[test]
    fn include_object_values() {
        let q = Query::new(vec![("includeObject".into(), "All".into())]);
        let e = Include::from_query(&q).unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (400, r#"unrecognized includeObject value: "All""#)
        );
        assert_eq!(
            Include::from_query(&Query::default()),
            Ok(Include::Metadata)
        );
    }
}
