//! Storage benchmark: each rkube backend next to its raw engine, measured in the same run.
//!
//! `cargo bench -p rkube-storage --bench backends` (needs `etcd` on PATH for the etcd part).
//! `RKUBE_BENCH_KEYS` sets the number of keys (default 10000).
//!
//! Baselines: raw SQLite through rusqlite with the same pragmas rkube uses (WAL,
//! `synchronous=FULL`, one transaction per write), and raw etcd puts/gets/ranges through
//! etcd-client against the same etcd process. Ratios are rkube's rate over the baseline's.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use rkube_storage::cacher::CacherConfig;
use rkube_storage::{
    Cacher, GetOptions, KvBackend, KvStore, ListOptions, Preconditions, ReadAt, Store, Update,
    WatchEvent, WatchOptions, WatchStart,
};
use rkube_storage_etcd::testing::EtcdServer;
use rkube_storage_etcd::{EtcdBackend, EtcdConfig};
use rkube_storage_sqlite::SqliteBackend;
use serde_json::{Value, json};

const PREFIX: &str = "/registry/configmaps/";
const WATCHED_WRITES: usize = 1000;
const LIST_REPEATS: usize = 15;

fn key(i: usize) -> String {
    format!("{PREFIX}bench/cm-{i:06}")
}

/// A ConfigMap of the size Helm charts typically ship (about 600 bytes of JSON).
fn configmap(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("cm-{i:06}"), "namespace": "bench",
            "uid": format!("3f0e2d1c-0000-4000-8000-{i:012}"),
            "labels": {"app.kubernetes.io/name": "bench", "app.kubernetes.io/instance": "run"},
            "annotations": {"meta.helm.sh/release-name": "bench"}},
        "data": {"config.yaml": "server:\n  port: 8080\n  workers: 4\nlogging:\n  level: info\n  format: json\n",
                 "feature-flags": "alpha=false,beta=true,gamma=false,delta=true,epsilon=false"}
    })
}

fn bytes_of(i: usize) -> Bytes {
    Bytes::from(serde_json::to_vec(&configmap(i)).unwrap())
}

struct Row {
    engine: &'static str,
    op: String,
    rkube: Measure,
    baseline: Option<Measure>,
    target: &'static str,
}

#[derive(Clone, Copy)]
enum Measure {
    Rate(f64),
    Millis(f64),
    Latency { p50: Duration, p99: Duration },
}

impl Measure {
    fn rate(ops: usize, elapsed: Duration) -> Self {
        Measure::Rate(ops as f64 / elapsed.as_secs_f64())
    }

    fn show(&self) -> String {
        match self {
            Measure::Rate(r) => format!("{r:>10.0} ops/s"),
            Measure::Millis(ms) => format!("{ms:>10.2} ms"),
            Measure::Latency { p50, p99 } => format!(
                "p50 {:.3} ms / p99 {:.3} ms",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            ),
        }
    }

    /// How rkube compares to the baseline: > 1 means rkube is faster.
    fn ratio(&self, baseline: &Measure) -> Option<f64> {
        match (self, baseline) {
            (Measure::Rate(a), Measure::Rate(b)) => Some(a / b),
            (Measure::Millis(a), Measure::Millis(b)) => Some(b / a),
            _ => None,
        }
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

async fn time<F, Fut>(mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    f().await;
    start.elapsed()
}

/// Creates, updates, gets and lists through rkube's object store, and watch latency through
/// the store and the watch cache over it.
async fn rkube_ops(
    engine: &'static str,
    backend: Arc<dyn KvBackend>,
    n: usize,
    rows: &mut Vec<Row>,
    base: &Baseline,
) {
    let store: Arc<dyn Store> = Arc::new(KvStore::new(Arc::clone(&backend)));

    // Byte-level creates, then object-level creates under a second prefix.
    let elapsed = time(|| async {
        for i in 0..n {
            let k = format!("/bench/raw/{i:06}");
            backend.create(&k, bytes_of(i), None).await.unwrap();
        }
    })
    .await;
    rows.push(Row {
        engine,
        op: format!("create x{n} (KvBackend)"),
        rkube: Measure::rate(n, elapsed),
        baseline: Some(base.create),
        target: "",
    });
    let elapsed = time(|| async {
        for i in 0..n {
            store.create(&key(i), configmap(i), None).await.unwrap();
        }
    })
    .await;
    rows.push(Row {
        engine,
        op: format!("create x{n} (Store)"),
        rkube: Measure::rate(n, elapsed),
        baseline: Some(base.create),
        target: ">= 0.5x raw",
    });

    // 32 concurrent writers: what group commit buys.
    let elapsed = time(|| async {
        let tasks: Vec<_> = (0..32)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for i in (w..n).step_by(32) {
                        let k = format!("{PREFIX}concurrent/cm-{i:06}");
                        store.create(&k, configmap(i), None).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await;
    rows.push(Row {
        engine,
        op: format!("create x{n} (Store, 32 writers)"),
        rkube: Measure::rate(n, elapsed),
        baseline: Some(base.create),
        target: "",
    });

    let updates = n.min(2000);
    let elapsed = time(|| async {
        for i in 0..updates {
            store
                .guaranteed_update(&key(i), &Preconditions::default(), false, &mut |cur| {
                    async move {
                        let mut v = cur.unwrap().into_value();
                        v["data"]["feature-flags"] = json!("alpha=true");
                        Ok(Update::new(v))
                    }
                    .boxed()
                })
                .await
                .unwrap();
        }
    })
    .await;
    rows.push(Row {
        engine,
        op: format!("update x{updates} (guaranteed_update)"),
        rkube: Measure::rate(updates, elapsed),
        baseline: Some(base.update),
        target: "",
    });

    let elapsed = time(|| async {
        for i in 0..n {
            store.get(&key(i), &GetOptions::default()).await.unwrap();
        }
    })
    .await;
    rows.push(Row {
        engine,
        op: format!("get x{n} (Store, consistent)"),
        rkube: Measure::rate(n, elapsed),
        baseline: Some(base.get),
        target: "",
    });

    let cacher = Cacher::new(Arc::clone(&store), PREFIX, CacherConfig::default());
    cacher.ready().await;
    let lists: [(&str, &dyn Store, ReadAt, &'static str); 3] = [
        ("Store", store.as_ref(), ReadAt::Latest, ""),
        ("watch cache, rv=0", cacher.as_ref(), ReadAt::Any, "< 20 ms"),
        (
            "watch cache, consistent",
            cacher.as_ref(),
            ReadAt::Latest,
            "< 20 ms",
        ),
    ];
    for (what, source, at, target) in lists {
        let options = ListOptions {
            at,
            ..ListOptions::default()
        };
        rows.push(Row {
            engine,
            op: format!("list {n}+ ({what})"),
            rkube: list_time(source, &options, n).await,
            baseline: Some(base.list),
            target,
        });
    }

    let store_watch = watch_latency(&store, &store, "store").await;
    rows.push(Row {
        engine,
        op: format!("watch delivery x{WATCHED_WRITES} (Store)"),
        rkube: store_watch,
        baseline: None,
        target: "",
    });
    let cache_store: Arc<dyn Store> = cacher;
    let cached_watch = watch_latency(&cache_store, &store, "cache").await;
    rows.push(Row {
        engine,
        op: format!("watch delivery x{WATCHED_WRITES} (watch cache)"),
        rkube: cached_watch,
        baseline: None,
        target: "p99 < 2 ms",
    });
}

/// The median time of listing every object under the prefix (at least `n`).
async fn list_time(source: &dyn Store, options: &ListOptions, n: usize) -> Measure {
    let mut samples = Vec::new();
    for _ in 0..LIST_REPEATS {
        samples.push(
            time(|| async {
                let list = source.list(PREFIX, options).await.unwrap();
                assert!(list.items.len() >= n);
            })
            .await,
        );
    }
    Measure::Millis(median(samples).as_secs_f64() * 1e3)
}

/// Time from a write being acknowledged to a watcher of `watched` receiving it.
async fn watch_latency(watched: &Arc<dyn Store>, writer: &Arc<dyn Store>, tag: &str) -> Measure {
    let start = writer.current_revision().await.unwrap();
    let mut stream = watched
        .watch(
            PREFIX,
            &WatchOptions {
                start: WatchStart::At(start),
                ..WatchOptions::default()
            },
        )
        .await
        .unwrap();
    let received: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let sink = Arc::clone(&received);
    let reader = tokio::spawn(async move {
        let mut seen = 0;
        while seen < WATCHED_WRITES {
            match stream.next().await {
                Some(WatchEvent::Added(o)) => {
                    sink.lock()
                        .unwrap()
                        .insert(o.key().to_string(), Instant::now());
                    seen += 1;
                }
                Some(WatchEvent::Error(e)) => panic!("watch failed: {e}"),
                Some(_) => {}
                None => panic!("watch ended"),
            }
        }
    });
    let mut acked = Vec::with_capacity(WATCHED_WRITES);
    for i in 0..WATCHED_WRITES {
        let k = format!("{PREFIX}watch-{tag}/cm-{i:06}");
        writer.create(&k, configmap(i), None).await.unwrap();
        acked.push((k, Instant::now()));
    }
    tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .unwrap()
        .unwrap();
    let received = received.lock().unwrap();
    let mut latencies: Vec<Duration> = acked
        .iter()
        .map(|(k, ack)| received[k].saturating_duration_since(*ack))
        .collect();
    latencies.sort();
    Measure::Latency {
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    }
}

struct Baseline {
    create: Measure,
    update: Measure,
    get: Measure,
    list: Measure,
}

/// Raw SQLite with rkube's pragmas: one transaction per write, like rkube's sequential path.
fn sqlite_baseline(path: &std::path::Path, n: usize) -> Baseline {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute(
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
        [],
    )
    .unwrap();
    let start = Instant::now();
    for i in 0..n {
        let tx = conn.transaction().unwrap();
        tx.execute(
            "INSERT INTO kv (key, value) VALUES (?1, ?2)",
            rusqlite::params![key(i), &bytes_of(i)[..]],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let create = Measure::rate(n, start.elapsed());
    let updates = n.min(2000);
    let start = Instant::now();
    for i in 0..updates {
        let tx = conn.transaction().unwrap();
        tx.execute(
            "UPDATE kv SET value = ?2 WHERE key = ?1",
            rusqlite::params![key(i), &bytes_of(i + 1)[..]],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let update = Measure::rate(updates, start.elapsed());
    let start = Instant::now();
    {
        let mut stmt = conn
            .prepare_cached("SELECT value FROM kv WHERE key = ?1")
            .unwrap();
        for i in 0..n {
            let v: Vec<u8> = stmt.query_row([key(i)], |r| r.get(0)).unwrap();
            assert!(!v.is_empty());
        }
    }
    let get = Measure::rate(n, start.elapsed());
    let mut samples = Vec::new();
    for _ in 0..LIST_REPEATS {
        let start = Instant::now();
        let mut stmt = conn
            .prepare_cached("SELECT key, value FROM kv ORDER BY key")
            .unwrap();
        let rows: Vec<(String, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), n);
        samples.push(start.elapsed());
    }
    Baseline {
        create,
        update,
        get,
        list: Measure::Millis(median(samples).as_secs_f64() * 1e3),
    }
}

/// Raw etcd-client puts, gets and ranges against the same etcd process.
async fn etcd_baseline(endpoint: &str, n: usize) -> Baseline {
    // The same response-size limit rkube sets: gRPC's default 4 MiB fails a 10k list.
    let mut client = etcd_client::Client::connect([endpoint], None)
        .await
        .unwrap()
        .kv_client()
        .max_decoding_message_size(i32::MAX as usize);
    let raw = |i: usize| format!("/baseline/configmaps/bench/cm-{i:06}");
    let start = Instant::now();
    for i in 0..n {
        client
            .put(raw(i), bytes_of(i).to_vec(), None)
            .await
            .unwrap();
    }
    let create = Measure::rate(n, start.elapsed());
    let updates = n.min(2000);
    let start = Instant::now();
    for i in 0..updates {
        client
            .put(raw(i), bytes_of(i + 1).to_vec(), None)
            .await
            .unwrap();
    }
    let update = Measure::rate(updates, start.elapsed());
    let start = Instant::now();
    for i in 0..n {
        let resp = client.get(raw(i), None).await.unwrap();
        assert_eq!(resp.kvs().len(), 1);
    }
    let get = Measure::rate(n, start.elapsed());
    let mut samples = Vec::new();
    for _ in 0..LIST_REPEATS {
        let start = Instant::now();
        let resp = client
            .get(
                "/baseline/configmaps/",
                Some(etcd_client::GetOptions::new().with_prefix()),
            )
            .await
            .unwrap();
        assert_eq!(resp.kvs().len(), n);
        samples.push(start.elapsed());
    }
    Baseline {
        create,
        update,
        get,
        list: Measure::Millis(median(samples).as_secs_f64() * 1e3),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter we do not support.
    let n: usize = std::env::var("RKUBE_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let base = sqlite_baseline(&dir.path().join("raw.db"), n);
        let backend: Arc<dyn KvBackend> =
            Arc::new(SqliteBackend::open(&dir.path().join("rkube.db")).unwrap());
        rkube_ops("sqlite", backend, n, &mut rows, &base).await;

        match EtcdServer::start().await {
            Ok(etcd) => {
                let base = etcd_baseline(&etcd.endpoint(), n).await;
                let backend = EtcdBackend::connect(EtcdConfig::new(vec![etcd.endpoint()]))
                    .await
                    .unwrap();
                rkube_ops("etcd", Arc::new(backend), n, &mut rows, &base).await;
            }
            Err(e) => println!("etcd part skipped: {e}"),
        }
    });
    println!("\nrkube storage benchmark, {n} keys (ratio = rkube / raw engine, higher is better)");
    println!(
        "{:<7} {:<42} {:>30} {:>30} {:>7}  target",
        "engine", "operation", "rkube", "raw engine", "ratio"
    );
    for row in rows {
        let base = row.baseline.map(|b| b.show()).unwrap_or_default();
        let ratio = row
            .baseline
            .and_then(|b| row.rkube.ratio(&b))
            .map(|r| format!("{r:.2}x"))
            .unwrap_or_default();
        println!(
            "{:<7} {:<42} {:>30} {:>30} {:>7}  {}",
            row.engine,
            row.op,
            row.rkube.show(),
            base,
            ratio,
            row.target
        );
    }
}
