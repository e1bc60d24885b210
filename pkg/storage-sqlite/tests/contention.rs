//! Many writers on one key: compare-and-swap has exactly one winner per round, and
//! read-modify-write loops lose no update. No caller ever sees "database is locked".

// Helpers outside #[test] fns unwrap too: a panic is the test failing, with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use rkube_storage::{CasOutcome, KvBackend, StorageError};
use rkube_storage_sqlite::SqliteBackend;
use tokio::sync::Barrier;

const WRITERS: usize = 32;

/// A file database and an in-memory one, with whatever keeps them alive.
fn backends() -> Vec<(Arc<SqliteBackend>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let file = SqliteBackend::open(&dir.path().join("state.db")).unwrap();
    let memory = SqliteBackend::open_in_memory().unwrap();
    vec![(Arc::new(file), Some(dir)), (Arc::new(memory), None)]
}

fn assert_not_lock_error(e: &StorageError) {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    let lower = text.to_lowercase();
    assert!(
        !lower.contains("locked") && !lower.contains("busy"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_compare_and_swap_has_exactly_one_winner() {
    for (backend, _dir) in backends() {
        let key = "/registry/leases/kube-system/leader";
        let CasOutcome::Written { revision, .. } = backend
            .create(key, Bytes::from("start"), None)
            .await
            .unwrap()
        else {
            panic!("fresh key exists");
        };
        let mut expected = revision;
        for round in 0..30 {
            let barrier = Arc::new(Barrier::new(WRITERS));
            let tasks: Vec<_> = (0..WRITERS)
                .map(|writer| {
                    let (backend, barrier) = (Arc::clone(&backend), Arc::clone(&barrier));
                    tokio::spawn(async move {
                        barrier.wait().await;
                        let value = Bytes::from(format!("round {round} writer {writer}"));
                        backend.update(key, expected, value, None).await
                    })
                })
                .collect();
            let mut winners = Vec::new();
            let mut losers = Vec::new();
            for task in tasks {
                match task.await.unwrap() {
                    Ok(CasOutcome::Written { revision, prev }) => {
                        assert_eq!(prev.unwrap().mod_revision, expected);
                        winners.push(revision);
                    }
                    Ok(CasOutcome::Mismatch { current }) => losers.push(current.unwrap()),
                    Err(e) => {
                        assert_not_lock_error(&e);
                        panic!("round {round}: {e}");
                    }
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
            assert_eq!(losers.len(), WRITERS - 1);
            // Every loser was shown the winner's write.
            assert!(losers.iter().all(|kv| kv.mod_revision == winners[0]));
            expected = winners[0];
        }
        let kv = backend.get(key, None).await.unwrap().kv.unwrap();
        assert_eq!(kv.mod_revision, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_modify_write_loops_lose_no_update() {
    const INCREMENTS: u64 = 20;
    for (backend, _dir) in backends() {
        let key = "/registry/counters/default/hits";
        backend.create(key, Bytes::from("0"), None).await.unwrap();
        let tasks: Vec<_> = (0..WRITERS)
            .map(|_| {
                let backend = Arc::clone(&backend);
                tokio::spawn(async move {
                    let mut retries = 0u64;
                    for _ in 0..INCREMENTS {
                        loop {
                            let kv = backend.get(key, None).await?.kv.unwrap();
                            let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                            let next = Bytes::from((n + 1).to_string());
                            match backend.update(key, kv.mod_revision, next, None).await? {
                                CasOutcome::Written { .. } => break,
                                CasOutcome::Mismatch { .. } => retries += 1,
                            }
                        }
                    }
                    Ok::<_, StorageError>(retries)
                })
            })
            .collect();
        let mut retries = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(r) => retries += r,
                Err(e) => {
                    assert_not_lock_error(&e);
                    panic!("{e}");
                }
            }
        }
        let kv = backend.get(key, None).await.unwrap().kv.unwrap();
        assert_eq!(
            kv.value,
            Bytes::from((WRITERS as u64 * INCREMENTS).to_string())
        );
        // Each successful increment is one revision on top of the create.
        assert_eq!(
            kv.mod_revision,
            kv.create_revision + WRITERS as u64 * INCREMENTS
        );
        assert!(retries > 0, "the writers never actually raced");
        backend.close().await.unwrap();
    }
}
