//! What a request is about, from its method, path and query alone: upstream's
//! `RequestInfoFactory` (`apiserver/pkg/endpoints/request/requestinfo.go`).
//!
//! Every later layer (authorization, admission, the router) works from this one parse, so it
//! follows upstream to the letter: `/api/v1/...` and `/apis/<group>/<version>/...` are resource
//! requests, everything else is a non-resource request whose verb is the lower-cased method.

use http::Method;
use rkube_api::selector::FieldSelector;
use rkube_api::validation::is_valid_path_segment_name;

/// The parsed request (upstream's `request.RequestInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// True for requests under `/api` and `/apis` that name a group-version and more.
    pub is_resource_request: bool,
    /// The URL path as received.
    pub path: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`,
    /// `proxy`; for non-resource requests the lower-cased HTTP method.
    pub verb: String,
    /// `api` or `apis`.
    pub api_prefix: String,
    /// The API group; empty for the core group.
    pub api_group: String,
    /// The API version.
    pub api_version: String,
    /// The namespace, empty when the request is not namespaced (or spans all namespaces).
    pub namespace: String,
    /// The plural resource name.
    pub resource: String,
    /// The subresource (`status`, `scale`, `log`), empty when none.
    pub subresource: String,
    /// The object name, empty for collection requests.
    pub name: String,
    /// The path segments from the resource on.
    pub parts: Vec<String>,
    /// The `fieldSelector` of a list, watch or deletecollection, when it parses (authorization
    /// may depend on it, as the Node authorizer's `spec.nodeName=<node>`).
    pub field_selector: Option<FieldSelector>,
}

/// Verbs that may prefix the resource path (`/api/v1/watch/...`, `/api/v1/proxy/...`).
const SPECIAL_VERBS: &[&str] = &["proxy", "watch"];
/// Subresources of namespaces reached as `/api/v1/namespaces/<name>/<sub>`.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// The query parameters of a URI, decoded, in order.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query.map_or_else(Vec::new, |q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
}

impl RequestInfo {
    /// Parses a request. The error (a path like `/api/v1/watch` with nothing after the special
    /// verb) is upstream's text; callers answer it as a 500, as upstream's filter does.
    pub fn parse(method: &Method, path: &str, query: Option<&str>) -> Result<Self, String> {
        let mut info = RequestInfo {
            path: path.to_owned(),
            verb: method.as_str().to_ascii_lowercase(),
            ..RequestInfo::default()
        };
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let segments = if segments == [""] {
            Vec::new()
        } else {
            segments
        };
        if segments.len() < 3 || !matches!(segments[0], "api" | "apis") {
            return Ok(info);
        }
        info.api_prefix = segments[0].to_owned();
        let mut rest = &segments[1..];
        if info.api_prefix == "apis" {
            // /apis/<group>/<version>/<something> at least.
            if rest.len() < 3 {
                return Ok(info);
            }
            info.api_group = rest[0].to_owned();
            rest = &rest[1..];
        }
        info.is_resource_request = true;
        info.api_version = rest[0].to_owned();
        rest = &rest[1..];

        if SPECIAL_VERBS.contains(&rest[0]) {
            if rest.len() < 2 {
                return Err(format!(
                    "unable to determine kind and namespace from url, {path}"
                ));
            }
            info.verb = rest[0].to_owned();
            rest = &rest[1..];
        } else {
            info.verb = match *method {
                Method::POST => "create",
                Method::GET | Method::HEAD => "get",
                Method::PUT => "update",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                _ => "",
            }
            .to_owned();
        }

        if rest[0] == "namespaces" && rest.len() > 1 {
            info.namespace = rest[1].to_owned();
            // `/namespaces/<ns>/<resource>/...` unless it is a namespace's own subresource.
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
                rest = &rest[2..];
            }
        }
        info.parts = rest.iter().map(|s| (*s).to_owned()).collect();
        if info.parts.len() >= 3 && info.verb != "proxy" {
            info.subresource = info.parts[2].clone();
        }
        if info.parts.len() >= 2 {
            info.name = info.parts[1].clone();
        }
        if let Some(resource) = info.parts.first() {
            info.resource = resource.clone();
        }

        if info.name.is_empty() && info.verb == "get" {
            let (watch, field_selector) = list_hints(query);
            info.verb = if watch { "watch" } else { "list" }.to_owned();
            // Authorization sees a single-object list or watch as being about that object.
            if let Some(name) = field_selector
                .as_ref()
                .and_then(|s| s.requires_exact_match("metadata.name"))
                && is_valid_path_segment_name(name).is_empty()
            {
                info.name = name.to_owned();
            }
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".to_owned();
        }
        if matches!(info.verb.as_str(), "list" | "watch" | "deletecollection") {
            info.field_selector = query_pairs(query)
                .into_iter()
                .find(|(k, _)| k == "fieldSelector")
                .and_then(|(_, v)| FieldSelector::parse(&v).ok());
        }
        Ok(info)
    }
}

/// `watch` and `fieldSelector` of a collection GET, as upstream decodes its `ListOptions`: a
/// query that does not decode (a bad selector or number) keeps only the `watch` flag, which
/// then counts as set unless it is `false` or `0`.
fn list_hints(query: Option<&str>) -> (bool, Option<FieldSelector>) {
    let pairs = query_pairs(query);
    let first = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let watch_fallback =
        || first("watch").is_some_and(|w| !matches!(&*w.to_ascii_lowercase(), "false" | "0"));
    let numbers_ok = ["limit", "timeoutSeconds"]
        .iter()
        .all(|k| first(k).is_none_or(|v| v.is_empty() || v.parse::<i64>().is_ok()));
    let selector = match first("fieldSelector") {
        Some(s) => match FieldSelector::parse(s) {
            Ok(sel) => Some(sel),
            Err(_) => return (watch_fallback(), None),
        },
        None => None,
    };
    if !numbers_ok {
        return (watch_fallback(), None);
    }
    (first("watch").is_some_and(go_list_bool), selector)
}

/// How upstream's query decoding reads a boolean: anything but `0`, `f` or `false` (any case)
/// is true, the empty string included.
pub(crate) fn go_list_bool(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("f") || value.eq_ignore_ascii_case("false"))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        method: Method,
        url: &'static str,
        verb: &'static str,
        prefix: &'static str,
        group: &'static str,
        version: &'static str,
        namespace: &'static str,
        resource: &'static str,
        subresource: &'static str,
        name: &'static str,
    }

    #[allow(clippy::too_many_arguments)]
    fn case(
        method: Method,
        url: &'static str,
        verb: &'static str,
        prefix: &'static str,
        group: &'static str,
        version: &'static str,
        namespace: &'static str,
        resource: &'static str,
        subresource: &'static str,
        name: &'static str,
    ) -> Case {
        Case {
            method,
            url,
            verb,
            prefix,
            group,
            version,
            namespace,
            resource,
            subresource,
            name,
        }
    }

    fn parse(method: &Method, url: &str) -> Result<RequestInfo, String> {
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (url, None),
        };
        RequestInfo::parse(method, path, query)
    }

    /// Upstream's own `TestGetAPIRequestInfo` table, plus the subresource and selector cases.
    #[test]
    fn resource_requests_parse_as_upstream() {
        use Method as M;
        let cases = [
            case(
                M::GET,
                "/api/v1/namespaces",
                "list",
                "api",
                "",
                "v1",
                "",
                "namespaces",
                "",
                "",
            ),
            case(
                M::GET,
                "/api/v1/namespaces/other",
                "get",
                "api",
                "",
                "v1",
                "other",
                "namespaces",
                "",
                "other",
            ),
            case(
                M::GET,
                "/api/v1/namespaces/other/pods",
                "list",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "",
            ),
            case(
                M::GET,
                "/api/v1/namespaces/other/pods/foo",
                "get",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "foo",
            ),
            case(
                M::HEAD,
                "/api/v1/namespaces/other/pods/foo",
                "get",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "foo",
            ),
            case(
                M::GET,
                "/api/v1/pods",
                "list",
                "api",
                "",
                "v1",
                "",
                "pods",
                "",
                "",
            ),
            case(
                M::GET,
                "/api/v1/namespaces/other/pods/foo/status",
                "get",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "status",
                "foo",
            ),
            case(
                M::PUT,
                "/api/v1/namespaces/other/status",
                "update",
                "api",
                "",
                "v1",
                "other",
                "namespaces",
                "status",
                "other",
            ),
            case(
                M::PUT,
                "/api/v1/namespaces/other/finalize",
                "update",
                "api",
                "",
                "v1",
                "other",
                "namespaces",
                "finalize",
                "other",
            ),
            case(
                M::GET,
                "/api/v1/watch/pods",
                "watch",
                "api",
                "",
                "v1",
                "",
                "pods",
                "",
                "",
            ),
            case(
                M::GET,
                "/api/v1/pods?watch=true",
                "watch",
                "api",
                "",
                "v1",
                "",
                "pods",
                "",
                "",
            ),
            case(
                M::GET,
                "/api/v1/pods?watch=false",
                "list",
                "api",
                "",
                "v1",
                "",
                "pods",
                "",
                "",
            ),
            case(
                M::GET,
                "/api/v1/pods?watch=0",
                "list",
                "api",
                "",
                "v1",
                "",
                "pods",
                "",
                "",
            ),
            case(
                M::GET,
                "/api/v1/pods?watch=",
                "watch",
                "api",
                "",
                "v1",
                "",
                "pods",
                "",
                "",
            ),
            case(
                M::GET,
                "/api/v1/watch/namespaces/other/pods",
                "watch",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "",
            ),
            case(
                M::GET,
                "/api/v1/watch/namespaces/other/pods/foo",
                "watch",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "foo",
            ),
            case(
                M::GET,
                "/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3Dfoo",
                "list",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "foo",
            ),
            case(
                M::GET,
                "/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3Dfoo&watch=1",
                "watch",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "foo",
            ),
            case(
                M::GET,
                "/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3D..",
                "list",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "",
            ),
            case(
                M::GET,
                "/api/v1/namespaces/other/pods?fieldSelector=metadata.name%21%3Dfoo",
                "list",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "",
            ),
            case(
                M::GET,
                "/api/v1/pods?limit=x&watch=yes",
                "watch",
                "api",
                "",
                "v1",
                "",
                "pods",
                "",
                "",
            ),
            case(
                M::POST,
                "/api/v1/namespaces/other/pods",
                "create",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "",
            ),
            case(
                M::POST,
                "/api/v1/namespaces/other/pods/foo/eviction",
                "create",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "eviction",
                "foo",
            ),
            case(
                M::PUT,
                "/api/v1/namespaces/other/pods/foo",
                "update",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "foo",
            ),
            case(
                M::PATCH,
                "/api/v1/namespaces/other/pods/foo",
                "patch",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "foo",
            ),
            case(
                M::DELETE,
                "/api/v1/namespaces/other/pods/foo",
                "delete",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "foo",
            ),
            case(
                M::DELETE,
                "/api/v1/namespaces/other/pods",
                "deletecollection",
                "api",
                "",
                "v1",
                "other",
                "pods",
                "",
                "",
            ),
            case(
                M::GET,
                "/apis/apps/v1/namespaces/ns/deployments/d/scale",
                "get",
                "apis",
                "apps",
                "v1",
                "ns",
                "deployments",
                "scale",
                "d",
            ),
            case(
                M::GET,
                "/apis/apps/v1/deployments",
                "list",
                "apis",
                "apps",
                "v1",
                "",
                "deployments",
                "",
                "",
            ),
            case(
                M::GET,
                "/apis/apps/v1/watch/namespaces/ns/deployments",
                "watch",
                "apis",
                "apps",
                "v1",
                "ns",
                "deployments",
                "",
                "",
            ),
            case(
                M::GET,
                "/api/v1/namespaces/ns/pods/p/log/extra",
                "get",
                "api",
                "",
                "v1",
                "ns",
                "pods",
                "log",
                "p",
            ),
            case(
                M::GET,
                "/api/v1/proxy/namespaces/ns/pods/p/a/b",
                "proxy",
                "api",
                "",
                "v1",
                "ns",
                "pods",
                "",
                "p",
            ),
            case(
                M::OPTIONS,
                "/api/v1/pods",
                "",
                "api",
                "",
                "v1",
                "",
                "pods",
                "",
                "",
            ),
        ];
        for c in cases {
            let info = parse(&c.method, c.url).unwrap_or_else(|e| panic!("{}: {e}", c.url));
            assert!(info.is_resource_request, "{}", c.url);
            let got = (
                info.verb.as_str(),
                info.api_prefix.as_str(),
                info.api_group.as_str(),
                info.api_version.as_str(),
                info.namespace.as_str(),
                info.resource.as_str(),
                info.subresource.as_str(),
                info.name.as_str(),
            );
            let want = (
                c.verb,
                c.prefix,
                c.group,
                c.version,
                c.namespace,
                c.resource,
                c.subresource,
                c.name,
            );
            assert_eq!(got, want, "{} {}", c.method, c.url);
        }
    }

    #[test]
    fn non_resource_requests_use_the_method() {
        for (method, path, verb) in [
            (Method::GET, "/", "get"),
            (Method::GET, "/api", "get"),
            (Method::GET, "/api/v1", "get"),
            (Method::GET, "/apis", "get"),
            (Method::GET, "/apis/apps", "get"),
            (Method::GET, "/apis/apps/v1", "get"),
            (Method::GET, "/healthz", "get"),
            (Method::POST, "/openapi/v3/x/y", "post"),
            (Method::GET, "/other/v1/pods", "get"),
        ] {
            let info = parse(&method, path).expect(path);
            assert!(!info.is_resource_request, "{path}");
            assert_eq!(info.verb, verb, "{path}");
            assert_eq!(info.path, path);
        }
    }

    #[test]
    fn special_verb_without_resource_is_an_error() {
        assert_eq!(
            parse(&Method::GET, "/api/v1/watch"),
            Err("unable to determine kind and namespace from url, /api/v1/watch".to_owned())
        );
        assert!(parse(&Method::GET, "/apis/apps/v1/proxy").is_err());
    }

    #[test]
    fn go_booleans() {
        assert!(go_list_bool("yes") && go_list_bool("") && !go_list_bool("FALSE"));
    }
}
