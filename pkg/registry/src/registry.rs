//! [`Registry`]: every stored resource's [`Rest`] and its subresources over one store, with one
//! watch cache per storage prefix.

use std::collections::HashMap;
use std::sync::Arc;

use rkube_api::resources::{self, Resource};
use rkube_storage::cacher::CacherConfig;
use rkube_storage::{Cacher, Store};

use crate::conversion::ConvertingStore;
use crate::generic::{FinalizeRest, GenericRest, Mode, StatusRest};
use crate::kinds::strategy_for;
use crate::rest::Rest;
use crate::scale::ScaleRest;
use crate::service_ips::{ServiceCidr, ServiceRest};
use crate::subresources::binding::BindingRest;
use crate::subresources::connect::ConnectRest;
use crate::subresources::eviction::EvictionRest;
use crate::subresources::token::{TokenRest, TokenSigner};

/// The REST handlers of one resource: the resource itself and its subresources by name.
struct Entry {
    main: Arc<dyn Rest>,
    subresources: HashMap<&'static str, Arc<dyn Rest>>,
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
    /// The registry over `store` (the object store, usually a `KvStore`), without a token
    /// signer: `serviceaccounts/token` is then not served. Resources served from
    /// kube-apiserver's watch cache get a [`Cacher`], one per storage prefix, shared by the
    /// versions stored under it (autoscaling v1 and v2). Must run inside a tokio runtime (the
    /// caches start their reflectors).
    pub fn new(store: Arc<dyn Store>) -> Registry {
        Registry::build(store, None)
    }

    /// [`Registry::new`] with `signer` signing the service account tokens of
    /// `serviceaccounts/token` (the key the token authenticator verifies with).
    pub fn with_token_signer(store: Arc<dyn Store>, signer: Arc<dyn TokenSigner>) -> Registry {
        Registry::build(store, Some(signer))
    }

    fn build(store: Arc<dyn Store>, signer: Option<Arc<dyn TokenSigner>>) -> Registry {
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
            // Versions that share a prefix each see the stored objects in their own version.
            let backing: Arc<dyn Store> = if resource.shares_storage() {
                Arc::new(ConvertingStore::new(backing, resource))
            } else {
                backing
            };
            let Some(rest) = GenericRest::new(resource, backing, strategy_for(resource)) else {
                continue;
            };
            let rest = Arc::new(rest);
            generic.insert((resource.group, resource.plural), rest.clone());
            let mut subresources: HashMap<&'static str, Arc<dyn Rest>> = HashMap::new();
            for sub in resource.subresources {
                let part = |mode| Arc::new(StatusRest::part(rest.clone(), mode)) as Arc<dyn Rest>;
                let served = match sub.name {
                    "status" => Some(Arc::new(StatusRest::new(rest.clone())) as Arc<dyn Rest>),
                    "scale" => ScaleRest::new(rest.clone()).map(|s| Arc::new(s) as Arc<dyn Rest>),
                    "finalize" => Some(Arc::new(FinalizeRest::new(rest.clone())) as Arc<dyn Rest>),
                    "ephemeralcontainers" => Some(part(Mode::EphemeralContainers)),
                    "resize" => Some(part(Mode::Resize)),
                    "approval" => Some(part(Mode::Approval)),
                    // Served below, once the resources they read are all built.
                    _ => None,
                };
                if let Some(served) = served {
                    subresources.insert(sub.name, served);
                }
            }
            entries.insert(
                (resource.group, resource.version, resource.plural),
                Entry {
                    main: rest,
                    subresources,
                },
            );
        }
        let core = |plural| generic.get(&("", plural)).cloned();
        // Services allocate their ClusterIPs as IPAddress objects.
        if let (Some(services), Some(addresses)) = (
            core("services"),
            generic.get(&("networking.k8s.io", "ipaddresses")),
        ) && let Some(entry) = entries.get_mut(&("", "v1", "services"))
        {
            entry.main = Arc::new(ServiceRest::new(
                services,
                addresses.clone(),
                ServiceCidr::DEFAULT,
            ));
        }
        // Subresources that read other resources than their own.
        let mut add = |plural: &'static str, sub: &'static str, rest: Arc<dyn Rest>| {
            if let Some(entry) = entries.get_mut(&("", "v1", plural)) {
                entry.subresources.insert(sub, rest);
            }
        };
        if let (Some(pods), Some(nodes)) = (core("pods"), core("nodes")) {
            add(
                "pods",
                "binding",
                Arc::new(BindingRest::new(pods.served(), pods.clone())),
            );
            if let Some(budgets) = generic.get(&("policy", "poddisruptionbudgets")) {
                add(
                    "pods",
                    "eviction",
                    Arc::new(EvictionRest::new(pods.clone(), budgets.clone())),
                );
            }
            for (parent, subs) in [
                (
                    pods.clone(),
                    &["log", "exec", "attach", "portforward", "proxy"][..],
                ),
                (nodes.clone(), &["proxy"][..]),
            ]
            .into_iter()
            .chain(core("services").map(|s| (s, &["proxy"][..])))
            {
                for sub in subs {
                    if let Some(rest) = ConnectRest::new(parent.clone(), sub, nodes.clone()) {
                        add(parent.served().plural, sub, Arc::new(rest));
                    }
                }
            }
            if let Some(bindings) = resources::lookup("", "v1", "bindings") {
                entries.insert(
                    ("", "v1", "bindings"),
                    Entry {
                        main: Arc::new(BindingRest::new(bindings, pods.clone())),
                        subresources: HashMap::new(),
                    },
                );
            }
            if let (Some(signer), Some(accounts), Some(secrets)) =
                (signer, core("serviceaccounts"), core("secrets"))
                && let Some(entry) = entries.get_mut(&("", "v1", "serviceaccounts"))
            {
                entry.subresources.insert(
                    "token",
                    Arc::new(TokenRest::new(accounts, pods, nodes, secrets, signer)),
                );
            }
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

    /// The handler of `resource` or one of its subresources; `None` for what is not served.
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
            Some(sub) => entry.subresources.get(sub).cloned(),
        }
    }
}
