//! Versions that share one storage prefix, through [`Registry`] over `KvStore` on in-memory
//! SQLite: HorizontalPodAutoscalers in autoscaling/v1 and v2, Events in core v1 and
//! events.k8s.io/v1. Each version sees its own shape of every object, whichever version wrote
//! it.

// Test code: a failed expectation panics.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use futures::StreamExt;
use rkube_api::resources;
use rkube_registry::conversion::hpa::METRICS_ANNOTATION;
use rkube_registry::rest::{
    CreateOptions, GetOptions, ListOptions, PatchOptions, PatchType, Scope, UpdateOptions,
};
use rkube_registry::{Registry, Rest};
use rkube_storage::{GetOptions as StoreGet, KvStore, Store, WatchEvent};
use rkube_storage_sqlite::SqliteBackend;
use serde_json::{Value, json};

struct Fixture {
    registry: Registry,
    store: Arc<dyn Store>,
}

async fn fixture() -> Fixture {
    let backend = SqliteBackend::open_in_memory().unwrap();
    let store: Arc<dyn Store> = Arc::new(KvStore::new(Arc::new(backend)));
    let registry = Registry::new(store.clone());
    registry.ready().await;
    Fixture { registry, store }
}

impl Fixture {
    fn rest(&self, group: &str, version: &str, plural: &str) -> Arc<dyn Rest> {
        let resource = resources::lookup(group, version, plural).unwrap();
        self.registry.rest(resource, None).unwrap()
    }

    fn hpa(&self, version: &str) -> Arc<dyn Rest> {
        self.rest("autoscaling", version, "horizontalpodautoscalers")
    }

    /// The object as stored, bypassing the registry.
    async fn stored(&self, key: &str) -> Value {
        self.store
            .get(key, &StoreGet::default())
            .await
            .unwrap()
            .into_value()
    }
}

fn default_ns() -> Scope {
    Scope {
        namespace: Some("default".into()),
    }
}

fn names(list: &rkube_storage::ObjectList) -> Vec<String> {
    list.items
        .iter()
        .map(|o| o.value()["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn v1_hpa(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": labels},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}})
}

fn v2_hpa(name: &str) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1, "maxReplicas": 5,
            "metrics": [
                {"type": "Pods", "pods": {"metric": {"name": "rps"},
                    "target": {"type": "AverageValue", "averageValue": "10"}}},
                {"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 120}}}})
}

#[tokio::test]
async fn an_hpa_created_as_v1_is_stored_and_read_as_v2() {
    let f = fixture().await;
    let created = f
        .hpa("v1")
        .create(
            &default_ns(),
            v1_hpa("web", json!({"tier": "front"})),
            &CreateOptions::default(),
        )
        .await
        .unwrap()
        .value;
    // The creator gets its own version back.
    assert_eq!(created.value()["apiVersion"], "autoscaling/v1");
    assert_eq!(
        created.value()["spec"]["targetCPUUtilizationPercentage"],
        60
    );

    let stored = f
        .stored("/registry/horizontalpodautoscalers/default/web")
        .await;
    assert_eq!(stored["apiVersion"], "autoscaling/v2");
    assert_eq!(
        stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );
    assert!(
        stored["spec"]
            .get("targetCPUUtilizationPercentage")
            .is_none()
    );

    let got = f
        .hpa("v2")
        .get(&default_ns(), "web", &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(got.value()["apiVersion"], "autoscaling/v2");
    assert_eq!(got.value()["spec"]["metrics"], stored["spec"]["metrics"]);
    assert_eq!(got.revision(), created.revision());

    let list = f
        .hpa("v2")
        .list(&default_ns(), &ListOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&list), ["web"]);
    assert_eq!(list.items[0].value()["apiVersion"], "autoscaling/v2");
}

#[tokio::test]
async fn an_hpa_created_as_v2_reads_as_v1_and_keeps_its_metrics_through_v1_writes() {
    let f = fixture().await;
    f.hpa("v2")
        .create(&default_ns(), v2_hpa("api"), &CreateOptions::default())
        .await
        .unwrap();
    let v1 = f
        .hpa("v1")
        .get(&default_ns(), "api", &GetOptions::default())
        .await
        .unwrap();
    let v1 = v1.value();
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
    assert!(
        v1["metadata"]["annotations"][METRICS_ANNOTATION]
            .as_str()
            .unwrap()
            .contains("rps")
    );

    // A v1 client edits what it knows and sends the rest back as it read it.
    let mut body = v1.clone();
    body["spec"]["maxReplicas"] = json!(8);
    body["spec"]["targetCPUUtilizationPercentage"] = json!(50);
    let (updated, _) = f
        .hpa("v1")
        .update(&default_ns(), "api", body, &UpdateOptions::default())
        .await
        .unwrap()
        .value;
    assert_eq!(updated.value()["spec"]["maxReplicas"], 8);

    let v2 = f
        .hpa("v2")
        .get(&default_ns(), "api", &GetOptions::default())
        .await
        .unwrap();
    let spec = &v2.value()["spec"];
    assert_eq!(spec["maxReplicas"], 8);
    assert_eq!(spec["metrics"][0]["pods"]["metric"]["name"], "rps");
    assert_eq!(
        spec["metrics"][1]["resource"]["target"]["averageUtilization"],
        50
    );
    assert_eq!(
        spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        120
    );
    assert!(v2.value()["metadata"].get("annotations").is_none());

    // A merge patch through v1 keeps them too.
    let patched = f
        .hpa("v1")
        .patch(
            &default_ns(),
            "api",
            PatchType::Merge,
            br#"{"spec":{"minReplicas":2}}"#,
            &PatchOptions::default(),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(patched.0.value()["spec"]["minReplicas"], 2);
    let stored = f
        .stored("/registry/horizontalpodautoscalers/default/api")
        .await;
    assert_eq!(stored["spec"]["minReplicas"], 2);
    assert_eq!(stored["spec"]["metrics"].as_array().unwrap().len(), 2);
    assert!(stored["spec"]["behavior"].is_object());
}

#[tokio::test]
async fn selectors_and_watches_see_the_served_version() {
    let f = fixture().await;
    let v1 = f.hpa("v1");
    let v2 = f.hpa("v2");
    let mut watch = v1
        .watch(&default_ns(), &ListOptions::default())
        .await
        .unwrap();
    v2.create(&default_ns(), v2_hpa("a"), &CreateOptions::default())
        .await
        .unwrap();
    match watch.next().await.unwrap() {
        WatchEvent::Added(o) => {
            assert_eq!(o.value()["apiVersion"], "autoscaling/v1");
            assert_eq!(o.value()["spec"]["targetCPUUtilizationPercentage"], 70);
        }
        other => panic!("expected ADDED, got {other:?}"),
    }

    v1.create(
        &default_ns(),
        v1_hpa("b", json!({"tier": "back"})),
        &CreateOptions::default(),
    )
    .await
    .unwrap();
    let by_label = v2
        .list(
            &default_ns(),
            &ListOptions {
                label_selector: Some("tier=back".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(names(&by_label), ["b"]);
    let by_name = v1
        .list(
            &default_ns(),
            &ListOptions {
                field_selector: Some("metadata.name=a".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(names(&by_name), ["a"]);
    assert_eq!(by_name.items[0].value()["apiVersion"], "autoscaling/v1");

    // A watch with a label selector on the other version: only b, converted.
    let mut labelled = v2
        .watch(
            &default_ns(),
            &ListOptions {
                label_selector: Some("tier".into()),
                send_initial_events: None,
                resource_version: "0".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    match labelled.next().await.unwrap() {
        WatchEvent::Added(o) => {
            assert_eq!(o.value()["metadata"]["name"], "b");
            assert_eq!(o.value()["apiVersion"], "autoscaling/v2");
        }
        other => panic!("expected ADDED b, got {other:?}"),
    }
}

#[tokio::test]
async fn events_written_in_either_version_read_in_both() {
    let f = fixture().await;
    let core = f.rest("", "v1", "events");
    let new = f.rest("events.k8s.io", "v1", "events");
    new.create(
        &default_ns(),
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "scaled"},
            "eventTime": "2025-01-01T00:00:00.000000Z", "reportingController": "ctl",
            "reportingInstance": "ctl-1", "action": "Scale", "reason": "Scaled",
            "type": "Normal", "regarding": {"kind": "Deployment", "name": "web",
                "namespace": "default"},
            "note": "scaled web to 3"}),
        &CreateOptions::default(),
    )
    .await
    .unwrap();
    let stored = f.stored("/registry/events/default/scaled").await;
    assert_eq!(stored["apiVersion"], "v1");
    assert_eq!(stored["message"], "scaled web to 3");
    assert_eq!(stored["involvedObject"]["name"], "web");
    assert_eq!(stored["reportingComponent"], "ctl");

    core.create(
        &default_ns(),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "pulled"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Pulled", "message": "pulled", "type": "Warning",
            "source": {"component": "kubelet"}, "count": 2}),
        &CreateOptions::default(),
    )
    .await
    .unwrap();

    let list = core
        .list(&default_ns(), &ListOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&list), ["pulled", "scaled"]);
    assert_eq!(list.items[1].value()["message"], "scaled web to 3");

    let got = new
        .get(&default_ns(), "pulled", &GetOptions::default())
        .await
        .unwrap();
    let got = got.value();
    assert_eq!(got["apiVersion"], "events.k8s.io/v1");
    assert_eq!(got["note"], "pulled");
    assert_eq!(got["regarding"]["kind"], "Pod");
    assert_eq!(got["deprecatedSource"]["component"], "kubelet");
    assert_eq!(got["deprecatedCount"], 2);
    assert!(got.get("message").is_none());

    // Field selectors through events.k8s.io evaluate on its own shape.
    let warnings = new
        .list(
            &default_ns(),
            &ListOptions {
                field_selector: Some("type=Warning".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(names(&warnings), ["pulled"]);
    let about_web = new
        .list(
            &default_ns(),
            &ListOptions {
                field_selector: Some("regarding.name=web".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(names(&about_web), ["scaled"]);
    assert_eq!(about_web.items[0].value()["note"], "scaled web to 3");
    // The core spelling is not a field label of events.k8s.io/v1 (400, as upstream).
    let core_label = new
        .list(
            &default_ns(),
            &ListOptions {
                field_selector: Some("involvedObject.name=web".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(core_label.code(), 400);
}

#[tokio::test]
async fn objects_stored_in_the_other_version_convert_on_read() {
    // An older rkube stored HPAs as they were sent; a v1 one reads as v2 and back.
    let f = fixture().await;
    let old = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "old", "namespace": "default", "uid": "u1",
            "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "old"}, "maxReplicas": 4,
            "targetCPUUtilizationPercentage": 40},
        "status": {"currentReplicas": 1, "desiredReplicas": 1}});
    f.store
        .create("/registry/horizontalpodautoscalers/default/old", old, None)
        .await
        .unwrap();
    let v2 = f
        .hpa("v2")
        .get(&default_ns(), "old", &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(v2.value()["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2.value()["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        40
    );
    let v1 = f
        .hpa("v1")
        .get(&default_ns(), "old", &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(v1.value()["spec"]["targetCPUUtilizationPercentage"], 40);

    // Writing it through v2 stores the storage version.
    let mut body = v2.value().clone();
    body["spec"]["maxReplicas"] = json!(6);
    f.hpa("v2")
        .update(&default_ns(), "old", body, &UpdateOptions::default())
        .await
        .unwrap();
    let stored = f
        .stored("/registry/horizontalpodautoscalers/default/old")
        .await;
    assert_eq!(stored["apiVersion"], "autoscaling/v2");
    assert_eq!(stored["spec"]["maxReplicas"], 6);
}
