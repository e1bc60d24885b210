//! The cache's state: objects by key, the cache revision, the ring of recent events and the
//! registered watchers, all changed together under the cacher's lock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc::{self, error::TrySendError};

use super::duplicate;
use super::watcher::{CachedEvent, Change, Item, WatcherShared};
use crate::revision::encode_continue;
use crate::store::{ListOptions, ObjectList, Predicate, WatchEvent};
use crate::{Object, Revision, StorageError};

/// A registered watcher as the dispatcher sees it.
struct Watcher {
    /// Only events under this prefix are queued.
    prefix: String,
    /// The watcher asked for bookmarks.
    bookmarks: bool,
    queue: mpsc::Sender<Item>,
    shared: Arc<WatcherShared>,
}

impl Watcher {
    /// Queues a bookmark unless the queue is full: bookmarks are best effort and a full queue
    /// means the watcher is already behind. Returns whether it was queued.
    fn bookmark(&self, revision: Revision) -> bool {
        self.queue
            .try_send(Item::Ready(WatchEvent::Bookmark {
                revision,
                initial_events_end: false,
            }))
            .is_ok()
    }
}

pub(super) struct State {
    objects: BTreeMap<String, Object>,
    revision: Revision,
    /// The cache holds a complete list and follows a live watch.
    ready: bool,
    /// Recent events in revision order, at most `event_capacity`.
    events: VecDeque<Arc<CachedEvent>>,
    event_capacity: usize,
    /// The oldest revision a watch may start after: every event after it is still in `events`.
    oldest_watchable: Revision,
    watchers: HashMap<u64, Watcher>,
    next_watcher: u64,
}

impl State {
    pub(super) fn new(event_capacity: usize) -> Self {
        State {
            objects: BTreeMap::new(),
            revision: 0,
            ready: false,
            events: VecDeque::new(),
            // A ring of zero could never replay anything, not even the latest event.
            event_capacity: event_capacity.max(1),
            oldest_watchable: 0,
            watchers: HashMap::new(),
            next_watcher: 0,
        }
    }

    pub(super) fn ready(&self) -> bool {
        self.ready
    }

    pub(super) fn revision(&self) -> Revision {
        self.revision
    }

    /// Loads a fresh list at `revision`: the old objects and events are forgotten, so watches
    /// may only resume from `revision` on.
    pub(super) fn replace(&mut self, items: Vec<Object>, revision: Revision) {
        self.objects = items
            .into_iter()
            .map(|o| (o.key().to_string(), o))
            .collect();
        self.revision = revision;
        self.events.clear();
        self.oldest_watchable = revision;
        self.ready = true;
    }

    /// The inner watch failed: every watcher ends with `cause` (so clients re-list), and reads
    /// go to the inner store until the cache has re-listed.
    pub(super) fn reset(&mut self, cause: &StorageError) {
        self.ready = false;
        for (_, watcher) in self.watchers.drain() {
            watcher.shared.end(duplicate(cause));
        }
    }

    /// The cacher stopped: every watcher's stream ends.
    pub(super) fn stop(&mut self) {
        self.ready = false;
        self.watchers.clear();
    }

    /// Applies one change from the inner watch and hands it to every watcher.
    pub(super) fn apply(&mut self, change: Change, object: Object) {
        let prev = match change {
            Change::Deleted => self.objects.remove(object.key()),
            Change::Added | Change::Modified => self
                .objects
                .insert(object.key().to_string(), object.clone()),
        };
        let event = Arc::new(CachedEvent::new(change, object, prev));
        self.revision = self.revision.max(event.revision());
        if self.events.len() >= self.event_capacity
            && let Some(evicted) = self.events.pop_front()
        {
            self.oldest_watchable = evicted.revision();
        }
        self.events.push_back(event.clone());
        self.dispatch(&event);
    }

    /// Queues `event` for every watcher of its key; a watcher whose queue is full is dropped
    /// rather than waited for, so one slow client never holds up the others.
    fn dispatch(&mut self, event: &Arc<CachedEvent>) {
        self.watchers.retain(|_, watcher| {
            if !event.key().starts_with(&watcher.prefix) {
                return true;
            }
            match watcher.queue.try_send(Item::Event(event.clone())) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    watcher.shared.end(StorageError::WatcherTooSlow(format!(
                        "watcher of {} had {} events waiting at revision {}",
                        watcher.prefix,
                        watcher.queue.max_capacity(),
                        event.revision()
                    )));
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
    }

    /// The inner watch reported progress up to `revision`: the cache is that fresh, and watchers
    /// that asked for progress get a bookmark.
    pub(super) fn progress(&mut self, revision: Revision) {
        self.revision = self.revision.max(revision);
        for watcher in self.watchers.values().filter(|w| w.bookmarks) {
            if watcher.shared.progress_wanted.swap(false, Ordering::AcqRel)
                && !watcher.bookmark(self.revision)
            {
                // Try again at the next progress notification.
                watcher
                    .shared
                    .progress_wanted
                    .store(true, Ordering::Release);
            }
        }
    }

    /// The periodic bookmark for every watcher that wants bookmarks.
    pub(super) fn bookmark_all(&self) {
        for watcher in self.watchers.values().filter(|w| w.bookmarks) {
            watcher.bookmark(self.revision);
        }
    }

    /// Registers a watcher of `prefix` fed from now on; returns its id and queue.
    pub(super) fn add_watcher(
        &mut self,
        prefix: &str,
        bookmarks: bool,
        capacity: usize,
        shared: Arc<WatcherShared>,
    ) -> (u64, mpsc::Receiver<Item>) {
        // A zero-sized channel does not exist; one event is the smallest queue.
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        let id = self.next_watcher;
        self.next_watcher += 1;
        self.watchers.insert(
            id,
            Watcher {
                prefix: prefix.to_string(),
                bookmarks,
                queue,
                shared,
            },
        );
        (id, receiver)
    }

    pub(super) fn remove_watcher(&mut self, id: u64) {
        self.watchers.remove(&id);
    }

    /// The buffered events under `prefix` after `revision`, or `Compacted` when some of them have
    /// already left the ring.
    pub(super) fn events_after(
        &self,
        prefix: &str,
        revision: Revision,
    ) -> crate::Result<impl Iterator<Item = &Arc<CachedEvent>>> {
        if revision < self.oldest_watchable {
            return Err(StorageError::Compacted {
                requested: revision,
                compacted: self.oldest_watchable,
            });
        }
        let first = self.events.partition_point(|e| e.revision() <= revision);
        Ok(self
            .events
            .range(first..)
            .filter(move |e| e.key().starts_with(prefix)))
    }

    /// The cached objects under `prefix`, in key order.
    pub(super) fn objects<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Object> {
        self.objects
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(prefix))
            .map(|(_, object)| object)
    }

    pub(super) fn get(&self, key: &str) -> Option<Object> {
        self.objects.get(key).cloned()
    }

    pub(super) fn count(&self, prefix: &str) -> u64 {
        self.objects(prefix).count() as u64
    }

    /// A list at the cache revision, paginated exactly as `KvStore::list` paginates: the continue
    /// token resumes after the last returned key at this revision (served by the inner store),
    /// and the remaining count is only given without a filter.
    pub(super) fn list(&self, prefix: &str, options: &ListOptions) -> ObjectList {
        let limit = options.limit.filter(|&l| l > 0);
        let predicate: &Predicate = &options.predicate;
        let mut objects = self.objects(prefix);
        // `limit` comes from the client: never reserve more than there is.
        let mut items = Vec::with_capacity(limit.unwrap_or(0).min(self.objects.len()));
        while let Some(object) = objects.next() {
            if !predicate.matches(object.value()) {
                continue;
            }
            items.push(object.clone());
            if limit.is_some_and(|l| items.len() >= l) {
                let (more, remaining_item_count) = if predicate.is_everything() {
                    let remaining = objects.count() as u64;
                    (remaining > 0, (remaining > 0).then_some(remaining))
                } else {
                    (objects.next().is_some(), None)
                };
                return ObjectList {
                    continue_token: more
                        .then(|| encode_continue(object.key(), prefix, Some(self.revision))),
                    items,
                    revision: self.revision,
                    remaining_item_count,
                };
            }
        }
        ObjectList {
            items,
            revision: self.revision,
            continue_token: None,
            remaining_item_count: None,
        }
    }
}
