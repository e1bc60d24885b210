//! JSON objects (as stored) to Kubernetes protobuf, the inverse of the decoder, byte for byte
//! what Go's generated marshalling writes for the same object.
//!
//! The walk goes over the schema, not the JSON: every field of a message in number order, its
//! value looked up by JSON name. Go writes every non-pointer field, so a field absent from the
//! JSON is written as Go's zero value (an empty string, `0`, an empty nested message, a `Time`
//! with no fields) unless it is a pointer (`Presence::Set`) or `[]byte` (written only when not
//! nil). Map entries go in key order, as Go sorts them; repeated scalars are unpacked (proto2).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::wire::Writer;
use super::{Card, Field, MAGIC, MESSAGES, Message, Presence, Shape, Ty, message_for};

/// Why an object could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// There is no protobuf message for the kind (custom resources): upstream answers 406.
    #[error("no protobuf message is registered for kind {kind:?} in version {api_version:?}")]
    UnknownKind {
        /// `apiVersion` of the object.
        api_version: String,
        /// `kind` of the object.
        kind: String,
    },
    /// A value does not fit its field's type (the stored object is not what the schema says).
    #[error("field {field} of {message}: {reason}")]
    Field {
        /// Full proto name of the message.
        message: &'static str,
        /// JSON name of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `time.Time{}` (0001-01-01T00:00:00Z) in Unix seconds: Go writes a zero time as no fields.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// Encodes an object that carries its `apiVersion` and `kind` as a whole protobuf body: magic,
/// `runtime.Unknown{typeMeta, raw}`.
pub fn encode(object: &Value) -> Result<Vec<u8>> {
    let text = |key| object.get(key).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let msg = lookup(api_version, kind)?;
    envelope(api_version, kind, |w| fields(w, msg, object.as_object()))
}

/// Encodes a typed list (`PodList`) from its parts, so the items need not be gathered into one
/// JSON value first. Items keep their own `apiVersion` and `kind`; the message has no such
/// fields, as upstream's lists do not.
pub fn encode_list<'a>(
    api_version: &str,
    kind: &str,
    metadata: &Value,
    items: impl IntoIterator<Item = &'a Value>,
) -> Result<Vec<u8>> {
    let msg = lookup(api_version, kind)?;
    let mut items = Some(items);
    envelope(api_version, kind, |w| {
        for field in msg.fields {
            match field.json {
                "metadata" => put(w, msg, field, field.tag, Some(metadata))?,
                "items" => {
                    for item in items.take().into_iter().flatten() {
                        put(w, msg, field, field.tag, Some(item))?;
                    }
                }
                _ => struct_field(w, msg, field, None)?,
            }
        }
        Ok(())
    })
}

/// One frame of a protobuf watch stream (upstream's length-delimited framer over the raw
/// serializer): a 4-byte big-endian length, then a `meta/v1` `WatchEvent` message without magic
/// or envelope, whose `object.raw` is the object's whole body (`object`, from [`encode`]).
pub fn watch_frame(event_type: &str, object: &[u8]) -> Vec<u8> {
    let mut w = Writer::with_prefix(&[0; 4]);
    // WatchEvent{type = 1, object = 2: RawExtension{raw = 1}}, fixed upstream.
    w.bytes_field(1, event_type.as_bytes());
    let never = w.message_field(2, |w| {
        w.bytes_field(1, object);
        Ok::<_, std::convert::Infallible>(())
    });
    let Ok(()) = never;
    let mut frame = w.into_bytes();
    // Frames beyond 4 GiB cannot exist: objects are bounded far below by request limits.
    let len = u32::try_from(frame.len() - 4).unwrap_or(u32::MAX);
    frame[..4].copy_from_slice(&len.to_be_bytes());
    frame
}

fn lookup(api_version: &str, kind: &str) -> Result<&'static Message> {
    message_for(api_version, kind).ok_or_else(|| Error::UnknownKind {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
    })
}

/// Magic, then `runtime.Unknown`: typeMeta (1), raw (2), contentEncoding and contentType
/// (3, 4; empty but written, as Go writes non-pointer strings).
fn envelope(
    api_version: &str,
    kind: &str,
    raw: impl FnOnce(&mut Writer) -> Result<()>,
) -> Result<Vec<u8>> {
    let mut w = Writer::with_prefix(MAGIC);
    w.message_field(1, |w| {
        w.bytes_field(1, api_version.as_bytes());
        w.bytes_field(2, kind.as_bytes());
        Ok(())
    })?;
    w.message_field(2, raw)?;
    w.bytes_field(3, b"");
    w.bytes_field(4, b"");
    Ok(w.into_bytes())
}

fn bad(msg: &'static Message, field: &'static Field, reason: &'static str) -> Error {
    Error::Field {
        message: msg.name,
        field: field.json,
        reason,
    }
}

/// The fields of a struct message from a JSON object; `None` is Go's zero value of the struct.
fn fields(
    w: &mut Writer,
    msg: &'static Message,
    object: Option<&Map<String, Value>>,
) -> Result<()> {
    for field in msg.fields {
        struct_field(w, msg, field, object)?;
    }
    Ok(())
}

fn struct_field(
    w: &mut Writer,
    msg: &'static Message,
    field: &'static Field,
    object: Option<&Map<String, Value>>,
) -> Result<()> {
    // `json:",inline"`: the embedded struct's fields are this object's.
    if field.json.is_empty() {
        if let Ty::Msg(i) = field.ty {
            return w.message_field(field.tag, |w| fields(w, &MESSAGES[usize::from(i)], object));
        }
        return Ok(());
    }
    // Go's JSON decodes `null` to the zero value (a nil pointer, an empty slice).
    let value = object
        .and_then(|o| o.get(field.json))
        .filter(|v| !v.is_null());
    match field.card {
        Card::One if value.is_none() && field.presence == Presence::Set => Ok(()),
        Card::One => put(w, msg, field, field.tag, value),
        Card::Rep => repeated(w, msg, field, value),
        Card::Map => {
            let Some(value) = value else { return Ok(()) };
            let entries = value
                .as_object()
                .ok_or_else(|| bad(msg, field, "not an object"))?;
            let mut sorted: Vec<_> = entries.iter().collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (key, v) in sorted {
                w.message_field(field.tag, |w| {
                    w.bytes_field(1, key.as_bytes());
                    put(w, msg, field, 2, Some(v).filter(|v| !v.is_null()))
                })?;
            }
            Ok(())
        }
    }
}

fn repeated(
    w: &mut Writer,
    msg: &'static Message,
    field: &'static Field,
    value: Option<&Value>,
) -> Result<()> {
    let Some(value) = value else { return Ok(()) };
    let items = value
        .as_array()
        .ok_or_else(|| bad(msg, field, "not an array"))?;
    for item in items {
        put(
            w,
            msg,
            field,
            field.tag,
            Some(item).filter(|v| !v.is_null()),
        )?;
    }
    Ok(())
}

/// Writes one value of `field` as field `number` (the field's own, or 2 in a map entry);
/// `None` writes Go's zero value, which for `[]byte` is nil: nothing.
fn put(
    w: &mut Writer,
    msg: &'static Message,
    field: &'static Field,
    number: u32,
    value: Option<&Value>,
) -> Result<()> {
    let Some(v) = value else {
        match field.ty {
            Ty::I32 | Ty::I64 | Ty::Bool => w.varint_field(number, 0),
            Ty::F64 => w.fixed64_field(number, 0),
            Ty::Str => w.bytes_field(number, b""),
            Ty::Bytes => {}
            Ty::Msg(i) => message(w, number, &MESSAGES[usize::from(i)], None)?,
        }
        return Ok(());
    };
    match field.ty {
        Ty::I32 => {
            let n = v
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| bad(msg, field, "not a 32-bit integer"))?;
            // Negative int32s are sign-extended to ten bytes, as Go writes them.
            w.varint_field(number, i64::from(n) as u64);
        }
        Ty::I64 => {
            let n = v
                .as_i64()
                .ok_or_else(|| bad(msg, field, "not a 64-bit integer"))?;
            w.varint_field(number, n as u64);
        }
        Ty::Bool => {
            let b = v
                .as_bool()
                .ok_or_else(|| bad(msg, field, "not a boolean"))?;
            w.varint_field(number, u64::from(b));
        }
        Ty::F64 => {
            let f = v.as_f64().ok_or_else(|| bad(msg, field, "not a number"))?;
            w.fixed64_field(number, f.to_bits());
        }
        Ty::Str => {
            let s = v.as_str().ok_or_else(|| bad(msg, field, "not a string"))?;
            w.bytes_field(number, s.as_bytes());
        }
        Ty::Bytes => {
            let bytes = k8s_openapi::ByteString::deserialize(v)
                .map_err(|_| bad(msg, field, "not base64"))?;
            w.bytes_field(number, &bytes.0);
        }
        Ty::Msg(i) => message(w, number, &MESSAGES[usize::from(i)], Some(v))?,
    }
    Ok(())
}

/// A nested message from its JSON form (`None`: Go's zero value), apimachinery's special types
/// from their JSON renderings.
fn message(w: &mut Writer, number: u32, msg: &'static Message, v: Option<&Value>) -> Result<()> {
    let wrong = |reason| Error::Field {
        message: msg.name,
        field: "",
        reason,
    };
    w.message_field(number, |w| {
        match msg.shape {
            Shape::Struct => {
                let object = v
                    .map(|v| v.as_object().ok_or_else(|| wrong("not an object")))
                    .transpose()?;
                fields(w, msg, object)?;
            }
            // type (0 int, 1 string), intVal, strVal: all three always.
            Shape::IntOrString => {
                let (is_string, int, string) = match v {
                    None => (false, 0, ""),
                    Some(Value::String(s)) => (true, 0, s.as_str()),
                    Some(n) => {
                        let n = n
                            .as_i64()
                            .and_then(|n| i32::try_from(n).ok())
                            .ok_or_else(|| wrong("not an int or a string"))?;
                        (false, n, "")
                    }
                };
                w.varint_field(1, u64::from(is_string));
                w.varint_field(2, i64::from(int) as u64);
                w.bytes_field(3, string.as_bytes());
            }
            Shape::Quantity => {
                let text = match v {
                    None => "0".to_owned(),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    Some(_) => return Err(wrong("not a quantity")),
                };
                w.bytes_field(1, text.as_bytes());
            }
            Shape::Time | Shape::MicroTime => {
                if let Some(v) = v {
                    let (seconds, nanos) =
                        parse_time(msg.shape, v).ok_or_else(|| wrong("not an RFC 3339 time"))?;
                    if (seconds, nanos) != (GO_ZERO_TIME_UNIX, 0) {
                        w.varint_field(1, seconds as u64);
                        w.varint_field(2, u64::from(nanos));
                    }
                }
            }
            Shape::Duration => {
                let ns = match v {
                    None => 0,
                    Some(v) => v
                        .as_str()
                        .and_then(parse_go_duration)
                        .ok_or_else(|| wrong("not a duration"))?,
                };
                w.varint_field(1, ns as u64);
            }
            // The JSON itself, as Go keeps the bytes it was given.
            Shape::RawJson => {
                if let Some(v) = v {
                    w.bytes_field(1, v.to_string().as_bytes());
                }
            }
            Shape::Items => {
                if let Some(field) = msg.fields.first() {
                    repeated(w, msg, field, v)?;
                }
            }
            // JSONSchemaPropsOr{Bool,Array,StringArray}: an object is the schema (and `allows`
            // true), a boolean `allows`, an array the list.
            Shape::Either => {
                if !matches!(
                    v,
                    None | Some(Value::Object(_) | Value::Bool(_) | Value::Array(_))
                ) {
                    return Err(wrong("not a schema, boolean or array"));
                }
                for field in msg.fields {
                    match (field.card, field.ty, v) {
                        (Card::One, Ty::Bool, v) => {
                            let allows = match v {
                                Some(Value::Bool(b)) => *b,
                                Some(Value::Object(_)) => true,
                                _ => false,
                            };
                            w.varint_field(field.tag, u64::from(allows));
                        }
                        (Card::One, Ty::Msg(_), Some(v @ Value::Object(_))) => {
                            put(w, msg, field, field.tag, Some(v))?
                        }
                        (Card::Rep, _, Some(v @ Value::Array(_))) => {
                            repeated(w, msg, field, Some(v))?
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    })
}

/// Seconds and nanoseconds of an RFC 3339 time. `Time` keeps whole seconds (upstream writes no
/// nanoseconds), `MicroTime` microseconds.
fn parse_time(shape: Shape, v: &Value) -> Option<(i64, u32)> {
    let ts: k8s_openapi::jiff::Timestamp = v.as_str()?.parse().ok()?;
    // Before 1970, a fraction counts forward from the second below, as Go's `Unix()` does.
    let (seconds, forward) = match ts.subsec_nanosecond() {
        n if n < 0 => (ts.as_second() - 1, n + 1_000_000_000),
        n => (ts.as_second(), n),
    };
    let nanos = match shape {
        Shape::MicroTime => forward - forward % 1000,
        _ => 0,
    };
    Some((seconds, u32::try_from(nanos).ok()?))
}

/// Go's `time.ParseDuration`: `1h2m3.5s`, `150ms`, `-2s`, `0`.
fn parse_go_duration(s: &str) -> Option<i64> {
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale: i64 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut part = whole.checked_mul(scale)?;
        let mut digit_scale = scale;
        for digit in fraction.bytes() {
            digit_scale /= 10;
            part = part.checked_add(i64::from(digit - b'0') * digit_scale)?;
        }
        total = total.checked_add(part)?;
        rest = tail;
    }
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protobuf::go_duration;

    #[test]
    fn go_durations_parse_back() {
        for ns in [
            0,
            999,
            1_500,
            150_000_000,
            3_500_000_000,
            3_723_000_000_000,
            -2_000_000_000,
        ] {
            assert_eq!(parse_go_duration(&go_duration(ns)), Some(ns));
        }
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("2us"), Some(2_000));
        for bad in ["", "5", "1d", "h", "-", ".s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_drop_what_upstream_drops() {
        let v = Value::from("2023-11-14T22:13:20.123456789Z");
        assert_eq!(parse_time(Shape::Time, &v), Some((1_700_000_000, 0)));
        assert_eq!(
            parse_time(Shape::MicroTime, &v),
            Some((1_700_000_000, 123_456_000))
        );
        let before_epoch = Value::from("1969-12-31T23:59:59.9999985Z");
        assert_eq!(
            parse_time(Shape::MicroTime, &before_epoch),
            Some((-1, 999_998_000))
        );
        assert_eq!(parse_time(Shape::Time, &before_epoch), Some((-1, 0)));
        assert_eq!(parse_time(Shape::Time, &Value::from("yesterday")), None);
    }

    #[test]
    fn frames_are_length_prefixed() {
        let frame = watch_frame("ADDED", b"xyz");
        assert_eq!(&frame[..4], &[0, 0, 0, 14]);
        assert_eq!(
            &frame[4..],
            &[
                0x0a, 5, b'A', b'D', b'D', b'E', b'D', 0x12, 5, 0x0a, 3, b'x', b'y', b'z'
            ]
        );
    }
}
