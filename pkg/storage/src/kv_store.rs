//! `KvStore`: the object-level [`Store`] over any [`KvBackend`].
//!
//! This is where objects meet bytes: JSON encoding without resourceVersion on the way in,
//! decoding with the revision as resourceVersion on the way out, optimistic-concurrency loops,
//! pagination with continue tokens, and the translation of key-value watch events into
//! ADDED/MODIFIED/DELETED as seen through a predicate.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Value;

use crate::kv::{CasOutcome, KvBackend, KvEvent, KvEventKind, KvWatchResponse, RangeRequest};
use crate::object::encode_for_storage;
use crate::revision::{decode_continue, encode_continue};
use crate::store::{
    DeleteValidation, GetOptions, ListOptions, ObjectList, Predicate, ReadAt, Store, UpdateFn,
    WatchEvent, WatchOptions, WatchStart, WatchStream,
};
use crate::{Object, Preconditions, Result, Revision, StorageError};

/// The object store over a key-value backend.
#[derive(Clone)]
pub struct KvStore {
    backend: Arc<dyn KvBackend>,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KvStore")
    }
}

impl KvStore {
    /// An object store over `backend`.
    pub fn new(backend: Arc<dyn KvBackend>) -> Self {
        KvStore { backend }
    }

    /// The backend underneath.
    pub fn backend(&self) -> &Arc<dyn KvBackend> {
        &self.backend
    }

    /// Reads the latest state and checks it is at least `min` (`NotOlderThan`).
    fn check_not_older(current: Revision, min: Option<Revision>) -> Result<()> {
        match min {
            Some(min) if current < min => Err(StorageError::TooLargeResourceVersion {
                requested: min,
                current,
            }),
            _ => Ok(()),
        }
    }
}

/// How many keys a filtered list fetches per round trip at least.
const MIN_FILTERED_PAGE: usize = 64;

#[async_trait]
impl Store for KvStore {
    async fn create(&self, key: &str, value: Value, ttl: Option<Duration>) -> Result<Object> {
        if rkube_api::meta::resource_version(&value).is_some_and(|rv| !rv.is_empty()) {
            return Err(StorageError::InvalidObject {
                key: key.to_string(),
                reason: "resourceVersion should not be set on objects to be created".into(),
            });
        }
        let bytes = encode_for_storage(key, value.clone())?;
        match self.backend.create(key, bytes, ttl).await? {
            CasOutcome::Written { revision, .. } => Object::new(key, value, revision),
            CasOutcome::Mismatch { .. } => Err(StorageError::AlreadyExists {
                key: key.to_string(),
            }),
        }
    }

    async fn get(&self, key: &str, options: &GetOptions) -> Result<Object> {
        let (revision, min) = match options.at {
            ReadAt::Latest | ReadAt::Any => (None, None),
            ReadAt::NotOlderThan(min) => (None, Some(min)),
            ReadAt::Exact(rev) => (Some(rev), None),
        };
        let response = self.backend.get(key, revision).await?;
        Self::check_not_older(response.revision, min)?;
        let kv = response.kv.ok_or_else(|| StorageError::NotFound {
            key: key.to_string(),
        })?;
        Object::decode(key, &kv.value, kv.mod_revision)
    }

    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ObjectList> {
        let (mut start, mut revision, min) = match &options.continue_token {
            Some(token) => {
                let c = decode_continue(token, prefix)?;
                (Some(c.start_key), c.revision, None)
            }
            None => match options.at {
                ReadAt::Latest | ReadAt::Any => (None, None, None),
                ReadAt::NotOlderThan(min) => (None, None, Some(min)),
                ReadAt::Exact(rev) => (None, Some(rev), None),
            },
        };
        let limit = options.limit.filter(|&l| l > 0);
        let predicate = &options.predicate;
        let mut items = Vec::new();
        loop {
            let want = limit.map(|l| {
                let missing = l - items.len();
                if predicate.is_everything() {
                    missing
                } else {
                    missing.max(MIN_FILTERED_PAGE)
                }
            });
            let response = self
                .backend
                .range(RangeRequest {
                    prefix,
                    start: start.as_deref(),
                    revision,
                    limit: want,
                })
                .await?;
            if revision.is_none() {
                Self::check_not_older(response.revision, min)?;
            }
            // Every further page is read at the revision of the first, so the list is consistent.
            let read_at = response.revision;
            revision = Some(read_at);
            let fetched = response.kvs.len();
            for (i, kv) in response.kvs.iter().enumerate() {
                let object = Object::decode(&kv.key, &kv.value, kv.mod_revision)?;
                if !predicate.matches(object.value()) {
                    continue;
                }
                items.push(object);
                if limit.is_some_and(|l| items.len() >= l) {
                    let more = response.more || i + 1 < fetched;
                    let continue_token =
                        more.then(|| encode_continue(&kv.key, prefix, Some(read_at)));
                    let remaining_item_count = (more && predicate.is_everything())
                        .then(|| response.count.saturating_sub(i as u64 + 1));
                    return Ok(ObjectList {
                        items,
                        revision: read_at,
                        continue_token,
                        remaining_item_count,
                    });
                }
            }
            match (response.more, response.kvs.last()) {
                (true, Some(last)) => start = Some(format!("{}\u{0}", last.key)),
                _ => {
                    return Ok(ObjectList {
                        items,
                        revision: read_at,
                        continue_token: None,
                        remaining_item_count: None,
                    });
                }
            }
        }
    }

    async fn watch(&self, prefix: &str, options: &WatchOptions) -> Result<WatchStream> {
        let (initial, after) = if options.initial_events {
            let at = match options.start {
                WatchStart::Latest | WatchStart::Any => ReadAt::Latest,
                WatchStart::At(rev) => ReadAt::NotOlderThan(rev),
            };
            let list = self
                .list(
                    prefix,
                    &ListOptions {
                        at,
                        predicate: options.predicate.clone(),
                        ..ListOptions::default()
                    },
                )
                .await?;
            (list.items, list.revision)
        } else {
            let after = match options.start {
                WatchStart::Latest | WatchStart::Any => self.backend.current_revision().await?,
                WatchStart::At(rev) => rev,
            };
            (Vec::new(), after)
        };
        let kv_watch = self.backend.watch(prefix, after).await?;
        let mut pending: VecDeque<WatchEvent> =
            initial.into_iter().map(WatchEvent::Added).collect();
        if options.initial_events_end {
            pending.push_back(WatchEvent::Bookmark {
                revision: after,
                initial_events_end: true,
            });
        }
        let state = Translate {
            responses: kv_watch.responses,
            pending,
            predicate: options.predicate.clone(),
            bookmarks: options.bookmarks,
            done: false,
        };
        let events = futures::stream::unfold(state, |mut state| async move {
            let event = state.next().await?;
            Some((event, state))
        });
        Ok(WatchStream::new(events, kv_watch.progress))
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        preconditions: &Preconditions,
        ignore_not_found: bool,
        update: &mut UpdateFn<'_>,
    ) -> Result<Object> {
        loop {
            let current = self.backend.get(key, None).await?.kv;
            let existing = match &current {
                Some(kv) => {
                    let object = Object::decode(key, &kv.value, kv.mod_revision)?;
                    preconditions.check(&object)?;
                    Some(object)
                }
                None if ignore_not_found => None,
                None => {
                    return Err(StorageError::NotFound {
                        key: key.to_string(),
                    });
                }
            };
            let new = update(existing.clone())
                .await
                .map_err(StorageError::Rejected)?;
            let bytes = encode_for_storage(key, new.value.clone())?;
            let outcome = match (&current, existing) {
                (Some(kv), Some(existing)) => {
                    if kv.value == bytes && new.ttl.is_none() {
                        return Ok(existing);
                    }
                    self.backend
                        .update(key, kv.mod_revision, bytes, new.ttl)
                        .await?
                }
                _ => self.backend.create(key, bytes, new.ttl).await?,
            };
            match outcome {
                CasOutcome::Written { revision, .. } => {
                    return Object::new(key, new.value, revision);
                }
                CasOutcome::Mismatch { .. } => {
                    tracing::debug!(key, "guaranteed update lost a race; retrying");
                }
            }
        }
    }

    async fn delete(
        &self,
        key: &str,
        preconditions: &Preconditions,
        mut validate: Option<&mut DeleteValidation<'_>>,
    ) -> Result<Object> {
        loop {
            let kv =
                self.backend
                    .get(key, None)
                    .await?
                    .kv
                    .ok_or_else(|| StorageError::NotFound {
                        key: key.to_string(),
                    })?;
            let current = Object::decode(key, &kv.value, kv.mod_revision)?;
            preconditions.check(&current)?;
            if let Some(validate) = validate.as_mut() {
                validate(current).await.map_err(StorageError::Rejected)?;
            }
            match self.backend.delete(key, kv.mod_revision).await? {
                CasOutcome::Written { revision, prev } => {
                    let last = prev.map_or(kv.value, |p| p.value);
                    return Object::decode(key, &last, revision);
                }
                CasOutcome::Mismatch { current: None } => {
                    return Err(StorageError::NotFound {
                        key: key.to_string(),
                    });
                }
                CasOutcome::Mismatch { .. } => {
                    tracing::debug!(key, "delete lost a race; retrying");
                }
            }
        }
    }

    async fn count(&self, prefix: &str) -> Result<u64> {
        self.backend.count(prefix).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.backend.current_revision().await
    }
}

/// Turns key-value watch responses into object watch events.
struct Translate {
    responses: futures::stream::BoxStream<'static, Result<KvWatchResponse>>,
    pending: VecDeque<WatchEvent>,
    predicate: Predicate,
    bookmarks: bool,
    done: bool,
}

impl Translate {
    async fn next(&mut self) -> Option<WatchEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if matches!(event, WatchEvent::Error(_)) {
                    self.pending.clear();
                    self.done = true;
                }
                return Some(event);
            }
            if self.done {
                return None;
            }
            match self.responses.next().await {
                None => return None,
                Some(Err(e)) => self.pending.push_back(WatchEvent::Error(e)),
                Some(Ok(response)) if response.events.is_empty() => {
                    if self.bookmarks {
                        self.pending.push_back(WatchEvent::Bookmark {
                            revision: response.revision,
                            initial_events_end: false,
                        });
                    }
                }
                Some(Ok(response)) => {
                    for event in &response.events {
                        match translate(event, &self.predicate) {
                            Ok(Some(e)) => self.pending.push_back(e),
                            Ok(None) => {}
                            Err(e) => {
                                self.pending.push_back(WatchEvent::Error(e));
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One key-value event as the watcher's predicate sees it (upstream's etcd3 watcher rules):
/// a change that makes an object match is ADDED, one that makes it stop matching is DELETED
/// (with its previous state at the event's revision), and changes it never matched are dropped.
fn translate(event: &KvEvent, predicate: &Predicate) -> Result<Option<WatchEvent>> {
    let revision = event.kv.mod_revision;
    let previous = || -> Result<Option<Object>> {
        event
            .prev
            .as_ref()
            .map(|p| Object::decode(&event.kv.key, &p.value, revision))
            .transpose()
    };
    match event.kind {
        KvEventKind::Delete => {
            let Some(old) = previous()? else {
                return Err(StorageError::InvalidObject {
                    key: event.kv.key.clone(),
                    reason: "delete event without the deleted value".into(),
                });
            };
            Ok(predicate
                .matches(old.value())
                .then_some(WatchEvent::Deleted(old)))
        }
        KvEventKind::Put => {
            let current = Object::decode(&event.kv.key, &event.kv.value, revision)?;
            let current_matches = predicate.matches(current.value());
            let created = event.kv.create_revision == event.kv.mod_revision;
            if created {
                return Ok(current_matches.then_some(WatchEvent::Added(current)));
            }
            if predicate.is_everything() {
                return Ok(Some(WatchEvent::Modified(current)));
            }
            let old = previous()?;
            let old_matches = old.as_ref().is_some_and(|o| predicate.matches(o.value()));
            Ok(match (old_matches, current_matches) {
                (true, true) => Some(WatchEvent::Modified(current)),
                (false, true) => Some(WatchEvent::Added(current)),
                (true, false) => old.map(WatchEvent::Deleted),
                (false, false) => None,
            })
        }
    }
}
