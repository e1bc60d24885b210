//! The root CA publisher (upstream's `pkg/controller/certificates/rootcacertpublisher`):
//! every active namespace has a ConfigMap `kube-root-ca.crt` whose `ca.crt` is the CA that
//! signs the API server's serving certificate, so pods (through the `kube-api-access-*`
//! volume the ServiceAccount admission plugin adds) can verify `kubernetes.default.svc`. A
//! deleted ConfigMap is created again; a changed one is put back.

use std::collections::BTreeMap;
use std::future::Future;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::per_namespace;

/// The ConfigMap every namespace gets.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// Its key holding the CA bundle.
pub const ROOT_CA_KEY: &str = "ca.crt";
/// The annotation that says what the ConfigMap is for, with upstream's text.
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver \
    when using internal endpoints such as the internal service IP or kubernetes.default.svc. \
    No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Runs the publisher of `root_ca` (PEM) over `client` until `shutdown` completes.
pub async fn run(client: Client, root_ca: String, shutdown: impl Future<Output = ()>) {
    let root_ca = &root_ca;
    per_namespace::run::<ConfigMap, _, _>(
        client.clone(),
        ROOT_CA_CONFIG_MAP,
        "publishing the root CA",
        |namespace| sync(&client, root_ca, namespace),
        shutdown,
    )
    .await;
}

/// Creates or corrects `kube-root-ca.crt` in `namespace`.
async fn sync(client: &Client, root_ca: &str, namespace: String) -> kube::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let Some(ns) = namespaces.get_opt(&namespace).await? else {
        return Ok(());
    };
    if !per_namespace::is_active(&ns) {
        return Ok(());
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let data = BTreeMap::from([(ROOT_CA_KEY.to_owned(), root_ca.to_owned())]);
    let Some(mut config_map) = config_maps.get_opt(ROOT_CA_CONFIG_MAP).await? else {
        let config_map = ConfigMap {
            metadata: ObjectMeta {
                name: Some(ROOT_CA_CONFIG_MAP.to_owned()),
                annotations: Some(BTreeMap::from([(
                    DESCRIPTION_ANNOTATION.to_owned(),
                    DESCRIPTION.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            data: Some(data),
            ..ConfigMap::default()
        };
        return match config_maps
            .create(&PostParams::default(), &config_map)
            .await
        {
            Err(e) if !per_namespace::create_needs_no_retry(&e) => Err(e),
            _ => Ok(()),
        };
    };
    let described = config_map
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.get(DESCRIPTION_ANNOTATION).is_some_and(|d| !d.is_empty()));
    if config_map.data.as_ref() == Some(&data) && described {
        return Ok(());
    }
    // As upstream: the data is replaced whole (extra keys go), the other annotations stay.
    config_map.data = Some(data);
    config_map
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(DESCRIPTION_ANNOTATION.to_owned(), DESCRIPTION.to_owned());
    config_maps
        .replace(ROOT_CA_CONFIG_MAP, &PostParams::default(), &config_map)
        .await
        .map(drop)
}
