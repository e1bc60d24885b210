//! The audit tower layer and one request's audit record.
//!
//! [`AuditLayer`] wraps the gate (DESIGN §3: authentication -> audit -> impersonation ->
//! authorization). Per request it starts a [`RequestAudit`] (audit ID, arrival time, URI, verb,
//! source IPs, user agent, object reference) and puts it, with the request's
//! [`AuditAnnotations`], into the request's extensions. The gate reports to the record: the
//! authenticated user ([`RequestAudit::authenticated`]: the policy is evaluated for that user and
//! `RequestReceived` written), the impersonated user, and its decision as annotations. The
//! record then follows the response: `ResponseStarted` when a long-running response's headers
//! leave, `ResponseComplete` when its body ends (or is dropped), `Panic` when the handler
//! panics. A 401 is recorded as upstream's failed-authentication audit does: one
//! `ResponseStarted` event, evaluated without a user.
//!
//! Bodies are looked at only when the level needs them: the request body is copied (its
//! `Bytes` frames shared, not copied) at level Request and above, and at Metadata for creates
//! and updates, whose object reference is completed from the body's metadata as upstream does;
//! the response body is kept at RequestResponse, and otherwise only while it is small enough to
//! be a `Status` whose fields the event reports.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Request, Response, header};
use futures::FutureExt as _;
use hyper::body::{Frame, SizeHint};
use jiff::Timestamp;
use rkube_api::audit::AuditAnnotations;
use rkube_api::user::UserInfo;
use rkube_apiserver::request_info::RequestInfo;
use serde_json::Value;

use super::Backend;
use super::event::{AUDIT_ID_HEADER, Event, ObjectRef, ResponseStatus, ensure_audit_id};
use super::policy::{Level, RequestConfig, Stage};

/// A response body kept only to read a `Status` from it is dropped past this size.
const STATUS_LIMIT: usize = 16 * 1024;

/// User agents longer than this are cut, as upstream.
const MAX_USER_AGENT: usize = 1024;

/// The tower layer; see the module docs.
#[derive(Debug, Clone)]
pub struct AuditLayer {
    backend: Arc<Backend>,
}

impl AuditLayer {
    pub(super) fn new(backend: Arc<Backend>) -> AuditLayer {
        AuditLayer { backend }
    }
}

impl<S> tower::Layer<S> for AuditLayer {
    type Service = Audit<S>;

    fn layer(&self, inner: S) -> Audit<S> {
        Audit {
            inner,
            backend: self.backend.clone(),
        }
    }
}

/// The service [`AuditLayer`] wraps around the gate.
#[derive(Debug, Clone)]
pub struct Audit<S> {
    inner: S,
    backend: Arc<Backend>,
}

impl<S> tower::Service<Request<Body>> for Audit<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The clone that was polled ready serves this request; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let Some(audit) = RequestAudit::begin(&self.backend, &mut request) else {
            // No request info: the gate answers 500 for it, and upstream audits nothing.
            return Box::pin(ready.call(request));
        };
        let request = request.map(|body| {
            Body::new(RequestBody {
                inner: body,
                audit: audit.clone(),
            })
        });
        let response = ready.call(request);
        Box::pin(async move {
            let pending = Pending(Some(audit.clone()));
            let outcome = AssertUnwindSafe(response).catch_unwind().await;
            pending.disarm();
            match outcome {
                Ok(Ok(response)) => Ok(audit.respond(response)),
                Ok(Err(e)) => Err(e),
                Err(panic) => {
                    audit.panicked(panic_message(panic.as_ref()));
                    // As upstream, the panic goes on to the outer catcher (in `http`), which
                    // answers 500.
                    std::panic::resume_unwind(panic)
                }
            }
        })
    }
}

/// Writes `ResponseComplete` for a request whose handling was abandoned (the client went
/// away) before a response existed.
struct Pending(Option<RequestAudit>);

impl Pending {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(audit) = self.0.take() {
            audit.abandoned();
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Which credentials a request presented, for the message of a failed authentication.
#[derive(Debug, Clone, Copy, Default)]
struct Presented {
    basic: bool,
    bearer: bool,
    access_token: bool,
    x509: bool,
}

impl Presented {
    fn of(request: &Request<Body>) -> Presented {
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim();
        let scheme = authorization.split(' ').next().unwrap_or_default();
        let has_credentials = authorization.split(' ').nth(1).is_some();
        Presented {
            basic: scheme.eq_ignore_ascii_case("basic") && has_credentials,
            bearer: scheme.eq_ignore_ascii_case("bearer") && has_credentials,
            access_token: request.uri().query().is_some_and(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .any(|(k, v)| k == "access_token" && !v.trim().is_empty())
            }),
            x509: request
                .extensions()
                .get::<crate::auth::PeerCertificates>()
                .is_some(),
        }
    }

    /// Upstream's `getAuthMethods`.
    fn message(self) -> String {
        let methods: Vec<&str> = [
            (self.basic, "basic"),
            (self.bearer, "bearer"),
            (self.access_token, "access_token"),
            (self.x509, "x509"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if methods.is_empty() {
            "Authentication failed, no credentials provided".to_owned()
        } else {
            format!("Authentication failed, attempted: {}", methods.join(", "))
        }
    }
}

/// One request's audit record, shared by the layer, the gate (through the request's
/// extensions) and the request and response bodies.
#[derive(Debug, Clone)]
pub struct RequestAudit(Arc<Record>);

#[derive(Debug)]
struct Record {
    backend: Arc<Backend>,
    info: RequestInfo,
    annotations: AuditAnnotations,
    presented: Presented,
    request_content_type: Option<HeaderValue>,
    /// Set once the policy was evaluated (by the gate, or for a 401 by the layer).
    config: OnceLock<RequestConfig>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    event: Event,
    request_body: Vec<Bytes>,
    request_folded: bool,
    finished: bool,
}

impl RequestAudit {
    /// Starts the record of `request` and puts it and the request's annotations into its
    /// extensions; `None` when the request's path cannot be parsed.
    fn begin(backend: &Arc<Backend>, request: &mut Request<Body>) -> Option<RequestAudit> {
        let info = match request.extensions().get::<RequestInfo>() {
            Some(info) => info.clone(),
            None => {
                let uri = request.uri();
                let info = RequestInfo::parse(request.method(), uri.path(), uri.query()).ok()?;
                request.extensions_mut().insert(info.clone());
                info
            }
        };
        // Network requests arrive with one (`http` sets it); in-process ones get theirs here.
        let audit_id = ensure_audit_id(request.headers_mut());
        let audit_id = String::from_utf8_lossy(audit_id.as_bytes()).into_owned();
        let headers = request.headers();
        let mut event = Event::new(audit_id, Timestamp::now());
        event.request_uri = request.uri().path_and_query().map_or_else(
            || request.uri().path().to_owned(),
            |pq| pq.as_str().to_owned(),
        );
        event.verb = info.verb.clone();
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        event.source_ips = source_ips(headers, peer);
        event.user_agent = user_agent(headers);
        if info.is_resource_request {
            event.object_ref = Some(ObjectRef {
                resource: info.resource.clone(),
                namespace: info.namespace.clone(),
                name: info.name.clone(),
                api_group: info.api_group.clone(),
                api_version: info.api_version.clone(),
                subresource: info.subresource.clone(),
                ..ObjectRef::default()
            });
        }
        let annotations = AuditAnnotations::default();
        let audit = RequestAudit(Arc::new(Record {
            backend: backend.clone(),
            presented: Presented::of(request),
            request_content_type: headers.get(header::CONTENT_TYPE).cloned(),
            info,
            annotations: annotations.clone(),
            config: OnceLock::new(),
            state: Mutex::new(State {
                event,
                request_body: Vec::new(),
                request_folded: false,
                finished: false,
            }),
        }));
        request.extensions_mut().insert(annotations);
        request.extensions_mut().insert(audit.clone());
        Some(audit)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held leaves a usable event behind.
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn recorded(&self) -> Option<RequestConfig> {
        self.0
            .config
            .get()
            .copied()
            .filter(|c| c.level > Level::None)
    }

    /// The gate authenticated the request as `user`: the policy decides the level, and
    /// `RequestReceived` is written.
    pub fn authenticated(&self, user: &UserInfo) {
        let config = self.0.backend.policy.evaluate(Some(user), &self.0.info);
        if self.0.config.set(config).is_err() || config.level == Level::None {
            return;
        }
        let mut state = self.state();
        state.event.level = config.level;
        state.event.user = Some(user.clone());
        self.emit(&mut state, Stage::RequestReceived);
    }

    /// The request acts as `user` (impersonation).
    pub fn impersonated(&self, user: &UserInfo) {
        if self.recorded().is_some() {
            self.state().event.impersonated_user = Some(user.clone());
        }
    }

    /// Whether the request body is needed: for the request object (Request and above) or to
    /// complete the object reference of a create or update.
    fn wants_request_body(&self) -> bool {
        let Some(config) = self.recorded() else {
            return false;
        };
        let info = &self.0.info;
        info.is_resource_request
            && match config.level {
                Level::None => false,
                Level::Metadata => matches!(info.verb.as_str(), "create" | "update"),
                Level::Request | Level::RequestResponse => matches!(
                    info.verb.as_str(),
                    "create" | "update" | "patch" | "delete" | "deletecollection"
                ),
            }
    }

    /// Writes `stage` as the event stands (unless the policy omits it).
    fn emit(&self, state: &mut State, stage: Stage) {
        let Some(config) = self.recorded() else {
            return;
        };
        if config.omit_stages.contains(stage) {
            return;
        }
        let event = &mut state.event;
        event.stage = stage;
        event.stage_timestamp = if stage == Stage::RequestReceived {
            event.request_received_timestamp
        } else {
            Timestamp::now()
        };
        event.annotations = self.0.annotations.snapshot().into_iter().collect();
        let line = self.0.backend.format.line(event);
        self.0.backend.sink.send(line);
    }

    /// Follows `response`: answers the audit ID, writes `ResponseStarted` for long-running
    /// requests, and wraps the body to write the last stage when it ends.
    fn respond(&self, mut response: Response<Body>) -> Response<Body> {
        if !response.headers().contains_key(AUDIT_ID_HEADER) {
            let id = HeaderValue::from_str(&self.state().event.audit_id);
            if let Ok(id) = id {
                response.headers_mut().insert(AUDIT_ID_HEADER, id);
            }
        }
        let code = response.status().as_u16();
        // The gate refused the credentials before any user was known.
        let failed_authentication = self.0.config.get().is_none() && code == 401;
        if failed_authentication {
            let config = self.0.backend.policy.evaluate(None, &self.0.info);
            if self.0.config.set(config).is_ok() && config.level > Level::None {
                let mut state = self.state();
                state.event.level = config.level;
                state.event.response_status = Some(ResponseStatus {
                    message: self.0.presented.message(),
                    ..ResponseStatus::default()
                });
            }
        }
        let Some(config) = self.recorded() else {
            return response;
        };
        let long_running = is_long_running(&self.0.info);
        {
            let mut state = self.state();
            state
                .event
                .response_status
                .get_or_insert_with(ResponseStatus::default)
                .code = code;
            if long_running && !failed_authentication {
                self.emit(&mut state, Stage::ResponseStarted);
            }
        }
        let capture = if long_running {
            Capture::Nothing
        } else if config.level == Level::RequestResponse {
            Capture::All
        } else {
            Capture::Status
        };
        let (encoding, media) = (
            response.headers().get(header::CONTENT_ENCODING).cloned(),
            response.headers().get(header::CONTENT_TYPE).cloned(),
        );
        let audit = self.clone();
        response.map(|body| {
            Body::new(ResponseBody {
                inner: body,
                audit,
                capture,
                captured: Vec::new(),
                size: 0,
                media,
                encoding,
                last_stage: if failed_authentication {
                    Stage::ResponseStarted
                } else {
                    Stage::ResponseComplete
                },
                done: false,
            })
        })
    }

    /// Moves the request body, once, into the event: the object reference's missing parts
    /// for creates and updates, and the request object at Request and above.
    fn fold_request(&self, state: &mut State, config: RequestConfig) {
        if std::mem::replace(&mut state.request_folded, true) || state.request_body.is_empty() {
            return;
        }
        let body = join(std::mem::take(&mut state.request_body));
        let media = self
            .0
            .request_content_type
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json");
        let Some(object) = decode(media, &body) else {
            return;
        };
        if matches!(self.0.info.verb.as_str(), "create" | "update")
            && let Some(reference) = state.event.object_ref.as_mut()
        {
            complete_reference(reference, &object);
        }
        if config.level >= Level::Request {
            state.event.request_object = Some(trim(object, config.omit_managed_fields));
        }
    }

    /// The response body ended (or was dropped): writes the last stage.
    fn finish(&self, stage: Stage, body: Option<(Bytes, Option<&str>)>) {
        let Some(config) = self.recorded() else {
            return;
        };
        let mut state = self.state();
        if std::mem::replace(&mut state.finished, true) {
            return;
        }
        self.fold_request(&mut state, config);
        if let Some((bytes, media)) = body
            && let Some(object) = decode(media.unwrap_or("application/json"), &bytes)
        {
            if let Some(status) = ResponseStatus::from_status_object(&object) {
                let code = state.event.response_status.as_ref().map_or(0, |s| s.code);
                state.event.response_status = Some(ResponseStatus { code, ..status });
            }
            if config.level == Level::RequestResponse && object.get("kind").is_some() {
                state.event.response_object = Some(trim(object, config.omit_managed_fields));
            }
        }
        self.emit(&mut state, stage);
    }

    /// The handler panicked: writes `Panic` with upstream's 500 status.
    fn panicked(&self, message: String) {
        let Some(config) = self.recorded() else {
            return;
        };
        let mut state = self.state();
        if std::mem::replace(&mut state.finished, true) {
            return;
        }
        self.fold_request(&mut state, config);
        state.event.response_status = Some(ResponseStatus {
            status: "Failure".to_owned(),
            reason: "InternalError".to_owned(),
            message: format!("APIServer panic'd: {message}"),
            ..ResponseStatus::code(500)
        });
        self.emit(&mut state, Stage::Panic);
    }

    /// Handling stopped before a response existed: upstream's "Connection closed early".
    fn abandoned(&self) {
        let Some(config) = self.recorded() else {
            return;
        };
        let mut state = self.state();
        if std::mem::replace(&mut state.finished, true) {
            return;
        }
        if state.event.response_status.is_none() {
            state.event.response_status = Some(ResponseStatus {
                status: "Success".to_owned(),
                message: "Connection closed early".to_owned(),
                ..ResponseStatus::code(200)
            });
            if is_long_running(&self.0.info) {
                self.emit(&mut state, Stage::ResponseStarted);
            }
        }
        self.fold_request(&mut state, config);
        self.emit(&mut state, Stage::ResponseComplete);
    }
}

/// Upstream's long-running requests: watch and proxy verbs; attach, exec, log, port-forward
/// and proxy subresources.
fn is_long_running(info: &RequestInfo) -> bool {
    matches!(info.verb.as_str(), "watch" | "proxy")
        || matches!(
            info.subresource.as_str(),
            "attach" | "exec" | "proxy" | "log" | "portforward"
        )
}

/// Upstream's `SourceIPs`: the `X-Forwarded-For` chain, `X-Real-Ip` unless already in it, then
/// the peer unless it is already last.
fn source_ips(headers: &HeaderMap, peer: Option<IpAddr>) -> Vec<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let mut ips: Vec<IpAddr> = header("x-forwarded-for")
        .split(',')
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    if let Ok(real) = header("x-real-ip").trim().parse::<IpAddr>()
        && !ips.contains(&real)
    {
        ips.push(real);
    }
    if let Some(peer) = peer.map(|ip| ip.to_canonical())
        && ips.last() != Some(&peer)
    {
        ips.push(peer);
    }
    ips.iter().map(IpAddr::to_string).collect()
}

fn user_agent(headers: &HeaderMap) -> String {
    let agent = headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    if agent.len() <= MAX_USER_AGENT {
        return agent;
    }
    let mut cut = MAX_USER_AGENT;
    while !agent.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...TRUNCATED", &agent[..cut])
}

fn join(frames: Vec<Bytes>) -> Bytes {
    match <[Bytes; 1]>::try_from(frames) {
        Ok([only]) => only,
        Err(frames) => frames.concat().into(),
    }
}

/// A body as JSON, by its media type: JSON (and the JSON patch types), YAML (and apply
/// patches), or Kubernetes protobuf; `None` for anything else or what does not decode.
fn decode(media: &str, body: &[u8]) -> Option<Value> {
    let media = media
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media == rkube_api::protobuf::MEDIA_TYPE {
        rkube_api::protobuf::decode(body).ok()
    } else if media == "application/yaml" || media.ends_with("+yaml") {
        serde_yaml_ng::from_slice(body).ok()
    } else if media == "application/json" || media.ends_with("+json") {
        serde_json::from_slice(body).ok()
    } else {
        None
    }
}

/// Fills what the URL left out of the object reference from the body's metadata, as
/// upstream's `LogRequestObject`.
fn complete_reference(reference: &mut ObjectRef, object: &Value) {
    let Some(meta) = object.get("metadata") else {
        return;
    };
    let field = |key: &str| meta.get(key).and_then(Value::as_str).unwrap_or_default();
    for (slot, key) in [
        (&mut reference.namespace, "namespace"),
        (&mut reference.name, "name"),
        (&mut reference.uid, "uid"),
        (&mut reference.resource_version, "resourceVersion"),
    ] {
        if slot.is_empty() {
            field(key).clone_into(slot);
        }
    }
}

/// `object` without `managedFields` (its own, its items', a Table's rows') when the policy
/// says so.
fn trim(mut object: Value, omit_managed_fields: bool) -> Value {
    fn strip(object: &mut Value) {
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    }
    if !omit_managed_fields {
        return object;
    }
    strip(&mut object);
    if let Some(items) = object.get_mut("items").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(strip);
    }
    if let Some(rows) = object.get_mut("rows").and_then(Value::as_array_mut) {
        for row in rows {
            if let Some(inner) = row.get_mut("object") {
                strip(inner);
            }
        }
    }
    object
}

/// A gzip-compressed body (the API router compresses large responses), inflated.
fn gunzip(compressed: Bytes) -> Option<Bytes> {
    use http_body_util::{BodyExt as _, Full};
    use tower::ServiceExt as _;
    let inflate =
        tower_http::decompression::Decompression::new(tower::service_fn(move |_: Request<()>| {
            let mut response = Response::new(Full::new(compressed.clone()));
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            std::future::ready(Ok::<_, std::convert::Infallible>(response))
        }));
    // Everything is in memory: both futures complete on their first poll.
    let response = inflate.oneshot(Request::new(())).now_or_never()?.ok()?;
    let body = response.into_body().collect().now_or_never()?.ok()?;
    Some(body.to_bytes())
}

/// The request body, copied into the record when the level needs it.
struct RequestBody {
    inner: Body,
    audit: RequestAudit,
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && self.audit.wants_request_body()
        {
            self.audit.state().request_body.push(data.clone());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What of a response body is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    /// Long-running responses (watch frames, logs, streams).
    Nothing,
    /// Small bodies, which may be a `Status`.
    Status,
    /// The whole body (RequestResponse).
    All,
}

/// The response body, watched to write the last stage when it ends or is dropped.
struct ResponseBody {
    inner: Body,
    audit: RequestAudit,
    capture: Capture,
    captured: Vec<Bytes>,
    size: usize,
    media: Option<HeaderValue>,
    encoding: Option<HeaderValue>,
    last_stage: Stage,
    done: bool,
}

impl ResponseBody {
    fn keep(&mut self, data: &Bytes) {
        if self.capture == Capture::Nothing {
            return;
        }
        self.size += data.len();
        if self.capture == Capture::Status && self.size > STATUS_LIMIT {
            self.capture = Capture::Nothing;
            self.captured = Vec::new();
            return;
        }
        self.captured.push(data.clone());
    }

    fn finish(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let mut body = join(std::mem::take(&mut self.captured));
        let gzipped = self
            .encoding
            .as_ref()
            .is_some_and(|e| e.as_bytes().eq_ignore_ascii_case(b"gzip"));
        if gzipped {
            body = gunzip(body).unwrap_or_default();
        }
        // Only a body that may be a Status is decoded at the lower levels.
        let wanted = match self.capture {
            Capture::Nothing => false,
            Capture::Status => body.windows(6).any(|w| w == b"Status"),
            Capture::All => true,
        };
        let media = self.media.as_ref().and_then(|v| v.to_str().ok());
        self.audit
            .finish(self.last_stage, wanted.then_some((body, media)));
    }
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.keep(data);
                }
            }
            Poll::Ready(None | Some(Err(_))) => self.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ips_follow_upstream() {
        let mut headers = HeaderMap::new();
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(source_ips(&headers, Some(peer)), ["10.0.0.9"]);
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, junk,5.6.7.8"),
        );
        headers.insert("x-real-ip", HeaderValue::from_static("1.2.3.4"));
        assert_eq!(
            source_ips(&headers, Some(peer)),
            ["1.2.3.4", "5.6.7.8", "10.0.0.9"]
        );
        headers.insert("x-real-ip", HeaderValue::from_static("9.9.9.9"));
        // The peer is not repeated when the chain already ends with it.
        assert_eq!(
            source_ips(&headers, Some("9.9.9.9".parse().unwrap())),
            ["1.2.3.4", "5.6.7.8", "9.9.9.9"]
        );
        // An IPv4 peer on a dual-stack socket is shown as IPv4, as Go shows it.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(source_ips(&HeaderMap::new(), Some(mapped)), ["127.0.0.1"]);
    }

    #[test]
    fn presented_credentials_name_the_failed_methods() {
        let request = |auth: Option<&str>, uri: &str| {
            let mut r = Request::builder().uri(uri);
            if let Some(auth) = auth {
                r = r.header(header::AUTHORIZATION, auth);
            }
            Presented::of(&r.body(Body::empty()).unwrap()).message()
        };
        assert_eq!(
            request(None, "/api"),
            "Authentication failed, no credentials provided"
        );
        assert_eq!(
            request(Some("Bearer abc"), "/api?access_token=x"),
            "Authentication failed, attempted: bearer, access_token"
        );
        assert_eq!(
            request(Some("basic dXNlcjpwYXNz"), "/api"),
            "Authentication failed, attempted: basic"
        );
        assert_eq!(
            request(Some("Bearer"), "/api"),
            "Authentication failed, no credentials provided"
        );
    }

    #[test]
    fn bodies_decode_by_media_type_and_lose_managed_fields() {
        let object = serde_json::json!({
            "kind": "ConfigMapList",
            "metadata": {"managedFields": [1]},
            "items": [{"metadata": {"name": "a", "managedFields": [2]}}],
        });
        let json = serde_json::to_vec(&object).unwrap();
        assert_eq!(
            decode("application/json; charset=utf-8", &json),
            Some(object.clone())
        );
        assert_eq!(
            decode("application/merge-patch+json", &json),
            Some(object.clone())
        );
        assert_eq!(
            decode("application/apply-patch+yaml", b"kind: ConfigMap\n"),
            Some(serde_json::json!({"kind": "ConfigMap"}))
        );
        assert_eq!(decode("text/plain", b"ok"), None);
        assert_eq!(decode("application/json", b"{"), None);
        assert_eq!(
            trim(object.clone(), true),
            serde_json::json!({"kind": "ConfigMapList", "metadata": {},
                "items": [{"metadata": {"name": "a"}}]})
        );
        assert_eq!(trim(object.clone(), false), object);
    }

    #[test]
    fn gzip_bodies_are_inflated() {
        // "hello\n" gzip-compressed.
        let compressed: &[u8] = &[
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9,
            0xc9, 0xe7, 0x02, 0x00, 0x20, 0x30, 0x3a, 0x36, 0x06, 0x00, 0x00, 0x00,
        ];
        assert_eq!(
            gunzip(Bytes::from_static(compressed)).as_deref(),
            Some(&b"hello\n"[..])
        );
        assert_eq!(gunzip(Bytes::from_static(b"not gzip")), None);
    }

    #[test]
    fn long_user_agents_are_cut() {
        let mut headers = HeaderMap::new();
        let long = "a".repeat(MAX_USER_AGENT + 10);
        headers.insert(header::USER_AGENT, HeaderValue::from_str(&long).unwrap());
        let agent = user_agent(&headers);
        assert_eq!(agent.len(), MAX_USER_AGENT + "...TRUNCATED".len());
        assert!(agent.ends_with("a...TRUNCATED"));
    }
}
