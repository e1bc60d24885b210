//! ClusterIP allocation for Services, as kube-apiserver 1.33+ does it (KEP-1880): every
//! allocated address is an `IPAddress` object (`networking.k8s.io/v1`) named by the address,
//! whose `parentRef` names the Service. Creating that object is the allocation: the store's
//! create-if-absent makes two Services racing for one address see exactly one winner, with no
//! separate bitmap to keep consistent across restarts or API servers.
//!
//! [`ServiceRest`] wraps the services' [`GenericRest`]: it allocates before the Service is
//! stored (and releases if storing fails), and releases when the Service is gone.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use async_trait::async_trait;
use rkube_api::field::{FieldError, Path};
use rkube_api::resources::Resource;
use rkube_api::status::{ApiError, Reason};
use rkube_storage::{Object, ObjectList, WatchStream};
use serde_json::{Value, json};

use crate::generic::GenericRest;
use crate::rest::{
    Answer, CreateOptions, DeleteOptions, Deleted, GetOptions, ListOptions, PatchOptions,
    PatchType, Result, Scope, UpdateOptions,
};
use crate::{Rest, kinds};

/// An IPv4 service CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCidr {
    network: Ipv4Addr,
    prefix: u8,
}

impl ServiceCidr {
    /// k3s's default `--service-cidr`.
    pub const DEFAULT: ServiceCidr = ServiceCidr {
        network: Ipv4Addr::new(10, 43, 0, 0),
        prefix: 16,
    };

    fn size(&self) -> u32 {
        1u32 << (32 - u32::from(self.prefix))
    }

    fn base(&self) -> u32 {
        u32::from(self.network)
    }

    /// Whether `ip` is an address Services may use: inside the range, neither the network
    /// address nor the broadcast address.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let offset = u32::from(ip).wrapping_sub(self.base());
        offset > 0 && offset < self.size() - 1
    }

    /// The first usable address, reserved for the `kubernetes` Service.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 1)
    }

    /// A random usable address other than the first (upstream draws from the whole range at
    /// random; the first belongs to the `kubernetes` Service).
    fn random(&self) -> Ipv4Addr {
        let usable = self.size() - 3;
        let draw = u32::from_le_bytes(
            uuid::Uuid::new_v4().as_bytes()[..4]
                .try_into()
                .unwrap_or([0; 4]),
        );
        Ipv4Addr::from(self.base() + 2 + draw % usable)
    }
}

impl std::fmt::Display for ServiceCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// How many random addresses a Service tries before the range counts as full.
const RANDOM_ATTEMPTS: usize = 64;

/// The services REST handler with ClusterIP allocation. See the [module docs](self).
pub struct ServiceRest {
    services: Arc<GenericRest>,
    addresses: Arc<GenericRest>,
    cidr: ServiceCidr,
}

impl std::fmt::Debug for ServiceRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRest")
            .field("cidr", &self.cidr.to_string())
            .finish()
    }
}

impl ServiceRest {
    /// Services over `services`, recording allocations through `addresses` (the
    /// `ipaddresses` resource), allocating from `cidr`.
    pub fn new(services: Arc<GenericRest>, addresses: Arc<GenericRest>, cidr: ServiceCidr) -> Self {
        ServiceRest {
            services,
            addresses,
            cidr,
        }
    }

    /// The 422 upstream answers when an address cannot be allocated.
    fn invalid(&self, object: &Value, ip: &str, detail: String) -> ApiError {
        let name = rkube_api::meta::name(object).unwrap_or("");
        let path = Path::new("spec").child("clusterIPs");
        ApiError::invalid(
            self.resource().group_kind(),
            name,
            &[FieldError::invalid(&path, json!([ip]), detail)],
        )
    }

    /// Records `ip` as allocated to the Service `object`; false when someone holds it already.
    async fn claim(&self, object: &Value, ip: Ipv4Addr) -> Result<bool> {
        let namespace = rkube_api::meta::namespace(object).unwrap_or("default");
        let address = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IPAddress",
            "metadata": {
                "name": ip.to_string(),
                "labels": {
                    "ipaddress.kubernetes.io/ip-family": "IPv4",
                    "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
                },
            },
            "spec": {"parentRef": {
                "group": "",
                "resource": "services",
                "namespace": namespace,
                "name": rkube_api::meta::name(object).unwrap_or(""),
            }},
        });
        match self
            .addresses
            .create(&Scope::default(), address, &CreateOptions::default())
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.reason() == Reason::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Releases the addresses of a Service that is gone.
    async fn release(&self, service: &Value) {
        for ip in cluster_ips(service) {
            let released = self
                .addresses
                .delete(&Scope::default(), &ip, &DeleteOptions::default())
                .await;
            if let Err(e) = released
                && e.reason() != Reason::NotFound
            {
                tracing::warn!(%ip, error = %e, "releasing a ClusterIP");
            }
        }
    }

    /// Picks and claims the Service's ClusterIP; returns it, or `None` for Services that have
    /// none (headless, ExternalName). A dry run checks without claiming.
    /// Releases the addresses of a Service an update or patch deleted: the write removed the
    /// last finalizer of a Service being deleted, so the registry removed it.
    async fn release_if_gone(&self, written: &Object, dry_run: bool) {
        let value = written.value();
        let deleting = value["metadata"].get("deletionTimestamp").is_some();
        if deleting && !held_by_finalizers(value) && !dry_run {
            self.release(value).await;
        }
    }

    /// A create with the ClusterIP allocated first; `track` as [`GenericRest::create_object`].
    async fn create_allocated(
        &self,
        scope: &Scope,
        mut object: Value,
        options: &CreateOptions,
        track: bool,
    ) -> Result<Answer<Object>> {
        // Defaults first, so a Service created as ExternalName or headless is recognised.
        kinds::strategy_for(self.resource()).default(&mut object);
        if let Some(ns) = &scope.namespace
            && rkube_api::meta::namespace(&object).is_none()
            && let Some(meta) = rkube_api::meta::metadata_mut(&mut object)
        {
            meta.insert("namespace".into(), json!(ns));
        }
        let allocated = self.allocate(&object, options.dry_run).await?;
        if let (Some(ip), Some(spec)) = (allocated, object.get_mut("spec")) {
            spec["clusterIP"] = json!(ip.to_string());
            spec["clusterIPs"] = json!([ip.to_string()]);
        }
        let created = self
            .services
            .create_object(scope, object.clone(), options, track)
            .await;
        if created.is_err()
            && !options.dry_run
            && let Some(ip) = allocated
        {
            let mut claimed = object;
            claimed["spec"]["clusterIPs"] = json!([ip.to_string()]);
            self.release(&claimed).await;
        }
        created
    }

    async fn allocate(&self, object: &Value, dry_run: bool) -> Result<Option<Ipv4Addr>> {
        let spec = object.get("spec");
        let kind = spec.and_then(|s| s.get("type")).and_then(Value::as_str);
        let requested = spec
            .and_then(|s| s.get("clusterIP"))
            .and_then(Value::as_str)
            .filter(|ip| !ip.is_empty());
        if kind == Some("ExternalName") || requested == Some("None") {
            return Ok(None);
        }
        if let Some(requested) = requested {
            let ip: Ipv4Addr = requested.parse().map_err(|_| {
                self.invalid(object, requested, format!("failed to allocate IP {requested}: must be a valid IPv4 address (rkube serves IPv4 Services)"))
            })?;
            if !self.cidr.contains(ip) {
                return Err(self.invalid(
                    object,
                    requested,
                    format!(
                        "failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}",
                        self.cidr
                    ),
                ));
            }
            if !dry_run && !self.claim(object, ip).await? {
                return Err(self.invalid(
                    object,
                    requested,
                    format!("failed to allocate IP {requested}: provided IP is already allocated"),
                ));
            }
            return Ok(Some(ip));
        }
        for _ in 0..RANDOM_ATTEMPTS {
            let ip = self.cidr.random();
            let free = if dry_run {
                let taken = self
                    .addresses
                    .get(&Scope::default(), &ip.to_string(), &GetOptions::default())
                    .await;
                matches!(taken, Err(e) if e.reason() == Reason::NotFound)
            } else {
                self.claim(object, ip).await?
            };
            if free {
                return Ok(Some(ip));
            }
        }
        Err(ApiError::internal(format!(
            "failed to allocate a serviceIP: range is full ({})",
            self.cidr
        )))
    }
}

/// The ClusterIPs a stored Service holds.
/// Whether finalizers still hold a Service's deletion.
fn held_by_finalizers(service: &Value) -> bool {
    service["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
}

fn cluster_ips(service: &Value) -> Vec<String> {
    let spec = service.get("spec");
    let listed = spec
        .and_then(|s| s.get("clusterIPs"))
        .and_then(Value::as_array)
        .map(|ips| {
            ips.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let single = spec
        .and_then(|s| s.get("clusterIP"))
        .and_then(Value::as_str)
        .map(String::from);
    let mut ips = listed;
    if let Some(ip) = single
        && !ips.contains(&ip)
    {
        ips.push(ip);
    }
    ips.retain(|ip| ip.parse::<IpAddr>().is_ok());
    ips
}

#[async_trait]
impl Rest for ServiceRest {
    fn resource(&self) -> &'static Resource {
        self.services.resource()
    }

    async fn create(
        &self,
        scope: &Scope,
        object: Value,
        options: &CreateOptions,
    ) -> Result<Answer<Object>> {
        self.create_allocated(scope, object, options, true).await
    }

    async fn get(&self, scope: &Scope, name: &str, options: &GetOptions) -> Result<Object> {
        self.services.get(scope, name, options).await
    }

    async fn list(&self, scope: &Scope, options: &ListOptions) -> Result<ObjectList> {
        self.services.list(scope, options).await
    }

    async fn watch(&self, scope: &Scope, options: &ListOptions) -> Result<WatchStream> {
        self.services.watch(scope, options).await
    }

    async fn update(
        &self,
        scope: &Scope,
        name: &str,
        object: Value,
        options: &UpdateOptions,
    ) -> Result<Answer<(Object, bool)>> {
        // ClusterIPs are immutable once set (the strategy keeps and checks them).
        let answer = self.services.update(scope, name, object, options).await?;
        self.release_if_gone(&answer.value.0, options.dry_run).await;
        Ok(answer)
    }

    async fn patch(
        &self,
        scope: &Scope,
        name: &str,
        patch_type: PatchType,
        patch: &[u8],
        options: &PatchOptions,
    ) -> Result<Answer<(Object, bool)>> {
        // An apply that creates the Service allocates its ClusterIP as a create does.
        if patch_type == PatchType::Apply {
            let missing = self
                .services
                .get(scope, name, &GetOptions::default())
                .await
                .is_err_and(|e| e.reason() == Reason::NotFound);
            if missing {
                let object = self.services.applied_new(scope, name, patch, options)?;
                let create = CreateOptions {
                    dry_run: options.dry_run,
                    field_manager: options.field_manager.clone(),
                    field_validation: options.field_validation,
                    user_agent: options.user_agent.clone(),
                    admission: options.admission.clone(),
                    user: None,
                };
                let created = self.create_allocated(scope, object, &create, false).await?;
                return Ok(Answer {
                    value: (created.value, true),
                    warnings: created.warnings,
                });
            }
        }
        let answer = self
            .services
            .patch(scope, name, patch_type, patch, options)
            .await?;
        self.release_if_gone(&answer.value.0, options.dry_run).await;
        Ok(answer)
    }

    async fn delete(
        &self,
        scope: &Scope,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Answer<Deleted>> {
        let answer = self.services.delete(scope, name, options).await?;
        if let Deleted::Gone(service) = &answer.value
            && !options.dry_run
        {
            self.release(service.value()).await;
        }
        Ok(answer)
    }

    async fn delete_collection(
        &self,
        scope: &Scope,
        delete: &DeleteOptions,
        list: &ListOptions,
    ) -> Result<ObjectList> {
        let deleted = self.services.delete_collection(scope, delete, list).await?;
        if !delete.dry_run {
            for service in &deleted.items {
                // A Service still held by finalizers keeps its address until it is gone.
                if !held_by_finalizers(service.value()) {
                    self.release(service.value()).await;
                }
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_range_is_k3s_s() {
        let cidr = ServiceCidr::DEFAULT;
        assert_eq!(cidr.to_string(), "10.43.0.0/16");
        assert_eq!(cidr.first(), Ipv4Addr::new(10, 43, 0, 1));
        assert!(cidr.contains(Ipv4Addr::new(10, 43, 255, 254)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 43, 255, 255)), "broadcast");
        assert!(!cidr.contains(Ipv4Addr::new(10, 43, 0, 0)), "network");
        assert!(!cidr.contains(Ipv4Addr::new(10, 44, 0, 1)));
        for _ in 0..1000 {
            let ip = cidr.random();
            assert!(cidr.contains(ip) && ip != cidr.first(), "{ip}");
        }
    }
}
