//! Protobuf responses through the router: what client-go's protobuf clients (`Accept:
//! application/vnd.kubernetes.protobuf, application/json`) get back from reads, writes, errors
//! and watches, read with rkube's own decoder (the encoder's byte layout against Go's is pinned
//! by rkube-api's golden tests).

mod common;

use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use rkube_api::protobuf;
use serde_json::{Value, json};
use tower::ServiceExt;

use common::{Reply, app, call, get};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const CLIENT_GO: &str = "application/vnd.kubernetes.protobuf, application/json";
const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn cm(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
        "data": {"k": value}})
}

async fn send(app: &axum::Router, method: &str, uri: &str, body: &Value, accept: &str) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, accept)
        .body(Body::from(body.to_string()))
        .expect("request");
    call(app, request).await
}

/// The body of a protobuf answer, decoded.
fn decoded(reply: &Reply) -> Value {
    assert_eq!(reply.header(header::CONTENT_TYPE), PROTOBUF);
    protobuf::decode(&reply.body).expect("a protobuf body")
}

#[tokio::test]
async fn reads_and_writes_answer_protobuf() {
    let app = app().await;
    let created = send(&app, "POST", CMS, &cm("a", "1"), CLIENT_GO).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let created = decoded(&created);
    assert_eq!(created["kind"], "ConfigMap");
    assert_eq!(created["data"], json!({"k": "1"}));

    let got = get(&app, &format!("{CMS}/a"), Some(PROTOBUF)).await;
    assert_eq!(got.status, StatusCode::OK);
    let as_json = get(&app, &format!("{CMS}/a"), None).await.json();
    // The same object: its JSON answer encodes to the very bytes of the protobuf answer.
    assert_eq!(decoded(&got)["metadata"]["uid"], as_json["metadata"]["uid"]);
    assert_eq!(protobuf::encode(&as_json).expect("encodes"), got.body);

    let mut changed = as_json.clone();
    changed["data"]["k"] = "2".into();
    let updated = send(&app, "PUT", &format!("{CMS}/a"), &changed, CLIENT_GO).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(decoded(&updated)["data"]["k"], "2");

    send(&app, "POST", CMS, &cm("b", "3"), "application/json").await;
    let list = get(&app, CMS, Some(CLIENT_GO)).await;
    assert_eq!(list.status, StatusCode::OK);
    let list = decoded(&list);
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["apiVersion"], "v1");
    assert!(list["metadata"]["resourceVersion"].is_string());
    let names: Vec<&Value> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| &i["metadata"]["name"])
        .collect();
    assert_eq!(names, ["a", "b"]);

    let deleted = send(&app, "DELETE", &format!("{CMS}/a"), &json!({}), CLIENT_GO).await;
    assert_eq!(deleted.status, StatusCode::OK);
    let status = decoded(&deleted);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["status"], "Success");
    assert_eq!(status["details"]["name"], "a");
}

#[tokio::test]
async fn errors_are_protobuf_statuses_when_asked() {
    let app = app().await;
    let missing = get(&app, &format!("{CMS}/nope"), Some(CLIENT_GO)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let status = decoded(&missing);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["apiVersion"], "v1");
    assert_eq!(status["code"], 404);
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["message"], r#"configmaps "nope" not found"#);
    assert_eq!(
        status["details"],
        json!({"name": "nope", "kind": "configmaps"})
    );

    // Before a resource is even resolved, too.
    let unknown = get(&app, "/api/v1/namespaces/default/widgets", Some(PROTOBUF)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(decoded(&unknown)["code"], 404);

    let conflict = send(&app, "POST", CMS, &cm("a", "1"), CLIENT_GO).await;
    assert_eq!(conflict.status, StatusCode::CREATED);
    let conflict = send(&app, "POST", CMS, &cm("a", "1"), CLIENT_GO).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(decoded(&conflict)["reason"], "AlreadyExists");
}

#[tokio::test]
async fn tables_have_no_protobuf_form() {
    let app = app().await;
    send(&app, "POST", CMS, &cm("a", "1"), "application/json").await;
    let table = "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io";
    let refused = get(&app, CMS, Some(table)).await;
    assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
    // The 406 Status itself is JSON: nothing the client accepts fits an error either.
    assert_eq!(refused.header(header::CONTENT_TYPE), "application/json");
    assert_eq!(
        refused.json()["message"],
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
    );
    let fallback = get(&app, CMS, Some(&format!("{table}, application/json"))).await;
    assert_eq!(fallback.status, StatusCode::OK);
    assert_eq!(fallback.json()["kind"], "ConfigMapList");

    // Metadata-only lists do have one (the garbage collector's metadata informers).
    let metadata = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
    let list = decoded(&get(&app, CMS, Some(metadata)).await);
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(list["items"][0]["metadata"]["name"], "a");
}

/// Splits a protobuf watch stream into (type, object) events: 4-byte big-endian lengths, then
/// `WatchEvent{type = 1, object = 2: RawExtension{raw = 1}}` with no magic or envelope.
fn watch_events(mut stream: &[u8]) -> Vec<(String, Value)> {
    fn varint(buf: &mut &[u8]) -> usize {
        let (mut value, mut shift) = (0usize, 0);
        loop {
            let byte = buf[0];
            *buf = &buf[1..];
            value |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
            shift += 7;
        }
    }
    /// The length-delimited fields of a message, by number.
    fn fields(mut msg: &[u8]) -> Vec<(usize, &[u8])> {
        let mut out = Vec::new();
        while !msg.is_empty() {
            let key = varint(&mut msg);
            assert_eq!(key & 7, 2, "only length-delimited fields here");
            let len = varint(&mut msg);
            out.push((key >> 3, &msg[..len]));
            msg = &msg[len..];
        }
        out
    }
    let mut events = Vec::new();
    while !stream.is_empty() {
        let len = u32::from_be_bytes(stream[..4].try_into().expect("length")) as usize;
        let event = fields(&stream[4..4 + len]);
        stream = &stream[4 + len..];
        assert_eq!(event[0].0, 1);
        assert_eq!(event[1].0, 2);
        let raw = fields(event[1].1);
        let object = protobuf::decode(raw[0].1).expect("object body");
        events.push((
            String::from_utf8(event[0].1.to_vec()).expect("type"),
            object,
        ));
    }
    events
}

#[tokio::test]
async fn watches_stream_length_delimited_watch_events() {
    let app = app().await;
    send(&app, "POST", CMS, &cm("w", "1"), "application/json").await;
    let request = Request::builder()
        .uri(format!("{CMS}?watch=true&timeoutSeconds=2"))
        .header(header::ACCEPT, CLIENT_GO)
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );

    let mut current = get(&app, &format!("{CMS}/w"), None).await.json();
    current["data"]["k"] = "2".into();
    send(
        &app,
        "PUT",
        &format!("{CMS}/w"),
        &current,
        "application/json",
    )
    .await;
    send(
        &app,
        "DELETE",
        &format!("{CMS}/w"),
        &json!({}),
        "application/json",
    )
    .await;

    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let events = watch_events(&body);
    let seen: Vec<(&str, &Value)> = events
        .iter()
        .map(|(t, o)| (t.as_str(), &o["data"]["k"]))
        .collect();
    assert_eq!(
        seen,
        [
            ("ADDED", &json!("1")),
            ("MODIFIED", &json!("2")),
            ("DELETED", &json!("2"))
        ]
    );
    for (_, object) in &events {
        assert_eq!(object["kind"], "ConfigMap");
        assert_eq!(object["metadata"]["name"], "w");
    }
}
