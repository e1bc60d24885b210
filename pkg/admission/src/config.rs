//! `--admission-control-config-file`: upstream's `AdmissionConfiguration`
//! (`apiserver.config.k8s.io/v1`, YAML or JSON), one entry per plugin, each with an inline
//! `configuration` or a `path` to a file (relative to the configuration file's folder).
//!
//! As upstream, an entry only configures the plugin it names; entries for plugins rkube takes
//! no configuration for are ignored (and logged). The configurations read: PodSecurity's
//! `PodSecurityConfiguration`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::plugins::pod_security;

/// Why the admission configuration cannot be used (the server refuses to start).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("unable to read admission control configuration from {path:?}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not YAML or JSON of the expected shape.
    #[error("admission control configuration {path:?}: {message}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A plugin's configuration is refused.
    #[error("couldn't init admission plugin {plugin:?}")]
    Plugin {
        /// The plugin.
        plugin: String,
        /// Why.
        #[source]
        source: pod_security::policy::ConfigError,
    },
}

/// The configuration of the plugins that take one.
#[derive(Debug, Clone, Default)]
pub struct AdmissionConfiguration {
    /// PodSecurity's defaults and exemptions.
    pub pod_security: pod_security::policy::Config,
}

const API_VERSIONS: &[&str] = &[
    "apiserver.config.k8s.io/v1",
    "apiserver.config.k8s.io/v1alpha1",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfiguration {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    plugins: Vec<RawPlugin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    configuration: Option<Value>,
}

/// Reads `path` as YAML (JSON is YAML too) into a JSON value.
fn read_value(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::Decode {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

impl AdmissionConfiguration {
    /// Reads the configuration file at `path` and the plugin files it names.
    pub fn load(path: &Path) -> Result<AdmissionConfiguration, ConfigError> {
        let decode = |message: String| ConfigError::Decode {
            path: path.to_owned(),
            message,
        };
        let raw: RawConfiguration =
            serde_json::from_value(read_value(path)?).map_err(|e| decode(e.to_string()))?;
        let api_version = raw.api_version.as_deref().unwrap_or("");
        if !API_VERSIONS.contains(&api_version)
            || raw.kind.as_deref() != Some("AdmissionConfiguration")
        {
            return Err(decode(format!(
                "expected apiserver.config.k8s.io/v1 AdmissionConfiguration, got apiVersion {api_version:?}, kind {:?}",
                raw.kind.as_deref().unwrap_or("")
            )));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = AdmissionConfiguration::default();
        let mut pod_security_seen = false;
        for plugin in raw.plugins {
            // Upstream reads a plugin's configuration only when the plugin is enabled and
            // asks for it: the first entry naming it wins.
            let configuration = || -> Result<Option<Value>, ConfigError> {
                if let Some(inline) = plugin.configuration.clone() {
                    return Ok(Some(inline));
                }
                if plugin.path.is_empty() {
                    return Ok(None);
                }
                read_value(&base.join(&plugin.path)).map(Some)
            };
            match plugin.name.as_str() {
                "PodSecurity" if !pod_security_seen => {
                    pod_security_seen = true;
                    if let Some(value) = configuration()? {
                        config.pod_security = pod_security::policy::Config::from_value(value)
                            .map_err(|source| ConfigError::Plugin {
                                plugin: plugin.name.clone(),
                                source,
                            })?;
                    }
                }
                "PodSecurity" => {}
                other => {
                    tracing::warn!(
                        plugin = other,
                        "admission configuration entry ignored: rkube reads no configuration for this plugin"
                    );
                }
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::pod_security::policy::Level;

    fn load(files: &[(&str, &str)]) -> Result<AdmissionConfiguration, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        AdmissionConfiguration::load(&dir.path().join(files[0].0))
    }

    #[test]
    fn pod_security_reads_inline_or_from_a_relative_path() {
        let inline = load(&[(
            "admission.yaml",
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: EventRateLimit\n  path: nowhere.yaml\n- name: PodSecurity\n  configuration:\n    apiVersion: pod-security.admission.config.k8s.io/v1\n    kind: PodSecurityConfiguration\n    defaults:\n      enforce: baseline\n    exemptions:\n      namespaces: [kube-system]\n",
        )])
        .unwrap();
        assert_eq!(inline.pod_security.defaults.enforce.level, Level::Baseline);
        assert_eq!(inline.pod_security.exemptions.namespaces, ["kube-system"]);

        let by_path = load(&[
            (
                "admission.json",
                r#"{"apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration", "plugins": [{"name": "PodSecurity", "path": "psa.yaml"}]}"#,
            ),
            (
                "psa.yaml",
                "apiVersion: pod-security.admission.config.k8s.io/v1beta1\nkind: PodSecurityConfiguration\ndefaults:\n  warn: restricted\n",
            ),
        ])
        .unwrap();
        assert_eq!(by_path.pod_security.defaults.warn.level, Level::Restricted);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = load(&[(
            "a.yaml",
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  configuration:\n    apiVersion: pod-security.admission.config.k8s.io/v1\n    kind: PodSecurityConfiguration\n    defaults:\n      enforce: strict\n",
        )])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"couldn't init admission plugin "PodSecurity""#
        );
        assert_eq!(
            std::error::Error::source(&err).unwrap().to_string(),
            r#"defaults.enforce: Invalid value: "strict": must be one of privileged, baseline, restricted"#
        );
        let err = load(&[("a.yaml", "apiVersion: v1\nkind: ConfigMap\n")]).unwrap_err();
        assert!(
            err.to_string()
                .ends_with(r#"expected apiserver.config.k8s.io/v1 AdmissionConfiguration, got apiVersion "v1", kind "ConfigMap""#),
            "{err}"
        );
        let err = load(&[(
            "a.yaml",
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  path: missing.yaml\n",
        )])
        .unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        assert!(err.to_string().contains("missing.yaml"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
