//! `KvBackend`: the byte-level, revisioned key-value contract every datastore implements.
//!
//! The model is etcd's: one cluster-wide revision counter that every write advances by one;
//! each key remembers the revision that created it and the one that last modified it; history
//! is kept until compacted; watches deliver every change after a revision, in order.
//! [`crate::KvStore`] builds the object-level [`crate::Store`] on top of it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::{Result, Revision};

/// A key with its value and revisions.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, e.g. `/registry/configmaps/default/cfg`.
    pub key: String,
    /// The stored bytes.
    pub value: Bytes,
    /// The revision that created this incarnation of the key.
    pub create_revision: Revision,
    /// The revision of the last write to the key.
    pub mod_revision: Revision,
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &self.key)
            .field("value_len", &self.value.len())
            .field("create_revision", &self.create_revision)
            .field("mod_revision", &self.mod_revision)
            .finish()
    }
}

/// A point read.
#[derive(Debug, Clone)]
pub struct GetResponse {
    /// The key's value at the revision read, or `None` if it did not exist then.
    pub kv: Option<KeyValue>,
    /// The revision the read was served at (the store's current one for latest reads).
    pub revision: Revision,
}

/// A range read over every key that starts with `prefix`, in key order.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeRequest<'a> {
    /// Keys must start with this.
    pub prefix: &'a str,
    /// First key to return (inclusive); `None` starts at `prefix`. Must itself start with `prefix`.
    pub start: Option<&'a str>,
    /// Read at this revision; `None` reads the latest.
    pub revision: Option<Revision>,
    /// At most this many keys; `None` or `Some(0)` means all.
    pub limit: Option<usize>,
}

/// The answer to a [`RangeRequest`].
#[derive(Debug, Clone)]
pub struct RangeResponse {
    /// The keys found, in key order.
    pub kvs: Vec<KeyValue>,
    /// True when more keys lie beyond the last one returned.
    pub more: bool,
    /// How many keys the whole range `[start, end of prefix)` holds at that revision.
    pub count: u64,
    /// The revision the read was served at.
    pub revision: Revision,
}

/// The outcome of a conditional write.
#[derive(Debug, Clone)]
pub enum CasOutcome {
    /// The write happened.
    Written {
        /// The revision of this write.
        revision: Revision,
        /// The value the key held before (for a delete: the value deleted).
        prev: Option<KeyValue>,
    },
    /// The condition failed: the key is not as the caller expected.
    Mismatch {
        /// What the key holds now (`None`: it does not exist).
        current: Option<KeyValue>,
    },
}

/// Whether a watch event wrote or deleted its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvEventKind {
    /// A create or an update.
    Put,
    /// A delete (including a TTL expiry).
    Delete,
}

/// One change delivered by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEvent {
    /// Put or delete.
    pub kind: KvEventKind,
    /// For a put, the new key-value. For a delete, the key with `mod_revision` set to the delete's
    /// revision and an empty value.
    pub kv: KeyValue,
    /// The key's previous value, if it had one (always present for a delete).
    pub prev: Option<KeyValue>,
}

/// One message of a watch stream: zero or more events, all at or below `revision`.
///
/// An empty message is a progress notification: every change up to `revision` that matches the
/// watch has been delivered.
#[derive(Debug, Clone)]
pub struct KvWatchResponse {
    /// The events, in revision order.
    pub events: Vec<KvEvent>,
    /// The revision the backend had reached when it sent this message.
    pub revision: Revision,
}

/// Asks a watch for a progress notification (an empty [`KvWatchResponse`]) once everything
/// written so far has been delivered. A consistent read from the watch cache uses it to learn
/// that the cache is as fresh as the store.
#[derive(Clone)]
pub struct ProgressRequester(Arc<dyn Fn() + Send + Sync>);

impl ProgressRequester {
    /// Wraps the backend's way of requesting progress.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        ProgressRequester(Arc::new(f))
    }

    /// Requests a progress notification; the answer arrives on the stream.
    pub fn request(&self) {
        (self.0)()
    }
}

impl fmt::Debug for ProgressRequester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressRequester")
    }
}

/// A live watch: a stream of responses and a way to ask for progress. The stream ends with an
/// `Err` when the watch fails (compaction, a lagging watcher, a lost backend) and then closes.
pub struct KvWatchStream {
    /// The responses, in revision order.
    pub responses: BoxStream<'static, Result<KvWatchResponse>>,
    /// Requests a progress notification on this stream; `None` when the backend cannot promise
    /// that a progress answer follows every event it covers (etcd before 3.4.31 and 3.5.13,
    /// etcd#15220), so that nobody relies on one. kube-apiserver makes the same distinction.
    pub progress: Option<ProgressRequester>,
}

impl fmt::Debug for KvWatchStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KvWatchStream")
    }
}

/// The byte-level, revisioned datastore contract (SQLite, etcd).
///
/// Semantics every implementation keeps (checked by `testing::kv` conformance tests):
/// - Every successful write advances the single revision counter by exactly one; revisions never
///   go backwards, not across restarts and not after compaction.
/// - Reads at a revision below the compaction point fail with `Compacted`; a read at a revision
///   above the current one fails with `TooLargeResourceVersion`.
/// - `watch(prefix, after)` delivers every change with revision `> after`, in order, exactly once,
///   with the previous value; if `after + 1` is below the compaction point it fails with
///   `Compacted` (from the call or as the stream's first item).
/// - Conditional writes never report `Written` unless the condition held at the moment of the
///   write; concurrent writers on one key see exactly one winner.
/// - A key written with a TTL is deleted (with a delete event) once the TTL has passed.
#[async_trait]
pub trait KvBackend: Send + Sync + 'static {
    /// Reads one key, at `revision` or the latest.
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<GetResponse>;

    /// Reads keys by prefix, in key order.
    async fn range(&self, request: RangeRequest<'_>) -> Result<RangeResponse>;

    /// Counts the keys under `prefix` now.
    async fn count(&self, prefix: &str) -> Result<u64>;

    /// Creates `key` if it does not exist. `Mismatch` carries the existing key-value.
    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<CasOutcome>;

    /// Replaces `key`'s value if its `mod_revision` is still `expected`.
    async fn update(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<CasOutcome>;

    /// Deletes `key` if its `mod_revision` is still `expected`.
    async fn delete(&self, key: &str, expected: Revision) -> Result<CasOutcome>;

    /// Watches every key under `prefix` for changes with revision `> after`.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<KvWatchStream>;

    /// The revision of the last write.
    async fn current_revision(&self) -> Result<Revision>;

    /// Discards history older than `revision`: reads and watches before it fail with
    /// `Compacted`, while the latest value of every key stays readable.
    async fn compact(&self, revision: Revision) -> Result<()>;
}

/// The end of the key range of a prefix: the smallest string greater than every key that
/// starts with `prefix` (etcd's "range end" of a prefix).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff (or the prefix was empty): the range has no end.
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_next_string() {
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end("a"), b"b".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }
}
