//! PodSecurity: the Pod Security Standards (privileged, baseline, restricted) enforced, audited
//! or warned about per namespace, from its `pod-security.kubernetes.io/<mode>[-version]`
//! labels, with upstream's check names and messages.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::attributes::{Attributes, Operation};
use crate::chain::{Cluster, Plugin, Result, Warnings};

const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Everything allowed.
    Privileged,
    /// Known privilege escalations refused.
    Baseline,
    /// Hardened.
    Restricted,
}

impl Level {
    fn parse(text: &str) -> Option<Level> {
        match text {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// One failed check: upstream's reason and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `privileged`, `runAsNonRoot != true`...
    pub reason: &'static str,
    /// What exactly (`container "c" must not set securityContext.privileged=true`).
    pub detail: String,
}

/// A container with its name and security context.
struct Container<'a> {
    name: &'a str,
    spec: &'a Value,
}

impl Container<'_> {
    fn sc(&self, field: &str) -> &Value {
        &self.spec["securityContext"][field]
    }
}

/// Init containers, containers, ephemeral containers: upstream's visiting order.
fn containers(spec: &Value) -> Vec<Container<'_>> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| spec[*list].as_array().into_iter().flatten())
        .map(|c| Container {
            name: c["name"].as_str().unwrap_or(""),
            spec: c,
        })
        .collect()
}

fn quote_join(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `container "a"` or `containers "a", "b"`, then the verb's singular or plural form.
fn who(names: &[&str], singular: &str, plural: &str) -> String {
    let noun = if names.len() == 1 { singular } else { plural };
    format!("{noun} {}", quote_join(names))
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

const RESTRICTED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn added_capabilities<'a>(c: &Container<'a>) -> Vec<&'a str> {
    c.spec["securityContext"]["capabilities"]["add"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The checks of `level` on a pod spec (and its pod-level metadata), in upstream's order.
pub fn check(level: Level, spec: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    if level == Level::Privileged {
        return out;
    }
    let restricted = level == Level::Restricted;
    let cs = containers(spec);
    let mut push = |reason: &'static str, detail: String| out.push(Violation { reason, detail });

    // capabilities_baseline (restricted's own check replaces it).
    if !restricted {
        let mut names = Vec::new();
        let mut caps: Vec<&str> = Vec::new();
        for c in &cs {
            let bad: Vec<&str> = added_capabilities(c)
                .into_iter()
                .filter(|cap| !BASELINE_CAPABILITIES.contains(cap))
                .collect();
            if !bad.is_empty() {
                names.push(c.name);
                caps.extend(bad.iter().filter(|b| !caps.contains(b)).collect::<Vec<_>>());
            }
        }
        if !names.is_empty() {
            push(
                "non-default capabilities",
                format!(
                    "{} must not include {} in securityContext.capabilities.add",
                    who(&names, "container", "containers"),
                    quote_join(&caps)
                ),
            );
        }
    }
    // hostNamespaces
    let host: Vec<&str> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|f| spec[*f].as_bool() == Some(true))
        .collect();
    if !host.is_empty() {
        let set: Vec<String> = host.iter().map(|f| format!("{f}=true")).collect();
        push("host namespaces", set.join(", "));
    }
    let volumes: Vec<&Value> = spec["volumes"].as_array().into_iter().flatten().collect();
    let volume_name = |v: &Value| v["name"].as_str().unwrap_or("").to_owned();
    // hostPathVolumes (restricted's volume check replaces it).
    if !restricted {
        let names: Vec<String> = volumes
            .iter()
            .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
            .map(|v| volume_name(v))
            .collect();
        if !names.is_empty() {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            push("hostPath volumes", who(&refs, "volume", "volumes"));
        }
    }
    // hostPorts
    let mut names = Vec::new();
    let mut ports = Vec::new();
    for c in &cs {
        let own: Vec<i64> = c.spec["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["hostPort"].as_i64())
            .filter(|p| *p != 0)
            .collect();
        if !own.is_empty() {
            names.push(c.name);
            ports.extend(
                own.into_iter()
                    .filter(|p| !ports.contains(p))
                    .collect::<Vec<_>>(),
            );
        }
    }
    if !names.is_empty() {
        let ports: Vec<String> = ports.iter().map(i64::to_string).collect();
        let (verb, noun) = if names.len() == 1 && ports.len() == 1 {
            ("uses", "hostPort")
        } else if names.len() == 1 {
            ("uses", "hostPorts")
        } else {
            ("use", "hostPorts")
        };
        push(
            "hostPort",
            format!(
                "{} {verb} {noun} {}",
                who(&names, "container", "containers"),
                ports.join(", ")
            ),
        );
    }
    // privileged
    let names: Vec<&str> = cs
        .iter()
        .filter(|c| c.sc("privileged").as_bool() == Some(true))
        .map(|c| c.name)
        .collect();
    if !names.is_empty() {
        push(
            "privileged",
            format!(
                "{} must not set securityContext.privileged=true",
                who(&names, "container", "containers")
            ),
        );
    }
    // procMount
    let names: Vec<&str> = cs
        .iter()
        .filter(|c| c.sc("procMount").as_str().is_some_and(|m| m != "Default"))
        .map(|c| c.name)
        .collect();
    if !names.is_empty() {
        push(
            "procMount",
            format!(
                "{} must not set securityContext.procMount to \"Unmasked\"",
                who(&names, "container", "containers")
            ),
        );
    }
    let pod_seccomp = spec["securityContext"]["seccompProfile"]["type"].as_str();
    // seccompProfile_baseline (restricted's own check replaces it).
    if !restricted {
        let mut details = Vec::new();
        if pod_seccomp == Some("Unconfined") {
            details.push(
                "pod must not set securityContext.seccompProfile.type to \"Unconfined\"".to_owned(),
            );
        }
        let names: Vec<&str> = cs
            .iter()
            .filter(|c| c.sc("seccompProfile")["type"].as_str() == Some("Unconfined"))
            .map(|c| c.name)
            .collect();
        if !names.is_empty() {
            details.push(format!(
                "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
                who(&names, "container", "containers")
            ));
        }
        if !details.is_empty() {
            push("seccompProfile", details.join("; "));
        }
    }
    // sysctls
    let bad: Vec<&str> = spec["securityContext"]["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .collect();
    if !bad.is_empty() {
        push("forbidden sysctls", bad.join(", "));
    }
    if !restricted {
        return out;
    }

    // allowPrivilegeEscalation
    let names: Vec<&str> = cs
        .iter()
        .filter(|c| c.sc("allowPrivilegeEscalation").as_bool() != Some(false))
        .map(|c| c.name)
        .collect();
    if !names.is_empty() {
        push(
            "allowPrivilegeEscalation != false",
            format!(
                "{} must set securityContext.allowPrivilegeEscalation=false",
                who(&names, "container", "containers")
            ),
        );
    }
    // capabilities_restricted
    let mut details = Vec::new();
    let no_drop: Vec<&str> = cs
        .iter()
        .filter(|c| {
            !c.sc("capabilities")["drop"]
                .as_array()
                .is_some_and(|d| d.iter().any(|x| x == "ALL"))
        })
        .map(|c| c.name)
        .collect();
    if !no_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            who(&no_drop, "container", "containers")
        ));
    }
    let mut names = Vec::new();
    let mut caps: Vec<&str> = Vec::new();
    for c in &cs {
        let bad: Vec<&str> = added_capabilities(c)
            .into_iter()
            .filter(|cap| *cap != "NET_BIND_SERVICE")
            .collect();
        if !bad.is_empty() {
            names.push(c.name);
            caps.extend(bad.iter().filter(|b| !caps.contains(b)).collect::<Vec<_>>());
        }
    }
    if !names.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            who(&names, "container", "containers"),
            quote_join(&caps)
        ));
    }
    if !details.is_empty() {
        push("unrestricted capabilities", details.join("; "));
    }
    // restrictedVolumes
    let mut names = Vec::new();
    let mut types: Vec<String> = Vec::new();
    for v in &volumes {
        let kind = v
            .as_object()
            .into_iter()
            .flatten()
            .find(|(k, val)| *k != "name" && !val.is_null())
            .map(|(k, _)| k.clone());
        if let Some(kind) = kind.filter(|k| !RESTRICTED_VOLUME_TYPES.contains(&k.as_str())) {
            names.push(volume_name(v));
            if !types.contains(&kind) {
                types.push(kind);
            }
        }
    }
    if !names.is_empty() {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let type_refs: Vec<&str> = types.iter().map(String::as_str).collect();
        let (verb, noun) = match (refs.len(), type_refs.len()) {
            (1, 1) => ("uses", "restricted volume type"),
            (1, _) => ("uses", "restricted volume types"),
            (_, 1) => ("use", "restricted volume type"),
            _ => ("use", "restricted volume types"),
        };
        push(
            "restricted volume types",
            format!(
                "{} {verb} {noun} {}",
                who(&refs, "volume", "volumes"),
                quote_join(&type_refs)
            ),
        );
    }
    // runAsNonRoot
    let pod_non_root = spec["securityContext"]["runAsNonRoot"].as_bool();
    let mut details = Vec::new();
    if pod_non_root == Some(false) {
        details.push("pod must not set securityContext.runAsNonRoot=false".to_owned());
    }
    let explicit_false: Vec<&str> = cs
        .iter()
        .filter(|c| c.sc("runAsNonRoot").as_bool() == Some(false))
        .map(|c| c.name)
        .collect();
    if !explicit_false.is_empty() {
        details.push(format!(
            "{} must not set securityContext.runAsNonRoot=false",
            who(&explicit_false, "container", "containers")
        ));
    }
    if pod_non_root != Some(true) {
        let unset: Vec<&str> = cs
            .iter()
            .filter(|c| c.sc("runAsNonRoot").is_null())
            .map(|c| c.name)
            .collect();
        if !unset.is_empty() {
            details.push(format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                who(&unset, "container", "containers")
            ));
        }
    }
    if !details.is_empty() {
        push("runAsNonRoot != true", details.join("; "));
    }
    // runAsUser
    let mut details = Vec::new();
    if spec["securityContext"]["runAsUser"].as_i64() == Some(0) {
        details.push("pod must not set runAsUser=0".to_owned());
    }
    let names: Vec<&str> = cs
        .iter()
        .filter(|c| c.sc("runAsUser").as_i64() == Some(0))
        .map(|c| c.name)
        .collect();
    if !names.is_empty() {
        details.push(format!(
            "{} must not set runAsUser=0",
            who(&names, "container", "containers")
        ));
    }
    if !details.is_empty() {
        push("runAsUser=0", details.join("; "));
    }
    // seccompProfile_restricted
    let good = |t: Option<&str>| matches!(t, Some("RuntimeDefault" | "Localhost"));
    let mut details = Vec::new();
    if let Some(t) = pod_seccomp.filter(|t| !good(Some(t))) {
        details.push(format!(
            "pod must not set securityContext.seccompProfile.type to {t:?}"
        ));
    }
    let mut bad_types: Vec<&str> = Vec::new();
    let bad: Vec<&str> = cs
        .iter()
        .filter(|c| {
            let t = c.sc("seccompProfile")["type"].as_str();
            if t.is_some() && !good(t) {
                if let Some(t) = t.filter(|t| !bad_types.contains(t)) {
                    bad_types.push(t);
                }
                return true;
            }
            false
        })
        .map(|c| c.name)
        .collect();
    if !bad.is_empty() {
        details.push(format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            who(&bad, "container", "containers"),
            quote_join(&bad_types)
        ));
    }
    if !good(pod_seccomp) {
        let unset: Vec<&str> = cs
            .iter()
            .filter(|c| c.sc("seccompProfile")["type"].is_null())
            .map(|c| c.name)
            .collect();
        if !unset.is_empty() {
            details.push(format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                who(&unset, "container", "containers")
            ));
        }
    }
    if !details.is_empty() {
        push("seccompProfile", details.join("; "));
    }
    out
}

/// Upstream's summary: `reason (detail), reason (detail)`.
fn summary(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            if v.detail.is_empty() {
                v.reason.to_owned()
            } else {
                format!("{} ({})", v.reason, v.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pod spec a request carries: a pod's own, or a workload's template.
fn pod_spec(attrs: &Attributes) -> Option<(&Value, bool)> {
    let object = attrs.object.as_ref()?;
    if attrs.is_core("pods") {
        return Some((&object["spec"], true));
    }
    let template = match (attrs.resource.group.as_str(), attrs.resource.name.as_str()) {
        ("", "replicationcontrollers")
        | ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => &object["spec"]["template"]["spec"],
        ("batch", "cronjobs") => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        ("", "podtemplates") => &object["template"]["spec"],
        _ => return None,
    };
    attrs.subresource.is_empty().then_some((template, false))
}

/// The plugin.
#[derive(Debug)]
pub struct PodSecurity {
    cluster: Arc<dyn Cluster>,
}

impl PodSecurity {
    /// The plugin over `cluster`'s namespaces.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        PodSecurity { cluster }
    }
}

#[async_trait]
impl Plugin for PodSecurity {
    fn name(&self) -> &'static str {
        "PodSecurity"
    }

    async fn validate(&self, attrs: &Attributes, warnings: &Warnings) -> Result<()> {
        if !matches!(attrs.op(), Operation::Create | Operation::Update)
            || attrs.namespace.is_empty()
        {
            return Ok(());
        }
        let Some((spec, is_pod)) = pod_spec(attrs) else {
            return Ok(());
        };
        // Updates of a pod that leave its spec alone are never re-checked.
        if attrs.op() == Operation::Update
            && attrs.old_object.as_ref().map(|o| &o["spec"]) == Some(spec)
        {
            return Ok(());
        }
        let Some(namespace) = self
            .cluster
            .get(("", "namespaces"), "", &attrs.namespace)
            .await?
        else {
            return Ok(());
        };
        let labels = &namespace["metadata"]["labels"];
        let policy = |mode: &str| {
            let level = labels[format!("{LABEL_PREFIX}{mode}")]
                .as_str()
                .and_then(Level::parse)?;
            let version = labels[format!("{LABEL_PREFIX}{mode}-version")]
                .as_str()
                .unwrap_or("latest");
            Some((level, version.to_owned()))
        };
        if is_pod && let Some((level, version)) = policy("enforce") {
            let violations = check(level, spec);
            if !violations.is_empty() {
                return Err(attrs.forbidden(format!(
                    "violates PodSecurity \"{}:{version}\": {}",
                    level.as_str(),
                    summary(&violations)
                )));
            }
        }
        if let Some((level, version)) = policy("warn") {
            let violations = check(level, spec);
            if !violations.is_empty() {
                warnings.add(format!(
                    "would violate PodSecurity \"{}:{version}\": {}",
                    level.as_str(),
                    summary(&violations)
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeCluster, attrs};
    use serde_json::json;

    fn cluster(labels: Value) -> Arc<FakeCluster> {
        let cluster = FakeCluster::default();
        cluster.put(
            ("", "namespaces"),
            json!({"metadata": {"name": "ns", "labels": labels}}),
        );
        Arc::new(cluster)
    }

    #[tokio::test]
    async fn restricted_refuses_a_privileged_pod_with_upstreams_message() {
        let plugin = PodSecurity::new(cluster(
            json!({"pod-security.kubernetes.io/enforce": "restricted"}),
        ));
        let pod = json!({"metadata": {"name": "x"}, "spec": {"hostPID": true, "containers": [
            {"name": "c", "image": "nginx", "securityContext": {"privileged": true, "runAsUser": 0}}
        ]}});
        let a = attrs(Operation::Create, "", "pods", "Pod", "ns", Some(pod));
        let err = plugin.validate(&a, &Warnings::default()).await.unwrap_err();
        assert_eq!(err.code(), 403);
        assert_eq!(
            err.message(),
            r#"pods "x" is forbidden: violates PodSecurity "restricted:latest": host namespaces (hostPID=true), privileged (container "c" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), runAsUser=0 (container "c" must not set runAsUser=0), seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
        );
    }

    #[tokio::test]
    async fn a_compliant_pod_passes_and_warn_mode_warns() {
        let plugin = PodSecurity::new(cluster(json!({
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/warn-version": "v1.34"
        })));
        let good = json!({"metadata": {"name": "ok"}, "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]
        }});
        let w = Warnings::default();
        plugin
            .validate(
                &attrs(Operation::Create, "", "pods", "Pod", "ns", Some(good)),
                &w,
            )
            .await
            .unwrap();
        assert!(w.take().is_empty());
        let deployment = json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {
            "containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 80}]},
                           {"name": "b", "ports": [{"containerPort": 81, "hostPort": 81}]}]
        }}}});
        let a = attrs(
            Operation::Create,
            "apps",
            "deployments",
            "Deployment",
            "ns",
            Some(deployment),
        );
        plugin.validate(&a, &w).await.unwrap();
        let warned = w.take();
        assert_eq!(warned.len(), 1);
        assert!(
            warned[0].starts_with(r#"would violate PodSecurity "restricted:v1.34": hostPort (containers "a", "b" use hostPorts 80, 81), allowPrivilegeEscalation != false (containers "a", "b" must set"#),
            "{}",
            warned[0]
        );
    }

    #[test]
    fn baseline_allows_default_capabilities_only() {
        let spec = json!({"containers": [{"name": "c", "securityContext": {"capabilities": {"add": ["CHOWN", "SYS_ADMIN"]}}}],
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}]});
        assert_eq!(
            summary(&check(Level::Baseline, &spec)),
            r#"non-default capabilities (container "c" must not include "SYS_ADMIN" in securityContext.capabilities.add), hostPath volumes (volume "h")"#
        );
    }
}
