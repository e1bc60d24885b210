//! The loop shared by controllers that keep one named object in every namespace (the
//! `default` ServiceAccount, the `kube-root-ca.crt` ConfigMap): every namespace event, and
//! every event of an object with that name (a change or a delete), queues its namespace for
//! one pass of the controller.

use std::fmt::Debug;
use std::future::Future;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, Resource, ResourceExt as _};

/// Whether `ns` is active: not being deleted (upstream's controllers leave such namespaces
/// alone: their contents are going away, and creates there are refused).
pub fn is_active(ns: &Namespace) -> bool {
    let terminating = ns
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Terminating");
    ns.metadata.deletion_timestamp.is_none() && !terminating
}

/// Runs `pass` for a namespace each time it or its object `name` of kind `K` changes, until
/// `shutdown` completes. A failed pass is logged as `what`; the next event retries it.
pub async fn run<K, F, Fut>(
    client: Client,
    name: &str,
    what: &'static str,
    pass: F,
    shutdown: impl Future<Output = ()>,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
    F: Fn(String) -> Fut,
    Fut: Future<Output = kube::Result<()>>,
{
    let namespace_events = watcher(Api::<Namespace>::all(client.clone()), Default::default())
        .default_backoff()
        .applied_objects()
        .filter_map(|ns| async move { ns.ok().map(|ns| ns.name_any()) });
    // A deleted object is a Delete event, which `touched_objects` keeps.
    let object_events = watcher(
        Api::<K>::all(client),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .default_backoff()
    .touched_objects()
    .filter_map(|o| async move { o.ok().and_then(|o| o.namespace()) });
    let mut queue = std::pin::pin!(futures::stream::select(namespace_events, object_events));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let namespace = tokio::select! {
            () = &mut shutdown => return,
            next = queue.next() => match next {
                Some(namespace) => namespace,
                None => return,
            },
        };
        if let Err(e) = pass(namespace.clone()).await {
            tracing::warn!(%namespace, error = %e, "{what}");
        }
    }
}

/// Whether a create refused with `error` needs no retry: someone created the object first
/// (409), or the namespace is gone (404) or going away (403, NamespaceLifecycle).
pub fn create_needs_no_retry(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(e) if matches!(e.code, 403 | 404 | 409))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_active_namespaces_are_kept() {
        let ns = |value| serde_json::from_value::<Namespace>(value).unwrap();
        assert!(is_active(&ns(json!({"metadata": {"name": "a"}}))));
        assert!(is_active(&ns(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}})
        )));
        assert!(!is_active(&ns(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}})
        )));
        assert!(!is_active(&ns(json!({"metadata": {"name": "a",
            "deletionTimestamp": "2026-01-01T00:00:00Z"}}))));
    }
}
