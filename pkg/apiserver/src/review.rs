//! The review resources (`tokenreviews`, `selfsubjectreviews`, the four access reviews):
//! never stored, answered by `rkube-auth`'s [`Reviewer`] for the request's user. The server
//! hands the reviewer in as a request extension ([`reviews_layer`]); the router then serves
//! these resources through [`ReviewRest`], built per request around the caller, so that they
//! go through the ordinary create path (decoding, negotiation, admission).

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::Request;
use http::Extensions;
use rkube_api::resources::Resource;
use rkube_auth::UserInfo;
use rkube_auth::review::Reviewer;
use rkube_registry::Rest;
use rkube_registry::rest::{Answer, CreateOptions, Result, Scope};
use rkube_storage::Object;
use serde_json::Value;
use tower::util::MapRequestLayer;

/// A layer putting `reviewer` on every request, for the review resources.
pub fn reviews_layer(
    reviewer: Arc<Reviewer>,
) -> MapRequestLayer<impl Fn(Request) -> Request + Clone> {
    MapRequestLayer::new(move |mut request: Request| {
        request.extensions_mut().insert(reviewer.clone());
        request
    })
}

/// A review resource as one request's caller sees it.
#[derive(Debug)]
pub(crate) struct ReviewRest {
    resource: &'static Resource,
    reviewer: Arc<Reviewer>,
    user: UserInfo,
}

impl ReviewRest {
    /// The handler of `resource` when it is a review resource and the server installed a
    /// reviewer.
    pub(crate) fn for_request(
        resource: &'static Resource,
        extensions: &Extensions,
    ) -> Option<Arc<dyn Rest>> {
        if !Reviewer::serves(resource.group, resource.plural) {
            return None;
        }
        let reviewer = extensions.get::<Arc<Reviewer>>()?.clone();
        let user = extensions
            .get::<UserInfo>()
            .cloned()
            .unwrap_or_else(UserInfo::anonymous);
        Some(Arc::new(ReviewRest {
            resource,
            reviewer,
            user,
        }))
    }
}

#[async_trait]
impl Rest for ReviewRest {
    fn resource(&self) -> &'static Resource {
        self.resource
    }

    async fn create(
        &self,
        scope: &Scope,
        object: Value,
        _options: &CreateOptions,
    ) -> Result<Answer<Object>> {
        let namespace = scope.namespace.as_deref().unwrap_or_default();
        let answer = self
            .reviewer
            .review(&self.user, self.resource.plural, namespace, object)
            .await?;
        let key = format!("/{}/{}", self.resource.group, self.resource.plural);
        let answer = Object::new(key, answer, 0).map_err(rkube_api::status::ApiError::internal)?;
        Ok(Answer::new(answer))
    }
}
