//! The watch cache over a real store (`KvStore` over in-memory SQLite): what a client of the API
//! server relies on when lists and watches are served from memory.

// Test code, helpers included: a failed unwrap is a test failure with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use rkube_storage::cacher::CacherConfig;
use rkube_storage::{
    Cacher, CasOutcome, GetOptions, GetResponse, KvBackend, KvStore, KvWatchStream, ListOptions,
    Object, Preconditions, Predicate, RangeRequest, RangeResponse, ReadAt, Revision, StorageError,
    Store, Update, WatchEvent, WatchOptions, WatchStart, WatchStream,
};
use rkube_storage_sqlite::SqliteBackend;
use serde_json::{Value, json};
use tokio::sync::watch;

const PREFIX: &str = "/registry/configmaps/";

/// How long a test waits for something that must happen before calling the cacher broken
/// (only in real-time tests: under paused time the clock jumps while SQLite's writer works).
const PATIENCE: Duration = Duration::from_secs(10);

fn key(name: &str) -> String {
    format!("{PREFIX}ns/{name}")
}

fn configmap(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns", "labels": labels},
        "data": {"v": "1"},
    })
}

fn name(object: &Object) -> &str {
    rkube_api::meta::name(object.value()).unwrap_or_default()
}

struct Fixture {
    backend: Arc<dyn KvBackend>,
    inner: Arc<dyn Store>,
    cacher: Arc<Cacher>,
}

async fn fixture_over(backend: Arc<dyn KvBackend>, config: CacherConfig) -> Fixture {
    let inner: Arc<dyn Store> = Arc::new(KvStore::new(backend.clone()));
    let cacher = Cacher::new(inner.clone(), PREFIX, config);
    cacher.ready().await;
    Fixture {
        backend,
        inner,
        cacher,
    }
}

async fn fixture(config: CacherConfig) -> Fixture {
    fixture_over(Arc::new(SqliteBackend::open_in_memory().unwrap()), config).await
}

async fn create(store: &dyn Store, name: &str, labels: Value) -> Object {
    store
        .create(&key(name), configmap(name, labels), None)
        .await
        .unwrap()
}

async fn update(
    store: &dyn Store,
    name: &str,
    change: impl Fn(&mut Value) + Send + Sync,
) -> Object {
    let change = &change;
    store
        .guaranteed_update(&key(name), &Preconditions::default(), false, &mut |cur| {
            async move {
                let mut value = cur.expect("exists").into_value();
                change(&mut value);
                Ok(Update::new(value))
            }
            .boxed()
        })
        .await
        .unwrap()
}

async fn delete(store: &dyn Store, name: &str) -> Object {
    store
        .delete(&key(name), &Preconditions::default(), None)
        .await
        .unwrap()
}

fn watch_at(revision: Revision) -> WatchOptions {
    WatchOptions {
        start: WatchStart::At(revision),
        ..WatchOptions::default()
    }
}

fn label_is(label: &'static str, value: &'static str) -> Predicate {
    Predicate::new(move |o| {
        rkube_api::meta::labels(o)
            .and_then(|l| l.get(label))
            .and_then(Value::as_str)
            == Some(value)
    })
}

async fn next(w: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(PATIENCE, w.next()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no event within {PATIENCE:?}"),
    }
}

/// The next event that is not an ordinary bookmark.
async fn next_change(w: &mut WatchStream) -> WatchEvent {
    loop {
        match next(w).await {
            WatchEvent::Bookmark {
                initial_events_end: false,
                ..
            } => continue,
            event => return event,
        }
    }
}

/// (type, name, revision) of an object event.
fn describe(event: &WatchEvent) -> (&'static str, String, Revision) {
    let (kind, object) = match event {
        WatchEvent::Added(o) => ("ADDED", o),
        WatchEvent::Modified(o) => ("MODIFIED", o),
        WatchEvent::Deleted(o) => ("DELETED", o),
        other => panic!("not an object event: {other:?}"),
    };
    (kind, name(object).to_string(), object.revision())
}

/// Brings the cache up to the inner store's current revision (a consistent read) and returns it.
async fn sync(f: &Fixture) -> Revision {
    f.cacher
        .list(PREFIX, &ListOptions::default())
        .await
        .unwrap()
        .revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_sees_writes_and_reads_its_writes() {
    let f = fixture(CacherConfig::default()).await;
    let store = f.cacher.as_ref();
    let a = create(store, "a", json!({})).await;
    // Consistent reads right after a write see it, whoever wrote it.
    let got = store.get(&key("a"), &GetOptions::default()).await.unwrap();
    assert_eq!((got.revision(), got.value()), (a.revision(), a.value()));
    let b = create(f.inner.as_ref(), "b", json!({})).await;
    let list = store.list(PREFIX, &ListOptions::default()).await.unwrap();
    assert_eq!(list.items.iter().map(name).collect::<Vec<_>>(), ["a", "b"]);
    assert!(list.revision >= b.revision());
    // Served from memory: the list hands out the cached allocations, which a store that decodes
    // on every read never would.
    let again = store
        .get(&key("b"), &GetOptions { at: ReadAt::Any })
        .await
        .unwrap();
    assert!(
        again.ptr_eq(&list.items[1]),
        "reads share the cached object"
    );

    let a2 = update(store, "a", |v| v["data"]["v"] = json!("2")).await;
    let got = store.get(&key("a"), &GetOptions::default()).await.unwrap();
    assert_eq!(got.revision(), a2.revision());
    assert_eq!(got.value()["data"]["v"], json!("2"));
    delete(store, "b").await;
    let err = store
        .get(&key("b"), &GetOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(store.count(PREFIX).await.unwrap(), 1);
    // Exact reads of the past go to the inner store.
    let past = store
        .get(
            &key("a"),
            &GetOptions {
                at: ReadAt::Exact(a.revision()),
            },
        )
        .await
        .unwrap();
    assert_eq!(past.value()["data"]["v"], json!("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_page_comes_from_the_cache_and_the_rest_stays_consistent() {
    let f = fixture(CacherConfig::default()).await;
    let store = f.cacher.as_ref();
    for i in 0..7 {
        create(store, &format!("o{i}"), json!({})).await;
    }
    let page = |token| ListOptions {
        limit: Some(3),
        continue_token: token,
        ..ListOptions::default()
    };
    let first = store.list(PREFIX, &page(None)).await.unwrap();
    assert_eq!(first.remaining_item_count, Some(4));
    delete(store, "o4").await;
    let second = store
        .list(PREFIX, &page(first.continue_token))
        .await
        .unwrap();
    assert_eq!(second.revision, first.revision);
    assert_eq!(
        second.items.iter().map(name).collect::<Vec<_>>(),
        ["o3", "o4", "o5"]
    );
    assert_eq!(second.remaining_item_count, Some(1));
}

#[tokio::test(start_paused = true)]
async fn not_older_than_a_future_revision_times_out() {
    let config = CacherConfig::default();
    let timeout = config.freshness_timeout;
    let f = fixture(config).await;
    let a = create(f.cacher.as_ref(), "a", json!({})).await;
    let ahead = a.revision() + 100;
    let started = tokio::time::Instant::now();
    let err = f
        .cacher
        .get(
            &key("a"),
            &GetOptions {
                at: ReadAt::NotOlderThan(ahead),
            },
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() >= timeout,
        "waited {:?}",
        started.elapsed()
    );
    match err {
        StorageError::TooLargeResourceVersion { requested, current } => {
            assert_eq!(requested, ahead);
            assert_eq!(current, a.revision());
        }
        other => panic!("expected TooLargeResourceVersion, got {other:?}"),
    }
    let list = f
        .cacher
        .list(
            PREFIX,
            &ListOptions {
                at: ReadAt::NotOlderThan(ahead),
                ..ListOptions::default()
            },
        )
        .await;
    assert!(matches!(
        list,
        Err(StorageError::TooLargeResourceVersion { .. })
    ));
    let watch = f.cacher.watch(PREFIX, &watch_at(ahead)).await;
    assert!(matches!(
        watch,
        Err(StorageError::TooLargeResourceVersion { .. })
    ));
    // A revision the cache has is served at once.
    let got = f
        .cacher
        .get(
            &key("a"),
            &GetOptions {
                at: ReadAt::NotOlderThan(a.revision()),
            },
        )
        .await
        .unwrap();
    assert_eq!(got.revision(), a.revision());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_replays_buffered_events_then_follows() {
    let f = fixture(CacherConfig {
        event_capacity: 8,
        ..CacherConfig::default()
    })
    .await;
    let store = f.cacher.as_ref();
    let a = create(store, "a", json!({})).await;
    let a2 = update(store, "a", |v| v["data"]["v"] = json!("2")).await;
    let b = create(store, "b", json!({})).await;
    let gone = delete(store, "a").await;
    let mut w = store.watch(PREFIX, &watch_at(a.revision())).await.unwrap();
    let c = create(store, "c", json!({})).await;
    let mut got = vec![];
    for _ in 0..4 {
        got.push(describe(&next_change(&mut w).await));
    }
    assert_eq!(
        got,
        [
            ("MODIFIED", "a".into(), a2.revision()),
            ("ADDED", "b".into(), b.revision()),
            ("DELETED", "a".into(), gone.revision()),
            ("ADDED", "c".into(), c.revision()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_before_the_buffer_is_compacted() {
    let f = fixture(CacherConfig {
        event_capacity: 4,
        ..CacherConfig::default()
    })
    .await;
    let mut revisions = vec![];
    for i in 0..10 {
        revisions.push(
            create(f.cacher.as_ref(), &format!("o{i}"), json!({}))
                .await
                .revision(),
        );
    }
    sync(&f).await;
    // The ring holds the last 4 events: a watch may resume after the 6th write, not earlier.
    match f.cacher.watch(PREFIX, &watch_at(revisions[0])).await {
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (revisions[0], revisions[5])),
        other => panic!("expected Compacted, got {other:?}"),
    }
    let mut w = f
        .cacher
        .watch(PREFIX, &watch_at(revisions[5]))
        .await
        .unwrap();
    for expected in &revisions[6..] {
        assert_eq!(describe(&next_change(&mut w).await).2, *expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_transitions_become_added_and_deleted() {
    let f = fixture(CacherConfig::default()).await;
    let store = f.cacher.as_ref();
    create(store, "a", json!({"tier": "db"})).await;
    let start = sync(&f).await;
    let mut web = store
        .watch(
            PREFIX,
            &WatchOptions {
                predicate: label_is("tier", "web"),
                ..watch_at(start)
            },
        )
        .await
        .unwrap();
    let mut all = store.watch(PREFIX, &watch_at(start)).await.unwrap();
    update(store, "a", |v| v["data"]["v"] = json!("unseen")).await;
    let joined = update(store, "a", |v| {
        v["metadata"]["labels"]["tier"] = json!("web")
    })
    .await;
    let changed = update(store, "a", |v| v["data"]["v"] = json!("seen")).await;
    let left = update(store, "a", |v| {
        v["metadata"]["labels"]["tier"] = json!("db")
    })
    .await;
    let marker = create(store, "marker", json!({"tier": "web"})).await;
    let got: Vec<_> = [
        next_change(&mut web).await,
        next_change(&mut web).await,
        next_change(&mut web).await,
        next_change(&mut web).await,
    ]
    .into_iter()
    .collect();
    assert_eq!(
        got.iter().map(describe).collect::<Vec<_>>(),
        [
            ("ADDED", "a".into(), joined.revision()),
            ("MODIFIED", "a".into(), changed.revision()),
            ("DELETED", "a".into(), left.revision()),
            ("ADDED", "marker".into(), marker.revision()),
        ]
    );
    // The DELETED carries the last matching state, stamped with the event's revision.
    let last = got[2].object().unwrap();
    assert_eq!(last.value()["metadata"]["labels"]["tier"], json!("web"));
    assert_eq!(
        rkube_api::meta::resource_version(last.value()),
        Some(left.revision().to_string().as_str())
    );
    // An unfiltered watcher sees each of those writes as it is.
    for _ in 0..4 {
        assert!(matches!(
            next_change(&mut all).await,
            WatchEvent::Modified(_)
        ));
    }
    assert!(matches!(next_change(&mut all).await, WatchEvent::Added(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_events_then_end_bookmark_then_changes() {
    let f = fixture(CacherConfig::default()).await;
    let store = f.cacher.as_ref();
    create(store, "a", json!({"tier": "web"})).await;
    create(store, "b", json!({"tier": "db"})).await;
    let c = create(store, "c", json!({"tier": "web"})).await;
    for start in [
        WatchStart::Latest,
        WatchStart::Any,
        WatchStart::At(c.revision()),
    ] {
        let mut w = store
            .watch(
                PREFIX,
                &WatchOptions {
                    start,
                    initial_events: true,
                    initial_events_end: true,
                    bookmarks: true,
                    predicate: label_is("tier", "web"),
                },
            )
            .await
            .unwrap();
        let mut initial = vec![];
        let end = loop {
            match next(&mut w).await {
                WatchEvent::Added(o) => initial.push(name(&o).to_string()),
                WatchEvent::Bookmark {
                    revision,
                    initial_events_end: true,
                } => break revision,
                other => panic!("unexpected before the end bookmark: {other:?}"),
            }
        };
        assert_eq!(initial, ["a", "c"], "{start:?}");
        assert!(
            end >= c.revision(),
            "{start:?}: the snapshot includes every write"
        );
        let d = create(store, &format!("d{}", c.revision()), json!({"tier": "web"})).await;
        let after = describe(&next_change(&mut w).await);
        assert_eq!(
            (after.0, after.2),
            ("ADDED", d.revision()),
            "{start:?}: no gap, no repeat"
        );
        delete(store, name(&d)).await;
        // `Any` may serve a slightly stale state; the next round wants this one.
        sync(&f).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_is_dropped_and_fast_one_keeps_everything() {
    let f = fixture(CacherConfig {
        watcher_capacity: 4,
        ..CacherConfig::default()
    })
    .await;
    let store = f.cacher.as_ref();
    let start = sync(&f).await;
    let mut slow = store.watch(PREFIX, &watch_at(start)).await.unwrap();
    let mut fast = store.watch(PREFIX, &watch_at(start)).await.unwrap();
    let mut written = vec![];
    for i in 0..12 {
        let o = create(store, &format!("o{i:02}"), json!({})).await;
        let event = describe(&next_change(&mut fast).await);
        assert_eq!(event, ("ADDED", format!("o{i:02}"), o.revision()));
        written.push(o.revision());
    }
    // The slow watcher gets what fitted in its queue, in order, then the reason it was closed.
    let mut delivered = vec![];
    let reason = loop {
        match next(&mut slow).await {
            WatchEvent::Added(o) => delivered.push(o.revision()),
            WatchEvent::Error(e) => break e,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(
        matches!(reason, StorageError::WatcherTooSlow(_)),
        "{reason:?}"
    );
    assert_eq!(delivered, written[..4]);
    assert!(
        slow.next().await.is_none(),
        "the stream ends after the error"
    );
    // The fast watcher is still live.
    let more = create(store, "more", json!({})).await;
    assert_eq!(describe(&next_change(&mut fast).await).2, more.revision());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_watcher_gets_the_same_object() {
    let f = fixture(CacherConfig::default()).await;
    let store = f.cacher.as_ref();
    let start = sync(&f).await;
    let mut one = store.watch(PREFIX, &watch_at(start)).await.unwrap();
    let mut two = store.watch(PREFIX, &watch_at(start)).await.unwrap();
    create(store, "a", json!({})).await;
    let (WatchEvent::Added(x), WatchEvent::Added(y)) =
        (next_change(&mut one).await, next_change(&mut two).await)
    else {
        panic!("expected two ADDED events");
    };
    assert!(x.ptr_eq(&y), "one allocation for all watchers");
    assert!(std::ptr::eq(x.json(), y.json()), "encoded once");
    let cached = store
        .get(&key("a"), &GetOptions { at: ReadAt::Any })
        .await
        .unwrap();
    assert!(cached.ptr_eq(&x), "the cache holds the same object");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_request_and_periodic_bookmarks() {
    let f = fixture(CacherConfig {
        bookmark_interval: Duration::from_millis(200),
        ..CacherConfig::default()
    })
    .await;
    let store = f.cacher.as_ref();
    let start = sync(&f).await;
    let mut w = store
        .watch(
            PREFIX,
            &WatchOptions {
                bookmarks: true,
                ..watch_at(start)
            },
        )
        .await
        .unwrap();
    // A write elsewhere moves the store, not this prefix: only a progress request tells.
    let elsewhere = f
        .inner
        .create("/registry/secrets/ns/s", configmap("s", json!({})), None)
        .await
        .unwrap();
    assert!(w.request_progress());
    loop {
        match next(&mut w).await {
            WatchEvent::Bookmark { revision, .. } if revision >= elsewhere.revision() => break,
            WatchEvent::Bookmark { .. } => {}
            other => panic!("expected bookmarks only, got {other:?}"),
        }
    }
    // Periodic bookmarks keep coming without any request.
    for _ in 0..2 {
        assert!(matches!(next(&mut w).await, WatchEvent::Bookmark { .. }));
    }
    // A watcher that did not ask for bookmarks gets none.
    let mut quiet = store.watch(PREFIX, &watch_at(start)).await.unwrap();
    quiet.request_progress();
    let nothing = tokio::time::timeout(Duration::from_millis(600), quiet.next()).await;
    assert!(nothing.is_err(), "{nothing:?}");
}

#[tokio::test(start_paused = true)]
async fn bookmarks_come_every_interval() {
    let interval = Duration::from_secs(60);
    let f = fixture(CacherConfig {
        bookmark_interval: interval,
        ..CacherConfig::default()
    })
    .await;
    let a = create(f.cacher.as_ref(), "a", json!({})).await;
    let mut w = f
        .cacher
        .watch(
            PREFIX,
            &WatchOptions {
                bookmarks: true,
                ..watch_at(a.revision())
            },
        )
        .await
        .unwrap();
    let mut times = vec![];
    while times.len() < 3 {
        match w.next().await {
            Some(WatchEvent::Bookmark { revision, .. }) => {
                assert_eq!(revision, a.revision());
                times.push(tokio::time::Instant::now());
            }
            other => panic!("expected bookmarks only, got {other:?}"),
        }
    }
    assert_eq!(times[1] - times[0], interval);
    assert_eq!(times[2] - times[1], interval);
}

/// A backend whose watches can be made to fail, as a lost etcd connection or a compacted watch
/// would: every open watch ends with an error, and new ones fail while `failing` is set. It can
/// also offer no progress requests, as etcd before 3.4.31 does.
struct FlakyBackend {
    inner: SqliteBackend,
    failing: AtomicBool,
    breaks: watch::Sender<u64>,
    progress: bool,
}

impl FlakyBackend {
    fn new() -> Self {
        FlakyBackend {
            inner: SqliteBackend::open_in_memory().unwrap(),
            failing: AtomicBool::new(false),
            breaks: watch::Sender::new(0),
            progress: true,
        }
    }

    fn without_progress() -> Self {
        FlakyBackend {
            progress: false,
            ..FlakyBackend::new()
        }
    }

    fn break_watches(&self, keep_failing: bool) {
        self.failing.store(keep_failing, Ordering::SeqCst);
        self.breaks.send_modify(|n| *n += 1);
    }

    fn lost() -> StorageError {
        StorageError::unavailable("watching", "connection lost")
    }
}

#[async_trait]
impl KvBackend for FlakyBackend {
    async fn get(
        &self,
        key: &str,
        revision: Option<Revision>,
    ) -> rkube_storage::Result<GetResponse> {
        self.inner.get(key, revision).await
    }
    async fn range(&self, request: RangeRequest<'_>) -> rkube_storage::Result<RangeResponse> {
        self.inner.range(request).await
    }
    async fn count(&self, prefix: &str) -> rkube_storage::Result<u64> {
        self.inner.count(prefix).await
    }
    async fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> rkube_storage::Result<CasOutcome> {
        self.inner.create(key, value, ttl).await
    }
    async fn update(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> rkube_storage::Result<CasOutcome> {
        self.inner.update(key, expected, value, ttl).await
    }
    async fn delete(&self, key: &str, expected: Revision) -> rkube_storage::Result<CasOutcome> {
        self.inner.delete(key, expected).await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> rkube_storage::Result<KvWatchStream> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(Self::lost());
        }
        let stream = self.inner.watch(prefix, after).await?;
        let mut breaks = self.breaks.subscribe();
        breaks.borrow_and_update();
        let broken = async move {
            let _ = breaks.changed().await;
        };
        let responses = stream
            .responses
            .take_until(broken)
            .chain(futures::stream::once(async { Err(Self::lost()) }))
            .boxed();
        Ok(KvWatchStream {
            responses,
            progress: stream.progress.filter(|_| self.progress),
        })
    }
    async fn current_revision(&self) -> rkube_storage::Result<Revision> {
        self.inner.current_revision().await
    }
    async fn compact(&self, revision: Revision) -> rkube_storage::Result<()> {
        self.inner.compact(revision).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_recovers_after_its_watch_fails() {
    let flaky = Arc::new(FlakyBackend::new());
    let f = fixture_over(flaky.clone(), CacherConfig::default()).await;
    let store = f.cacher.as_ref();
    create(store, "a", json!({})).await;
    create(store, "b", json!({})).await;
    let before = sync(&f).await;
    let mut w = store.watch(PREFIX, &watch_at(before)).await.unwrap();

    flaky.break_watches(true);
    // Current watchers are ended with the cause, so their clients re-list.
    match next(&mut w).await {
        WatchEvent::Error(StorageError::Unavailable { .. }) => {}
        other => panic!("expected the watch to fail, got {other:?}"),
    }
    assert!(w.next().await.is_none());
    // Changes while the cache cannot watch, then history compacted far ahead of the cache.
    delete(f.inner.as_ref(), "a").await;
    create(f.inner.as_ref(), "c", json!({})).await;
    update(f.inner.as_ref(), "b", |v| v["data"]["v"] = json!("2")).await;
    let now = f.inner.current_revision().await.unwrap();
    f.backend.compact(now).await.unwrap();
    // Meanwhile reads are answered by the inner store.
    let c = store
        .get(&key("c"), &GetOptions { at: ReadAt::Any })
        .await
        .unwrap();
    assert_eq!(name(&c), "c");

    flaky.failing.store(false, Ordering::SeqCst);
    // Served from the cache again once two reads share one allocation.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        f.cacher.ready().await;
        let any = GetOptions { at: ReadAt::Any };
        let x = store.get(&key("c"), &any).await.unwrap();
        let y = store.get(&key("c"), &any).await.unwrap();
        if x.ptr_eq(&y) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cache never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let list = store
        .list(
            PREFIX,
            &ListOptions {
                at: ReadAt::Any,
                ..ListOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(list.items.iter().map(name).collect::<Vec<_>>(), ["b", "c"]);
    assert_eq!(list.items[0].value()["data"]["v"], json!("2"));
    assert!(list.revision >= now);
    // The old events are gone with the re-list: resuming from before it means re-listing.
    let old = store.watch(PREFIX, &watch_at(before)).await;
    assert!(
        matches!(old, Err(StorageError::Compacted { .. })),
        "{old:?}"
    );
    let mut w = store.watch(PREFIX, &watch_at(list.revision)).await.unwrap();
    let d = create(store, "d", json!({})).await;
    assert_eq!(
        describe(&next_change(&mut w).await),
        ("ADDED", "d".into(), d.revision())
    );
}

/// Over a backend that cannot answer progress requests (etcd before 3.4.31), a consistent read
/// the cache cannot prove fresh goes to the inner store at once rather than waiting, and reads
/// come from memory again once the cache's own events prove it fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_progress_consistent_reads_go_to_the_store() {
    let config = CacherConfig {
        freshness_timeout: Duration::from_secs(300),
        ..CacherConfig::default()
    };
    let f = fixture_over(Arc::new(FlakyBackend::without_progress()), config).await;
    let store = f.cacher.as_ref();
    let a = create(store, "a", json!({})).await;
    // A write elsewhere moves the store past anything this prefix's watch will report.
    f.inner
        .create("/registry/other/ns/x", configmap("x", json!({})), None)
        .await
        .unwrap();
    let (a_key, latest) = (key("a"), GetOptions::default());
    let got = tokio::time::timeout(Duration::from_secs(60), store.get(&a_key, &latest))
        .await
        .expect("a consistent read must not wait for progress that never comes")
        .unwrap();
    assert_eq!(got.revision(), a.revision());
    let cached = store
        .get(&key("a"), &GetOptions { at: ReadAt::Any })
        .await
        .unwrap();
    assert!(!got.ptr_eq(&cached), "answered by the inner store");

    let b = create(store, "b", json!({})).await;
    let fresh = ListOptions {
        at: ReadAt::NotOlderThan(b.revision()),
        ..ListOptions::default()
    };
    let list = store.list(PREFIX, &fresh).await.unwrap();
    let got = store.get(&key("b"), &GetOptions::default()).await.unwrap();
    assert!(got.ptr_eq(&list.items[1]), "a provably fresh cache answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_cacher_stops_its_task() {
    let backend = Arc::new(SqliteBackend::open_in_memory().unwrap());
    let inner: Arc<dyn Store> = Arc::new(KvStore::new(backend));
    let inner_alive = Arc::downgrade(&inner);
    let cacher = Cacher::new(inner, PREFIX, CacherConfig::default());
    cacher.ready().await;
    let start = cacher.current_revision().await.unwrap();
    let mut w = cacher.watch(PREFIX, &watch_at(start)).await.unwrap();
    drop(cacher);
    let end = tokio::time::timeout(PATIENCE, w.next()).await;
    assert!(
        matches!(end, Ok(None)),
        "watchers end with the cacher: {end:?}"
    );
    // The reflector held the inner store; once it has stopped nothing does.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while inner_alive.upgrade().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reflector task outlived the cacher"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_outside_the_prefix_go_to_the_inner_store() {
    let f = fixture(CacherConfig::default()).await;
    let secret = "/registry/secrets/ns/s";
    f.cacher
        .create(secret, configmap("s", json!({})), None)
        .await
        .unwrap();
    let got = f.cacher.get(secret, &GetOptions::default()).await.unwrap();
    assert_eq!(name(&got), "s");
    let list = f
        .cacher
        .list("/registry/secrets/", &ListOptions::default())
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(f.cacher.count("/registry/secrets/").await.unwrap(), 1);
    assert_eq!(f.cacher.count(PREFIX).await.unwrap(), 0);
}

/// Ten thousand objects listed from memory: all of them, in key order, shared rather than
/// decoded again, and a filtered page finds the one match. (How fast: `benches/backends.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_ten_thousand_objects_from_memory() {
    let f = fixture(CacherConfig::default()).await;
    let writes = futures::stream::iter(0..10_000).map(|i| {
        let inner = f.inner.clone();
        async move {
            create(
                inner.as_ref(),
                &format!("o{i:05}"),
                json!({"i": i.to_string()}),
            )
            .await
        }
    });
    writes.buffer_unordered(64).for_each(|_| async {}).await;
    let revision = sync(&f).await;

    let any = ListOptions {
        at: ReadAt::Any,
        ..ListOptions::default()
    };
    let first = f.cacher.list(PREFIX, &any).await.unwrap();
    let consistent = f
        .cacher
        .list(PREFIX, &ListOptions::default())
        .await
        .unwrap();
    for list in [&first, &consistent] {
        assert_eq!(list.items.len(), 10_000);
        assert!(list.revision >= revision);
        assert_eq!(name(&list.items[0]), "o00000");
        assert_eq!(name(&list.items[9_999]), "o09999");
    }
    assert!(
        first
            .items
            .iter()
            .zip(&consistent.items)
            .all(|(a, b)| a.ptr_eq(b)),
        "both lists hand out the cached objects"
    );
    let page = f
        .cacher
        .list(
            PREFIX,
            &ListOptions {
                limit: Some(500),
                predicate: label_is("i", "9999"),
                ..ListOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.iter().map(name).collect::<Vec<_>>(), ["o09999"]);
}

/// The shared `Store` conformance suite, run over the cacher.
mod conformance {
    use super::*;
    use rkube_storage::testing::{PREFIX, StoreFixture};

    async fn store_fixture() -> StoreFixture {
        let backend: Arc<dyn KvBackend> = Arc::new(SqliteBackend::open_in_memory().unwrap());
        let inner: Arc<dyn Store> = Arc::new(KvStore::new(backend.clone()));
        let cacher = Cacher::new(
            inner,
            PREFIX,
            CacherConfig {
                freshness_timeout: Duration::from_millis(500),
                ..CacherConfig::default()
            },
        );
        cacher.ready().await;
        StoreFixture::new(cacher, backend, ())
    }

    rkube_storage::store_conformance_tests!(store_fixture);
}
