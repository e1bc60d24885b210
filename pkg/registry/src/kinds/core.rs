//! Namespaces, ConfigMaps and Secrets (`pkg/registry/core/{namespace,configmap,secret}`,
//! `ValidateNamespace`, `ValidateConfigMap`, `ValidateSecret`).

use std::collections::BTreeMap;

use rkube_api::field::{BadValue, ErrorType, FieldError, Path};
use rkube_api::k8s_openapi::ByteString;
use rkube_api::k8s_openapi::api::core::v1::{ConfigMap, Secret};
use rkube_api::validation::{
    DNS1123_SUBDOMAIN_MAX_LENGTH, is_dns1123_label, is_dns1123_subdomain, max_len_error,
    regex_error,
};
use serde_json::{Map, Value, json};

use super::common::{
    clear_status, decode_or_errors, default_if_empty, ensure_map, immutable, keep_status,
    selectable,
};
use crate::Strategy;

/// Upstream's `MaxSecretSize`, also the ConfigMap limit.
const MAX_SIZE: usize = 1024 * 1024;
const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

/// The namespace strategy.
#[derive(Debug, Clone, Copy, Default)]
pub struct NamespaceStrategy;

const NAMESPACE_FIELDS: &[&str] = &["status.phase"];

/// What upstream answers a delete of a namespace whose contents are still being removed.
const NAMESPACE_TERMINATING: &str = "The system is ensuring all content is removed from this \
     namespace.  Upon completion, this namespace will automatically be purged by the system.";

impl Strategy for NamespaceStrategy {
    fn deletion_hold(&self, object: &Value) -> Option<&'static str> {
        let held = object["spec"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        held.then_some(NAMESPACE_TERMINATING)
    }

    fn prepare_for_delete(&self, object: &mut Value) {
        object["status"]["phase"] = Value::from("Terminating");
    }

    fn default(&self, object: &mut Value) {
        // Every namespace carries its own name as a label (`SetDefaults_Namespace`).
        let name = rkube_api::meta::name(object).map(str::to_owned);
        if let (Some(name), Some(meta)) = (name, rkube_api::meta::metadata_mut(object))
            && let Some(labels) = ensure_map(meta, "labels")
        {
            labels.insert("kubernetes.io/metadata.name".into(), name.into());
        }
    }

    fn prepare_for_create(&self, object: &mut Value) {
        clear_status(object);
        let Some(map) = object.as_object_mut() else {
            return;
        };
        map.insert("status".into(), json!({"phase": "Active"}));
        let Some(spec) = ensure_map(map, "spec") else {
            return;
        };
        let finalizers = spec.entry("finalizers").or_insert_with(|| json!([]));
        if finalizers.is_null() {
            *finalizers = json!([]);
        }
        if let Some(list) = finalizers.as_array_mut()
            && !list.iter().any(|f| f == "kubernetes")
        {
            list.push("kubernetes".into());
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
        // Finalizers change only through the `finalize` subresource.
        let finalizers = old.pointer("/spec/finalizers").cloned();
        if let Some(map) = new.as_object_mut() {
            match (finalizers, ensure_map(map, "spec")) {
                (Some(f), Some(spec)) => {
                    spec.insert("finalizers".into(), f);
                }
                (None, Some(spec)) => {
                    spec.remove("finalizers");
                }
                _ => {}
            }
        }
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        // Namespace names are DNS labels; the registry already reports what breaks the
        // subdomain rule, so only the extra label rule (no dots) is added here.
        let name = rkube_api::meta::name(object).unwrap_or_default();
        if name.is_empty() || !is_dns1123_subdomain(name).is_empty() {
            return Vec::new();
        }
        let path = Path::new("metadata").child("name");
        is_dns1123_label(name)
            .into_iter()
            .map(|m| FieldError::invalid(&path, name, m))
            .collect()
    }

    fn has_status_subresource(&self) -> bool {
        true
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        NAMESPACE_FIELDS
    }

    fn field_value(&self, object: &Value, field: &str) -> Option<String> {
        selectable(object, NAMESPACE_FIELDS, field)
    }
}

/// `IsConfigMapKey`: keys of ConfigMap and Secret data.
fn config_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if key.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let valid = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    match key {
        "." => errs.push("must not be '.'".into()),
        ".." => errs.push("must not be '..'".into()),
        k if k.starts_with("..") => errs.push("must not start with '..'".into()),
        _ => {}
    }
    errs
}

fn validate_keys<'a>(keys: impl Iterator<Item = &'a String>, path: &Path) -> Vec<FieldError> {
    keys.flat_map(|k| {
        let p = path.key(k);
        config_key_errors(k)
            .into_iter()
            .map(move |m| FieldError::invalid(&p, k, m))
    })
    .collect()
}

/// `Too long` for a whole object's data; `field` is upstream's path for it (`data`, or the
/// empty path for ConfigMaps, which upstream renders as an empty field name).
fn too_big(field: &str) -> FieldError {
    FieldError {
        error_type: ErrorType::TooLong,
        field: field.to_owned(),
        bad_value: BadValue::Omitted,
        detail: format!("may not be more than {MAX_SIZE} bytes"),
    }
}

/// The rules of `immutable: true` on update, shared by ConfigMaps and Secrets.
fn immutable_rules(
    new_immutable: Option<bool>,
    old_immutable: Option<bool>,
    changed: &[(&str, bool)],
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old_immutable != Some(true) {
        return errs;
    }
    if new_immutable != Some(true) {
        errs.push(FieldError::forbidden(
            &Path::new("immutable"),
            IMMUTABLE_SET,
        ));
    }
    for (field, changed) in changed {
        if *changed {
            errs.push(FieldError::forbidden(&Path::new(field), IMMUTABLE_SET));
        }
    }
    errs
}

/// The ConfigMap strategy.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfigMapStrategy;

impl Strategy for ConfigMapStrategy {
    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let cm = match decode_or_errors::<ConfigMap>(object) {
            Ok(cm) => cm,
            Err(errs) => return errs,
        };
        let empty = BTreeMap::new();
        let data = cm.data.as_ref().unwrap_or(&empty);
        let binary = cm.binary_data.clone().unwrap_or_default();
        let mut errs = validate_keys(data.keys(), &Path::new("data"));
        let mut size = 0usize;
        for (k, v) in data {
            size = size.saturating_add(v.len());
            if binary.contains_key(k) {
                errs.push(FieldError::invalid(
                    &Path::new("data").key(k),
                    k,
                    "duplicate of key present in binaryData",
                ));
            }
        }
        errs.extend(validate_keys(binary.keys(), &Path::new("binaryData")));
        size = binary
            .values()
            .fold(size, |s, v| s.saturating_add(v.0.len()));
        if size > MAX_SIZE {
            errs.push(too_big(""));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        if let (Ok(n), Ok(o)) = (
            decode_or_errors::<ConfigMap>(new),
            decode_or_errors::<ConfigMap>(old),
        ) {
            errs.extend(immutable_rules(
                n.immutable,
                o.immutable,
                &[
                    ("data", n.data != o.data),
                    ("binaryData", n.binary_data != o.binary_data),
                ],
            ));
        }
        errs
    }
}

/// The Secret strategy.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecretStrategy;

const SECRET_FIELDS: &[&str] = &["type"];

impl Strategy for SecretStrategy {
    fn default(&self, object: &mut Value) {
        let Some(map) = object.as_object_mut() else {
            return;
        };
        default_if_empty(map, "type", "Opaque");
        // `stringData` is write-only: it is merged into `data` and never stored, its keys
        // winning (the v1 conversion does this upstream).
        let Some(string_data) = map.remove("stringData") else {
            return;
        };
        let Some(entries) = string_data.as_object() else {
            // Keep what cannot be merged so that validation reports it.
            map.insert("stringData".into(), string_data);
            return;
        };
        if let Some(data) = ensure_map(map, "data") {
            for (k, v) in entries {
                if let Some(s) = v.as_str() {
                    data.insert(k.clone(), base64(s.as_bytes()).into());
                }
            }
        }
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let secret = match decode_or_errors::<Secret>(object) {
            Ok(s) => s,
            Err(errs) => return errs,
        };
        let data_path = Path::new("data");
        let empty = BTreeMap::new();
        let data = secret.data.as_ref().unwrap_or(&empty);
        let mut errs = validate_keys(data.keys(), &data_path);
        let size = data
            .values()
            .fold(0usize, |s, v| s.saturating_add(v.0.len()));
        if size > MAX_SIZE {
            errs.push(too_big("data"));
        }
        errs.extend(type_rules(&secret, data, &data_path));
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        if let (Ok(n), Ok(o)) = (
            decode_or_errors::<Secret>(new),
            decode_or_errors::<Secret>(old),
        ) {
            errs.extend(immutable(&n.type_, &o.type_, &Path::new("type")));
            errs.extend(immutable_rules(
                n.immutable,
                o.immutable,
                &[("data", n.data != o.data)],
            ));
        }
        errs
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        SECRET_FIELDS
    }

    fn field_value(&self, object: &Value, field: &str) -> Option<String> {
        selectable(object, SECRET_FIELDS, field)
    }
}

/// The keys each well-known secret type requires.
fn type_rules(
    secret: &Secret,
    data: &BTreeMap<String, ByteString>,
    path: &Path,
) -> Vec<FieldError> {
    let required = |key: &str| FieldError::required(&path.key(key), "");
    let json_key = |key: &str| match data.get(key) {
        None => Some(required(key)),
        Some(bytes) => serde_json::from_slice::<Map<String, Value>>(&bytes.0)
            .err()
            .map(|e| {
                FieldError::invalid(&path.key(key), "<secret contents redacted>", e.to_string())
            }),
    };
    let mut errs = Vec::new();
    match secret.type_.as_deref().unwrap_or_default() {
        "kubernetes.io/service-account-token" => {
            let annotation = "kubernetes.io/service-account.name";
            let set = secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(annotation))
                .is_some_and(|v| !v.is_empty());
            if !set {
                errs.push(FieldError::required(
                    &Path::new("metadata").child("annotations").key(annotation),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" => errs.extend(json_key(".dockercfg")),
        "kubernetes.io/dockerconfigjson" => errs.extend(json_key(".dockerconfigjson")),
        // Either key may be empty, but one must be there.
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            errs.extend([required("username"), required("password")]);
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|v| v.0.is_empty()) => {
            errs.push(required("ssh-privatekey"));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !data.contains_key(key) {
                    errs.push(required(key));
                }
            }
        }
        _ => {}
    }
    errs
}

/// Standard base64 with padding, for `stringData`.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn namespace_create_and_update() {
        let s = NamespaceStrategy;
        let mut ns = json!({"metadata": {"name": "team-a"}, "status": {"phase": "Terminating"}});
        s.default(&mut ns);
        s.prepare_for_create(&mut ns);
        assert_eq!(
            ns,
            json!({"metadata": {"name": "team-a",
                    "labels": {"kubernetes.io/metadata.name": "team-a"}},
                   "spec": {"finalizers": ["kubernetes"]},
                   "status": {"phase": "Active"}})
        );
        let mut new = json!({"metadata": {"name": "team-a"}, "spec": {"finalizers": []},
            "status": {"phase": "Terminating"}});
        s.prepare_for_update(&mut new, &ns);
        assert_eq!(new["spec"], json!({"finalizers": ["kubernetes"]}));
        assert_eq!(new["status"], json!({"phase": "Active"}));
        assert_eq!(
            s.field_value(&ns, "status.phase").as_deref(),
            Some("Active")
        );
        assert_eq!(
            msgs(s.validate(&json!({"metadata": {"name": "a.b"}}))),
            [r#"metadata.name: Invalid value: "a.b": must not contain dots"#]
        );
    }

    #[test]
    fn configmap_rules() {
        let s = ConfigMapStrategy;
        let cm = json!({"data": {"a b": "x", "..x": "y", "ok": "z"}, "binaryData": {"ok": "AA=="}});
        assert_eq!(
            msgs(s.validate(&cm)),
            [
                r#"data[..x]: Invalid value: "..x": must not start with '..'"#,
                r#"data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"#,
                r#"data[ok]: Invalid value: "ok": duplicate of key present in binaryData"#,
            ]
        );
        let big = json!({"data": {"k": "x".repeat(MAX_SIZE + 1)}});
        assert_eq!(
            msgs(s.validate(&big)),
            [": Too long: may not be more than 1048576 bytes"]
        );
        let old = json!({"immutable": true, "data": {"k": "v"}});
        let new = json!({"immutable": false, "data": {"k": "w"}});
        assert_eq!(
            msgs(s.validate_update(&new, &old)),
            [
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set",
            ]
        );
        assert!(s.validate_update(&old, &old).is_empty());
    }

    #[test]
    fn secret_rules() {
        let s = SecretStrategy;
        let mut secret = json!({"data": {"a": "eA=="}, "stringData": {"a": "hello", "b": "hi!"}});
        s.default(&mut secret);
        assert_eq!(
            secret,
            json!({"type": "Opaque", "data": {"a": "aGVsbG8=", "b": "aGkh"}})
        );
        assert!(s.validate(&secret).is_empty());
        assert_eq!(s.field_value(&secret, "type").as_deref(), Some("Opaque"));

        let tls = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
        assert_eq!(msgs(s.validate(&tls)), ["data[tls.key]: Required value"]);
        let docker = json!({"type": "kubernetes.io/dockerconfigjson", "data": {}});
        assert_eq!(
            msgs(s.validate(&docker)),
            ["data[.dockerconfigjson]: Required value"]
        );
        let sa = json!({"type": "kubernetes.io/service-account-token"});
        assert_eq!(
            msgs(s.validate(&sa)),
            ["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
        );
        let retyped = json!({"type": "kubernetes.io/basic-auth", "data": {"username": ""}});
        assert_eq!(
            msgs(s.validate_update(&retyped, &secret)),
            [r#"type: Invalid value: "kubernetes.io/basic-auth": field is immutable"#]
        );
        let frozen = json!({"type": "Opaque", "immutable": true, "data": {"a": "eA=="}});
        let changed = json!({"type": "Opaque", "immutable": true, "data": {"a": "eQ=="}});
        assert_eq!(
            msgs(s.validate_update(&changed, &frozen)),
            ["data: Forbidden: field is immutable when `immutable` is set"]
        );
    }

    #[test]
    fn base64_encodes_like_go() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
