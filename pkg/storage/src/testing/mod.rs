//! The storage conformance suite (feature `testing`).
//!
//! One set of cases, run against every `KvBackend` (SQLite, etcd) and every `Store`
//! (`KvStore` over each backend, the watch cache over it). A backend crate runs them with
//!
//! ```ignore
//! async fn fixture() -> rkube_storage::testing::KvFixture { /* open a fresh backend */ }
//! rkube_storage::kv_conformance_tests!(fixture);
//! rkube_storage::store_conformance_tests!(store_fixture);
//! ```
//!
//! Each case becomes its own `#[tokio::test]` (the calling crate needs `tokio` as a
//! dev-dependency), so cases run in parallel, each on a fresh backend. Cases only assume
//! relative revisions, never absolute ones, so a shared etcd would work too.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::{KvBackend, Store};

pub mod kv;
pub mod store;

/// A fresh backend for one case, plus whatever must live as long as it (a temp dir, a child
/// process).
pub struct KvFixture {
    /// The backend under test.
    pub backend: Arc<dyn KvBackend>,
    _guard: Box<dyn Any + Send>,
}

impl KvFixture {
    /// A fixture over `backend`, keeping `guard` alive until the case ends.
    pub fn new(backend: Arc<dyn KvBackend>, guard: impl Any + Send) -> Self {
        KvFixture {
            backend,
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for KvFixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KvFixture")
    }
}

/// A fresh object store for one case, the backend beneath it (cases compact through it), and
/// whatever must live as long as both.
pub struct StoreFixture {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// The backend the store writes to.
    pub backend: Arc<dyn KvBackend>,
    _guard: Box<dyn Any + Send>,
}

impl StoreFixture {
    /// A fixture over `store` and its `backend`, keeping `guard` alive until the case ends.
    pub fn new(store: Arc<dyn Store>, backend: Arc<dyn KvBackend>, guard: impl Any + Send) -> Self {
        StoreFixture {
            store,
            backend,
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for StoreFixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreFixture")
    }
}

/// How long a case waits for an event that must come before it calls the backend broken.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The prefix every store case writes under (a cacher under test caches this prefix).
pub const PREFIX: &str = "/registry/conformance/";

/// The key of `name` in namespace `ns` under [`PREFIX`].
pub fn key(name: &str) -> String {
    format!("{PREFIX}ns/{name}")
}

/// A ConfigMap-like object named `name` with the given labels and data.
pub fn object(name: &str, labels: Value, data: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns", "labels": labels},
        "data": data,
    })
}

/// The next item of `stream`, failing the case if none comes within [`EVENT_TIMEOUT`].
pub async fn next_within<S: Stream + Unpin>(stream: &mut S, what: &str) -> S::Item {
    match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("stream ended while waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Asserts that `stream` yields nothing more within `quiet`.
pub async fn assert_quiet<S: Stream + Unpin>(stream: &mut S, quiet: Duration, what: &str)
where
    S::Item: fmt::Debug,
{
    if let Ok(Some(item)) = tokio::time::timeout(quiet, stream.next()).await {
        panic!("expected no more events ({what}), got {item:?}");
    }
}

/// Generates one `#[tokio::test]` per conformance case of a suite.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($suite:ident, $make:expr, [$($case:ident),* $(,)?]) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = ($make)().await;
                $crate::testing::$suite::$case(&fixture).await;
            }
        )*
    };
}

/// Runs every `KvBackend` conformance case; `$make().await` must give a fresh
/// [`KvFixture`](crate::testing::KvFixture).
#[macro_export]
macro_rules! kv_conformance_tests {
    ($make:expr) => {
        mod kv_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(
                kv,
                $make,
                [
                    create_then_get,
                    revisions_advance_by_one,
                    update_compares_mod_revision,
                    delete_compares_mod_revision,
                    get_at_past_revision,
                    range_by_prefix_in_key_order,
                    range_limit_start_and_count,
                    range_at_past_revision,
                    future_revision_is_too_large,
                    compaction_keeps_latest_and_forgets_history,
                    watch_replays_from_revision_then_follows,
                    watch_sees_only_its_prefix,
                    watch_delete_carries_previous_value,
                    watch_progress_on_request,
                    watch_from_compacted_revision_fails,
                    concurrent_writers_one_winner,
                    concurrent_writes_watched_in_order,
                    ttl_deletes_the_key,
                    values_round_trip_verbatim,
                ]
            );
        }
    };
}

/// Runs every `Store` conformance case; `$make().await` must give a fresh
/// [`StoreFixture`](crate::testing::StoreFixture).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        mod store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(
                store,
                $make,
                [
                    create_then_get,
                    create_refuses_resource_version,
                    get_not_older_than,
                    list_in_key_order_with_predicate,
                    list_paginates_consistently,
                    list_paginates_through_a_predicate,
                    list_rejects_bad_continue_tokens,
                    list_exact_revision_and_compaction,
                    list_continue_after_compaction_expires,
                    guaranteed_update_writes_and_skips_no_ops,
                    guaranteed_update_checks_preconditions,
                    guaranteed_update_passes_rejections_through,
                    guaranteed_update_may_create,
                    concurrent_guaranteed_updates_lose_nothing,
                    delete_returns_last_state,
                    delete_checks_preconditions_and_validation,
                    watch_from_resource_version,
                    watch_with_initial_events,
                    watch_predicate_transitions,
                    watch_bookmark_on_progress_request,
                    watch_many_watchers_same_events,
                    ttl_expires_objects,
                    count_objects,
                    corrupt_value_is_an_error,
                ]
            );
        }
    };
}
