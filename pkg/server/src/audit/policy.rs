//! The audit policy (`--audit-policy-file`, an `audit.k8s.io/v1` Policy): read, validated as
//! upstream validates it (`pkg/apis/audit/validation`), and evaluated per request as upstream's
//! `policyRuleEvaluator`: rules in order, the first match decides; no match is level `None`.

use rkube_api::field::{FieldError, Path, aggregate};
use rkube_api::user::UserInfo;
use rkube_apiserver::request_info::RequestInfo;
use serde::Deserialize;
use serde_json::Value;

/// The only policy version upstream still reads (v1alpha1 and v1beta1 were removed).
pub const API_VERSION: &str = "audit.k8s.io/v1";

/// How much of a request is recorded, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Level {
    /// Nothing.
    None,
    /// Who did what to which object, and the answer's status.
    Metadata,
    /// Metadata and the request body.
    Request,
    /// Metadata, the request body and the response body.
    RequestResponse,
}

impl Level {
    const NAMES: [&'static str; 4] = ["None", "Metadata", "Request", "RequestResponse"];

    fn parse(name: &str) -> Option<Level> {
        Some(match name {
            "None" => Level::None,
            "Metadata" => Level::Metadata,
            "Request" => Level::Request,
            "RequestResponse" => Level::RequestResponse,
            _ => return None,
        })
    }
}

/// The points in a request's life at which an event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Stage {
    /// As soon as the request is authenticated, before it is handled.
    RequestReceived,
    /// When the response headers are sent, for long-running requests (watch, exec, logs).
    ResponseStarted,
    /// When the response is complete.
    ResponseComplete,
    /// When handling the request panicked.
    Panic,
}

impl Stage {
    const NAMES: [&'static str; 4] = [
        "RequestReceived",
        "ResponseStarted",
        "ResponseComplete",
        "Panic",
    ];

    fn parse(name: &str) -> Option<Stage> {
        Some(match name {
            "RequestReceived" => Stage::RequestReceived,
            "ResponseStarted" => Stage::ResponseStarted,
            "ResponseComplete" => Stage::ResponseComplete,
            "Panic" => Stage::Panic,
            _ => return None,
        })
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of stages (the stages a rule omits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stages(u8);

impl Stages {
    /// Whether `stage` is in the set.
    pub fn contains(self, stage: Stage) -> bool {
        self.0 & stage.bit() != 0
    }

    fn with(self, stage: Stage) -> Stages {
        Stages(self.0 | stage.bit())
    }

    fn union(self, other: Stages) -> Stages {
        Stages(self.0 | other.0)
    }
}

/// What the policy says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestConfig {
    /// How much is recorded.
    pub level: Level,
    /// Stages not written.
    pub omit_stages: Stages,
    /// Whether `managedFields` are dropped from recorded request and response objects.
    pub omit_managed_fields: bool,
}

/// A loaded, valid policy.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
    omit_stages: Stages,
    omit_managed_fields: bool,
}

#[derive(Debug, Clone)]
struct Rule {
    level: Level,
    users: Vec<String>,
    user_groups: Vec<String>,
    verbs: Vec<String>,
    resources: Vec<GroupResources>,
    namespaces: Vec<String>,
    non_resource_urls: Vec<String>,
    /// The rule's own stages joined with the policy's, as upstream joins them at load.
    omit_stages: Stages,
    omit_managed_fields: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupResources {
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    resources: Option<Vec<String>>,
    #[serde(default)]
    resource_names: Option<Vec<String>>,
}

/// Why a policy cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The text is not YAML (or JSON) of the policy's shape.
    #[error("failed decoding: {0}")]
    Decode(String),
    /// `apiVersion` is missing or not `audit.k8s.io/v1`.
    #[error("unknown group version {0:?} in policy: use apiVersion: audit.k8s.io/v1")]
    ApiVersion(String),
    /// `kind` is not `Policy`.
    #[error("kind {0:?} is not an audit policy: use kind: Policy")]
    Kind(String),
    /// Validation failed; upstream's aggregated field errors.
    #[error("{0}")]
    Invalid(String),
    /// A policy without rules.
    #[error("loaded illegal policy with 0 rules")]
    NoRules,
}

/// The file's shape; every list may be `null` (an empty YAML key), as Go reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyFile {
    #[serde(default)]
    rules: Option<Vec<RuleFile>>,
    #[serde(default)]
    omit_stages: Option<Vec<String>>,
    #[serde(default)]
    omit_managed_fields: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleFile {
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    users: Option<Vec<String>>,
    #[serde(default)]
    user_groups: Option<Vec<String>>,
    #[serde(default)]
    verbs: Option<Vec<String>>,
    #[serde(default)]
    resources: Option<Vec<GroupResources>>,
    #[serde(default)]
    namespaces: Option<Vec<String>>,
    #[serde(default, rename = "nonResourceURLs")]
    non_resource_urls: Option<Vec<String>>,
    #[serde(default)]
    omit_stages: Option<Vec<String>>,
    #[serde(default)]
    omit_managed_fields: Option<bool>,
}

const POLICY_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "rules",
    "omitStages",
    "omitManagedFields",
];
const RULE_FIELDS: &[&str] = &[
    "level",
    "users",
    "userGroups",
    "verbs",
    "resources",
    "namespaces",
    "nonResourceURLs",
    "omitStages",
    "omitManagedFields",
];
const GROUP_RESOURCE_FIELDS: &[&str] = &["group", "resources", "resourceNames"];

impl Policy {
    /// Reads and validates a policy from its YAML (or JSON) text. Unknown fields are logged
    /// and ignored, as upstream falls back to lenient decoding.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let value: Value =
            serde_yaml_ng::from_str(text).map_err(|e| PolicyError::Decode(e.to_string()))?;
        let api_version = value.get("apiVersion").and_then(Value::as_str);
        if api_version != Some(API_VERSION) {
            return Err(PolicyError::ApiVersion(
                api_version.unwrap_or_default().to_owned(),
            ));
        }
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind != "Policy" {
            return Err(PolicyError::Kind(kind.to_owned()));
        }
        let unknown = unknown_fields(&value);
        if !unknown.is_empty() {
            tracing::warn!(
                fields = %unknown.join(", "),
                "audit policy has unknown fields: they are ignored"
            );
        }
        let file: PolicyFile =
            serde_json::from_value(value).map_err(|e| PolicyError::Decode(e.to_string()))?;
        Policy::validate(file)
    }

    fn validate(file: PolicyFile) -> Result<Policy, PolicyError> {
        let mut errors = Vec::new();
        let omit_stages = stages(
            file.omit_stages.as_deref().unwrap_or_default(),
            &Path::new("omitStages"),
            &mut errors,
        );
        let rules_path = Path::new("rules");
        let mut rules = Vec::new();
        for (i, rule) in file.rules.unwrap_or_default().into_iter().enumerate() {
            if let Some(rule) = validate_rule(rule, &rules_path.index(i), omit_stages, &mut errors)
            {
                rules.push(rule);
            }
        }
        if let Some(message) = aggregate(&errors) {
            return Err(PolicyError::Invalid(message));
        }
        if rules.is_empty() {
            return Err(PolicyError::NoRules);
        }
        Ok(Policy {
            rules,
            omit_stages,
            omit_managed_fields: file.omit_managed_fields.unwrap_or(false),
        })
    }

    /// What the policy says about a request by `user` (`None` when authentication failed).
    pub fn evaluate(&self, user: Option<&UserInfo>, info: &RequestInfo) -> RequestConfig {
        match self.rules.iter().find(|rule| rule.matches(user, info)) {
            Some(rule) => RequestConfig {
                level: rule.level,
                omit_stages: rule.omit_stages,
                omit_managed_fields: rule.omit_managed_fields.unwrap_or(self.omit_managed_fields),
            },
            None => RequestConfig {
                level: Level::None,
                omit_stages: self.omit_stages,
                omit_managed_fields: self.omit_managed_fields,
            },
        }
    }
}

/// The stages named in `names`, with an error for each that is not a stage.
fn stages(names: &[String], path: &Path, errors: &mut Vec<FieldError>) -> Stages {
    let mut set = Stages::default();
    for (i, name) in names.iter().enumerate() {
        match Stage::parse(name) {
            Some(stage) => set = set.with(stage),
            None => errors.push(FieldError::invalid(
                &path.index(i),
                name,
                format!("allowed stages are {}", Stage::NAMES.join(",")),
            )),
        }
    }
    set
}

fn validate_rule(
    rule: RuleFile,
    path: &Path,
    policy_stages: Stages,
    errors: &mut Vec<FieldError>,
) -> Option<Rule> {
    let level_path = path.child("level");
    let level = match rule.level.as_deref().unwrap_or_default() {
        "" => {
            errors.push(FieldError::required(&level_path, ""));
            None
        }
        name => {
            let level = Level::parse(name);
            if level.is_none() {
                errors.push(FieldError::not_supported(&level_path, name, &Level::NAMES));
            }
            level
        }
    };
    let urls = rule.non_resource_urls.unwrap_or_default();
    let urls_path = path.child("nonResourceURLs");
    for (i, url) in urls.iter().enumerate() {
        if url == "*" {
            continue;
        }
        if !url.starts_with('/') {
            errors.push(FieldError::invalid(
                &urls_path.index(i),
                url,
                "non-resource URL rules must begin with a '/' character",
            ));
        }
        if url.len() > 1 && url[..url.len() - 1].contains('*') {
            errors.push(FieldError::invalid(
                &urls_path.index(i),
                url,
                "non-resource URL wildcards '*' must be the final character of the rule",
            ));
        }
    }
    let resources = rule.resources.unwrap_or_default();
    let resources_path = path.child("resources");
    for resource in &resources {
        let group = resource.group.as_deref().unwrap_or_default();
        if !group.is_empty() && group != "*" {
            let problems = rkube_api::validation::name_is_dns_subdomain(group, false);
            if !problems.is_empty() {
                errors.push(FieldError::invalid(
                    &resources_path.child("group"),
                    group,
                    problems.join(","),
                ));
            }
        }
        let names = resource.resource_names.as_deref().unwrap_or_default();
        if !names.is_empty() && resource.resources.as_deref().unwrap_or_default().is_empty() {
            errors.push(FieldError::invalid(
                &resources_path.child("resourceNames"),
                Value::from(names.to_vec()),
                "using resourceNames requires at least one resource",
            ));
        }
    }
    let own_stages = stages(
        rule.omit_stages.as_deref().unwrap_or_default(),
        &path.child("omitStages"),
        errors,
    );
    let namespaces = rule.namespaces.unwrap_or_default();
    if !urls.is_empty() && (!resources.is_empty() || !namespaces.is_empty()) {
        errors.push(FieldError::invalid(
            &urls_path,
            Value::from(urls.clone()),
            "rules cannot apply to both regular resources and non-resource URLs",
        ));
    }
    Some(Rule {
        level: level?,
        users: rule.users.unwrap_or_default(),
        user_groups: rule.user_groups.unwrap_or_default(),
        verbs: rule.verbs.unwrap_or_default(),
        resources,
        namespaces,
        non_resource_urls: urls,
        omit_stages: own_stages.union(policy_stages),
        omit_managed_fields: rule.omit_managed_fields,
    })
}

/// The paths of fields the policy's types do not have.
fn unknown_fields(policy: &Value) -> Vec<String> {
    fn check(value: &Value, known: &[&str], path: &str, out: &mut Vec<String>) {
        if let Some(object) = value.as_object() {
            for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
                out.push(if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                });
            }
        }
    }
    fn items<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = (usize, &'a Value)> {
        value
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
    }
    let mut out = Vec::new();
    check(policy, POLICY_FIELDS, "", &mut out);
    for (i, rule) in items(policy, "rules") {
        let path = format!("rules[{i}]");
        check(rule, RULE_FIELDS, &path, &mut out);
        for (j, resources) in items(rule, "resources") {
            check(
                resources,
                GROUP_RESOURCE_FIELDS,
                &format!("{path}.resources[{j}]"),
                &mut out,
            );
        }
    }
    out
}

impl Rule {
    fn matches(&self, user: Option<&UserInfo>, info: &RequestInfo) -> bool {
        if !self.users.is_empty() && !user.is_some_and(|u| self.users.contains(&u.name)) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !user.is_some_and(|u| u.groups.iter().any(|g| self.user_groups.contains(g)))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&info.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.matches_resource(info);
        }
        if !self.non_resource_urls.is_empty() {
            return !info.is_resource_request
                && self
                    .non_resource_urls
                    .iter()
                    .any(|spec| path_matches(&info.path, spec));
        }
        true
    }

    fn matches_resource(&self, info: &RequestInfo) -> bool {
        if !info.is_resource_request {
            return false;
        }
        // Cluster-scoped requests have the empty namespace, which a rule may list.
        if !self.namespaces.is_empty() && !self.namespaces.contains(&info.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let (resource, subresource) = (info.resource.as_str(), info.subresource.as_str());
        let combined = if subresource.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}/{subresource}")
        };
        self.resources.iter().any(|gr| {
            let group = gr.group.as_deref().unwrap_or_default();
            if group != info.api_group && group != "*" {
                return false;
            }
            let resources = gr.resources.as_deref().unwrap_or_default();
            if resources.is_empty() {
                return true;
            }
            let names = gr.resource_names.as_deref().unwrap_or_default();
            if !names.is_empty() && !names.contains(&info.name) {
                return false;
            }
            resources.iter().any(|spec| {
                spec == "*"
                    || *spec == combined
                    || (!subresource.is_empty() && spec.strip_prefix("*/") == Some(subresource))
                    || spec.strip_suffix("/*") == Some(resource)
            })
        })
    }
}

/// `*`, an exact path, or a prefix ending in `*`.
fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*"
        || spec == path
        || spec
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix.trim_end_matches('*')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: &str, path: &str) -> RequestInfo {
        let (path, query) = path
            .split_once('?')
            .map_or((path, None), |(p, q)| (p, Some(q)));
        RequestInfo::parse(&method.parse().unwrap(), path, query).unwrap()
    }

    fn policy(rules: &str) -> Policy {
        Policy::parse(&format!(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n{rules}"
        ))
        .unwrap()
    }

    fn level(policy: &Policy, user: &UserInfo, method: &str, path: &str) -> Level {
        policy.evaluate(Some(user), &info(method, path)).level
    }

    #[test]
    fn invalid_policies_name_the_rule_and_field() {
        let cases = [
            (
                "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules: [{level: None}]",
                "unknown group version \"audit.k8s.io/v1beta1\"",
            ),
            (
                "kind: Policy\nrules: [{level: None}]",
                "unknown group version \"\"",
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Pod\nrules: [{level: None}]",
                "kind \"Pod\"",
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []",
                "loaded illegal policy with 0 rules",
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\n",
                "loaded illegal policy with 0 rules",
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: 5",
                "failed decoding",
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{verbs: [get]}]",
                "rules[0].level: Required value",
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None}, {level: Everything}]",
                r#"rules[1].level: Unsupported value: "Everything": supported values: "None", "Metadata", "Request", "RequestResponse""#,
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, omitStages: [Done]}]",
                r#"rules[0].omitStages[0]: Invalid value: "Done": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic"#,
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [Later]\nrules: [{level: None}]",
                r#"omitStages[0]: Invalid value: "Later""#,
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, nonResourceURLs: [healthz]}]",
                r#"rules[0].nonResourceURLs[0]: Invalid value: "healthz": non-resource URL rules must begin with a '/' character"#,
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, nonResourceURLs: [\"/a*/b\"]}]",
                "wildcards '*' must be the final character",
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, nonResourceURLs: [/x], namespaces: [a]}]",
                r#"rules[0].nonResourceURLs: Invalid value: ["/x"]: rules cannot apply to both regular resources and non-resource URLs"#,
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, resources: [{group: Apps}]}]",
                r#"rules[0].resources.group: Invalid value: "Apps": a lowercase RFC 1123 subdomain"#,
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, resources: [{resourceNames: [x]}]}]",
                r#"rules[0].resources.resourceNames: Invalid value: ["x"]: using resourceNames requires at least one resource"#,
            ),
        ];
        for (text, want) in cases {
            let err = Policy::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}\n got: {err}\nwant: {want}");
        }
        // Several problems are reported together, as upstream's aggregate.
        let err =
            Policy::parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{}, {level: x}]")
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with("[rules[0].level: Required value, rules[1].level: Unsupported"),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_are_found_and_ignored() {
        let value: Value = serde_yaml_ng::from_str(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nextra: 1\nrules:\n- level: None\n  user: [x]\n  resources: [{group: '', resource: [pods]}]\n",
        )
        .unwrap();
        assert_eq!(
            unknown_fields(&value),
            ["extra", "rules[0].user", "rules[0].resources[0].resource"]
        );
        assert!(Policy::parse(&serde_json::to_string(&value).unwrap()).is_ok());
    }

    #[test]
    fn users_groups_and_verbs() {
        let p = policy(
            "- level: RequestResponse\n  users: [alice]\n\
             - level: Request\n  userGroups: [devs]\n  verbs: [create, update]\n\
             - level: Metadata\n  verbs: [get, list, watch]\n",
        );
        let alice = UserInfo::new("alice", &["system:authenticated"]);
        let bob = UserInfo::new("bob", &["devs"]);
        let carol = UserInfo::new("carol", &[]);
        let pods = "/api/v1/namespaces/default/pods";
        assert_eq!(
            level(&p, &alice, "DELETE", &format!("{pods}/x")),
            Level::RequestResponse
        );
        assert_eq!(level(&p, &bob, "POST", pods), Level::Request);
        assert_eq!(level(&p, &bob, "GET", pods), Level::Metadata);
        assert_eq!(
            level(&p, &carol, "GET", &format!("{pods}?watch=1")),
            Level::Metadata
        );
        assert_eq!(level(&p, &carol, "POST", pods), Level::None);
        assert_eq!(level(&p, &carol, "GET", "/healthz"), Level::Metadata);
        // A failed authentication has no user: user and group rules never match it.
        assert_eq!(p.evaluate(None, &info("GET", pods)).level, Level::Metadata);
        assert_eq!(p.evaluate(None, &info("POST", pods)).level, Level::None);
    }

    #[test]
    fn resources_subresources_names_and_namespaces() {
        let p = policy(
            "- level: None\n  resources: [{group: '', resources: [secrets]}]\n\
             - level: RequestResponse\n  resources: [{group: '', resources: [pods/log]}]\n\
             - level: Request\n  resources: [{group: '*', resources: ['*/status']}]\n\
             - level: Metadata\n  resources: [{group: apps, resources: ['deployments/*']}]\n\
             - level: RequestResponse\n  resources: [{group: '', resources: [configmaps], resourceNames: [special]}]\n\
             - level: Request\n  namespaces: ['']\n\
             - level: Metadata\n  namespaces: [kube-system]\n",
        );
        let u = UserInfo::new("u", &[]);
        let cases = [
            ("GET", "/api/v1/namespaces/a/secrets/s", Level::None),
            (
                "GET",
                "/api/v1/namespaces/a/pods/p/log",
                Level::RequestResponse,
            ),
            ("GET", "/api/v1/namespaces/a/pods/p", Level::None),
            ("PUT", "/api/v1/namespaces/a/pods/p/status", Level::Request),
            (
                "PUT",
                "/apis/apps/v1/namespaces/a/deployments/d/status",
                Level::Request,
            ),
            (
                "GET",
                "/apis/apps/v1/namespaces/a/deployments/d/scale",
                Level::Metadata,
            ),
            // As upstream, `deployments/*` matches the resource itself too.
            (
                "GET",
                "/apis/apps/v1/namespaces/a/deployments/d",
                Level::Metadata,
            ),
            (
                "GET",
                "/apis/apps/v1/namespaces/a/replicasets/r",
                Level::None,
            ),
            (
                "GET",
                "/api/v1/namespaces/a/configmaps/special",
                Level::RequestResponse,
            ),
            ("GET", "/api/v1/namespaces/a/configmaps/other", Level::None),
            // A collection request has no name: resourceNames never match it.
            ("GET", "/api/v1/namespaces/a/configmaps", Level::None),
            ("GET", "/api/v1/nodes/n", Level::Request),
            ("GET", "/api/v1/pods", Level::Request),
            (
                "GET",
                "/api/v1/namespaces/kube-system/configmaps/c",
                Level::Metadata,
            ),
            // Namespace rules are for resource requests only.
            ("GET", "/healthz", Level::None),
        ];
        for (method, path, want) in cases {
            assert_eq!(level(&p, &u, method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn non_resource_urls() {
        let p = policy(
            "- level: Metadata\n  nonResourceURLs: [/healthz*, /version]\n\
             - level: Request\n  nonResourceURLs: ['*']\n",
        );
        let u = UserInfo::new("u", &[]);
        assert_eq!(level(&p, &u, "GET", "/healthz"), Level::Metadata);
        assert_eq!(level(&p, &u, "GET", "/healthz/etcd"), Level::Metadata);
        assert_eq!(level(&p, &u, "GET", "/version"), Level::Metadata);
        assert_eq!(level(&p, &u, "GET", "/version/x"), Level::Request);
        assert_eq!(level(&p, &u, "GET", "/api"), Level::Request);
        // Resource requests never match non-resource rules.
        assert_eq!(level(&p, &u, "GET", "/api/v1/pods"), Level::None);
    }

    #[test]
    fn stages_are_joined_and_managed_fields_overridden() {
        let p = Policy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n\
             omitManagedFields: true\nrules:\n\
             - level: Metadata\n  verbs: [watch]\n  omitStages: [ResponseStarted]\n  omitManagedFields: false\n\
             - level: Request\n  verbs: [get]\n",
        )
        .unwrap();
        let u = UserInfo::new("u", &[]);
        let watch = p.evaluate(Some(&u), &info("GET", "/api/v1/pods?watch=true"));
        assert!(watch.omit_stages.contains(Stage::RequestReceived));
        assert!(watch.omit_stages.contains(Stage::ResponseStarted));
        assert!(!watch.omit_stages.contains(Stage::ResponseComplete));
        assert!(!watch.omit_managed_fields);
        let get = p.evaluate(Some(&u), &info("GET", "/api/v1/namespaces/a/pods/p"));
        assert_eq!(get.level, Level::Request);
        assert!(get.omit_managed_fields);
        assert!(!get.omit_stages.contains(Stage::ResponseStarted));
        // No rule matches: level None with the policy's own settings.
        let none = p.evaluate(Some(&u), &info("POST", "/api/v1/namespaces/a/pods"));
        assert_eq!(none.level, Level::None);
        assert!(none.omit_stages.contains(Stage::RequestReceived));
    }
}
