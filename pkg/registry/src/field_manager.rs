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

use crate::rest::{FieldValidation, Result};

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
    let api_version = resource.api_version();
    let cx = context(resource, api_version.as_ref(), track, owns_status, now);
    apply_in(&cx, resource.kind, track, live, config, force)
}

/// An apply of `config` onto `live`, the `autoscaling/v1` Scale view of a workload (whose
/// managedFields are the parent's that own its replicas); the Scale's status is not the
/// applier's, as upstream resets it.
pub(crate) fn apply_scale(
    track: &Track,
    live: &Value,
    config: &Value,
    force: bool,
    now: &str,
) -> Result<Value> {
    let cx = Context {
        schema: Schema::root(types::lookup_kind("autoscaling", "v1", "Scale")),
        api_version: "autoscaling/v1",
        subresource: track.subresource,
        owned: Owned::AllButStatus,
        now,
    };
    apply_in(&cx, "Scale", track, Some(live), config, force)
}

fn apply_in(
    cx: &Context<'_>,
    kind: &str,
    track: &Track,
    live: Option<&Value>,
    config: &Value,
    force: bool,
) -> Result<Value> {
    let text = |f: &str| config.get(f).and_then(Value::as_str).unwrap_or("");
    if text("apiVersion") != cx.api_version || text("kind") != kind {
        let (group, version) = text("apiVersion")
            .rsplit_once('/')
            .unwrap_or(("", text("apiVersion")));
        return Err(ApiError::bad_request(format!(
            "invalid object type: {group}/{version}, Kind={}",
            text("kind")
        )));
    }
    managed::apply(live, config, &track.manager, force, cx).map_err(|e| {
        let name = meta::name(config).unwrap_or("");
        let object = match meta::namespace(config).or(live.and_then(meta::namespace)) {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        };
        // Go prints a core group-version as `/v1`.
        let gv = if cx.api_version.contains('/') {
            cx.api_version.to_string()
        } else {
            format!("/{}", cx.api_version)
        };
        e.into_api_error(&format!("{object}; {gv}, Kind={kind}"))
    })
}

/// `fieldValidation` of an apply body, checked once the apply succeeded (upstream's
/// `applyPatcher`): the body is decoded strictly only for duplicate keys; unknown fields are
/// the apply's own error in every mode. `Strict` refuses duplicates with 400, `Warn` answers
/// one warning per duplicate, `Ignore` looks for none.
pub(crate) fn check_apply_body(body: &[u8], mode: FieldValidation) -> Result<Vec<String>> {
    if mode == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let found = duplicate_keys(body);
    if found.is_empty() || mode == FieldValidation::Warn {
        return Ok(found);
    }
    Err(ApiError::bad_request(format!(
        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  {}",
        found.join("\n  ")
    )))
}

/// Upstream's YAML decoder's messages for repeated keys of one mapping, in document order:
/// `line 10: key "paused" already set in map`.
fn duplicate_keys(body: &[u8]) -> Vec<String> {
    // The walk stops at the first duplicate it does not skip, whose error carries its line;
    // each round skips one more. Bodies with duplicates are rare and short of them.
    const MAX_REPORTED: usize = 64;
    let mut out = Vec::new();
    while out.len() < MAX_REPORTED {
        let mut walk = DuplicateWalk {
            skip: out.len(),
            seen: 0,
        };
        let Err(e) = walk.run(body) else {
            break;
        };
        let Some(key) = walk_duplicate(&e) else {
            break;
        };
        let line = e.location().map_or(0, |l| l.line());
        out.push(format!("line {line}: key {key:?} already set in map"));
    }
    out
}

/// The marker of the error a [`DuplicateWalk`] stops with.
const DUPLICATE: &str = "rkube duplicate key: ";

fn walk_duplicate(e: &serde_yaml_ng::Error) -> Option<String> {
    let text = e.to_string();
    let rest = text.split_once(DUPLICATE)?.1;
    // The library appends " at line N column M"; the key is JSON-quoted before it.
    let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    de.next()?.ok()
}

/// A walk over a YAML (or JSON) document that fails on the duplicate key after the first
/// `skip` ones.
struct DuplicateWalk {
    skip: usize,
    seen: usize,
}

impl DuplicateWalk {
    fn run(&mut self, body: &[u8]) -> std::result::Result<(), serde_yaml_ng::Error> {
        use serde::de::DeserializeSeed;
        Node(self).deserialize(serde_yaml_ng::Deserializer::from_slice(body))
    }
}

struct Node<'w>(&'w mut DuplicateWalk);

impl<'de> serde::de::DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(Node(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        let mut keys = std::collections::HashSet::new();
        while map
            .next_key_seed(Key {
                walk: &mut *self.0,
                keys: &mut keys,
            })?
            .is_some()
        {
            map.next_value_seed(Node(&mut *self.0))?;
        }
        Ok(())
    }
}

/// A mapping key, checked against the mapping's earlier keys while its own event is read, so
/// that the error points at its line.
struct Key<'w> {
    walk: &'w mut DuplicateWalk,
    keys: &'w mut std::collections::HashSet<String>,
}

impl Key<'_> {
    fn check<E: serde::de::Error>(self, text: String) -> std::result::Result<(), E> {
        if self.keys.contains(&text) {
            if self.walk.seen == self.walk.skip {
                return Err(E::custom(format!("{DUPLICATE}{}", Value::String(text))));
            }
            self.walk.seen += 1;
        } else {
            self.keys.insert(text);
        }
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Key<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Scalar keys as text; complex keys, which JSON cannot have, are not compared.
impl<'de> serde::de::Visitor<'de> for Key<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<(), E> {
        self.check(v.to_string())
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> std::result::Result<(), E> {
        self.check(v.to_string())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<(), E> {
        self.check(v.to_string())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<(), E> {
        self.check(v.to_string())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<(), E> {
        self.check(v.to_string())
    }
    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<(), E> {
        self.check("null".into())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> std::result::Result<(), A::Error> {
        Node(self.walk).visit_seq(seq)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> std::result::Result<(), A::Error> {
        Node(self.walk).visit_map(map)
    }
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

    #[test]
    fn apply_bodies_report_duplicate_keys_by_line() {
        // Upstream's integration case: a JSON body (YAML to the decoder) with two repeats.
        let json = b"{\n\"kind\": \"Deployment\",\n\"spec\": {\n  \"paused\": false,\n  \"paused\": true,\n  \"template\": {\"a\": 1, \"b\": [{\"x\": 1,\n \"x\": 2}]}\n}\n}";
        let found = vec![
            r#"line 5: key "paused" already set in map"#.to_string(),
            r#"line 7: key "x" already set in map"#.to_string(),
        ];
        assert_eq!(check_apply_body(json, FieldValidation::Warn), Ok(found));
        let yaml = b"kind: Deployment\nmetadata:\n  name: a\n  name: b\n";
        let strict = check_apply_body(yaml, FieldValidation::Strict).expect_err("refused");
        assert_eq!(strict.code(), 400);
        assert_eq!(
            strict.message(),
            "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 4: key \"name\" already set in map"
        );
        assert_eq!(
            check_apply_body(yaml, FieldValidation::Ignore),
            Ok(Vec::new())
        );
        assert_eq!(
            check_apply_body(b"a: 1\nb: {c: 2}", FieldValidation::Strict),
            Ok(Vec::new())
        );
    }
}
