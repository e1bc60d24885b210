//! OpenAPI documents and server-side field validation over the router with the real registry
//! on in-memory SQLite: what kubectl downloads before `create`/`apply`/`explain`, and what it
//! sees when a manifest has a typo.

mod common;

use axum::body::Body;
use http::{Request, StatusCode, header};
use rkube_api::resources::{API_GROUPS, CORE_VERSIONS};
use serde_json::{Value, json};

use common::{Reply, app, call, get};

async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    content_type: &str,
    body: &str,
) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_owned()))
        .expect("request");
    call(app, request).await
}

#[tokio::test]
async fn v3_index_lists_every_served_group_version() {
    let app = app().await;
    let index = get(&app, "/openapi/v3", None).await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(index.header(header::CONTENT_TYPE), "application/json");
    assert!(!index.header(header::ETAG).is_empty());
    let paths = index.json()["paths"].clone();
    let mut expected: Vec<String> = CORE_VERSIONS.iter().map(|v| format!("api/{v}")).collect();
    for g in API_GROUPS {
        expected.push(format!("apis/{}", g.name));
        expected.extend(g.versions.iter().map(|v| format!("apis/{}/{v}", g.name)));
    }
    expected.extend(["api".to_owned(), "apis".to_owned()]);
    for gv in &expected {
        let url = paths[gv]["serverRelativeURL"].as_str().unwrap_or_default();
        assert!(
            url.starts_with(&format!("/openapi/v3/{gv}?hash=")),
            "{gv}: {url}"
        );
    }
    assert_eq!(paths.as_object().map(|m| m.len()), Some(expected.len()));
}

#[tokio::test]
async fn v3_apps_document_describes_deployments() {
    let app = app().await;
    let index = get(&app, "/openapi/v3", None).await.json();
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps/v1 url")
        .to_owned();
    let doc = get(&app, &url, Some("application/json")).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.header(header::CONTENT_TYPE), "application/json");
    assert_eq!(doc.header(header::CACHE_CONTROL), "public, immutable");
    let etag = doc.header(header::ETAG).to_owned();
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.0.0");

    let create = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"];
    assert_eq!(create["operationId"], "createAppsV1NamespacedDeployment");
    assert_eq!(create["x-kubernetes-action"], "post");
    assert_eq!(
        create["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    let params: Vec<&str> = create["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(params, ["dryRun", "fieldManager", "fieldValidation"]);
    assert_eq!(
        create["requestBody"]["content"]["*/*"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
    let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["put"]["operationId"],
        "replaceAppsV1NamespacedDeploymentScale"
    );
    assert_eq!(
        doc["paths"]["/apis/apps/v1/deployments"]["get"]["operationId"],
        "listAppsV1DeploymentForAllNamespaces"
    );

    let schemas = &doc["components"]["schemas"];
    let deployment = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    assert_eq!(
        deployment["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    assert_eq!(
        schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["x-kubernetes-int-or-string"],
        true
    );
    assert!(schemas["io.k8s.api.autoscaling.v1.Scale"].is_object());
    // Nothing of JSON Schema 2020-12 is left over.
    let text = doc.to_string();
    assert!(!text.contains("$defs") && !text.contains("$schema"));

    // The client's copy is current: 304; a stale hash moves permanently to the current one.
    let cached = Request::builder()
        .uri(&url)
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .expect("request");
    assert_eq!(call(&app, cached).await.status, StatusCode::NOT_MODIFIED);
    let stale = get(&app, "/openapi/v3/apis/apps/v1?hash=0123", None).await;
    assert_eq!(stale.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(stale.header(header::LOCATION), url);
    assert_eq!(
        get(&app, "/openapi/v3/apis/nope/v1", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn v2_is_json_or_protobuf_and_v3_only_json() {
    let app = app().await;
    let v2 = get(&app, "/openapi/v2", Some("application/json")).await;
    assert_eq!(v2.status, StatusCode::OK);
    assert_eq!(v2.header(header::CONTENT_TYPE), "application/json");
    let doc = v2.json();
    assert_eq!(doc["swagger"], "2.0");
    let pod = &doc["definitions"]["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert_eq!(
        pod["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.PodSpec"
    );
    let create = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"]["post"];
    assert_eq!(create["operationId"], "createCoreV1NamespacedPod");
    assert_eq!(create["parameters"][0]["in"], "body");
    assert!(doc["definitions"]["io.k8s.api.core.v1.PodList"].is_object());

    // kubectl's client-side validation reads gnostic's protobuf form; the v3 documents have none.
    // kubectl asks with the deprecated `@` spelling; the answer has the one Go can parse.
    let v2_proto = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
    let proto = get(&app, "/openapi/v2", Some(v2_proto)).await;
    assert_eq!(proto.status, StatusCode::OK);
    assert_eq!(
        proto.headers["content-type"],
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    assert!(
        proto.body.starts_with(b"\x0a\x032.0"),
        "swagger: \"2.0\" first"
    );
    let v3_proto = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf";
    let proto = get(&app, "/openapi/v3/api/v1", Some(v3_proto)).await;
    assert_eq!(proto.status, StatusCode::NOT_ACCEPTABLE);
}

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

/// A Deployment with a typo in its spec and an unknown top-level field.
fn deployment(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"name":"{name}"}},
        "spec":{{"foo":1,"selector":{{"matchLabels":{{"app":"x"}}}},
        "template":{{"metadata":{{"labels":{{"app":"x"}}}},
        "spec":{{"containers":[{{"name":"c","image":"nginx"}}]}}}}}},"bar":true}}"#
    )
}

#[tokio::test]
async fn strict_refuses_unknown_fields_with_upstreams_message() {
    let app = app().await;
    let reply = send(
        &app,
        "POST",
        &format!("{DEPLOYMENTS}?fieldValidation=Strict"),
        "application/json",
        &deployment("strict"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let status = reply.json();
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.foo", unknown field "bar""#
    );
    let gone = get(&app, &format!("{DEPLOYMENTS}/strict"), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    // Duplicates too, in the body's order.
    let dup =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d","name":"e"},"data":{}}"#;
    let reply = send(
        &app,
        "POST",
        "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
        "application/json",
        dup,
    )
    .await;
    assert_eq!(
        reply.json()["message"],
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "metadata.name""#
    );
}

#[tokio::test]
async fn warn_is_the_default_and_drops_the_fields() {
    let app = app().await;
    let reply = send(
        &app,
        "POST",
        DEPLOYMENTS,
        "application/json",
        &deployment("warn"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        reply.warnings(),
        [
            r#"299 - "unknown field \"spec.foo\"""#,
            r#"299 - "unknown field \"bar\"""#
        ]
    );
    let stored = get(&app, &format!("{DEPLOYMENTS}/warn"), None).await.json();
    assert!(stored.get("bar").is_none());
    assert!(stored["spec"].get("foo").is_none());
}

#[tokio::test]
async fn ignore_drops_the_fields_silently() {
    let app = app().await;
    let reply = send(
        &app,
        "POST",
        &format!("{DEPLOYMENTS}?fieldValidation=Ignore"),
        "application/json",
        &deployment("ignore"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert!(reply.warnings().is_empty());
    let created = reply.json();
    assert!(created.get("bar").is_none());
    assert!(created["spec"].get("foo").is_none());

    // Updates are checked the same way.
    let mut update: Value = serde_json::from_str(&deployment("ignore")).expect("json");
    update["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
    let reply = send(
        &app,
        "PUT",
        &format!("{DEPLOYMENTS}/ignore?fieldValidation=Strict"),
        "application/json",
        &update.to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn patches_are_field_validated_like_bodies() {
    let app = app().await;
    let created = send(
        &app,
        "POST",
        &format!("{DEPLOYMENTS}?fieldValidation=Ignore"),
        "application/json",
        &deployment("patched"),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let url = format!("{DEPLOYMENTS}/patched");
    let merge = "application/merge-patch+json";

    // Warn (the default): the unknown field is dropped and named; the known one lands.
    let reply = send(
        &app,
        "PATCH",
        &url,
        merge,
        r#"{"spec":{"replicas":3,"bogus":1}}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.warnings(),
        [r#"299 - "unknown field \"spec.bogus\"""#]
    );
    let stored = get(&app, &url, None).await.json();
    assert_eq!(stored["spec"]["replicas"], 3);
    assert!(stored["spec"].get("bogus").is_none());

    // Strict: upstream's 422 on the field `patch`, nothing written; duplicate keys of the patch
    // body are reported with the patched object's unknown fields.
    let reply = send(
        &app,
        "PATCH",
        &format!("{url}?fieldValidation=Strict"),
        merge,
        r#"{"spec":{"replicas":4,"replicas":5,"bogus":1}}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let status = reply.json();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["details"]["causes"][0]["field"], "patch");
    let message = status["message"].as_str().expect("message");
    assert!(
        message.starts_with(r#" "" is invalid: patch: Invalid value: "{"#),
        "{message}"
    );
    assert!(
        message.ends_with(
            r#": strict decoding error: duplicate field "spec.replicas", unknown field "spec.bogus""#
        ),
        "{message}"
    );
    assert_eq!(get(&app, &url, None).await.json()["spec"]["replicas"], 3);

    // JSON patch too; Ignore stays silent.
    let reply = send(
        &app,
        "PATCH",
        &format!("{url}?fieldValidation=Strict"),
        "application/json-patch+json",
        r#"[{"op":"add","path":"/spec/bogus","value":1}]"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let reply = send(
        &app,
        "PATCH",
        &format!("{url}?fieldValidation=Ignore"),
        "application/json-patch+json",
        r#"[{"op":"add","path":"/spec/bogus","value":1}]"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.warnings().is_empty());
    assert!(reply.json()["spec"].get("bogus").is_none());
}
