//! Table output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): the columns and
//! cells kube-apiserver's printers produce for each built-in resource.

use jiff::Timestamp;
use rkube_api::resources::Resource;
use serde::Serialize;
use serde_json::Value;

/// One column, as `metav1.TableColumnDefinition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Header (`NAME`, `READY`; kubectl upper-cases it).
    pub name: &'static str,
    /// OpenAPI type: `string`, `integer`, `number`, `boolean`, `date`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// OpenAPI format: `name` for the name column, otherwise usually empty.
    pub format: &'static str,
    /// What the column shows.
    pub description: &'static str,
    /// 0: always shown; 1 and above: only with `-o wide`.
    pub priority: i32,
}

/// The default table of a resource without its own printer: name and creation time.
const DEFAULT_COLUMNS: &[Column] = &[
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        description: "Name must be unique within a namespace. Is required when creating \
                      resources, although some resources may allow a client to request the \
                      generation of an appropriate name automatically. Name is primarily \
                      intended for creation idempotence and configuration definition. Cannot \
                      be updated. More info: \
                      https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        priority: 0,
    },
    Column {
        name: "Created At",
        type_: "date",
        format: "",
        description: "CreationTimestamp is a timestamp representing the server time when this \
                      object was created. It is not guaranteed to be set in happens-before \
                      order across separate operations. Clients may not set this value. It is \
                      represented in RFC3339 form and is in UTC.\n\nPopulated by the system. \
                      Read-only. Null for lists. More info: \
                      https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        priority: 0,
    },
];

/// The column definitions of `resource`'s table.
pub fn columns(_resource: &Resource) -> &'static [Column] {
    DEFAULT_COLUMNS
}

/// The cells of one row for `object`, one per column of [`columns`], as of `now`
/// (ages are relative to it).
pub fn cells(_resource: &Resource, object: &Value, _now: Timestamp) -> Vec<Value> {
    let meta = |field| rkube_api::meta::field(object, field).map_or(Value::Null, Value::from);
    vec![meta("name"), meta("creationTimestamp")]
}
