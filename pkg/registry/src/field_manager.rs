//! `managedFields` on the registry's writes: who the manager is, what part of the object a
//! write may own, and the apply patch. The semantics live in [`rkube_api::apply`]; this module
//! feeds it the request (manager name from `fieldManager` or the User-Agent, subresource, the
//! kind's type) and turns its errors into upstream's answers.

// `ApiError` is the error of the `Rest` contract (see generic.rs).
#![allow(clippy::result_large_err)]

use rkube_api::apply::managed::{self, Context, Owned};
use rkube_api::apply::typed::Schema;
use rkube_api::meta;
use rkube_api::resources::Resource;
use rkube_api::status::ApiError;
use rkube_api::types;
use serde_json::Value;

use crate::rest::Result;

/// The manager of writes the API server makes itself (upstream's loopback clients).
const INTERNAL_MANAGER: &str = "kube-apiserver";

/// Upstream's `FieldManagerMaxLength`.
const MAX_MANAGER_LENGTH: usize = 128;

/// Who writes, and through which subresource.
#[derive(Debug, Clone)]
pub(crate) struct Track {
    /// The manager name.
    pub manager: String,
    /// The subresource ("" for the main resource).
    pub subresource: &'static str,
    /// The write is an apply, whose managedFields the apply itself computed.
    pub applied: bool,
}

impl Track {
    /// A write by a client: `fieldManager`, else upstream's default from the User-Agent.
    pub(crate) fn new(
        field_manager: Option<&str>,
        user_agent: Option<&str>,
        subresource: &'static str,
    ) -> Track {
        let manager = match field_manager.filter(|m| !m.is_empty()) {
            Some(m) => m.to_string(),
            None => manager_from_user_agent(user_agent.unwrap_or("")),
        };
        Track {
            manager,
            subresource,
            applied: false,
        }
    }

    /// A write the API server makes on its own behalf.
    pub(crate) fn internal(subresource: &'static str) -> Track {
        Track {
            manager: INTERNAL_MANAGER.into(),
            subresource,
            applied: false,
        }
    }
}

/// Upstream's `prefixFromUserAgent`: the part before the first `/`, printable characters only,
/// at most 128 bytes (`kubectl/v1.33.0 (linux/amd64) ...` -> `kubectl`).
fn manager_from_user_agent(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_MANAGER_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// The field manager's view of a resource.
fn context<'a>(
    resource: &'a Resource,
    api_version: &'a str,
    track: &'a Track,
    owns_status: bool,
    now: &'a str,
) -> Context<'a> {
    let owned = match track.subresource {
        "status" => Owned::OnlyStatus,
        _ if owns_status => Owned::AllButStatus,
        _ => Owned::All,
    };
    Context {
        schema: Schema::root(types::lookup_kind(
            resource.group,
            resource.version,
            resource.kind,
        )),
        api_version,
        subresource: track.subresource,
        owned,
        now,
    }
}

/// Records an update of `old` (`None`: a create) into `new`'s managedFields.
pub(crate) fn track_update(
    resource: &Resource,
    track: &Track,
    owns_status: bool,
    old: Option<&Value>,
    new: &mut Value,
    now: &str,
) {
    let api_version = resource.api_version();
    let cx = context(resource, api_version.as_ref(), track, owns_status, now);
    managed::update(old, new, &track.manager, &cx);
}

/// Parses an apply body (YAML or JSON) into an object.
pub(crate) fn parse_apply(body: &[u8]) -> Result<Value> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the apply configuration must be an object",
        ));
    }
    Ok(value)
}

/// The object an apply of `config` onto `live` (`None`: absent) makes, with its
/// managedFields; 400 when the configuration is of another kind, 409 on conflicts.
pub(crate) fn apply(
    resource: &Resource,
    track: &Track,
    owns_status: bool,
    live: Option<&Value>,
    config: &Value,
    force: bool,
    now: &str,
) -> Result<Value> {
    let text = |f: &str| config.get(f).and_then(Value::as_str).unwrap_or("");
    let api_version = resource.api_version();
    if text("apiVersion") != api_version.as_ref() || text("kind") != resource.kind {
        let (group, version) = text("apiVersion")
            .rsplit_once('/')
            .unwrap_or(("", text("apiVersion")));
        return Err(ApiError::bad_request(format!(
            "invalid object type: {group}/{version}, Kind={}",
            text("kind")
        )));
    }
    let cx = context(resource, api_version.as_ref(), track, owns_status, now);
    managed::apply(live, config, &track.manager, force, &cx).map_err(|e| {
        let name = meta::name(config).unwrap_or("");
        let object = match meta::namespace(config).or(live.and_then(meta::namespace)) {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        };
        let gv = if resource.group.is_empty() {
            format!("/{}", resource.version)
        } else {
            api_version.to_string()
        };
        e.into_api_error(&format!("{object}; {gv}, Kind={}", resource.kind))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managers_default_from_the_user_agent() {
        let t = Track::new(
            None,
            Some("kubectl-client-side-apply/v1.33.0 (linux/amd64)"),
            "",
        );
        assert_eq!(t.manager, "kubectl-client-side-apply");
        assert_eq!(
            Track::new(Some("helm"), Some("kubectl/1"), "").manager,
            "helm"
        );
        assert_eq!(Track::new(None, None, "").manager, "");
        assert_eq!(manager_from_user_agent(&"x".repeat(200)).len(), 128);
    }

    #[test]
    fn apply_bodies_are_yaml_or_json() {
        assert!(parse_apply(b"apiVersion: v1\nkind: ConfigMap\n").is_ok());
        assert!(parse_apply(br#"{"kind":"ConfigMap"}"#).is_ok());
        assert_eq!(parse_apply(b"- a").map_err(|e| e.code()).err(), Some(400));
        assert_eq!(parse_apply(b"a: [").map_err(|e| e.code()).err(), Some(400));
    }
}
