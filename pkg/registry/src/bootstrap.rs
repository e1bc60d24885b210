//! [`ensure_defaults`]: the objects every cluster has from its first start, written through
//! the same [`Rest`] paths as any client's (so defaulting and validation apply): the four
//! system namespaces, the two system PriorityClasses, and the `kubernetes` Service with its
//! Endpoints and EndpointSlice, as kube-apiserver's bootstrap controller, scheduling
//! post-start hook and endpoint reconciler write them.

// `ApiError` is the error of the `Rest` contract: boxing it inside only to unbox it at the
// boundary would buy nothing.
#![allow(clippy::result_large_err)]

use std::net::IpAddr;

use rkube_api::meta;
use rkube_api::resources::{self, Resource};
use rkube_api::status::ApiError;
use serde_json::{Value, json};

use crate::Registry;
use crate::rest::{CreateOptions, GetOptions, Result, Scope, UpdateOptions};

/// The namespaces kube-apiserver creates at start.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Upstream's system PriorityClasses: name, value, description.
pub const SYSTEM_PRIORITY_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// What the defaults depend on.
#[derive(Debug, Clone)]
pub struct BootstrapConfig {
    /// The address other nodes and pods reach the API server at (the Endpoints' address).
    pub advertise_address: IpAddr,
    /// The API server's secure port (the Service's targetPort and the Endpoints' port).
    pub port: u16,
    /// The ClusterIP of the `kubernetes` Service: the first address of the service CIDR
    /// (k3s's default 10.43.0.0/16 gives 10.43.0.1).
    pub service_ip: IpAddr,
}

impl BootstrapConfig {
    /// The defaults k3s uses, for an API server at `advertise_address:port`.
    pub fn new(advertise_address: IpAddr, port: u16) -> Self {
        BootstrapConfig {
            advertise_address,
            port,
            service_ip: IpAddr::from([10, 43, 0, 1]),
        }
    }
}

fn resource(group: &str, plural: &str) -> Result<&'static Resource> {
    resources::lookup(group, "v1", plural).ok_or_else(|| {
        ApiError::internal(format!(
            "bootstrap: resource {group}/v1 {plural} is not in the table"
        ))
    })
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Creates what is missing and brings the `kubernetes` Service's endpoints to `config`;
/// safe to run on every start.
pub async fn ensure_defaults(registry: &Registry, config: &BootstrapConfig) -> Result<()> {
    for ns in SYSTEM_NAMESPACES {
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        ensure(registry, resource("", "namespaces")?, None, object, &[]).await?;
    }
    // The two system PriorityClasses (upstream's scheduling post-start hook), which the
    // Priority admission plugin resolves like any other.
    let scheduling = resources::lookup("scheduling.k8s.io", "v1", "priorityclasses")
        .ok_or_else(|| ApiError::internal("bootstrap: priorityclasses are not in the table"))?;
    for (name, value, description) in SYSTEM_PRIORITY_CLASSES {
        let class = json!({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "description": description,
        });
        ensure(registry, scheduling, None, class, &[]).await?;
    }
    // The default ServiceCIDR upstream 1.33+ keeps as an object, before the first Service.
    let cidr = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "ServiceCIDR",
        "metadata": {"name": "kubernetes"},
        "spec": {"cidrs": [crate::service_ips::ServiceCidr::DEFAULT.to_string()]},
    });
    ensure(
        registry,
        resource("networking.k8s.io", "servicecidrs")?,
        None,
        cidr,
        &[],
    )
    .await?;
    let port = i64::from(config.port);
    let service_ip = config.service_ip.to_string();
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": service_ip,
            "clusterIPs": [service_ip],
            "ipFamilies": [family(&config.service_ip)],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
            "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
        },
    });
    ensure(
        registry,
        resource("", "services")?,
        Some("default"),
        service,
        &["/spec/ports"],
    )
    .await?;
    let address = config.advertise_address.to_string();
    let endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            // The mirroring controller must not copy these into a second slice.
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [{
            "addresses": [{"ip": address}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }],
    });
    ensure(
        registry,
        resource("", "endpoints")?,
        Some("default"),
        endpoints,
        &["/subsets"],
    )
    .await?;
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kubernetes"},
        },
        "addressType": family(&config.advertise_address),
        "endpoints": [{"addresses": [address], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    ensure(
        registry,
        resource("discovery.k8s.io", "endpointslices")?,
        Some("default"),
        slice,
        &["/addressType", "/endpoints", "/ports"],
    )
    .await
}

/// Creates `desired` if absent; otherwise makes the fields at `reconciled` (JSON pointers)
/// equal to `desired`'s, leaving everything else as stored.
async fn ensure(
    registry: &Registry,
    resource: &'static Resource,
    namespace: Option<&str>,
    desired: Value,
    reconciled: &[&str],
) -> Result<()> {
    let rest = registry.rest(resource, None).ok_or_else(|| {
        ApiError::internal(format!("bootstrap: {} is not served", resource.plural))
    })?;
    let scope = Scope {
        namespace: namespace.map(str::to_string),
    };
    let name = meta::name(&desired).unwrap_or("").to_string();
    let current = match rest.get(&scope, &name, &GetOptions::default()).await {
        Ok(current) => current,
        Err(e) if e.code() == 404 => {
            return match rest
                .create(&scope, desired, &CreateOptions::default())
                .await
            {
                // Another server created it meanwhile.
                Ok(_) => Ok(()),
                Err(e) if e.code() == 409 => Ok(()),
                Err(e) => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    let mut updated = current.value().clone();
    let mut changed = false;
    for pointer in reconciled {
        let want = desired.pointer(pointer).cloned().unwrap_or(Value::Null);
        if updated.pointer(pointer) != Some(&want) {
            if let Some(slot) = updated.pointer_mut(pointer) {
                *slot = want;
            } else if let Some(field) = pointer.strip_prefix('/')
                && let Some(map) = updated.as_object_mut()
            {
                map.insert(field.to_string(), want);
            }
            changed = true;
        }
    }
    if changed {
        rest.update(&scope, &name, updated, &UpdateOptions::default())
            .await?;
    }
    Ok(())
}
