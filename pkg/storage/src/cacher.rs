//! The watch cache (kube-apiserver's cacher): a [`Store`] that decorates a [`Store`] for one
//! resource prefix and serves lists and watches from memory.
//!
//! # Layout
//! - `reflector`: the background task. It lists the prefix from the inner store, watches it from
//!   the list's revision (with bookmarks), and feeds every event into the state; on any watch
//!   failure it ends the current watchers with the cause and re-lists with backoff.
//! - `state`: the objects by key, the cache revision, a bounded ring of recent events (the window
//!   a watch may resume from), and the registered watchers. Applying an event updates all of it
//!   under one lock, so a new watcher sees either a snapshot plus everything after it, or nothing.
//! - `watcher`: one client's watch: the replayed or initial events, then its bounded queue of live
//!   ones, each turned into ADDED/MODIFIED/DELETED through the watcher's predicate.
//!
//! Each event is one shared [`Object`] for every watcher and for the map, so its JSON is encoded
//! at most once and a list clones only `Arc`s. Dispatch never blocks: a watcher whose queue is
//! full is dropped with [`StorageError::WatcherTooSlow`]. Reads that need a state the cache
//! cannot vouch for (exact revisions, continuations, keys outside the prefix, a cache that is
//! still loading) and all writes go to the inner store.

mod reflector;
mod state;
mod watcher;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;

use crate::store::{
    DeleteValidation, GetOptions, ListOptions, ObjectList, ReadAt, Store, UpdateFn, WatchOptions,
    WatchStart, WatchStream,
};
use crate::{Object, Preconditions, Result, Revision, StorageError};

use state::State;

/// How often a read waiting for the cache to reach a revision asks the inner watch for progress
/// again: the revision may have been written elsewhere after the previous answer (upstream's
/// progress requester ticks at the same rate).
const PROGRESS_RETRY: Duration = Duration::from_millis(100);

/// Tuning of a [`Cacher`].
#[derive(Debug, Clone)]
pub struct CacherConfig {
    /// How many recent events are kept for watches that resume from a resourceVersion.
    pub event_capacity: usize,
    /// How many events may wait for one watcher before it is dropped as too slow.
    pub watcher_capacity: usize,
    /// How often watchers that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// How long a read waits for the cache to reach the revision it needs.
    pub freshness_timeout: Duration,
}

impl Default for CacherConfig {
    fn default() -> Self {
        CacherConfig {
            event_capacity: 1024,
            watcher_capacity: 1024,
            bookmark_interval: Duration::from_secs(60),
            freshness_timeout: Duration::from_secs(3),
        }
    }
}

/// The watch cache of one resource prefix. See the [module docs](self).
///
/// Dropping the last `Arc<Cacher>` stops its reflector task and ends its watchers.
pub struct Cacher {
    shared: Arc<Shared>,
    /// Dropped with the cacher, which tells the reflector to stop.
    _shutdown: oneshot::Sender<()>,
}

impl fmt::Debug for Cacher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cacher")
            .field("prefix", &self.shared.prefix)
            .finish_non_exhaustive()
    }
}

/// What the cacher, its reflector and its watchers share.
struct Shared {
    inner: Arc<dyn Store>,
    prefix: String,
    config: CacherConfig,
    state: RwLock<State>,
    /// Readiness and revision, for readers waiting on either (no polling).
    status: watch::Sender<Status>,
    /// Asks the reflector to request progress on the inner watch.
    progress: Notify,
    /// Whether the inner watch answers progress requests. Without them a consistent read cannot
    /// learn that the cache is fresh, so it goes to the inner store unless the cache already is.
    progress_supported: AtomicBool,
}

/// What waiting readers need to know, published after every change of the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Status {
    /// The cache holds a complete list and a live watch.
    ready: bool,
    /// Every event up to here has been applied.
    revision: Revision,
}

/// Where a read is answered.
enum Source {
    Cache,
    Inner,
}

impl Cacher {
    /// A watch cache of `prefix` (e.g. `/registry/configmaps/`) over `inner`. Its reflector starts
    /// at once on the current tokio runtime; until its first list is loaded (see
    /// [`Cacher::ready`]) every read goes to `inner`.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn new(
        inner: Arc<dyn Store>,
        prefix: impl Into<String>,
        config: CacherConfig,
    ) -> Arc<Self> {
        let capacity = config.event_capacity;
        let shared = Arc::new(Shared {
            inner,
            prefix: prefix.into(),
            config,
            state: RwLock::new(State::new(capacity)),
            status: watch::Sender::new(Status {
                ready: false,
                revision: 0,
            }),
            progress: Notify::new(),
            progress_supported: AtomicBool::new(false),
        });
        let (shutdown, stopped) = oneshot::channel();
        tokio::spawn(reflector::run(shared.clone(), stopped));
        Arc::new(Cacher {
            shared,
            _shutdown: shutdown,
        })
    }

    /// Resolves once the cache holds a complete list and follows the inner store (again, after
    /// a re-list).
    pub async fn ready(&self) {
        let mut status = self.shared.status.subscribe();
        // The sender lives in `shared`, which `self` keeps alive, so this cannot fail.
        let _ = status.wait_for(|s| s.ready).await;
    }
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        // The state is updated in whole steps, so a panic elsewhere cannot leave it half-written.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells waiting readers about the state's readiness and revision.
    fn publish(&self, state: &State) {
        let now = Status {
            ready: state.ready(),
            revision: state.revision(),
        };
        self.status.send_if_modified(|status| {
            let changed = *status != now;
            *status = now;
            changed
        });
    }

    /// True when a key or prefix lies inside the cached prefix.
    fn covers(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
    }

    /// Decides where a read at `at` is served; for the cache, waits until it is fresh enough.
    ///
    /// `Latest` is a consistent read: the cache must reach the inner store's current revision
    /// (helped by a progress request), or the read falls back to the inner store. `NotOlderThan`
    /// that the cache cannot reach in time is `TooLargeResourceVersion`, as upstream. While the
    /// cache is (re)loading, everything goes to the inner store.
    async fn source(&self, at: ReadAt) -> Result<Source> {
        if !self.status.borrow().ready {
            return Ok(Source::Inner);
        }
        let (target, fall_back) = match at {
            ReadAt::Exact(_) => return Ok(Source::Inner),
            ReadAt::Any => return Ok(Source::Cache),
            ReadAt::NotOlderThan(revision) => (revision, false),
            ReadAt::Latest => {
                let target = self.inner.current_revision().await?;
                if !self.progress_supported.load(Ordering::Acquire) {
                    let status = *self.status.borrow();
                    let fresh = status.ready && status.revision >= target;
                    return Ok(if fresh { Source::Cache } else { Source::Inner });
                }
                (target, true)
            }
        };
        let status = self.wait_for_revision(target).await;
        if !status.ready || (status.revision < target && fall_back) {
            return Ok(Source::Inner);
        }
        if status.revision < target {
            return Err(StorageError::TooLargeResourceVersion {
                requested: target,
                current: status.revision,
            });
        }
        Ok(Source::Cache)
    }

    /// Waits up to the freshness timeout for the cache to reach `target`, or to stop being
    /// ready (a lost watch: it will not get there before a re-list); returns the status then.
    async fn wait_for_revision(&self, target: Revision) -> Status {
        let done = |s: &Status| !s.ready || s.revision >= target;
        let mut status = self.status.subscribe();
        let now = *status.borrow_and_update();
        if done(&now) {
            return now;
        }
        let deadline = Instant::now() + self.config.freshness_timeout;
        loop {
            // An idle watch sends nothing, and a revision written under another prefix is only
            // ever reached through a progress notification.
            self.progress.notify_one();
            let retry = (Instant::now() + PROGRESS_RETRY).min(deadline);
            let woke = tokio::time::timeout_at(retry, status.wait_for(done))
                .await
                .is_ok();
            if woke || Instant::now() >= deadline {
                // The sender lives in `self`, so `wait_for` itself cannot fail.
                return *status.borrow();
            }
        }
    }
}

#[async_trait]
impl Store for Cacher {
    async fn create(&self, key: &str, value: Value, ttl: Option<Duration>) -> Result<Object> {
        self.shared.inner.create(key, value, ttl).await
    }

    async fn get(&self, key: &str, options: &GetOptions) -> Result<Object> {
        let shared = &self.shared;
        if !shared.covers(key) {
            return shared.inner.get(key, options).await;
        }
        match shared.source(options.at).await? {
            Source::Inner => shared.inner.get(key, options).await,
            Source::Cache => shared
                .read()
                .get(key)
                .ok_or_else(|| StorageError::NotFound {
                    key: key.to_string(),
                }),
        }
    }

    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ObjectList> {
        let shared = &self.shared;
        // A continuation reads at its token's exact revision, so its pages stay consistent.
        if !shared.covers(prefix) || options.continue_token.is_some() {
            return shared.inner.list(prefix, options).await;
        }
        match shared.source(options.at).await? {
            Source::Inner => shared.inner.list(prefix, options).await,
            Source::Cache => Ok(shared.read().list(prefix, options)),
        }
    }

    async fn watch(&self, prefix: &str, options: &WatchOptions) -> Result<WatchStream> {
        let shared = &self.shared;
        if !shared.covers(prefix) {
            return shared.inner.watch(prefix, options).await;
        }
        let at = match options.start {
            WatchStart::Latest => ReadAt::Latest,
            WatchStart::Any => ReadAt::Any,
            WatchStart::At(revision) => ReadAt::NotOlderThan(revision),
        };
        if let Source::Cache = shared.source(at).await?
            && let Some(stream) = watcher::register(shared, prefix, options)?
        {
            return Ok(stream);
        }
        shared.inner.watch(prefix, options).await
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        preconditions: &Preconditions,
        ignore_not_found: bool,
        update: &mut UpdateFn<'_>,
    ) -> Result<Object> {
        self.shared
            .inner
            .guaranteed_update(key, preconditions, ignore_not_found, update)
            .await
    }

    async fn delete(
        &self,
        key: &str,
        preconditions: &Preconditions,
        validate: Option<&mut DeleteValidation<'_>>,
    ) -> Result<Object> {
        self.shared.inner.delete(key, preconditions, validate).await
    }

    async fn count(&self, prefix: &str) -> Result<u64> {
        let shared = &self.shared;
        if !shared.covers(prefix) {
            return shared.inner.count(prefix).await;
        }
        // A count is "now" in the inner store, so it gets the consistent-read treatment.
        match shared.source(ReadAt::Latest).await? {
            Source::Inner => shared.inner.count(prefix).await,
            Source::Cache => Ok(shared.read().count(prefix)),
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.shared.inner.current_revision().await
    }
}

/// A copy of `error` for one more recipient (`StorageError` is not `Clone`: sources are boxed
/// errors). Each watcher ended by a failed inner watch gets the cause this way, so a `Compacted`
/// still reads as "too old" and clients re-list.
fn duplicate(error: &StorageError) -> StorageError {
    match error {
        StorageError::NotFound { key } => StorageError::NotFound { key: key.clone() },
        StorageError::AlreadyExists { key } => StorageError::AlreadyExists { key: key.clone() },
        StorageError::Conflict { key, message } => StorageError::Conflict {
            key: key.clone(),
            message: message.clone(),
        },
        StorageError::Compacted {
            requested,
            compacted,
        } => StorageError::Compacted {
            requested: *requested,
            compacted: *compacted,
        },
        StorageError::TooLargeResourceVersion { requested, current } => {
            StorageError::TooLargeResourceVersion {
                requested: *requested,
                current: *current,
            }
        }
        StorageError::InvalidResourceVersion(rv) => {
            StorageError::InvalidResourceVersion(rv.clone())
        }
        StorageError::InvalidContinue(m) => StorageError::InvalidContinue(m.clone()),
        StorageError::InvalidObject { key, reason } => StorageError::InvalidObject {
            key: key.clone(),
            reason: reason.clone(),
        },
        StorageError::Rejected(e) => StorageError::Rejected(e.to_string().into()),
        StorageError::WatcherTooSlow(m) => StorageError::WatcherTooSlow(m.clone()),
        StorageError::Unavailable { context, source } => {
            StorageError::unavailable(context.clone(), source.to_string())
        }
    }
}
