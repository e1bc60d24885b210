//! The axum [`Router`]: every request lands in one dispatcher that parses its
//! [`RequestInfo`], answers discovery, or resolves the resource to its [`Rest`] and hands over
//! to the verb's handler. One dispatcher instead of a route per resource keeps the table in
//! `rkube_api::resources` the only list of what is served.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use http::Extensions;
use rkube_api::resources::{self, Resource};
use rkube_api::status::{ApiError, Reason, StatusDetails};
use rkube_api::user::UserInfo;
use rkube_registry::Rest;
use rkube_registry::rest::Scope;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{Predicate, SizeAbove};

use crate::admit::Admission;
use crate::discovery;
use crate::handlers::Target;
use crate::openapi;
use crate::options::Query;
use crate::request_info::{RequestInfo, query_pairs};
use crate::response::Failure;
use crate::review::ReviewRest;
use crate::watch::Uncompressed;

/// Finds who serves a resource (and subresource); `None` when nobody does (answered 404).
pub type Resolver =
    Arc<dyn Fn(&'static Resource, Option<&str>) -> Option<Arc<dyn Rest>> + Send + Sync>;

/// Upstream compresses API responses from 128 KiB on (`APIResponseCompression`); tower-http's
/// size predicate counts in `u16`, so its largest threshold (64 KiB) is the nearest.
const GZIP_THRESHOLD_BYTES: u16 = u16::MAX;

/// The API server's router over `resolver`.
pub fn router(resolver: Resolver) -> Router {
    let compress = SizeAbove::new(GZIP_THRESHOLD_BYTES).and(
        |_: http::StatusCode, _: http::Version, _: &http::HeaderMap, ext: &Extensions| {
            ext.get::<Uncompressed>().is_none()
        },
    );
    Router::new()
        .fallback(dispatch)
        .with_state(resolver)
        .layer(CompressionLayer::new().gzip(true).compress_when(compress))
}

/// Upstream's answer for a path nothing serves, as clients render it.
fn not_found() -> Failure {
    ApiError::new(
        404,
        Reason::NotFound,
        "the server could not find the requested resource",
        Some(StatusDetails::default()),
    )
    .into()
}

async fn dispatch(State(resolver): State<Resolver>, request: Request) -> Response {
    // Errors are encoded as the client asked (a protobuf client gets a protobuf Status).
    let accept = request
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match route(&resolver, request).await {
        Ok(response) => response,
        Err(failure) => failure.negotiated(accept.as_deref()),
    }
}

async fn route(resolver: &Resolver, request: Request) -> Result<Response, Failure> {
    let (mut parts, body) = request.into_parts();
    // Parsed once per request: the server's gate leaves its parse in the extensions.
    let info = match parts.extensions.remove::<RequestInfo>() {
        Some(info) => info,
        None => RequestInfo::parse(&parts.method, parts.uri.path(), parts.uri.query())
            .map_err(ApiError::internal)?,
    };
    if !info.is_resource_request {
        if matches!(parts.method, http::Method::GET | http::Method::HEAD)
            && let Some(answer) = discovery::serve(&info.path, &parts.headers)
        {
            return answer;
        }
        if matches!(parts.method, http::Method::GET | http::Method::HEAD)
            && let Some(answer) = openapi::serve(&info.path, parts.uri.query(), &parts.headers)
        {
            return answer;
        }
        return Err(not_found());
    }
    let mut target = resolve(resolver, info, parts.uri.query(), &parts.extensions)?;
    // Only writes are admitted and record their requester; reads (the hot path) skip both.
    if matches!(
        target.info.verb.as_str(),
        "create" | "update" | "patch" | "delete" | "deletecollection"
    ) {
        target.admission = Admission::for_request(&parts.extensions, &target);
        target.user = parts.extensions.get::<UserInfo>().cloned();
    }
    target.serve(parts.headers, body).await
}

/// Matches a resource request to the resource table and the registry.
fn resolve(
    resolver: &Resolver,
    info: RequestInfo,
    query: Option<&str>,
    extensions: &Extensions,
) -> Result<Target, Failure> {
    let resource = resources::lookup(&info.api_group, &info.api_version, &info.resource)
        .ok_or_else(not_found)?;
    let sub = match info.subresource.as_str() {
        "" => None,
        name => Some(resource.subresource(name).ok_or_else(not_found)?),
    };
    // The URL's shape must fit the resource's scope, as upstream's routes do: namespaced
    // resources are reached through a namespace except for all-namespace lists and watches;
    // cluster-scoped ones never are (a namespace's own path carries its name as namespace).
    let is_namespaces = info.api_group.is_empty() && info.resource == "namespaces";
    let shape_ok = if resource.namespaced {
        !info.namespace.is_empty() || matches!(info.verb.as_str(), "list" | "watch")
    } else {
        info.namespace.is_empty() || (is_namespaces && info.namespace == info.name)
    };
    if !shape_ok {
        return Err(not_found());
    }
    let verbs = sub.map_or(resource.verbs, |s| s.verbs);
    if !verbs.contains(&info.verb.as_str()) {
        return Err(ApiError::method_not_supported(resource.group_resource(), &info.verb).into());
    }
    let rest = ReviewRest::for_request(resource, extensions)
        .or_else(|| resolver(resource, sub.map(|s| s.name)))
        .ok_or_else(not_found)?;
    let scope = Scope {
        namespace: (resource.namespaced && !info.namespace.is_empty())
            .then(|| info.namespace.clone()),
    };
    Ok(Target {
        query: Query::new(query_pairs(query)),
        info,
        resource,
        sub,
        rest,
        scope,
        admission: None,
        user: None,
    })
}
