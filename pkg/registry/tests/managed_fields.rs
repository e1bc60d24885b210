//! managedFields on every registry write, and server-side apply through the registry.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use rkube_api::resources;
use rkube_registry::rest::{CreateOptions, PatchOptions, PatchType, Scope, UpdateOptions};
use rkube_registry::{Registry, Rest};
use rkube_storage::KvStore;
use rkube_storage_sqlite::SqliteBackend;
use serde_json::{Value, json};

/// The deployments resource and its status subresource.
async fn deployments() -> (Arc<dyn Rest>, Arc<dyn Rest>) {
    let backend = SqliteBackend::open_in_memory().unwrap();
    let registry = Registry::new(Arc::new(KvStore::new(Arc::new(backend))));
    registry.ready().await;
    let resource = resources::lookup("apps", "v1", "deployments").unwrap();
    (
        registry.rest(resource, None).unwrap(),
        registry.rest(resource, Some("status")).unwrap(),
    )
}

fn scope() -> Scope {
    Scope {
        namespace: Some("default".into()),
    }
}

fn deployment(replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

/// (manager, operation, subresource) of each entry.
fn entries(object: &Value) -> Vec<(String, String, String)> {
    object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |f: &str| e[f].as_str().unwrap_or("").to_string();
            (s("manager"), s("operation"), s("subresource"))
        })
        .collect()
}

fn entry(m: &str, op: &str, sub: &str) -> (String, String, String) {
    (m.into(), op.into(), sub.into())
}

#[tokio::test]
async fn every_write_records_its_manager() {
    let (rest, status) = deployments().await;
    let created = rest
        .create(
            &scope(),
            deployment(1),
            &CreateOptions {
                user_agent: Some("kubectl-create/v1.33.0 (linux/amd64)".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(
        entries(created.value()),
        [entry("kubectl-create", "Update", "")]
    );
    let fields = &created.value()["metadata"]["managedFields"][0]["fieldsV1"];
    assert!(fields["f:spec"]["f:replicas"].is_object());
    assert!(
        fields.get("f:status").is_none(),
        "status belongs to the status subresource"
    );

    let mut body = created.value().clone();
    body["spec"]["replicas"] = json!(3);
    let (updated, _) = rest
        .update(
            &scope(),
            "web",
            body,
            &UpdateOptions {
                field_manager: Some("scaler".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .value;
    let fields = |o: &Value, i: usize| o["metadata"]["managedFields"][i]["fieldsV1"].clone();
    assert_eq!(
        entries(updated.value()),
        [
            entry("kubectl-create", "Update", ""),
            entry("scaler", "Update", "")
        ]
    );
    assert_eq!(
        fields(updated.value(), 1),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        fields(updated.value(), 0)["f:spec"]
            .get("f:replicas")
            .is_none()
    );

    let patched = status
        .patch(
            &scope(),
            "web",
            PatchType::Merge,
            br#"{"status":{"replicas":3}}"#,
            &PatchOptions {
                field_manager: Some("controller".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .value;
    assert!(entries(patched.0.value()).contains(&entry("controller", "Update", "status")));

    // Apply conflicts with the update that owns replicas, then forces.
    let apply = |force: bool| PatchOptions {
        field_manager: Some("applier".into()),
        force,
        ..Default::default()
    };
    let body = serde_json::to_vec(&deployment(5)).unwrap();
    let err = rest
        .patch(&scope(), "web", PatchType::Apply, &body, &apply(false))
        .await
        .unwrap_err();
    assert_eq!(err.code(), 409);
    assert_eq!(
        err.message(),
        r#"Apply failed with 1 conflict: conflict with "scaler" using apps/v1: .spec.replicas"#
    );
    let applied = rest
        .patch(&scope(), "web", PatchType::Apply, &body, &apply(true))
        .await
        .unwrap()
        .value;
    assert_eq!(applied.0.value()["spec"]["replicas"], 5);
    assert!(entries(applied.0.value()).contains(&entry("applier", "Apply", "")));
    assert!(!entries(applied.0.value()).iter().any(|e| e.0 == "scaler"));

    // The body's kind must be the URL's.
    let wrong = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "web"}}))
    .unwrap();
    let err = rest
        .patch(&scope(), "web", PatchType::Apply, &wrong, &apply(false))
        .await
        .unwrap_err();
    assert_eq!(err.code(), 400);
    assert_eq!(err.message(), "invalid object type: /v1, Kind=ConfigMap");
}
