//! Admission wiring: the [`Cluster`] state admission plugins read, served by the registry
//! (lists from its watch caches), the server's authorizer as the certificate plugins ask it
//! ([`AuthorizerGate`]), and the layer that gives every API request the chain and the caller as
//! admission sees them.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::Request;
use rkube_admission::{Access, Authorize, Chain, Cluster, ResourceRef, Result, UserInfo};
use rkube_api::resources::{self, Resource};
use rkube_api::status::{ApiError, Reason};
use rkube_registry::rest::{GetOptions, ListOptions, Scope, UpdateOptions};
use rkube_registry::{Registry, Rest};
use serde_json::Value;
use tower::util::MapRequestLayer;

/// The cluster as the registry stores it.
#[derive(Debug)]
pub struct RegistryCluster {
    registry: Arc<Registry>,
}

impl RegistryCluster {
    /// Admission's view of `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        RegistryCluster { registry }
    }

    /// The handler of `(group, plural)` at its preferred version.
    #[allow(clippy::result_large_err)] // the `Cluster` contract's error, passed on as is
    fn rest(&self, (group, plural): ResourceRef<'_>, sub: Option<&str>) -> Result<Arc<dyn Rest>> {
        let preferred = resources::api_group(group)
            .and_then(|g| resources::lookup(group, g.preferred_version(), plural));
        let resource: Option<&'static Resource> = preferred.or_else(|| {
            resources::all()
                .iter()
                .find(|r| r.group == group && r.plural == plural)
        });
        resource
            .and_then(|r| self.registry.rest(r, sub))
            .ok_or_else(|| ApiError::internal(format!("admission: {plural}.{group} is not served")))
    }
}

fn scope(namespace: &str) -> Scope {
    Scope {
        namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
    }
}

#[async_trait]
impl Cluster for RegistryCluster {
    async fn get(
        &self,
        resource: ResourceRef<'_>,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>> {
        let rest = self.rest(resource, None)?;
        match rest
            .get(&scope(namespace), name, &GetOptions::default())
            .await
        {
            Ok(object) => Ok(Some(object.value().clone())),
            Err(e) if e.reason() == Reason::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, resource: ResourceRef<'_>, namespace: Option<&str>) -> Result<Vec<Value>> {
        let rest = self.rest(resource, None)?;
        // resourceVersion "0": served from the watch cache.
        let options = ListOptions {
            resource_version: "0".into(),
            ..ListOptions::default()
        };
        let scope = Scope {
            namespace: namespace.map(str::to_owned),
        };
        let list = rest.list(&scope, &options).await?;
        Ok(list.items.iter().map(|o| o.value().clone()).collect())
    }

    async fn update_status(&self, resource: ResourceRef<'_>, object: Value) -> Result<Value> {
        let rest = self.rest(resource, Some("status"))?;
        let namespace = rkube_api::meta::namespace(&object).unwrap_or("").to_owned();
        let name = rkube_api::meta::name(&object).unwrap_or("").to_owned();
        let answer = rest
            .update(&scope(&namespace), &name, object, &UpdateOptions::default())
            .await?;
        Ok(answer.value.0.value().clone())
    }
}

/// The server's authorizer, as admission plugins ask it.
#[derive(Debug)]
pub struct AuthorizerGate(pub Arc<dyn rkube_auth::authz::Authorizer>);

#[async_trait]
impl Authorize for AuthorizerGate {
    async fn allowed(&self, user: &UserInfo, access: &Access<'_>) -> bool {
        let attributes = rkube_auth::authz::Attributes::resource(
            user,
            access.verb,
            access.group,
            access.resource,
            "",
            access.namespace,
            access.name,
        );
        self.0.authorize(&attributes).allowed()
    }
}

/// Puts `chain` on every request of `router`; admission reads the caller from the
/// `UserInfo` the gate put there.
pub fn install(router: axum::Router, chain: Arc<Chain>) -> axum::Router {
    router.layer(MapRequestLayer::new(move |mut request: Request| {
        request.extensions_mut().insert(chain.clone());
        request
    }))
}
