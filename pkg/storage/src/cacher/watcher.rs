//! One client's watch on the cache: registration, the shared events it is fed, and their
//! translation through the watcher's predicate.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::task::{Context, Poll, ready};

use futures::Stream;
use tokio::sync::mpsc;

use super::Shared;
use crate::store::{Predicate, WatchEvent, WatchOptions, WatchStart, WatchStream};
use crate::{Object, ProgressRequester, Result, Revision, StorageError};

/// What an event from the inner watch did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    Added,
    Modified,
    Deleted,
}

/// One change, shared by the ring buffer and every watcher's queue.
pub(super) struct CachedEvent {
    change: Change,
    /// The new state; for a delete, the last state at the delete's revision.
    object: Object,
    /// For a modification: the state before, as the cache held it.
    prev: Option<Object>,
    /// `prev` at this event's revision, made on first need (a watcher's filter stopped matching)
    /// and then shared like `object`.
    prev_at_event: OnceLock<Option<Object>>,
}

impl CachedEvent {
    pub(super) fn new(change: Change, object: Object, prev: Option<Object>) -> Self {
        CachedEvent {
            change,
            object,
            prev: prev.filter(|_| change == Change::Modified),
            prev_at_event: OnceLock::new(),
        }
    }

    pub(super) fn revision(&self) -> Revision {
        self.object.revision()
    }

    pub(super) fn key(&self) -> &str {
        self.object.key()
    }

    /// The event as a watcher with `predicate` sees it, by the rules of `KvStore`'s watch
    /// (upstream's): starting to match is ADDED, stopping to match is DELETED with the previous
    /// state at this revision, and changes the watcher never matched are dropped.
    fn for_watcher(&self, predicate: &Predicate) -> Option<WatchEvent> {
        let matches = |o: &Object| predicate.matches(o.value());
        let object = || self.object.clone();
        match self.change {
            Change::Added => matches(&self.object).then(|| WatchEvent::Added(object())),
            Change::Deleted => matches(&self.object).then(|| WatchEvent::Deleted(object())),
            Change::Modified if predicate.is_everything() => Some(WatchEvent::Modified(object())),
            Change::Modified => {
                let matched = self.prev.as_ref().is_some_and(matches);
                match (matched, matches(&self.object)) {
                    (true, true) => Some(WatchEvent::Modified(object())),
                    (false, true) => Some(WatchEvent::Added(object())),
                    (true, false) => Some(self.no_longer_matches()),
                    (false, false) => None,
                }
            }
        }
    }

    fn no_longer_matches(&self) -> WatchEvent {
        let prev = self.prev_at_event.get_or_init(|| {
            let prev = self.prev.as_ref()?;
            Object::new(prev.key(), prev.value().clone(), self.revision()).ok()
        });
        match prev {
            Some(prev) => WatchEvent::Deleted(prev.clone()),
            // Unreachable in practice: `prev` was a valid object when it was cached.
            None => WatchEvent::Error(StorageError::InvalidObject {
                key: self.key().to_string(),
                reason: "its previous state cannot carry the event's resourceVersion".into(),
            }),
        }
    }
}

/// An entry of a watcher's queue.
pub(super) enum Item {
    /// A change, translated when the watcher takes it.
    Event(Arc<CachedEvent>),
    /// An event made for this watcher (initial ADDED, bookmarks).
    Ready(WatchEvent),
}

/// What a watcher's stream shares with the dispatcher.
#[derive(Default)]
pub(super) struct WatcherShared {
    /// The client asked for a bookmark at the next progress notification.
    pub(super) progress_wanted: AtomicBool,
    /// Why the dispatcher closed the queue, delivered after the queued events.
    ended: Mutex<Option<StorageError>>,
}

impl WatcherShared {
    /// Records why the watcher ends; the caller then drops its queue's sender.
    pub(super) fn end(&self, reason: StorageError) {
        *self.ended.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    fn take_end(&self) -> Option<StorageError> {
        self.ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Registers a watch of `prefix` on the cache, which must already be fresh enough for
/// `options.start`. `None` when the cache is not ready (the caller asks the inner store).
///
/// The snapshot or replay and the registration happen under one lock with the dispatcher, so
/// the watcher gets every event after its start exactly once.
pub(super) fn register(
    shared: &Arc<Shared>,
    prefix: &str,
    options: &WatchOptions,
) -> Result<Option<WatchStream>> {
    let watcher = Arc::new(WatcherShared::default());
    let mut state = shared.write();
    if !state.ready() {
        return Ok(None);
    }
    let mut pending = VecDeque::new();
    if options.initial_events {
        let matching = state
            .objects(prefix)
            .filter(|o| options.predicate.matches(o.value()));
        pending.extend(matching.map(|o| Item::Ready(WatchEvent::Added(o.clone()))));
    } else if let WatchStart::At(revision) = options.start {
        pending.extend(
            state
                .events_after(prefix, revision)?
                .cloned()
                .map(Item::Event),
        );
    }
    if options.initial_events_end {
        pending.push_back(Item::Ready(WatchEvent::Bookmark {
            revision: state.revision(),
            initial_events_end: true,
        }));
    }
    let (id, queue) = state.add_watcher(
        prefix,
        options.bookmarks,
        shared.config.watcher_capacity,
        watcher.clone(),
    );
    drop(state);

    let events = CacheWatch {
        pending,
        queue,
        predicate: options.predicate.clone(),
        watcher: watcher.clone(),
        _registration: Registration {
            id,
            shared: Arc::downgrade(shared),
        },
        finished: false,
    };
    let weak = Arc::downgrade(shared);
    let progress = ProgressRequester::new(move || {
        watcher.progress_wanted.store(true, Ordering::Release);
        if let Some(shared) = weak.upgrade() {
            shared.progress.notify_one();
        }
    });
    Ok(Some(WatchStream::new(events, Some(progress))))
}

/// Unregisters the watcher when its stream is dropped. Holds the cacher weakly: open watches
/// do not keep a dropped cacher alive.
struct Registration {
    id: u64,
    shared: Weak<Shared>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.write().remove_watcher(self.id);
        }
    }
}

/// The event stream of one watcher: replayed or initial events first, then its queue.
struct CacheWatch {
    pending: VecDeque<Item>,
    queue: mpsc::Receiver<Item>,
    predicate: Predicate,
    watcher: Arc<WatcherShared>,
    _registration: Registration,
    finished: bool,
}

impl Stream for CacheWatch {
    type Item = WatchEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchEvent>> {
        let this = self.get_mut();
        while !this.finished {
            let item = match this.pending.pop_front() {
                Some(item) => item,
                None => match ready!(this.queue.poll_recv(cx)) {
                    Some(item) => item,
                    None => {
                        // Closed by the dispatcher (too slow, inner watch lost) or by a stopped
                        // cacher (no reason: the stream just ends).
                        this.finished = true;
                        return Poll::Ready(this.watcher.take_end().map(WatchEvent::Error));
                    }
                },
            };
            let event = match item {
                Item::Ready(event) => Some(event),
                Item::Event(event) => event.for_watcher(&this.predicate),
            };
            if let Some(event) = event {
                this.finished = matches!(event, WatchEvent::Error(_));
                return Poll::Ready(Some(event));
            }
        }
        Poll::Ready(None)
    }
}
