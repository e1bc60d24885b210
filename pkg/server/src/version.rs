//! `/version`: upstream's `version.Info`, for the Kubernetes version rkube claims to serve.

use axum::Json;
use serde::Serialize;

pub use rkube_api::KUBERNETES_VERSION;

/// kube-apiserver's `version.Info` (k8s.io/apimachinery/pkg/version), field for field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    /// Major version, e.g. `1`.
    pub major: String,
    /// Minor version, e.g. `34`.
    pub minor: String,
    /// The version whose API behaviour is emulated (the served one: no emulation).
    pub emulation_major: String,
    /// See `emulation_major`.
    pub emulation_minor: String,
    /// The oldest version this server stays compatible with (one minor back, as upstream).
    pub min_compatibility_major: String,
    /// See `min_compatibility_major`.
    pub min_compatibility_minor: String,
    /// `v1.34.0+rkube`: the Kubernetes version with rkube as build metadata, as k3s does.
    pub git_version: String,
    /// The rkube commit built.
    pub git_commit: String,
    /// `clean` or `dirty`: whether the tree had uncommitted changes.
    pub git_tree_state: String,
    /// The commit's date, RFC 3339 in UTC.
    pub build_date: String,
    /// Upstream names the Go toolchain here; rkube names its Rust compiler.
    pub go_version: String,
    /// `rustc`.
    pub compiler: String,
    /// `os/arch` in Go's names, e.g. `linux/amd64`.
    pub platform: String,
}

impl Info {
    /// This build's version info.
    pub fn current() -> Self {
        let mut parts = KUBERNETES_VERSION.split('.');
        let major = parts.next().unwrap_or_default().to_string();
        let minor = parts.next().unwrap_or_default().to_string();
        let min_minor = minor
            .parse::<u32>()
            .map(|m| m.saturating_sub(1).to_string())
            .unwrap_or_default();
        Info {
            emulation_major: major.clone(),
            emulation_minor: minor.clone(),
            min_compatibility_major: major.clone(),
            min_compatibility_minor: min_minor,
            major,
            minor,
            git_version: format!("v{KUBERNETES_VERSION}+rkube"),
            git_commit: env!("RKUBE_GIT_COMMIT").to_string(),
            git_tree_state: env!("RKUBE_GIT_TREE_STATE").to_string(),
            build_date: env!("RKUBE_BUILD_DATE").to_string(),
            go_version: env!("RKUBE_RUSTC_VERSION").to_string(),
            compiler: "rustc".to_string(),
            platform: format!("{}/{}", std::env::consts::OS, go_arch()),
        }
    }
}

/// Rust's architecture name in Go's spelling (`GOARCH`), which clients compare against.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// `GET /version`.
pub async fn handler() -> Json<Info> {
    Json(Info::current())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_shaped_like_upstream() {
        let info = serde_json::to_value(Info::current()).unwrap();
        assert_eq!(info["major"], "1");
        assert_eq!(info["minor"], "34");
        assert_eq!(info["gitVersion"], "v1.34.0+rkube");
        assert_eq!(info["compiler"], "rustc");
        assert_eq!(info["minCompatibilityMinor"], "33");
        assert!(info["goVersion"].as_str().unwrap().starts_with("rustc "));
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        assert_eq!(info["platform"], "linux/amd64");
    }
}
