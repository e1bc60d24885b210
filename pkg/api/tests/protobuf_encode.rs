//! Golden tests for the protobuf encoder. What rkube writes must be what Go writes:
//! - k8s-pb's prost types (the wire layout client-go reads) decode it, and re-encoding the
//!   decoded message gives back the same bytes (fields in number order, map entries sorted,
//!   unpacked repeated scalars), so nothing was written that a typed client would drop or reorder;
//! - for small objects the decoded message equals the one Go builds, non-pointer zero fields
//!   included (Go writes every non-pointer field);
//! - rkube's own decoder reads the bytes back to a JSON that holds everything the input held.

// Helpers of tests: a failed expectation is a test failure, as in the tests themselves.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as OQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as ometa;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString as OIntOrString;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::{ByteString, api as oapi};
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use k8s_pb::{api as pb, apiextensions_apiserver, kube_aggregator};
use prost::Message;
use rkube_api::protobuf::{self, EncodeError};
use serde_json::{Value, json};

/// Splits a body into its envelope's apiVersion, kind and raw message, checking the parts Go
/// always writes.
fn envelope(body: &[u8]) -> (String, String, Vec<u8>) {
    let rest = body.strip_prefix(b"k8s\0").expect("magic");
    let unknown = Unknown::decode(rest).expect("runtime.Unknown");
    assert_eq!(unknown.content_encoding.as_deref(), Some(""));
    assert_eq!(unknown.content_type.as_deref(), Some(""));
    let type_meta = unknown.type_meta.expect("typeMeta");
    (
        type_meta.api_version.expect("apiVersion"),
        type_meta.kind.expect("kind"),
        unknown.raw.expect("raw"),
    )
}

/// Every key of `want` is in `got` with the same value (recursively); `got` may add the zero
/// values Go's JSON writes for non-pointer fields.
fn assert_holds(got: &Value, want: &Value, path: &str) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                let gv = g
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} missing in {got}"));
                assert_holds(gv, wv, &format!("{path}.{k}"));
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{path}");
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                assert_holds(gv, wv, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

/// Encodes `object`, decodes it with the prost type `M`, and checks the invariants above.
fn golden<M: Message + Default>(object: &Value) -> M {
    let body = protobuf::encode(object).expect("encodes");
    let (api_version, kind, raw) = envelope(&body);
    assert_eq!(api_version, object["apiVersion"]);
    assert_eq!(kind, object["kind"]);
    let message = M::decode(raw.as_slice()).expect("prost decodes");
    assert_eq!(message.encode_to_vec(), raw, "{kind}: not Go's field order");
    let back = protobuf::decode(&body).expect("decodes");
    assert_holds(&back, object, &kind);
    // What the decoder added are zero values Go writes anyway: the bytes do not change.
    assert_eq!(protobuf::encode(&back).expect("re-encodes"), body, "{kind}");
    message
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

fn ometa(name: &str, namespace: Option<&str>) -> ometa::ObjectMeta {
    ometa::ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        ..Default::default()
    }
}

fn time(s: &str) -> ometa::Time {
    ometa::Time(s.parse::<Timestamp>().expect("time"))
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("tier".to_owned(), "web".to_owned()),
        ("app".to_owned(), "x".to_owned()),
    ])
}

/// ObjectMeta as Go writes it for a name and namespace: every non-pointer field present.
fn go_meta(name: &str, namespace: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: some(name),
        generate_name: some(""),
        namespace: some(namespace),
        self_link: some(""),
        uid: some(""),
        resource_version: some(""),
        generation: Some(0),
        // A zero Time is an empty message.
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    }
}

#[test]
fn configmap_is_byte_for_byte_what_go_writes() {
    let object = serde_json::to_value(oapi::core::v1::ConfigMap {
        metadata: ometa("cfg", Some("default")),
        data: Some(BTreeMap::from([
            ("z".into(), "last".into()),
            ("a".into(), "1".into()),
        ])),
        binary_data: Some(BTreeMap::from([(
            "bin".into(),
            ByteString(vec![0, 159, 255]),
        )])),
        immutable: None,
    })
    .unwrap();
    let got: pb::core::v1::ConfigMap = golden(&object);
    let want = pb::core::v1::ConfigMap {
        metadata: Some(go_meta("cfg", "default")),
        data: BTreeMap::from([("a".into(), "1".into()), ("z".into(), "last".into())]),
        binary_data: BTreeMap::from([("bin".into(), vec![0, 159, 255])]),
        immutable: None,
    };
    assert_eq!(got, want);
    // Map entries in key order, as Go sorts them.
    let raw = envelope(&protobuf::encode(&object).unwrap()).2;
    assert_eq!(raw, want.encode_to_vec());
}

/// Go writes a map entry's value even when empty (an empty `[]byte` too: only nil is
/// skipped); prost leaves such values out, so the bytes are checked by hand.
#[test]
fn empty_map_values_are_written() {
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"e": ""}, "binaryData": {"n": ""}});
    let raw = envelope(&protobuf::encode(&object).unwrap()).2;
    let data_entry = [0x12, 5, 0x0a, 1, b'e', 0x12, 0];
    let binary_entry = [0x1a, 5, 0x0a, 1, b'n', 0x12, 0];
    assert!(raw.windows(7).any(|w| w == data_entry), "{raw:?}");
    assert!(raw.ends_with(&binary_entry), "{raw:?}");
    let got = pb::core::v1::ConfigMap::decode(raw.as_slice()).unwrap();
    assert_eq!(got.data["e"], "");
    assert_eq!(got.binary_data["n"], Vec::<u8>::new());
    assert_eq!(
        protobuf::decode(&protobuf::encode(&object).unwrap()).unwrap(),
        object
    );
}

#[test]
fn pod_with_quantities_ports_and_times() {
    let container = oapi::core::v1::Container {
        name: "web".into(),
        image: Some("nginx:1.27".into()),
        command: Some(vec!["nginx".into(), "-g".into(), "daemon off;".into()]),
        ports: Some(vec![oapi::core::v1::ContainerPort {
            name: Some("http".into()),
            container_port: 8080,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        env: Some(vec![oapi::core::v1::EnvVar {
            name: "MODE".into(),
            value: Some("prod".into()),
            value_from: None,
        }]),
        resources: Some(oapi::core::v1::ResourceRequirements {
            limits: Some(BTreeMap::from([
                ("memory".into(), OQuantity("128Mi".into())),
                ("cpu".into(), OQuantity("500m".into())),
            ])),
            requests: Some(BTreeMap::from([("cpu".into(), OQuantity("250m".into()))])),
            claims: None,
        }),
        readiness_probe: Some(oapi::core::v1::Probe {
            http_get: Some(oapi::core::v1::HTTPGetAction {
                path: Some("/healthz".into()),
                port: OIntOrString::String("http".into()),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        }),
        liveness_probe: Some(oapi::core::v1::Probe {
            tcp_socket: Some(oapi::core::v1::TCPSocketAction {
                port: OIntOrString::Int(8080),
                host: None,
            }),
            ..Default::default()
        }),
        security_context: Some(oapi::core::v1::SecurityContext {
            run_as_user: Some(0),
            privileged: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    };
    let object = serde_json::to_value(oapi::core::v1::Pod {
        metadata: ometa::ObjectMeta {
            uid: Some("6f1c".into()),
            resource_version: Some("42".into()),
            creation_timestamp: Some(time("2024-05-06T07:08:09Z")),
            deletion_timestamp: Some(time("2024-05-06T08:00:00Z")),
            deletion_grace_period_seconds: Some(30),
            labels: Some(labels()),
            owner_references: Some(vec![ometa::OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "web-5d8".into(),
                uid: "9a".into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            managed_fields: Some(vec![ometa::ManagedFieldsEntry {
                manager: Some("kubectl".into()),
                operation: Some("Update".into()),
                api_version: Some("v1".into()),
                time: Some(time("2024-05-06T07:08:09Z")),
                fields_type: Some("FieldsV1".into()),
                fields_v1: Some(ometa::FieldsV1(
                    json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}),
                )),
                subresource: None,
            }]),
            ..ometa("web-5d8-abc", Some("default"))
        },
        spec: Some(oapi::core::v1::PodSpec {
            containers: vec![container],
            node_name: Some("n1".into()),
            termination_grace_period_seconds: Some(30),
            security_context: Some(oapi::core::v1::PodSecurityContext {
                supplemental_groups: Some(vec![1000, 2000]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: Some(oapi::core::v1::PodStatus {
            phase: Some("Running".into()),
            start_time: Some(time("2024-05-06T07:08:10Z")),
            conditions: Some(vec![oapi::core::v1::PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(time("2024-05-06T07:08:12Z")),
                ..Default::default()
            }]),
            pod_ips: Some(vec![oapi::core::v1::PodIP {
                ip: "10.42.0.7".into(),
            }]),
            ..Default::default()
        }),
    })
    .unwrap();
    let pod: pb::core::v1::Pod = golden(&object);

    let m = pod.metadata.as_ref().unwrap();
    assert_eq!(m.resource_version.as_deref(), Some("42"));
    assert_eq!(
        m.creation_timestamp,
        Some(meta::Time {
            seconds: Some(1_714_979_289),
            nanos: Some(0),
        })
    );
    assert_eq!(m.deletion_grace_period_seconds, Some(30));
    assert_eq!(m.owner_references[0].controller, Some(true));
    let fields = &m.managed_fields[0].fields_v1.as_ref().unwrap().raw;
    assert_eq!(
        serde_json::from_slice::<Value>(fields.as_deref().unwrap()).unwrap(),
        json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
    );

    let spec = pod.spec.as_ref().unwrap();
    let c = &spec.containers[0];
    let q = |m: &BTreeMap<String, _>, k: &str| -> Option<String> {
        m.get(k)
            .and_then(|q: &k8s_pb::apimachinery::pkg::api::resource::Quantity| q.string.clone())
    };
    let resources = c.resources.as_ref().unwrap();
    assert_eq!(q(&resources.limits, "memory").as_deref(), Some("128Mi"));
    assert_eq!(q(&resources.requests, "cpu").as_deref(), Some("250m"));
    let http_port = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .handler
        .as_ref()
        .unwrap();
    assert_eq!(
        http_port.http_get.as_ref().unwrap().port,
        Some(IntOrString {
            r#type: Some(1),
            int_val: Some(0),
            str_val: some("http"),
        })
    );
    let tcp = c.liveness_probe.as_ref().unwrap().handler.as_ref().unwrap();
    assert_eq!(
        tcp.tcp_socket.as_ref().unwrap().port,
        Some(IntOrString {
            r#type: Some(0),
            int_val: Some(8080),
            str_val: some(""),
        })
    );
    // A pointer set to zero is written; an unset non-pointer scalar is written as zero.
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!((sc.run_as_user, sc.privileged), (Some(0), Some(false)));
    assert_eq!(c.working_dir.as_deref(), Some(""));
    assert_eq!(c.stdin, Some(false));
    assert_eq!(
        spec.security_context.as_ref().unwrap().supplemental_groups,
        [1000, 2000]
    );
    let status = pod.status.as_ref().unwrap();
    assert_eq!(status.pod_ips[0].ip.as_deref(), Some("10.42.0.7"));
    assert_eq!(
        status.conditions[0].last_probe_time,
        Some(meta::Time::default())
    );
}

#[test]
fn deployment_keeps_a_zero_replica_pointer() {
    let object = serde_json::to_value(oapi::apps::v1::Deployment {
        metadata: ometa("web", Some("default")),
        spec: Some(oapi::apps::v1::DeploymentSpec {
            replicas: Some(0),
            selector: ometa::LabelSelector {
                match_labels: Some(labels()),
                match_expressions: Some(vec![ometa::LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "In".into(),
                    values: Some(vec!["prod".into(), "staging".into()]),
                }]),
            },
            template: oapi::core::v1::PodTemplateSpec {
                metadata: Some(ometa::ObjectMeta {
                    labels: Some(labels()),
                    ..Default::default()
                }),
                spec: Some(oapi::core::v1::PodSpec {
                    containers: vec![oapi::core::v1::Container {
                        name: "web".into(),
                        image: Some("nginx".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            strategy: Some(oapi::apps::v1::DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(oapi::apps::v1::RollingUpdateDeployment {
                    max_surge: Some(OIntOrString::String("25%".into())),
                    max_unavailable: Some(OIntOrString::Int(1)),
                }),
            }),
            ..Default::default()
        }),
        status: Some(oapi::apps::v1::DeploymentStatus {
            observed_generation: Some(2),
            conditions: Some(vec![oapi::apps::v1::DeploymentCondition {
                type_: "Available".into(),
                status: "True".into(),
                last_update_time: Some(time("2024-05-06T07:08:09Z")),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    })
    .unwrap();
    let d: pb::apps::v1::Deployment = golden(&object);
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(0));
    // Pointers left unset stay off the wire; non-pointers are written as zero.
    assert_eq!(spec.revision_history_limit, None);
    assert_eq!(spec.min_ready_seconds, Some(0));
    assert_eq!(spec.paused, Some(false));
    let rolling = spec
        .strategy
        .as_ref()
        .unwrap()
        .rolling_update
        .as_ref()
        .unwrap();
    assert_eq!(
        rolling.max_surge.as_ref().unwrap().str_val.as_deref(),
        Some("25%")
    );
    assert_eq!(rolling.max_unavailable.as_ref().unwrap().int_val, Some(1));
    assert_eq!(
        spec.selector.as_ref().unwrap().match_expressions[0].values,
        ["prod", "staging"]
    );
    assert_eq!(d.status.as_ref().unwrap().replicas, Some(0));
}

#[test]
fn service_ports_and_lists_of_strings() {
    let port = |name: &str, port: i32, target: OIntOrString| oapi::core::v1::ServicePort {
        name: Some(name.into()),
        protocol: Some("TCP".into()),
        port,
        target_port: Some(target),
        ..Default::default()
    };
    let object = serde_json::to_value(oapi::core::v1::Service {
        metadata: ometa("web", Some("default")),
        spec: Some(oapi::core::v1::ServiceSpec {
            ports: Some(vec![
                port("http", 80, OIntOrString::Int(8080)),
                port("https", 443, OIntOrString::String("tls".into())),
            ]),
            selector: Some(labels()),
            cluster_ip: Some("10.43.0.10".into()),
            cluster_ips: Some(vec!["10.43.0.10".into()]),
            ip_families: Some(vec!["IPv4".into()]),
            type_: Some("ClusterIP".into()),
            session_affinity: Some("None".into()),
            ..Default::default()
        }),
        status: Some(Default::default()),
    })
    .unwrap();
    let s: pb::core::v1::Service = golden(&object);
    let spec = s.spec.unwrap();
    assert_eq!(
        spec.ports[0].target_port.as_ref().unwrap().int_val,
        Some(8080)
    );
    assert_eq!(spec.ports[1].target_port.as_ref().unwrap().r#type, Some(1));
    assert_eq!(spec.ports[0].node_port, Some(0));
    assert_eq!(spec.cluster_ips, ["10.43.0.10"]);
    assert_eq!(spec.selector.keys().collect::<Vec<_>>(), ["app", "tier"]);
}

#[test]
fn negative_int32s_and_doubles() {
    let object = json!({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": "low"}, "value": -10, "preemptionPolicy": "Never",
    });
    let p: pb::scheduling::v1::PriorityClass = golden(&object);
    assert_eq!(p.value, Some(-10));

    let object = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "size": {"type": "number", "maximum": 5.5, "default": 1},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "extra": {"type": "object", "additionalProperties": false},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "blob": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                    },
                    "required": ["size"],
                }},
            }],
        },
    });
    let crd: apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        golden(&object);
    let schema = crd.spec.unwrap().versions[0]
        .schema
        .clone()
        .unwrap()
        .open_apiv3_schema
        .unwrap();
    let size = &schema.properties["size"];
    assert_eq!(size.maximum, Some(5.5));
    assert_eq!(
        size.default.as_ref().unwrap().raw.as_deref(),
        Some(&b"1"[..])
    );
    let extra = schema.properties["extra"]
        .additional_properties
        .as_ref()
        .unwrap();
    assert_eq!((extra.allows, extra.schema.is_some()), (Some(false), false));
    let labels = schema.properties["labels"]
        .additional_properties
        .as_ref()
        .unwrap();
    assert_eq!((labels.allows, labels.schema.is_some()), (Some(true), true));
    let items = schema.properties["tags"].items.as_ref().unwrap();
    assert_eq!(
        items.schema.as_ref().unwrap().r#type.as_deref(),
        Some("string")
    );
    assert_eq!(schema.properties["mode"].r#enum.len(), 2);
}

#[test]
fn list_with_list_metadata() {
    let cm = |name: &str| {
        serde_json::to_value(oapi::core::v1::ConfigMap {
            metadata: ometa::ObjectMeta {
                resource_version: Some("7".into()),
                ..ometa(name, Some("default"))
            },
            data: Some(BTreeMap::from([("k".into(), name.into())])),
            ..Default::default()
        })
        .unwrap()
    };
    let items = [cm("a"), cm("b")];
    let metadata = json!({"resourceVersion": "9", "continue": "tok", "remainingItemCount": 3});
    let body = protobuf::encode_list("v1", "ConfigMapList", &metadata, &items).unwrap();
    let (api_version, kind, raw) = envelope(&body);
    assert_eq!(
        (api_version.as_str(), kind.as_str()),
        ("v1", "ConfigMapList")
    );
    let list = pb::core::v1::ConfigMapList::decode(raw.as_slice()).unwrap();
    assert_eq!(list.encode_to_vec(), raw);
    assert_eq!(
        list.metadata,
        Some(meta::ListMeta {
            self_link: some(""),
            resource_version: some("9"),
            r#continue: some("tok"),
            remaining_item_count: Some(3),
        })
    );
    assert_eq!(list.items.len(), 2);
    assert_eq!(list.items[1].data["k"], "b");
    // The same bytes as the list built as one JSON value.
    let whole = json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": metadata,
        "items": items});
    assert_eq!(protobuf::encode(&whole).unwrap(), body);
    // Items come back without apiVersion and kind, as upstream's lists carry them.
    let mut bare = whole.clone();
    for item in bare["items"].as_array_mut().unwrap() {
        let item = item.as_object_mut().unwrap();
        item.remove("apiVersion");
        item.remove("kind");
    }
    assert_holds(&protobuf::decode(&body).unwrap(), &bare, "list");
}

#[test]
fn status_is_byte_for_byte_what_go_writes() {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "pods \"x\" not found", "reason": "NotFound",
        "details": {"name": "x", "kind": "pods"}, "code": 404,
    });
    let got: meta::Status = golden(&status);
    let want = meta::Status {
        metadata: Some(meta::ListMeta {
            self_link: some(""),
            resource_version: some(""),
            r#continue: some(""),
            remaining_item_count: None,
        }),
        status: some("Failure"),
        message: some("pods \"x\" not found"),
        reason: some("NotFound"),
        details: Some(meta::StatusDetails {
            name: some("x"),
            group: some(""),
            kind: some("pods"),
            uid: some(""),
            causes: vec![],
            retry_after_seconds: Some(0),
        }),
        code: Some(404),
    };
    assert_eq!(got, want);
}

#[test]
fn watch_event_frames_embed_the_whole_object() {
    let object = serde_json::to_value(oapi::core::v1::ConfigMap {
        metadata: ometa("cfg", Some("default")),
        ..Default::default()
    })
    .unwrap();
    let body = protobuf::encode(&object).unwrap();
    let frame = protobuf::watch_frame("MODIFIED", &body);
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap());
    assert_eq!(len as usize, frame.len() - 4);
    // No magic and no envelope around the event itself (upstream's raw stream serializer).
    let event = meta::WatchEvent::decode(&frame[4..]).unwrap();
    assert_eq!(event.encode_to_vec(), &frame[4..]);
    assert_eq!(event.r#type.as_deref(), Some("MODIFIED"));
    let raw = event.object.unwrap().raw.unwrap();
    assert_eq!(raw, body);
    assert_eq!(
        protobuf::decode(&raw).unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default"}})
    );
}

/// The metadata every kind below carries: every ObjectMeta field kind, as Go's JSON writes it.
fn rich_metadata() -> Value {
    json!({
        "name": "x", "namespace": "ns", "uid": "0a1b", "resourceVersion": "12",
        "generation": 3, "creationTimestamp": "2024-01-02T03:04:05Z",
        "labels": {"b": "2", "a": "1"}, "annotations": {"note": "yes"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
            "uid": "u1", "controller": true, "blockOwnerDeletion": true}],
        "finalizers": ["example.com/f"],
        "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
            "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:a": {}}}}}],
    })
}

fn every_kind<M>()
where
    M: Message + Default + k8s_pb::Metadata<Ty = meta::ObjectMeta>,
{
    let object =
        json!({"apiVersion": M::API_VERSION, "kind": M::KIND, "metadata": rich_metadata()});
    assert!(protobuf::has_kind(M::API_VERSION, M::KIND), "{}", M::KIND);
    let message: M = golden(&object);
    let m = message.metadata().expect("metadata");
    assert_eq!(m.name.as_deref(), Some("x"), "{}", M::KIND);
    assert_eq!(m.generation, Some(3));
    assert_eq!(m.labels.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(
        m.managed_fields[0].time.as_ref().unwrap().seconds,
        Some(1_704_164_645)
    );
}

#[test]
fn every_served_kind_encodes_as_go_does() {
    use apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    use kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
    use pb::{
        admissionregistration, apps, authentication, authorization, autoscaling, batch,
        certificates, coordination, core, discovery, events, flowcontrol, networking, node, policy,
        rbac, resource, scheduling, storage,
    };
    every_kind::<core::v1::Binding>();
    every_kind::<core::v1::ComponentStatus>();
    every_kind::<core::v1::ConfigMap>();
    every_kind::<core::v1::Endpoints>();
    every_kind::<core::v1::Event>();
    every_kind::<core::v1::LimitRange>();
    every_kind::<core::v1::Namespace>();
    every_kind::<core::v1::Node>();
    every_kind::<core::v1::PersistentVolumeClaim>();
    every_kind::<core::v1::PersistentVolume>();
    every_kind::<core::v1::Pod>();
    every_kind::<core::v1::PodTemplate>();
    every_kind::<core::v1::ReplicationController>();
    every_kind::<core::v1::ResourceQuota>();
    every_kind::<core::v1::Secret>();
    every_kind::<core::v1::ServiceAccount>();
    every_kind::<core::v1::Service>();
    every_kind::<apiregistration::APIService>();
    every_kind::<apps::v1::ControllerRevision>();
    every_kind::<apps::v1::DaemonSet>();
    every_kind::<apps::v1::Deployment>();
    every_kind::<apps::v1::ReplicaSet>();
    every_kind::<apps::v1::StatefulSet>();
    every_kind::<events::v1::Event>();
    every_kind::<authentication::v1::SelfSubjectReview>();
    every_kind::<authentication::v1::TokenReview>();
    every_kind::<authorization::v1::LocalSubjectAccessReview>();
    every_kind::<authorization::v1::SelfSubjectAccessReview>();
    every_kind::<authorization::v1::SelfSubjectRulesReview>();
    every_kind::<authorization::v1::SubjectAccessReview>();
    every_kind::<autoscaling::v2::HorizontalPodAutoscaler>();
    every_kind::<autoscaling::v1::HorizontalPodAutoscaler>();
    every_kind::<batch::v1::CronJob>();
    every_kind::<batch::v1::Job>();
    every_kind::<certificates::v1::CertificateSigningRequest>();
    every_kind::<networking::v1::IngressClass>();
    every_kind::<networking::v1::Ingress>();
    every_kind::<networking::v1::IPAddress>();
    every_kind::<networking::v1::NetworkPolicy>();
    every_kind::<networking::v1::ServiceCIDR>();
    every_kind::<policy::v1::PodDisruptionBudget>();
    every_kind::<rbac::v1::ClusterRoleBinding>();
    every_kind::<rbac::v1::ClusterRole>();
    every_kind::<rbac::v1::RoleBinding>();
    every_kind::<rbac::v1::Role>();
    every_kind::<storage::v1::CSIDriver>();
    every_kind::<storage::v1::CSINode>();
    every_kind::<storage::v1::CSIStorageCapacity>();
    every_kind::<storage::v1::StorageClass>();
    every_kind::<storage::v1::VolumeAttachment>();
    every_kind::<storage::v1::VolumeAttributesClass>();
    every_kind::<admissionregistration::v1::MutatingWebhookConfiguration>();
    every_kind::<admissionregistration::v1::ValidatingAdmissionPolicy>();
    every_kind::<admissionregistration::v1::ValidatingAdmissionPolicyBinding>();
    every_kind::<admissionregistration::v1::ValidatingWebhookConfiguration>();
    every_kind::<apiextensions::CustomResourceDefinition>();
    every_kind::<scheduling::v1::PriorityClass>();
    every_kind::<coordination::v1::Lease>();
    every_kind::<node::v1::RuntimeClass>();
    every_kind::<discovery::v1::EndpointSlice>();
    every_kind::<flowcontrol::v1::FlowSchema>();
    every_kind::<flowcontrol::v1::PriorityLevelConfiguration>();
    every_kind::<resource::v1::DeviceClass>();
    every_kind::<resource::v1::ResourceClaim>();
    every_kind::<resource::v1::ResourceClaimTemplate>();
    every_kind::<resource::v1::ResourceSlice>();
}

#[test]
fn what_cannot_be_encoded() {
    let crd_object = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}});
    assert!(!protobuf::has_kind("example.com/v1", "Widget"));
    assert!(matches!(
        protobuf::encode(&crd_object),
        Err(EncodeError::UnknownKind { .. })
    ));
    let table = json!({"apiVersion": "meta.k8s.io/v1", "kind": "Table", "rows": []});
    assert!(matches!(
        protobuf::encode(&table),
        Err(EncodeError::UnknownKind { .. })
    ));
    let bad = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "spec": {"replicas": "three"}});
    assert_eq!(
        protobuf::encode(&bad).unwrap_err().to_string(),
        "field replicas of k8s.io.api.apps.v1.DeploymentSpec: not a 32-bit integer"
    );
}
