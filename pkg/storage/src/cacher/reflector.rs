//! The reflector: keeps the cache in step with the inner store (list, then watch from the list's
//! revision), and starts over with a fresh list whenever the watch fails.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::time::{Instant, MissedTickBehavior};

use super::Shared;
use super::watcher::Change;
use crate::StorageError;
use crate::store::{ListOptions, WatchEvent, WatchOptions, WatchStart};

/// The first pause before re-listing after a failure; doubled per failure up to the maximum.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs until `shutdown` fires (the cacher was dropped), then ends every watcher.
pub(super) async fn run(shared: Arc<Shared>, shutdown: oneshot::Receiver<()>) {
    tokio::select! {
        _ = shutdown => {}
        () = reflect(&shared) => {}
    }
    let mut state = shared.write();
    state.stop();
    shared.publish(&state);
}

/// List and watch, forever; each failure ends the current watchers and re-lists after a backoff.
async fn reflect(shared: &Shared) {
    let mut backoff = INITIAL_BACKOFF;
    loop {
        let cause = follow(shared, &mut backoff).await;
        tracing::warn!(
            prefix = %shared.prefix,
            error = %cause,
            retry_in = ?backoff,
            "watch cache lost its watch; re-listing"
        );
        {
            let mut state = shared.write();
            state.reset(&cause);
            shared.publish(&state);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Loads the prefix and follows its watch until it fails; returns why.
async fn follow(shared: &Shared, backoff: &mut Duration) -> StorageError {
    let list = match shared
        .inner
        .list(&shared.prefix, &ListOptions::default())
        .await
    {
        Ok(list) => list,
        Err(e) => return e,
    };
    let options = WatchOptions {
        start: WatchStart::At(list.revision),
        bookmarks: true,
        ..WatchOptions::default()
    };
    let mut stream = match shared.inner.watch(&shared.prefix, &options).await {
        Ok(stream) => stream,
        Err(e) => return e,
    };
    shared
        .progress_supported
        .store(stream.supports_progress(), Ordering::Release);
    {
        let mut state = shared.write();
        state.replace(list.items, list.revision);
        shared.publish(&state);
    }
    *backoff = INITIAL_BACKOFF;

    // A zero period would make the ticker spin (and tokio refuses it).
    let period = shared
        .config
        .bookmark_interval
        .max(Duration::from_millis(1));
    let mut bookmarks = tokio::time::interval_at(Instant::now() + period, period);
    bookmarks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = stream.next() => {
                let (change, object) = match event {
                    Some(WatchEvent::Added(o)) => (Change::Added, o),
                    Some(WatchEvent::Modified(o)) => (Change::Modified, o),
                    Some(WatchEvent::Deleted(o)) => (Change::Deleted, o),
                    Some(WatchEvent::Bookmark { revision, .. }) => {
                        let mut state = shared.write();
                        state.progress(revision);
                        shared.publish(&state);
                        continue;
                    }
                    Some(WatchEvent::Error(e)) => return e,
                    None => {
                        return StorageError::unavailable(
                            format!("watching {}", shared.prefix),
                            "the inner watch ended",
                        );
                    }
                };
                let mut state = shared.write();
                state.apply(change, object);
                shared.publish(&state);
            }
            () = shared.progress.notified() => {
                stream.request_progress();
            }
            _ = bookmarks.tick() => shared.read().bookmark_all(),
        }
    }
}
