//! The admission of one write request: [`Admission`] turns the request into upstream's
//! admission attributes and hands the registry its mutating and validating callbacks
//! ([`AdmissionHooks`]), collecting the plugins' warnings for the response.
//!
//! The chain, the caller's identity and the audit annotations arrive as request extensions (an
//! `Arc<Chain>`, a [`UserInfo`] and an `AuditAnnotations`) put there by the server; without a chain nothing is admitted (tests that
//! serve the router alone).

use std::sync::Arc;

use futures::FutureExt as _;
use http::Extensions;
use rkube_admission::{Attributes, Chain, Gvn, Operation, UserInfo, Warnings};
use rkube_registry::rest::AdmissionHooks;

use crate::handlers::Target;

/// The admission of one request.
pub(crate) struct Admission {
    chain: Arc<Chain>,
    base: Attributes,
    warnings: Warnings,
}

impl Admission {
    /// The admission of `target`'s request, when the server installed a chain.
    pub(crate) fn for_request(extensions: &Extensions, target: &Target) -> Option<Admission> {
        let chain = extensions.get::<Arc<Chain>>()?.clone();
        let user = extensions.get::<UserInfo>().cloned().unwrap_or_default();
        let (group, version, kind) = target.body_gvk();
        let resource = target.resource;
        let base = Attributes {
            kind: Gvn::new(group, version, kind),
            resource: Gvn::new(resource.group, resource.version, resource.plural),
            subresource: target.sub.map(|s| s.name.to_owned()).unwrap_or_default(),
            namespace: target.info.namespace.clone(),
            name: target.info.name.clone(),
            user,
            audit_annotations: extensions
                .get::<rkube_api::audit::AuditAnnotations>()
                .cloned()
                .unwrap_or_default(),
            ..Attributes::default()
        };
        Some(Admission {
            chain,
            base,
            warnings: Warnings::default(),
        })
    }

    /// The registry callbacks of an `operation` (`dry_run`: `dryRun=All`). A PUT or apply
    /// that finds nothing to update creates, and is admitted as a create.
    pub(crate) fn hooks(&self, operation: Operation, dry_run: bool) -> AdmissionHooks {
        let mut base = self.base.clone();
        base.operation = Some(operation);
        base.dry_run = dry_run;
        let attributes = move |object: Option<serde_json::Value>,
                               old: Option<serde_json::Value>| {
            let mut a = base.clone();
            if old.is_none() && operation == Operation::Update {
                a.operation = Some(Operation::Create);
            }
            if a.name.is_empty()
                && let Some(name) = object
                    .as_ref()
                    .or(old.as_ref())
                    .and_then(|o| rkube_api::meta::name(o))
            {
                a.name = name.to_owned();
            }
            a.object = object;
            a.old_object = old;
            a
        };
        let attributes = Arc::new(attributes);
        let (chain, warnings, attrs) = (
            self.chain.clone(),
            self.warnings.clone(),
            attributes.clone(),
        );
        let mutate = move |object, old| {
            let (chain, warnings) = (chain.clone(), warnings.clone());
            let mut a = attrs(Some(object), old);
            async move {
                chain.admit(&mut a, &warnings).await?;
                Ok(a.object.unwrap_or_default())
            }
            .boxed()
        };
        let (chain, warnings) = (self.chain.clone(), self.warnings.clone());
        let validate = move |object, old| {
            let (chain, warnings) = (chain.clone(), warnings.clone());
            let a = attributes(object, old);
            async move { chain.validate(&a, &warnings).await }.boxed()
        };
        AdmissionHooks {
            mutate: Some(Arc::new(mutate)),
            validate: Some(Arc::new(validate)),
        }
    }

    /// The warnings the plugins gave so far.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.warnings.take()
    }
}
