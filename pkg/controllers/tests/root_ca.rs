//! The root CA publisher against the real API: every namespace gets `kube-root-ca.crt` with
//! the CA, and a ConfigMap someone changed or deleted is put back.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use rkube_controllers::ControllerManager;
use rkube_controllers::root_ca::{ROOT_CA_CONFIG_MAP, ROOT_CA_KEY};
use serde_json::json;

mod common;

/// A guard against a hang, never a measure of speed.
const HANG_GUARD: Duration = Duration::from_secs(60);
const CA: &str = "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n";

/// Waits until `ns` has the ConfigMap with exactly the CA and the description annotation.
async fn published(config_maps: &Api<ConfigMap>) -> ConfigMap {
    let is_published = |cm: Option<&ConfigMap>| {
        cm.is_some_and(|cm| {
            cm.data.as_ref().map(|d| d.len()) == Some(1)
                && cm
                    .data
                    .as_ref()
                    .and_then(|d| d.get(ROOT_CA_KEY))
                    .map(String::as_str)
                    == Some(CA)
                && cm
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key("kubernetes.io/description"))
        })
    };
    let found = tokio::time::timeout(
        HANG_GUARD,
        await_condition(config_maps.clone(), ROOT_CA_CONFIG_MAP, is_published),
    )
    .await
    .expect("published in time")
    .expect("watch");
    found.expect("the ConfigMap")
}

#[tokio::test]
async fn every_namespace_gets_the_root_ca_and_keeps_it() {
    let client = common::client().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let manager = ControllerManager {
        root_ca: Some(CA.to_owned()),
        ..Default::default()
    };
    let run_client = client.clone();
    let task = tokio::spawn(manager.run(move |_| run_client.clone(), async {
        let _ = stopped.await;
    }));

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let first = published(&config_maps).await;
    assert_eq!(
        first.metadata.annotations.unwrap()["kubernetes.io/description"],
        "Contains a CA bundle that can be used to verify the kube-apiserver when using internal \
         endpoints such as the internal service IP or kubernetes.default.svc. No other usage is \
         guaranteed across distributions of Kubernetes clusters."
    );

    // Changed data (and an extra key) is put back; a label someone added stays.
    let edit = json!({"metadata": {"labels": {"mine": "yes"}},
                      "data": {ROOT_CA_KEY: "forged", "extra": "x"}});
    config_maps
        .patch(
            ROOT_CA_CONFIG_MAP,
            &PatchParams::default(),
            &Patch::Merge(&edit),
        )
        .await
        .unwrap();
    let restored = published(&config_maps).await;
    assert_eq!(restored.metadata.labels.unwrap()["mine"], "yes");

    // Deleted: created again.
    config_maps
        .delete(ROOT_CA_CONFIG_MAP, &DeleteParams::default())
        .await
        .unwrap();
    let recreated = published(&config_maps).await;
    assert_ne!(recreated.metadata.uid, restored.metadata.uid);

    let _ = stop.send(());
    task.await.unwrap();
}
