//! Server-side field validation (`fieldValidation=Strict|Warn|Ignore`): a write body is walked
//! against its kind's schema, in document order, as upstream's strict JSON decoder walks it
//! into the Go type. Fields the schema does not know are dropped in every mode (built-in objects
//! never store them); `Warn` (the default) also answers one `Warning` per unknown or duplicate
//! field, and `Strict` refuses the request with all of them in one message.
//!
//! The walk runs over the raw bytes (a serde `DeserializeSeed` guided by the schema), so the
//! order of the messages is the body's and duplicate keys, which a decoded map no longer shows,
//! are seen. It builds nothing but the list of findings.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use rkube_api::status::ApiError;
use rkube_registry::rest::{FieldCheck, FieldValidation};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::response::Failure;

use super::schemas;

/// The body's format, for the walk over its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `application/json`.
    Json,
    /// `application/yaml`.
    Yaml,
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// What the walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Finding {
    /// A field the schema does not have (dropped).
    Unknown(Vec<Step>),
    /// A key repeated in one object (the last one wins, as upstream's decoder).
    Duplicate(Vec<Step>),
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, path) = match self {
            Finding::Unknown(p) => ("unknown", p),
            Finding::Duplicate(p) => ("duplicate", p),
        };
        // sigs.k8s.io/json's path form: `spec.containers[0].foo`.
        let mut text = String::new();
        for step in path {
            match step {
                Step::Key(k) => {
                    if !text.is_empty() {
                        text.push('.');
                    }
                    text.push_str(k);
                }
                Step::Index(i) => text.push_str(&format!("[{i}]")),
            }
        }
        write!(f, "{what} field {}", Value::from(text))
    }
}

/// Checks a decoded create or update body of `group/version/kind` against its schema: drops
/// unknown fields from `object` and answers the warnings to send (`Warn`), or upstream's 400
/// (`Strict`). Kinds without a schema pass untouched.
pub(crate) fn check_body(
    (group, version, kind): (&str, &str, &str),
    media: Option<&str>,
    raw: &[u8],
    object: &mut Value,
    mode: FieldValidation,
) -> Result<Vec<String>, Failure> {
    let format = match media {
        None | Some("application/json") => Format::Json,
        Some("application/yaml") => Format::Yaml,
        // Protobuf has no field names to get wrong: unknown fields never decode.
        Some(_) => return Ok(Vec::new()),
    };
    let Some(root) = root_schema(group, version, kind) else {
        return Ok(Vec::new());
    };
    let findings = scan(root, raw, format);
    if findings.is_empty() {
        return Ok(Vec::new());
    }
    for finding in &findings {
        if let Finding::Unknown(path) = finding {
            remove(object, path);
        }
    }
    match mode {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Warn => Ok(findings.iter().map(ToString::to_string).collect()),
        FieldValidation::Strict => {
            let list: Vec<String> = findings.iter().map(ToString::to_string).collect();
            // The version is the body's (filled in from the URL when absent), as upstream's
            // decoder reports the kind it decoded.
            Err(ApiError::bad_request(format!(
                "{kind} in version {} cannot be handled as a {kind}: strict decoding error: {}",
                Value::from(version),
                list.join(", ")
            ))
            .into())
        }
    }
}

/// The check of a patched `group/version/kind` object (upstream decodes it strictly into its Go
/// type): drops unknown fields and names them. `None` for kinds without a schema.
pub(crate) fn patched_object_check(
    (group, version, kind): (&str, &str, &str),
) -> Option<FieldCheck> {
    let root = root_schema(group, version, kind)?;
    Some(FieldCheck(Arc::new(move |object: &mut Value| {
        let Ok(raw) = serde_json::to_vec(object) else {
            return Vec::new();
        };
        let findings = scan(root, &raw, Format::Json);
        for finding in &findings {
            if let Finding::Unknown(path) = finding {
                remove(object, path);
            }
        }
        findings.iter().map(ToString::to_string).collect()
    })))
}

/// The duplicate keys of a merge or strategic-merge patch body, which upstream's strict decode of
/// the patch reports (its unknown fields show up in the patched object instead).
pub(crate) fn patch_duplicates(
    (group, version, kind): (&str, &str, &str),
    raw: &[u8],
) -> Vec<String> {
    let Some(root) = root_schema(group, version, kind) else {
        return Vec::new();
    };
    scan(root, raw, Format::Json)
        .iter()
        .filter(|f| matches!(f, Finding::Duplicate(_)))
        .map(ToString::to_string)
        .collect()
}

/// The schema of a kind, if it has one.
fn root_schema(group: &str, version: &str, kind: &str) -> Option<&'static Value> {
    let k = schemas::find(group, version, kind)?;
    schemas::V3.get((k.name)().as_ref())
}

/// Walks `raw` against `root`; findings in document order. A body the walk cannot read (it
/// decoded already, so only exotic YAML) yields nothing.
fn scan(root: &Value, raw: &[u8], format: Format) -> Vec<Finding> {
    let mut walk = Walk {
        findings: Vec::new(),
        path: Vec::new(),
    };
    let node = Node {
        walk: &mut walk,
        schema: Some(root),
    };
    let ok = match format {
        Format::Json => node
            .deserialize(&mut serde_json::Deserializer::from_slice(raw))
            .is_ok(),
        Format::Yaml => node
            .deserialize(serde_yaml_ng::Deserializer::from_slice(raw))
            .is_ok(),
    };
    if ok { walk.findings } else { Vec::new() }
}

/// Removes the field at `path` from `value`, when it is there.
fn remove(value: &mut Value, path: &[Step]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = value;
    for step in parents {
        let next = match (step, at) {
            (Step::Key(k), Value::Object(map)) => map.get_mut(k),
            (Step::Index(i), Value::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return,
        }
    }
    if let (Step::Key(k), Value::Object(map)) = (last, at) {
        map.remove(k);
    }
}

/// Follows a schema's reference (`$ref`, or `allOf: [{$ref}]` with siblings) to the definition.
fn resolve(schema: &Value) -> &Value {
    let reference = schema
        .get("$ref")
        .or_else(|| schema.pointer("/allOf/0/$ref"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"));
    match reference.and_then(|name| schemas::V3.get(name)) {
        Some(target) => resolve(target),
        None => schema,
    }
}

/// What a schema says about the members of an object.
enum Members<'s> {
    /// A struct: these properties and no others.
    Fields(&'s Map<String, Value>),
    /// A map: every value has this schema.
    Values(&'s Value),
    /// Anything goes (`RawExtension`, `x-kubernetes-preserve-unknown-fields`, untyped objects).
    Any,
}

fn members(schema: &Value) -> Members<'_> {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return Members::Any;
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        return Members::Fields(props);
    }
    match schema.get("additionalProperties") {
        Some(v @ Value::Object(_)) => Members::Values(v),
        _ => Members::Any,
    }
}

struct Walk {
    findings: Vec<Finding>,
    path: Vec<Step>,
}

/// One value of the body with its schema (`None`: not checked).
struct Node<'w, 's> {
    walk: &'w mut Walk,
    schema: Option<&'s Value>,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.schema {
            None => d.deserialize_ignored_any(IgnoredAny).map(drop),
            Some(schema) => d.deserialize_any(NodeVisitor {
                walk: self.walk,
                schema: resolve(schema),
            }),
        }
    }
}

struct NodeVisitor<'w, 's> {
    walk: &'w mut Walk,
    schema: &'s Value,
}

macro_rules! ignore_scalars {
    ($($name:ident: $ty:ty),*) => {$(
        fn $name<E: de::Error>(self, _: $ty) -> Result<(), E> {
            Ok(())
        }
    )*};
}

impl<'de> Visitor<'de> for NodeVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    ignore_scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64,
        visit_str: &str, visit_i128: i128, visit_u128: u128);

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        Node {
            walk: self.walk,
            schema: Some(self.schema),
        }
        .deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let items = self.schema.get("items");
        let mut i = 0;
        loop {
            self.walk.path.push(Step::Index(i));
            let more = seq.next_element_seed(Node {
                walk: self.walk,
                schema: items,
            });
            self.walk.path.pop();
            if more?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let members = members(self.schema);
        let mut seen = HashSet::new();
        while let Some(Key(key)) = map.next_key()? {
            let schema = match &members {
                Members::Fields(props) => props.get(&key),
                Members::Values(v) => Some(*v),
                Members::Any => None,
            };
            self.walk.path.push(Step::Key(key.clone()));
            if !seen.insert(key) {
                let path = self.walk.path.clone();
                self.walk.findings.push(Finding::Duplicate(path));
            } else if schema.is_none() && matches!(members, Members::Fields(_)) {
                let path = self.walk.path.clone();
                self.walk.findings.push(Finding::Unknown(path));
            }
            let value = map.next_value_seed(Node {
                walk: self.walk,
                schema,
            });
            self.walk.path.pop();
            value?;
        }
        Ok(())
    }
}

/// A map key as JSON would carry it: YAML's numbers and booleans as their text.
struct Key(String);

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
                Ok(Key(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: &Value, mode: FieldValidation) -> (Value, Result<Vec<String>, Failure>) {
        let raw = body.to_string();
        let mut object = body.clone();
        let r = check_body(
            ("apps", "v1", "Deployment"),
            None,
            raw.as_bytes(),
            &mut object,
            mode,
        );
        (object, r)
    }

    #[test]
    fn known_fields_pass_untouched() {
        let body = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"any": "label"}, "annotations": {"a": "b"}},
            "spec": {
                "replicas": 2,
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "selector": {"matchLabels": {"app": "x"}},
                "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{
                    "name": "c", "image": "nginx",
                    "resources": {"limits": {"cpu": "1", "memory": 5}},
                    "ports": [{"containerPort": 80}],
                }]}},
            },
        });
        let (object, r) = check(&body, FieldValidation::Strict);
        assert_eq!(r.map_err(|e| e.message().to_owned()), Ok(vec![]));
        assert_eq!(object, body);
    }

    #[test]
    fn unknown_and_duplicate_fields_in_document_order() {
        let raw = br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},
            "spec":{"unknownField":"foo","replicas":2,"replicas":3,
            "template":{"spec":{"containers":[{"name":"c","bogus":1}]}}},"bar":1}"#;
        let mut object: Value = serde_json::from_slice(raw).expect("json");
        let err = check_body(
            ("apps", "v1", "Deployment"),
            Some("application/json"),
            raw,
            &mut object,
            FieldValidation::Strict,
        )
        .expect_err("strict");
        assert_eq!(err.code(), 400);
        assert_eq!(
            err.message(),
            r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.unknownField", duplicate field "spec.replicas", unknown field "spec.template.spec.containers[0].bogus", unknown field "bar""#
        );
        assert!(object.get("bar").is_none());
        assert!(object["spec"].get("unknownField").is_none());
        assert_eq!(object["spec"]["replicas"], 3);
        assert_eq!(
            object["spec"]["template"]["spec"]["containers"][0],
            json!({"name": "c"})
        );
    }

    #[test]
    fn yaml_bodies_are_walked_too() {
        let raw = b"apiVersion: apps/v1\nkind: Deployment\nspec:\n  foo: 1\n";
        let mut object: Value = serde_yaml_ng::from_slice(raw).expect("yaml");
        let warnings = check_body(
            ("apps", "v1", "Deployment"),
            Some("application/yaml"),
            raw,
            &mut object,
            FieldValidation::Warn,
        );
        assert_eq!(warnings, Ok(vec![r#"unknown field "spec.foo""#.to_owned()]));
        assert_eq!(object["spec"], json!({}));
    }
}
