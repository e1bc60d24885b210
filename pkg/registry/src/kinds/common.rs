//! Helpers every kind shares: decoding the JSON form into a k8s-openapi type with field errors
//! for bodies that don't fit, defaulting fields in place, status-subresource handling,
//! immutable-field checks, ranges and enums with upstream's messages, and field-selector values.
//!
//! Defaults are applied to the JSON form directly rather than through a typed round trip: the
//! object keeps exactly what the client sent plus the defaults, and a body that does not fit
//! its type still gets defaulted where it can (validation then reports what is wrong with it).

use rkube_api::field::{FieldError, Path};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Upstream's `FieldImmutableErrorMsg`.
pub(crate) const IMMUTABLE: &str = "field is immutable";

/// Decodes `object` into `T`. A body that does not fit is reported as one field error at the
/// offending field (`spec.replicas: Invalid value: "x": invalid type: ...`), or `Required` for
/// a missing required field, so that a bad body gets a `422` with a useful cause.
pub(crate) fn decode<T: DeserializeOwned>(object: &Value) -> Result<T, FieldError> {
    // Decoding from text (not from the `Value`) gives the error a byte position, which is
    // mapped back to a field path below.
    let text = object.to_string();
    let err = match serde_json::from_str::<T>(&text) {
        Ok(v) => return Ok(v),
        Err(err) => err,
    };
    let msg = err.to_string();
    let detail = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg.as_str(),
    };
    let bytes = text.as_bytes();
    let pos = err.column().min(bytes.len());
    // The parser stops just after a bad scalar or a struct's closing brace, and just before a
    // container it refused; aim at the byte that belongs to the offending value.
    let target = match pos.checked_sub(1).map(|i| bytes[i]) {
        Some(b':' | b',' | b'[') | None => pos,
        Some(_) => pos - 1,
    };
    let mut i = 0;
    let found = locate(bytes, &mut i, target, &Path::none());
    let (path, start, end) = found.unwrap_or((Path::none(), 0, 0));
    if let Some(name) = detail
        .strip_prefix("missing field `")
        .and_then(|s| s.strip_suffix('`'))
    {
        return Err(FieldError::required(&path.child(name), ""));
    }
    let bad = serde_json::from_slice::<Value>(&bytes[start..end]).unwrap_or(Value::Null);
    Err(FieldError::invalid(&path, bad, detail))
}

/// The path and byte range of the innermost JSON value in `text` (compact, as `Value`'s
/// `Display` writes it) that contains byte `target`, parsing from `*i`.
fn locate(text: &[u8], i: &mut usize, target: usize, path: &Path) -> Option<(Path, usize, usize)> {
    let start = *i;
    match text.get(*i)? {
        b'{' => {
            *i += 1;
            while text.get(*i)? != &b'}' {
                if text[*i] == b',' {
                    *i += 1;
                }
                let key_start = *i;
                skip_string(text, i)?;
                let key: String = serde_json::from_slice(&text[key_start..*i]).ok()?;
                *i += 1; // ':'
                if let Some(found) = locate(text, i, target, &path.child(&key)) {
                    return Some(found);
                }
            }
            *i += 1;
        }
        b'[' => {
            *i += 1;
            let mut index = 0;
            while text.get(*i)? != &b']' {
                if text[*i] == b',' {
                    *i += 1;
                }
                if let Some(found) = locate(text, i, target, &path.index(index)) {
                    return Some(found);
                }
                index += 1;
            }
            *i += 1;
        }
        b'"' => skip_string(text, i)?,
        _ => {
            while text
                .get(*i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']'))
            {
                *i += 1;
            }
        }
    }
    (start..*i)
        .contains(&target)
        .then(|| (path.clone(), start, *i))
}

/// Advances `*i` past the JSON string starting at `*i`.
fn skip_string(text: &[u8], i: &mut usize) -> Option<()> {
    *i += 1;
    loop {
        match text.get(*i)? {
            b'\\' => *i += 2,
            b'"' => {
                *i += 1;
                return Some(());
            }
            _ => *i += 1,
        }
    }
}

/// Decodes for validation: the typed value, or the decode error as the whole error list.
pub(crate) fn decode_or_errors<T: DeserializeOwned>(object: &Value) -> Result<T, Vec<FieldError>> {
    decode(object).map_err(|e| vec![e])
}

/// `object[key]` as a map, if it is one.
pub(crate) fn map_mut<'a>(object: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    object.get_mut(key)?.as_object_mut()
}

/// `map[key]` as a map, created empty when absent or null (a JSON null is an unset field).
/// `None` when it holds something else, which validation reports.
pub(crate) fn ensure_map<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let slot = map.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// Sets `map[key]` to `value` when the client left it unset (absent or null).
pub(crate) fn default_field(map: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    let slot = map.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = value.into();
    }
}

/// Sets `map[key]` to `value` when it is unset, the empty string, or zero: Go's defaulting of
/// non-pointer fields cannot tell those from unset.
pub(crate) fn default_if_empty(map: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    let slot = map.entry(key).or_insert(Value::Null);
    let empty = match slot {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    };
    if empty {
        *slot = value.into();
    }
}

/// The maps in the array `map[key]` (entries of other types are left to validation).
pub(crate) fn each_map<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// `map[key]` as a map, if present and one.
pub(crate) fn child_map<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key)?.as_object_mut()
}

/// `PrepareForCreate` of a kind with a status subresource: the client may not set status.
pub(crate) fn clear_status(object: &mut Value) {
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
}

/// `PrepareForUpdate` of a kind with a status subresource: status only changes through it.
pub(crate) fn keep_status(new: &mut Value, old: &Value) {
    let Some(map) = new.as_object_mut() else {
        return;
    };
    match old.get("status") {
        Some(status) => {
            map.insert("status".into(), status.clone());
        }
        None => {
            map.remove("status");
        }
    }
}

/// Upstream's `ValidateImmutableField`: `Invalid value: <new>: field is immutable`.
pub(crate) fn immutable<T: PartialEq + serde::Serialize>(
    new: &T,
    old: &T,
    path: &Path,
) -> Option<FieldError> {
    (new != old).then(|| {
        let value = serde_json::to_value(new).unwrap_or(Value::Null);
        FieldError::invalid(path, value, IMMUTABLE)
    })
}

/// Upstream's `InclusiveRangeError`.
pub(crate) fn range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// A port number in 1..=65535 (`validation.IsValidPortNum`).
pub(crate) fn validate_port(port: i32, path: &Path) -> Option<FieldError> {
    (!(1..=65535).contains(&port)).then(|| FieldError::invalid(path, port, range_error(1, 65535)))
}

/// Upstream's `ValidateNonnegativeField`.
pub(crate) fn non_negative(value: i64, path: &Path) -> Option<FieldError> {
    (value < 0).then(|| FieldError::invalid(path, value, "must be greater than or equal to 0"))
}

/// An enum field: `Required value` when empty, `Unsupported value` when not in `supported`.
pub(crate) fn enum_value(value: &str, supported: &[&str], path: &Path) -> Option<FieldError> {
    if value.is_empty() {
        Some(FieldError::required(path, ""))
    } else if !supported.contains(&value) {
        Some(FieldError::not_supported(path, value, supported))
    } else {
        None
    }
}

/// [`enum_value`] for an optional field: unset is fine.
pub(crate) fn opt_enum(value: Option<&str>, supported: &[&str], path: &Path) -> Option<FieldError> {
    value.and_then(|v| enum_value(v, supported, path))
}

/// A name that must be a DNS-1123 label, with one error per problem.
pub(crate) fn dns_label(value: &str, path: &Path) -> Vec<FieldError> {
    rkube_api::validation::is_dns1123_label(value)
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// A name that must be a DNS-1123 subdomain, with one error per problem.
pub(crate) fn dns_subdomain(value: &str, path: &Path) -> Vec<FieldError> {
    rkube_api::validation::is_dns1123_subdomain(value)
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// The value at a dotted path as a field selector compares it: strings as they are, booleans
/// and numbers printed, anything missing as the empty string (upstream's field sets).
pub(crate) fn dotted(object: &Value, field: &str) -> String {
    let mut v = object;
    for part in field.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return String::new(),
        }
    }
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// [`dotted`] for a field in `fields`, `None` for any other (upstream's field-label
/// conversion rejects those before a selector is ever evaluated).
pub(crate) fn selectable(object: &Value, fields: &[&str], field: &str) -> Option<String> {
    fields.contains(&field).then(|| dotted(object, field))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_api::k8s_openapi::api::apps::v1::Deployment;
    use rkube_api::k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    #[test]
    fn decode_errors_name_the_field() {
        let e = decode::<Deployment>(&json!({"spec": {"replicas": "x"}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"spec.replicas: Invalid value: "x": invalid type: string "x", expected i32"#
        );
        let e = decode::<Pod>(&json!({"spec": {"containers": [
            {"name": "a"},
            {"name": "b", "ports": [{"containerPort": {"x": 1}}]}
        ]}}))
        .unwrap_err();
        assert_eq!(e.field, "spec.containers[1].ports[0].containerPort");
        assert_eq!(e.bad_value, json!({"x": 1}).into());
        let e = decode::<Pod>(&json!({"spec": {"containers": [{"name": ["x"]}]}})).unwrap_err();
        assert_eq!(e.field, "spec.containers[0].name");
        // k8s-openapi defaults missing required fields; derived types report them.
        #[derive(serde::Deserialize, Debug)]
        struct Inner {
            #[allow(dead_code)]
            name: String,
        }
        #[derive(serde::Deserialize, Debug)]
        struct Outer {
            #[allow(dead_code)]
            items: Vec<Inner>,
        }
        let e = decode::<Outer>(&json!({"items": [{"name": "a"}, {}]})).unwrap_err();
        assert_eq!(e.to_string(), "items[1].name: Required value");
        let e = decode::<Pod>(&json!({"spec": {"hostNetwork": 1, "x": "é\"}"}})).unwrap_err();
        assert_eq!(e.field, "spec.hostNetwork");
        let e = decode::<Pod>(&json!({"spec": "x"})).unwrap_err();
        assert_eq!(e.field, "spec");
        let e = decode::<Pod>(&json!("x")).unwrap_err();
        assert_eq!(e.field, "<nil>");
    }

    #[test]
    fn defaults_fill_only_unset_fields() {
        let mut m = json!({"a": null, "b": 1, "c": ""});
        let map = m.as_object_mut().unwrap();
        default_field(map, "a", 5);
        default_field(map, "b", 5);
        default_if_empty(map, "c", "x");
        default_field(map, "d", true);
        assert_eq!(m, json!({"a": 5, "b": 1, "c": "x", "d": true}));
    }

    #[test]
    fn status_is_cleared_and_kept() {
        let mut o = json!({"spec": {}, "status": {"x": 1}});
        clear_status(&mut o);
        assert_eq!(o, json!({"spec": {}}));
        let mut n = json!({"status": {"x": 2}});
        keep_status(&mut n, &json!({"status": {"x": 1}}));
        assert_eq!(n, json!({"status": {"x": 1}}));
        keep_status(&mut n, &json!({}));
        assert_eq!(n, json!({}));
    }

    #[test]
    fn shared_messages() {
        let p = Path::new("spec").child("x");
        assert_eq!(
            immutable(&"b", &"a", &p).unwrap().to_string(),
            r#"spec.x: Invalid value: "b": field is immutable"#
        );
        assert_eq!(
            validate_port(0, &p).unwrap().to_string(),
            "spec.x: Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            enum_value("", &["A"], &p).unwrap().to_string(),
            "spec.x: Required value"
        );
        assert_eq!(
            dotted(&json!({"spec": {"u": true, "n": "a"}}), "spec.u"),
            "true"
        );
        assert_eq!(dotted(&json!({}), "spec.n"), "");
    }
}
