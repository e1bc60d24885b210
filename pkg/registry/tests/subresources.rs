//! Pods' and service accounts' subresources through [`Registry`] over in-memory SQLite, as the
//! API server calls them: binding, eviction, ephemeral containers, resize, token and the
//! checks of the connect subresources.

// Test code: a failed expectation panics.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use rkube_api::resources::{self, Resource};
use rkube_api::status::ApiError;
use rkube_registry::rest::{
    ConnectOptions, Connected, CreateOptions, GetOptions, PatchOptions, PatchType, Scope,
    UpdateOptions,
};
use rkube_registry::subresources::token::SignError;
use rkube_registry::{Registry, Rest, TokenSigner};
use rkube_storage::KvStore;
use rkube_storage_sqlite::SqliteBackend;
use serde_json::{Value, json};

/// Records what it signs; the "token" is the claims' JSON.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Value>>);

impl TokenSigner for Recorder {
    fn sign(&self, claims: &Value) -> Result<String, SignError> {
        self.0.lock().unwrap().push(claims.clone());
        Ok(claims.to_string())
    }
}

async fn registry() -> Registry {
    let backend = SqliteBackend::open_in_memory().unwrap();
    let registry = Registry::with_token_signer(
        Arc::new(KvStore::new(Arc::new(backend))),
        Arc::new(Recorder::default()),
    );
    registry.ready().await;
    registry
}

fn res(group: &str, version: &str, plural: &str) -> &'static Resource {
    resources::lookup(group, version, plural).unwrap()
}

fn rest(registry: &Registry, plural: &str, sub: Option<&str>) -> Arc<dyn Rest> {
    let (group, version) = if plural == "poddisruptionbudgets" {
        ("policy", "v1")
    } else {
        ("", "v1")
    };
    registry.rest(res(group, version, plural), sub).unwrap()
}

fn ns() -> Scope {
    Scope {
        namespace: Some("default".into()),
    }
}

async fn create(registry: &Registry, plural: &str, object: Value) -> Value {
    rest(registry, plural, None)
        .create(&ns(), object, &CreateOptions::default())
        .await
        .unwrap()
        .value
        .into_value()
}

async fn get(registry: &Registry, plural: &str, name: &str) -> Result<Value, ApiError> {
    rest(registry, plural, None)
        .get(&ns(), name, &GetOptions::default())
        .await
        .map(|o| o.into_value())
}

fn pod(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "nginx",
            "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}}}]},
    })
}

fn binding(pod: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
           "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
}

async fn bind(registry: &Registry, body: Value) -> Result<Value, ApiError> {
    rest(registry, "pods", Some("binding"))
        .create(&ns(), body, &CreateOptions::default())
        .await
        .map(|a| a.value.into_value())
}

async fn set_status(registry: &Registry, plural: &str, name: &str, status: Value) {
    let mut object = get(registry, plural, name).await.unwrap();
    object["status"] = status;
    rest(registry, plural, Some("status"))
        .update(&ns(), name, object, &UpdateOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn binding_assigns_a_node_once() {
    let registry = registry().await;
    create(&registry, "pods", pod("web", json!({}))).await;
    let mut body = binding("web", "n1");
    body["metadata"]["annotations"] = json!({"scheduled-by": "test"});
    let status = bind(&registry, body).await.unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["status"], "Success");
    assert_eq!(status["code"], 201);

    let bound = get(&registry, "pods", "web").await.unwrap();
    assert_eq!(bound["spec"]["nodeName"], "n1");
    assert_eq!(bound["metadata"]["annotations"]["scheduled-by"], "test");
    let conditions = bound["status"]["conditions"].as_array().unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "PodScheduled" && c["status"] == "True")
    );

    let err = bind(&registry, binding("web", "n2")).await.unwrap_err();
    assert_eq!(err.code(), 409);
    assert_eq!(
        err.message(),
        r#"Operation cannot be fulfilled on pods/binding "web": pod web is already assigned to node "n1""#
    );

    // The legacy `bindings` collection does the same.
    create(&registry, "pods", pod("api", json!({}))).await;
    registry
        .rest(res("", "v1", "bindings"), None)
        .unwrap()
        .create(&ns(), binding("api", "n1"), &CreateOptions::default())
        .await
        .unwrap();
    assert_eq!(
        get(&registry, "pods", "api").await.unwrap()["spec"]["nodeName"],
        "n1"
    );

    // Preconditions and the target are checked.
    create(&registry, "pods", pod("db", json!({}))).await;
    let mut stale = binding("db", "n1");
    stale["metadata"]["uid"] = json!("not-the-uid");
    assert_eq!(bind(&registry, stale).await.unwrap_err().code(), 409);
    let err = bind(&registry, binding("missing", "n1")).await.unwrap_err();
    assert_eq!(err.message(), r#"pods "missing" not found"#);
    let mut no_target = binding("db", "");
    no_target["target"]["kind"] = json!("Pod");
    let err = bind(&registry, no_target).await.unwrap_err();
    assert_eq!(err.code(), 500);
    assert!(
        err.message().contains("target.name: Required value"),
        "{}",
        err.message()
    );
    assert!(
        get(&registry, "pods", "db").await.unwrap()["spec"]
            .get("nodeName")
            .is_none()
    );
}

async fn evict(registry: &Registry, name: &str) -> Result<Value, ApiError> {
    let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction",
                          "metadata": {"name": name}});
    rest(registry, "pods", Some("eviction"))
        .create(&ns(), eviction, &CreateOptions::default())
        .await
        .map(|a| a.value.into_value())
}

fn running_ready() -> Value {
    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})
}

#[tokio::test]
async fn eviction_honours_the_disruption_budget() {
    let registry = registry().await;
    for name in ["web-1", "web-2"] {
        create(&registry, "pods", pod(name, json!({"app": "web"}))).await;
        set_status(&registry, "pods", name, running_ready()).await;
    }
    let budget = create(
        &registry,
        "poddisruptionbudgets",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
               "metadata": {"name": "web"},
               "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
    )
    .await;
    let generation = budget["metadata"]["generation"].clone();
    set_status(
        &registry,
        "poddisruptionbudgets",
        "web",
        json!({"observedGeneration": generation, "disruptionsAllowed": 1,
               "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2}),
    )
    .await;

    let status = evict(&registry, "web-1").await.unwrap();
    assert_eq!(status["status"], "Success");
    assert_eq!(
        get(&registry, "pods", "web-1").await.unwrap_err().code(),
        404
    );
    let budget = get(&registry, "poddisruptionbudgets", "web").await.unwrap();
    assert_eq!(budget["status"]["disruptionsAllowed"], 0);
    assert!(budget["status"]["disruptedPods"]["web-1"].is_string());

    let err = evict(&registry, "web-2").await.unwrap_err();
    assert_eq!(err.code(), 429);
    assert_eq!(
        err.message(),
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    let cause = &err.details().unwrap().causes[0];
    assert_eq!(cause.cause_type, "DisruptionBudget");
    assert_eq!(
        cause.message,
        "The disruption budget web needs 1 healthy pods and has 2 currently"
    );
    assert!(get(&registry, "pods", "web-2").await.is_ok());

    // A second matching budget: upstream's 500 Status, answered as the result.
    create(
        &registry,
        "poddisruptionbudgets",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
               "metadata": {"name": "all"}, "spec": {"maxUnavailable": 1, "selector": {}}}),
    )
    .await;
    let status = evict(&registry, "web-2").await.unwrap();
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["code"], 500);
    assert_eq!(
        status["message"],
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );

    // Pending pods skip the budgets.
    create(&registry, "pods", pod("pending", json!({"app": "web"}))).await;
    evict(&registry, "pending").await.unwrap();
    assert_eq!(
        get(&registry, "pods", "pending").await.unwrap_err().code(),
        404
    );
}

#[tokio::test]
async fn eviction_of_a_scheduled_pod_marks_it_and_starts_its_graceful_deletion() {
    let registry = registry().await;
    create(&registry, "pods", pod("web", json!({}))).await;
    bind(&registry, binding("web", "n1")).await.unwrap();
    set_status(&registry, "pods", "web", running_ready()).await;
    evict(&registry, "web").await.unwrap();
    let deleting = get(&registry, "pods", "web").await.unwrap();
    assert!(deleting["metadata"]["deletionTimestamp"].is_string());
    let conditions = deleting["status"]["conditions"].as_array().unwrap();
    assert!(conditions.iter().any(|c| c["type"] == "DisruptionTarget"
        && c["reason"] == "EvictionByEvictionAPI"
        && c["message"] == "Eviction API: evicting"));
}

async fn patch_part(registry: &Registry, sub: &str, patch: Value) -> Result<Value, ApiError> {
    rest(registry, "pods", Some(sub))
        .patch(
            &ns(),
            "web",
            PatchType::Merge,
            patch.to_string().as_bytes(),
            &PatchOptions::default(),
        )
        .await
        .map(|a| a.value.0.into_value())
}

#[tokio::test]
async fn ephemeral_containers_and_resize_write_only_their_part() {
    let registry = registry().await;
    create(&registry, "pods", pod("web", json!({}))).await;
    let patched = patch_part(
        &registry,
        "ephemeralcontainers",
        json!({"metadata": {"labels": {"ignored": "yes"}},
               "spec": {"ephemeralContainers": [{"name": "debugger", "image": "busybox",
                         "targetContainerName": "app", "stdin": true, "tty": true}]}}),
    )
    .await
    .unwrap();
    assert_eq!(
        patched["spec"]["ephemeralContainers"][0]["name"],
        "debugger"
    );
    assert!(patched["metadata"]["labels"].get("ignored").is_none());
    assert_eq!(patched["metadata"]["generation"], 2);

    let err = patch_part(
        &registry,
        "ephemeralcontainers",
        json!({"spec": {"ephemeralContainers": [{"name": "debugger", "image": "alpine"}]}}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), 422);
    assert!(
        err.message().contains(
            "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be changed"
        ),
        "{}",
        err.message()
    );

    let resized = patch_part(
        &registry,
        "resize",
        json!({"spec": {"containers": [{"name": "app", "image": "ignored",
            "resources": {"requests": {"cpu": "150m"}, "limits": {"cpu": "300m"}}}]}}),
    )
    .await
    .unwrap();
    let app = &resized["spec"]["containers"][0];
    assert_eq!(app["resources"]["limits"]["cpu"], "300m");
    assert_eq!(app["image"], "nginx");
    let err = patch_part(
        &registry,
        "resize",
        json!({"spec": {"containers": [{"name": "app",
            "resources": {"requests": {"cpu": "150m", "ephemeral-storage": "1Gi"},
                          "limits": {"cpu": "300m"}}}]}}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.message(),
        r#"Pod "web" is invalid: spec: Forbidden: only cpu and memory resources are mutable"#
    );
}

#[tokio::test]
async fn token_requests_are_signed_for_the_account_and_bound_object() {
    let registry = registry().await;
    let account = create(
        &registry,
        "serviceaccounts",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}),
    )
    .await;
    let token = rest(&registry, "serviceaccounts", Some("token"));
    let request = |spec: Value| {
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "metadata": {"name": "robot"}, "spec": spec})
    };
    let answer = token
        .create(&ns(), request(json!({})), &CreateOptions::default())
        .await
        .unwrap()
        .value
        .into_value();
    assert_eq!(answer["spec"]["expirationSeconds"], 3600);
    assert_eq!(
        answer["spec"]["audiences"],
        json!(["https://kubernetes.default.svc.cluster.local", "k3s"])
    );
    let claims: Value = serde_json::from_str(answer["status"]["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["sub"], "system:serviceaccount:default:robot");
    assert_eq!(
        claims["kubernetes.io"]["serviceaccount"]["uid"],
        account["metadata"]["uid"]
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    let expires: jiff::Timestamp = answer["status"]["expirationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expires.as_second() <= claims["exp"].as_i64().unwrap());

    let err = token
        .create(
            &ns(),
            request(json!({"expirationSeconds": 300})),
            &CreateOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), 422);

    // Bound to a pod that runs as the account, with the pod's node.
    let mut web = pod("web", json!({}));
    web["spec"]["serviceAccountName"] = json!("robot");
    let web = create(&registry, "pods", web).await;
    bind(&registry, binding("web", "n1")).await.unwrap();
    let bound = |uid: &Value| {
        request(
            json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": uid},
                       "audiences": ["vault"]}),
        )
    };
    let answer = token
        .create(
            &ns(),
            bound(&web["metadata"]["uid"]),
            &CreateOptions::default(),
        )
        .await
        .unwrap()
        .value
        .into_value();
    let claims: Value = serde_json::from_str(answer["status"]["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["aud"], json!(["vault"]));
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "web");
    assert_eq!(claims["kubernetes.io"]["node"], json!({"name": "n1"}));

    let err = token
        .create(&ns(), bound(&json!("other-uid")), &CreateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), 409);
    assert_eq!(
        err.message(),
        r#"Operation cannot be fulfilled on Pod "web": the UID in the bound object reference (other-uid) does not match the UID in record. The object might have been deleted and then recreated"#
    );
    let err = token
        .create(
            &ns(),
            request(
                json!({"boundObjectRef": {"apiVersion": "v1", "kind": "ConfigMap", "name": "x"}}),
            ),
            &CreateOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "cannot bind token to object of type /v1, Kind=ConfigMap"
    );
    let mut missing = request(json!({}));
    missing["metadata"]["name"] = json!("nobody");
    let err = token
        .create(&ns(), missing, &CreateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.message(), r#"serviceaccounts "nobody" not found"#);
}

#[tokio::test]
async fn connect_subresources_check_before_forwarding() {
    let registry = registry().await;
    let connect = |sub: &'static str, name: &'static str, query: &[(&str, &str)]| {
        let rest = rest(&registry, "pods", Some(sub));
        let options = ConnectOptions {
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            path: String::new(),
        };
        async move { rest.connect(&ns(), name, &options).await }
    };
    let err = connect("log", "web", &[]).await.unwrap_err();
    assert_eq!(err.message(), r#"pods "web" not found"#);
    let mut two = pod("web", json!({}));
    two["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "busybox"}));
    create(&registry, "pods", two).await;
    assert_eq!(
        connect("log", "web", &[]).await.unwrap_err().message(),
        "a container name must be specified for pod web, choose one of: [app sidecar]"
    );
    // Not on a node yet: nothing to stream.
    assert_eq!(
        connect("log", "web", &[("container", "app")])
            .await
            .unwrap(),
        Connected::NoContent
    );
    assert_eq!(
        connect("log", "web", &[("container", "app"), ("tailLines", "-2")])
            .await
            .unwrap_err()
            .code(),
        422
    );
    assert_eq!(
        connect("exec", "web", &[("container", "app")])
            .await
            .unwrap_err()
            .message(),
        "pod web does not have a host assigned"
    );

    bind(&registry, binding("web", "n1")).await.unwrap();
    assert_eq!(
        connect("log", "web", &[("container", "app")])
            .await
            .unwrap_err()
            .message(),
        r#"nodes "n1" not found"#
    );
    create(
        &registry,
        "nodes",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
    )
    .await;
    let mut node = get(&registry, "nodes", "n1").await.unwrap();
    node["status"] = json!({"addresses": [{"type": "InternalIP", "address": "10.0.0.7"}],
                            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10251}}});
    rest(&registry, "nodes", Some("status"))
        .update(&ns(), "n1", node, &UpdateOptions::default())
        .await
        .unwrap();
    assert_eq!(
        connect(
            "log",
            "web",
            &[("container", "sidecar"), ("follow", "true")]
        )
        .await
        .unwrap(),
        Connected::Node {
            node: "n1".into(),
            url: "https://10.0.0.7:10251/containerLogs/default/web/sidecar?follow=true".into(),
        }
    );
}
