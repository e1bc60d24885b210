//! The service account controller (upstream's `pkg/controller/serviceaccount`
//! `ServiceAccountsController`): every active namespace has a ServiceAccount `default`, created
//! when the namespace appears and again whenever it is deleted. Namespaces being deleted are
//! left alone (upstream skips them: their contents are going away).

use std::future::Future;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::per_namespace;

/// The service account every namespace gets.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// Runs the controller over `client` until `shutdown` completes.
pub async fn run(client: Client, shutdown: impl Future<Output = ()>) {
    per_namespace::run::<ServiceAccount, _, _>(
        client.clone(),
        DEFAULT_SERVICE_ACCOUNT,
        "creating the default service account",
        |namespace| ensure_default(&client, namespace),
        shutdown,
    )
    .await;
}

/// Creates `default` in `namespace` unless it exists or the namespace is going away.
async fn ensure_default(client: &Client, namespace: String) -> kube::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let Some(ns) = namespaces.get_opt(&namespace).await? else {
        return Ok(());
    };
    if !per_namespace::is_active(&ns) {
        return Ok(());
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    if accounts.get_opt(DEFAULT_SERVICE_ACCOUNT).await?.is_some() {
        return Ok(());
    }
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT_SERVICE_ACCOUNT.to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match accounts.create(&PostParams::default(), &account).await {
        Err(e) if !per_namespace::create_needs_no_retry(&e) => Err(e),
        _ => Ok(()),
    }
}
