//! In-memory indexes kept current from the registry, as informers keep them upstream: list,
//! then watch from the list's revision, and list again after a failed watch. The RBAC index
//! and the Node authorizer's graph are fed this way; [`start`] returns once every source has
//! been listed, so that authorization is complete from the first request on.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use rkube_api::status::ApiError;
use rkube_registry::Rest;
use rkube_registry::rest::{ListOptions, Scope};
use rkube_storage::WatchEvent;
use serde_json::Value;
use tokio::task::JoinHandle;

/// How long a failed list or watch waits before listing again.
const RELIST_DELAY: Duration = Duration::from_secs(1);

/// An index of one resource's objects.
pub trait Index: Send + Sync {
    /// Replaces everything with `objects` (after a list).
    fn replace(&self, objects: &[Value]);
    /// Adds or replaces one object.
    fn upsert(&self, object: &Value);
    /// Removes one object.
    fn remove(&self, object: &Value);
}

/// One resource to follow: its name (for logs), its handler and the index it feeds.
pub struct Source {
    /// The resource, as logs name it.
    pub what: &'static str,
    /// The registry's handler of the resource.
    pub rest: Arc<dyn Rest>,
    /// The index to keep current.
    pub index: Arc<dyn Index>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("what", &self.what).finish()
    }
}

/// The tasks keeping indexes current; they stop when this is dropped.
#[derive(Debug)]
pub struct Feed {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts following every source; returns once each has been listed.
pub async fn start(sources: Vec<Source>) -> Feed {
    let mut tasks = Vec::new();
    let mut listed = Vec::new();
    for source in sources {
        let (ready, is_ready) = tokio::sync::oneshot::channel::<()>();
        listed.push(is_ready);
        tasks.push(tokio::spawn(async move {
            let mut ready = Some(ready);
            loop {
                if let Err(e) = follow(&source, &mut ready).await {
                    tracing::warn!(error = %e, resource = source.what, "watch failed: listing again");
                }
                tokio::time::sleep(RELIST_DELAY).await;
            }
        }));
    }
    let feed = Feed { tasks };
    for is_ready in listed {
        // A task only ends by abort, and these are not aborted before `feed` is dropped.
        let _ = is_ready.await;
    }
    feed
}

/// Lists into the index, signals `ready` the first time, then applies the watch's events
/// until it ends.
async fn follow(
    source: &Source,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), ApiError> {
    let all = Scope::default();
    let list = source
        .rest
        .list(
            &all,
            &ListOptions {
                resource_version: "0".into(),
                ..ListOptions::default()
            },
        )
        .await?;
    let objects: Vec<Value> = list.items.iter().map(|o| o.value().clone()).collect();
    source.index.replace(&objects);
    if let Some(ready) = ready.take() {
        let _ = ready.send(());
    }
    let mut events = source
        .rest
        .watch(
            &all,
            &ListOptions {
                resource_version: list.revision.to_string(),
                allow_watch_bookmarks: true,
                ..ListOptions::default()
            },
        )
        .await?;
    while let Some(event) = events.next().await {
        match event {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => source.index.upsert(o.value()),
            WatchEvent::Deleted(o) => source.index.remove(o.value()),
            WatchEvent::Bookmark { .. } => {}
            WatchEvent::Error(e) => return Err(ApiError::internal(e)),
        }
    }
    Ok(())
}
