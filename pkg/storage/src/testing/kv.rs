//! Conformance cases for [`KvBackend`](crate::KvBackend): etcd's model, byte for byte.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{KvFixture, assert_quiet, next_within};
use crate::{CasOutcome, KeyValue, KvEventKind, KvWatchResponse, RangeRequest, StorageError};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn create(f: &KvFixture, key: &str, value: &str) -> u64 {
    match f.backend.create(key, b(value), None).await.unwrap() {
        CasOutcome::Written { revision, prev } => {
            assert!(prev.is_none(), "a create has no previous value");
            revision
        }
        CasOutcome::Mismatch { current } => panic!("create of {key} refused: {current:?}"),
    }
}

async fn update(f: &KvFixture, key: &str, expected: u64, value: &str) -> u64 {
    match f
        .backend
        .update(key, expected, b(value), None)
        .await
        .unwrap()
    {
        CasOutcome::Written { revision, .. } => revision,
        CasOutcome::Mismatch { current } => panic!("update of {key} refused: {current:?}"),
    }
}

async fn delete(f: &KvFixture, key: &str, expected: u64) -> u64 {
    match f.backend.delete(key, expected).await.unwrap() {
        CasOutcome::Written { revision, .. } => revision,
        CasOutcome::Mismatch { current } => panic!("delete of {key} refused: {current:?}"),
    }
}

async fn latest(f: &KvFixture, key: &str) -> Option<KeyValue> {
    f.backend.get(key, None).await.unwrap().kv
}

fn keys(kvs: &[KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key.as_str()).collect()
}

/// A create is readable at once with both revisions equal; a second create of the key is refused
/// with the current value; a missing key reads as `None`.
pub async fn create_then_get(f: &KvFixture) {
    let rev = create(f, "/t/a", "one").await;
    let got = f.backend.get("/t/a", None).await.unwrap();
    let kv = got.kv.expect("created key must be readable");
    assert_eq!((kv.key.as_str(), &kv.value[..]), ("/t/a", &b"one"[..]));
    assert_eq!((kv.create_revision, kv.mod_revision), (rev, rev));
    assert!(got.revision >= rev);
    match f.backend.create("/t/a", b("two"), None).await.unwrap() {
        CasOutcome::Mismatch { current: Some(cur) } => assert_eq!(cur, kv),
        other => panic!("second create must be refused with the current value, got {other:?}"),
    }
    assert!(latest(f, "/t/missing").await.is_none());
    assert_eq!(
        &latest(f, "/t/a").await.unwrap().value[..],
        b"one",
        "refused create wrote"
    );
}

/// Every write advances the revision by exactly one, and the current revision is the last.
pub async fn revisions_advance_by_one(f: &KvFixture) {
    let r1 = create(f, "/t/a", "1").await;
    let r2 = update(f, "/t/a", r1, "2").await;
    let r3 = create(f, "/t/b", "1").await;
    let r4 = delete(f, "/t/a", r2).await;
    assert_eq!([r2, r3, r4], [r1 + 1, r1 + 2, r1 + 3]);
    assert_eq!(f.backend.current_revision().await.unwrap(), r4);
    // A refused write uses no revision.
    let refused = f.backend.update("/t/b", r1, b("x"), None).await.unwrap();
    assert!(matches!(refused, CasOutcome::Mismatch { .. }));
    assert_eq!(f.backend.current_revision().await.unwrap(), r4);
}

/// An update succeeds only against the key's current mod revision and returns the old value.
pub async fn update_compares_mod_revision(f: &KvFixture) {
    let r1 = create(f, "/t/a", "one").await;
    match f.backend.update("/t/a", r1, b("two"), None).await.unwrap() {
        CasOutcome::Written { revision, prev } => {
            assert!(revision > r1);
            let prev = prev.expect("update returns the previous value");
            assert_eq!((&prev.value[..], prev.mod_revision), (&b"one"[..], r1));
            let kv = latest(f, "/t/a").await.unwrap();
            assert_eq!((kv.create_revision, kv.mod_revision), (r1, revision));
        }
        other => panic!("update with the current revision must win, got {other:?}"),
    }
    match f
        .backend
        .update("/t/a", r1, b("stale"), None)
        .await
        .unwrap()
    {
        CasOutcome::Mismatch { current: Some(cur) } => assert_eq!(&cur.value[..], b"two"),
        other => panic!("stale update must be refused with the current value, got {other:?}"),
    }
    match f.backend.update("/t/none", 1, b("x"), None).await.unwrap() {
        CasOutcome::Mismatch { current: None } => {}
        other => panic!("update of a missing key must be refused, got {other:?}"),
    }
}

/// A delete succeeds only against the current mod revision and returns the deleted value; a
/// re-created key starts a new life with a new create revision.
pub async fn delete_compares_mod_revision(f: &KvFixture) {
    let r1 = create(f, "/t/a", "one").await;
    let refused = f.backend.delete("/t/a", r1 + 100).await.unwrap();
    assert!(matches!(refused, CasOutcome::Mismatch { current: Some(_) }));
    match f.backend.delete("/t/a", r1).await.unwrap() {
        CasOutcome::Written { revision, prev } => {
            assert!(revision > r1);
            assert_eq!(
                &prev.expect("delete returns the deleted value").value[..],
                b"one"
            );
        }
        other => panic!("delete with the current revision must win, got {other:?}"),
    }
    assert!(latest(f, "/t/a").await.is_none());
    let missing = f.backend.delete("/t/a", r1).await.unwrap();
    assert!(matches!(missing, CasOutcome::Mismatch { current: None }));
    let r3 = create(f, "/t/a", "again").await;
    let kv = latest(f, "/t/a").await.unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (r3, r3));
}

/// A read at a past revision sees the value of that time, and nothing before the create or
/// after the delete.
pub async fn get_at_past_revision(f: &KvFixture) {
    let r1 = create(f, "/t/a", "one").await;
    let r2 = update(f, "/t/a", r1, "two").await;
    let r3 = delete(f, "/t/a", r2).await;
    let at = |rev| f.backend.get("/t/a", Some(rev));
    assert!(at(r1 - 1).await.unwrap().kv.is_none(), "before the create");
    assert_eq!(&at(r1).await.unwrap().kv.unwrap().value[..], b"one");
    let kv2 = at(r2).await.unwrap().kv.unwrap();
    assert_eq!(
        (&kv2.value[..], kv2.create_revision, kv2.mod_revision),
        (&b"two"[..], r1, r2)
    );
    assert!(at(r3).await.unwrap().kv.is_none(), "after the delete");
}

/// A range returns exactly the keys under the prefix, in key order; a prefix is not a
/// string-prefix of a sibling (`/t/a/` does not match `/t/a0`).
pub async fn range_by_prefix_in_key_order(f: &KvFixture) {
    for key in ["/t/a/2", "/t/a/10", "/t/a/1", "/t/a0", "/t/b/1", "/t/a"] {
        create(f, key, key).await;
    }
    let r = f
        .backend
        .range(RangeRequest {
            prefix: "/t/a/",
            ..RangeRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(keys(&r.kvs), ["/t/a/1", "/t/a/10", "/t/a/2"]);
    assert!(!r.more);
    assert_eq!(r.count, 3);
    assert_eq!(&r.kvs[0].value[..], b"/t/a/1");
    let none = f
        .backend
        .range(RangeRequest {
            prefix: "/t/zzz/",
            ..RangeRequest::default()
        })
        .await
        .unwrap();
    assert!(none.kvs.is_empty() && !none.more && none.count == 0);
    assert_eq!(f.backend.count("/t/a/").await.unwrap(), 3);
    assert_eq!(f.backend.count("/t/").await.unwrap(), 6);
}

/// `limit` cuts the range and sets `more`; `start` resumes inclusively; `count` counts the
/// rest of the range from `start`.
pub async fn range_limit_start_and_count(f: &KvFixture) {
    for i in 0..7 {
        create(f, &format!("/t/k{i}"), "v").await;
    }
    let first = f
        .backend
        .range(RangeRequest {
            prefix: "/t/",
            limit: Some(3),
            ..RangeRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(keys(&first.kvs), ["/t/k0", "/t/k1", "/t/k2"]);
    assert!(first.more);
    assert_eq!(first.count, 7);
    let rest = f
        .backend
        .range(RangeRequest {
            prefix: "/t/",
            start: Some("/t/k2\u{0}"),
            revision: Some(first.revision),
            limit: Some(3),
        })
        .await
        .unwrap();
    assert_eq!(keys(&rest.kvs), ["/t/k3", "/t/k4", "/t/k5"]);
    assert!(rest.more);
    assert_eq!(rest.count, 4);
    let last = f
        .backend
        .range(RangeRequest {
            prefix: "/t/",
            start: Some("/t/k6"),
            limit: Some(3),
            ..RangeRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(keys(&last.kvs), ["/t/k6"]);
    assert!(!last.more);
    let exact = f
        .backend
        .range(RangeRequest {
            prefix: "/t/",
            limit: Some(7),
            ..RangeRequest::default()
        })
        .await
        .unwrap();
    assert!(!exact.more, "a limit equal to the size leaves nothing more");
}

/// A range at a past revision sees that revision's keys and values.
pub async fn range_at_past_revision(f: &KvFixture) {
    let ra = create(f, "/t/a", "a1").await;
    let rb = create(f, "/t/b", "b1").await;
    let before = f.backend.current_revision().await.unwrap();
    update(f, "/t/a", ra, "a2").await;
    delete(f, "/t/b", rb).await;
    create(f, "/t/c", "c1").await;
    let old = f
        .backend
        .range(RangeRequest {
            prefix: "/t/",
            revision: Some(before),
            ..RangeRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(old.revision, before);
    assert_eq!(keys(&old.kvs), ["/t/a", "/t/b"]);
    assert_eq!(&old.kvs[0].value[..], b"a1");
    assert_eq!(old.count, 2);
    let now = f
        .backend
        .range(RangeRequest {
            prefix: "/t/",
            ..RangeRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(keys(&now.kvs), ["/t/a", "/t/c"]);
    assert_eq!(&now.kvs[0].value[..], b"a2");
}

/// Reading at a revision the store has not reached is `TooLargeResourceVersion`.
pub async fn future_revision_is_too_large(f: &KvFixture) {
    create(f, "/t/a", "1").await;
    let future = f.backend.current_revision().await.unwrap() + 1000;
    let get = f.backend.get("/t/a", Some(future)).await.unwrap_err();
    assert!(
        matches!(get, StorageError::TooLargeResourceVersion { requested, .. } if requested == future),
        "{get:?}"
    );
    let range = f
        .backend
        .range(RangeRequest {
            prefix: "/t/",
            revision: Some(future),
            ..RangeRequest::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(range, StorageError::TooLargeResourceVersion { .. }),
        "{range:?}"
    );
}

/// After compaction, history before the compaction point is gone (`Compacted`), reads at or
/// after it still work, every key's latest value survives, and revisions keep advancing.
pub async fn compaction_keeps_latest_and_forgets_history(f: &KvFixture) {
    let ra = create(f, "/t/a", "a1").await;
    let ra2 = update(f, "/t/a", ra, "a2").await;
    let rb = create(f, "/t/b", "b1").await;
    delete(f, "/t/b", rb).await;
    let rc = create(f, "/t/c", "c1").await;
    f.backend.compact(rc).await.unwrap();
    match f.backend.get("/t/a", Some(ra)).await {
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, ra);
            assert!(
                compacted > ra && compacted <= rc,
                "compaction point {compacted}"
            );
        }
        other => panic!("read below the compaction point must fail, got {other:?}"),
    }
    let range = f
        .backend
        .range(RangeRequest {
            prefix: "/t/",
            revision: Some(ra2),
            ..RangeRequest::default()
        })
        .await;
    assert!(
        matches!(range, Err(StorageError::Compacted { .. })),
        "{range:?}"
    );
    let at_point = f
        .backend
        .range(RangeRequest {
            prefix: "/t/",
            revision: Some(rc),
            ..RangeRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(keys(&at_point.kvs), ["/t/a", "/t/c"]);
    let a = latest(f, "/t/a").await.unwrap();
    assert_eq!(
        (&a.value[..], a.create_revision, a.mod_revision),
        (&b"a2"[..], ra, ra2)
    );
    let next = update(f, "/t/c", rc, "c2").await;
    assert_eq!(next, rc + 1);
}

async fn watch_response(stream: &mut crate::KvWatchStream, what: &str) -> KvWatchResponse {
    next_within(&mut stream.responses, what)
        .await
        .unwrap_or_else(|e| panic!("watch failed waiting for {what}: {e}"))
}

/// Collects the next `n` events of a watch, skipping progress notifications.
async fn watch_events(stream: &mut crate::KvWatchStream, n: usize) -> Vec<crate::KvEvent> {
    let mut events = Vec::new();
    while events.len() < n {
        let response = watch_response(stream, "watch events").await;
        for event in &response.events {
            assert!(event.kv.mod_revision <= response.revision);
        }
        events.extend(response.events);
    }
    assert_eq!(events.len(), n, "more events than written");
    events
}

/// A watch from a past revision replays every later change in order (with previous values),
/// then delivers live changes.
pub async fn watch_replays_from_revision_then_follows(f: &KvFixture) {
    let r1 = create(f, "/t/a", "a1").await;
    let r2 = update(f, "/t/a", r1, "a2").await;
    let r3 = create(f, "/t/b", "b1").await;
    let mut watch = f.backend.watch("/t/", r1).await.unwrap();
    let replay = watch_events(&mut watch, 2).await;
    assert_eq!(replay[0].kind, KvEventKind::Put);
    assert_eq!(
        (replay[0].kv.mod_revision, &replay[0].kv.value[..]),
        (r2, &b"a2"[..])
    );
    assert_eq!(replay[0].kv.create_revision, r1);
    assert_eq!(
        &replay[0].prev.as_ref().expect("update carries prev").value[..],
        b"a1"
    );
    assert_eq!(
        (replay[1].kv.mod_revision, replay[1].kv.create_revision),
        (r3, r3)
    );
    assert!(replay[1].prev.is_none(), "a create has no previous value");
    let r4 = update(f, "/t/b", r3, "b2").await;
    let live = watch_events(&mut watch, 1).await;
    assert_eq!(
        (live[0].kv.key.as_str(), live[0].kv.mod_revision),
        ("/t/b", r4)
    );
}

/// A watch delivers only keys under its prefix.
pub async fn watch_sees_only_its_prefix(f: &KvFixture) {
    let start = f.backend.current_revision().await.unwrap();
    let mut watch = f.backend.watch("/t/a/", start).await.unwrap();
    create(f, "/t/a0", "sibling").await;
    create(f, "/t/b/x", "other").await;
    let rev = create(f, "/t/a/x", "mine").await;
    let events = watch_events(&mut watch, 1).await;
    assert_eq!(
        (events[0].kv.key.as_str(), events[0].kv.mod_revision),
        ("/t/a/x", rev)
    );
}

/// A delete event names the key, carries the delete's revision and the deleted value.
pub async fn watch_delete_carries_previous_value(f: &KvFixture) {
    let r1 = create(f, "/t/a", "last").await;
    let mut watch = f.backend.watch("/t/", r1).await.unwrap();
    let rd = delete(f, "/t/a", r1).await;
    let events = watch_events(&mut watch, 1).await;
    let e = &events[0];
    assert_eq!(
        (e.kind, e.kv.key.as_str(), e.kv.mod_revision),
        (KvEventKind::Delete, "/t/a", rd)
    );
    let prev = e.prev.as_ref().expect("delete carries the deleted value");
    assert_eq!((&prev.value[..], prev.mod_revision), (&b"last"[..], r1));
}

/// A progress request is answered with an empty response at a revision covering every write,
/// after every event it covers. A backend that cannot promise that order offers no requests.
pub async fn watch_progress_on_request(f: &KvFixture) {
    let start = f.backend.current_revision().await.unwrap();
    let r1 = create(f, "/t/mine/a", "1").await;
    let mut watch = f.backend.watch("/t/mine/", start).await.unwrap();
    let Some(progress) = watch.progress.clone() else {
        return;
    };
    let written = create(f, "/t/other", "x").await;
    progress.request();
    let first = watch_response(&mut watch, "the replayed event").await;
    assert_eq!(
        first.events.first().map(|e| e.kv.mod_revision),
        Some(r1),
        "the event the progress covers comes first"
    );
    let deadline = tokio::time::Instant::now() + super::EVENT_TIMEOUT;
    loop {
        let response = watch_response(&mut watch, "a progress notification").await;
        assert!(response.events.is_empty(), "no event matches the prefix");
        if response.revision >= written {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "progress never reached {written}"
        );
        progress.request();
    }
}

/// Watching from before the compaction point fails with `Compacted`, from the call or as the
/// stream's first item.
pub async fn watch_from_compacted_revision_fails(f: &KvFixture) {
    let r1 = create(f, "/t/a", "1").await;
    let r2 = update(f, "/t/a", r1, "2").await;
    let r3 = update(f, "/t/a", r2, "3").await;
    f.backend.compact(r3).await.unwrap();
    match f.backend.watch("/t/", r1).await {
        Err(StorageError::Compacted { .. }) => {}
        Err(other) => panic!("expected Compacted, got {other:?}"),
        Ok(mut watch) => match next_within(&mut watch.responses, "the compaction error").await {
            Err(StorageError::Compacted { .. }) => {}
            other => panic!("expected Compacted, got {other:?}"),
        },
    }
    // Watching from the compaction point itself is fine.
    let mut watch = f.backend.watch("/t/", r3).await.unwrap();
    let r4 = update(f, "/t/a", r3, "4").await;
    assert_eq!(watch_events(&mut watch, 1).await[0].kv.mod_revision, r4);
}

/// 32 writers racing on one key with the same expected revision: exactly one wins each round,
/// the rest are told the current value so they can retry.
pub async fn concurrent_writers_one_winner(f: &KvFixture) {
    let mut rev = create(f, "/t/hot", "0").await;
    for round in 0..5 {
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let backend = Arc::clone(&f.backend);
                tokio::spawn(async move {
                    backend
                        .update("/t/hot", rev, Bytes::from(format!("{round}-{i}")), None)
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(CasOutcome::Written { revision, .. }) => winners.push(revision),
                Ok(CasOutcome::Mismatch { current }) => {
                    assert!(current.is_some_and(|c| c.mod_revision > rev));
                }
                Err(e) => panic!("a racing writer must get a retryable answer, not {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one writer wins");
        rev = winners[0];
    }
}

/// Many concurrent writes are all delivered to a watcher, each once, in strictly increasing
/// revision order.
pub async fn concurrent_writes_watched_in_order(f: &KvFixture) {
    let start = f.backend.current_revision().await.unwrap();
    let mut watch = f.backend.watch("/t/", start).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let backend = Arc::clone(&f.backend);
            tokio::spawn(async move {
                backend
                    .create(&format!("/t/k{i:03}"), Bytes::from("v"), None)
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert!(matches!(
            task.await.unwrap().unwrap(),
            CasOutcome::Written { .. }
        ));
    }
    let events = watch_events(&mut watch, 200).await;
    let revisions: Vec<_> = events.iter().map(|e| e.kv.mod_revision).collect();
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing"
    );
    let distinct: HashSet<_> = events.iter().map(|e| e.kv.key.clone()).collect();
    assert_eq!(distinct.len(), 200);
    assert_quiet(
        &mut watch.responses,
        Duration::from_millis(200),
        "after 200 creates",
    )
    .await;
}

/// A key written with a TTL disappears after it, with a delete event a watcher sees.
pub async fn ttl_deletes_the_key(f: &KvFixture) {
    let start = f.backend.current_revision().await.unwrap();
    let mut watch = f.backend.watch("/t/", start).await.unwrap();
    let created = f
        .backend
        .create("/t/event", b("short-lived"), Some(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(matches!(created, CasOutcome::Written { .. }));
    let rev = match created {
        CasOutcome::Written { revision, .. } => revision,
        CasOutcome::Mismatch { .. } => unreachable!(),
    };
    create(f, "/t/keeper", "stays").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let delete = loop {
        let response = next_within(&mut watch.responses, "the TTL expiry")
            .await
            .unwrap();
        if let Some(e) = response
            .events
            .into_iter()
            .find(|e| e.kind == KvEventKind::Delete)
        {
            break e;
        }
        assert!(tokio::time::Instant::now() < deadline, "TTL never expired");
    };
    assert_eq!(delete.kv.key, "/t/event");
    assert!(delete.kv.mod_revision > rev);
    assert!(latest(f, "/t/event").await.is_none());
    assert!(
        latest(f, "/t/keeper").await.is_some(),
        "keys without TTL stay"
    );
}

/// Values are opaque bytes, stored and returned verbatim (not only UTF-8 or JSON).
pub async fn values_round_trip_verbatim(f: &KvFixture) {
    let value = Bytes::from_static(&[0, 159, 146, 150, 255, b'{', 0]);
    let outcome = f
        .backend
        .create("/t/bin", value.clone(), None)
        .await
        .unwrap();
    assert!(matches!(outcome, CasOutcome::Written { .. }));
    assert_eq!(latest(f, "/t/bin").await.unwrap().value, value);
    let empty = f
        .backend
        .create("/t/empty", Bytes::new(), None)
        .await
        .unwrap();
    assert!(matches!(empty, CasOutcome::Written { .. }));
    assert!(latest(f, "/t/empty").await.unwrap().value.is_empty());
}
