//! ServiceAccount: a pod runs as a service account (`default` unless it names one), gets its
//! API credentials as the projected `kube-api-access-<random>` volume mounted in every
//! container, and inherits the account's imagePullSecrets.

use std::sync::Arc;

use async_trait::async_trait;
use rkube_api::validation::generate_name;
use serde_json::{Value, json};

use crate::attributes::{Attributes, Operation};
use crate::chain::{Cluster, Plugin, Result, Warnings};

/// Where the token, CA and namespace are mounted (upstream's `DefaultAPITokenMountPath`).
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The token volume's name prefix (upstream's `ServiceAccountVolumeName`).
const VOLUME_PREFIX: &str = "kube-api-access-";

/// The annotation of static (mirror) pods, which never get credentials.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The plugin.
#[derive(Debug)]
pub struct ServiceAccount {
    cluster: Arc<dyn Cluster>,
}

impl ServiceAccount {
    /// The plugin over `cluster`'s service accounts.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        ServiceAccount { cluster }
    }
}

/// The projected volume upstream's plugin adds (`TokenVolumeSource` with the root CA and the
/// namespace), under `name`.
pub fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ],
            "defaultMode": 420
        }
    })
}

fn is_mirror(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

/// Mounts the token volume into every container and init container without a mount at
/// [`TOKEN_MOUNT_PATH`]; adds the volume when one of them needed it.
fn mount_token(pod: &mut Value) {
    let spec = &mut pod["spec"];
    let existing = spec["volumes"].as_array().and_then(|vs| {
        vs.iter()
            .filter_map(|v| v["name"].as_str())
            .find(|n| n.starts_with(VOLUME_PREFIX))
            .map(str::to_owned)
    });
    let name = existing
        .clone()
        .unwrap_or_else(|| generate_name(VOLUME_PREFIX));
    let mount = json!({"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec[list].as_array_mut() else {
            continue;
        };
        for c in containers {
            let mounted = c["volumeMounts"].as_array().is_some_and(|ms| {
                ms.iter()
                    .any(|m| m["mountPath"].as_str() == Some(TOKEN_MOUNT_PATH))
            });
            if mounted {
                continue;
            }
            match c["volumeMounts"].as_array_mut() {
                Some(ms) => ms.push(mount.clone()),
                None => c["volumeMounts"] = json!([mount.clone()]),
            }
            needed = true;
        }
    }
    if existing.is_none() && needed {
        match spec["volumes"].as_array_mut() {
            Some(vs) => vs.push(token_volume(&name)),
            None => spec["volumes"] = json!([token_volume(&name)]),
        }
    }
}

#[async_trait]
impl Plugin for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    async fn admit(&self, attrs: &mut Attributes, _warnings: &Warnings) -> Result<()> {
        if attrs.op() != Operation::Create || !attrs.is_core("pods") {
            return Ok(());
        }
        let namespace = attrs.namespace.clone();
        let Some(pod) = attrs.object.as_ref() else {
            return Ok(());
        };
        if is_mirror(pod) {
            return Ok(());
        }
        let sa_name = pod
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_owned();
        let account = self
            .cluster
            .get(("", "serviceaccounts"), &namespace, &sa_name)
            .await?;
        // Without a service account controller yet, the `default` account may not exist:
        // such pods still get their (account-independent) token volume.
        if account.is_none() && sa_name != "default" {
            return Err(attrs.forbidden(format!(
                "error looking up service account {namespace}/{sa_name}: serviceaccount {sa_name:?} not found"
            )));
        }
        let Some(pod) = attrs.object.as_mut() else {
            return Ok(());
        };
        pod["spec"]["serviceAccountName"] = sa_name.into();
        let automount =
            |v: Option<&Value>| v.and_then(|v| v["automountServiceAccountToken"].as_bool());
        let wanted = automount(pod.get("spec"))
            .or_else(|| automount(account.as_ref()))
            .unwrap_or(true);
        if wanted {
            mount_token(pod);
        }
        let has_pull_secrets = pod["spec"]["imagePullSecrets"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        if !has_pull_secrets
            && let Some(secrets) = account
                .as_ref()
                .and_then(|a| a["imagePullSecrets"].as_array())
                .filter(|s| !s.is_empty())
        {
            pod["spec"]["imagePullSecrets"] = Value::Array(secrets.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeCluster, attrs};

    fn pod() -> Value {
        json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "image": "nginx"}],
            "initContainers": [{"name": "i", "image": "busybox", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}]
        }})
    }

    #[tokio::test]
    async fn pods_get_the_default_account_and_its_token_volume() {
        let cluster = FakeCluster::default();
        cluster.put(
            ("", "serviceaccounts"),
            json!({"metadata": {"name": "default", "namespace": "ns"}, "imagePullSecrets": [{"name": "reg"}]}),
        );
        let plugin = ServiceAccount::new(Arc::new(cluster));
        let mut a = attrs(Operation::Create, "", "pods", "Pod", "ns", Some(pod()));
        plugin.admit(&mut a, &Warnings::default()).await.unwrap();
        let pod = a.object.unwrap();
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        assert_eq!(pod["spec"]["imagePullSecrets"], json!([{"name": "reg"}]));
        let volume = &pod["spec"]["volumes"][0];
        let name = volume["name"].as_str().unwrap();
        assert!(
            name.starts_with("kube-api-access-") && name.len() == 21,
            "{name}"
        );
        assert_eq!(volume, &token_volume(name));
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"],
            json!([{"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH}])
        );
        // A container that mounts something at the path keeps its own.
        assert_eq!(
            pod["spec"]["initContainers"][0]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn automount_off_and_missing_accounts() {
        let cluster = FakeCluster::default();
        cluster.put(
            ("", "serviceaccounts"),
            json!({"metadata": {"name": "quiet", "namespace": "ns"}, "automountServiceAccountToken": false}),
        );
        let plugin = ServiceAccount::new(Arc::new(cluster));
        let mut p = pod();
        p["spec"]["serviceAccountName"] = "quiet".into();
        let mut a = attrs(Operation::Create, "", "pods", "Pod", "ns", Some(p.clone()));
        plugin.admit(&mut a, &Warnings::default()).await.unwrap();
        assert!(a.object.unwrap()["spec"].get("volumes").is_none());

        p["spec"]["serviceAccountName"] = "nobody".into();
        let mut a = attrs(Operation::Create, "", "pods", "Pod", "ns", Some(p));
        let err = plugin
            .admit(&mut a, &Warnings::default())
            .await
            .unwrap_err();
        assert_eq!(
            err.message(),
            r#"pods "p" is forbidden: error looking up service account ns/nobody: serviceaccount "nobody" not found"#
        );
    }
}
