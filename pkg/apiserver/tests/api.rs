//! In-process API tests (DESIGN §6 level 3): the router over the real registry and an in-memory
//! SQLite store, driven by raw requests (`tower::ServiceExt::oneshot`) for exact status codes,
//! headers and bodies, and by a real `kube::Client` built on the router as a tower service.

mod common;

use axum::body::Body;
use futures::{StreamExt, TryStreamExt};
use http::{Request, StatusCode, header};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

use common::{Reply, app, call, get};

fn req(method: &str, uri: &str) -> http::request::Builder {
    Request::builder().method(method).uri(uri)
}

async fn send(app: &axum::Router, method: &str, uri: &str, body: Value) -> Reply {
    let request = req(method, uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    call(app, request).await
}

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn create_get_list_and_delete_status_codes() {
    let app = app().await;
    let created = send(&app, "POST", CMS, cm("a")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.header(header::CONTENT_TYPE), "application/json");
    let obj = created.json();
    assert_eq!(obj["kind"], "ConfigMap");
    assert_eq!(obj["metadata"]["namespace"], "default");

    let dry = send(&app, "POST", &format!("{CMS}?dryRun=All"), cm("b")).await;
    assert_eq!(dry.status, StatusCode::CREATED);
    assert_eq!(
        get(&app, &format!("{CMS}/b"), None).await.status,
        StatusCode::NOT_FOUND
    );

    let got = get(&app, &format!("{CMS}/a"), None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json()["data"], json!({"k": "v"}));

    let list = get(&app, CMS, None).await.json();
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["apiVersion"], "v1");
    assert!(list["metadata"]["resourceVersion"].is_string());
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    // Typed lists carry kind and apiVersion on the list only, as kube-apiserver's.
    assert!(items[0].get("kind").is_none() && items[0].get("apiVersion").is_none());

    let mut update = obj.clone();
    update["data"] = json!({"k": "w"});
    let updated = send(&app, "PUT", &format!("{CMS}/a"), update.clone()).await;
    assert_eq!(updated.status, StatusCode::OK);
    let wrong = send(&app, "PUT", &format!("{CMS}/other"), update).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        wrong.json()["message"],
        "the name of the object (a) does not match the name on the URL (other)"
    );

    let patched = call(
        &app,
        req("PATCH", &format!("{CMS}/a"))
            .header(header::CONTENT_TYPE, "application/merge-patch+json")
            .body(Body::from(r#"{"data":{"p":"q"}}"#))
            .expect("request"),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.json());
    assert_eq!(patched.json()["data"]["p"], "q");

    let deleted = call(
        &app,
        req("DELETE", &format!("{CMS}/a"))
            .body(Body::empty())
            .expect("r"),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK);
    let status = deleted.json();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["status"], "Success");
    assert_eq!(status["details"]["name"], "a");
    assert_eq!(status["details"]["kind"], "configmaps");
    let gone = get(&app, &format!("{CMS}/a"), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.json()["message"], r#"configmaps "a" not found"#);
}

#[tokio::test]
async fn yaml_bodies_and_outputs() {
    let app = app().await;
    let request = req("POST", CMS)
        .header(header::CONTENT_TYPE, "application/yaml")
        .header(header::ACCEPT, "application/yaml")
        .body(Body::from(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  a: b\n",
        ))
        .expect("request");
    let created = call(&app, request).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.header(header::CONTENT_TYPE), "application/yaml");
    let v: Value = serde_yaml_ng::from_slice(&created.body).expect("yaml");
    assert_eq!(v["data"]["a"], "b");
}

#[tokio::test]
async fn bad_requests_get_upstream_statuses() {
    let app = app().await;
    let cases: Vec<(Reply, u16, &str)> = vec![
        (
            get(&app, &format!("{CMS}?limit=abc"), None).await,
            400,
            r#"strconv.ParseInt: parsing "abc": invalid syntax"#,
        ),
        (
            get(&app, &format!("{CMS}?watch=true&timeoutSeconds=x"), None).await,
            400,
            r#"strconv.ParseInt: parsing "x": invalid syntax"#,
        ),
        (
            send(&app, "POST", &format!("{CMS}?dryRun=Some"), cm("c")).await,
            422,
            r#"CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ["Some"]: supported values: "All""#,
        ),
        (
            call(
                &app,
                req("PATCH", &format!("{CMS}/a"))
                    .header(header::CONTENT_TYPE, "text/plain")
                    .body(Body::from("x"))
                    .expect("r"),
            )
            .await,
            415,
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml",
        ),
        (
            call(
                &app,
                req("POST", CMS)
                    .header(header::CONTENT_TYPE, "application/cbor")
                    .body(Body::from("x"))
                    .expect("r"),
            )
            .await,
            415,
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        ),
        (
            get(&app, CMS, Some("text/html")).await,
            406,
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        ),
        (
            get(&app, "/api/v1/namespaces/default/widgets", None).await,
            404,
            "the server could not find the requested resource",
        ),
        (
            get(&app, "/api/v1/bindings", None).await,
            405,
            r#"list is not supported on resources of kind "bindings""#,
        ),
        (
            send(
                &app,
                "POST",
                CMS,
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
            )
            .await,
            400,
            r#"Secret in version "v1" cannot be handled as a ConfigMap: no kind "Secret" is registered for version "v1""#,
        ),
    ];
    for (reply, code, message) in cases {
        let status = reply.json();
        assert_eq!(reply.status.as_u16(), code, "{status}");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["code"], code);
        assert_eq!(status["message"], message);
    }
}

#[tokio::test]
async fn oversized_and_deeply_nested_bodies_are_refused() {
    let app = app().await;
    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    let reply = call(
        &app,
        req("POST", CMS)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(big))
            .expect("r"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        reply.json()["message"],
        "Request entity too large: limit is 3145728"
    );

    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let reply = call(
        &app,
        req("POST", CMS)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(deep))
            .expect("r"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tables_for_get_and_list() {
    let app = app().await;
    send(&app, "POST", CMS, cm("t")).await;
    let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let table = get(&app, &format!("{CMS}?includeObject=Object"), Some(kubectl))
        .await
        .json();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(table["columnDefinitions"][0]["name"], "Name");
    assert_eq!(table["rows"][0]["cells"][0], "t");
    assert_eq!(table["rows"][0]["object"]["kind"], "ConfigMap");
    let one = get(&app, &format!("{CMS}/t"), Some(kubectl)).await.json();
    assert_eq!(one["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let v1beta1 = get(
        &app,
        CMS,
        Some("application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
    )
    .await;
    assert_eq!(v1beta1.status, StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn watch_streams_frames_and_ends_at_timeout() {
    let app = app().await;
    send(&app, "POST", CMS, cm("w")).await;
    let reply = get(&app, &format!("{CMS}?watch=true&timeoutSeconds=1"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = String::from_utf8(reply.body).expect("utf8");
    let first: Value = serde_json::from_str(text.lines().next().expect("a frame")).expect("json");
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["metadata"]["name"], "w");
    assert_eq!(first["object"]["kind"], "ConfigMap");
}

#[tokio::test]
async fn discovery_documents() {
    let app = app().await;
    let api = get(&app, "/api", None).await.json();
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));
    let groups = get(&app, "/apis", None).await.json();
    assert_eq!(groups["kind"], "APIGroupList");
    assert_eq!(groups["groups"][1]["name"], "apps");
    assert_eq!(
        groups["groups"][1]["preferredVersion"]["groupVersion"],
        "apps/v1"
    );
    let apps = get(&app, "/apis/apps/v1", None).await.json();
    assert_eq!(apps["kind"], "APIResourceList");
    assert_eq!(apps["groupVersion"], "apps/v1");
    let scale = apps["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .expect("scale")
        .clone();
    assert_eq!(scale["group"], "autoscaling");
    assert_eq!(scale["kind"], "Scale");

    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let agg = get(&app, "/apis", Some(accept)).await;
    assert_eq!(
        agg.header(header::CONTENT_TYPE),
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(agg.header(header::VARY), "Accept");
    let etag = agg.header(header::ETAG).to_owned();
    assert!(etag.starts_with('"'));
    let doc = agg.json();
    assert_eq!(doc["kind"], "APIGroupDiscoveryList");
    assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
    let apps = doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .expect("apps");
    let deploy = &apps["versions"][0]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["resource"] == "deployments")
        .expect("deployments")
        .clone();
    assert_eq!(deploy["scope"], "Namespaced");
    assert_eq!(
        deploy["responseKind"],
        json!({"group": "", "version": "", "kind": "Deployment"})
    );
    assert_eq!(deploy["shortNames"], json!(["deploy"]));
    let cached = call(
        &app,
        req("GET", "/apis")
            .header(header::ACCEPT, accept)
            .header(header::IF_NONE_MATCH, &etag)
            .body(Body::empty())
            .expect("r"),
    )
    .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    let refused = get(&app, "/apis", Some("application/vnd.kubernetes.protobuf")).await;
    assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn large_responses_are_gzipped_but_not_watches() {
    let app = app().await;
    let mut big = cm("big");
    big["data"] = json!({"k": "x".repeat(200 * 1024)});
    assert_eq!(
        send(&app, "POST", CMS, big).await.status,
        StatusCode::CREATED
    );
    let gz = |uri: &str| {
        req("GET", uri)
            .header(header::ACCEPT_ENCODING, "gzip")
            .body(Body::empty())
            .expect("r")
    };
    let listed = call(&app, gz(CMS)).await;
    assert_eq!(listed.header(header::CONTENT_ENCODING), "gzip");
    let watched = call(&app, gz(&format!("{CMS}?watch=1&timeoutSeconds=1"))).await;
    assert_eq!(watched.header(header::CONTENT_ENCODING), "");
}

fn kube_client(app: axum::Router) -> kube::Client {
    let service = tower::ServiceBuilder::new()
        .map_request(|r: Request<kube::client::Body>| r.map(Body::new))
        .service(app);
    kube::Client::new(service, "default")
}

#[tokio::test]
async fn kube_client_crud_watch_and_discovery() {
    let client = kube_client(app().await);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("team".into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
    assert!(namespaces.get("team").await.is_ok());

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    for name in ["one", "two", "three"] {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        cms.create(&PostParams::default(), &cm)
            .await
            .expect("create cm");
    }
    let listed = cms.list(&ListParams::default()).await.expect("list");
    assert_eq!(listed.items.len(), 3);
    let page = cms
        .list(&ListParams::default().limit(2))
        .await
        .expect("page");
    assert_eq!(page.items.len(), 2);
    assert!(page.metadata.continue_.is_some());

    // The streaming-list watcher sees every object, then the initial-events-end bookmark.
    let mut events = watcher(cms.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut seen = Vec::new();
    while let Some(event) = events.try_next().await.expect("watch") {
        match event {
            watcher::Event::InitApply(cm) => seen.push(cm.metadata.name.unwrap_or_default()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    seen.sort();
    assert_eq!(seen, ["one", "three", "two"]);
    cms.delete("one", &DeleteParams::default())
        .await
        .expect("delete");
    loop {
        match events.try_next().await.expect("watch") {
            Some(watcher::Event::Delete(cm)) => {
                assert_eq!(cm.metadata.name.as_deref(), Some("one"));
                break;
            }
            Some(_) => {}
            None => panic!("watch ended"),
        }
    }

    let discovery = kube::discovery::Discovery::new(client)
        .run()
        .await
        .expect("discovery");
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_owned()).collect();
    for g in rkube_api::resources::API_GROUPS {
        assert!(
            groups.iter().any(|n| n == g.name),
            "{} in {groups:?}",
            g.name
        );
    }
    assert!(groups.iter().any(|n| n.is_empty()), "core group");
}
