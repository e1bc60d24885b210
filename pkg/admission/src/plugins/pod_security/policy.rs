//! Levels, versions and the per-namespace policy (upstream's `pod-security-admission/api`):
//! what a namespace's `pod-security.kubernetes.io/<mode>[-version]` labels ask for, on top of
//! the defaults of the plugin's [`Config`] (`PodSecurityConfiguration`).

use std::collections::BTreeMap;
use std::fmt;

use rkube_api::field::{FieldError, Path};
use serde::Deserialize;
use serde_json::Value;

/// The prefix of the labels (and of the audit annotations) PodSecurity reads and writes.
pub const PREFIX: &str = "pod-security.kubernetes.io/";

/// A Pod Security Standards level, ordered by strictness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Everything allowed.
    Privileged,
    /// Known privilege escalations refused.
    Baseline,
    /// Hardened.
    Restricted,
}

impl Level {
    /// Upstream's `ParseLevel`: an unknown level reads as `restricted` (failing closed) and is
    /// an error.
    pub fn parse(text: &str) -> (Level, Option<&'static str>) {
        match text {
            "privileged" => (Level::Privileged, None),
            "baseline" => (Level::Baseline, None),
            "restricted" => (Level::Restricted, None),
            _ => (
                Level::Restricted,
                Some("must be one of privileged, baseline, restricted"),
            ),
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// A policy version: `v1.<minor>`, or `latest` (newer than every minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// `v1.<minor>`.
    V1(u32),
    /// `latest`.
    Latest,
}

impl Version {
    /// Upstream's `ParseVersion`: `latest` or `v1.<minor>` (no leading zeros); anything else
    /// reads as `latest` and is an error.
    pub fn parse(text: &str) -> (Version, Option<&'static str>) {
        let bad = (Version::Latest, Some(r#"must be "latest" or "v1.x""#));
        if text == "latest" {
            return (Version::Latest, None);
        }
        let Some(minor) = text.strip_prefix("v1.") else {
            return bad;
        };
        let digits = !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit());
        if !digits || (minor.len() > 1 && minor.starts_with('0')) {
            return bad;
        }
        match minor.parse() {
            Ok(n) => (Version::V1(n), None),
            Err(_) => bad,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::V1(minor) => write!(f, "v1.{minor}"),
            Version::Latest => f.write_str("latest"),
        }
    }
}

/// A level at a version (`restricted:v1.30`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    /// The level.
    pub level: Level,
    /// The version of its checks.
    pub version: Version,
}

impl LevelVersion {
    /// Upstream's `Equivalent`: both privileged, or the same level and version.
    fn equivalent(&self, other: &LevelVersion) -> bool {
        (self.level == Level::Privileged && other.level == Level::Privileged) || self == other
    }
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

/// The three modes of one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Violations refuse pods.
    pub enforce: LevelVersion,
    /// Violations are recorded in the audit event.
    pub audit: LevelVersion,
    /// Violations are returned as warnings.
    pub warn: LevelVersion,
}

impl Default for Policy {
    fn default() -> Self {
        let privileged = LevelVersion {
            level: Level::Privileged,
            version: Version::Latest,
        };
        Policy {
            enforce: privileged,
            audit: privileged,
            warn: privileged,
        }
    }
}

/// One of the three modes, as labels name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `enforce`.
    Enforce,
    /// `audit`.
    Audit,
    /// `warn`.
    Warn,
}

impl Mode {
    /// Every mode, in upstream's order.
    pub const ALL: [Mode; 3] = [Mode::Enforce, Mode::Audit, Mode::Warn];

    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
            Mode::Warn => "warn",
        }
    }
}

impl Policy {
    /// The level and version of `mode`.
    pub fn get(&self, mode: Mode) -> LevelVersion {
        match mode {
            Mode::Enforce => self.enforce,
            Mode::Audit => self.audit,
            Mode::Warn => self.warn,
        }
    }

    fn get_mut(&mut self, mode: Mode) -> &mut LevelVersion {
        match mode {
            Mode::Enforce => &mut self.enforce,
            Mode::Audit => &mut self.audit,
            Mode::Warn => &mut self.warn,
        }
    }

    /// Whether every mode is privileged (nothing to evaluate).
    pub fn fully_privileged(&self) -> bool {
        Mode::ALL
            .iter()
            .all(|m| self.get(*m).level == Level::Privileged)
    }

    /// Whether every mode is equivalent to `other`'s.
    pub fn equivalent(&self, other: &Policy) -> bool {
        Mode::ALL
            .iter()
            .all(|m| self.get(*m).equivalent(&other.get(*m)))
    }

    /// Upstream's `PolicyToEvaluate`: the namespace's labels over `defaults`. Always answers a
    /// usable policy: a bad enforce level fails closed (`restricted`), a bad audit or warn
    /// level fails open (`privileged`), a bad version reads as `latest`; the errors say which
    /// labels were bad. An enforce level stricter than the warn level also warns, unless a
    /// warn level is given.
    pub fn for_labels(
        labels: &BTreeMap<String, String>,
        defaults: &Policy,
    ) -> (Policy, Vec<FieldError>) {
        let mut policy = *defaults;
        let mut errors = Vec::new();
        if labels.is_empty() {
            return (policy, errors);
        }
        let path = Path::new("metadata").child("labels");
        let mut invalid = |label: &str, value: &str, detail: &str| {
            errors.push(FieldError::invalid(&path.key(label), value, detail));
        };
        let mut enforce_level_given = false;
        let (mut warn_level_given, mut warn_version_given) = (false, false);
        for mode in Mode::ALL {
            let level_label = format!("{PREFIX}{}", mode.as_str());
            let version_label = format!("{level_label}-version");
            if let Some(value) = labels.get(&level_label) {
                let (level, err) = Level::parse(value);
                let entry = policy.get_mut(mode);
                entry.level = level;
                if let Some(err) = err {
                    invalid(&level_label, value, err);
                    if mode != Mode::Enforce {
                        entry.level = Level::Privileged;
                    }
                }
                match mode {
                    Mode::Enforce => enforce_level_given = err.is_none(),
                    Mode::Warn => warn_level_given = true,
                    Mode::Audit => {}
                }
            }
            if let Some(value) = labels.get(&version_label) {
                let (version, err) = Version::parse(value);
                policy.get_mut(mode).version = version;
                if let Some(err) = err {
                    invalid(&version_label, value, err);
                }
                if mode == Mode::Warn {
                    warn_version_given = true;
                }
            }
        }
        if !warn_level_given && enforce_level_given && policy.enforce.level > policy.warn.level {
            policy.warn.level = policy.enforce.level;
            if !warn_version_given {
                policy.warn.version = policy.enforce.version;
            }
        }
        (policy, errors)
    }
}

/// The labels of an object (non-string values ignored).
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Who and what PodSecurity never evaluates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exemptions {
    /// Requests by these users.
    pub usernames: Vec<String>,
    /// Pods in these namespaces.
    pub namespaces: Vec<String>,
    /// Pods of these runtime classes.
    pub runtime_classes: Vec<String>,
}

/// The plugin's configuration (`PodSecurityConfiguration`): the policy of namespaces without
/// labels, and the exemptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The defaults labels override.
    pub defaults: Policy,
    /// Never evaluated.
    pub exemptions: Exemptions,
}

/// A `PodSecurityConfiguration` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not a `pod-security.admission.config.k8s.io` `PodSecurityConfiguration`, or fields
    /// it does not have.
    #[error("{0}")]
    Decode(String),
    /// Values upstream's validation refuses.
    #[error("{0}")]
    Invalid(String),
}

const CONFIG_GROUP: &str = "pod-security.admission.config.k8s.io";
const CONFIG_VERSIONS: &[&str] = &["v1", "v1beta1", "v1alpha1"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    exemptions: RawExemptions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default)]
    enforce: String,
    #[serde(default, rename = "enforce-version")]
    enforce_version: String,
    #[serde(default)]
    audit: String,
    #[serde(default, rename = "audit-version")]
    audit_version: String,
    #[serde(default)]
    warn: String,
    #[serde(default, rename = "warn-version")]
    warn_version: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExemptions {
    #[serde(default)]
    usernames: Vec<String>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default, rename = "runtimeClasses")]
    runtime_classes: Vec<String>,
}

impl Config {
    /// Reads a `PodSecurityConfiguration` (any of upstream's three versions) as JSON or YAML
    /// values: unset defaults are `privileged` at `latest`, as upstream defaults them, and
    /// the result is validated as upstream validates it.
    pub fn from_value(value: Value) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            serde_json::from_value(value).map_err(|e| ConfigError::Decode(e.to_string()))?;
        let api_version = raw.api_version.as_deref().unwrap_or("");
        let version_ok = api_version
            .strip_prefix(CONFIG_GROUP)
            .and_then(|v| v.strip_prefix('/'))
            .is_some_and(|v| CONFIG_VERSIONS.contains(&v));
        if !version_ok || raw.kind.as_deref() != Some("PodSecurityConfiguration") {
            return Err(ConfigError::Decode(format!(
                "expected {CONFIG_GROUP}/v1 PodSecurityConfiguration, got apiVersion {api_version:?}, kind {:?}",
                raw.kind.as_deref().unwrap_or("")
            )));
        }
        let mut errors = Vec::new();
        let d = &raw.defaults;
        let mut defaults = Policy::default();
        for (mode, level, version) in [
            (Mode::Enforce, &d.enforce, &d.enforce_version),
            (Mode::Audit, &d.audit, &d.audit_version),
            (Mode::Warn, &d.warn, &d.warn_version),
        ] {
            let path = Path::new("defaults").child(mode.as_str());
            if !level.is_empty() {
                let (parsed, err) = Level::parse(level);
                defaults.get_mut(mode).level = parsed;
                if let Some(err) = err {
                    errors.push(FieldError::invalid(&path, level.as_str(), err));
                }
            }
            if !version.is_empty() {
                let path = Path::new("defaults").child(&format!("{}-version", mode.as_str()));
                let (parsed, err) = Version::parse(version);
                defaults.get_mut(mode).version = parsed;
                if let Some(err) = err {
                    errors.push(FieldError::invalid(&path, version.as_str(), err));
                }
            }
        }
        let ex = raw.exemptions;
        validate_list(&mut errors, "namespaces", &ex.namespaces, |ns| {
            rkube_api::validation::name_is_dns_label(ns, false)
        });
        validate_list(&mut errors, "runtimeClasses", &ex.runtime_classes, |rc| {
            rkube_api::validation::name_is_dns_subdomain(rc, false)
        });
        validate_list(&mut errors, "usernames", &ex.usernames, |user| {
            if user.is_empty() {
                vec!["username must not be empty".to_owned()]
            } else {
                Vec::new()
            }
        });
        if let Some(message) = rkube_api::field::aggregate(&errors) {
            return Err(ConfigError::Invalid(message));
        }
        Ok(Config {
            defaults,
            exemptions: Exemptions {
                usernames: ex.usernames,
                namespaces: ex.namespaces,
                runtime_classes: ex.runtime_classes,
            },
        })
    }
}

/// Upstream's exemption list validation: each entry valid, none twice.
fn validate_list(
    errors: &mut Vec<FieldError>,
    name: &str,
    items: &[String],
    check: impl Fn(&str) -> Vec<String>,
) {
    let path = Path::new("exemptions").child(name);
    for (i, item) in items.iter().enumerate() {
        let problems = check(item);
        if !problems.is_empty() {
            errors.push(FieldError::invalid(
                &path.index(i),
                item,
                problems.join(", "),
            ));
        } else if items[..i].contains(item) {
            errors.push(FieldError::duplicate(&path.index(i), item));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn versions_parse_as_upstream() {
        assert_eq!(Version::parse("v1.30"), (Version::V1(30), None));
        assert_eq!(Version::parse("v1.0"), (Version::V1(0), None));
        assert_eq!(Version::parse("latest"), (Version::Latest, None));
        for bad in ["v1.030", "1.30", "v2.1", "v1.", "v1.x", "Latest"] {
            assert!(Version::parse(bad).1.is_some(), "{bad}");
        }
        assert!(Version::V1(99) < Version::Latest);
    }

    #[test]
    fn enforce_defaults_warn_and_bad_labels_fail_as_upstream() {
        let defaults = Policy::default();
        let (p, errors) = Policy::for_labels(
            &labels(&[("enforce", "baseline"), ("enforce-version", "v1.29")]),
            &defaults,
        );
        assert!(errors.is_empty());
        assert_eq!(p.warn.to_string(), "baseline:v1.29");
        assert_eq!(p.audit.to_string(), "privileged:latest");
        // A warn level given stays, even a laxer one.
        let (p, _) = Policy::for_labels(
            &labels(&[("enforce", "restricted"), ("warn", "privileged")]),
            &defaults,
        );
        assert_eq!(p.warn.level, Level::Privileged);
        // Bad enforce fails closed, bad audit and warn fail open.
        let (p, errors) = Policy::for_labels(
            &labels(&[
                ("enforce", "strict"),
                ("audit", "x"),
                ("warn-version", "1.2"),
            ]),
            &defaults,
        );
        assert_eq!(p.enforce.level, Level::Restricted);
        assert_eq!(p.audit.level, Level::Privileged);
        assert_eq!(
            rkube_api::field::aggregate(&errors).unwrap(),
            r#"[metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted, metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: "x": must be one of privileged, baseline, restricted, metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "1.2": must be "latest" or "v1.x"]"#
        );
    }

    #[test]
    fn configuration_reads_defaults_and_refuses_what_upstream_refuses() {
        let config = Config::from_value(json!({
            "apiVersion": "pod-security.admission.config.k8s.io/v1",
            "kind": "PodSecurityConfiguration",
            "defaults": {"enforce": "baseline", "audit": "restricted", "audit-version": "v1.30"},
            "exemptions": {"namespaces": ["kube-system"], "usernames": ["admin"]}
        }))
        .unwrap();
        assert_eq!(config.defaults.enforce.to_string(), "baseline:latest");
        assert_eq!(config.defaults.audit.to_string(), "restricted:v1.30");
        assert_eq!(config.defaults.warn.to_string(), "privileged:latest");
        assert_eq!(config.exemptions.namespaces, ["kube-system"]);

        let err = Config::from_value(json!({
            "apiVersion": "pod-security.admission.config.k8s.io/v1",
            "kind": "PodSecurityConfiguration",
            "defaults": {"enforce": "strict"},
            "exemptions": {"namespaces": ["Bad_NS", "a", "a"]}
        }))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"[defaults.enforce: Invalid value: "strict": must be one of privileged, baseline, restricted, exemptions.namespaces[0]: Invalid value: "Bad_NS": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?'), exemptions.namespaces[2]: Duplicate value: "a"]"#
        );
        let err = Config::from_value(json!({
            "apiVersion": "pod-security.admission.config.k8s.io/v1",
            "kind": "PodSecurityConfiguration",
            "defaults": {"enforce": "baseline", "bogus": 1}
        }))
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `bogus`"), "{err}");
        assert!(
            Config::from_value(json!({"apiVersion": "v1", "kind": "PodSecurityConfiguration"}))
                .is_err()
        );
    }
}
