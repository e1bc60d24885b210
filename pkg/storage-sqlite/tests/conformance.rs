//! The shared storage conformance suite over a SQLite file in a temp dir: the `KvBackend`
//! cases on the backend, the `Store` cases on `KvStore` over it.

use std::sync::Arc;

use rkube_storage::testing::{KvFixture, StoreFixture};
use rkube_storage::{KvBackend, KvStore};
use rkube_storage_sqlite::SqliteBackend;

fn open() -> (Arc<dyn KvBackend>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = SqliteBackend::open(&dir.path().join("state.db")).expect("open SQLite");
    (Arc::new(backend), dir)
}

async fn kv_fixture() -> KvFixture {
    let (backend, dir) = open();
    KvFixture::new(backend, dir)
}

async fn store_fixture() -> StoreFixture {
    let (backend, dir) = open();
    let store = Arc::new(KvStore::new(Arc::clone(&backend)));
    StoreFixture::new(store, backend, dir)
}

rkube_storage::kv_conformance_tests!(kv_fixture);
rkube_storage::store_conformance_tests!(store_fixture);
