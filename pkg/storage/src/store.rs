//! `Store`: the object-level storage contract, as kube-apiserver's `storage.Interface`.
//!
//! The registry talks only to this trait. [`crate::KvStore`] implements it over any
//! [`crate::KvBackend`]; the watch cache ([`crate::Cacher`]) implements it again as a decorator.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde_json::Value;

use crate::{BoxError, Object, Preconditions, ProgressRequester, Result, Revision, StorageError};

/// Which revision a read is served at, from the request's `resourceVersion` and
/// `resourceVersionMatch` (upstream's "resource version semantics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadAt {
    /// `resourceVersion` unset: the latest state (a consistent read).
    #[default]
    Latest,
    /// `resourceVersion=0`: any recent state; the watch cache answers without asking the backend.
    Any,
    /// `resourceVersion=N` (match `NotOlderThan`, or unset): state at least as new as N.
    NotOlderThan(Revision),
    /// `resourceVersion=N&resourceVersionMatch=Exact`: the state exactly at N (lists only).
    Exact(Revision),
}

/// A filter on objects (label and field selectors), applied inside storage so that lists,
/// limits and watches see only matching objects.
#[derive(Clone, Default)]
pub struct Predicate(Option<Arc<Filter>>);

/// The function behind a [`Predicate`].
type Filter = dyn Fn(&Value) -> bool + Send + Sync;

impl Predicate {
    /// Matches every object.
    pub fn everything() -> Self {
        Predicate(None)
    }

    /// Matches the objects for which `f` answers true.
    pub fn new(f: impl Fn(&Value) -> bool + Send + Sync + 'static) -> Self {
        Predicate(Some(Arc::new(f)))
    }

    /// True when this predicate matches every object.
    pub fn is_everything(&self) -> bool {
        self.0.is_none()
    }

    /// Does `object` match?
    pub fn matches(&self, object: &Value) -> bool {
        self.0.as_ref().is_none_or(|f| f(object))
    }
}

impl fmt::Debug for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_everything() {
            "Predicate(everything)"
        } else {
            "Predicate(filter)"
        })
    }
}

/// Options of a point read.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// Which state to read.
    pub at: ReadAt,
}

/// Options of a list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Which state to read; ignored when `continue_token` is set (the token carries it).
    pub at: ReadAt,
    /// Only objects matching this are returned (and counted towards `limit`).
    pub predicate: Predicate,
    /// At most this many objects; `None` or `Some(0)` returns all.
    pub limit: Option<usize>,
    /// Resume a previous paginated list.
    pub continue_token: Option<String>,
}

/// A list result.
#[derive(Debug, Clone)]
pub struct ObjectList {
    /// The objects, in key order.
    pub items: Vec<Object>,
    /// The revision the list was read at (its resourceVersion).
    pub revision: Revision,
    /// Set when more objects remain; pass it back as `continue_token`.
    pub continue_token: Option<String>,
    /// How many objects remain after this page, when known (only without a filter, as upstream).
    pub remaining_item_count: Option<u64>,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// `resourceVersion` unset: at the latest revision.
    Latest,
    /// `resourceVersion=0`: at any recent revision.
    Any,
    /// `resourceVersion=N`: after revision N. With `initial_events`, the initial state is taken
    /// at some revision not older than N.
    At(Revision),
}

/// Options of a watch.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Where the stream starts.
    pub start: WatchStart,
    /// First send an ADDED event for every matching object in the start state
    /// (what a watch without a resourceVersion, or with `sendInitialEvents=true`, does).
    pub initial_events: bool,
    /// After the initial events, send a bookmark marked as their end
    /// (`sendInitialEvents=true`, which always comes with bookmarks).
    pub initial_events_end: bool,
    /// Send bookmarks (`allowWatchBookmarks=true`).
    pub bookmarks: bool,
    /// Only changes to matching objects are sent; an object that stops matching is DELETED.
    pub predicate: Predicate,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            start: WatchStart::Latest,
            initial_events: false,
            initial_events_end: false,
            bookmarks: false,
            predicate: Predicate::everything(),
        }
    }
}

/// One watch event.
#[derive(Debug)]
pub enum WatchEvent {
    /// The object was created, or now matches the watch's filter.
    Added(Object),
    /// The object changed and still matches.
    Modified(Object),
    /// The object was deleted (its last state, at the delete's revision), or no longer matches.
    Deleted(Object),
    /// Every change up to this revision has been sent.
    Bookmark {
        /// The revision reached.
        revision: Revision,
        /// True on the bookmark that closes the initial events.
        initial_events_end: bool,
    },
    /// The watch failed; the stream ends after this event.
    Error(StorageError),
}

impl WatchEvent {
    /// The object of an ADDED, MODIFIED or DELETED event.
    pub fn object(&self) -> Option<&Object> {
        match self {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => Some(o),
            WatchEvent::Bookmark { .. } | WatchEvent::Error(_) => None,
        }
    }
}

/// A live watch. Dropping it stops the watch and frees its resources.
pub struct WatchStream {
    events: BoxStream<'static, WatchEvent>,
    progress: Option<ProgressRequester>,
}

impl WatchStream {
    /// Wraps a stream of events, with the way to request progress if the source has one.
    pub fn new(
        events: impl Stream<Item = WatchEvent> + Send + 'static,
        progress: Option<ProgressRequester>,
    ) -> Self {
        WatchStream {
            events: Box::pin(events),
            progress,
        }
    }

    /// The same watch with every event passed through `f` (a decorator's view of it);
    /// progress requests still reach the source.
    pub fn map(self, f: impl FnMut(WatchEvent) -> WatchEvent + Send + 'static) -> Self {
        WatchStream {
            events: Box::pin(self.events.map(f)),
            progress: self.progress,
        }
    }

    /// True when [`WatchStream::request_progress`] is answered: the source promises a bookmark
    /// that covers every write made before the request.
    pub fn supports_progress(&self) -> bool {
        self.progress.is_some()
    }

    /// Asks for a bookmark at the store's current revision (the watch must have been opened
    /// with `bookmarks`). Returns false when this stream cannot provide one.
    pub fn request_progress(&self) -> bool {
        match &self.progress {
            Some(p) => {
                p.request();
                true
            }
            None => false,
        }
    }
}

impl Stream for WatchStream {
    type Item = WatchEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchEvent>> {
        self.events.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WatchStream")
    }
}

/// What an update function returns: the new object and its TTL.
#[derive(Debug, Clone)]
pub struct Update {
    /// The new object (its resourceVersion is ignored).
    pub value: Value,
    /// Delete the key this long after the write (`None`: keep).
    pub ttl: Option<Duration>,
}

impl Update {
    /// An update with no TTL.
    pub fn new(value: Value) -> Self {
        Update { value, ttl: None }
    }
}

/// The update function of [`Store::guaranteed_update`]: given the current object (`None` when
/// it does not exist and the caller allowed that), returns the new object. It may run more than
/// once when writers race; an error aborts the update and is returned as
/// [`StorageError::Rejected`].
pub type UpdateFn<'a> =
    dyn FnMut(Option<Object>) -> BoxFuture<'a, std::result::Result<Update, BoxError>> + Send + 'a;

/// Checks the current object before it is deleted (validating admission); may run more than
/// once when writers race. An error aborts the delete as [`StorageError::Rejected`].
pub type DeleteValidation<'a> =
    dyn FnMut(Object) -> BoxFuture<'a, std::result::Result<(), BoxError>> + Send + 'a;

/// The object-level storage contract (kube-apiserver's `storage.Interface`).
///
/// Keys are full paths (`/registry/<resource>/<namespace>/<name>`); lists and watches take a
/// prefix ending in `/`. Objects are JSON objects with a `metadata` map.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates an object; `AlreadyExists` if the key is taken. The object must not carry a
    /// resourceVersion (upstream refuses one on create).
    async fn create(&self, key: &str, value: Value, ttl: Option<Duration>) -> Result<Object>;

    /// Reads one object; `NotFound` if absent.
    async fn get(&self, key: &str, options: &GetOptions) -> Result<Object>;

    /// Lists the objects under `prefix`.
    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ObjectList>;

    /// Watches the objects under `prefix` (a single key is a prefix too, with a predicate
    /// on its name).
    async fn watch(&self, prefix: &str, options: &WatchOptions) -> Result<WatchStream>;

    /// Reads, applies `update`, and writes back if the object is unchanged since the read,
    /// retrying on conflict. A result byte-identical to the current object is not written:
    /// the current object is returned and no revision is used.
    async fn guaranteed_update(
        &self,
        key: &str,
        preconditions: &Preconditions,
        ignore_not_found: bool,
        update: &mut UpdateFn<'_>,
    ) -> Result<Object>;

    /// Deletes an object after checking `preconditions` and `validate` against its current
    /// state; returns its last state at the delete's revision.
    async fn delete(
        &self,
        key: &str,
        preconditions: &Preconditions,
        validate: Option<&mut DeleteValidation<'_>>,
    ) -> Result<Object>;

    /// How many objects are stored under `prefix`.
    async fn count(&self, prefix: &str) -> Result<u64>;

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision>;
}
