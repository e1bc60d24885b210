//! The generic registry over `KvStore` on in-memory SQLite, through [`Registry`] as the API
//! server uses it.

// Test code: a failed expectation panics.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use futures::StreamExt;
use rkube_api::resources::{self, Resource};
use rkube_api::status::ApiError;
use rkube_registry::rest::{
    CreateOptions, DeleteOptions, Deleted, GetOptions, ListOptions, PatchOptions, PatchType, Scope,
    UpdateOptions,
};
use rkube_registry::{BootstrapConfig, Registry, Rest, ensure_defaults};
use rkube_storage::{KvStore, Object, WatchEvent};
use rkube_storage_sqlite::SqliteBackend;
use serde_json::{Value, json};

async fn registry() -> Registry {
    let backend = SqliteBackend::open_in_memory().unwrap();
    let registry = Registry::new(Arc::new(KvStore::new(Arc::new(backend))));
    registry.ready().await;
    registry
}

fn res(group: &str, plural: &str) -> &'static Resource {
    resources::lookup(group, "v1", plural).unwrap()
}

fn rest(registry: &Registry, group: &str, plural: &str) -> Arc<dyn Rest> {
    registry.rest(res(group, plural), None).unwrap()
}

fn ns(name: &str) -> Scope {
    Scope {
        namespace: Some(name.into()),
    }
}

fn cm(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

fn deployment(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

async fn create(rest: &Arc<dyn Rest>, scope: &Scope, object: Value) -> Object {
    rest.create(scope, object, &CreateOptions::default())
        .await
        .unwrap()
        .value
}

fn wire(e: &ApiError) -> Value {
    serde_json::from_slice(&e.to_json()).unwrap()
}

fn rv(o: &Object) -> String {
    o.revision().to_string()
}

#[tokio::test]
async fn create_sets_server_fields_and_conflicts_on_duplicates() {
    let registry = registry().await;
    let cms = rest(&registry, "", "configmaps");
    let created = create(&cms, &ns("default"), cm("a", json!({}))).await;
    let v = created.value();
    assert_eq!(v["metadata"]["namespace"], "default");
    assert_eq!(v["metadata"]["uid"].as_str().unwrap().len(), 36);
    let ts = v["metadata"]["creationTimestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == 20, "{ts}");
    assert!(
        v["metadata"].get("generation").is_none(),
        "no spec, no generation"
    );
    let got = cms
        .get(&ns("default"), "a", &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(got.value(), created.value());

    let err = cms
        .create(
            &ns("default"),
            cm("a", json!({})),
            &CreateOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (409, r#"configmaps "a" already exists"#)
    );
    let err = cms
        .get(&ns("default"), "zz", &GetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (404, r#"configmaps "zz" not found"#)
    );
    let err = cms
        .get(
            &ns("default"),
            "a",
            &GetOptions {
                resource_version: "abc".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), 400);

    let deployments = rest(&registry, "apps", "deployments");
    let d = create(&deployments, &ns("default"), deployment("web")).await;
    assert_eq!(d.value()["metadata"]["generation"], 1);
}

#[tokio::test]
async fn create_rejects_mismatches_and_invalid_metadata() {
    let registry = registry().await;
    let cms = rest(&registry, "", "configmaps");
    let scope = ns("default");
    let mut other_ns = cm("a", json!({}));
    other_ns["metadata"]["namespace"] = json!("kube-system");
    let err = cms
        .create(&scope, other_ns, &CreateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            400,
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    );
    let mut wrong_version = cm("a", json!({}));
    wrong_version["apiVersion"] = json!("apps/v1");
    let err = cms
        .create(&scope, wrong_version, &CreateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    );
    let err = cms
        .create(&scope, cm("Bad_Name", json!({})), &CreateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), 422);
    assert_eq!(wire(&err)["details"]["causes"][0]["field"], "metadata.name");
    let err = cms
        .create(
            &scope,
            json!({"metadata": {}, "data": {}}),
            &CreateOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        r#"ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required"#
    );
    let err = cms
        .create(
            &scope,
            cm("ok", json!({"bad key!": "v"})),
            &CreateOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), 422);
    assert_eq!(
        wire(&err)["details"]["causes"][0]["field"],
        "metadata.labels"
    );
}

#[tokio::test]
async fn generate_name_and_dry_run() {
    let registry = registry().await;
    let cms = rest(&registry, "", "configmaps");
    let scope = ns("default");
    let body = json!({"metadata": {"generateName": "gen-"}, "data": {}});
    let a = create(&cms, &scope, body.clone()).await;
    let b = create(&cms, &scope, body).await;
    let name = |o: &Object| o.value()["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name(&a).starts_with("gen-") && name(&a).len() == 9);
    assert_ne!(name(&a), name(&b));

    let dry = cms
        .create(
            &scope,
            cm("dry", json!({})),
            &CreateOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(dry.value.value()["metadata"]["name"], "dry");
    let err = cms
        .get(&scope, "dry", &GetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), 404, "dry run stores nothing");
}

#[tokio::test]
async fn list_filters_and_paginates() {
    let registry = registry().await;
    let cms = rest(&registry, "", "configmaps");
    for (name, app, namespace) in [
        ("a", "x", "default"),
        ("b", "y", "default"),
        ("c", "x", "default"),
        ("d", "x", "other"),
    ] {
        create(&cms, &ns(namespace), cm(name, json!({"app": app}))).await;
    }
    let names = |items: &[Object]| -> Vec<String> {
        items
            .iter()
            .map(|o| o.value()["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let list = |o: ListOptions| {
        let cms = cms.clone();
        async move { cms.list(&ns("default"), &o).await }
    };
    let by_label = list(ListOptions {
        label_selector: Some("app=x".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(names(&by_label.items), ["a", "c"]);
    let all_namespaces = cms
        .list(
            &Scope::default(),
            &ListOptions {
                label_selector: Some("app=x".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(names(&all_namespaces.items), ["a", "c", "d"]);
    let by_field = list(ListOptions {
        field_selector: Some("metadata.name!=a".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(names(&by_field.items), ["b", "c"]);
    let err = list(ListOptions {
        field_selector: Some("spec.foo=bar".into()),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (400, "field label not supported: spec.foo")
    );
    let err = list(ListOptions {
        label_selector: Some("a in (".into()),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(err.code(), 400);

    let first = list(ListOptions {
        limit: Some(2),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(names(&first.items), ["a", "b"]);
    let token = first.continue_token.clone().unwrap();
    let second = list(ListOptions {
        limit: Some(2),
        continue_token: Some(token.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(names(&second.items), ["c"]);
    assert!(second.continue_token.is_none());
    let err = list(ListOptions {
        continue_token: Some(token),
        resource_version: "5".into(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            400,
            "specifying resource version is not allowed when using continue"
        )
    );
    let err = list(ListOptions {
        resource_version_match: "Exact".into(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            422,
            r#"ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"#
        )
    );
}

#[tokio::test]
async fn watch_resumes_after_a_resource_version() {
    let registry = registry().await;
    let cms = rest(&registry, "", "configmaps");
    let scope = ns("default");
    let a = create(&cms, &scope, cm("a", json!({}))).await;
    let mut watch = cms
        .watch(
            &scope,
            &ListOptions {
                resource_version: rv(&a),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    create(&cms, &scope, cm("b", json!({}))).await;
    match watch.next().await.unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.value()["metadata"]["name"], "b"),
        other => panic!("expected ADDED b, got {other:?}"),
    }
    let err = cms
        .watch(
            &scope,
            &ListOptions {
                send_initial_events: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        r#"ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"#
    );
}

#[tokio::test]
async fn update_checks_resource_version_and_keeps_system_fields() {
    let registry = registry().await;
    let cms = rest(&registry, "", "configmaps");
    let scope = ns("default");
    let created = create(&cms, &scope, cm("a", json!({}))).await;
    let mut body = created.value().clone();
    body["data"]["k"] = json!("v2");
    body["metadata"]["uid"] = Value::Null;
    body["metadata"]["creationTimestamp"] = json!("2000-01-01T00:00:00Z");
    let updated = cms
        .update(&scope, "a", body.clone(), &UpdateOptions::default())
        .await
        .unwrap()
        .value
        .0;
    assert_eq!(updated.value()["data"]["k"], "v2");
    assert_eq!(
        updated.value()["metadata"]["uid"],
        created.value()["metadata"]["uid"]
    );
    assert_eq!(
        updated.value()["metadata"]["creationTimestamp"],
        created.value()["metadata"]["creationTimestamp"]
    );
    // `body` still carries the first resourceVersion: stale now.
    let err = cms
        .update(&scope, "a", body, &UpdateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        wire(&err),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again",
            "reason": "Conflict", "details": {"name": "a", "kind": "configmaps"}, "code": 409})
    );
    let err = cms
        .update(&scope, "b", cm("a", json!({})), &UpdateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "the name of the object (a) does not match the name on the URL (b)"
    );
    let err = cms
        .update(&scope, "zz", cm("zz", json!({})), &UpdateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), 404, "configmaps do not create on update");

    let deployments = rest(&registry, "apps", "deployments");
    let d = create(&deployments, &scope, deployment("web")).await;
    let mut body = d.value().clone();
    body["spec"]["replicas"] = json!(5);
    let d2 = deployments
        .update(&scope, "web", body, &UpdateOptions::default())
        .await
        .unwrap()
        .value
        .0;
    assert_eq!(d2.value()["metadata"]["generation"], 2);
}

#[tokio::test]
async fn patches() {
    let registry = registry().await;
    let cms = rest(&registry, "", "configmaps");
    let scope = ns("default");
    create(&cms, &scope, cm("a", json!({}))).await;
    let patch = |t: PatchType, body: &'static str| {
        let cms = cms.clone();
        let scope = scope.clone();
        async move {
            cms.patch(&scope, "a", t, body.as_bytes(), &PatchOptions::default())
                .await
        }
    };
    let merged = patch(PatchType::Merge, r#"{"data":{"x":"1","k":null}}"#)
        .await
        .unwrap();
    assert_eq!(merged.value.0.value()["data"], json!({"x": "1"}));
    let smp = patch(
        PatchType::StrategicMerge,
        r#"{"metadata":{"labels":{"l":"v"}}}"#,
    )
    .await
    .unwrap();
    assert_eq!(smp.value.0.value()["metadata"]["labels"]["l"], "v");
    // finalizers merge as a set under a strategic patch (a merge patch would replace them);
    // as upstream orders a merged list, what the patch brings goes before what only the live
    // object has.
    for finalizer in ["a/b", "c/d"] {
        let body = format!(r#"{{"metadata":{{"finalizers":["{finalizer}"]}}}}"#);
        cms.patch(
            &scope,
            "a",
            PatchType::StrategicMerge,
            body.as_bytes(),
            &PatchOptions::default(),
        )
        .await
        .unwrap();
    }
    let both = patch(PatchType::Merge, "{}").await.unwrap();
    assert_eq!(
        both.value.0.value()["metadata"]["finalizers"],
        json!(["c/d", "a/b"])
    );
    patch(PatchType::Merge, r#"{"metadata":{"finalizers":null}}"#)
        .await
        .unwrap();
    let json_patch = patch(
        PatchType::Json,
        r#"[{"op":"test","path":"/data/x","value":"1"},{"op":"add","path":"/data/y","value":"2"}]"#,
    )
    .await
    .unwrap();
    assert_eq!(json_patch.value.0.value()["data"]["y"], "2");
    let err = patch(
        PatchType::Json,
        r#"[{"op":"test","path":"/data/x","value":"nope"}]"#,
    )
    .await
    .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            422,
            "the server rejected our request due to an error in our request"
        )
    );
    let err = patch(PatchType::Json, r#"{"not":"a list"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.code(), 400);
    let err = patch(PatchType::Merge, r#"{"metadata":{"resourceVersion":"1"}}"#)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        409,
        "a stale resourceVersion in a patch conflicts"
    );
    let err = cms
        .patch(
            &scope,
            "missing",
            PatchType::Merge,
            b"{}",
            &PatchOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), 404);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let registry = registry().await;
    let cms = rest(&registry, "", "configmaps");
    let scope = ns("default");
    let mut body = cm("a", json!({}));
    body["metadata"]["finalizers"] = json!(["example.com/hold"]);
    create(&cms, &scope, body).await;
    let deleted = cms
        .delete(&scope, "a", &DeleteOptions::default())
        .await
        .unwrap()
        .value;
    let Deleted::Pending { object, graceful } = deleted else {
        panic!("finalizers must hold the object");
    };
    assert!(!graceful);
    assert!(object.value()["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(object.value()["metadata"]["deletionGracePeriodSeconds"], 0);
    // Still there, still being deleted; a second delete changes nothing.
    let again = cms
        .delete(&scope, "a", &DeleteOptions::default())
        .await
        .unwrap()
        .value;
    assert!(matches!(again, Deleted::Pending { .. }));
    cms.patch(
        &scope,
        "a",
        PatchType::Merge,
        br#"{"metadata":{"finalizers":null}}"#,
        &PatchOptions::default(),
    )
    .await
    .unwrap();
    let err = cms
        .get(&scope, "a", &GetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), 404, "removing the last finalizer deletes");
}

#[tokio::test]
async fn delete_preconditions_policies_and_collections() {
    let registry = registry().await;
    let cms = rest(&registry, "", "configmaps");
    let scope = ns("default");
    let a = create(&cms, &scope, cm("a", json!({"app": "x"}))).await;
    let err = cms
        .delete(
            &scope,
            "a",
            &DeleteOptions {
                precondition_uid: Some("other".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    let uid = a.value()["metadata"]["uid"].as_str().unwrap();
    assert_eq!(err.code(), 409);
    assert_eq!(
        err.message(),
        format!(
            "Operation cannot be fulfilled on ConfigMap \"a\": the UID in the precondition (other) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
        )
    );
    let err = cms
        .delete(
            &scope,
            "a",
            &DeleteOptions {
                propagation_policy: Some("Sideways".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            422,
            r#"DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sideways": supported values: "Foreground", "Background", "Orphan""#
        )
    );
    let dry = cms
        .delete(
            &scope,
            "a",
            &DeleteOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .value;
    assert!(matches!(dry, Deleted::Gone(_)));
    cms.get(&scope, "a", &GetOptions::default()).await.unwrap();

    let orphaned = cms
        .delete(
            &scope,
            "a",
            &DeleteOptions {
                propagation_policy: Some("Orphan".into()),
                precondition_resource_version: Some(rv(&a)),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .value;
    let Deleted::Pending { object, .. } = orphaned else {
        panic!("the orphan finalizer holds the object");
    };
    assert_eq!(object.value()["metadata"]["finalizers"], json!(["orphan"]));

    create(&cms, &scope, cm("b", json!({"app": "x"}))).await;
    create(&cms, &scope, cm("c", json!({"app": "y"}))).await;
    let gone = cms
        .delete_collection(
            &scope,
            &DeleteOptions::default(),
            &ListOptions {
                label_selector: Some("app=x".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(gone.items.len(), 2, "a (still held) and b");
    cms.get(&scope, "c", &GetOptions::default()).await.unwrap();
    let err = cms
        .get(&scope, "b", &GetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), 404);
}

#[tokio::test]
async fn status_subresource_writes_only_status() {
    let registry = registry().await;
    let scope = ns("default");
    let deployments = rest(&registry, "apps", "deployments");
    let status = registry
        .rest(res("apps", "deployments"), Some("status"))
        .unwrap();
    let mut body = deployment("web");
    body["status"] = json!({"replicas": 7});
    let d = create(&deployments, &scope, body).await;
    assert!(
        d.value()["status"].get("replicas").is_none(),
        "create drops a client-set status"
    );

    let mut body = d.value().clone();
    body["status"] = json!({"replicas": 3});
    body["spec"]["replicas"] = json!(9);
    let s = status
        .update(&scope, "web", body, &UpdateOptions::default())
        .await
        .unwrap()
        .value
        .0;
    assert_eq!(s.value()["status"]["replicas"], 3);
    assert_eq!(s.value()["spec"]["replicas"], 2, "status writes keep spec");
    assert_eq!(s.value()["metadata"]["generation"], 1);

    let mut body = s.value().clone();
    body["status"] = json!({"replicas": 100});
    let main = deployments
        .update(&scope, "web", body, &UpdateOptions::default())
        .await
        .unwrap()
        .value
        .0;
    assert_eq!(
        main.value()["status"]["replicas"],
        3,
        "main writes keep status"
    );

    let patched = status
        .patch(
            &scope,
            "web",
            PatchType::Merge,
            br#"{"status":{"readyReplicas":1}}"#,
            &PatchOptions::default(),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(patched.0.value()["status"]["readyReplicas"], 1);
    assert!(
        registry
            .rest(res("", "configmaps"), Some("status"))
            .is_none()
    );
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() {
    let registry = registry().await;
    let scope = ns("default");
    let deployments = rest(&registry, "apps", "deployments");
    let scale = registry
        .rest(res("apps", "deployments"), Some("scale"))
        .unwrap();
    let d = create(&deployments, &scope, deployment("web")).await;
    let s = scale
        .get(&scope, "web", &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(s.value()["apiVersion"], "autoscaling/v1");
    assert_eq!(s.value()["kind"], "Scale");
    assert_eq!(s.value()["metadata"]["resourceVersion"], rv(&d).as_str());
    assert_eq!(s.value()["metadata"]["uid"], d.value()["metadata"]["uid"]);
    assert_eq!(s.value()["spec"]["replicas"], 2);
    assert_eq!(s.value()["status"]["selector"], "app=web");

    let mut body = s.value().clone();
    body["spec"]["replicas"] = json!(4);
    let s2 = scale
        .update(&scope, "web", body.clone(), &UpdateOptions::default())
        .await
        .unwrap()
        .value
        .0;
    assert_eq!(s2.value()["spec"]["replicas"], 4);
    let parent = deployments
        .get(&scope, "web", &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(parent.value()["spec"]["replicas"], 4);
    assert_eq!(parent.value()["metadata"]["generation"], 2);
    // `body` carries the old resourceVersion.
    let err = scale
        .update(&scope, "web", body, &UpdateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        r#"Operation cannot be fulfilled on deployments.apps "web": the object has been modified; please apply your changes to the latest version and try again"#
    );
    let patched = scale
        .patch(
            &scope,
            "web",
            PatchType::Merge,
            br#"{"spec":{"replicas":1}}"#,
            &PatchOptions::default(),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(patched.0.value()["spec"]["replicas"], 1);
    let err = scale
        .patch(
            &scope,
            "web",
            PatchType::Merge,
            br#"{"spec":{"replicas":-1}}"#,
            &PatchOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        r#"Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#
    );
}

#[tokio::test]
async fn bootstrap_is_idempotent() {
    let registry = registry().await;
    let config = BootstrapConfig::new("192.168.1.10".parse().unwrap(), 6443);
    ensure_defaults(&registry, &config).await.unwrap();
    let namespaces = rest(&registry, "", "namespaces");
    let svc = rest(&registry, "", "services")
        .get(&ns("default"), "kubernetes", &GetOptions::default())
        .await
        .unwrap();
    ensure_defaults(&registry, &config).await.unwrap();
    let cidr = rest(&registry, "networking.k8s.io", "servicecidrs")
        .get(&Scope::default(), "kubernetes", &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(cidr.value()["spec"]["cidrs"], json!(["10.43.0.0/16"]));
    let first = rest(&registry, "networking.k8s.io", "ipaddresses")
        .get(&Scope::default(), "10.43.0.1", &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(first.value()["spec"]["parentRef"]["name"], "kubernetes");
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        namespaces
            .get(&Scope::default(), name, &GetOptions::default())
            .await
            .unwrap();
    }
    let again = rest(&registry, "", "services")
        .get(&ns("default"), "kubernetes", &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(
        again.revision(),
        svc.revision(),
        "a second run writes nothing"
    );
    assert_eq!(again.value()["spec"]["clusterIP"], "10.43.0.1");
    assert_eq!(again.value()["spec"]["ports"][0]["targetPort"], 6443);
    assert_eq!(
        again.value()["metadata"]["labels"]["provider"],
        "kubernetes"
    );

    // A new advertise address moves the endpoints.
    let moved = BootstrapConfig::new("192.168.1.11".parse().unwrap(), 6443);
    ensure_defaults(&registry, &moved).await.unwrap();
    let ep = rest(&registry, "", "endpoints")
        .get(&ns("default"), "kubernetes", &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(
        ep.value()["subsets"][0]["addresses"][0]["ip"],
        "192.168.1.11"
    );
    let slice = rest(&registry, "discovery.k8s.io", "endpointslices")
        .get(&ns("default"), "kubernetes", &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(
        slice.value()["endpoints"][0]["addresses"][0],
        "192.168.1.11"
    );
    assert_eq!(slice.value()["addressType"], "IPv4");
}

fn pod(name: &str, node: Option<&str>) -> Value {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    if let Some(node) = node {
        pod["spec"]["nodeName"] = json!(node);
    }
    pod
}

/// A scheduled pod waits out its grace period (the node agent finishes the delete); a pod no
/// node ever ran goes at once, even when the client asks for a grace period, as upstream.
#[tokio::test]
async fn pods_are_deleted_gracefully_only_once_scheduled() {
    let registry = registry().await;
    let pods = rest(&registry, "", "pods");
    let scope = ns("default");
    create(&pods, &scope, pod("running", Some("node-1"))).await;
    create(&pods, &scope, pod("pending", None)).await;
    let asked = DeleteOptions {
        grace_period_seconds: Some(30),
        ..DeleteOptions::default()
    };
    let gone = pods.delete(&scope, "pending", &asked).await.unwrap().value;
    assert!(matches!(gone, Deleted::Gone(_)), "{gone:?}");
    let held = pods
        .delete(&scope, "running", &DeleteOptions::default())
        .await
        .unwrap()
        .value;
    match held {
        Deleted::Pending { object, graceful } => {
            assert!(graceful);
            let meta = &object.value()["metadata"];
            assert_eq!(meta["deletionGracePeriodSeconds"], json!(30));
            assert!(meta["deletionTimestamp"].is_string());
        }
        other => panic!("a scheduled pod waits for its grace period: {other:?}"),
    }
}

fn service(name: &str, cluster_ip: Option<&str>) -> Value {
    let mut svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"ports": [{"port": 80}]}});
    if let Some(ip) = cluster_ip {
        svc["spec"]["clusterIP"] = json!(ip);
    }
    svc
}

/// Services get a ClusterIP from 10.43.0.0/16, recorded as an IPAddress object naming them;
/// an address taken or outside the range is refused as upstream words it, and a deleted
/// Service gives its address back.
#[tokio::test]
async fn services_allocate_and_release_cluster_ips() {
    let registry = registry().await;
    let services = rest(&registry, "", "services");
    let addresses = rest(&registry, "networking.k8s.io", "ipaddresses");
    let scope = ns("default");
    let web = create(&services, &scope, service("web", None)).await;
    let ip = web.value()["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.starts_with("10.43.") && ip != "10.43.0.1", "{ip}");
    assert_eq!(web.value()["spec"]["clusterIPs"], json!([ip]));
    let record = addresses
        .get(&Scope::default(), &ip, &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(
        record.value()["spec"]["parentRef"],
        json!({"group": "", "resource": "services", "namespace": "default", "name": "web"})
    );

    let taken = services
        .create(
            &scope,
            service("copy", Some(&ip)),
            &CreateOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(taken.code(), 422);
    assert!(
        taken.message().contains(&format!(
            "failed to allocate IP {ip}: provided IP is already allocated"
        )),
        "{}",
        taken.message()
    );
    let outside = services
        .create(
            &scope,
            service("far", Some("192.168.1.1")),
            &CreateOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        outside
            .message()
            .contains("is not in the valid range. The range of valid IPs is 10.43.0.0/16"),
        "{}",
        outside.message()
    );
    let headless = create(&services, &scope, service("headless", Some("None"))).await;
    assert_eq!(headless.value()["spec"]["clusterIP"], "None");

    services
        .delete(&scope, "web", &DeleteOptions::default())
        .await
        .unwrap();
    let released = addresses
        .get(&Scope::default(), &ip, &GetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(released.code(), 404);
    let reused = create(&services, &scope, service("again", Some(&ip))).await;
    assert_eq!(reused.value()["spec"]["clusterIP"], json!(ip));

    // A Service whose deletion waits for a finalizer keeps its address until the patch that
    // removes the finalizer deletes it.
    let mut held = service("held", None);
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let held = create(&services, &scope, held).await;
    let held_ip = held.value()["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .to_string();
    services
        .delete(&scope, "held", &DeleteOptions::default())
        .await
        .unwrap();
    let still = addresses
        .get(&Scope::default(), &held_ip, &GetOptions::default())
        .await;
    assert!(
        still.is_ok(),
        "released while a finalizer holds the Service"
    );
    services
        .patch(
            &scope,
            "held",
            PatchType::Merge,
            br#"{"metadata":{"finalizers":null}}"#,
            &PatchOptions::default(),
        )
        .await
        .unwrap();
    let released = addresses
        .get(&Scope::default(), &held_ip, &GetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(released.code(), 404);
}

/// Deleting a namespace starts its termination (upstream's namespace storage): it turns
/// Terminating and stays while `spec.finalizers` holds it, a second delete is refused with
/// upstream's words, and releasing the hold through `finalize` removes it.
#[tokio::test]
async fn namespaces_terminate_until_finalized() {
    let registry = registry().await;
    let namespaces = rest(&registry, "", "namespaces");
    let finalize = registry
        .rest(res("", "namespaces"), Some("finalize"))
        .expect("namespaces/finalize is served");
    let all = Scope::default();
    let created = create(
        &namespaces,
        &all,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}),
    )
    .await;
    assert_eq!(created.value()["spec"]["finalizers"], json!(["kubernetes"]));

    let first = namespaces
        .delete(&all, "doomed", &DeleteOptions::default())
        .await
        .unwrap()
        .value;
    let Deleted::Pending { object, .. } = first else {
        panic!("a namespace with spec.finalizers is not deleted at once: {first:?}");
    };
    assert_eq!(object.value()["status"]["phase"], "Terminating");
    assert!(object.value()["metadata"]["deletionTimestamp"].is_string());

    let again = namespaces
        .delete(&all, "doomed", &DeleteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(again.code(), 409);
    assert_eq!(
        again.message(),
        "Operation cannot be fulfilled on namespaces \"doomed\": The system is ensuring all \
         content is removed from this namespace.  Upon completion, this namespace will \
         automatically be purged by the system."
    );

    let mut released = namespaces
        .get(&all, "doomed", &GetOptions::default())
        .await
        .unwrap()
        .value()
        .clone();
    released["spec"]["finalizers"] = json!([]);
    // finalize writes only spec.finalizers: a label sent along is ignored.
    released["metadata"]["labels"]["sneaky"] = json!("yes");
    finalize
        .update(&all, "doomed", released, &UpdateOptions::default())
        .await
        .unwrap();
    let gone = namespaces
        .get(&all, "doomed", &GetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(gone.code(), 404, "released namespaces are removed");
}
