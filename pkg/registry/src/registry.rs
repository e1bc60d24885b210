//! [`Registry`]: every stored resource's [`Rest`] (and its `status` and `scale` subresources)
//! over one store, with one watch cache per storage prefix.

use std::collections::HashMap;
use std::sync::Arc;

use rkube_api::resources::{self, Resource};
use rkube_storage::cacher::CacherConfig;
use rkube_storage::{Cacher, Store};

use crate::generic::{FinalizeRest, GenericRest, StatusRest};
use crate::kinds::strategy_for;
use crate::rest::Rest;
use crate::scale::ScaleRest;
use crate::service_ips::{ServiceCidr, ServiceRest};

/// The REST handlers of one resource.
struct Entry {
    main: Arc<dyn Rest>,
    status: Option<Arc<dyn Rest>>,
    scale: Option<Arc<dyn Rest>>,
    finalize: Option<Arc<dyn Rest>>,
}

/// Every stored built-in resource, ready to serve. See the [module docs](self).
pub struct Registry {
    entries: HashMap<(&'static str, &'static str, &'static str), Entry>,
    caches: Vec<Arc<Cacher>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("resources", &self.entries.len())
            .field("caches", &self.caches.len())
            .finish()
    }
}

impl Registry {
    /// The registry over `store` (the object store, usually a `KvStore`). Resources served
    /// from kube-apiserver's watch cache get a [`Cacher`], one per storage prefix, shared by the
    /// versions stored under it (autoscaling v1 and v2). Must run inside a tokio runtime (the
    /// caches start their reflectors).
    pub fn new(store: Arc<dyn Store>) -> Registry {
        let mut caches: HashMap<&'static str, Arc<Cacher>> = HashMap::new();
        let mut entries = HashMap::new();
        let mut generic: HashMap<(&'static str, &'static str), Arc<GenericRest>> = HashMap::new();
        for resource in resources::all() {
            let Some(prefix) = resource.storage_prefix else {
                continue;
            };
            let backing: Arc<dyn Store> = if resource.watch_cache {
                caches
                    .entry(prefix)
                    .or_insert_with(|| {
                        Cacher::new(
                            store.clone(),
                            format!("/registry/{prefix}/"),
                            CacherConfig::default(),
                        )
                    })
                    .clone()
            } else {
                store.clone()
            };
            let Some(rest) = GenericRest::new(resource, backing, strategy_for(resource)) else {
                continue;
            };
            let rest = Arc::new(rest);
            generic.insert((resource.group, resource.plural), rest.clone());
            let status = resource
                .subresource("status")
                .map(|_| Arc::new(StatusRest::new(rest.clone())) as Arc<dyn Rest>);
            let scale = resource
                .subresource("scale")
                .and_then(|_| ScaleRest::new(rest.clone()))
                .map(|s| Arc::new(s) as Arc<dyn Rest>);
            let finalize = resource
                .subresource("finalize")
                .map(|_| Arc::new(FinalizeRest::new(rest.clone())) as Arc<dyn Rest>);
            entries.insert(
                (resource.group, resource.version, resource.plural),
                Entry {
                    main: rest,
                    status,
                    scale,
                    finalize,
                },
            );
        }
        // Services allocate their ClusterIPs as IPAddress objects.
        if let (Some(services), Some(addresses)) = (
            generic.get(&("", "services")),
            generic.get(&("networking.k8s.io", "ipaddresses")),
        ) && let Some(entry) = entries.get_mut(&("", "v1", "services"))
        {
            entry.main = Arc::new(ServiceRest::new(
                services.clone(),
                addresses.clone(),
                ServiceCidr::DEFAULT,
            ));
        }
        Registry {
            entries,
            caches: caches.into_values().collect(),
        }
    }

    /// Resolves once every watch cache holds its first complete list.
    pub async fn ready(&self) {
        futures::future::join_all(self.caches.iter().map(|c| c.ready())).await;
    }

    /// The handler of `resource` or one of its subresources; `None` for what is not served
    /// (unstored resources, subresources such as `log` or `exec` that other layers serve).
    pub fn rest(
        &self,
        resource: &'static Resource,
        subresource: Option<&str>,
    ) -> Option<Arc<dyn Rest>> {
        let entry = self
            .entries
            .get(&(resource.group, resource.version, resource.plural))?;
        match subresource {
            None => Some(entry.main.clone()),
            Some("status") => entry.status.clone(),
            Some("scale") => entry.scale.clone(),
            Some("finalize") => entry.finalize.clone(),
            Some(_) => None,
        }
    }
}
