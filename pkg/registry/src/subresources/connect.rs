//! [`ConnectRest`]: the subresources that stream from a node rather than read storage
//! (`pods/log`, `exec`, `attach`, `portforward`, `proxy`, `nodes/proxy`, `services/proxy`).
//!
//! Each runs upstream's checks (`LogLocation`, `ExecLocation`, `PortForwardLocation`, the
//! `ResourceLocation`s): options, the object, the container, the node, and says where the
//! request goes ([`Connected`]); forwarding it is the API server's business.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use rkube_api::field::{FieldError, Path};
use rkube_api::meta;
use rkube_api::resources::{GroupKind, Resource};
use rkube_api::status::ApiError;
use serde_json::Value;

use crate::generic::GenericRest;
use crate::rest::{ConnectOptions, Connected, Rest, Result, Scope};

/// The kubelet's port when a node does not publish one (`--kubelet-port`).
const KUBELET_PORT: i64 = 10250;
/// The node address types tried in order (k3s's `--kubelet-preferred-address-types`).
const ADDRESS_TYPES: &[&str] = &["InternalIP", "ExternalIP", "Hostname"];

/// Which connect subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Log,
    Exec,
    Attach,
    PortForward,
    PodProxy,
    NodeProxy,
    ServiceProxy,
}

/// A connect subresource. See the [module docs](self).
#[derive(Debug)]
pub struct ConnectRest {
    kind: Kind,
    parent: Arc<GenericRest>,
    nodes: Arc<GenericRest>,
}

impl ConnectRest {
    /// The connect subresource `subresource` of `parent` (pods, nodes or services), finding
    /// nodes in `nodes`; `None` when it is not one.
    pub fn new(
        parent: Arc<GenericRest>,
        subresource: &str,
        nodes: Arc<GenericRest>,
    ) -> Option<Self> {
        let kind = match (parent.served().plural, subresource) {
            ("pods", "log") => Kind::Log,
            ("pods", "exec") => Kind::Exec,
            ("pods", "attach") => Kind::Attach,
            ("pods", "portforward") => Kind::PortForward,
            ("pods", "proxy") => Kind::PodProxy,
            ("nodes", "proxy") => Kind::NodeProxy,
            ("services", "proxy") => Kind::ServiceProxy,
            _ => return None,
        };
        Some(ConnectRest {
            kind,
            parent,
            nodes,
        })
    }

    /// The kubelet URL of `node` for `path` (upstream's `GetConnectionInfo`).
    async fn kubelet(&self, scope: &Scope, node: &str, path: &str) -> Result<Connected> {
        let object = self.nodes.current(scope, node).await?.into_value();
        let port = object
            .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
            .and_then(Value::as_i64)
            .filter(|p| *p > 0)
            .unwrap_or(KUBELET_PORT);
        let host = node_address(&object)?;
        Ok(Connected::Node {
            node: node.to_string(),
            url: format!("https://{}/{path}", join_host_port(&host, port)),
        })
    }
}

fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The node's first address of a preferred type (`GetPreferredNodeAddress`).
fn node_address(node: &Value) -> Result<String> {
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let of = |t: &str| {
        addresses.iter().find_map(|a| {
            (a.get("type").and_then(Value::as_str) == Some(t))
                .then(|| a.get("address").and_then(Value::as_str))
                .flatten()
        })
    };
    ADDRESS_TYPES
        .iter()
        .find_map(|t| of(t))
        .map(str::to_string)
        .ok_or_else(|| {
            let known: Vec<String> = addresses
                .iter()
                .map(|a| {
                    format!(
                        "{{{} {}}}",
                        a.get("type").and_then(Value::as_str).unwrap_or_default(),
                        a.get("address").and_then(Value::as_str).unwrap_or_default()
                    )
                })
                .collect();
            ApiError::internal(format!(
                "no preferred addresses found; known addresses: [{}]",
                known.join(" ")
            ))
        })
}

/// The query parameters of a connect request.
struct Query<'a>(&'a [(String, String)]);

impl Query<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> Result<bool> {
        match self.get(key) {
            None | Some("" | "false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "strconv.ParseBool: parsing {other:?}: invalid syntax"
            ))),
        }
    }

    fn int(&self, key: &str) -> Result<Option<i64>> {
        self.get(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "strconv.ParseInt: parsing {v:?}: invalid syntax"
                    ))
                })
            })
            .transpose()
    }
}

/// `ValidatePodLogOptions` (split streams off, as upstream's default), then the kubelet
/// query `LogLocation` passes on.
fn log_query(name: &str, query: &Query<'_>) -> Result<BTreeMap<&'static str, String>> {
    let tail_lines = query.int("tailLines")?;
    let limit_bytes = query.int("limitBytes")?;
    let since_seconds = query.int("sinceSeconds")?;
    let since_time = query
        .get("sinceTime")
        .map(|t| {
            t.parse::<jiff::Timestamp>()
                .map_err(|e| ApiError::bad_request(format!("parsing time {t:?} as RFC3339: {e}")))
        })
        .transpose()?;
    let mut errs = Vec::new();
    if let Some(n) = tail_lines.filter(|n| *n < 0) {
        errs.push(FieldError::invalid(
            &Path::new("tailLines"),
            n,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(n) = limit_bytes.filter(|n| *n < 1) {
        errs.push(FieldError::invalid(
            &Path::new("limitBytes"),
            n,
            "must be greater than 0",
        ));
    }
    match (since_seconds, since_time) {
        (Some(_), Some(_)) => errs.push(FieldError::forbidden(
            &Path::new("sinceSeconds"),
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        )),
        (Some(n), None) if n < 1 => errs.push(FieldError::invalid(
            &Path::new("sinceSeconds"),
            n,
            "must be greater than 0",
        )),
        _ => {}
    }
    if query.get("stream").is_some() {
        errs.push(FieldError::forbidden(
            &Path::new("stream"),
            "may not be specified",
        ));
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid(
            GroupKind::new("", "PodLogOptions"),
            name,
            &errs,
        ));
    }
    let mut out = BTreeMap::new();
    for flag in ["follow", "previous", "timestamps"] {
        if query.flag(flag)? {
            out.insert(flag, "true".to_string());
        }
    }
    for (key, value) in [
        ("sinceSeconds", since_seconds),
        ("tailLines", tail_lines),
        ("limitBytes", limit_bytes),
    ] {
        if let Some(v) = value {
            out.insert(key, v.to_string());
        }
    }
    if let Some(t) = since_time {
        out.insert("sinceTime", crate::generic::format_time(t));
    }
    Ok(out)
}

/// Upstream's `validateContainer`: the container asked for must exist; none asked for is
/// the only one, or the request must say which.
fn container(pod: &Value, asked: &str) -> Result<String> {
    let spec = pod.get("spec");
    let names: Vec<&str> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|key| {
            spec.and_then(|s| s.get(*key))
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
        })
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    let name = meta::name(pod).unwrap_or_default();
    if !asked.is_empty() {
        return if names.contains(&asked) {
            Ok(asked.to_string())
        } else {
            Err(ApiError::bad_request(format!(
                "container {asked} is not valid for pod {name}"
            )))
        };
    }
    let regular: Vec<&str> = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    match regular.as_slice() {
        [only] => Ok((*only).to_string()),
        [] => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}"
        ))),
        _ => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

fn node_name(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `name`, `name:port` or `scheme:name:port` (upstream's `SplitSchemeNamePort`).
fn split_scheme_name_port(id: &str) -> Result<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let bad = || ApiError::bad_request(format!("invalid request {id:?}"));
    let split = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return Err(bad()),
    };
    if split.1.is_empty() || !matches!(split.0, "" | "http" | "https") {
        return Err(bad());
    }
    Ok(split)
}

fn encode_query(pairs: impl IntoIterator<Item = (String, String)>) -> String {
    let encoded = url_encode_pairs(pairs);
    if encoded.is_empty() {
        encoded
    } else {
        format!("?{encoded}")
    }
}

fn url_encode_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> String {
    let escape = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", escape(&k), escape(&v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[async_trait]
impl Rest for ConnectRest {
    fn resource(&self) -> &'static Resource {
        self.parent.served()
    }

    async fn connect(
        &self,
        scope: &Scope,
        name: &str,
        options: &ConnectOptions,
    ) -> Result<Connected> {
        let query = Query(&options.query);
        let namespace = scope.namespace.as_deref().unwrap_or_default();
        match self.kind {
            Kind::Log => {
                let params = log_query(name, &query)?;
                let pod = self.parent.current(scope, name).await?.into_value();
                let container = container(&pod, query.get("container").unwrap_or_default())?;
                let node = node_name(&pod);
                if node.is_empty() {
                    return Ok(Connected::NoContent);
                }
                let params = params.into_iter().map(|(k, v)| (k.to_string(), v));
                self.kubelet(
                    scope,
                    node,
                    &format!(
                        "containerLogs/{namespace}/{name}/{container}{}",
                        encode_query(params)
                    ),
                )
                .await
            }
            Kind::Exec | Kind::Attach => {
                let pod = self.parent.current(scope, name).await?.into_value();
                let container = container(&pod, query.get("container").unwrap_or_default())?;
                let node = node_name(&pod);
                if node.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "pod {name} does not have a host assigned"
                    )));
                }
                let verb = if self.kind == Kind::Exec {
                    "exec"
                } else {
                    "attach"
                };
                let mut params: Vec<(String, String)> = Vec::new();
                if self.kind == Kind::Exec {
                    params.extend(
                        options
                            .query
                            .iter()
                            .filter(|(k, _)| k == "command")
                            .cloned(),
                    );
                }
                for flag in ["stdin", "stdout", "stderr", "tty"] {
                    if query.flag(flag)? {
                        params.push((flag.to_string(), "true".to_string()));
                    }
                }
                params.sort_by(|a, b| a.0.cmp(&b.0));
                self.kubelet(
                    scope,
                    node,
                    &format!(
                        "{verb}/{namespace}/{name}/{container}{}",
                        encode_query(params)
                    ),
                )
                .await
            }
            Kind::PortForward => {
                let pod = self.parent.current(scope, name).await?.into_value();
                let node = node_name(&pod);
                if node.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "pod {name} does not have a host assigned"
                    )));
                }
                self.kubelet(scope, node, &format!("portForward/{namespace}/{name}"))
                    .await
            }
            Kind::PodProxy => {
                let (scheme, pod_name, port) = split_scheme_name_port(name)?;
                let pod = self.parent.current(scope, pod_name).await?.into_value();
                let ip = pod
                    .pointer("/status/podIP")
                    .and_then(Value::as_str)
                    .and_then(|ip| ip.parse::<IpAddr>().ok())
                    .filter(|ip| !ip.is_unspecified() && !ip.is_loopback() && !ip.is_multicast());
                let Some(ip) = ip else {
                    return Err(ApiError::bad_request("address not allowed"));
                };
                let scheme = if scheme.is_empty() { "http" } else { scheme };
                let host = match (port, ip) {
                    ("", ip) => ip.to_string(),
                    (port, IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
                    (port, ip) => format!("{ip}:{port}"),
                };
                Ok(Connected::Node {
                    node: node_name(&pod).to_string(),
                    url: format!("{scheme}://{host}/{}", options.path),
                })
            }
            Kind::NodeProxy => {
                let (_, node, _) = split_scheme_name_port(name)?;
                self.kubelet(scope, node, &options.path).await
            }
            Kind::ServiceProxy => {
                let (_, service, _) = split_scheme_name_port(name)?;
                self.parent.current(scope, service).await?;
                // Nothing publishes EndpointSlices yet, so no service has a ready endpoint.
                Err(ApiError::service_unavailable(format!(
                    "no endpoints available for service {service:?}"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn log_options_are_validated_as_upstream() {
        let bad = q(&[("tailLines", "-1"), ("limitBytes", "0")]);
        let err = log_query("web", &Query(&bad)).unwrap_err();
        assert_eq!(err.code(), 422);
        assert_eq!(
            err.message(),
            r#"PodLogOptions "web" is invalid: [tailLines: Invalid value: -1: must be greater than or equal to 0, limitBytes: Invalid value: 0: must be greater than 0]"#
        );
        let both = q(&[("sinceSeconds", "5"), ("sinceTime", "2024-01-01T00:00:00Z")]);
        assert_eq!(
            log_query("web", &Query(&both)).unwrap_err().message(),
            "PodLogOptions \"web\" is invalid: sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
        );
        let not_int = q(&[("tailLines", "x")]);
        assert_eq!(log_query("web", &Query(&not_int)).unwrap_err().code(), 400);
        let ok = q(&[("tailLines", "10"), ("follow", "true"), ("container", "c")]);
        let params = log_query("web", &Query(&ok)).unwrap();
        assert_eq!(
            encode_query(params.into_iter().map(|(k, v)| (k.to_string(), v))),
            "?follow=true&tailLines=10"
        );
    }

    #[test]
    fn containers_are_chosen_as_upstream() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"}, {"name": "b"}],
        }});
        assert_eq!(
            container(&pod, "").unwrap_err().message(),
            "a container name must be specified for pod web, choose one of: [init a b]"
        );
        assert_eq!(container(&pod, "init").unwrap(), "init");
        assert_eq!(
            container(&pod, "c").unwrap_err().message(),
            "container c is not valid for pod web"
        );
        let single =
            json!({"metadata": {"name": "one"}, "spec": {"containers": [{"name": "only"}]}});
        assert_eq!(container(&single, "").unwrap(), "only");
    }

    #[test]
    fn node_addresses_follow_the_preferred_types() {
        let node = json!({"status": {"addresses": [
            {"type": "Hostname", "address": "n1"},
            {"type": "InternalIP", "address": "10.0.0.5"},
        ]}});
        assert_eq!(node_address(&node).unwrap(), "10.0.0.5");
        let err = node_address(&json!({"status": {}})).unwrap_err();
        assert_eq!(err.code(), 500);
        assert_eq!(join_host_port("fd00::1", 10250), "[fd00::1]:10250");
        assert!(split_scheme_name_port("https:web:443").is_ok());
        assert!(split_scheme_name_port("ftp:web:21").is_err());
    }
}
