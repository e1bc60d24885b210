//! Golden tests for the protobuf decoder: objects encoded with k8s-pb's prost types (the wire
//! layout client-go produces) must decode to the JSON k8s-openapi produces for the same object.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as OQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as ometa;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString as OIntOrString;
use k8s_openapi::{ByteString, api as oapi};
use k8s_pb::api as pb;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use rkube_api::protobuf::{self, Error};
use serde_json::{Value, json};

/// A body as client-go sends it: magic, then the `runtime.Unknown` envelope.
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn decode<M: Message>(api_version: &str, kind: &str, object: &M) -> Value {
    protobuf::decode(&envelope(api_version, kind, object.encode_to_vec())).expect("decodes")
}

fn meta(name: &str, namespace: Option<&str>) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        ..Default::default()
    }
}

fn ometa(name: &str, namespace: Option<&str>) -> ometa::ObjectMeta {
    ometa::ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        ..Default::default()
    }
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_owned(), "web".to_owned())])
}

#[test]
fn namespace() {
    let got = decode(
        "v1",
        "Namespace",
        &pb::core::v1::Namespace {
            metadata: Some(meta::ObjectMeta {
                labels: labels(),
                ..meta("dev", None)
            }),
            spec: Some(Default::default()),
            status: Some(Default::default()),
        },
    );
    let want = oapi::core::v1::Namespace {
        metadata: ometa::ObjectMeta {
            labels: Some(labels()),
            ..ometa("dev", None)
        },
        spec: Some(Default::default()),
        status: Some(Default::default()),
    };
    assert_eq!(got, serde_json::to_value(want).unwrap());
}

#[test]
fn configmap_with_binary_data() {
    let got = decode(
        "v1",
        "ConfigMap",
        &pb::core::v1::ConfigMap {
            metadata: Some(meta("cfg", Some("default"))),
            data: BTreeMap::from([("a".into(), "1".into()), ("empty".into(), String::new())]),
            binary_data: BTreeMap::from([("bin".into(), vec![0, 159, 255])]),
            immutable: None,
        },
    );
    let want = oapi::core::v1::ConfigMap {
        metadata: ometa("cfg", Some("default")),
        data: Some(BTreeMap::from([
            ("a".into(), "1".into()),
            ("empty".into(), String::new()),
        ])),
        binary_data: Some(BTreeMap::from([(
            "bin".into(),
            ByteString(vec![0, 159, 255]),
        )])),
        immutable: None,
    };
    assert_eq!(got, serde_json::to_value(want).unwrap());
}

#[test]
fn secret_keeps_an_explicit_false_pointer() {
    let got = decode(
        "v1",
        "Secret",
        &pb::core::v1::Secret {
            metadata: Some(meta("s", Some("default"))),
            data: BTreeMap::from([("password".into(), b"hunter2".to_vec())]),
            r#type: Some("Opaque".into()),
            immutable: Some(false),
            ..Default::default()
        },
    );
    let want = oapi::core::v1::Secret {
        metadata: ometa("s", Some("default")),
        data: Some(BTreeMap::from([(
            "password".into(),
            ByteString(b"hunter2".to_vec()),
        )])),
        type_: Some("Opaque".into()),
        immutable: Some(false),
        ..Default::default()
    };
    assert_eq!(got, serde_json::to_value(want).unwrap());
    assert_eq!(got["data"]["password"], "aHVudGVyMg==");
}

#[test]
fn service_with_int_or_string_target_ports() {
    let port = |name: &str, port: i32, target: IntOrString| pb::core::v1::ServicePort {
        name: Some(name.into()),
        protocol: Some("TCP".into()),
        port: Some(port),
        target_port: Some(target),
        ..Default::default()
    };
    let got = decode(
        "v1",
        "Service",
        &pb::core::v1::Service {
            metadata: Some(meta("web", Some("default"))),
            spec: Some(pb::core::v1::ServiceSpec {
                ports: vec![
                    port(
                        "http",
                        80,
                        IntOrString {
                            r#type: Some(0),
                            int_val: Some(8080),
                            str_val: None,
                        },
                    ),
                    port(
                        "https",
                        443,
                        IntOrString {
                            r#type: Some(1),
                            int_val: None,
                            str_val: Some("tls".into()),
                        },
                    ),
                ],
                selector: labels(),
                cluster_ip: Some("None".into()),
                r#type: Some("ClusterIP".into()),
                ..Default::default()
            }),
            status: None,
        },
    );
    let oport = |name: &str, port: i32, target: OIntOrString| oapi::core::v1::ServicePort {
        name: Some(name.into()),
        protocol: Some("TCP".into()),
        port,
        target_port: Some(target),
        ..Default::default()
    };
    let want = oapi::core::v1::Service {
        metadata: ometa("web", Some("default")),
        spec: Some(oapi::core::v1::ServiceSpec {
            ports: Some(vec![
                oport("http", 80, OIntOrString::Int(8080)),
                oport("https", 443, OIntOrString::String("tls".into())),
            ]),
            selector: Some(labels()),
            cluster_ip: Some("None".into()),
            type_: Some("ClusterIP".into()),
            ..Default::default()
        }),
        status: None,
    };
    assert_eq!(got, serde_json::to_value(want).unwrap());
}

#[test]
fn deployment_with_template_and_quantities() {
    let quantity = |s: &str| Quantity {
        string: Some(s.into()),
    };
    let got = decode(
        "apps/v1",
        "Deployment",
        &pb::apps::v1::Deployment {
            metadata: Some(meta::ObjectMeta {
                labels: labels(),
                ..meta("web", Some("default"))
            }),
            spec: Some(pb::apps::v1::DeploymentSpec {
                // A pointer set to zero must survive (kubectl create deployment --replicas=0).
                replicas: Some(0),
                selector: Some(meta::LabelSelector {
                    match_labels: labels(),
                    ..Default::default()
                }),
                template: Some(pb::core::v1::PodTemplateSpec {
                    metadata: Some(meta::ObjectMeta {
                        labels: labels(),
                        ..Default::default()
                    }),
                    spec: Some(pb::core::v1::PodSpec {
                        containers: vec![pb::core::v1::Container {
                            name: Some("nginx".into()),
                            image: Some("nginx:1.27".into()),
                            args: vec!["-g".into(), "daemon off;".into()],
                            resources: Some(pb::core::v1::ResourceRequirements {
                                limits: BTreeMap::from([("memory".into(), quantity("128Mi"))]),
                                requests: BTreeMap::from([("cpu".into(), quantity("250m"))]),
                                claims: vec![],
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                }),
                strategy: Some(Default::default()),
                ..Default::default()
            }),
            status: Some(Default::default()),
        },
    );
    let want = oapi::apps::v1::Deployment {
        metadata: ometa::ObjectMeta {
            labels: Some(labels()),
            ..ometa("web", Some("default"))
        },
        spec: Some(oapi::apps::v1::DeploymentSpec {
            replicas: Some(0),
            selector: ometa::LabelSelector {
                match_labels: Some(labels()),
                ..Default::default()
            },
            template: oapi::core::v1::PodTemplateSpec {
                metadata: Some(ometa::ObjectMeta {
                    labels: Some(labels()),
                    ..Default::default()
                }),
                spec: Some(oapi::core::v1::PodSpec {
                    containers: vec![oapi::core::v1::Container {
                        name: "nginx".into(),
                        image: Some("nginx:1.27".into()),
                        args: Some(vec!["-g".into(), "daemon off;".into()]),
                        resources: Some(oapi::core::v1::ResourceRequirements {
                            limits: Some(BTreeMap::from([(
                                "memory".into(),
                                OQuantity("128Mi".into()),
                            )])),
                            requests: Some(BTreeMap::from([(
                                "cpu".into(),
                                OQuantity("250m".into()),
                            )])),
                            claims: None,
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            strategy: Some(Default::default()),
            ..Default::default()
        }),
        status: Some(Default::default()),
    };
    assert_eq!(got, serde_json::to_value(want).unwrap());
}

#[test]
fn cronjob() {
    let got = decode(
        "batch/v1",
        "CronJob",
        &pb::batch::v1::CronJob {
            metadata: Some(meta("nightly", Some("default"))),
            spec: Some(pb::batch::v1::CronJobSpec {
                schedule: Some("0 3 * * *".into()),
                time_zone: Some("Etc/UTC".into()),
                starting_deadline_seconds: Some(0),
                job_template: Some(pb::batch::v1::JobTemplateSpec {
                    metadata: Some(meta::ObjectMeta {
                        name: Some("nightly".into()),
                        ..Default::default()
                    }),
                    spec: Some(pb::batch::v1::JobSpec {
                        template: Some(pb::core::v1::PodTemplateSpec {
                            metadata: Some(Default::default()),
                            spec: Some(pb::core::v1::PodSpec {
                                containers: vec![pb::core::v1::Container {
                                    name: Some("job".into()),
                                    image: Some("busybox".into()),
                                    ..Default::default()
                                }],
                                restart_policy: Some("OnFailure".into()),
                                ..Default::default()
                            }),
                        }),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        },
    );
    let want = oapi::batch::v1::CronJob {
        metadata: ometa("nightly", Some("default")),
        spec: Some(oapi::batch::v1::CronJobSpec {
            schedule: "0 3 * * *".into(),
            time_zone: Some("Etc/UTC".into()),
            starting_deadline_seconds: Some(0),
            job_template: oapi::batch::v1::JobTemplateSpec {
                metadata: Some(ometa::ObjectMeta {
                    name: Some("nightly".into()),
                    ..Default::default()
                }),
                spec: Some(oapi::batch::v1::JobSpec {
                    template: oapi::core::v1::PodTemplateSpec {
                        metadata: Some(Default::default()),
                        spec: Some(oapi::core::v1::PodSpec {
                            containers: vec![oapi::core::v1::Container {
                                name: "job".into(),
                                image: Some("busybox".into()),
                                ..Default::default()
                            }],
                            restart_policy: Some("OnFailure".into()),
                            ..Default::default()
                        }),
                    },
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    };
    assert_eq!(got, serde_json::to_value(want).unwrap());
}

#[test]
fn rolebinding() {
    let got = decode(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        &pb::rbac::v1::RoleBinding {
            metadata: Some(meta("read", Some("default"))),
            subjects: vec![pb::rbac::v1::Subject {
                kind: Some("ServiceAccount".into()),
                api_group: Some(String::new()),
                name: Some("bot".into()),
                namespace: Some("default".into()),
            }],
            role_ref: Some(pb::rbac::v1::RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: Some("Role".into()),
                name: Some("reader".into()),
            }),
        },
    );
    let want = oapi::rbac::v1::RoleBinding {
        metadata: ometa("read", Some("default")),
        subjects: Some(vec![oapi::rbac::v1::Subject {
            kind: "ServiceAccount".into(),
            api_group: None,
            name: "bot".into(),
            namespace: Some("default".into()),
        }]),
        role_ref: oapi::rbac::v1::RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "reader".into(),
        },
    };
    assert_eq!(got, serde_json::to_value(want).unwrap());
}

/// Go's protobuf writes every non-pointer field, zero or not; the JSON keeps only what Go's
/// JSON would: `omitempty` zeros go, zeros of fields without it stay, a zero `Time` is `null`.
#[test]
fn zero_values_follow_go_json() {
    let got = decode(
        "v1",
        "Pod",
        &pb::core::v1::Pod {
            metadata: Some(meta::ObjectMeta {
                generate_name: Some(String::new()),
                generation: Some(0),
                creation_timestamp: Some(meta::Time::default()),
                ..meta("p", Some(""))
            }),
            spec: Some(pb::core::v1::PodSpec {
                containers: vec![pb::core::v1::Container {
                    image: Some("x".into()),
                    ..Default::default()
                }],
                host_network: Some(false),
                termination_grace_period_seconds: Some(0),
                ..Default::default()
            }),
            status: None,
        },
    );
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "", "image": "x"}],
                "terminationGracePeriodSeconds": 0,
            },
        })
    );
}

#[test]
fn times_and_raw_extensions() {
    let got = decode(
        "coordination.k8s.io/v1",
        "Lease",
        &pb::coordination::v1::Lease {
            metadata: Some(meta::ObjectMeta {
                creation_timestamp: Some(meta::Time {
                    seconds: Some(1_700_000_000),
                    nanos: Some(5),
                }),
                ..meta("l", Some("default"))
            }),
            spec: Some(pb::coordination::v1::LeaseSpec {
                renew_time: Some(meta::MicroTime {
                    seconds: Some(1_700_000_000),
                    nanos: Some(123_456_789),
                }),
                ..Default::default()
            }),
        },
    );
    assert_eq!(got["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(got["spec"]["renewTime"], "2023-11-14T22:13:20.123456Z");

    let got = decode(
        "apps/v1",
        "ControllerRevision",
        &pb::apps::v1::ControllerRevision {
            metadata: Some(meta("r", Some("default"))),
            data: Some(RawExtension {
                raw: Some(br#"{"spec":{"x":[1,2]}}"#.to_vec()),
            }),
            revision: Some(3),
        },
    );
    assert_eq!(got["data"], json!({"spec": {"x": [1, 2]}}));
    assert_eq!(got["revision"], 3);
}

#[test]
fn delete_options_decode_under_any_group_version() {
    let got = decode(
        "apps/v1",
        "DeleteOptions",
        &meta::DeleteOptions {
            grace_period_seconds: Some(0),
            propagation_policy: Some("Foreground".into()),
            ..Default::default()
        },
    );
    assert_eq!(got["gracePeriodSeconds"], 0);
    assert_eq!(got["propagationPolicy"], "Foreground");
    assert_eq!(got["kind"], "DeleteOptions");
}

#[test]
fn unknown_fields_are_skipped() {
    let mut raw = pb::core::v1::ConfigMap {
        metadata: Some(meta("c", None)),
        ..Default::default()
    }
    .encode_to_vec();
    raw.extend([0xf8, 0x3e, 0x01]); // field 999, varint 1
    let got = protobuf::decode(&envelope("v1", "ConfigMap", raw)).unwrap();
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    );
}

#[test]
fn malformed_bodies_are_errors() {
    let good = envelope(
        "v1",
        "ConfigMap",
        pb::core::v1::ConfigMap {
            metadata: Some(meta("c", None)),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"{\"kind\":\"ConfigMap\"}".to_vec(),
            "protobuf body does not start with the Kubernetes magic number",
        ),
        (
            good[..good.len() - 6].to_vec(),
            "malformed protobuf: length past the end of the message",
        ),
        (
            envelope("v1", "Gadget", vec![]),
            "no kind \"Gadget\" is registered for version \"v1\"",
        ),
        (
            envelope("v1", "", vec![]),
            "no kind \"\" is registered for version \"v1\"",
        ),
        (
            envelope("v1", "ConfigMap", vec![0x0a, 0x80]),
            "malformed protobuf: truncated varint",
        ),
        (
            envelope("v1", "ConfigMap", vec![0x0a, 0x02, 0x0a, 0x01, 0xff]),
            "malformed protobuf: length past the end of the message",
        ),
        (
            envelope("v1", "ConfigMap", vec![0x08, 0x01]),
            "field metadata of k8s.io.api.core.v1.ConfigMap: wrong wire type",
        ),
        (
            envelope("v1", "ConfigMap", vec![0x0a, 0x03, 0x0a, 0x01, 0xff]),
            "field name of k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta: string is not valid UTF-8",
        ),
    ];
    for (body, message) in cases {
        assert_eq!(
            protobuf::decode(&body).unwrap_err().to_string(),
            message,
            "{body:?}"
        );
    }
}

#[test]
fn nesting_is_bounded() {
    // RawExtensions holding whole protobuf objects, nested far past the limit.
    let mut raw = Vec::new();
    for _ in 0..200 {
        let revision = pb::apps::v1::ControllerRevision {
            data: Some(RawExtension { raw: Some(raw) }),
            ..Default::default()
        };
        raw = envelope("apps/v1", "ControllerRevision", revision.encode_to_vec());
    }
    assert!(matches!(protobuf::decode(&raw), Err(Error::TooDeep)));
}
