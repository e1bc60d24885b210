//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`): request bodies decoded to JSON,
//! responses and watch events encoded from it.
//!
//! client-go's typed clients (and so kubectl's `create <kind>` commands) send protobuf and do not
//! fall back to JSON on `415`, so the API server decodes protobuf into the same
//! `serde_json::Value` a JSON body would have produced, and everything after decoding stays JSON.
//! Clients that prefer protobuf get it back: [`encode`] (objects, Status), [`encode_list`]
//! (`<Kind>List`) and [`watch_frame`] (one length-delimited `WatchEvent` of a watch stream) write
//! what Go's generated marshalling writes for the same object.
//!
//! A body is the magic `k8s\0`, then a `runtime.Unknown` envelope: `typeMeta` (apiVersion, kind)
//! and `raw`, the object's own message. `wire` reads and writes the protobuf wire format; the
//! generated `schema` table (upstream's field numbers, wire types, JSON names) says what each
//! field means; this module walks the two together to decode, `encode` walks the schema to
//! encode, and both render apimachinery's special types in their JSON forms (`IntOrString`,
//! `Quantity`, `Time`, `MicroTime`, `Duration`, raw JSON).
//!
//! Presence follows Go: its protobuf writes every non-pointer field, even zero, so the decoder
//! keeps a zero scalar only where Go's JSON would keep it (pointer fields, and fields without
//! `omitempty`), and the encoder writes Go's zero value for every non-pointer field the JSON
//! leaves out; the generator records which is which from upstream's struct tags. Kinds without a
//! message (custom resources) have no protobuf form ([`has_kind`]).

mod encode;
mod schema;
mod wire;

pub use self::encode::{Error as EncodeError, encode, encode_list, watch_frame};
pub use self::wire::Writer;

use serde_json::{Map, Value};

use self::schema::MESSAGES;
use self::wire::{Raw, Reader, WireType};

/// The protobuf media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Every protobuf body starts with these four bytes.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Nested messages deeper than this are refused; real objects stay far below it, and the JSON
/// produced (at most two levels per message) stays within serde_json's own limit of 128.
const MAX_DEPTH: usize = 48;

/// Why a protobuf body could not be decoded. Every variant is the client's fault (a 400).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body does not start with `k8s\0`.
    #[error("protobuf body does not start with the Kubernetes magic number")]
    Magic,
    /// The wire format is broken (truncated, lengths past the end, bad keys).
    #[error("malformed protobuf: {0}")]
    Malformed(&'static str),
    /// The envelope names a kind there is no schema for.
    #[error("no kind {kind:?} is registered for version {api_version:?}")]
    UnknownKind {
        /// `apiVersion` of the envelope.
        api_version: String,
        /// `kind` of the envelope.
        kind: String,
    },
    /// The envelope says the object is compressed or otherwise encoded.
    #[error("unsupported protobuf content encoding {0:?}")]
    ContentEncoding(String),
    /// A field's value does not fit its schema.
    #[error("field {field} of {message}: {reason}")]
    Field {
        /// Full proto name of the message.
        message: &'static str,
        /// JSON name of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A raw JSON field (`RawExtension`, `FieldsV1`, apiextensions `JSON`) is not JSON.
    #[error("embedded JSON in {message}: {source}")]
    RawJson {
        /// Full proto name of the message holding the JSON.
        message: &'static str,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// Messages nest deeper than [`MAX_DEPTH`].
    #[error("protobuf nesting exceeds {MAX_DEPTH} levels")]
    TooDeep,
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Decodes a whole protobuf body (magic, `runtime.Unknown`, object) into the object's JSON form,
/// with `apiVersion` and `kind` from the envelope.
pub fn decode(body: &[u8]) -> Result<Value> {
    decode_at(body, 0)
}

/// Whether objects of this kind have a protobuf message (custom resources do not).
pub fn has_kind(api_version: &str, kind: &str) -> bool {
    message_for(api_version, kind).is_some()
}

/// The proto package of a group-version's types: `apps`, `v1` -> `k8s.io.api.apps.v1`.
pub fn proto_package(group: &str, version: &str) -> String {
    let base = match group {
        "" => "k8s.io.api.core",
        "meta.k8s.io" => "k8s.io.apimachinery.pkg.apis.meta",
        "apiextensions.k8s.io" => "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions",
        "apiregistration.k8s.io" => "k8s.io.kube_aggregator.pkg.apis.apiregistration",
        "internal.apiserver.k8s.io" => "k8s.io.api.apiserverinternal",
        // Every other built-in group's package is its first label (`rbac.authorization.k8s.io`).
        other => {
            return format!(
                "k8s.io.api.{}.{version}",
                other.split('.').next().unwrap_or("")
            );
        }
    };
    format!("{base}.{version}")
}

fn decode_at(body: &[u8], depth: usize) -> Result<Value> {
    let envelope = body.strip_prefix(MAGIC).ok_or(Error::Magic)?;
    let unknown = Unknown::read(envelope)?;
    if !unknown.content_encoding.is_empty() {
        return Err(Error::ContentEncoding(unknown.content_encoding.to_owned()));
    }
    let message =
        message_for(unknown.api_version, unknown.kind).ok_or_else(|| Error::UnknownKind {
            api_version: unknown.api_version.to_owned(),
            kind: unknown.kind.to_owned(),
        })?;
    let mut object = match decode_message(message, unknown.raw, depth)? {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    object.insert("apiVersion".into(), unknown.api_version.into());
    object.insert("kind".into(), unknown.kind.into());
    Ok(Value::Object(object))
}

/// The `runtime.Unknown` envelope.
#[derive(Debug, Default)]
struct Unknown<'a> {
    api_version: &'a str,
    kind: &'a str,
    raw: &'a [u8],
    content_encoding: &'a str,
}

impl<'a> Unknown<'a> {
    fn read(buf: &'a [u8]) -> Result<Self> {
        const NAME: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
        let mut out = Self::default();
        let mut reader = Reader::new(buf);
        while let Some((number, raw)) = reader.next_field()? {
            match (number, raw) {
                (1, Raw::Len(type_meta)) => {
                    let mut tm = Reader::new(type_meta);
                    while let Some((number, raw)) = tm.next_field()? {
                        match (number, raw) {
                            (1, Raw::Len(s)) => out.api_version = utf8(NAME, "apiVersion", s)?,
                            (2, Raw::Len(s)) => out.kind = utf8(NAME, "kind", s)?,
                            _ => {}
                        }
                    }
                }
                (2, Raw::Len(raw)) => out.raw = raw,
                (3, Raw::Len(s)) => out.content_encoding = utf8(NAME, "contentEncoding", s)?,
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The message for an envelope's apiVersion and kind. `meta/v1` kinds (`DeleteOptions`) are
/// registered in every group-version, so they are found under any of them.
fn message_for(api_version: &str, kind: &str) -> Option<&'static Message> {
    if kind.is_empty() {
        return None;
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    find(&format!("{}.{kind}", proto_package(group, version)))
        .or_else(|| find(&format!("{}.{kind}", proto_package("meta.k8s.io", "v1"))))
}

fn find(name: &str) -> Option<&'static Message> {
    MESSAGES
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        .map(|i| &MESSAGES[i])
}

fn utf8<'a>(message: &'static str, field: &'static str, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| Error::Field {
        message,
        field,
        reason: "string is not valid UTF-8",
    })
}

/// Decodes one message. `None` is a value Go's JSON writes as `null` (a zero `Time`, an empty
/// `RawExtension`): the field is left out.
fn decode_message(msg: &'static Message, buf: &[u8], depth: usize) -> Result<Option<Value>> {
    if depth >= MAX_DEPTH {
        return Err(Error::TooDeep);
    }
    match msg.shape {
        Shape::Struct => decode_struct(msg, buf, depth).map(|m| Some(Value::Object(m))),
        Shape::IntOrString => {
            let (mut is_string, mut int, mut string) = (false, 0i32, String::new());
            let mut reader = Reader::new(buf);
            while let Some((number, raw)) = reader.next_field()? {
                match (number, raw) {
                    (1, Raw::Varint(t)) => is_string = t == 1,
                    (2, Raw::Varint(v)) => int = v as i32,
                    (3, Raw::Len(s)) => string = utf8(msg.name, "strVal", s)?.to_owned(),
                    _ => {}
                }
            }
            Ok(Some(if is_string { string.into() } else { int.into() }))
        }
        Shape::Quantity => {
            let fields = decode_struct(msg, buf, depth)?;
            Ok(Some(
                fields.get("string").cloned().unwrap_or_else(|| "0".into()),
            ))
        }
        Shape::Time | Shape::MicroTime => {
            if buf.is_empty() {
                return Ok(None);
            }
            let (mut seconds, mut nanos) = (0i64, 0i32);
            let mut reader = Reader::new(buf);
            while let Some((number, raw)) = reader.next_field()? {
                match (number, raw) {
                    (1, Raw::Varint(v)) => seconds = v as i64,
                    (2, Raw::Varint(v)) => nanos = v as i32,
                    _ => {}
                }
            }
            format_time(msg, seconds, nanos).map(|s| Some(s.into()))
        }
        Shape::Duration => {
            let fields = decode_struct(msg, buf, depth)?;
            let ns = fields.get("duration").and_then(Value::as_i64).unwrap_or(0);
            Ok(Some(go_duration(ns).into()))
        }
        Shape::RawJson => {
            let mut raw: &[u8] = &[];
            let mut reader = Reader::new(buf);
            while let Some((number, value)) = reader.next_field()? {
                if let (1, Raw::Len(bytes)) = (number, value) {
                    raw = bytes;
                }
            }
            if raw.is_empty() {
                Ok(None)
            } else if raw.starts_with(MAGIC) {
                decode_at(raw, depth + 1).map(Some)
            } else {
                serde_json::from_slice(raw)
                    .map(Some)
                    .map_err(|source| Error::RawJson {
                        message: msg.name,
                        source,
                    })
            }
        }
        // A Go named slice (`type ExtraValue []string`) travels as `{items: [...]}`.
        Shape::Items => {
            let mut fields = decode_struct(msg, buf, depth)?;
            let items = msg.fields.first().and_then(|f| fields.remove(f.json));
            Ok(Some(items.unwrap_or_else(|| Value::Array(Vec::new()))))
        }
        // apiextensions' `JSONSchemaPropsOr{Bool,Array,StringArray}`: the schema when there is
        // one, else the other alternative.
        Shape::Either => {
            let mut fields = decode_struct(msg, buf, depth)?;
            let pick = |schema: bool| {
                msg.fields
                    .iter()
                    .find(|f| matches!(f.ty, Ty::Msg(_)) == schema && f.card == Card::One)
                    .map(|f| f.json)
            };
            let value = pick(true)
                .and_then(|k| fields.remove(k))
                .or_else(|| msg.fields.iter().find_map(|f| fields.remove(f.json)))
                // `allows: false` is a zero the struct walk dropped; Go's JSON says `false`.
                .or_else(|| {
                    msg.fields
                        .iter()
                        .any(|f| matches!(f.ty, Ty::Bool))
                        .then_some(Value::Bool(false))
                });
            Ok(value)
        }
    }
}

fn decode_struct(msg: &'static Message, buf: &[u8], depth: usize) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    let mut reader = Reader::new(buf);
    while let Some((number, raw)) = reader.next_field()? {
        // Unknown fields come from newer clients: skipped, as upstream does.
        let Some(field) = msg.field(number) else {
            continue;
        };
        match field.card {
            Card::One => match value(msg, field, field.ty, raw, depth)? {
                // `json:",inline"`: the embedded struct's fields belong to this object.
                Some(Value::Object(inner)) if field.json.is_empty() => out.extend(inner),
                Some(v) => {
                    out.insert(field.json.into(), v);
                }
                None => {
                    out.remove(field.json);
                }
            },
            Card::Rep => {
                let slot = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = slot else { continue };
                match raw {
                    // Packed scalars: one length-delimited run of varints.
                    Raw::Len(run) if matches!(field.ty, Ty::I32 | Ty::I64 | Ty::Bool) => {
                        let mut r = Reader::new(run);
                        while !r.is_empty() {
                            let v = Raw::Varint(r.varint()?);
                            items.extend(value(msg, field, field.ty, v, depth)?);
                        }
                    }
                    _ => {
                        items.push(value(msg, field, field.ty, raw, depth)?.unwrap_or(Value::Null))
                    }
                }
            }
            Card::Map => {
                let Raw::Len(entry) = raw else {
                    return Err(wrong_wire_type(msg, field));
                };
                let (mut key, mut val) = (String::new(), None);
                let mut r = Reader::new(entry);
                while let Some((number, raw)) = r.next_field()? {
                    match (number, raw) {
                        (1, Raw::Len(k)) => key = utf8(msg.name, field.json, k)?.to_owned(),
                        (2, raw) => val = value(msg, field, field.ty, raw, depth)?,
                        _ => {}
                    }
                }
                let val = val.unwrap_or_else(|| zero(field.ty).unwrap_or(Value::Null));
                if let Value::Object(map) = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()))
                {
                    map.insert(key, val);
                }
            }
        }
    }
    for field in msg
        .fields
        .iter()
        .filter(|f| f.card == Card::One && !f.json.is_empty())
    {
        match field.presence {
            Presence::NonZero if out.get(field.json).is_some_and(is_zero_scalar) => {
                out.remove(field.json);
            }
            Presence::Always if !out.contains_key(field.json) => {
                if let Some(z) = zero(field.ty) {
                    out.insert(field.json.into(), z);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// One value of a field.
fn value(
    msg: &'static Message,
    field: &'static Field,
    ty: Ty,
    raw: Raw<'_>,
    depth: usize,
) -> Result<Option<Value>> {
    let expected = match ty {
        Ty::I32 | Ty::I64 | Ty::Bool => WireType::Varint,
        Ty::F64 => WireType::Fixed64,
        Ty::Str | Ty::Bytes | Ty::Msg(_) => WireType::Len,
    };
    if raw.wire_type() != expected {
        return Err(wrong_wire_type(msg, field));
    }
    Ok(match (ty, raw) {
        // int32 is sign-extended to 64 bits on the wire; truncation restores it.
        (Ty::I32, Raw::Varint(v)) => Some((v as i32).into()),
        (Ty::I64, Raw::Varint(v)) => Some((v as i64).into()),
        (Ty::Bool, Raw::Varint(v)) => Some((v != 0).into()),
        (Ty::F64, Raw::Fixed64(bits)) => {
            let number =
                serde_json::Number::from_f64(f64::from_bits(bits)).ok_or(Error::Field {
                    message: msg.name,
                    field: field.json,
                    reason: "not a finite number",
                })?;
            Some(number.into())
        }
        (Ty::Str, Raw::Len(s)) => Some(utf8(msg.name, field.json, s)?.into()),
        (Ty::Bytes, Raw::Len(b)) => Some(base64(b)),
        (Ty::Msg(i), Raw::Len(b)) => decode_message(&MESSAGES[usize::from(i)], b, depth + 1)?,
        _ => return Err(wrong_wire_type(msg, field)),
    })
}

fn wrong_wire_type(message: &'static Message, field: &'static Field) -> Error {
    Error::Field {
        message: message.name,
        field: field.json,
        reason: "wrong wire type",
    }
}

/// What Go's JSON writes for an unset non-pointer scalar.
fn zero(ty: Ty) -> Option<Value> {
    match ty {
        Ty::I32 | Ty::I64 => Some(0.into()),
        Ty::F64 => Some(0.0.into()),
        Ty::Bool => Some(false.into()),
        Ty::Str => Some("".into()),
        Ty::Bytes | Ty::Msg(_) => None,
    }
}

/// Go's `omitempty` test for scalars (structs are never omitted by it).
fn is_zero_scalar(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// `[]byte` in JSON: standard base64, as `encoding/json` writes it.
fn base64(bytes: &[u8]) -> Value {
    serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec())).unwrap_or(Value::Null)
}

/// `metav1.Time` keeps whole seconds (upstream drops the nanoseconds on decode);
/// `metav1.MicroTime` keeps microseconds.
fn format_time(msg: &'static Message, seconds: i64, nanos: i32) -> Result<String> {
    use k8s_openapi::jiff::{Timestamp, fmt::strtime};
    let bad = Error::Field {
        message: msg.name,
        field: "seconds",
        reason: "time out of range",
    };
    let micro = msg.shape == Shape::MicroTime;
    let nanos = if micro { nanos - nanos % 1000 } else { 0 };
    let ts = Timestamp::new(seconds, nanos).map_err(|_| bad)?;
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    strtime::format(format, ts).map_err(|_| Error::Field {
        message: msg.name,
        field: "seconds",
        reason: "time out of range",
    })
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `150ms`, `0s`.
fn go_duration(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    let fraction = |value: u64, digits: usize| {
        let s = format!("{value:0digits$}");
        let s = s.trim_end_matches('0');
        if s.is_empty() {
            String::new()
        } else {
            format!(".{s}")
        }
    };
    if u == 0 {
        return "0s".into();
    }
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}{}µs", u / 1_000, fraction(u % 1_000, 3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}{}ms", u / 1_000_000, fraction(u % 1_000_000, 6));
    }
    let (secs, frac) = (u / 1_000_000_000, fraction(u % 1_000_000_000, 9));
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{seconds}{frac}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{seconds}{frac}s")
    } else {
        format!("{sign}{seconds}{frac}s")
    }
}

/// One message of the schema.
#[derive(Debug)]
pub(crate) struct Message {
    /// Full proto name, `k8s.io.api.apps.v1.Deployment`.
    name: &'static str,
    /// How it is written in JSON.
    shape: Shape,
    /// Its fields, sorted by number.
    fields: &'static [Field],
}

impl Message {
    fn field(&self, number: u32) -> Option<&Field> {
        self.fields
            .binary_search_by_key(&number, |f| f.tag)
            .ok()
            .map(|i| &self.fields[i])
    }
}

/// How a message is written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A JSON object of its fields.
    Struct,
    /// A number or a string.
    IntOrString,
    /// Its string.
    Quantity,
    /// RFC 3339, seconds.
    Time,
    /// RFC 3339, microseconds.
    MicroTime,
    /// Go's duration string.
    Duration,
    /// The JSON its `raw` bytes hold.
    RawJson,
    /// The array of its one repeated field.
    Items,
    /// The value of whichever alternative is set.
    Either,
}

/// One field of a message.
#[derive(Debug)]
pub(crate) struct Field {
    /// Field number.
    tag: u32,
    /// JSON name.
    json: &'static str,
    /// Type of its values.
    ty: Ty,
    /// Single, repeated, or a map with string keys.
    card: Card,
    /// When it appears in JSON.
    presence: Presence,
}

/// Type of a field's values.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// int32 (varint).
    I32,
    /// int64 (varint).
    I64,
    /// bool (varint).
    Bool,
    /// double (fixed64).
    F64,
    /// string.
    Str,
    /// bytes, base64 in JSON.
    Bytes,
    /// A message, by index into the schema.
    Msg(u16),
}

/// How many values a field has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    /// One.
    One,
    /// A JSON array.
    Rep,
    /// A JSON object (string keys; entries are `{key 1, value 2}` messages).
    Map,
}

/// When a single field appears in JSON, as Go's `encoding/json` decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// A pointer: whenever it is on the wire, zero included.
    Set,
    /// `omitempty`: when on the wire and not a zero scalar.
    NonZero,
    /// Neither: always, zero when absent.
    Always,
}

/// Schema constructors, short so the generated table stays small.
const fn m(name: &'static str, shape: Shape, fields: &'static [Field]) -> Message {
    Message {
        name,
        shape,
        fields,
    }
}

const fn f(tag: u32, json: &'static str, ty: Ty, card: Card, presence: Presence) -> Field {
    Field {
        tag,
        json,
        ty,
        card,
        presence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_sorted_for_binary_search() {
        assert!(MESSAGES.windows(2).all(|w| w[0].name < w[1].name));
        for msg in &MESSAGES {
            assert!(
                msg.fields.windows(2).all(|w| w[0].tag < w[1].tag),
                "{}",
                msg.name
            );
        }
    }

    #[test]
    fn proto_packages() {
        assert_eq!(proto_package("", "v1"), "k8s.io.api.core.v1");
        assert_eq!(
            proto_package("rbac.authorization.k8s.io", "v1"),
            "k8s.io.api.rbac.v1"
        );
        assert_eq!(
            proto_package("apiextensions.k8s.io", "v1"),
            "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1"
        );
    }

    #[test]
    fn go_durations() {
        for (ns, s) in [
            (0, "0s"),
            (999, "999ns"),
            (1_500, "1.5µs"),
            (150_000_000, "150ms"),
            (3_500_000_000, "3.5s"),
            (3_723_000_000_000, "1h2m3s"),
            (60_000_000_000, "1m0s"),
            (-2_000_000_000, "-2s"),
        ] {
            assert_eq!(go_duration(ns), s);
        }
    }
}
