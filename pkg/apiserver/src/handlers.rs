//! One handler per verb: decode the request (options, body), call the resource's [`Rest`], and
//! encode the answer as upstream does (status codes, list shape, transformations, warnings).

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use rkube_admission::Operation;
use rkube_api::resources::{Resource, Subresource};
use rkube_api::status::ApiError;
use rkube_api::user::UserInfo;
use rkube_registry::Rest;
use rkube_registry::rest::{
    AdmissionHooks, ConnectOptions, Connected, Deleted, FieldValidation, PatchType, Scope,
};
use rkube_storage::{Object, ObjectList};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

use crate::admit::Admission;
use crate::as_table::{self, Include, ListMeta};
use crate::negotiate::{self, Accept, Encoding, Output, Transform};
use crate::openapi;
use crate::options::{self, Query};
use crate::request_info::RequestInfo;
use crate::response::{Result, add_warnings, bytes_response, encode, protobuf_failure};
use crate::watch;

/// Upstream's `--max-request-body-bytes` default: 3 MiB.
pub(crate) const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The patch media types, in upstream's order for the 415 message.
const PATCH_MEDIA_TYPES: &[(&str, PatchType)] = &[
    ("application/json-patch+json", PatchType::Json),
    ("application/merge-patch+json", PatchType::Merge),
    (
        "application/strategic-merge-patch+json",
        PatchType::StrategicMerge,
    ),
    ("application/apply-patch+yaml", PatchType::Apply),
];

/// The `User-Agent` header, whose prefix names the field manager of a write without
/// `fieldManager`.
fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Subresources served by [`Rest::connect`] whatever the method (upstream's `Connecter`s).
const CONNECT_SUBRESOURCES: &[&str] = &["log", "exec", "attach", "portforward", "proxy"];

/// A resource request matched to the registry.
pub(crate) struct Target {
    /// The parsed request.
    pub info: RequestInfo,
    /// The resource.
    pub resource: &'static Resource,
    /// The subresource, if any.
    pub sub: Option<&'static Subresource>,
    /// Who serves it.
    pub rest: Arc<dyn Rest>,
    /// Its namespace scope.
    pub scope: Scope,
    /// The query string.
    pub query: Query,
    /// The request's admission (writes), when the server runs a chain.
    pub admission: Option<Admission>,
    /// Who asks, as authentication put it on the request, for writes (`None` for reads and
    /// without a gate: tests).
    pub user: Option<UserInfo>,
}

impl Target {
    /// The request's `Accept`, for this endpoint's kind (protobuf only if it has a message).
    fn accept<'h>(&self, headers: &'h HeaderMap) -> Accept<'h> {
        let (group, version, kind) = self.body_gvk();
        let api_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        Accept {
            header: headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
            protobuf: rkube_api::protobuf::has_kind(&api_version, kind),
        }
    }

    /// The registry callbacks of this request's admission as an `operation`.
    fn admission_hooks(&self, operation: Operation, dry_run: bool) -> AdmissionHooks {
        self.admission
            .as_ref()
            .map(|a| a.hooks(operation, dry_run))
            .unwrap_or_default()
    }

    /// The warnings admission gave.
    fn admission_warnings(&self) -> Vec<String> {
        self.admission
            .as_ref()
            .map(Admission::warnings)
            .unwrap_or_default()
    }

    /// Runs the request.
    pub async fn serve(self, headers: HeaderMap, body: Body) -> Result<Response> {
        if self
            .sub
            .is_some_and(|s| CONNECT_SUBRESOURCES.contains(&s.name))
        {
            return self.connect().await;
        }
        let verb = self.info.verb.clone();
        match verb.as_str() {
            "get" => self.get(&headers).await,
            "list" => self.list(&headers).await,
            "watch" => self.watch(&headers).await,
            "create" => self.create(&headers, body).await,
            "update" => self.update(&headers, body).await,
            "patch" => self.patch(&headers, body).await,
            "delete" => self.delete(&headers, body).await,
            "deletecollection" => self.delete_collection(&headers, body).await,
            other => Err(self.rest.unsupported(other).into()),
        }
    }

    /// A connect subresource (any method): the registry checks it and says where it goes.
    /// Forwarding to a node needs the node agent, which does not exist yet: such requests are
    /// answered 503 once every check passed.
    async fn connect(self) -> Result<Response> {
        let options = ConnectOptions {
            query: self.query.pairs().to_vec(),
            path: self.info.parts.get(3..).unwrap_or_default().join("/"),
        };
        match self
            .rest
            .connect(&self.scope, &self.info.name, &options)
            .await?
        {
            Connected::NoContent => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::NO_CONTENT;
                Ok(response)
            }
            Connected::Node { node, url } => Err(ApiError::service_unavailable(format!(
                "cannot forward to node {node:?} ({url}): the rkube node agent (kubelet) is not available yet"
            ))
            .into()),
        }
    }

    async fn get(self, headers: &HeaderMap) -> Result<Response> {
        let output = negotiate::negotiate_output(self.accept(headers), false, false)?;
        let object = self
            .rest
            .get(
                &self.scope,
                &self.info.name,
                &options::get_options(&self.query),
            )
            .await?;
        self.object_response(StatusCode::OK, output, &object, &[])
    }

    async fn list(self, headers: &HeaderMap) -> Result<Response> {
        let output = negotiate::negotiate_output(self.accept(headers), false, true)?;
        let include = Include::from_query(&self.query)?;
        let opts = options::list_options(&self.query, false, None)?;
        let list = self.rest.list(&self.scope, &opts).await?;
        self.list_response(StatusCode::OK, output, include, &list)
    }

    async fn watch(self, headers: &HeaderMap) -> Result<Response> {
        let output = negotiate::negotiate_output(self.accept(headers), true, false)?;
        let include = Include::from_query(&self.query)?;
        let name = (!self.info.name.is_empty()).then_some(self.info.name.as_str());
        let opts = options::list_options(&self.query, true, name)?;
        let duration = watch::timeout(opts.timeout_seconds);
        let events = self.rest.watch(&self.scope, &opts).await?;
        let render = watch::Render {
            resource: self.resource,
            transform: output.transform,
            encoding: output.encoding,
            include,
        };
        Ok(watch::response(events, render, duration))
    }

    async fn create(self, headers: &HeaderMap, body: Body) -> Result<Response> {
        let output = negotiate::negotiate_output(self.accept(headers), false, false)?;
        let mut opts = options::create_options(&self.query)?;
        opts.user_agent = user_agent(headers);
        opts.admission = self.admission_hooks(Operation::Create, opts.dry_run);
        opts.user = self.user.clone();
        let (mut object, field_warnings) = self
            .decode_checked(headers, body, opts.field_validation)
            .await?;
        // A named create (`pods/<name>/binding`, `.../eviction`) is about the object in the URL.
        if !self.info.name.is_empty() {
            check_name(&mut object, &self.info.name, &self.info.namespace)?;
        }
        let answer = self.rest.create(&self.scope, object, &opts).await?;
        let warnings = [field_warnings, answer.warnings, self.admission_warnings()].concat();
        self.object_response(StatusCode::CREATED, output, &answer.value, &warnings)
    }

    async fn update(self, headers: &HeaderMap, body: Body) -> Result<Response> {
        let output = negotiate::negotiate_output(self.accept(headers), false, false)?;
        let mut opts = options::update_options(&self.query)?;
        opts.user_agent = user_agent(headers);
        opts.admission = self.admission_hooks(Operation::Update, opts.dry_run);
        let (mut object, field_warnings) = self
            .decode_checked(headers, body, opts.field_validation)
            .await?;
        check_name(&mut object, &self.info.name, &self.info.namespace)?;
        let answer = self
            .rest
            .update(&self.scope, &self.info.name, object, &opts)
            .await?;
        let (object, created) = &answer.value;
        let code = if *created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let warnings = [
            field_warnings,
            answer.warnings.clone(),
            self.admission_warnings(),
        ]
        .concat();
        self.object_response(code, output, object, &warnings)
    }

    async fn patch(self, headers: &HeaderMap, body: Body) -> Result<Response> {
        let output = negotiate::negotiate_output(self.accept(headers), false, false)?;
        let media = negotiate::body_media_type(content_type(headers)).unwrap_or_default();
        let Some(&(_, patch_type)) = PATCH_MEDIA_TYPES.iter().find(|(m, _)| *m == media) else {
            let accepted: Vec<&str> = PATCH_MEDIA_TYPES.iter().map(|(m, _)| *m).collect();
            return Err(ApiError::unsupported_media_type(&accepted).into());
        };
        let mut opts = options::patch_options(&self.query, patch_type)?;
        opts.user_agent = user_agent(headers);
        opts.admission = self.admission_hooks(Operation::Update, opts.dry_run);
        let patch = read_body(body).await?;
        opts.field_check = openapi::patched_object_check(self.body_gvk());
        if matches!(patch_type, PatchType::Merge | PatchType::StrategicMerge) {
            opts.patch_findings = openapi::patch_duplicates(self.body_gvk(), &patch);
        }
        let answer = self
            .rest
            .patch(&self.scope, &self.info.name, patch_type, &patch, &opts)
            .await?;
        let warnings = [answer.warnings, self.admission_warnings()].concat();
        let (object, created) = &answer.value;
        // An apply that created the object answers 201, as upstream.
        let code = if *created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        self.object_response(code, output, object, &warnings)
    }

    async fn delete(self, headers: &HeaderMap, body: Body) -> Result<Response> {
        let output = negotiate::negotiate_output(self.accept(headers), false, false)?;
        let body = self.delete_body(headers, body).await?;
        let (mut opts, orphan) = options::delete_options(&self.query, body)?;
        opts.admission = self.admission_hooks(Operation::Delete, opts.dry_run);
        let answer = self
            .rest
            .delete(&self.scope, &self.info.name, &opts)
            .await?;
        match &answer.value {
            Deleted::Gone(object) if !returns_deleted_object(self.resource) => {
                let status = deleted_status(self.resource, object.value());
                let mut response = bytes_response(
                    StatusCode::OK,
                    output.encoding.content_type(),
                    encode(&status, output.encoding)?,
                );
                add_warnings(&mut response, &answer.warnings);
                Ok(response)
            }
            Deleted::Gone(object) => {
                self.object_response(StatusCode::OK, output, object, &answer.warnings)
            }
            // Upstream answers 202 only when the client asked for non-orphaning cascading
            // deletion the old way (`orphanDependents=false`) and the object is still there.
            Deleted::Pending { object, .. } => {
                let code = if orphan == Some(false) {
                    StatusCode::ACCEPTED
                } else {
                    StatusCode::OK
                };
                self.object_response(code, output, object, &answer.warnings)
            }
        }
    }

    async fn delete_collection(self, headers: &HeaderMap, body: Body) -> Result<Response> {
        let output = negotiate::negotiate_output(self.accept(headers), false, true)?;
        let body = self.delete_body(headers, body).await?;
        let (mut delete, _) = options::delete_options(&self.query, body)?;
        delete.admission = self.admission_hooks(Operation::Delete, delete.dry_run);
        let list = options::list_options(&self.query, false, None)?;
        let deleted = self
            .rest
            .delete_collection(&self.scope, &delete, &list)
            .await?;
        self.list_response(StatusCode::OK, output, Include::Metadata, &deleted)
    }

    /// The DeleteOptions body, when there is one.
    async fn delete_body(&self, headers: &HeaderMap, body: Body) -> Result<Option<Value>> {
        let bytes = read_body(body).await?;
        if bytes.is_empty() {
            return Ok(None);
        }
        decode_bytes(headers, &bytes, "DeleteOptions").map(Some)
    }

    /// The group, version and kind of the endpoint's bodies.
    pub(crate) fn body_gvk(&self) -> (&'static str, &'static str, &'static str) {
        let (group, version) = self
            .sub
            .and_then(|s| s.kind_group_version)
            .unwrap_or((self.resource.group, self.resource.version));
        (
            group,
            version,
            self.sub.map_or(self.resource.kind, |s| s.kind),
        )
    }

    /// [`Self::decode_object`], then the schema's field validation (`fieldValidation`): unknown
    /// fields dropped, their warnings answered (`Warn`) or the request refused (`Strict`).
    async fn decode_checked(
        &self,
        headers: &HeaderMap,
        body: Body,
        mode: FieldValidation,
    ) -> Result<(Value, Vec<String>)> {
        let bytes = read_body(body).await?;
        let mut object = self
            .decode_object(headers, Body::from(bytes.clone()))
            .await?;
        let media = negotiate::body_media_type(content_type(headers));
        let warnings =
            openapi::check_body(self.body_gvk(), media.as_deref(), &bytes, &mut object, mode)?;
        Ok((object, warnings))
    }

    /// Reads and decodes a create or update body, checks its kind and apiVersion against the
    /// endpoint's and fills them in when absent.
    async fn decode_object(&self, headers: &HeaderMap, body: Body) -> Result<Value> {
        let bytes = read_body(body).await?;
        let (group, version, kind) = self.body_gvk();
        let mut object = decode_bytes(headers, &bytes, kind)?;
        let expected_gv = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        let Some(map) = object.as_object_mut() else {
            return Err(unrecognized(kind, "body is not a JSON object", &bytes).into());
        };
        let body_gv = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let body_kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
        if !body_kind.is_empty() && body_kind != kind {
            let v = body_gv.rsplit('/').next().unwrap_or("");
            return Err(ApiError::bad_request(format!(
                "{body_kind} in version {} cannot be handled as a {kind}: no kind {} is registered for version {}",
                Value::from(v),
                Value::from(body_kind),
                Value::from(body_gv)
            ))
            .into());
        }
        // Evictions are also accepted as policy/v1beta1 (upstream's `AcceptsGroupVersion`):
        // the two versions have the same fields.
        let also_accepted = kind == "Eviction" && body_gv == "policy/v1beta1";
        if !body_gv.is_empty() && body_gv != expected_gv && !also_accepted {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({body_gv}) does not match the expected API version ({expected_gv})"
            ))
            .into());
        }
        map.insert("apiVersion".into(), expected_gv.into());
        map.insert("kind".into(), kind.into());
        Ok(object)
    }

    /// One object in the negotiated form.
    fn object_response(
        &self,
        code: StatusCode,
        output: Output,
        object: &Object,
        warnings: &[String],
    ) -> Result<Response> {
        let body = match (output.transform, output.encoding) {
            // The shared encoding, as stored: no re-serialization.
            (Transform::None, Encoding::Json) => object.json().clone(),
            (Transform::None, encoding) => encode(object.value(), encoding)?,
            (Transform::Table, encoding) => {
                let include = Include::from_query(&self.query)?;
                let meta = ListMeta {
                    resource_version: object.revision().to_string(),
                    ..ListMeta::default()
                };
                let table = as_table::table(
                    self.resource,
                    std::iter::once(object.value()),
                    &meta,
                    include,
                    true,
                );
                encode(&table, encoding)?
            }
            (Transform::PartialObjectMetadata | Transform::PartialObjectMetadataList, encoding) => {
                encode(&as_table::partial_object_metadata(object.value()), encoding)?
            }
        };
        let mut response = bytes_response(code, output.encoding.content_type(), body);
        add_warnings(&mut response, warnings);
        Ok(response)
    }

    /// A list in the negotiated form.
    fn list_response(
        &self,
        code: StatusCode,
        output: Output,
        include: Include,
        list: &ObjectList,
    ) -> Result<Response> {
        let meta = ListMeta {
            resource_version: list.revision.to_string(),
            continue_token: list.continue_token.clone(),
            remaining_item_count: list.remaining_item_count,
        };
        let values = || list.items.iter().map(Object::value);
        let body = match output.transform {
            Transform::None | Transform::PartialObjectMetadata => ListWire {
                kind: format!("{}List", self.resource.kind),
                api_version: self.resource.api_version().into_owned(),
                metadata: meta.to_json(),
                items: &list.items,
            }
            .encode(output.encoding)?,
            Transform::Table => encode(
                &as_table::table(self.resource, values(), &meta, include, true),
                output.encoding,
            )?,
            Transform::PartialObjectMetadataList => encode(
                &as_table::partial_object_metadata_list(values(), &meta),
                output.encoding,
            )?,
        };
        Ok(bytes_response(code, output.encoding.content_type(), body))
    }
}

/// Resources whose delete answers with the deleted object; the others answer a `Success`
/// Status naming it (upstream's `ReturnDeletedObject`).
pub(crate) fn returns_deleted_object(resource: &Resource) -> bool {
    matches!(
        (resource.group, resource.plural),
        ("", "pods" | "serviceaccounts" | "namespaces" | "services")
            | ("storage.k8s.io", "storageclasses")
    )
}

/// Upstream's `Success` Status for a finished delete.
fn deleted_status(resource: &Resource, object: &Value) -> Value {
    let meta = |f| rkube_api::meta::field(object, f).unwrap_or("");
    let mut details = json!({"name": meta("name")});
    if !resource.group.is_empty() {
        details["group"] = resource.group.into();
    }
    details["kind"] = resource.plural.into();
    if !meta("uid").is_empty() {
        details["uid"] = meta("uid").into();
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// A typed list as kube-apiserver encodes it: items without `kind` and `apiVersion` (they are
/// implied by the list's kind).
struct ListWire<'a> {
    kind: String,
    api_version: String,
    metadata: Value,
    items: &'a [Object],
}

impl ListWire<'_> {
    /// The list's bytes, written from the items in place rather than gathered into one value
    /// (JSON, protobuf).
    fn encode(&self, encoding: Encoding) -> Result<Bytes> {
        let bytes = match encoding {
            Encoding::Json => serde_json::to_vec(self).map_err(ApiError::internal)?,
            Encoding::Yaml => {
                let value = serde_json::to_value(self).map_err(ApiError::internal)?;
                return encode(&value, encoding);
            }
            Encoding::Protobuf => rkube_api::protobuf::encode_list(
                &self.api_version,
                &self.kind,
                &self.metadata,
                self.items.iter().map(Object::value),
            )
            .map_err(protobuf_failure)?,
        };
        Ok(Bytes::from(bytes))
    }
}

impl Serialize for ListWire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("kind", &self.kind)?;
        map.serialize_entry("apiVersion", &self.api_version)?;
        map.serialize_entry("metadata", &self.metadata)?;
        map.serialize_entry("items", &Items(self.items))?;
        map.end()
    }
}

struct Items<'a>(&'a [Object]);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|o| Item(o.value())))
    }
}

struct Item<'a>(&'a Value);

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => s.collect_map(
                map.iter()
                    .filter(|(k, _)| k.as_str() != "kind" && k.as_str() != "apiVersion"),
            ),
            other => other.serialize(s),
        }
    }
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// Reads a body up to [`MAX_BODY_BYTES`]; beyond it, upstream's 413.
pub(crate) async fn read_body(body: Body) -> Result<Bytes> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::request_entity_too_large(&format!("limit is {MAX_BODY_BYTES}")).into())
        }
        Err(e) => {
            Err(ApiError::bad_request(format!("unable to read the request body: {e}")).into())
        }
    }
}

/// Decodes a JSON, YAML or Kubernetes protobuf body (client-go's typed clients send protobuf
/// and do not fall back to JSON) into JSON. serde's recursion limit (128 levels) and the
/// protobuf decoder's depth limit bound nesting, so a hostile body is a 400, never a stack
/// overflow.
fn decode_bytes(headers: &HeaderMap, bytes: &[u8], kind: &str) -> Result<Value> {
    let media = negotiate::body_media_type(content_type(headers))
        .unwrap_or_else(|| "application/json".to_owned());
    let decoded = match media.as_str() {
        "application/json" => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        "application/yaml" => serde_yaml_ng::from_slice::<Value>(bytes).map_err(|e| e.to_string()),
        rkube_api::protobuf::MEDIA_TYPE => {
            rkube_api::protobuf::decode(bytes).map_err(|e| e.to_string())
        }
        _ => return Err(ApiError::unsupported_media_type(negotiate::BODY_MEDIA_TYPES).into()),
    };
    decoded.map_err(|e| unrecognized(kind, &e, bytes).into())
}

/// Upstream's 400 for a body that does not decode, with its 30-byte summary of the data.
fn unrecognized(kind: &str, err: &str, body: &[u8]) -> ApiError {
    const MAX: usize = 30;
    let summary = match body.first() {
        None => "<empty>".to_owned(),
        Some(b'{') => {
            let cut = &body[..body.len().min(MAX)];
            let more = if body.len() > MAX { " ..." } else { "" };
            format!("{}{more}", String::from_utf8_lossy(cut))
        }
        Some(_) => {
            let cut = &body[..body.len().min(MAX)];
            let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
            let more = if body.len() > MAX { " ..." } else { "" };
            format!("{hex}{more}")
        }
    };
    ApiError::bad_request(format!(
        "the object provided is unrecognized (must be of type {kind}): {err} ({summary})"
    ))
}

/// Upstream's `checkName`: the body's name must be the URL's (filled in when absent, as a named
/// create needs), and its namespace, when set, the URL's.
fn check_name(object: &mut Value, name: &str, namespace: &str) -> Result<()> {
    let Some(meta) = rkube_api::meta::metadata_mut(object) else {
        return Err(ApiError::bad_request("metadata must be an object").into());
    };
    let body_name = meta.get("name").and_then(Value::as_str).unwrap_or("");
    if body_name.is_empty() {
        meta.insert("name".into(), name.into());
    } else if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        ))
        .into());
    }
    let body_ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
    if !namespace.is_empty() && !body_ns.is_empty() && body_ns != namespace {
        return Err(ApiError::bad_request(format!(
            "the namespace of the object ({body_ns}) does not match the namespace on the URL ({namespace})"
        ))
        .into());
    }
    Ok(())
}
