//! The paths of a group-version: every resource's collection, item, watch and subresource
//! paths with upstream's operations (`operationId`, `x-kubernetes-action`,
//! `x-kubernetes-group-version-kind`, query parameters, bodies and responses), rendered in either
//! dialect. Everything comes from the resource table, so what the documents list is what the
//! router serves.

use rkube_api::resources::{Resource, Subresource};
use serde_json::{Map, Value, json};

use super::Dialect;
use super::schemas::{self, API_RESOURCE_LIST, DELETE_OPTIONS, PATCH, STATUS, WATCH_EVENT};

/// A query parameter: name, type, description.
type Param = (&'static str, &'static str, &'static str);

const ALLOW_WATCH_BOOKMARKS: Param = (
    "allowWatchBookmarks",
    "boolean",
    "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
);
const CONTINUE: Param = (
    "continue",
    "string",
    "The continue option should be set when retrieving more results from the server.",
);
const DRY_RUN: Param = (
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: Param = (
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes.",
);
const FIELD_SELECTOR: Param = (
    "fieldSelector",
    "string",
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
const FIELD_VALIDATION: Param = (
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn (the default) - Strict",
);
const FORCE: Param = (
    "force",
    "boolean",
    "Force is going to \"force\" Apply requests. Force flag must be unset for non-apply patch requests.",
);
const GRACE_PERIOD_SECONDS: Param = (
    "gracePeriodSeconds",
    "integer",
    "The duration in seconds before the object should be deleted.",
);
const LABEL_SELECTOR: Param = (
    "labelSelector",
    "string",
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
const LIMIT: Param = (
    "limit",
    "integer",
    "limit is a maximum number of responses to return for a list call.",
);
const ORPHAN_DEPENDENTS: Param = (
    "orphanDependents",
    "boolean",
    "Deprecated: please use the PropagationPolicy. Should the dependent objects be orphaned.",
);
const PRETTY: Param = (
    "pretty",
    "string",
    "If 'true', then the output is pretty printed.",
);
const PROPAGATION_POLICY: Param = (
    "propagationPolicy",
    "string",
    "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
);
const RESOURCE_VERSION: Param = (
    "resourceVersion",
    "string",
    "resourceVersion sets a constraint on what resource versions a request may be served from.",
);
const RESOURCE_VERSION_MATCH: Param = (
    "resourceVersionMatch",
    "string",
    "resourceVersionMatch determines how resourceVersion is applied to list calls.",
);
const SEND_INITIAL_EVENTS: Param = (
    "sendInitialEvents",
    "boolean",
    "`sendInitialEvents=true` may be set together with `watch=true` to begin the watch with the current state of the collection.",
);
const TIMEOUT_SECONDS: Param = (
    "timeoutSeconds",
    "integer",
    "Timeout for the list/watch call.",
);
const WATCH: Param = (
    "watch",
    "boolean",
    "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
);

/// The parameters of each operation, in upstream's (alphabetical) order.
const LIST_PARAMS: &[Param] = &[
    ALLOW_WATCH_BOOKMARKS,
    CONTINUE,
    FIELD_SELECTOR,
    LABEL_SELECTOR,
    LIMIT,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
    WATCH,
];
const WRITE_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
const PATCH_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];
const DELETE_PARAMS: &[Param] = &[
    DRY_RUN,
    GRACE_PERIOD_SECONDS,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
];
const DELETE_COLLECTION_PARAMS: &[Param] = &[
    CONTINUE,
    DRY_RUN,
    FIELD_SELECTOR,
    GRACE_PERIOD_SECONDS,
    LABEL_SELECTOR,
    LIMIT,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
];

/// What the API answers objects in; lists and watches also stream.
const OBJECT_MEDIA: &[&str] = &[
    "application/json",
    "application/vnd.kubernetes.protobuf",
    "application/yaml",
];
const LIST_MEDIA: &[&str] = &[
    "application/json",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf",
    "application/vnd.kubernetes.protobuf;stream=watch",
    "application/yaml",
];
const WATCH_MEDIA: &[&str] = &[
    "application/json",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
const PATCH_MEDIA: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// Subresources that stream a connection instead of exchanging objects.
const CONNECT: &[&str] = &["attach", "exec", "portforward", "proxy"];

/// What an operation sends or answers.
#[derive(Clone, Copy)]
enum Payload<'a> {
    /// A component schema.
    Schema(&'a str),
    /// A plain string (logs, connections).
    Text,
}

/// One operation before rendering.
struct Op<'a> {
    method: &'static str,
    id: String,
    description: String,
    action: &'static str,
    gvk: (&'a str, &'a str, &'a str),
    params: &'static [Param],
    body: Option<(Payload<'a>, &'static [&'static str], bool)>,
    responses: &'static [(u16, &'static str)],
    payload: Payload<'a>,
    media: &'static [&'static str],
}

/// Upstream's name of a group in operation ids: `rbac.authorization.k8s.io` ->
/// `RbacAuthorization`, core -> `Core`.
pub(crate) fn group_id(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .trim_end_matches(".k8s.io")
        .split('.')
        .map(upper_first)
        .collect()
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

/// The operations' tag: `apps_v1`, `core_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    let g = group_id(group);
    let mut chars = g.chars();
    let first = chars.next().map(|c| c.to_ascii_lowercase());
    format!(
        "{}{}_{version}",
        first.into_iter().collect::<String>(),
        chars.as_str()
    )
}

/// The URL prefix of a group-version: `/api/v1`, `/apis/apps/v1`.
pub(crate) fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// The paths of one group-version, keyed by path.
pub(crate) fn group_version(group: &str, version: &str, dialect: Dialect) -> Map<String, Value> {
    let gv = format!("{}{}", group_id(group), upper_first(version));
    let tag = tag(group, version);
    let base = prefix(group, version);
    let mut paths = Map::new();
    let discovery = Op {
        method: "get",
        id: format!("get{gv}APIResources"),
        description: "get available resources".into(),
        action: "",
        gvk: ("", "", ""),
        params: &[],
        body: None,
        responses: &[(200, "OK"), (401, "Unauthorized")],
        payload: Payload::Schema(API_RESOURCE_LIST),
        media: OBJECT_MEDIA,
    };
    paths.insert(
        format!("{base}/"),
        item(&[], false, vec![discovery], &tag, dialect),
    );
    for r in rkube_api::resources::resources_in(group, version) {
        resource_paths(r, &gv, &base, &tag, dialect, &mut paths);
    }
    paths
}

/// The one-operation document of a discovery path (`/api/`, `/apis/`, `/apis/<group>/`).
pub(crate) fn discovery(path: &str, id: &str, schema: &str, tag: &str, dialect: Dialect) -> Value {
    let op = Op {
        method: "get",
        id: id.into(),
        description: "get available API versions".into(),
        action: "",
        gvk: ("", "", ""),
        params: &[],
        body: None,
        responses: &[(200, "OK"), (401, "Unauthorized")],
        payload: Payload::Schema(schema),
        media: OBJECT_MEDIA,
    };
    let mut paths = Map::new();
    paths.insert(path.into(), item(&[], false, vec![op], tag, dialect));
    Value::Object(paths)
}

fn resource_paths(
    r: &Resource,
    gv: &str,
    base: &str,
    tag: &str,
    dialect: Dialect,
    paths: &mut Map<String, Value>,
) {
    let Some(kind) = schemas::find(r.group, r.version, r.kind) else {
        return;
    };
    let name = (kind.name)();
    let list = schemas::list_name(kind);
    let gvk = (r.group, r.version, r.kind);
    let (scope_id, ns_path, ns_params): (&str, String, &[(&str, &str)]) = if r.namespaced {
        (
            "Namespaced",
            "/namespaces/{namespace}".into(),
            &[(
                "namespace",
                "object name and auth scope, such as for teams and projects",
            )],
        )
    } else {
        ("", String::new(), &[])
    };
    let k = r.kind;
    let name_doc = format!("name of the {k}");
    let item_params: Vec<(&str, &str)> = [("name", name_doc.as_str())]
        .into_iter()
        .chain(ns_params.iter().copied())
        .collect();
    let object = Payload::Schema(&name);
    let deleted = if returns_deleted_object(r) {
        object
    } else {
        Payload::Schema(STATUS)
    };
    let op = |method, id: String, description: String, action| Op {
        method,
        id,
        description,
        action,
        gvk,
        params: &[],
        body: None,
        responses: &[(200, "OK"), (401, "Unauthorized")],
        payload: object,
        media: OBJECT_MEDIA,
    };

    // The collection.
    let mut collection = Vec::new();
    if r.has_verb("list") {
        collection.push(Op {
            params: LIST_PARAMS,
            payload: Payload::Schema(&list),
            media: LIST_MEDIA,
            ..op(
                "get",
                format!("list{gv}{scope_id}{k}"),
                format!("list or watch objects of kind {k}"),
                "list",
            )
        });
    }
    if r.has_verb("create") {
        collection.push(Op {
            params: WRITE_PARAMS,
            body: Some((object, &["*/*"], true)),
            responses: &[
                (200, "OK"),
                (201, "Created"),
                (202, "Accepted"),
                (401, "Unauthorized"),
            ],
            ..op(
                "post",
                format!("create{gv}{scope_id}{k}"),
                format!("create a {k}"),
                "post",
            )
        });
    }
    if r.has_verb("deletecollection") {
        collection.push(Op {
            params: DELETE_COLLECTION_PARAMS,
            body: Some((Payload::Schema(DELETE_OPTIONS), &["*/*"], false)),
            payload: Payload::Schema(STATUS),
            ..op(
                "delete",
                format!("delete{gv}Collection{scope_id}{k}"),
                format!("delete collection of {k}"),
                "deletecollection",
            )
        });
    }
    let plural = r.plural;
    let collection_path = format!("{base}{ns_path}/{plural}");
    if !collection.is_empty() {
        paths.insert(
            collection_path.clone(),
            item(ns_params, true, collection, tag, dialect),
        );
    }

    // The item.
    let mut ops = Vec::new();
    if r.has_verb("get") {
        ops.push(op(
            "get",
            format!("read{gv}{scope_id}{k}"),
            format!("read the specified {k}"),
            "get",
        ));
    }
    if r.has_verb("update") {
        ops.push(Op {
            params: WRITE_PARAMS,
            body: Some((object, &["*/*"], true)),
            responses: &[(200, "OK"), (201, "Created"), (401, "Unauthorized")],
            ..op(
                "put",
                format!("replace{gv}{scope_id}{k}"),
                format!("replace the specified {k}"),
                "put",
            )
        });
    }
    if r.has_verb("patch") {
        ops.push(Op {
            params: PATCH_PARAMS,
            body: Some((Payload::Schema(PATCH), PATCH_MEDIA, true)),
            responses: &[(200, "OK"), (201, "Created"), (401, "Unauthorized")],
            ..op(
                "patch",
                format!("patch{gv}{scope_id}{k}"),
                format!("partially update the specified {k}"),
                "patch",
            )
        });
    }
    if r.has_verb("delete") {
        ops.push(Op {
            params: DELETE_PARAMS,
            body: Some((Payload::Schema(DELETE_OPTIONS), &["*/*"], false)),
            responses: &[(200, "OK"), (202, "Accepted"), (401, "Unauthorized")],
            payload: deleted,
            ..op(
                "delete",
                format!("delete{gv}{scope_id}{k}"),
                format!("delete a {k}"),
                "delete",
            )
        });
    }
    let item_path = format!("{collection_path}/{{name}}");
    if !ops.is_empty() {
        paths.insert(
            item_path.clone(),
            item(&item_params, true, ops, tag, dialect),
        );
    }

    // Watches (deprecated paths upstream still serves) and the all-namespaces list.
    if r.has_verb("watch") {
        let watch = |id: String, description: String, action| Op {
            payload: Payload::Schema(WATCH_EVENT),
            media: WATCH_MEDIA,
            ..op("get", id, description, action)
        };
        let watch_base = format!("{base}/watch{ns_path}/{plural}");
        let watch_list = watch(
            format!("watch{gv}{scope_id}{k}List"),
            format!(
                "watch individual changes to a list of {k}. deprecated: use the 'watch' parameter with a list operation instead."
            ),
            "watchlist",
        );
        paths.insert(
            watch_base.clone(),
            watch_item(ns_params, watch_list, tag, dialect),
        );
        let watch_one = watch(
            format!("watch{gv}{scope_id}{k}"),
            format!(
                "watch changes to an object of kind {k}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."
            ),
            "watch",
        );
        paths.insert(
            format!("{watch_base}/{{name}}"),
            watch_item(&item_params, watch_one, tag, dialect),
        );
        if r.namespaced {
            let all = watch(
                format!("watch{gv}{k}ListForAllNamespaces"),
                format!(
                    "watch individual changes to a list of {k}. deprecated: use the 'watch' parameter with a list operation instead."
                ),
                "watchlist",
            );
            paths.insert(
                format!("{base}/watch/{plural}"),
                watch_item(&[], all, tag, dialect),
            );
        }
    }
    if r.namespaced && r.has_verb("list") {
        let all = Op {
            payload: Payload::Schema(&list),
            media: LIST_MEDIA,
            ..op(
                "get",
                format!("list{gv}{k}ForAllNamespaces"),
                format!("list or watch objects of kind {k}"),
                "list",
            )
        };
        paths.insert(
            format!("{base}/{plural}"),
            watch_item(&[], all, tag, dialect),
        );
    }

    for sub in r.subresources {
        subresource_paths(
            r,
            sub,
            gv,
            scope_id,
            &item_path,
            &item_params,
            tag,
            dialect,
            paths,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn subresource_paths(
    r: &Resource,
    sub: &Subresource,
    gv: &str,
    scope_id: &str,
    item_path: &str,
    item_params: &[(&str, &str)],
    tag: &str,
    dialect: Dialect,
    paths: &mut Map<String, Value>,
) {
    let (g, v) = sub.kind_group_version.unwrap_or((r.group, r.version));
    let name = schemas::find(g, v, sub.kind).map(|k| (k.name)());
    let k = r.kind;
    let s = upper_first(sub.name);
    let path = format!("{item_path}/{}", sub.name);
    let gvk = (g, v, sub.kind);
    if CONNECT.contains(&sub.name) {
        let methods = [
            ("get", "GET", "Get"),
            ("create", "POST", "Post"),
            ("update", "PUT", "Put"),
            ("delete", "DELETE", "Delete"),
            ("patch", "PATCH", "Patch"),
        ];
        let ops = |with_path: &str| {
            methods
                .iter()
                .filter(|(verb, ..)| sub.verbs.contains(verb))
                .map(|(_, method, m)| Op {
                    method: method_name(method),
                    id: format!("connect{gv}{m}{scope_id}{k}{s}{with_path}"),
                    description: format!("connect {method} requests to {} of {k}", sub.name),
                    action: "connect",
                    gvk,
                    params: &[],
                    body: None,
                    responses: &[(200, "OK"), (401, "Unauthorized")],
                    payload: Payload::Text,
                    media: &["*/*"],
                })
                .collect::<Vec<_>>()
        };
        paths.insert(
            path.clone(),
            item(item_params, false, ops(""), tag, dialect),
        );
        if sub.name == "proxy" {
            let mut params = item_params.to_vec();
            params.push(("path", "path to the resource"));
            paths.insert(
                format!("{path}/{{path}}"),
                item(&params, false, ops("WithPath"), tag, dialect),
            );
        }
        return;
    }
    let object = match (&name, sub.name) {
        (_, "log") => Payload::Text,
        (Some(n), _) => Payload::Schema(n),
        (None, _) => return,
    };
    let op = |method, verb: &str, action, params, body, responses| Op {
        method,
        id: format!("{verb}{gv}{scope_id}{k}{s}"),
        description: format!("{verb} {} of the specified {k}", sub.name),
        action,
        gvk: if sub.name == "log" {
            (r.group, r.version, r.kind)
        } else {
            gvk
        },
        params,
        body,
        responses,
        payload: object,
        media: if sub.name == "log" {
            &["text/plain"]
        } else {
            OBJECT_MEDIA
        },
    };
    let mut ops = Vec::new();
    if sub.verbs.contains(&"get") {
        ops.push(op(
            "get",
            "read",
            "get",
            &[],
            None,
            &[(200, "OK"), (401, "Unauthorized")],
        ));
    }
    if sub.verbs.contains(&"create") {
        ops.push(op(
            "post",
            "create",
            "post",
            WRITE_PARAMS,
            Some((object, &["*/*"][..], true)),
            &[
                (200, "OK"),
                (201, "Created"),
                (202, "Accepted"),
                (401, "Unauthorized"),
            ],
        ));
    }
    if sub.verbs.contains(&"update") {
        ops.push(op(
            "put",
            "replace",
            "put",
            WRITE_PARAMS,
            Some((object, &["*/*"][..], true)),
            &[(200, "OK"), (201, "Created"), (401, "Unauthorized")],
        ));
    }
    if sub.verbs.contains(&"patch") {
        ops.push(op(
            "patch",
            "patch",
            "patch",
            PATCH_PARAMS,
            Some((Payload::Schema(PATCH), PATCH_MEDIA, true)),
            &[(200, "OK"), (201, "Created"), (401, "Unauthorized")],
        ));
    }
    if !ops.is_empty() {
        paths.insert(path, item(item_params, true, ops, tag, dialect));
    }
}

fn method_name(method: &str) -> &'static str {
    match method {
        "POST" => "post",
        "PUT" => "put",
        "DELETE" => "delete",
        "PATCH" => "patch",
        _ => "get",
    }
}

/// Resources whose delete answers the deleted object rather than a `Status`, as upstream's
/// `ReturnDeletedObject` (the handler answers accordingly).
fn returns_deleted_object(r: &Resource) -> bool {
    crate::handlers::returns_deleted_object(r)
}

/// A path whose only operation is a watch or an all-namespaces list: upstream lists the query
/// parameters on the path.
fn watch_item(path_params: &[(&str, &str)], mut op: Op<'_>, tag: &str, dialect: Dialect) -> Value {
    let params = op.params;
    op.params = &[];
    let mut value = item(path_params, true, vec![op], tag, dialect);
    if let Some(Value::Array(list)) = value.get_mut("parameters") {
        list.extend(
            params
                .iter()
                .chain(LIST_PARAMS)
                .map(|p| query_param(p, dialect)),
        );
        // Keep upstream's alphabetical order after the path parameters.
        let split = path_params.len();
        list[split..].sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    }
    value
}

/// A path item: its parameters (path parameters, then `pretty`) and operations.
fn item(
    path_params: &[(&str, &str)],
    pretty: bool,
    ops: Vec<Op<'_>>,
    tag: &str,
    dialect: Dialect,
) -> Value {
    let mut value = Map::new();
    let mut params: Vec<Value> = path_params
        .iter()
        .map(|(name, description)| {
            let mut p =
                json!({"description": description, "in": "path", "name": name, "required": true});
            dialect.param_type(&mut p, "string");
            p
        })
        .collect();
    if pretty {
        params.push(query_param(&PRETTY, dialect));
    }
    if !params.is_empty() {
        value.insert("parameters".into(), Value::Array(params));
    }
    for op in ops {
        value.insert(op.method.into(), operation(op, tag, dialect));
    }
    Value::Object(value)
}

fn query_param(&(name, ty, description): &Param, dialect: Dialect) -> Value {
    let mut p = json!({"description": description, "in": "query", "name": name});
    dialect.param_type(&mut p, ty);
    p
}

fn payload_schema(payload: Payload<'_>, dialect: Dialect) -> Value {
    match payload {
        Payload::Schema(name) => json!({"$ref": dialect.reference(name)}),
        Payload::Text => json!({"type": "string"}),
    }
}

fn operation(op: Op<'_>, tag: &str, dialect: Dialect) -> Value {
    let mut value = json!({
        "description": op.description,
        "operationId": op.id,
        "tags": [tag],
    });
    let mut params: Vec<Value> = op.params.iter().map(|p| query_param(p, dialect)).collect();
    let schema = payload_schema(op.payload, dialect);
    let responses: Map<String, Value> = op
        .responses
        .iter()
        .map(|&(code, description)| {
            let mut r = json!({"description": description});
            if code != 401 {
                match dialect {
                    Dialect::V3 => {
                        let content: Map<String, Value> = op
                            .media
                            .iter()
                            .map(|m| ((*m).to_owned(), json!({"schema": schema})))
                            .collect();
                        r["content"] = Value::Object(content);
                    }
                    Dialect::V2 => r["schema"] = schema.clone(),
                }
            }
            (code.to_string(), r)
        })
        .collect();
    value["responses"] = Value::Object(responses);
    if let Some((payload, media, required)) = op.body {
        let schema = payload_schema(payload, dialect);
        match dialect {
            Dialect::V3 => {
                let content: Map<String, Value> = media
                    .iter()
                    .map(|m| ((*m).to_owned(), json!({"schema": schema})))
                    .collect();
                value["requestBody"] = json!({"content": content});
                if required {
                    value["requestBody"]["required"] = true.into();
                }
            }
            Dialect::V2 => {
                let mut body = json!({"in": "body", "name": "body", "schema": schema});
                if required {
                    body["required"] = true.into();
                }
                params.insert(0, body);
                value["consumes"] = json!(media);
            }
        }
    }
    if !params.is_empty() {
        value["parameters"] = Value::Array(params);
    }
    if dialect == Dialect::V2 {
        value["produces"] = json!(op.media);
        value["schemes"] = json!(["https"]);
    }
    if !op.action.is_empty() {
        value["x-kubernetes-action"] = op.action.into();
        let (group, version, kind) = op.gvk;
        value["x-kubernetes-group-version-kind"] =
            json!({"group": group, "kind": kind, "version": version});
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_name_groups_as_upstream() {
        assert_eq!(group_id(""), "Core");
        assert_eq!(group_id("apps"), "Apps");
        assert_eq!(group_id("rbac.authorization.k8s.io"), "RbacAuthorization");
        assert_eq!(
            group_id("flowcontrol.apiserver.k8s.io"),
            "FlowcontrolApiserver"
        );
        assert_eq!(
            tag("rbac.authorization.k8s.io", "v1"),
            "rbacAuthorization_v1"
        );
        assert_eq!(tag("", "v1"), "core_v1");
    }

    #[test]
    fn pods_have_upstream_operations() {
        let paths = group_version("", "v1", Dialect::V3);
        let id = |path: &str, method: &str| {
            paths[path][method]["operationId"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        };
        assert_eq!(
            id("/api/v1/namespaces/{namespace}/pods", "post"),
            "createCoreV1NamespacedPod"
        );
        assert_eq!(id("/api/v1/pods", "get"), "listCoreV1PodForAllNamespaces");
        assert_eq!(
            id("/api/v1/namespaces/{name}", "get"),
            "readCoreV1Namespace"
        );
        assert_eq!(
            id("/api/v1/namespaces/{namespace}/pods/{name}/status", "patch"),
            "patchCoreV1NamespacedPodStatus"
        );
        assert_eq!(
            id("/api/v1/namespaces/{namespace}/pods/{name}/exec", "post"),
            "connectCoreV1PostNamespacedPodExec"
        );
        assert_eq!(
            id(
                "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
                "post"
            ),
            "createCoreV1NamespacedPodEviction"
        );
        assert_eq!(
            paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]["x-kubernetes-group-version-kind"],
            json!({"group": "policy", "kind": "Eviction", "version": "v1"})
        );
    }
}
