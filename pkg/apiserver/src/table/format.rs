//! Helpers the printers share: reading JSON leniently (a missing or mistyped field reads as
//! its zero value, as it would in upstream's typed structs), upstream's human durations, and
//! the list, label and selector renderings several tables use.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use rkube_api::k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use rkube_api::selector::LabelSelector;
use serde_json::{Map, Value};

static NULL: Value = Value::Null;

/// The value at `path` below `v`, or `null` when any step is missing.
pub(super) fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter()
        .try_fold(v, |v, key| v.get(key))
        .unwrap_or(&NULL)
}

/// The string at `path`, `""` when missing.
pub(super) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).as_str().unwrap_or("")
}

/// The integer at `path`, 0 when missing.
pub(super) fn int_at(v: &Value, path: &[&str]) -> i64 {
    at(v, path).as_i64().unwrap_or(0)
}

/// The array at `path`, empty when missing.
pub(super) fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path).as_array().map_or(&[], Vec::as_slice)
}

/// The number of entries of the object or array at `path`.
pub(super) fn len_at(v: &Value, path: &[&str]) -> i64 {
    let n = match at(v, path) {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The string at `path`, or `fallback` when missing or empty.
pub(super) fn or<'a>(v: &'a Value, path: &[&str], fallback: &'a str) -> &'a str {
    match str_at(v, path) {
        "" => fallback,
        s => s,
    }
}

/// `metadata.name`.
pub(super) fn name(o: &Value) -> &str {
    str_at(o, &["metadata", "name"])
}

/// Whether `metadata.deletionTimestamp` is set.
pub(super) fn deleting(o: &Value) -> bool {
    !at(o, &["metadata", "deletionTimestamp"]).is_null()
}

/// Whether a condition of `type_` in the `conditions` array has status `True` (the first
/// condition of that type decides, as upstream's lookups stop there).
pub(super) fn condition_true(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == type_)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

/// An API timestamp (`metav1.Time` or `MicroTime`); `None` when unset, unparsable or Go's zero
/// time, all of which upstream prints as `<unknown>`.
pub(super) fn timestamp(v: &Value) -> Option<Timestamp> {
    let ts: Timestamp = v.as_str()?.parse().ok()?;
    // Go's zero time (0001-01-01T00:00:00Z) serializes when a non-pointer Time is unset.
    (ts.as_second() != -62_135_596_800).then_some(ts)
}

/// `translateTimestampSince`: the age of `ts` at `now`, `<unknown>` when unset.
pub(super) fn since(ts: &Value, now: Timestamp) -> String {
    timestamp(ts).map_or_else(
        || "<unknown>".to_owned(),
        |ts| human_duration(now.duration_since(ts)),
    )
}

/// The `AGE` cell: the age of `metadata.creationTimestamp`.
pub(super) fn age(o: &Value, now: Timestamp) -> String {
    since(at(o, &["metadata", "creationTimestamp"]), now)
}

/// `duration.HumanDuration`: about two significant figures (`45s`, `3m20s`, `3h15m`, `5d2h`,
/// `3y45d`); a small negative skew reads as `0s`, a larger one as `<invalid>`.
pub(super) fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{years}y")
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, `<none>` when empty.
pub(super) fn format_labels(v: &Value) -> String {
    // Sorted explicitly: serde_json keeps insertion order when `preserve_order` is on.
    let mut pairs: Vec<(&String, &Value)> = v.as_object().into_iter().flat_map(Map::iter).collect();
    if pairs.is_empty() {
        return "<none>".to_owned();
    }
    pairs.sort_by_key(|(k, _)| *k);
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.LabelSelectorAsSelector(v).String()`; `None` for a selector upstream rejects.
fn selector(v: &Value) -> Option<String> {
    let parsed = if v.is_null() {
        None
    } else {
        Some(serde_json::from_value::<metav1::LabelSelector>(v.clone()).ok()?)
    };
    LabelSelector::from_label_selector(parsed.as_ref())
        .ok()
        .map(|s| s.to_string())
}

/// `metav1.FormatLabelSelector`: `<none>` for a nil or empty selector, `<error>` for an
/// invalid one.
pub(super) fn format_label_selector(v: &Value) -> String {
    match selector(v) {
        None => "<error>".to_owned(),
        Some(s) if s.is_empty() => "<none>".to_owned(),
        Some(s) => s,
    }
}

/// The deployment printer's selector: the plain selector string (empty when it selects
/// everything or nothing), `<invalid>` for an invalid one.
pub(super) fn selector_string(v: &Value) -> String {
    selector(v).unwrap_or_else(|| "<invalid>".to_owned())
}

/// `layoutContainerCells`: the containers' names and images, comma separated.
pub(super) fn containers(pod_spec: &Value) -> (String, String) {
    let containers = arr_at(pod_spec, &["containers"]);
    let join = |field| {
        containers
            .iter()
            .map(|c| str_at(c, &[field]))
            .collect::<Vec<_>>()
            .join(",")
    };
    (join("name"), join("image"))
}

/// Up to `max` items joined by `sep`, then ` + N more...` for the rest (the shape of
/// upstream's `listWithMoreString` and its cousins).
pub(super) fn with_more(items: &[String], max: usize, sep: &str) -> String {
    let shown = items[..items.len().min(max)].join(sep);
    if items.len() > max {
        format!("{shown} + {} more...", items.len() - max)
    } else {
        shown
    }
}

/// `listWithMoreString`: like [`with_more`] with commas, `<unset>` when there is nothing.
pub(super) fn list_or_unset(items: &[String]) -> String {
    if items.is_empty() {
        "<unset>".to_owned()
    } else {
        with_more(items, 3, ",")
    }
}

/// The load balancer ingress points (IP, else hostname) as a sorted, de-duplicated list.
pub(super) fn load_balancer(status: &Value) -> String {
    arr_at(status, &["ingress"])
        .iter()
        .map(|i| or(i, &["ip"], str_at(i, &["hostname"])))
        .filter(|s| !s.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(",")
}

/// A resource quantity as the API returns it; `fallback` when absent (upstream prints a
/// zero `Quantity` as `0` and a nil one as `<nil>`).
pub(super) fn quantity(v: &Value, fallback: &str) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => fallback.to_owned(),
    }
}

/// `intstr.IntOrString.String()`.
pub(super) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// `printBoolPtr`: `True`, `False` or `<unset>`.
pub(super) fn bool_ptr(v: &Value) -> &'static str {
    match v.as_bool() {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

/// `helper.GetAccessModesAsString`: the short forms, in upstream's fixed order.
pub(super) fn access_modes(v: &Value) -> String {
    let modes = v.as_array().map_or(&[][..], Vec::as_slice);
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(long, _)| has(long))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}
