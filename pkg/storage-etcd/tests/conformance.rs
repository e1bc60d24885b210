//! The shared storage conformance suite on etcd: every case starts its own etcd, so cases run
//! in parallel without seeing each other's keys or revisions.

use std::sync::Arc;

use rkube_storage::testing::{KvFixture, StoreFixture};
use rkube_storage::{KvBackend, KvStore};
use rkube_storage_etcd::testing::EtcdServer;
use rkube_storage_etcd::{EtcdBackend, EtcdConfig};

/// A fresh etcd and a backend connected to it.
async fn backend() -> (Arc<dyn KvBackend>, EtcdServer) {
    let server = EtcdServer::start().await.expect("start etcd");
    let backend = EtcdBackend::connect(EtcdConfig::new(vec![server.endpoint()]))
        .await
        .expect("connect to etcd");
    (Arc::new(backend), server)
}

async fn kv_fixture() -> KvFixture {
    let (backend, server) = backend().await;
    KvFixture::new(backend, server)
}

async fn store_fixture() -> StoreFixture {
    let (backend, server) = backend().await;
    let store = Arc::new(KvStore::new(backend.clone()));
    StoreFixture::new(store, backend, server)
}

rkube_storage::kv_conformance_tests!(kv_fixture);
rkube_storage::store_conformance_tests!(store_fixture);
