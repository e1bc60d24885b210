//! core v1 Event <-> events.k8s.io/v1 Event, as upstream's `pkg/apis/events/v1` conversion:
//! the same fields, several under new names. Core v1 is the stored version.

use serde_json::json;

use super::Object;

/// `(core v1 name, events.k8s.io/v1 name)` of every renamed field.
const RENAMED: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// events.k8s.io/v1 -> core v1.
pub(super) fn to_core(event: &mut Object) {
    rename(event, |(core, new)| (new, core));
    // Upstream always writes `involvedObject` (a struct, never omitted); typed clients
    // require it.
    event.entry("involvedObject").or_insert_with(|| json!({}));
}

/// core v1 -> events.k8s.io/v1.
pub(super) fn from_core(event: &mut Object) {
    rename(event, |pair| pair);
}

/// Core Events read as they are stored.
pub(super) fn is_normal(_event: &Object) -> bool {
    true
}

/// Core Events read as they are stored.
pub(super) fn normalize(_event: &mut Object) {}

/// Moves each field from its `from` name to its `to` name. A stray field already under a `to`
/// name is not part of the source version's schema, so it goes, as a decoder drops unknown
/// fields.
fn rename(
    event: &mut Object,
    direction: fn((&'static str, &'static str)) -> (&'static str, &'static str),
) {
    for pair in RENAMED {
        let (from, to) = direction(pair);
        let value = event.remove(from);
        event.remove(to);
        if let Some(value) = value {
            event.insert(to.into(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::convert;
    use serde_json::{Value, json};

    fn core_event() -> Value {
        json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default", "labels": {"a": "b"}},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p", "uid": "u1",
                "apiVersion": "v1", "fieldPath": "spec.containers{c}"},
            "reason": "Pulled", "message": "pulled the image", "type": "Normal",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T00:01:00Z",
            "count": 3, "eventTime": "2025-01-01T00:00:00.000001Z",
            "series": {"count": 2, "lastObservedTime": "2025-01-01T00:01:00.000001Z"},
            "action": "Pulling", "related": {"kind": "Node", "name": "n1"},
            "reportingComponent": "kubelet", "reportingInstance": "n1"})
    }

    #[test]
    fn core_to_events_renames_and_round_trips() {
        let core = core_event();
        let new = convert("Event", &core, "events.k8s.io/v1")
            .unwrap()
            .unwrap();
        assert_eq!(new["apiVersion"], "events.k8s.io/v1");
        assert_eq!(new["regarding"]["name"], "p");
        assert_eq!(new["note"], "pulled the image");
        assert_eq!(new["deprecatedSource"]["component"], "kubelet");
        assert_eq!(new["deprecatedFirstTimestamp"], "2025-01-01T00:00:00Z");
        assert_eq!(new["deprecatedLastTimestamp"], "2025-01-01T00:01:00Z");
        assert_eq!(new["deprecatedCount"], 3);
        assert_eq!(new["reportingController"], "kubelet");
        assert_eq!(new["reportingInstance"], "n1");
        assert_eq!(new["series"]["count"], 2);
        assert_eq!(new["related"]["kind"], "Node");
        for gone in [
            "involvedObject",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "reportingComponent",
        ] {
            assert!(new.get(gone).is_none(), "{gone}");
        }
        let back = convert("Event", &new, "v1").unwrap().unwrap();
        assert_eq!(back, core);
    }

    #[test]
    fn events_to_core_round_trips() {
        let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "eventTime": "2025-01-01T00:00:00.000001Z", "reportingController": "ctl",
            "reportingInstance": "ctl-1", "action": "Scale", "reason": "Scaled",
            "regarding": {"kind": "Deployment", "name": "d"}, "note": "scaled up",
            "type": "Normal"});
        let core = convert("Event", &new, "v1").unwrap().unwrap();
        assert_eq!(core["message"], "scaled up");
        assert_eq!(core["involvedObject"]["kind"], "Deployment");
        assert_eq!(core["reportingComponent"], "ctl");
        assert_eq!(core["eventTime"], "2025-01-01T00:00:00.000001Z");
        assert_eq!(
            convert("Event", &core, "events.k8s.io/v1")
                .unwrap()
                .unwrap(),
            new
        );
    }

    #[test]
    fn core_events_always_name_an_involved_object() {
        let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"}, "note": "n", "message": "stray"});
        let core = convert("Event", &new, "v1").unwrap().unwrap();
        assert_eq!(core["involvedObject"], json!({}));
        assert_eq!(core["message"], "n");
    }
}
