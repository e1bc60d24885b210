//! OpenAPI: the documents kubectl downloads before it writes (`/openapi/v3`, to learn that the
//! server validates fields) and reads for `kubectl explain` and client-side apply, and the
//! schema-driven field validation of write bodies.
//!
//! # Layout
//! - `schemas`: component schemas from k8s-openapi's `JsonSchema` impls (schemars), generated
//!   once per dialect and decorated with upstream's `x-kubernetes-*` extensions.
//! - `patch_meta`: the `x-kubernetes-list-type`, `-patch-strategy`, `-map-type`... extensions,
//!   from the table of upstream's types that strategic merge patch also merges by
//!   (`rkube_api::types`).
//! - `paths`: every resource's paths and operations, from `rkube_api::resources`.
//! - `fields`: unknown and duplicate field detection against the schemas
//!   (`fieldValidation=Strict|Warn|Ignore`).
//!
//! This file serves them as kube-openapi's handlers do: `/openapi/v3` is an index of
//! group-version documents with content hashes; `/openapi/v3/<gv>` answers the document with an
//! `ETag` (and immutable caching when fetched by its hash; a stale hash is redirected with 301 to
//! the current one); `/openapi/v2` is the Swagger 2.0 document of everything, as JSON or as
//! gnostic's protobuf (`v2_proto`, what kubectl's client-side validation reads). Each document
//! is built once, on first request, and served as shared bytes.

mod fields;
mod patch_meta;
mod paths;
mod schemas;
mod v2_proto;

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use rkube_api::resources::{API_GROUPS, CORE_VERSIONS};
use rkube_api::status::ApiError;
use serde_json::{Map, Value, json};

use crate::negotiate;
use crate::request_info::query_pairs;
use crate::response::{Failure, bytes_response};

pub(crate) use fields::{check_body, patch_duplicates, patched_object_check};

/// The OpenAPI flavour a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Swagger 2.0 (`/openapi/v2`): `#/definitions/`, parameters carry their type.
    V2,
    /// OpenAPI 3.0 (`/openapi/v3/...`): `#/components/schemas/`, parameter schemas, request
    /// bodies and per-media-type responses.
    V3,
}

impl Dialect {
    /// A `$ref` to the component schema `name`.
    pub fn reference(self, name: &str) -> String {
        match self {
            Dialect::V2 => format!("#/definitions/{name}"),
            Dialect::V3 => format!("#/components/schemas/{name}"),
        }
    }

    /// Types a parameter (`type` in v2, `schema.type` in v3), as upstream marks them unique.
    pub fn param_type(self, param: &mut Value, ty: &str) {
        match self {
            Dialect::V2 => {
                param["type"] = ty.into();
                param["uniqueItems"] = true.into();
            }
            Dialect::V3 => param["schema"] = json!({"type": ty, "uniqueItems": true}),
        }
    }
}

/// The protobuf media types of the v2 document: the one it is answered as, then the deprecated
/// spelling clients still ask for (kubectl does). The answer never carries the `@` form, which
/// Go's `mime.ParseMediaType` refuses.
const V2_PROTOBUF: [&str; 2] = [
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
];

/// A document as served: its bytes, media type and content hash (upstream: SHA-512 in hex; any
/// stable digest serves clients, which treat it as opaque).
struct Doc {
    body: Bytes,
    content_type: &'static str,
    hash: String,
}

impl Doc {
    /// The JSON form of `value`.
    fn new(value: &Value) -> Doc {
        Doc::from_bytes(
            serde_json::to_vec(value).unwrap_or_default(),
            "application/json",
        )
    }

    fn from_bytes(body: Vec<u8>, content_type: &'static str) -> Doc {
        let body = Bytes::from(body);
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        let hash = format!("{:016X}", hasher.finish());
        Doc {
            body,
            content_type,
            hash,
        }
    }
}

/// The v2 document in its two encodings.
struct V2 {
    json: Doc,
    protobuf: Doc,
}

/// Every v3 document by group-version path (`api/v1`, `apis/apps/v1`, `apis/apps`, `api`,
/// `apis`), and the index that lists them.
struct V3 {
    docs: HashMap<String, Doc>,
    index: Doc,
}

static V3_DOCS: LazyLock<V3> = LazyLock::new(|| {
    let defs = &*schemas::V3;
    let mut docs = HashMap::new();
    let tag = |g: &str| format!("{g}_api");
    docs.insert(
        "api".to_owned(),
        v3_doc(
            paths::discovery(
                "/api/",
                "getCoreAPIVersions",
                schemas::API_VERSIONS,
                "core",
                Dialect::V3,
            ),
            defs,
        ),
    );
    docs.insert(
        "apis".to_owned(),
        v3_doc(
            paths::discovery(
                "/apis/",
                "getAPIVersions",
                schemas::API_GROUP_LIST,
                "apis",
                Dialect::V3,
            ),
            defs,
        ),
    );
    for version in CORE_VERSIONS {
        let paths = Value::Object(paths::group_version("", version, Dialect::V3));
        docs.insert(format!("api/{version}"), v3_doc(paths, defs));
    }
    for group in API_GROUPS {
        let id = format!("get{}APIGroup", paths::group_id(group.name));
        let path = format!("/apis/{}/", group.name);
        let doc = paths::discovery(
            &path,
            &id,
            schemas::API_GROUP,
            &tag(group.name),
            Dialect::V3,
        );
        docs.insert(format!("apis/{}", group.name), v3_doc(doc, defs));
        for version in group.versions {
            let paths = Value::Object(paths::group_version(group.name, version, Dialect::V3));
            docs.insert(
                format!("apis/{}/{version}", group.name),
                v3_doc(paths, defs),
            );
        }
    }
    // Sorted, as Go marshals maps.
    let index: BTreeMap<&str, Value> = docs
        .iter()
        .map(|(gv, doc)| {
            let url = format!("/openapi/v3/{gv}?hash={}", doc.hash);
            (gv.as_str(), json!({"serverRelativeURL": url}))
        })
        .collect();
    let index = Doc::new(&json!({"paths": index}));
    V3 { docs, index }
});

/// A v3 document over `paths`, with the component schemas they reach.
fn v3_doc(paths: Value, defs: &Map<String, Value>) -> Doc {
    let schemas = reachable(&paths, defs, Dialect::V3);
    Doc::new(&json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

static V2_DOCS: LazyLock<V2> = LazyLock::new(|| {
    let mut all = Map::new();
    for version in CORE_VERSIONS {
        all.extend(paths::group_version("", version, Dialect::V2));
    }
    for group in API_GROUPS {
        for version in group.versions {
            all.extend(paths::group_version(group.name, version, Dialect::V2));
        }
    }
    let defs = schemas::definitions(Dialect::V2);
    let doc = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.34.0"},
        "paths": all,
        "definitions": defs,
        "security": [{"BearerToken": []}],
        "securityDefinitions": {"BearerToken": {
            "description": "Bearer Token authentication",
            "in": "header",
            "name": "authorization",
            "type": "apiKey",
        }},
    });
    V2 {
        json: Doc::new(&doc),
        protobuf: Doc::from_bytes(v2_proto::encode(&doc), V2_PROTOBUF[0]),
    }
});

/// The component schemas `paths` refers to, transitively.
fn reachable(paths: &Value, defs: &Map<String, Value>, dialect: Dialect) -> Map<String, Value> {
    let prefix = dialect.reference("");
    let mut out = Map::new();
    let mut pending = Vec::new();
    collect_refs(paths, &prefix, &mut pending);
    while let Some(name) = pending.pop() {
        if out.contains_key(&name) {
            continue;
        }
        if let Some(schema) = defs.get(&name) {
            collect_refs(schema, &prefix, &mut pending);
            out.insert(name, schema.clone());
        }
    }
    out
}

fn collect_refs(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix(prefix) {
                            out.push(name.to_owned());
                        }
                    }
                    _ => collect_refs(v, prefix, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, prefix, out)),
        _ => {}
    }
}

/// Serves `/openapi/...`; `None` for other paths.
pub(crate) fn serve(
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<Result<Response, Failure>> {
    let rest = path.strip_prefix("/openapi/")?;
    Some(match rest {
        "v2" => respond(
            &V2_DOCS.json,
            Some(&V2_DOCS.protobuf),
            headers,
            None,
            "/openapi/v2",
        ),
        "v3" => {
            let index = &V3_DOCS.index;
            // The index is always JSON, as upstream's discovery handler answers it.
            Ok(document(index, headers, false))
        }
        other => {
            let gv = other.strip_prefix("v3/")?;
            let doc = V3_DOCS.docs.get(gv)?;
            let hash = query_pairs(query)
                .into_iter()
                .find(|(k, _)| k == "hash")
                .map(|(_, v)| v)
                .filter(|h| !h.is_empty());
            respond(doc, None, headers, hash.as_deref(), gv)
        }
    })
}

/// kube-openapi's negotiation: the first acceptable range wins, JSON for wildcards; `protobuf`
/// is the document's protobuf form where there is one (v2). The v3 documents are served as JSON
/// only, so a client that accepts only their protobuf gets 406.
fn respond(
    json_doc: &Doc,
    protobuf: Option<&Doc>,
    headers: &HeaderMap,
    hash: Option<&str>,
    gv: &str,
) -> Result<Response, Failure> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .filter(|a| !a.trim().is_empty())
        .unwrap_or("*/*");
    let chosen = negotiate::parse_accept(accept).iter().find_map(|r| {
        let json = matches!(r.type_.as_str(), "application" | "*")
            && matches!(r.subtype.as_str(), "json" | "*");
        if json {
            return Some(json_doc);
        }
        let media = format!("{}/{}", r.type_, r.subtype);
        protobuf.filter(|_| V2_PROTOBUF.contains(&media.as_str()))
    });
    let Some(doc) = chosen else {
        let mut served = vec!["application/json"];
        if protobuf.is_some() {
            served.push(V2_PROTOBUF[0]);
        }
        return Err(ApiError::not_acceptable(&served).into());
    };
    match hash {
        Some(h) if h != doc.hash => {
            let location = format!("/openapi/v3/{gv}?hash={}", doc.hash);
            let mut response = bytes_response(
                StatusCode::MOVED_PERMANENTLY,
                "text/html; charset=utf-8",
                Bytes::new(),
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            Ok(response)
        }
        Some(_) => Ok(document(doc, headers, true)),
        None => Ok(document(doc, headers, false)),
    }
}

/// A document with its `ETag`; `304` when the client already has it.
fn document(doc: &Doc, headers: &HeaderMap, immutable: bool) -> Response {
    let etag = format!("\"{}\"", doc.hash);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        bytes_response(StatusCode::NOT_MODIFIED, doc.content_type, Bytes::new())
    } else {
        bytes_response(StatusCode::OK, doc.content_type, doc.body.clone())
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    if immutable {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
    }
    response
}
