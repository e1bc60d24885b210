//! Discovery: `/api`, `/apis`, `/apis/<group>`, `/api/v1` and `/apis/<group>/<version>`, plus
//! aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList` on `/api` and `/apis`,
//! what kubectl 1.30+ asks for first). Every document comes from the static resource table, so
//! each is built once and served as shared bytes.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use rkube_api::resources::{self, API_GROUPS, CORE_VERSIONS, Resource};
use rkube_api::status::ApiError;
use serde_json::{Value, json};

use crate::negotiate::{self, SERVED_MEDIA_TYPES};
use crate::response::{Failure, bytes_response};

/// The media type of aggregated discovery, as clients ask for it and as it is answered.
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// What a discovery request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Legacy,
    Aggregated,
}

/// Upstream's discovery negotiation: the first acceptable range wins; only `/api` and `/apis`
/// have an aggregated form.
fn negotiate(headers: &HeaderMap, aggregatable: bool) -> Result<Want, Failure> {
    let Some(accept) = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .filter(|a| !a.trim().is_empty())
    else {
        return Ok(Want::Legacy);
    };
    for range in negotiate::parse_accept(accept) {
        let json = matches!(
            (range.type_.as_str(), range.subtype.as_str()),
            ("*", "*") | ("application", "*") | ("application", "json")
        );
        if !json {
            continue;
        }
        let param = |k: &str| {
            range
                .params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        match (param("as"), param("g"), param("v")) {
            (None, _, _) => return Ok(Want::Legacy),
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2"))
                if aggregatable =>
            {
                return Ok(Want::Aggregated);
            }
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable(SERVED_MEDIA_TYPES).into())
}

/// Serves a discovery path, or `None` when the path is not a discovery document.
pub(crate) fn serve(path: &str, headers: &HeaderMap) -> Option<Result<Response, Failure>> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let doc = match segments.as_slice() {
        ["api"] => Doc::Root {
            aggregated: &CORE_AGGREGATED,
            legacy: api_versions(headers),
        },
        ["apis"] => Doc::Root {
            aggregated: &APIS_AGGREGATED,
            legacy: json_bytes(&api_group_list()),
        },
        ["api", version] if CORE_VERSIONS.contains(version) => {
            Doc::Plain(json_bytes(&resource_list("", version)))
        }
        ["apis", group] => Doc::Plain(json_bytes(&api_group(resources::api_group(group)?))),
        ["apis", group, version] => {
            let g = resources::api_group(group)?;
            if !g.versions.contains(version) {
                return None;
            }
            Doc::Plain(json_bytes(&resource_list(group, version)))
        }
        _ => return None,
    };
    Some(doc.respond(headers))
}

enum Doc {
    Root {
        aggregated: &'static LazyLock<(Bytes, String)>,
        legacy: Bytes,
    },
    Plain(Bytes),
}

impl Doc {
    fn respond(self, headers: &HeaderMap) -> Result<Response, Failure> {
        let aggregatable = matches!(self, Doc::Root { .. });
        let want = negotiate(headers, aggregatable)?;
        match (self, want) {
            (Doc::Root { aggregated, .. }, Want::Aggregated) => {
                let (body, etag) = &**aggregated;
                let matches_etag = headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok())
                    == Some(etag.as_str());
                let mut response = if matches_etag {
                    bytes_response(StatusCode::NOT_MODIFIED, AGGREGATED, Bytes::new())
                } else {
                    bytes_response(StatusCode::OK, AGGREGATED, body.clone())
                };
                if let Ok(v) = HeaderValue::from_str(etag) {
                    response.headers_mut().insert(header::ETAG, v);
                }
                response
                    .headers_mut()
                    .insert(header::VARY, HeaderValue::from_static("Accept"));
                Ok(response)
            }
            (Doc::Root { legacy, .. } | Doc::Plain(legacy), _) => {
                let mut response = bytes_response(StatusCode::OK, "application/json", legacy);
                if aggregatable {
                    response
                        .headers_mut()
                        .insert(header::VARY, HeaderValue::from_static("Accept"));
                }
                Ok(response)
            }
        }
    }
}

fn json_bytes(v: &Value) -> Bytes {
    // A `Value` always serializes.
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// `/api`: `APIVersions`, with the address clients reached us at.
fn api_versions(headers: &HeaderMap) -> Bytes {
    let address = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:6443");
    json_bytes(&json!({
        "kind": "APIVersions",
        "versions": CORE_VERSIONS,
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }))
}

fn group_version(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

fn api_group(g: &resources::ApiGroup) -> Value {
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": g.name,
        "versions": g.versions.iter().map(|v| group_version(g.name, v)).collect::<Vec<_>>(),
        "preferredVersion": group_version(g.name, g.preferred_version()),
    })
}

/// `/apis`: `APIGroupList` in upstream's group order.
fn api_group_list() -> Value {
    let groups: Vec<Value> = API_GROUPS
        .iter()
        .map(|g| {
            let mut v = api_group(g);
            if let Some(m) = v.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            v
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/api/v1`, `/apis/<g>/<v>`: `APIResourceList`, each resource followed by its subresources.
fn resource_list(group: &str, version: &str) -> Value {
    let mut list = Vec::new();
    for r in resources::resources_in(group, version) {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
        for s in r.subresources {
            let mut entry = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if let Some((g, v)) = s.kind_group_version {
                entry["group"] = g.into();
                entry["version"] = v.into();
            }
            list.push(entry);
        }
    }
    let mut doc = json!({"kind": "APIResourceList", "groupVersion": if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }, "resources": list});
    // Upstream's core list carries no apiVersion; the group lists do.
    if !group.is_empty() {
        doc["apiVersion"] = "v1".into();
    }
    doc
}

/// One resource as `APIResourceDiscovery`.
fn resource_discovery(r: &Resource) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            let (g, v) = s.kind_group_version.unwrap_or(("", ""));
            json!({
                "subresource": s.name,
                "responseKind": {"group": g, "version": v, "kind": s.kind},
                "verbs": s.verbs,
            })
        })
        .collect();
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": {"group": "", "version": "", "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = subresources.into();
    }
    entry
}

/// One group as `APIGroupDiscovery`, versions in preference order.
fn group_discovery(group: &str, versions: &[&str]) -> Value {
    let mut metadata = json!({"creationTimestamp": null});
    if !group.is_empty() {
        metadata["name"] = group.into();
    }
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({
                "version": v,
                "resources": resources::resources_in(group, v).iter().map(resource_discovery).collect::<Vec<_>>(),
                "freshness": "Current",
            })
        })
        .collect();
    json!({"metadata": metadata, "versions": versions})
}

fn aggregated(items: Vec<Value>) -> (Bytes, String) {
    let body = json_bytes(&json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }));
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:016X}\"", hasher.finish());
    (body, etag)
}

static CORE_AGGREGATED: LazyLock<(Bytes, String)> =
    LazyLock::new(|| aggregated(vec![group_discovery("", CORE_VERSIONS)]));

static APIS_AGGREGATED: LazyLock<(Bytes, String)> = LazyLock::new(|| {
    aggregated(
        API_GROUPS
            .iter()
            .map(|g| group_discovery(g.name, g.versions))
            .collect(),
    )
});
