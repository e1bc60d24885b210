//! PodSecurity: the Pod Security Standards (privileged, baseline, restricted) enforced, audited
//! or warned about per namespace, from its `pod-security.kubernetes.io/<mode>[-version]`
//! labels over the configured defaults, with upstream's checks, messages and audit
//! annotations.
//!
//! - [`policy`]: levels, versions, a namespace's policy from its labels, the plugin's
//!   configuration (defaults and exemptions).
//! - [`checks`]: the checks, by level and version.
//!
//! Pods are evaluated against all three modes; pod controllers (Deployments, Jobs...) against
//! audit and warn only; namespaces have their labels validated, and a stricter enforce level
//! is tried on the pods already there (warnings only).

pub mod checks;
pub mod policy;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use rkube_api::resources::GroupKind;
use rkube_api::status::ApiError;
use serde_json::Value;

use crate::attributes::{Attributes, Operation};
use crate::chain::{Cluster, Plugin, Result, Warnings};
use checks::{Pod, Violation};
use policy::{Config, Level, LevelVersion, PREFIX, Policy};

/// Upstream's cap on the pods a namespace label change is tried on.
const MAX_PODS_TO_CHECK: usize = 3000;

/// Pod subresources that never change what PodSecurity checks.
const IGNORED_POD_SUBRESOURCES: &[&str] = &[
    "exec",
    "attach",
    "binding",
    "eviction",
    "log",
    "portforward",
    "proxy",
    "status",
];

/// The plugin.
#[derive(Debug)]
pub struct PodSecurity {
    cluster: Arc<dyn Cluster>,
    config: Config,
}

impl PodSecurity {
    /// The plugin over `cluster`'s namespaces and pods, with `config`'s defaults and
    /// exemptions.
    pub fn new(cluster: Arc<dyn Cluster>, config: Config) -> Self {
        PodSecurity { cluster, config }
    }

    fn exempt_namespace(&self, namespace: &str) -> bool {
        !namespace.is_empty()
            && self
                .config
                .exemptions
                .namespaces
                .iter()
                .any(|n| n == namespace)
    }

    fn exempt_user(&self, user: &str) -> bool {
        !user.is_empty() && self.config.exemptions.usernames.iter().any(|u| u == user)
    }

    fn exempt_runtime_class(&self, spec: &Value) -> bool {
        spec["runtimeClassName"]
            .as_str()
            .filter(|rc| !rc.is_empty())
            .is_some_and(|rc| {
                self.config
                    .exemptions
                    .runtime_classes
                    .iter()
                    .any(|e| e == rc)
            })
    }

    /// The namespace's policy (labels over the defaults) and its label errors.
    fn policy_of(&self, namespace: &Value) -> (Policy, Vec<rkube_api::field::FieldError>) {
        Policy::for_labels(&policy::labels_of(namespace), &self.config.defaults)
    }
}

/// Records `pod-security.kubernetes.io/<key>`.
fn annotate(attrs: &Attributes, key: &str, value: impl Into<String>) {
    attrs.audit_annotations.add(format!("{PREFIX}{key}"), value);
}

/// The pod template a pod controller carries (`None`: not a pod controller, or no template).
fn template<'a>(attrs: &Attributes, object: &'a Value) -> Option<Option<&'a Value>> {
    let template = match (attrs.resource.group.as_str(), attrs.resource.name.as_str()) {
        ("", "replicationcontrollers")
        | ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => &object["spec"]["template"],
        ("batch", "cronjobs") => &object["spec"]["jobTemplate"]["spec"]["template"],
        ("", "podtemplates") => &object["template"],
        _ => return None,
    };
    Some((!template.is_null()).then_some(template))
}

/// Upstream's `isSignificantPodUpdate`: only container images (and added or changed
/// ephemeral containers) can change what the checks see on an update.
fn significant_pod_update(new: &Value, old: &Value) -> bool {
    let list =
        |pod: &Value, field: &str| pod["spec"][field].as_array().cloned().unwrap_or_default();
    for field in ["containers", "initContainers"] {
        let (n, o) = (list(new, field), list(old, field));
        if n.len() != o.len() || n.iter().zip(&o).any(|(a, b)| a["image"] != b["image"]) {
            return true;
        }
    }
    let old_ephemeral = list(old, "ephemeralContainers");
    list(new, "ephemeralContainers").iter().any(|c| {
        old_ephemeral
            .iter()
            .find(|o| o["name"] == c["name"])
            .is_none_or(|o| o["image"] != c["image"])
    })
}

impl PodSecurity {
    async fn namespace(&self, name: &str) -> Result<Option<Value>> {
        self.cluster.get(("", "namespaces"), "", name).await
    }

    /// A namespace create or update: labels must be valid (unless they were already invalid
    /// in the same way), and a stricter enforce level is tried on the pods already there.
    async fn validate_namespace(&self, attrs: &Attributes, warnings: &Warnings) -> Result<()> {
        let Some(namespace) = attrs
            .object
            .as_ref()
            .filter(|_| attrs.subresource.is_empty())
        else {
            return Ok(());
        };
        let name = namespace["metadata"]["name"]
            .as_str()
            .unwrap_or(&attrs.name);
        let (policy, errors) = self.policy_of(namespace);
        let invalid = || ApiError::invalid(GroupKind::new("", "Namespace"), &attrs.name, &errors);
        match attrs.op() {
            Operation::Create => {
                if !errors.is_empty() {
                    return Err(invalid());
                }
                self.warn_if_exempt(name, &policy, namespace, warnings);
            }
            Operation::Update => {
                let Some(old) = attrs.old_object.as_ref() else {
                    return Ok(());
                };
                let (old_policy, old_errors) = self.policy_of(old);
                if !errors.is_empty() && (old_errors.is_empty() || errors != old_errors) {
                    return Err(invalid());
                }
                let (new, old) = (policy.enforce, old_policy.enforce);
                let relaxed = new.version == old.version && new.level <= old.level;
                if new == old || new.level == Level::Privileged || relaxed {
                    return Ok(());
                }
                if self.warn_if_exempt(name, &policy, namespace, warnings) {
                    return Ok(());
                }
                for warning in self.evaluate_existing_pods(name, new).await {
                    warnings.add(warning);
                }
            }
            Operation::Delete | Operation::Connect => {}
        }
        Ok(())
    }

    /// Upstream's warning for an exempt namespace whose labels ask for a policy; answers
    /// whether the namespace is exempt.
    fn warn_if_exempt(
        &self,
        name: &str,
        policy: &Policy,
        namespace: &Value,
        warnings: &Warnings,
    ) -> bool {
        if !self.exempt_namespace(name) {
            return false;
        }
        if policy.fully_privileged() || policy.equivalent(&self.config.defaults) {
            return true;
        }
        let labels = policy::labels_of(namespace);
        let modes: Vec<String> = policy::Mode::ALL
            .into_iter()
            .filter(|mode| {
                let label = format!("{PREFIX}{}", mode.as_str());
                policy.get(*mode).level != Level::Privileged
                    && (labels.contains_key(&label)
                        || labels.contains_key(&format!("{label}-version")))
            })
            .map(|mode| format!("{}={}", mode.as_str(), policy.get(mode)))
            .collect();
        warnings.add(format!(
            "namespace {name:?} is exempt from Pod Security, and the policy ({}) will be ignored",
            modes.join(", ")
        ));
        true
    }

    /// Upstream's `EvaluatePodsInNamespace`: the pods already in `namespace` that the new
    /// enforce level would refuse, grouped by what they violate.
    async fn evaluate_existing_pods(&self, namespace: &str, enforce: LevelVersion) -> Vec<String> {
        let pods = match self.cluster.list(("", "pods"), Some(namespace)).await {
            Ok(pods) => pods,
            Err(e) => {
                tracing::warn!(namespace, error = %e, "failed to list pods");
                return vec![
                    "failed to list pods while checking new PodSecurity enforce level".into(),
                ];
            }
        };
        let pods = self.prioritize(pods);
        let total = pods.len();
        let checked = total.min(MAX_PODS_TO_CHECK);
        // Each distinct set of reasons with the lexically first pod name and how many pods.
        let mut order: Vec<String> = Vec::new();
        let mut counts: HashMap<String, (String, usize)> = HashMap::new();
        for pod in &pods[..checked] {
            let violations = checks::evaluate(
                enforce,
                &Pod {
                    meta: &pod["metadata"],
                    spec: &pod["spec"],
                },
            );
            if violations.is_empty() {
                continue;
            }
            let reasons = checks::reasons(&violations);
            let name = pod["metadata"]["name"].as_str().unwrap_or("").to_owned();
            let entry = counts.entry(reasons.clone()).or_insert_with(|| {
                order.push(reasons);
                (name.clone(), 0)
            });
            if name < entry.0 {
                entry.0 = name;
            }
            entry.1 += 1;
        }
        let mut out = Vec::new();
        if checked < total {
            out.push(format!(
                "new PodSecurity enforce level only checked against the first {checked} of {total} existing pods"
            ));
        }
        if !order.is_empty() {
            out.push(format!(
                "existing pods in namespace {namespace:?} violate the new PodSecurity enforce level \"{enforce}\""
            ));
        }
        let mut pod_warnings: Vec<String> = order
            .into_iter()
            .map(|reasons| {
                let (name, count) = &counts[&reasons];
                match count {
                    1 => format!("{name}: {reasons}"),
                    2 => format!("{name} (and 1 other pod): {reasons}"),
                    n => format!("{name} (and {} other pods): {reasons}", n - 1),
                }
            })
            .collect();
        pod_warnings.sort();
        out.extend(pod_warnings);
        out
    }

    /// Pods of exempt runtime classes dropped; one pod per controller first, the other
    /// replicas after (they are most likely alike).
    fn prioritize(&self, pods: Vec<Value>) -> Vec<Value> {
        let mut first = Vec::new();
        let mut replicas = Vec::new();
        let mut controllers = std::collections::HashSet::new();
        for pod in pods {
            if self.exempt_runtime_class(&pod["spec"]) {
                continue;
            }
            let controller = pod["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["controller"] == true)
                .map(|r| r["uid"].as_str().unwrap_or("").to_owned());
            match controller {
                Some(uid) if controllers.contains(&uid) => replicas.push(pod),
                Some(uid) => {
                    controllers.insert(uid);
                    first.push(pod);
                }
                None => first.push(pod),
            }
        }
        first.extend(replicas);
        first
    }

    /// A pod create or update (or a pod subresource that carries the pod).
    async fn validate_pod(&self, attrs: &Attributes, warnings: &Warnings) -> Result<()> {
        if IGNORED_POD_SUBRESOURCES.contains(&attrs.subresource.as_str()) {
            return Ok(());
        }
        if self.exempt_namespace(&attrs.namespace) {
            annotate(attrs, "exempt", "namespace");
            return Ok(());
        }
        if self.exempt_user(&attrs.user.name) {
            annotate(attrs, "exempt", "user");
            return Ok(());
        }
        let lookup_failed =
            || ApiError::internal(format!("failed to lookup namespace {:?}", attrs.namespace));
        let namespace = match self.namespace(&attrs.namespace).await {
            Ok(Some(ns)) => ns,
            Ok(None) => return Err(lookup_failed()),
            Err(e) => {
                tracing::warn!(namespace = %attrs.namespace, error = %e, "failed to fetch pod namespace");
                return Err(lookup_failed());
            }
        };
        let (policy, errors) = self.policy_of(&namespace);
        if errors.is_empty() && policy.fully_privileged() {
            annotate(attrs, "enforce-policy", "privileged:latest");
            return Ok(());
        }
        let Some(pod) = attrs.object.as_ref() else {
            return Ok(());
        };
        if attrs.op() == Operation::Update
            && let Some(old) = attrs.old_object.as_ref()
            && !significant_pod_update(pod, old)
        {
            return Ok(());
        }
        let pod = Pod {
            meta: &pod["metadata"],
            spec: &pod["spec"],
        };
        self.evaluate(attrs, warnings, &policy, &errors, &pod, true)
    }

    /// A pod controller create or update: audit and warn only (its pods are enforced when
    /// created).
    async fn validate_controller(
        &self,
        attrs: &Attributes,
        warnings: &Warnings,
        object: &Value,
    ) -> Result<()> {
        if !attrs.subresource.is_empty() {
            return Ok(());
        }
        if self.exempt_namespace(&attrs.namespace) {
            annotate(attrs, "exempt", "namespace");
            return Ok(());
        }
        if self.exempt_user(&attrs.user.name) {
            annotate(attrs, "exempt", "user");
            return Ok(());
        }
        let namespace = match self.namespace(&attrs.namespace).await {
            Ok(Some(ns)) => ns,
            Ok(None) => {
                annotate(
                    attrs,
                    "error",
                    format!(
                        "failed to lookup namespace {:?}: namespace not found",
                        attrs.namespace
                    ),
                );
                return Ok(());
            }
            Err(e) => {
                annotate(
                    attrs,
                    "error",
                    format!("failed to lookup namespace {:?}: {e}", attrs.namespace),
                );
                return Ok(());
            }
        };
        let (policy, errors) = self.policy_of(&namespace);
        if errors.is_empty()
            && policy.warn.level == Level::Privileged
            && policy.audit.level == Level::Privileged
        {
            return Ok(());
        }
        let Some(Some(template)) = template(attrs, object) else {
            return Ok(());
        };
        let pod = Pod {
            meta: &template["metadata"],
            spec: &template["spec"],
        };
        self.evaluate(attrs, warnings, &policy, &errors, &pod, false)
    }

    /// Upstream's `EvaluatePod`: enforce (pods only), audit and warn, each level evaluated
    /// once.
    fn evaluate(
        &self,
        attrs: &Attributes,
        warnings: &Warnings,
        policy: &Policy,
        errors: &[rkube_api::field::FieldError],
        pod: &Pod<'_>,
        enforce: bool,
    ) -> Result<()> {
        if self.exempt_runtime_class(pod.spec) {
            annotate(attrs, "exempt", "runtimeClass");
            return Ok(());
        }
        if let Some(err) = rkube_api::field::aggregate(errors) {
            annotate(attrs, "error", format!("Failed to parse policy: {err}"));
        }
        let mut results: Vec<(LevelVersion, Vec<Violation>)> = Vec::new();
        let mut result = |lv: LevelVersion| -> Vec<Violation> {
            if let Some((_, v)) = results.iter().find(|(k, _)| *k == lv) {
                return v.clone();
            }
            let v = checks::evaluate(lv, pod);
            results.push((lv, v.clone()));
            v
        };
        let mut refusal = None;
        if enforce {
            annotate(attrs, "enforce-policy", policy.enforce.to_string());
            let violations = result(policy.enforce);
            if !violations.is_empty() {
                refusal = Some(attrs.forbidden(format!(
                    "violates PodSecurity \"{}\": {}",
                    policy.enforce,
                    checks::details(&violations)
                )));
            }
        }
        let violations = result(policy.audit);
        if !violations.is_empty() {
            annotate(
                attrs,
                "audit-violations",
                format!(
                    "would violate PodSecurity \"{}\": {}",
                    policy.audit,
                    checks::details(&violations)
                ),
            );
        }
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        let violations = result(policy.warn);
        if !violations.is_empty() {
            warnings.add(format!(
                "would violate PodSecurity \"{}\": {}",
                policy.warn,
                checks::details(&violations)
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Plugin for PodSecurity {
    fn name(&self) -> &'static str {
        "PodSecurity"
    }

    async fn validate(&self, attrs: &Attributes, warnings: &Warnings) -> Result<()> {
        if !matches!(attrs.op(), Operation::Create | Operation::Update) {
            return Ok(());
        }
        if attrs.resource.is_core("namespaces") {
            return self.validate_namespace(attrs, warnings).await;
        }
        if attrs.namespace.is_empty() {
            return Ok(());
        }
        if attrs.resource.is_core("pods") {
            return self.validate_pod(attrs, warnings).await;
        }
        match attrs.object.as_ref() {
            Some(object) if template(attrs, object).is_some() => {
                self.validate_controller(attrs, warnings, object).await
            }
            _ => Ok(()),
        }
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

    fn plugin(labels: Value) -> PodSecurity {
        PodSecurity::new(cluster(labels), Config::default())
    }

    fn pod_attrs(spec: Value) -> Attributes {
        let pod = json!({"metadata": {"name": "x"}, "spec": spec});
        attrs(Operation::Create, "", "pods", "Pod", "ns", Some(pod))
    }

    fn annotations(a: &Attributes) -> Vec<(String, String)> {
        a.audit_annotations.snapshot()
    }

    fn summary(level: Level, version: policy::Version, spec: Value) -> String {
        let pod = Pod {
            meta: &Value::Null,
            spec: &spec,
        };
        checks::details(&checks::evaluate(LevelVersion { level, version }, &pod))
    }

    const PRIVILEGED_POD: &str = r#"{"hostPID": true, "containers": [
        {"name": "c", "image": "nginx", "securityContext": {"privileged": true, "runAsUser": 0}}]}"#;

    #[tokio::test]
    async fn restricted_refuses_a_privileged_pod_with_upstreams_message_and_annotation() {
        let plugin = plugin(json!({"pod-security.kubernetes.io/enforce": "restricted"}));
        let a = pod_attrs(serde_json::from_str(PRIVILEGED_POD).unwrap());
        let err = plugin.validate(&a, &Warnings::default()).await.unwrap_err();
        assert_eq!(err.code(), 403);
        assert_eq!(
            err.message(),
            r#"pods "x" is forbidden: violates PodSecurity "restricted:latest": host namespaces (hostPID=true), privileged (container "c" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), runAsUser=0 (container "c" must not set runAsUser=0), seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
        );
        assert_eq!(
            annotations(&a),
            [(
                "pod-security.kubernetes.io/enforce-policy".to_owned(),
                "restricted:latest".to_owned()
            )]
        );
    }

    #[tokio::test]
    async fn audit_records_violations_and_enforce_defaults_warn_for_controllers() {
        let plugin = plugin(json!({
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/enforce-version": "v1.30",
            "pod-security.kubernetes.io/audit": "restricted",
        }));
        // A pod that passes baseline: allowed, restricted's violations audited.
        let a = pod_attrs(json!({"containers": [{"name": "c", "image": "nginx"}]}));
        let w = Warnings::default();
        plugin.validate(&a, &w).await.unwrap();
        assert!(w.take().is_empty());
        assert_eq!(
            annotations(&a),
            [
                (
                    "pod-security.kubernetes.io/enforce-policy".to_owned(),
                    "baseline:v1.30".to_owned()
                ),
                (
                    "pod-security.kubernetes.io/audit-violations".to_owned(),
                    r#"would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#.to_owned()
                ),
            ]
        );
        // A Deployment is never refused, but enforce's level warns (warn defaults to it).
        let deployment = json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {
            "containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 80}]},
                           {"name": "b", "ports": [{"containerPort": 443, "hostPort": 443}]}]
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
        assert_eq!(
            w.take(),
            [
                r#"would violate PodSecurity "baseline:v1.30": hostPort (containers "a", "b" use hostPorts 443, 80)"#
            ]
        );
        assert!(
            annotations(&a)
                .iter()
                .all(|(k, _)| k != "pod-security.kubernetes.io/enforce-policy")
        );
    }

    #[tokio::test]
    async fn configured_defaults_and_exemptions_apply() {
        let config = Config::from_value(json!({
            "apiVersion": "pod-security.admission.config.k8s.io/v1",
            "kind": "PodSecurityConfiguration",
            "defaults": {"enforce": "baseline"},
            "exemptions": {"usernames": ["ops"], "runtimeClasses": ["kata"], "namespaces": ["free"]}
        }))
        .unwrap();
        let plugin = PodSecurity::new(cluster(json!({})), config);
        let spec = serde_json::from_str::<Value>(PRIVILEGED_POD).unwrap();
        let err = plugin
            .validate(&pod_attrs(spec.clone()), &Warnings::default())
            .await
            .unwrap_err();
        assert!(
            err.message()
                .contains(r#"violates PodSecurity "baseline:latest""#),
            "{}",
            err.message()
        );
        let mut by_ops = pod_attrs(spec.clone());
        by_ops.user.name = "ops".into();
        plugin
            .validate(&by_ops, &Warnings::default())
            .await
            .unwrap();
        let mut kata = spec.clone();
        kata["runtimeClassName"] = "kata".into();
        let kata = pod_attrs(kata);
        plugin.validate(&kata, &Warnings::default()).await.unwrap();
        let mut free = pod_attrs(spec);
        free.namespace = "free".into();
        plugin.validate(&free, &Warnings::default()).await.unwrap();
        for (a, why) in [
            (&by_ops, "user"),
            (&kata, "runtimeClass"),
            (&free, "namespace"),
        ] {
            assert_eq!(
                annotations(a),
                [(
                    "pod-security.kubernetes.io/exempt".to_owned(),
                    why.to_owned()
                )]
            );
        }
    }

    #[tokio::test]
    async fn only_image_changes_reevaluate_a_pod() {
        let plugin = plugin(json!({"pod-security.kubernetes.io/enforce": "baseline"}));
        let old = json!({"metadata": {"name": "x"}, "spec": {"hostPID": true, "containers": [{"name": "c", "image": "a"}]}});
        let mut new = old.clone();
        new["metadata"]["labels"] = json!({"k": "v"});
        let mut a = attrs(
            Operation::Update,
            "",
            "pods",
            "Pod",
            "ns",
            Some(new.clone()),
        );
        a.old_object = Some(old);
        plugin.validate(&a, &Warnings::default()).await.unwrap();
        new["spec"]["containers"][0]["image"] = "b".into();
        a.object = Some(new);
        assert_eq!(
            plugin
                .validate(&a, &Warnings::default())
                .await
                .unwrap_err()
                .code(),
            403
        );
    }

    #[tokio::test]
    async fn namespace_labels_are_validated_and_stricter_levels_tried_on_existing_pods() {
        let cluster = FakeCluster::default();
        let ns = |labels: Value| json!({"metadata": {"name": "ns", "labels": labels}});
        cluster.put(("", "namespaces"), ns(json!({})));
        for (name, owner, spec) in [
            (
                "web-2",
                "rs1",
                json!({"hostNetwork": true, "containers": [{"name": "c"}]}),
            ),
            (
                "web-1",
                "rs1",
                json!({"hostNetwork": true, "containers": [{"name": "c"}]}),
            ),
            (
                "solo",
                "",
                json!({"containers": [{"name": "c", "securityContext": {"privileged": true}}]}),
            ),
            ("fine", "", json!({"containers": [{"name": "c"}]})),
        ] {
            let mut pod = json!({"metadata": {"name": name, "namespace": "ns"}, "spec": spec});
            if !owner.is_empty() {
                pod["metadata"]["ownerReferences"] = json!([{"uid": owner, "controller": true}]);
            }
            cluster.put(("", "pods"), pod);
        }
        let plugin = PodSecurity::new(Arc::new(cluster), Config::default());
        let update = |old: Value, new: Value| {
            let mut a = attrs(
                Operation::Update,
                "",
                "namespaces",
                "Namespace",
                "",
                Some(new),
            );
            a.old_object = Some(old);
            a
        };
        let w = Warnings::default();
        let bad = ns(json!({"pod-security.kubernetes.io/enforce": "strict"}));
        let a = attrs(
            Operation::Create,
            "",
            "namespaces",
            "Namespace",
            "",
            Some(bad.clone()),
        );
        let err = plugin.validate(&a, &w).await.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (
                422,
                r#"Namespace "ns" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#
            )
        );
        // Already invalid in the same way: other changes go through.
        let mut relabelled = bad.clone();
        relabelled["metadata"]["labels"]["team"] = "a".into();
        plugin.validate(&update(bad, relabelled), &w).await.unwrap();

        let baseline = ns(json!({"pod-security.kubernetes.io/enforce": "baseline"}));
        plugin
            .validate(&update(ns(json!({})), baseline.clone()), &w)
            .await
            .unwrap();
        assert_eq!(
            w.take(),
            [
                r#"existing pods in namespace "ns" violate the new PodSecurity enforce level "baseline:latest""#,
                "solo: privileged",
                "web-1 (and 1 other pod): host namespaces",
            ]
        );
        // Relaxing the level checks nothing.
        plugin
            .validate(&update(baseline, ns(json!({}))), &w)
            .await
            .unwrap();
        assert!(w.take().is_empty());
    }

    #[test]
    fn baseline_checks_apparmor_selinux_capabilities_and_volumes() {
        let spec = json!({
            "securityContext": {"appArmorProfile": {"type": "Unconfined"}, "seLinuxOptions": {"type": "spc_t", "user": "root"}},
            "containers": [
                {"name": "c", "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "CHOWN", "NET_ADMIN"]},
                 "appArmorProfile": {"type": "Localhost", "localhostProfile": "p"},
                 "seLinuxOptions": {"role": "sysadm_r"}}},
            ],
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}]
        });
        assert_eq!(
            summary(Level::Baseline, policy::Version::Latest, spec),
            r#"forbidden AppArmor profile (pod must not set AppArmor profile type to "Unconfined"), non-default capabilities (container "c" must not include "NET_ADMIN", "SYS_ADMIN" in securityContext.capabilities.add), hostPath volumes (volume "h"), seLinuxOptions (pod and container "c" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set; role may not be set)"#
        );
        let pod = Pod {
            meta: &json!({"annotations": {
                "container.apparmor.security.beta.kubernetes.io/a": "unconfined",
                "container.apparmor.security.beta.kubernetes.io/b": "runtime/default"
            }}),
            spec: &json!({"containers": [{"name": "a"}]}),
        };
        let lv = LevelVersion {
            level: Level::Baseline,
            version: policy::Version::Latest,
        };
        assert_eq!(
            checks::details(&checks::evaluate(lv, &pod)),
            r#"forbidden AppArmor profile (annotation must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/a="unconfined"")"#
        );
    }

    #[test]
    fn versions_pick_the_rules_of_their_time() {
        use policy::Version::V1;
        let engine_t = json!({"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}, "containers": []});
        assert_eq!(summary(Level::Baseline, V1(31), engine_t.clone()), "");
        assert_eq!(
            summary(Level::Baseline, V1(30), engine_t),
            r#"seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "container_engine_t")"#
        );
        let sysctl = json!({"securityContext": {"sysctls": [{"name": "net.ipv4.ip_local_reserved_ports", "value": "1"}]}, "containers": []});
        assert_eq!(summary(Level::Baseline, V1(27), sysctl.clone()), "");
        assert_eq!(
            summary(Level::Baseline, V1(26), sysctl),
            "forbidden sysctls (net.ipv4.ip_local_reserved_ports)"
        );
        // runAsUser=0 is a restricted violation from 1.23; before 1.22 capabilities were
        // baseline's rule and before 1.19 seccomp was read from annotations.
        let root = json!({"securityContext": {"runAsNonRoot": true, "runAsUser": 0},
            "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false}}]});
        assert_eq!(summary(Level::Restricted, V1(18), root.clone()), "");
        assert!(
            summary(Level::Restricted, V1(23), root)
                .contains("runAsUser=0 (pod must not set runAsUser=0)")
        );
        // Host probes are a baseline violation from 1.34 (the newest, which latest is).
        let probe = json!({"containers": [{"name": "c", "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}}]});
        assert_eq!(summary(Level::Baseline, V1(33), probe.clone()), "");
        let newest = summary(Level::Baseline, policy::Version::Latest, probe.clone());
        assert_eq!(
            newest,
            r#"probe or lifecycle host (container "c" uses probe or lifecycle host "10.0.0.1")"#
        );
        assert_eq!(summary(Level::Baseline, V1(99), probe), newest);
        // Windows pods need no Linux-only settings from 1.25.
        let windows = json!({"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": true}, "containers": [{"name": "c"}]});
        assert_eq!(summary(Level::Restricted, V1(25), windows.clone()), "");
        assert!(
            summary(Level::Restricted, V1(24), windows)
                .starts_with("allowPrivilegeEscalation != false")
        );
    }
}
