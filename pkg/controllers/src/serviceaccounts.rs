//! The service account controller (upstream's `pkg/controller/serviceaccount`
//! `ServiceAccountsController`): every active namespace has a ServiceAccount `default`, created
//! when the namespace appears and again whenever it is deleted. Namespaces being deleted are
//! left alone (upstream skips them: their contents are going away).
//!
//! Namespaces and `default` service accounts are watched; each event of either queues its
//! namespace for one pass, which creates the account when it is missing.

use std::future::Future;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};

/// The service account every namespace gets.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// Whether the namespace `ns` should have its default service account: it is not being
/// deleted.
pub fn wants_default(ns: &Namespace) -> bool {
    let terminating = ns
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Terminating");
    ns.metadata.deletion_timestamp.is_none() && !terminating
}

/// Runs the controller over `client` until `shutdown` completes.
pub async fn run(client: Client, shutdown: impl Future<Output = ()>) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let accounts: Api<ServiceAccount> = Api::all(client.clone());
    let namespace_events = watcher(namespaces.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .filter_map(|ns| async move { ns.ok().map(|ns| ns.name_any()) });
    // A deleted `default` account is a Delete event, which `touched_objects` keeps.
    let account_events = watcher(
        accounts,
        watcher::Config::default().fields(&format!("metadata.name={DEFAULT_SERVICE_ACCOUNT}")),
    )
    .default_backoff()
    .touched_objects()
    .filter_map(|sa| async move { sa.ok().and_then(|sa| sa.namespace()) });
    let mut queue = std::pin::pin!(futures::stream::select(namespace_events, account_events));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let namespace = tokio::select! {
            () = &mut shutdown => return,
            next = queue.next() => match next {
                Some(namespace) => namespace,
                None => return,
            },
        };
        if let Err(e) = ensure_default(&client, &namespaces, &namespace).await {
            tracing::warn!(%namespace, error = %e, "creating the default service account");
        }
    }
}

/// Creates `default` in `namespace` unless it exists or the namespace is going away.
async fn ensure_default(
    client: &Client,
    namespaces: &Api<Namespace>,
    namespace: &str,
) -> kube::Result<()> {
    let Some(ns) = namespaces.get_opt(namespace).await? else {
        return Ok(());
    };
    if !wants_default(&ns) {
        return Ok(());
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
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
        // Another pass (or a user) created it first; a namespace that started terminating
        // refuses creates, which is what upstream's controller expects too.
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 403 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_active_namespaces_get_the_account() {
        let ns = |value| serde_json::from_value::<Namespace>(value).unwrap();
        assert!(wants_default(&ns(json!({"metadata": {"name": "a"}}))));
        assert!(wants_default(&ns(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}})
        )));
        assert!(!wants_default(&ns(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}})
        )));
        assert!(!wants_default(&ns(json!({"metadata": {"name": "a",
            "deletionTimestamp": "2026-01-01T00:00:00Z"}}))));
    }
}
