//! # Layout
//! The etcd datastore: [`EtcdBackend`] implements `rkube_storage::KvBackend` over etcd's v3 API
//! (`etcd-client`), so `rkube_storage::KvStore` and the watch cache run on etcd exactly as they
//! run on SQLite.
//!
//! - [`config`]: [`EtcdConfig`] (endpoints, TLS files, connect timeout) and its translation to
//!   client options; TLS files are read and checked here so a bad path is named in the error.
//! - `backend`: [`EtcdBackend`]; every call is one etcd request (conditional writes are one
//!   transaction) and every etcd error becomes a `StorageError`.
//! - `lease`: TTLs become etcd leases, one lease shared by writes with similar TTLs.
//! - `watch`: an etcd watch turned into a `KvWatchStream`, with progress requests and
//!   compaction mapped to the trait's terms.
//! - [`testing`] (feature `testing`): [`testing::EtcdServer`], a throwaway etcd process.
//!
//! Data flows `KvStore` -> `EtcdBackend` -> etcd; keys are stored verbatim
//! (`/registry/<resource>/<namespace>/<name>`), so the keyspace reads like kube-apiserver's.

mod backend;
pub mod config;
mod lease;
#[cfg(feature = "testing")]
pub mod testing;
mod watch;

pub use backend::{EtcdBackend, progress_is_ordered};
pub use config::EtcdConfig;
