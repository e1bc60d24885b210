//! Server-side apply cases written from structured-merge-diff's documented behaviour.

use serde_json::{Value, json};

use super::fieldpath::{Path, Set};
use super::managed::{self, Context, Error, Managed, Operation, Owned};
use super::typed::{Schema, field_set};
use crate::types::lookup_kind;

fn schema() -> Schema {
    Schema::root(lookup_kind("apps", "v1", "Deployment"))
}

fn cx(now: &str) -> Context<'_> {
    Context {
        schema: schema(),
        api_version: "apps/v1",
        subresource: "",
        owned: Owned::AllButStatus,
        now,
    }
}

fn deployment(replicas: i64, env: &[&str], labels: Value) -> Value {
    let env: Vec<Value> = env
        .iter()
        .map(|n| json!({"name": n, "value": "1"}))
        .collect();
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "env": env,
                    "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

fn apply(live: Option<&Value>, config: &Value, manager: &str, force: bool) -> Result<Value, Error> {
    managed::apply(live, config, manager, force, &cx("2026-01-01T00:00:00Z"))
}

fn owners(object: &Value, path: &[&str]) -> Vec<String> {
    let managed = Managed::decode(object).expect("managedFields decode");
    managed
        .entries
        .iter()
        .filter(|(_, e)| e.fields.has(&Path::fields(path)))
        .map(|(id, _)| id.manager.clone())
        .collect()
}

fn env_names(object: &Value) -> Vec<String> {
    object["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["name"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn apply_creates_and_owns_what_it_sent() {
    let object = apply(
        None,
        &deployment(2, &["A"], json!({"app": "web"})),
        "a",
        false,
    )
    .expect("apply");
    assert_eq!(object["spec"]["replicas"], 2);
    let entries = object["metadata"]["managedFields"]
        .as_array()
        .expect("entries");
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        (e["manager"].as_str(), e["operation"].as_str()),
        (Some("a"), Some("Apply"))
    );
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(e["time"], "2026-01-01T00:00:00Z");
    let fields = &e["fieldsV1"];
    // Applied sets hold leaves and list items, not the granular maps around them.
    assert_eq!(fields["f:metadata"]["f:labels"], json!({"f:app": {}}));
    assert!(
        fields["f:metadata"].get("f:name").is_none(),
        "name is never owned"
    );
    let container =
        &fields["f:spec"]["f:template"]["f:spec"]["f:containers"][r#"k:{"name":"nginx"}"#];
    assert_eq!(container["."], json!({}));
    // A port without protocol is keyed with upstream's default.
    assert!(container["f:ports"][r#"k:{"containerPort":80,"protocol":"TCP"}"#].is_object());
    // The selector is an atomic struct: owned whole.
    assert_eq!(fields["f:spec"]["f:selector"], json!({}));
}

#[test]
fn a_second_applier_conflicts_on_a_different_value_only() {
    let live = apply(None, &deployment(2, &[], json!({"app": "web"})), "a", false).expect("apply");
    let err = apply(
        Some(&live),
        &deployment(3, &[], json!({"app": "web"})),
        "b",
        false,
    )
    .expect_err("conflict");
    let api = err.into_api_error("");
    assert_eq!(api.code(), 409);
    assert_eq!(
        api.message(),
        r#"Apply failed with 1 conflict: conflict with "a": .spec.replicas"#
    );
    let causes = &api.details().expect("details").causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].cause_type, "FieldManagerConflict");
    assert_eq!(causes[0].field, ".spec.replicas");
    assert_eq!(causes[0].message, r#"conflict with "a""#);

    // Same values: shared ownership, no conflict.
    let shared = apply(
        Some(&live),
        &deployment(2, &[], json!({"app": "web"})),
        "b",
        false,
    )
    .expect("same values");
    assert_eq!(owners(&shared, &["spec", "replicas"]), ["a", "b"]);

    // Forced: b takes the field from a.
    let forced = apply(
        Some(&live),
        &deployment(3, &[], json!({"app": "web"})),
        "b",
        true,
    )
    .expect("force");
    assert_eq!(forced["spec"]["replicas"], 3);
    assert_eq!(owners(&forced, &["spec", "replicas"]), ["b"]);
}

#[test]
fn fields_no_longer_applied_go_unless_someone_else_owns_them() {
    let live = apply(
        None,
        &deployment(2, &["A", "B"], json!({"app": "web", "tier": "x"})),
        "a",
        false,
    )
    .expect("apply");
    // b also applies the tier label.
    let live = apply(
        Some(&live),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"tier": "x"}}}),
        "b",
        false,
    )
    .expect("b");
    let next = apply(
        Some(&live),
        &deployment(2, &["A"], json!({"app": "web"})),
        "a",
        false,
    )
    .expect("re-apply");
    assert_eq!(env_names(&next), ["A"]);
    assert_eq!(
        next["metadata"]["labels"],
        json!({"app": "web", "tier": "x"})
    );
    assert_eq!(owners(&next, &["metadata", "labels", "tier"]), ["b"]);
    // The multi-conflict message groups paths by manager.
    let err = apply(
        Some(&next),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"tier": "y", "app": "other"}}, "spec": {"replicas": 9}}),
        "c",
        false,
    )
    .expect_err("conflicts");
    assert_eq!(
        err.to_string(),
        "Apply failed with 3 conflicts: conflicts with \"a\":\n- .metadata.labels.app\n- .spec.replicas\nconflicts with \"b\":\n- .metadata.labels.tier"
    );
}

#[test]
fn updates_take_ownership_and_appliers_then_conflict() {
    let live = apply(None, &deployment(2, &[], json!({"app": "web"})), "a", false).expect("apply");
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(5);
    managed::update(
        Some(&live),
        &mut edited,
        "kubectl-edit",
        &cx("2026-01-01T00:01:00Z"),
    );
    assert_eq!(owners(&edited, &["spec", "replicas"]), ["kubectl-edit"]);
    let update = edited["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["manager"] == "kubectl-edit"))
        .expect("update entry");
    assert_eq!(update["operation"], "Update");
    assert_eq!(update["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    let err = apply(
        Some(&edited),
        &deployment(2, &[], json!({"app": "web"})),
        "a",
        false,
    )
    .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas"#
    );
}

#[test]
fn set_lists_union_and_atomic_maps_conflict() {
    let base = |fins: Value, selector: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "finalizers": fins},
            "spec": {"template": {"spec": {"nodeSelector": selector}}}})
    };
    let live = apply(None, &base(json!(["a"]), json!({"x": "1"})), "m1", false).expect("m1");
    let both = apply(
        Some(&live),
        &base(json!(["b"]), json!({"x": "1"})),
        "m2",
        false,
    )
    .expect("set lists merge");
    assert_eq!(both["metadata"]["finalizers"], json!(["a", "b"]));
    let err = apply(
        Some(&both),
        &base(json!(["b"]), json!({"y": "2"})),
        "m2",
        false,
    )
    .expect_err("atomic map");
    assert!(
        err.to_string()
            .ends_with(".spec.template.spec.nodeSelector"),
        "{err}"
    );
}

#[test]
fn list_maps_merge_by_key_in_upstream_order() {
    let containers = |names: &[&str]| {
        let list: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "image": n}))
            .collect();
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": list}}}})
    };
    let live = apply(None, &containers(&["a", "b"]), "m1", false).expect("m1");
    let merged = apply(Some(&live), &containers(&["c", "a"]), "m2", false).expect("m2");
    let names: Vec<&str> = merged["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["c", "a", "b"]);
}

#[test]
fn updates_track_creates_and_leave_untracked_objects_alone() {
    let mut created = deployment(1, &[], json!({"app": "web"}));
    managed::update(
        None,
        &mut created,
        "kubectl-create",
        &cx("2026-01-01T00:00:00Z"),
    );
    let fields = &created["metadata"]["managedFields"][0]["fieldsV1"];
    // Labels appeared; spec existed in the zero object, so only its fields are owned.
    assert_eq!(fields["f:metadata"]["f:labels"]["."], json!({}));
    assert!(fields["f:spec"].get(".").is_none());
    assert_eq!(fields["f:spec"]["f:replicas"], json!({}));

    let untracked = deployment(1, &[], json!({}));
    let mut next = untracked.clone();
    next["spec"]["replicas"] = json!(2);
    managed::update(
        Some(&untracked),
        &mut next,
        "x",
        &cx("2026-01-01T00:00:00Z"),
    );
    assert!(next["metadata"].get("managedFields").is_none());

    // `[{}]` clears them.
    let mut reset = created.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    managed::update(Some(&created), &mut reset, "x", &cx("2026-01-01T00:00:00Z"));
    assert!(reset["metadata"].get("managedFields").is_none());
}

#[test]
fn more_than_ten_updaters_fold_into_ancient_changes() {
    let mut live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {}}});
    managed::update(None, &mut live, "creator", &cx("2026-01-01T00:00:00Z"));
    for i in 0..12 {
        let mut next = live.clone();
        next["metadata"]["labels"][format!("l{i}")] = json!("v");
        let now = format!("2026-01-01T00:{:02}:00Z", i + 1);
        managed::update(Some(&live), &mut next, &format!("m{i}"), &cx(&now));
        live = next;
    }
    let managed = Managed::decode(&live).expect("decode");
    let updates = managed
        .entries
        .keys()
        .filter(|id| id.operation == Operation::Update)
        .count();
    assert_eq!(updates, 10);
    assert!(
        managed
            .entries
            .keys()
            .any(|id| id.manager == "ancient-changes")
    );
}

#[test]
fn field_sets_follow_list_types() {
    let pod = json!({"spec": {
        "containers": [{"name": "a", "args": ["x", "y"]}],
        "tolerations": [{"key": "k"}]
    }, "metadata": {"finalizers": ["f"]}});
    let set = field_set(&pod, Schema::root(lookup_kind("", "v1", "Pod")), true).expect("set");
    let text = serde_json::to_string(&set.to_fields_v1()).expect("json");
    assert_eq!(
        text,
        r#"{"f:metadata":{"f:finalizers":{"v:\"f\"":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"a\"}":{".":{},"f:args":{},"f:name":{}}},"f:tolerations":{}}}"#
    );
    let bad = json!({"spec": {"nope": 1}});
    let err =
        field_set(&bad, Schema::root(lookup_kind("", "v1", "Pod")), true).expect_err("unknown");
    assert_eq!(err.to_string(), ".spec.nope: field not declared in schema");
    assert!(Set::new().is_empty());
}

#[test]
fn kubectl_upgrades_from_client_side_apply() {
    // Client-side apply: an Update entry by kubectl-client-side-apply and the annotation.
    let mut config = deployment(2, &[], json!({"app": "web"}));
    let mut live = config.clone();
    live["metadata"]["annotations"] = json!({managed::LAST_APPLIED: config.to_string()});
    managed::update(
        None,
        &mut live,
        "kubectl-client-side-apply",
        &cx("2026-01-01T00:00:00Z"),
    );
    // Server-side apply by kubectl changing replicas: allowed, as the live value is what the
    // last client-side apply set.
    config["spec"]["replicas"] = json!(4);
    let next = apply(Some(&live), &config, "kubectl", false).expect("upgrade");
    assert_eq!(next["spec"]["replicas"], 4);
    assert_eq!(owners(&next, &["spec", "replicas"]), ["kubectl"]);
    let annotation = next["metadata"]["annotations"][managed::LAST_APPLIED]
        .as_str()
        .expect("annotation kept");
    let last: Value = serde_json::from_str(annotation).expect("json");
    assert_eq!(last["spec"]["replicas"], 4);
    // Another manager gets no such allowance.
    assert!(apply(Some(&live), &config, "other", false).is_err());
}

#[test]
fn managed_fields_in_an_apply_are_refused() {
    let mut config = deployment(1, &[], json!({}));
    config["metadata"]["managedFields"] = json!([]);
    let err = apply(None, &config, "a", false).expect_err("refused");
    assert_eq!(err.into_api_error("").code(), 400);
}

/// The FieldsV1 a create by `manager` records for `object` of `group/version/kind`.
fn created_fields(group: &str, version: &str, kind: &str, mut object: Value) -> Value {
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let cx = Context {
        schema: Schema::root(lookup_kind(group, version, kind)),
        api_version: &api_version,
        subresource: "",
        owned: Owned::AllButStatus,
        now: "2026-01-01T00:00:00Z",
    };
    managed::update(None, &mut object, "m", &cx);
    object["metadata"]["managedFields"][0]["fieldsV1"].clone()
}

#[test]
fn creates_own_what_the_go_zero_value_lacks() {
    // Upstream compares a create with the kind's Go zero value: non-pointer structs (spec,
    // strategy, template) are in it and get no `.`; pointer structs (rollingUpdate, probes),
    // maps and `omitempty` lists are additions with their own `.`; `containers` (no
    // `omitempty`) is null there, so it has none either. Ports without a protocol are keyed
    // by its default.
    let object = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "c", "image": "nginx",
                        "ports": [{"containerPort": 80}],
                        "livenessProbe": {"httpGet": {"path": "/", "port": 80},
                            "periodSeconds": 10}}],
                    "securityContext": {}
                }
            }
        },
        "status": {}
    });
    let expected = json!({
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:strategy": {
                "f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}},
                "f:type": {}
            },
            "f:template": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:containers": {"k:{\"name\":\"c\"}": {
                        ".": {},
                        "f:image": {},
                        "f:livenessProbe": {
                            ".": {},
                            "f:httpGet": {".": {}, "f:path": {}, "f:port": {}},
                            "f:periodSeconds": {}
                        },
                        "f:name": {},
                        "f:ports": {
                            ".": {},
                            "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}
                            }
                        }
                    }},
                    "f:securityContext": {}
                }
            }
        }
    });
    assert_eq!(created_fields("apps", "v1", "Deployment", object), expected);
}

#[test]
fn service_creates_key_ports_by_the_default_protocol() {
    let object = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"selector": {"app": "s"}, "type": "ClusterIP",
            "ports": [{"port": 80, "targetPort": 8080}]}
    });
    let expected = json!({"f:spec": {
        "f:ports": {".": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {
            ".": {}, "f:port": {}, "f:targetPort": {}
        }},
        "f:selector": {},
        "f:type": {}
    }});
    assert_eq!(created_fields("", "v1", "Service", object), expected);
}

#[test]
fn scale_views_carry_the_replicas_owners_and_hand_them_back() {
    let replicas = Path::fields(&["spec", "replicas"]);
    let mut parent = deployment(1, &["A"], json!({"app": "web"}));
    managed::update(None, &mut parent, "creator", &cx("2026-01-01T00:00:00Z"));
    let parent_managed = Managed::decode(&parent).expect("decodes");
    let view = managed::to_subresource(&parent_managed, &replicas, &replicas, "autoscaling/v1");
    assert_eq!(view.entries.len(), 1);
    let only = view.entries.values().next().expect("one entry");
    assert_eq!(only.api_version, "autoscaling/v1");
    assert_eq!(only.fields, Set::from_paths([&replicas]));

    // An applier on the scale takes the replicas over: the creator keeps the rest.
    let mut sub = view.clone();
    sub.entries.clear();
    let applier = managed::ManagerId {
        manager: "hpa".into(),
        operation: Operation::Apply,
        api_version: String::new(),
        subresource: "scale".into(),
    };
    sub.entries.insert(
        applier.clone(),
        managed::Entry {
            api_version: "autoscaling/v1".into(),
            time: Some("2026-01-02T00:00:00Z".into()),
            fields: Set::from_paths([&replicas]),
        },
    );
    let back = managed::to_parent(&parent_managed, &sub, &replicas, &replicas, "apps/v1");
    let owners: Vec<&str> = back
        .entries
        .iter()
        .filter(|(_, e)| e.fields.has(&replicas))
        .map(|(id, _)| id.manager.as_str())
        .collect();
    assert_eq!(owners, ["hpa"]);
    assert_eq!(back.entries[&applier].api_version, "apps/v1");
    assert!(back.entries.keys().any(|id| id.manager == "creator"));

    // Unchanged ownership hands the parent's entries back as they were.
    let same = managed::to_parent(&parent_managed, &view, &replicas, &replicas, "apps/v1");
    assert_eq!(same, parent_managed);
}
