//! Services (`pkg/registry/core/service/strategy.go`, `SetDefaults_Service`,
//! `ValidateService`). ClusterIP and NodePort allocation belong to the registry's REST; this
//! strategy keeps addresses once set and validates what clients send.

use std::collections::HashSet;
use std::net::IpAddr;

use rkube_api::field::{FieldError, Path};
use rkube_api::k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use rkube_api::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value, json};

use super::common::{
    clear_status, decode_or_errors, default_field, default_if_empty, dns_label, dns_subdomain,
    each_map, enum_value, keep_status, map_mut, opt_enum, selectable, validate_port,
};
use super::pod::{PROTOCOLS, port_name_errors};
use crate::Strategy;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const AFFINITIES: &[&str] = &["ClientIP", "None"];
const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
const FIELDS: &[&str] = &["spec.clusterIP", "spec.type"];

/// The service strategy.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceStrategy;

fn str_of<'a>(spec: &'a Map<String, Value>, key: &str) -> &'a str {
    spec.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl Strategy for ServiceStrategy {
    fn default(&self, object: &mut Value) {
        let Some(spec) = map_mut(object, "spec") else {
            return;
        };
        default_if_empty(spec, "sessionAffinity", "None");
        match str_of(spec, "sessionAffinity") {
            "None" => {
                spec.remove("sessionAffinityConfig");
            }
            "ClientIP" => {
                let timeout = spec
                    .get("sessionAffinityConfig")
                    .and_then(|c| c.pointer("/clientIP/timeoutSeconds"));
                if timeout.is_none_or(Value::is_null) {
                    spec.insert(
                        "sessionAffinityConfig".into(),
                        json!({"clientIP": {"timeoutSeconds": 10800}}),
                    );
                }
            }
            _ => {}
        }
        default_if_empty(spec, "type", "ClusterIP");
        for p in each_map(spec, "ports") {
            default_if_empty(p, "protocol", "TCP");
            let unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(v) => v == 0 || v == "",
            };
            if unset && let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
        let ty = str_of(spec, "type").to_owned();
        if matches!(ty.as_str(), "NodePort" | "LoadBalancer") {
            default_if_empty(spec, "externalTrafficPolicy", "Cluster");
        }
        if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
            default_field(spec, "internalTrafficPolicy", "Cluster");
        }
        if ty == "LoadBalancer" {
            default_field(spec, "allocateLoadBalancerNodePorts", true);
        }
        if ty != "ExternalName" {
            // Single-stack: the family follows a requested address, IPv4 otherwise.
            let family = match str_of(spec, "clusterIP").parse::<IpAddr>() {
                Ok(IpAddr::V6(_)) => "IPv6",
                _ => "IPv4",
            };
            default_field(spec, "ipFamilyPolicy", "SingleStack");
            default_field(spec, "ipFamilies", json!([family]));
        }
    }

    fn prepare_for_create(&self, object: &mut Value) {
        clear_status(object);
        if let Some(map) = object.as_object_mut() {
            map.insert("status".into(), json!({"loadBalancer": {}}));
        }
        if let Some(spec) = map_mut(object, "spec") {
            // Old clients send only the singular field (`normalizeClusterIPs`).
            let ip = str_of(spec, "clusterIP").to_owned();
            let plural_empty = spec
                .get("clusterIPs")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
            if !ip.is_empty() && plural_empty {
                spec.insert("clusterIPs".into(), json!([ip]));
            }
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
        let (Some(spec), Some(old_spec)) = (map_mut(new, "spec"), old.get("spec")) else {
            return;
        };
        let old_ip = old_spec.get("clusterIP").cloned().unwrap_or(Value::Null);
        let old_ips = old_spec.get("clusterIPs").cloned().unwrap_or(Value::Null);
        let old_type = old_spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP");
        let new_ip = str_of(spec, "clusterIP").to_owned();
        let same_plural = spec.get("clusterIPs").cloned().unwrap_or(Value::Null) == old_ips;
        let is_external = |t: &str| t == "ExternalName";
        if !is_external(old_type) && !is_external(str_of(spec, "type")) {
            // A replace that leaves allocated addresses out keeps them (`patchAllocatedValues`).
            if new_ip.is_empty() {
                spec.insert("clusterIP".into(), old_ip.clone());
            }
            if spec.get("clusterIPs").is_none_or(Value::is_null) {
                spec.insert("clusterIPs".into(), old_ips);
            }
        }
        // The singular field changed and the plural did not: the client meant both.
        if !new_ip.is_empty() && old_ip.as_str().is_some_and(|o| o != new_ip) && same_plural {
            spec.insert("clusterIPs".into(), json!([new_ip]));
        }
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        match decode_or_errors::<Service>(object) {
            Ok(svc) => validate_spec(&svc.spec.unwrap_or_default()),
            Err(errs) => errs,
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        if let (Ok(new), Ok(old)) = (
            decode_or_errors::<Service>(new),
            decode_or_errors::<Service>(old),
        ) {
            errs.extend(validate_cluster_ips_update(
                &new.spec.unwrap_or_default(),
                &old.spec.unwrap_or_default(),
            ));
        }
        errs
    }

    fn has_status_subresource(&self) -> bool {
        true
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        FIELDS
    }

    fn field_value(&self, object: &Value, field: &str) -> Option<String> {
        selectable(object, FIELDS, field)
    }
}

fn is_headless(spec: &ServiceSpec) -> bool {
    spec.cluster_ip.as_deref() == Some("None")
}

fn validate_spec(spec: &ServiceSpec) -> Vec<FieldError> {
    let path = Path::new("spec");
    let mut errs = Vec::new();
    let ty = spec.type_.as_deref().unwrap_or_default();
    errs.extend(enum_value(ty, TYPES, &path.child("type")));
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ty == "ExternalName" {
        let name = spec.external_name.as_deref().unwrap_or_default();
        let p = path.child("externalName");
        if name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else {
            errs.extend(dns_subdomain(name.strip_suffix('.').unwrap_or(name), &p));
        }
    } else if ports.is_empty() && !is_headless(spec) {
        errs.push(FieldError::required(&path.child("ports"), ""));
    }
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(validate_service_port(
            port,
            ports.len() > 1,
            &mut names,
            ty,
            &path.child("ports").index(i),
        ));
    }
    errs.extend(enum_value(
        spec.session_affinity.as_deref().unwrap_or_default(),
        AFFINITIES,
        &path.child("sessionAffinity"),
    ));
    for (key, value) in [
        ("externalTrafficPolicy", &spec.external_traffic_policy),
        ("internalTrafficPolicy", &spec.internal_traffic_policy),
    ] {
        errs.extend(opt_enum(
            value.as_deref().filter(|v| !v.is_empty()),
            TRAFFIC_POLICIES,
            &path.child(key),
        ));
    }
    let ips = path.child("clusterIPs");
    for (i, ip) in spec.cluster_ips.iter().flatten().enumerate() {
        if ip != "None" && ip.parse::<IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                &ips.index(i),
                ip.as_str(),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    errs
}

fn validate_service_port(
    port: &ServicePort,
    require_name: bool,
    names: &mut HashSet<String>,
    ty: &str,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = port.name.as_deref().unwrap_or_default();
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(dns_label(name, &path.child("name")));
        if !names.insert(name.to_owned()) {
            errs.push(FieldError::duplicate(&path.child("name"), name));
        }
    }
    errs.extend(validate_port(port.port, &path.child("port")));
    errs.extend(enum_value(
        port.protocol.as_deref().unwrap_or_default(),
        PROTOCOLS,
        &path.child("protocol"),
    ));
    let target = path.child("targetPort");
    match &port.target_port {
        Some(IntOrString::Int(n)) => errs.extend(validate_port(*n, &target)),
        Some(IntOrString::String(s)) => errs.extend(
            port_name_errors(s)
                .into_iter()
                .map(|m| FieldError::invalid(&target, s.as_str(), m)),
        ),
        None => {}
    }
    if let Some(node_port) = port.node_port.filter(|p| *p != 0) {
        if matches!(ty, "NodePort" | "LoadBalancer") {
            errs.extend(validate_port(node_port, &path.child("nodePort")));
        } else {
            errs.push(FieldError::forbidden(
                &path.child("nodePort"),
                format!("may not be used when `type` is '{ty}'"),
            ));
        }
    }
    errs
}

/// `validateUpgradeDowngradeClusterIPs`: addresses may not change once set (ExternalName
/// services have none; headless stays headless).
fn validate_cluster_ips_update(new: &ServiceSpec, old: &ServiceSpec) -> Vec<FieldError> {
    let external = |s: &ServiceSpec| s.type_.as_deref() == Some("ExternalName");
    if external(new) || external(old) || (is_headless(new) && is_headless(old)) {
        return Vec::new();
    }
    let path = Path::new("spec").child("clusterIPs");
    let new_ips = new.cluster_ips.as_deref().unwrap_or_default();
    let old_ips = old.cluster_ips.as_deref().unwrap_or_default();
    let bad = || serde_json::to_value(new_ips).unwrap_or(Value::Null);
    if new_ips.is_empty() && !old_ips.is_empty() {
        return vec![FieldError::invalid(
            &path.index(0),
            bad(),
            "primary clusterIP can not be unset",
        )];
    }
    old_ips
        .iter()
        .zip(new_ips)
        .enumerate()
        .filter(|(_, (o, n))| o != n)
        .map(|(i, _)| FieldError::invalid(&path.index(i), bad(), "may not change once set"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec})
    }

    fn defaulted(spec: Value) -> Value {
        let mut s = svc(spec);
        ServiceStrategy.default(&mut s);
        s
    }

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn service_defaults() {
        let s = defaulted(
            json!({"ports": [{"port": 80}, {"port": 53, "protocol": "UDP",
            "targetPort": "dns"}]}),
        );
        assert_eq!(
            s["spec"],
            json!({
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80},
                          {"port": 53, "protocol": "UDP", "targetPort": "dns"}],
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
                "ipFamilyPolicy": "SingleStack",
                "ipFamilies": ["IPv4"],
            })
        );
        let s = defaulted(
            json!({"type": "LoadBalancer", "sessionAffinity": "ClientIP",
            "ports": [{"port": 80}]}),
        );
        assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(s["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(
            s["spec"]["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );
        let s = defaulted(json!({"type": "ExternalName", "externalName": "example.com"}));
        assert_eq!(s["spec"].get("ipFamilies"), None);
        assert_eq!(s["spec"].get("internalTrafficPolicy"), None);
    }

    #[test]
    fn service_validation_messages() {
        assert_eq!(
            msgs(ServiceStrategy.validate(&defaulted(json!({})))),
            ["spec.ports: Required value"]
        );
        assert!(
            ServiceStrategy
                .validate(&defaulted(json!({"clusterIP": "None"})))
                .is_empty()
        );
        let s = defaulted(json!({"type": "Fancy", "ports": [
            {"port": 0, "name": "a"}, {"port": 80, "name": "a"}, {"port": 81}]}));
        assert_eq!(
            msgs(ServiceStrategy.validate(&s)),
            [
                r#"spec.type: Unsupported value: "Fancy": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort""#,
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                r#"spec.ports[1].name: Duplicate value: "a""#,
                "spec.ports[2].name: Required value",
            ]
        );
        let s = defaulted(json!({"type": "ExternalName"}));
        assert_eq!(
            msgs(ServiceStrategy.validate(&s)),
            ["spec.externalName: Required value"]
        );
        let s = defaulted(json!({"ports": [{"port": 80, "nodePort": 30000}]}));
        assert_eq!(
            msgs(ServiceStrategy.validate(&s)),
            ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
    }

    #[test]
    fn cluster_ip_is_kept_and_immutable() {
        let mut old = defaulted(json!({"clusterIP": "10.0.0.5", "ports": [{"port": 80}]}));
        ServiceStrategy.prepare_for_create(&mut old);
        assert_eq!(old["spec"]["clusterIPs"], json!(["10.0.0.5"]));
        assert_eq!(old["status"], json!({"loadBalancer": {}}));

        // A replace without the address keeps it.
        let mut new = defaulted(json!({"ports": [{"port": 81}]}));
        ServiceStrategy.prepare_for_update(&mut new, &old);
        assert_eq!(new["spec"]["clusterIP"], "10.0.0.5");
        assert!(ServiceStrategy.validate_update(&new, &old).is_empty());

        let mut changed = old.clone();
        changed["spec"]["clusterIP"] = "10.0.0.6".into();
        ServiceStrategy.prepare_for_update(&mut changed, &old);
        assert_eq!(
            msgs(ServiceStrategy.validate_update(&changed, &old)),
            [r#"spec.clusterIPs[0]: Invalid value: ["10.0.0.6"]: may not change once set"#]
        );
    }

    #[test]
    fn service_field_selectors() {
        let s = json!({"spec": {"clusterIP": "None", "type": "ClusterIP"}});
        assert_eq!(
            ServiceStrategy.field_value(&s, "spec.clusterIP").as_deref(),
            Some("None")
        );
        assert_eq!(
            ServiceStrategy.field_value(&s, "spec.type").as_deref(),
            Some("ClusterIP")
        );
    }
}
