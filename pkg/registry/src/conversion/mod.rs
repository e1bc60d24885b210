//! Conversion between the served versions of a kind that share one storage prefix, as
//! kube-apiserver converts through its internal version on every read and write.
//!
//! # Layout
//! - [`hpa`]: autoscaling/v1 <-> autoscaling/v2 HorizontalPodAutoscalers; what v1 cannot say
//!   travels in upstream's `autoscaling.alpha.kubernetes.io/*` annotations.
//! - [`events`]: core v1 <-> events.k8s.io/v1 Events (the same fields under other names).
//! - [`ConvertingStore`] (`store`): a `Store` that shows one served version over a prefix
//!   stored in another. Writes convert to the stored version; reads, lists, watch events, the
//!   callbacks of updates and deletes, and selectors see the served one.
//!
//! Each kind converts through a hub, the version kube-apiserver stores (autoscaling/v2, core
//! v1 Events). An object converts from its own `apiVersion`, so objects an older rkube stored
//! as they were sent read back in the right shape too.

pub mod events;
pub mod hpa;
mod store;

pub use store::ConvertingStore;

use serde_json::{Map, Value};

/// Why an object cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object is not a JSON object.
    #[error("a {kind} must be a JSON object")]
    NotAnObject {
        /// The kind being converted.
        kind: String,
    },
    /// No conversion between these versions of the kind.
    #[error("cannot convert {kind} from {from} to {to}")]
    Unsupported {
        /// The kind being converted.
        kind: String,
        /// The object's own `apiVersion`.
        from: String,
        /// The `apiVersion` asked for.
        to: String,
    },
}

/// Result of a conversion.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An object as one function edits it in place.
type Object = Map<String, Value>;

/// One kind's conversions through its hub version.
struct Converter {
    kind: &'static str,
    /// The version the others convert through (the one kube-apiserver stores).
    hub: &'static str,
    /// The other served version.
    spoke: &'static str,
    to_hub: fn(&mut Object),
    from_hub: fn(&mut Object),
    /// True when a hub object is already as the hub version reads (nothing to drop).
    hub_is_normal: fn(&Object) -> bool,
    /// What decoding the hub version itself changes (HPA v2 drops the v1 annotations).
    normalize_hub: fn(&mut Object),
}

const CONVERTERS: &[Converter] = &[
    Converter {
        kind: "HorizontalPodAutoscaler",
        hub: "autoscaling/v2",
        spoke: "autoscaling/v1",
        to_hub: hpa::v1_to_v2,
        from_hub: hpa::v2_to_v1,
        hub_is_normal: hpa::has_no_round_trip_annotations,
        normalize_hub: hpa::drop_round_trip_annotations,
    },
    Converter {
        kind: "Event",
        hub: "v1",
        spoke: "events.k8s.io/v1",
        to_hub: events::to_core,
        from_hub: events::from_core,
        hub_is_normal: events::is_normal,
        normalize_hub: events::normalize,
    },
];

/// `object` (a `kind`) as `to` (an `apiVersion`) shows it, converted from the object's own
/// `apiVersion` (taken to be `to` when it has none). `None` when the object already is exactly
/// that, so callers keep what they have without a copy.
pub fn convert(kind: &str, object: &Value, to: &str) -> Result<Option<Value>> {
    let Some(map) = object.as_object() else {
        return Err(Error::NotAnObject { kind: kind.into() });
    };
    let from = map.get("apiVersion").and_then(Value::as_str).unwrap_or(to);
    let unsupported = || Error::Unsupported {
        kind: kind.into(),
        from: from.into(),
        to: to.into(),
    };
    let Some(c) = CONVERTERS.iter().find(|c| c.kind == kind) else {
        return if from == to {
            Ok(None)
        } else {
            Err(unsupported())
        };
    };
    let known = |version: &str| version == c.hub || version == c.spoke;
    if !known(from) || !known(to) {
        return Err(unsupported());
    }
    if from == c.hub && to == c.hub && (c.hub_is_normal)(map) {
        return Ok(None);
    }
    let mut out = map.clone();
    if from == c.hub {
        (c.normalize_hub)(&mut out);
    } else {
        (c.to_hub)(&mut out);
    }
    if to != c.hub {
        (c.from_hub)(&mut out);
    }
    out.insert("apiVersion".into(), Value::String(to.into()));
    Ok(Some(Value::Object(out)))
}

/// The value at `key` unless it is absent or null (Go's nil pointer).
fn present<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_already_in_the_asked_version_are_kept() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
        assert!(convert("ConfigMap", &cm, "v1").unwrap().is_none());
        let event = json!({"apiVersion": "v1", "kind": "Event", "message": "m"});
        assert!(convert("Event", &event, "v1").unwrap().is_none());
        let hpa = json!({"apiVersion": "autoscaling/v2", "metadata": {}, "spec": {}});
        assert!(
            convert("HorizontalPodAutoscaler", &hpa, "autoscaling/v2")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn unknown_versions_and_shapes_are_errors() {
        let err = convert("ConfigMap", &json!({"apiVersion": "v2"}), "v1").unwrap_err();
        assert_eq!(err.to_string(), "cannot convert ConfigMap from v2 to v1");
        let beta = json!({"apiVersion": "autoscaling/v2beta1", "spec": {}});
        assert!(matches!(
            convert("HorizontalPodAutoscaler", &beta, "autoscaling/v1"),
            Err(Error::Unsupported { .. })
        ));
        assert!(matches!(
            convert("Event", &json!([1]), "v1"),
            Err(Error::NotAnObject { .. })
        ));
    }

    #[test]
    fn the_hub_version_drops_what_only_the_other_version_needs() {
        // A v2 body carrying v1's round-trip annotations loses them, as upstream's decoder
        // drops them on the way to the internal version.
        let hpa = json!({"apiVersion": "autoscaling/v2", "metadata": {"annotations": {
            hpa::METRICS_ANNOTATION: "[]", "keep": "me"}}, "spec": {}});
        let out = convert("HorizontalPodAutoscaler", &hpa, "autoscaling/v2")
            .unwrap()
            .unwrap();
        assert_eq!(out["metadata"]["annotations"], json!({"keep": "me"}));
    }
}
