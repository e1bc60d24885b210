//! # Layout
//! The storage layer every other part of the API server stands on.
//!
//! - [`kv`]: `KvBackend`, the byte-level revisioned contract (etcd's model) that the SQLite and
//!   etcd crates implement.
//! - [`store`]: `Store`, the object-level contract (kube-apiserver's `storage.Interface`) the
//!   registry uses: create, get, list with selectors and pagination, watch, guaranteed update,
//!   delete with preconditions.
//! - [`KvStore`] (`kv_store`): `Store` over any `KvBackend`.
//! - [`Cacher`] (`cacher`): the watch cache, a `Store` decorating a `Store`; serves lists and
//!   watches from memory, writes pass through.
//! - [`revision`]: resourceVersion and continue-token codecs; [`compact`]: periodic compaction.
//! - `testing` (feature `testing`): the conformance suite run against every backend and decorator.
//!
//! Data flows registry -> `Cacher` -> `KvStore` -> `KvBackend`; watch events flow back up the
//! same chain, each one decoded once in the cacher and shared by all of its watchers.

pub mod cacher;
pub mod compact;
mod error;
pub mod kv;
mod kv_store;
mod object;
pub mod revision;
pub mod store;
// The conformance suite is test code: a failed expectation panics, as in any test.
#[cfg(feature = "testing")]
#[allow(clippy::unwrap_used, clippy::panic)]
pub mod testing;

pub use cacher::Cacher;
pub use error::{BoxError, Result, StorageError};
pub use kv::{
    CasOutcome, GetResponse, KeyValue, KvBackend, KvEvent, KvEventKind, KvWatchResponse,
    KvWatchStream, ProgressRequester, RangeRequest, RangeResponse,
};
pub use kv_store::KvStore;
pub use object::{Object, Preconditions, encode_for_storage};
pub use store::{
    DeleteValidation, GetOptions, ListOptions, ObjectList, Predicate, ReadAt, Store, Update,
    UpdateFn, WatchEvent, WatchOptions, WatchStart, WatchStream,
};

/// A backend revision: the cluster-wide write counter; its decimal form is the resourceVersion.
pub type Revision = u64;
