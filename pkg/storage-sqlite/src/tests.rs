//! Tests of what is particular to SQLite: group commit, WAL bounds, compaction, TTL expiry,
//! bad files, reopening, query plans. The shared behaviour is in the conformance suite.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rkube_storage::{
    CasOutcome, KvBackend, KvEventKind, KvWatchResponse, RangeRequest, StorageError,
};
use rusqlite::Connection;

use super::*;

fn revision_of(outcome: CasOutcome) -> Revision {
    match outcome {
        CasOutcome::Written { revision, .. } => revision,
        CasOutcome::Mismatch { current } => panic!("unexpected mismatch, current {current:?}"),
    }
}

fn file_backend(dir: &Path) -> SqliteBackend {
    SqliteBackend::open(&dir.join("state.db")).unwrap()
}

async fn next_response(stream: &mut KvWatchStream) -> KvWatchResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.responses.next())
        .await
        .expect("watch response in time")
        .expect("stream open")
        .expect("no watch error")
}

/// Counts rows of a table through a connection of our own (WAL lets it read alongside).
fn rows(path: &Path, table: &str) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_batches_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(file_backend(dir.path()));
    let before = backend.commits();
    let writes = 200;
    let results = futures::future::join_all((0..writes).map(|i| {
        let backend = Arc::clone(&backend);
        async move {
            backend
                .create(&format!("/registry/pods/ns/p{i}"), Bytes::from("v"), None)
                .await
        }
    }))
    .await;
    let mut revisions: Vec<Revision> = results
        .into_iter()
        .map(|r| revision_of(r.unwrap()))
        .collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=writes).collect::<Vec<_>>());
    let commits = backend.commits() - before;
    println!("{writes} concurrent writes, {commits} commits");
    assert!(
        commits < writes / 2,
        "{writes} concurrent writes took {commits} commits"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_in_a_batch_rolls_back_only_itself() {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let rev = revision_of(
        backend
            .create("/k/a", Bytes::from("1"), None)
            .await
            .unwrap(),
    );
    // Many writers race on one key from the same revision while others create keys of their
    // own, all in the same batches: one update wins, every create lands.
    let results = futures::future::join_all((0..50).map(|i| {
        let backend = Arc::clone(&backend);
        async move {
            if i % 2 == 0 {
                backend
                    .update("/k/a", rev, Bytes::from(format!("{i}")), None)
                    .await
            } else {
                backend
                    .create(&format!("/k/b{i}"), Bytes::from("x"), None)
                    .await
            }
        }
    }))
    .await;
    let written = results
        .iter()
        .filter(|r| matches!(r, Ok(CasOutcome::Written { .. })))
        .count();
    assert_eq!(written, 1 + 25);
    assert_eq!(backend.count("/k/").await.unwrap(), 26);
    assert_eq!(backend.current_revision().await.unwrap(), rev + 26);
}

#[tokio::test]
async fn wal_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let config = SqliteConfig {
        path: Some(path.clone()),
        wal_checkpoint_pages: 64,
        synchronous_full: false,
        ..SqliteConfig::default()
    };
    let limit = db::wal_limit_bytes(&config);
    let backend = SqliteBackend::with_config(config).unwrap();
    let wal = dir.path().join("state.db-wal");
    let value = Bytes::from(vec![b'x'; 4000]);
    let mut rev = revision_of(backend.create("/lease", value.clone(), None).await.unwrap());
    let mut largest = 0;
    for _ in 0..2000 {
        // A reader in between, as the API server would have.
        backend.get("/lease", None).await.unwrap();
        rev = revision_of(
            backend
                .update("/lease", rev, value.clone(), None)
                .await
                .unwrap(),
        );
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    // 2000 writes of 4 KB went through; the WAL never grew much past its limit.
    assert!(
        largest <= limit + 64 * 1024,
        "WAL reached {largest} bytes, limit {limit}"
    );
    backend.close().await.unwrap();
    assert_eq!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()),
        0,
        "close truncates the WAL"
    );
}

#[tokio::test]
async fn compaction_keeps_latest_values_and_frees_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let backend = SqliteBackend::open(&path).unwrap();
    let mut rev = revision_of(
        backend
            .create("/r/a", Bytes::from("0"), None)
            .await
            .unwrap(),
    );
    let first = rev;
    for i in 1..=2500 {
        rev = revision_of(
            backend
                .update("/r/a", rev, Bytes::from(i.to_string()), None)
                .await
                .unwrap(),
        );
    }
    let gone = revision_of(
        backend
            .create("/r/gone", Bytes::from("g"), None)
            .await
            .unwrap(),
    );
    let gone = revision_of(backend.delete("/r/gone", gone).await.unwrap());
    let kept = revision_of(
        backend
            .create("/r/kept", Bytes::from("k"), None)
            .await
            .unwrap(),
    );
    let target = kept;
    backend.compact(target).await.unwrap();

    // Latest values stay, the state at the compaction point stays readable.
    let a = backend.get("/r/a", None).await.unwrap().kv.unwrap();
    assert_eq!(a.value, Bytes::from("2500"));
    assert_eq!(a.create_revision, first);
    let at = backend
        .range(RangeRequest {
            prefix: "/r/",
            revision: Some(target),
            ..RangeRequest::default()
        })
        .await
        .unwrap();
    let keys: Vec<_> = at.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/r/a", "/r/kept"]);
    // Older history is gone, and says so.
    match backend.get("/r/a", Some(first)).await {
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (first, target)),
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(matches!(
        backend.watch("/r/", target - 2).await,
        Err(StorageError::Compacted { .. })
    ));
    // Left: the newest /r/a and /r/kept. History, /r/gone and its tombstone are gone.
    assert_eq!(rows(&path, "log"), 2, "history left in the log");
    assert!(gone < target);
    // Revisions go on from where they were.
    let next = revision_of(
        backend
            .create("/r/new", Bytes::from("n"), None)
            .await
            .unwrap(),
    );
    assert_eq!(next, target + 1);
    // Compacting at or below the point again is refused, as etcd does.
    assert!(matches!(
        backend.compact(target).await,
        Err(StorageError::Compacted { .. })
    ));
}

#[tokio::test]
async fn a_watch_from_just_below_the_compaction_point_gets_complete_events() {
    let backend = SqliteBackend::open_in_memory().unwrap();
    let v1 = revision_of(
        backend
            .create("/w/a", Bytes::from("1"), None)
            .await
            .unwrap(),
    );
    let _other = revision_of(
        backend
            .create("/w/b", Bytes::from("b"), None)
            .await
            .unwrap(),
    );
    let deleted = revision_of(backend.delete("/w/a", v1).await.unwrap());
    backend.compact(deleted).await.unwrap();
    let mut watch = backend.watch("/w/", deleted - 1).await.unwrap();
    let response = next_response(&mut watch).await;
    let event = &response.events[0];
    assert_eq!(event.kind, KvEventKind::Delete);
    assert_eq!(event.kv.mod_revision, deleted);
    assert_eq!(event.prev.as_ref().unwrap().value, Bytes::from("1"));
}

#[tokio::test]
async fn ttl_expiry_deletes_with_an_event() {
    let backend = SqliteBackend::open_in_memory().unwrap();
    let mut watch = backend.watch("/leases/", 0).await.unwrap();
    let created = revision_of(
        backend
            .create(
                "/leases/l1",
                Bytes::from("v"),
                Some(Duration::from_millis(300)),
            )
            .await
            .unwrap(),
    );
    backend
        .create("/leases/forever", Bytes::from("f"), None)
        .await
        .unwrap();
    let mut events = Vec::new();
    while events.len() < 3 {
        events.extend(next_response(&mut watch).await.events);
    }
    let delete = &events[2];
    assert_eq!(delete.kind, KvEventKind::Delete);
    assert_eq!(delete.kv.key, "/leases/l1");
    let prev = delete.prev.as_ref().unwrap();
    assert_eq!(
        (prev.value.as_ref(), prev.mod_revision),
        (b"v".as_ref(), created)
    );
    assert!(backend.get("/leases/l1", None).await.unwrap().kv.is_none());
    assert!(
        backend
            .get("/leases/forever", None)
            .await
            .unwrap()
            .kv
            .is_some()
    );
}

#[tokio::test]
async fn an_update_without_ttl_keeps_the_key() {
    let backend = SqliteBackend::open_in_memory().unwrap();
    let rev = revision_of(
        backend
            .create("/t/k", Bytes::from("1"), Some(Duration::from_millis(200)))
            .await
            .unwrap(),
    );
    backend
        .update("/t/k", rev, Bytes::from("2"), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kv = backend.get("/t/k", None).await.unwrap().kv.unwrap();
    assert_eq!(kv.value, Bytes::from("2"));
}

fn assert_unavailable_naming(result: Result<SqliteBackend>, path: &Path, cause: &str) {
    match result {
        Err(e @ StorageError::Unavailable { .. }) => {
            let full = format!("{e}: {}", std::error::Error::source(&e).unwrap());
            assert!(full.contains(&path.display().to_string()), "{full}");
            assert!(full.contains(cause), "{full}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(&path, vec![b'#'; 8192]).unwrap();
    assert_unavailable_naming(SqliteBackend::open(&path), &path, "not a database");
}

#[test]
fn an_unwritable_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("state.db");
    assert_unavailable_naming(SqliteBackend::open(&path), &path, "unable to open");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    SqliteBackend::open(&path).unwrap().close().await.unwrap();
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE meta SET value = 99 WHERE name = 'schema_version'",
            [],
        )
        .unwrap();
    assert_unavailable_naming(SqliteBackend::open(&path), &path, "schema version 99");
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let backend = SqliteBackend::open(&path).unwrap();
    backend
        .create("/c/a", Bytes::from("a"), None)
        .await
        .unwrap();
    backend
        .create("/c/b", Bytes::from("b"), None)
        .await
        .unwrap();
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE current SET value = 42 WHERE key = CAST('/c/b' AS BLOB)",
            [],
        )
        .unwrap();
    let listed = backend
        .range(RangeRequest {
            prefix: "/c/",
            ..RangeRequest::default()
        })
        .await;
    match listed {
        Err(StorageError::InvalidObject { key, .. }) => assert_eq!(key, "/c/b"),
        other => panic!("expected InvalidObject, got {other:?}"),
    }
}

#[tokio::test]
async fn reopening_keeps_data_and_revisions_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let backend = SqliteBackend::open(&path).unwrap();
    let a = revision_of(
        backend
            .create("/o/a", Bytes::from("a"), None)
            .await
            .unwrap(),
    );
    let b = revision_of(
        backend
            .create("/o/b", Bytes::from("b"), None)
            .await
            .unwrap(),
    );
    let last = revision_of(backend.delete("/o/b", b).await.unwrap());
    backend.compact(last).await.unwrap();
    backend.close().await.unwrap();
    backend.close().await.unwrap();
    assert!(
        backend.get("/o/a", None).await.is_err(),
        "closed backends refuse reads"
    );

    let backend = SqliteBackend::open(&path).unwrap();
    assert_eq!(backend.current_revision().await.unwrap(), last);
    let kv = backend.get("/o/a", None).await.unwrap().kv.unwrap();
    assert_eq!((kv.value.as_ref(), kv.mod_revision), (b"a".as_ref(), a));
    // Re-creating the deleted key: a fresh revision above everything handed out before.
    let again = revision_of(
        backend
            .create("/o/b", Bytes::from("b2"), None)
            .await
            .unwrap(),
    );
    assert_eq!(again, last + 1);
    assert!(matches!(
        backend.get("/o/a", Some(a)).await,
        Err(StorageError::Compacted { .. })
    ));
}

#[tokio::test]
async fn in_memory_backends_are_separate_and_share_one_database_inside() {
    let one = SqliteBackend::open_in_memory().unwrap();
    let two = SqliteBackend::open_in_memory().unwrap();
    one.create("/m/a", Bytes::from("1"), None).await.unwrap();
    assert!(two.get("/m/a", None).await.unwrap().kv.is_none());
    // Reads go through the pool, not the writer: all of them see the write.
    let reads = futures::future::join_all((0..16).map(|_| one.get("/m/a", None))).await;
    assert!(reads.into_iter().all(|r| r.unwrap().kv.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_started_during_writes_has_no_gap_and_no_duplicate() {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let total: Revision = 300;
    let writer = {
        let backend = Arc::clone(&backend);
        tokio::spawn(async move {
            for i in 0..total {
                backend
                    .create(&format!("/g/{i:04}"), Bytes::from("v"), None)
                    .await
                    .unwrap();
            }
        })
    };
    // Start watching from the beginning while writes are in flight.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut watch = backend.watch("/g/", 0).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < total as usize {
        seen.extend(
            next_response(&mut watch)
                .await
                .events
                .iter()
                .map(|e| e.kv.mod_revision),
        );
    }
    writer.await.unwrap();
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_watcher_that_falls_behind_is_closed_as_too_slow() {
    let backend = SqliteBackend::with_config(SqliteConfig {
        synchronous_full: false,
        ..SqliteConfig::default()
    })
    .unwrap();
    let mut slow = backend.watch("/s/", 0).await.unwrap();
    let mut rev = revision_of(
        backend
            .create("/s/k", Bytes::from("0"), None)
            .await
            .unwrap(),
    );
    for i in 0..WATCH_BUFFER + 10 {
        rev = revision_of(
            backend
                .update("/s/k", rev, Bytes::from(i.to_string()), None)
                .await
                .unwrap(),
        );
    }
    let mut outcome = None;
    while let Some(item) = slow.responses.next().await {
        if let Err(e) = item {
            outcome = Some(e);
            break;
        }
    }
    assert!(
        matches!(outcome, Some(StorageError::WatcherTooSlow(_))),
        "{outcome:?}"
    );
    assert!(
        slow.responses.next().await.is_none(),
        "the stream ends after the error"
    );
}

#[tokio::test]
async fn progress_follows_every_published_event() {
    let backend = SqliteBackend::open_in_memory().unwrap();
    let mut watch = backend.watch("/p/", 0).await.unwrap();
    let rev = revision_of(
        backend
            .create("/p/a", Bytes::from("1"), None)
            .await
            .unwrap(),
    );
    // Unrelated keys move the revision too.
    let other = revision_of(
        backend
            .create("/q/a", Bytes::from("1"), None)
            .await
            .unwrap(),
    );
    watch
        .progress
        .as_ref()
        .expect("SQLite answers progress requests")
        .request();
    let first = next_response(&mut watch).await;
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.events[0].kv.mod_revision, rev);
    let progress = next_response(&mut watch).await;
    assert!(progress.events.is_empty());
    assert_eq!(progress.revision, other);
}

/// The query plans behind latest lists, counts, historical reads, history replay and
/// compaction: all index searches, never a scan of a whole table.
#[test]
fn queries_are_index_driven() {
    let location = Location::from_config(&SqliteConfig::default());
    let conn = location.open_writer(&SqliteConfig::default()).unwrap();
    let queries = [
        read::GET_AT,
        read::RANGE_LATEST,
        read::COUNT_LATEST,
        read::RANGE_AT,
        read::COUNT_AT,
        read::HISTORY,
        writer::EXPIRED,
        writer::COMPACT,
    ];
    for query in queries {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {query}"))
            .unwrap();
        let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(nulls), |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        for step in &plan {
            assert!(
                !step.starts_with("SCAN") && !step.contains("TEMP B-TREE"),
                "{query}\nplan: {plan:?}"
            );
        }
    }
}

/// Latest pages and counts over 100k keys (run with `--ignored --nocapture` to see timings;
/// `queries_are_index_driven` is what guards against scans).
#[tokio::test]
#[ignore = "measurement"]
async fn range_at_100k_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    SqliteBackend::open(&path).unwrap().close().await.unwrap();
    {
        // Fill through SQL: this measures reads, not 100k fsyncs.
        let mut conn = Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        let value = vec![b'x'; 1000];
        for i in 1..=100_000i64 {
            let key = format!("/registry/pods/ns{}/pod{i:06}", i % 10);
            tx.execute(
                "INSERT INTO log (revision, key, create_revision, prev_revision, deleted, value)
                 VALUES (?1, ?2, ?1, 0, 0, ?3)",
                rusqlite::params![i, key.as_bytes(), value],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO current (key, revision, create_revision, value) VALUES (?2, ?1, ?1, ?3)",
                rusqlite::params![i, key.as_bytes(), value],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let backend = SqliteBackend::open(&path).unwrap();
    for (what, prefix, revision) in [
        ("latest, all pods", "/registry/pods/", None),
        ("latest, one namespace", "/registry/pods/ns3/", None),
        (
            "at a past revision, one namespace",
            "/registry/pods/ns3/",
            Some(50_000),
        ),
    ] {
        let started = std::time::Instant::now();
        let page = backend
            .range(RangeRequest {
                prefix,
                revision,
                limit: Some(500),
                ..RangeRequest::default()
            })
            .await
            .unwrap();
        println!(
            "{what}: 500 of {} keys in {:?}",
            page.count,
            started.elapsed()
        );
    }
}
