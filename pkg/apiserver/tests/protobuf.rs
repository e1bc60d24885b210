//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`, what kubectl's typed
//! `create` commands send) through the router: decoded to JSON, stored, read back (as protobuf
//! when the client prefers it, as client-go's protobuf clients do).

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use rkube_apiserver::{Resolver, router};
use rkube_registry::Registry;
use rkube_storage::KvStore;
use rkube_storage_sqlite::SqliteBackend;
use serde_json::Value;
use tower::ServiceExt;

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

async fn app() -> axum::Router {
    let backend = Arc::new(SqliteBackend::open_in_memory().expect("sqlite"));
    let registry = Arc::new(Registry::new(Arc::new(KvStore::new(backend))));
    registry.ready().await;
    let resolver: Resolver = Arc::new(move |r, sub| registry.rest(r, sub));
    router(resolver)
}

async fn call(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let protobuf = response.headers().get(header::CONTENT_TYPE)
        == Some(&http::HeaderValue::from_static(PROTOBUF));
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = if protobuf {
        rkube_api::protobuf::decode(&body).expect("a protobuf answer")
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)))
    };
    (status, json)
}

async fn post(
    app: &axum::Router,
    uri: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        // What client-go's protobuf clients ask for: protobuf, JSON as the fallback.
        .header(
            header::ACCEPT,
            "application/vnd.kubernetes.protobuf, application/json",
        )
        .body(Body::from(body))
        .expect("request");
    call(app, request).await
}

/// A length-delimited protobuf field.
fn field(number: u8, payload: &[u8]) -> Vec<u8> {
    let len = u8::try_from(payload.len()).expect("short test payload");
    assert!(len < 0x80 && number < 16);
    let mut out = vec![number << 3 | 2, len];
    out.extend_from_slice(payload);
    out
}

/// magic + runtime.Unknown{typeMeta{apiVersion, kind}, raw}, as client-go writes it.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
    [
        b"k8s\0".to_vec(),
        field(1, &type_meta),
        field(2, raw),
        field(3, b""),
        field(4, b""),
    ]
    .concat()
}

/// A ConfigMap: ObjectMeta{name, generateName "", namespace}, data{key: value} (Go's protobuf
/// writes empty non-pointer strings too).
fn configmap(name: &str, key: &str, value: &str) -> Vec<u8> {
    let meta = [
        field(1, name.as_bytes()),
        field(2, b""),
        field(3, b"default"),
    ]
    .concat();
    let entry = [field(1, key.as_bytes()), field(2, value.as_bytes())].concat();
    envelope(
        "v1",
        "ConfigMap",
        &[field(1, &meta), field(2, &entry)].concat(),
    )
}

#[tokio::test]
async fn protobuf_configmap_is_created_and_read_back_as_json() {
    let app = app().await;
    let uri = "/api/v1/namespaces/default/configmaps";
    let (status, created) = post(&app, uri, PROTOBUF, configmap("pb", "greeting", "hello")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["kind"], "ConfigMap");
    assert_eq!(created["data"]["greeting"], "hello");

    let request = Request::builder()
        .uri(format!("{uri}/pb"))
        .body(Body::empty())
        .expect("request");
    let (status, got) = call(&app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["apiVersion"], "v1");
    assert_eq!(got["metadata"]["name"], "pb");
    assert_eq!(got["metadata"]["namespace"], "default");
    // An empty non-pointer string on the wire is Go's zero value, not a field to store.
    assert!(got["metadata"].get("generateName").is_none(), "{got}");
    assert_eq!(got["data"], serde_json::json!({"greeting": "hello"}));
}

#[tokio::test]
async fn bad_protobuf_bodies_are_400_and_other_types_415() {
    let app = app().await;
    let uri = "/api/v1/namespaces/default/configmaps";

    let mut truncated = configmap("pb", "k", "v");
    truncated.truncate(truncated.len() - 6);
    let (status, body) = post(&app, uri, PROTOBUF, truncated).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = body["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with(
            "the object provided is unrecognized (must be of type ConfigMap): malformed protobuf: length past the end of the message ("
        ),
        "{message}"
    );

    let (status, body) = post(&app, uri, PROTOBUF, b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("magic number"),
        "{body}"
    );

    let (status, body) = post(&app, uri, PROTOBUF, envelope("v1", "Secret", b"")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, _) = post(&app, uri, "text/plain", b"x".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
