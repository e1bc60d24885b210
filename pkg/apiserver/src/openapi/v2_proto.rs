//! `/openapi/v2` as protobuf: gnostic's `openapi_v2.Document`, which kubectl downloads
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) for client-side validation
//! when the server's OpenAPI v3 does not say it validates a kind's fields itself — kinds without
//! a PATCH operation, such as TokenReview or Binding.
//!
//! What kubectl reads is the swagger version, the info and the definitions (each schema with its
//! `x-kubernetes-*` extensions, which gnostic carries as YAML text); the paths are not written,
//! so a client that needs operations reads the JSON document.

use rkube_api::protobuf::Writer;
use serde_json::{Map, Value};

/// Field numbers of gnostic's `Document`.
mod document {
    pub const SWAGGER: u32 = 1;
    pub const INFO: u32 = 2;
    pub const DEFINITIONS: u32 = 9;
}

/// How a JSON schema keyword is written in gnostic's `Schema`.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Double,
    Int,
    Strings,
    /// `Any` (YAML text).
    Any,
    /// Repeated `Any`.
    Anys,
    /// `AdditionalPropertiesItem`: a schema or a boolean.
    AdditionalProperties,
    /// `TypeItem`: one or more type names.
    Type,
    /// `ItemsItem`: one schema or several.
    Items,
    /// Repeated `Schema`.
    Schemas,
    /// `Properties`: named schemas.
    Properties,
}

/// gnostic's `Schema` fields, in field-number order; `x-` extensions come last (field 31).
const SCHEMA_FIELDS: &[(&str, u32, Kind)] = &[
    ("$ref", 1, Kind::Str),
    ("format", 2, Kind::Str),
    ("title", 3, Kind::Str),
    ("description", 4, Kind::Str),
    ("default", 5, Kind::Any),
    ("multipleOf", 6, Kind::Double),
    ("maximum", 7, Kind::Double),
    ("exclusiveMaximum", 8, Kind::Bool),
    ("minimum", 9, Kind::Double),
    ("exclusiveMinimum", 10, Kind::Bool),
    ("maxLength", 11, Kind::Int),
    ("minLength", 12, Kind::Int),
    ("pattern", 13, Kind::Str),
    ("maxItems", 14, Kind::Int),
    ("minItems", 15, Kind::Int),
    ("uniqueItems", 16, Kind::Bool),
    ("maxProperties", 17, Kind::Int),
    ("minProperties", 18, Kind::Int),
    ("required", 19, Kind::Strings),
    ("enum", 20, Kind::Anys),
    ("additionalProperties", 21, Kind::AdditionalProperties),
    ("type", 22, Kind::Type),
    ("items", 23, Kind::Items),
    ("allOf", 24, Kind::Schemas),
    ("properties", 25, Kind::Properties),
    ("discriminator", 26, Kind::Str),
    ("readOnly", 27, Kind::Bool),
    ("example", 30, Kind::Any),
];
/// `Schema.vendor_extension`.
const VENDOR_EXTENSION: u32 = 31;

/// The protobuf form of the Swagger 2.0 document `doc` (its `swagger`, `info` and
/// `definitions`).
pub(super) fn encode(doc: &Value) -> Vec<u8> {
    let mut w = Writer::default();
    if let Some(swagger) = doc.get("swagger").and_then(Value::as_str) {
        w.bytes_field(document::SWAGGER, swagger.as_bytes());
    }
    if let Some(info) = doc.get("info") {
        message(&mut w, document::INFO, |w| {
            for (number, key) in [(1, "title"), (2, "version"), (3, "description")] {
                if let Some(text) = info.get(key).and_then(Value::as_str) {
                    w.bytes_field(number, text.as_bytes());
                }
            }
        });
    }
    if let Some(definitions) = doc.get("definitions").and_then(Value::as_object) {
        // `Definitions.additional_properties`: NamedSchema { name = 1, value = 2 }.
        message(&mut w, document::DEFINITIONS, |w| {
            named_schemas(w, definitions)
        });
    }
    w.into_bytes()
}

/// A nested message (writing to a `Vec` cannot fail).
fn message(w: &mut Writer, number: u32, body: impl FnOnce(&mut Writer)) {
    let written: Result<(), std::convert::Infallible> = w.message_field(number, |w| {
        body(w);
        Ok(())
    });
    let Ok(()) = written;
}

/// Repeated `NamedSchema` (field 1) of a `Definitions` or `Properties`.
fn named_schemas(w: &mut Writer, schemas: &Map<String, Value>) {
    for (name, schema) in schemas {
        message(w, 1, |w| {
            w.bytes_field(1, name.as_bytes());
            message(w, 2, |w| write_schema(w, schema));
        });
    }
}

/// The fields of one `Schema`.
fn write_schema(w: &mut Writer, schema: &Value) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    for &(key, number, kind) in SCHEMA_FIELDS {
        if let Some(value) = schema.get(key) {
            write_field(w, number, kind, value);
        }
    }
    for (key, value) in schema.iter().filter(|(k, _)| k.starts_with("x-")) {
        // NamedAny { name = 1, value = 2 }.
        message(w, VENDOR_EXTENSION, |w| {
            w.bytes_field(1, key.as_bytes());
            message(w, 2, |w| any(w, value));
        });
    }
}

fn write_field(w: &mut Writer, number: u32, kind: Kind, value: &Value) {
    match kind {
        Kind::Str => {
            if let Some(text) = value.as_str() {
                w.bytes_field(number, text.as_bytes());
            }
        }
        Kind::Bool => {
            if value.as_bool() == Some(true) {
                w.varint_field(number, 1);
            }
        }
        Kind::Double => {
            if let Some(x) = value.as_f64() {
                w.fixed64_field(number, x.to_bits());
            }
        }
        Kind::Int => {
            if let Some(n) = value.as_i64() {
                w.varint_field(number, n as u64);
            }
        }
        Kind::Strings => {
            for text in value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                w.bytes_field(number, text.as_bytes());
            }
        }
        Kind::Any => message(w, number, |w| any(w, value)),
        Kind::Anys => {
            for item in value.as_array().into_iter().flatten() {
                message(w, number, |w| any(w, item));
            }
        }
        Kind::AdditionalProperties => message(w, number, |w| match value {
            Value::Bool(b) => w.varint_field(2, u64::from(*b)),
            schema => message(w, 1, |w| write_schema(w, schema)),
        }),
        Kind::Type => message(w, number, |w| match value {
            Value::Array(types) => {
                for t in types.iter().filter_map(Value::as_str) {
                    w.bytes_field(1, t.as_bytes());
                }
            }
            Value::String(t) => w.bytes_field(1, t.as_bytes()),
            _ => {}
        }),
        Kind::Items => message(w, number, |w| match value {
            Value::Array(schemas) => {
                for schema in schemas {
                    message(w, 1, |w| write_schema(w, schema));
                }
            }
            schema => message(w, 1, |w| write_schema(w, schema)),
        }),
        Kind::Schemas => {
            for schema in value.as_array().into_iter().flatten() {
                message(w, number, |w| write_schema(w, schema));
            }
        }
        Kind::Properties => {
            if let Some(properties) = value.as_object() {
                message(w, number, |w| named_schemas(w, properties));
            }
        }
    }
}

/// gnostic's `Any`: the value as YAML text (field 2), as its compiler writes extensions.
fn any(w: &mut Writer, value: &Value) {
    if let Ok(yaml) = serde_yaml_ng::to_string(value) {
        w.bytes_field(2, yaml.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Field `number` of a message as raw bytes, for the checks below.
    fn fields(mut buf: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let varint = |buf: &mut &[u8]| {
            let mut value = 0u64;
            for shift in (0..64).step_by(7) {
                let b = buf[0];
                *buf = &buf[1..];
                value |= u64::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    break;
                }
            }
            value
        };
        let mut out = Vec::new();
        while !buf.is_empty() {
            let key = varint(&mut buf);
            let (number, wire) = ((key >> 3) as u32, key & 7);
            let bytes = match wire {
                0 => varint(&mut buf).to_le_bytes().to_vec(),
                1 => {
                    let (v, rest) = buf.split_at(8);
                    buf = rest;
                    v.to_vec()
                }
                2 => {
                    let len = varint(&mut buf) as usize;
                    let (v, rest) = buf.split_at(len);
                    buf = rest;
                    v.to_vec()
                }
                other => panic!("wire type {other}"),
            };
            out.push((number, bytes));
        }
        out
    }

    fn field(buf: &[u8], number: u32) -> Vec<Vec<u8>> {
        fields(buf)
            .into_iter()
            .filter(|(n, _)| *n == number)
            .map(|(_, b)| b)
            .collect()
    }

    #[test]
    fn writes_gnostics_document_with_definitions_and_extensions() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.34.0"},
            "paths": {"/api/": {}},
            "definitions": {"io.k8s.api.core.v1.ConfigMap": {
                "description": "ConfigMap holds configuration data.",
                "type": "object",
                "required": ["a"],
                "properties": {
                    "data": {"type": "object", "additionalProperties": {"type": "string"}},
                    "list": {"type": "array", "items": {"$ref": "#/definitions/x"}},
                },
                "x-kubernetes-group-version-kind":
                    [{"group": "", "kind": "ConfigMap", "version": "v1"}],
            }},
        });
        let bytes = encode(&doc);
        assert_eq!(field(&bytes, 1), [b"2.0".to_vec()]);
        let info = &field(&bytes, 2)[0];
        assert_eq!(field(info, 1), [b"Kubernetes".to_vec()]);
        assert!(field(&bytes, 8).is_empty(), "paths are not written");
        let definitions = &field(&bytes, 9)[0];
        let named = &field(definitions, 1)[0];
        assert_eq!(field(named, 1), [b"io.k8s.api.core.v1.ConfigMap".to_vec()]);
        let schema = &field(named, 2)[0];
        assert_eq!(field(schema, 19), [b"a".to_vec()]);
        assert_eq!(field(&field(schema, 22)[0], 1), [b"object".to_vec()]);
        let properties = &field(schema, 25)[0];
        let names: Vec<Vec<u8>> = field(properties, 1)
            .iter()
            .map(|p| field(p, 1)[0].clone())
            .collect();
        assert_eq!(names, [b"data".to_vec(), b"list".to_vec()]);
        let data = &field(&field(properties, 1)[0], 2)[0];
        let additional = &field(data, 21)[0];
        let string_schema = &field(additional, 1)[0];
        assert_eq!(field(&field(string_schema, 22)[0], 1), [b"string".to_vec()]);
        let extension = &field(schema, 31)[0];
        assert_eq!(
            field(extension, 1),
            [b"x-kubernetes-group-version-kind".to_vec()]
        );
        let yaml = String::from_utf8(field(&field(extension, 2)[0], 2)[0].clone()).unwrap();
        let parsed: Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(
            parsed,
            doc["definitions"]["io.k8s.api.core.v1.ConfigMap"]["x-kubernetes-group-version-kind"]
        );
    }
}
