//! Field paths and field errors, rendered exactly as apimachinery's `util/validation/field`.
//!
//! Validation (object names, labels, selectors, per-kind strategies) reports problems as a list
//! of [`FieldError`]s; [`crate::status::ApiError::invalid`] turns that list into the `422
//! Invalid` Status a client sees, one `details.causes` entry per error. Clients (kubectl, helm,
//! controllers) match on these strings, so the rendering follows upstream to the character:
//! `spec.containers[0].image: Invalid value: "x": msg`.
//!
//! Bad values render as upstream's `ErrorBody` does: strings Go-quoted (`%q`), integers, floats
//! and booleans bare, anything else as JSON (upstream also uses `json.Marshal` for those).

use std::fmt;

/// A path to a field inside an object: `metadata.name`, `spec.containers[0].image`,
/// `metadata.labels[app]`.
///
/// Held in its rendered form, since every use ends in the string. The empty path is upstream's
/// nil `*Path`: it renders as `<nil>` and a child of it starts a fresh path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path(String);

impl Path {
    /// A path starting at `name` (upstream `field.NewPath`).
    pub fn new(name: &str) -> Self {
        Self(name.to_owned())
    }

    /// The nil path: errors at it render their field as `<nil>` (label selectors parsed without
    /// a path report key errors this way upstream).
    pub fn none() -> Self {
        Self(String::new())
    }

    /// `self.name`.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            return Self::new(name);
        }
        let mut s = String::with_capacity(self.0.len() + 1 + name.len());
        s.push_str(&self.0);
        s.push('.');
        s.push_str(name);
        Self(s)
    }

    /// `self[index]`.
    pub fn index(&self, index: usize) -> Self {
        self.subscript(&index.to_string())
    }

    /// `self[key]`, for map entries (no quoting, as upstream).
    pub fn key(&self, key: &str) -> Self {
        self.subscript(key)
    }

    fn subscript(&self, inner: &str) -> Self {
        let mut s = String::with_capacity(self.0.len() + inner.len() + 2);
        s.push_str(&self.0);
        s.push('[');
        s.push_str(inner);
        s.push(']');
        Self(s)
    }

    /// The rendered path (`<nil>` for the nil path).
    pub fn as_str(&self) -> &str {
        if self.0.is_empty() { "<nil>" } else { &self.0 }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a field error; its [`cause_type`](Self::cause_type) is the `reason` of a Status
/// cause and its [`message`](Self::message) starts the rendered error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// A value that should exist (e.g. a referenced ID) was not found.
    NotFound,
    /// A required value is missing.
    Required,
    /// A value that must be unique is repeated.
    Duplicate,
    /// A malformed value.
    Invalid,
    /// A value outside an enumerated set.
    NotSupported,
    /// A valid value not permitted here (policy, immutability, ...).
    Forbidden,
    /// A value longer than allowed; the value itself is not echoed.
    TooLong,
    /// A list with more items than allowed.
    TooMany,
    /// A failure not caused by user input.
    Internal,
    /// A value of the wrong type for its schema.
    TypeInvalid,
}

impl ErrorType {
    /// The machine-readable `CauseType` (`FieldValueInvalid`, ...).
    pub fn cause_type(self) -> &'static str {
        match self {
            Self::NotFound => "FieldValueNotFound",
            Self::Required => "FieldValueRequired",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Internal => "InternalError",
            Self::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human-readable prefix (`Invalid value`, `Required value`, ...).
    pub fn message(self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::Required => "Required value",
            Self::Duplicate => "Duplicate value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Internal => "Internal error",
        }
    }

    /// Whether upstream's `ErrorBody` leaves the bad value out for this type.
    fn omits_value(self) -> bool {
        matches!(
            self,
            Self::Required | Self::Forbidden | Self::TooLong | Self::Internal
        )
    }
}

/// The offending value carried by a field error.
#[derive(Debug, Clone, PartialEq)]
pub enum BadValue {
    /// No value is shown (upstream's `omitValue`).
    Omitted,
    /// A string, rendered Go-quoted.
    Str(String),
    /// An integer, rendered bare.
    Int(i64),
    /// A float, rendered as Go's `%v`.
    Float(f64),
    /// A boolean, rendered bare.
    Bool(bool),
    /// Anything else (lists, maps, null), rendered as JSON.
    Json(serde_json::Value),
}

impl From<&str> for BadValue {
    fn from(v: &str) -> Self {
        Self::Str(v.to_owned())
    }
}
impl From<String> for BadValue {
    fn from(v: String) -> Self {
        Self::Str(v)
    }
}
impl From<&String> for BadValue {
    fn from(v: &String) -> Self {
        Self::Str(v.clone())
    }
}
impl From<i64> for BadValue {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<i32> for BadValue {
    fn from(v: i32) -> Self {
        Self::Int(v.into())
    }
}
impl From<f64> for BadValue {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}
impl From<bool> for BadValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<serde_json::Value> for BadValue {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::String(s) => Self::Str(s),
            serde_json::Value::Bool(b) => Self::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Self::Int(i),
                None => n.as_f64().map_or(Self::Json(n.into()), Self::Float),
            },
            other => Self::Json(other),
        }
    }
}

impl BadValue {
    fn render(&self, out: &mut String) {
        match self {
            Self::Omitted => {}
            Self::Str(s) => go_quote_into(s, out),
            Self::Int(i) => out.push_str(&i.to_string()),
            Self::Float(x) => out.push_str(&go_float(*x)),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Json(v) => out.push_str(&go_json(v)),
        }
    }
}

/// One field-level validation error (upstream `field.Error`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// What kind of problem this is.
    pub error_type: ErrorType,
    /// The rendered path of the field (`spec.replicas`).
    pub field: String,
    /// The offending value.
    pub bad_value: BadValue,
    /// Extra explanation appended after the value.
    pub detail: String,
}

impl FieldError {
    fn new(error_type: ErrorType, path: &Path, bad_value: BadValue, detail: String) -> Self {
        Self {
            error_type,
            field: path.as_str().to_owned(),
            bad_value,
            detail,
        }
    }

    /// `Not found: <value>`.
    pub fn not_found(path: &Path, value: impl Into<BadValue>) -> Self {
        Self::new(ErrorType::NotFound, path, value.into(), String::new())
    }

    /// `Required value: <detail>`.
    pub fn required(path: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, path, BadValue::Omitted, detail.into())
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(path: &Path, value: impl Into<BadValue>) -> Self {
        Self::new(ErrorType::Duplicate, path, value.into(), String::new())
    }

    /// `Invalid value: <value>: <detail>`.
    pub fn invalid(path: &Path, value: impl Into<BadValue>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, path, value.into(), detail.into())
    }

    /// `Invalid value: <value>: <detail>` with the `FieldValueTypeInvalid` cause.
    pub fn type_invalid(
        path: &Path,
        value: impl Into<BadValue>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(ErrorType::TypeInvalid, path, value.into(), detail.into())
    }

    /// `Unsupported value: <value>: supported values: "a", "b"`.
    pub fn not_supported<S: AsRef<str>>(
        path: &Path,
        value: impl Into<BadValue>,
        valid: &[S],
    ) -> Self {
        let mut detail = String::new();
        if !valid.is_empty() {
            detail.push_str("supported values: ");
            for (i, v) in valid.iter().enumerate() {
                if i > 0 {
                    detail.push_str(", ");
                }
                go_quote_into(v.as_ref(), &mut detail);
            }
        }
        Self::new(ErrorType::NotSupported, path, value.into(), detail)
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(path: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, path, BadValue::Omitted, detail.into())
    }

    /// `Too long: may not be more than <max> bytes` (the value is never echoed; a negative
    /// `max` gives `value is too long`).
    pub fn too_long(path: &Path, max: i64) -> Self {
        let detail = if max >= 0 {
            format!(
                "may not be more than {max} {}",
                if max == 1 { "byte" } else { "bytes" }
            )
        } else {
            "value is too long".to_owned()
        };
        Self::new(ErrorType::TooLong, path, BadValue::Omitted, detail)
    }

    /// `Too many: <actual>: must have at most <max> items` (negative numbers leave the part out,
    /// as upstream).
    pub fn too_many(path: &Path, actual: i64, max: i64) -> Self {
        let detail = if max >= 0 {
            format!(
                "must have at most {max} {}",
                if max == 1 { "item" } else { "items" }
            )
        } else {
            "has too many items".to_owned()
        };
        let value = if actual >= 0 {
            BadValue::Int(actual)
        } else {
            BadValue::Omitted
        };
        Self::new(ErrorType::TooMany, path, value, detail)
    }

    /// `Internal error: <err>`.
    pub fn internal(path: &Path, err: impl fmt::Display) -> Self {
        Self::new(
            ErrorType::Internal,
            path,
            BadValue::Omitted,
            err.to_string(),
        )
    }

    /// The message without the field name (upstream `ErrorBody`), used as a Status cause's
    /// message.
    pub fn body(&self) -> String {
        let mut s = String::from(self.error_type.message());
        if !self.error_type.omits_value() && self.bad_value != BadValue::Omitted {
            s.push_str(": ");
            self.bad_value.render(&mut s);
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// Renders a list of errors as upstream's `ErrorList.ToAggregate().Error()`: duplicates (by
/// rendered text) dropped, one error bare, several as `[a, b]`. `None` for an empty list.
pub fn aggregate(errors: &[FieldError]) -> Option<String> {
    let mut seen: Vec<String> = Vec::with_capacity(errors.len());
    for e in errors {
        let msg = e.to_string();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop(),
        _ => Some(format!("[{}]", seen.join(", "))),
    }
}

/// Appends `s` quoted as Go's `strconv.Quote` does: `"` and `\` escaped, the usual C escapes,
/// other non-printable characters as `\xNN`/`\uNNNN`/`\UNNNNNNNN`, printable Unicode kept.
pub(crate) fn go_quote_into(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
}

/// Go's `%q` of a string.
pub fn go_quote(s: &str) -> String {
    let mut out = String::new();
    go_quote_into(s, &mut out);
    out
}

/// An approximation of Go's `unicode.IsPrint`: control characters, separators other than the
/// ASCII space, and the common invisible format characters are not printable.
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c,
        '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// Go's `%v` of a float64: shortest representation, exponent form below 1e-4 or from 1e21.
fn go_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let abs = x.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        // Rust gives `1e21` / `1.5e-5`; Go writes a signed, at least two-digit exponent.
        let s = format!("{x:e}");
        if let Some((mantissa, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mantissa}e{sign}{digits:0>2}");
        }
        return s;
    }
    x.to_string()
}

/// JSON as Go's `json.Marshal` writes it: compact, with `<`, `>`, `&`, U+2028 and U+2029
/// escaped. Those characters can only occur inside JSON strings, so escaping them in the
/// serialized text is exact.
fn go_json(v: &serde_json::Value) -> String {
    let raw = v.to_string();
    if !raw.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return raw;
    }
    let mut out = String::with_capacity(raw.len() + 16);
    for c in raw.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_render_like_upstream() {
        let p = Path::new("spec")
            .child("containers")
            .index(0)
            .child("image");
        assert_eq!(p.as_str(), "spec.containers[0].image");
        assert_eq!(
            Path::new("metadata").child("labels").key("app").as_str(),
            "metadata.labels[app]"
        );
        assert_eq!(Path::none().as_str(), "<nil>");
        assert_eq!(Path::none().child("key").as_str(), "key");
        assert_eq!(Path::none().index(2).as_str(), "[2]");
    }

    #[test]
    fn error_bodies_match_upstream() {
        let p = Path::new("spec").child("x");
        assert_eq!(
            FieldError::required(&p, "").to_string(),
            "spec.x: Required value"
        );
        assert_eq!(
            FieldError::required(&p, "name or generateName is required").body(),
            "Required value: name or generateName is required"
        );
        assert_eq!(
            FieldError::invalid(&p, "a b", "must be a word").to_string(),
            r#"spec.x: Invalid value: "a b": must be a word"#
        );
        assert_eq!(
            FieldError::invalid(&p, 5i64, "must be odd").body(),
            "Invalid value: 5: must be odd"
        );
        assert_eq!(
            FieldError::invalid(&p, true, "no").body(),
            "Invalid value: true: no"
        );
        assert_eq!(
            FieldError::invalid(&p, json!(["a", "b"]), "bad").body(),
            r#"Invalid value: ["a","b"]: bad"#
        );
        assert_eq!(
            FieldError::invalid(&p, json!(null), "bad").body(),
            "Invalid value: null: bad"
        );
        assert_eq!(
            FieldError::not_supported(&p, "Sometimes", &["Always", "Never"]).body(),
            r#"Unsupported value: "Sometimes": supported values: "Always", "Never""#
        );
        assert_eq!(
            FieldError::duplicate(&p, "a").body(),
            r#"Duplicate value: "a""#
        );
        assert_eq!(FieldError::not_found(&p, "x").body(), r#"Not found: "x""#);
        assert_eq!(
            FieldError::forbidden(&p, "field is immutable").body(),
            "Forbidden: field is immutable"
        );
        assert_eq!(
            FieldError::too_long(&p, 262144).body(),
            "Too long: may not be more than 262144 bytes"
        );
        assert_eq!(
            FieldError::too_long(&p, 1).body(),
            "Too long: may not be more than 1 byte"
        );
        assert_eq!(
            FieldError::too_many(&p, 5, 3).body(),
            "Too many: 5: must have at most 3 items"
        );
        assert_eq!(
            FieldError::too_many(&p, -1, 1).body(),
            "Too many: must have at most 1 item"
        );
        assert_eq!(
            FieldError::internal(&p, "boom").body(),
            "Internal error: boom"
        );
        assert_eq!(
            FieldError::invalid(&p, "x", "").error_type.cause_type(),
            "FieldValueInvalid"
        );
    }

    #[test]
    fn values_are_quoted_and_printed_as_go_does() {
        assert_eq!(go_quote("a\"b\\c\n\t"), r#""a\"b\\c\n\t""#);
        assert_eq!(go_quote("é\u{1}\u{7f}\u{a0}"), r#""é\x01\x7f\u00a0""#);
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(100.0), "100");
        assert_eq!(
            go_json(&json!({"a": "<b>&"})),
            r#"{"a":"\u003cb\u003e\u0026"}"#
        );
    }

    #[test]
    fn aggregate_dedups_and_brackets() {
        let p = Path::new("a");
        let e1 = FieldError::required(&p, "");
        let e2 = FieldError::invalid(&Path::new("b"), "x", "bad");
        assert_eq!(aggregate(&[]), None);
        assert_eq!(
            aggregate(&[e1.clone(), e1.clone()]).as_deref(),
            Some("a: Required value")
        );
        assert_eq!(
            aggregate(&[e1.clone(), e2, e1]).as_deref(),
            Some(r#"[a: Required value, b: Invalid value: "x": bad]"#)
        );
    }
}
