//! What is specific to etcd: connecting, TLS configuration, compaction and lease mapping, the
//! key layout other etcd tools see, and watch lifecycle. The shared behaviour of every backend
//! is in `conformance.rs`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use rkube_storage::{CasOutcome, KvBackend, KvEventKind, RangeRequest, StorageError};
use rkube_storage_etcd::testing::{EtcdServer, TlsFiles};
use rkube_storage_etcd::{EtcdBackend, EtcdConfig, progress_is_ordered};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long an event may take to arrive.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

async fn start() -> (EtcdServer, EtcdBackend) {
    let server = EtcdServer::start().await.expect("start etcd");
    let backend = EtcdBackend::connect(EtcdConfig::new(vec![server.endpoint()]))
        .await
        .expect("connect");
    (server, backend)
}

async fn raw_client(server: &EtcdServer) -> etcd_client::Client {
    etcd_client::Client::connect([server.endpoint()], None)
        .await
        .expect("raw etcd client")
}

async fn written(
    outcome: rkube_storage::Result<CasOutcome>,
) -> (u64, Option<rkube_storage::KeyValue>) {
    match outcome.expect("write") {
        CasOutcome::Written { revision, prev } => (revision, prev),
        CasOutcome::Mismatch { current } => panic!("expected a write, found {current:?}"),
    }
}

#[tokio::test]
async fn tls_files_that_are_missing_or_not_pem_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-ca.pem");
    let config = EtcdConfig {
        ca_file: Some(missing.clone()),
        ..EtcdConfig::new(vec!["https://127.0.0.1:2379".into()])
    };
    let err = EtcdBackend::connect(config).await.unwrap_err();
    assert!(matches!(err, StorageError::Unavailable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&*missing.to_string_lossy()),
        "{err}"
    );

    let garbage = dir.path().join("client.key");
    std::fs::write(&garbage, "definitely not a key").unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let cert = dir.path().join("client.crt");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let config = EtcdConfig {
        ca_file: Some(ca),
        cert_file: Some(cert),
        key_file: Some(garbage.clone()),
        ..EtcdConfig::new(vec!["https://127.0.0.1:2379".into()])
    };
    let err = EtcdBackend::connect(config).await.unwrap_err();
    assert!(
        err.to_string().contains(&*garbage.to_string_lossy()),
        "{err}"
    );
    assert!(err.to_string().contains("not PEM"), "{err}");
}

/// Makes a CA and one certificate for 127.0.0.1 usable by server and client, with openssl.
fn make_certificates(dir: &std::path::Path) -> TlsFiles {
    let openssl = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl (install the openssl package)");
        assert!(output.status.success(), "openssl {args:?}: {output:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509", "-days", "1", "-subj", "/CN=rkube-test-ca"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-subj", "/CN=127.0.0.1"][..],
            &ec,
            &["-keyout", "node.key", "-out", "node.csr"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write ext.cnf");
    openssl(&[
        "x509",
        "-req",
        "-days",
        "1",
        "-in",
        "node.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-extfile",
        "ext.cnf",
        "-out",
        "node.pem",
    ]);
    TlsFiles {
        ca_file: dir.join("ca.pem"),
        cert_file: dir.join("node.pem"),
        key_file: dir.join("node.key"),
    }
}

#[tokio::test]
async fn tls_with_client_certificates_works_and_requires_the_right_ca() {
    let dir = tempfile::tempdir().unwrap();
    let tls = make_certificates(dir.path());
    let server = EtcdServer::start_tls(tls.clone())
        .await
        .expect("start etcd with TLS");
    assert!(server.endpoint().starts_with("https://"));
    let backend = EtcdBackend::connect(server.client_config())
        .await
        .expect("connect over TLS");
    let (revision, _) = written(
        backend
            .create("/registry/secrets/ns/s", Bytes::from_static(b"x"), None)
            .await,
    )
    .await;
    assert_eq!(backend.current_revision().await.unwrap(), revision);

    // A CA that did not sign the server's certificate fails the handshake, naming the files.
    let other = tempfile::tempdir().unwrap();
    let stranger = make_certificates(other.path());
    let config = EtcdConfig {
        connect_timeout: Duration::from_secs(2),
        ..TlsFiles {
            ca_file: stranger.ca_file.clone(),
            ..tls
        }
        .client_config(server.endpoint())
    };
    let err = EtcdBackend::connect(config).await.unwrap_err();
    assert!(matches!(err, StorageError::Unavailable { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&*stranger.ca_file.to_string_lossy()),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_endpoint_fails_within_the_timeout_naming_it() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let config = EtcdConfig {
        connect_timeout: Duration::from_secs(1),
        ..EtcdConfig::new(vec![endpoint.clone()])
    };
    let started = Instant::now();
    let err = EtcdBackend::connect(config).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, StorageError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains(&endpoint), "{err}");
}

#[tokio::test]
async fn keys_land_at_the_exact_paths_given() {
    let (server, backend) = start().await;
    let key = "/registry/configmaps/default/cfg";
    let value = Bytes::from_static(br#"{"kind":"ConfigMap"}"#);
    let (revision, _) = written(backend.create(key, value.clone(), None).await).await;

    // What etcdctl or kube-apiserver would see.
    let mut raw = raw_client(&server).await;
    let all = raw
        .get("", Some(etcd_client::GetOptions::new().with_all_keys()))
        .await
        .unwrap();
    let keys: Vec<_> = all.kvs().iter().map(|kv| kv.key_str().unwrap()).collect();
    assert_eq!(keys, [key]);
    assert_eq!(all.kvs()[0].value(), &value[..]);
    assert_eq!(all.kvs()[0].mod_revision() as u64, revision);

    // And what etcd tools write, the backend reads.
    raw.put("/registry/configmaps/default/other", "x", None)
        .await
        .unwrap();
    let got = backend
        .get("/registry/configmaps/default/other", None)
        .await
        .unwrap();
    assert_eq!(got.kv.unwrap().value, Bytes::from_static(b"x"));
}

#[tokio::test]
async fn range_counts_from_the_start_key_to_the_end_of_the_prefix() {
    let (_server, backend) = start().await;
    for name in ["a", "b", "c"] {
        written(
            backend
                .create(
                    &format!("/registry/pods/ns/{name}"),
                    Bytes::from_static(b"{}"),
                    None,
                )
                .await,
        )
        .await;
    }
    // A key just past the prefix must not be counted.
    written(
        backend
            .create("/registry/pods0", Bytes::from_static(b"{}"), None)
            .await,
    )
    .await;
    let page = backend
        .range(RangeRequest {
            prefix: "/registry/pods/",
            start: Some("/registry/pods/ns/b"),
            limit: Some(1),
            ..RangeRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(page.kvs.len(), 1);
    assert_eq!(page.kvs[0].key, "/registry/pods/ns/b");
    assert!(page.more);
    assert_eq!(page.count, 2);
    assert_eq!(backend.count("/registry/pods/").await.unwrap(), 3);
}

#[tokio::test]
async fn conditional_writes_report_current_and_previous_values() {
    let (_server, backend) = start().await;
    let key = "/registry/secrets/ns/s";
    let (created, _) = written(backend.create(key, Bytes::from_static(b"v1"), None).await).await;

    match backend
        .create(key, Bytes::from_static(b"again"), None)
        .await
        .unwrap()
    {
        CasOutcome::Mismatch { current: Some(kv) } => {
            assert_eq!(kv.value, Bytes::from_static(b"v1"))
        }
        other => panic!("{other:?}"),
    }
    match backend
        .update(key, created + 100, Bytes::from_static(b"x"), None)
        .await
        .unwrap()
    {
        CasOutcome::Mismatch { current: Some(kv) } => assert_eq!(kv.mod_revision, created),
        other => panic!("{other:?}"),
    }
    let (updated, prev) = written(
        backend
            .update(key, created, Bytes::from_static(b"v2"), None)
            .await,
    )
    .await;
    assert_eq!(updated, created + 1);
    assert_eq!(prev.unwrap().value, Bytes::from_static(b"v1"));

    let (deleted, prev) = written(backend.delete(key, updated).await).await;
    assert_eq!(deleted, updated + 1);
    let prev = prev.unwrap();
    assert_eq!(
        (prev.value, prev.create_revision),
        (Bytes::from_static(b"v2"), created)
    );
    match backend.delete(key, updated).await.unwrap() {
        CasOutcome::Mismatch { current: None } => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn compacted_and_future_revisions_are_mapped() {
    let (_server, backend) = start().await;
    let key = "/registry/configmaps/ns/c";
    let (mut rev, _) = written(backend.create(key, Bytes::from_static(b"0"), None).await).await;
    for i in 1..4 {
        rev = written(
            backend
                .update(key, rev, Bytes::from(format!("{i}")), None)
                .await,
        )
        .await
        .0;
    }
    let compact_to = rev - 1;
    backend.compact(compact_to).await.unwrap();
    // Compacting again, or to an older revision, is not an error: that history is gone anyway.
    backend.compact(compact_to - 1).await.unwrap();

    let err = backend.get(key, Some(compact_to - 1)).await.unwrap_err();
    assert!(
        matches!(err, StorageError::Compacted { requested, compacted } if requested == compact_to - 1 && compacted == compact_to),
        "{err:?}"
    );
    let err = backend
        .range(RangeRequest {
            prefix: "/registry/configmaps/",
            revision: Some(compact_to - 2),
            ..RangeRequest::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::Compacted { compacted, .. } if compacted == compact_to),
        "{err:?}"
    );
    // The compaction point itself stays readable, and reports the revision asked for.
    let at = backend.get(key, Some(compact_to)).await.unwrap();
    assert_eq!(
        (at.revision, at.kv.unwrap().value),
        (compact_to, Bytes::from_static(b"2"))
    );

    let err = backend.get(key, Some(rev + 10)).await.unwrap_err();
    assert!(
        matches!(err, StorageError::TooLargeResourceVersion { requested, current } if requested == rev + 10 && current == rev),
        "{err:?}"
    );

    // A watch from before the compaction point fails with `Compacted`, then ends.
    let mut watch = backend
        .watch("/registry/configmaps/", compact_to - 2)
        .await
        .unwrap();
    let first = tokio::time::timeout(EVENT_TIMEOUT, watch.responses.next())
        .await
        .unwrap();
    assert!(
        matches!(first, Some(Err(StorageError::Compacted { requested, compacted })) if requested == compact_to - 1 && compacted == compact_to),
        "{first:?}"
    );
    assert!(watch.responses.next().await.is_none());
}

#[tokio::test]
async fn ttl_expiry_emits_a_delete_event() {
    let (_server, backend) = start().await;
    let key = "/registry/events/ns/e";
    let (created, _) = written(
        backend
            .create(
                key,
                Bytes::from_static(b"event"),
                Some(Duration::from_secs(1)),
            )
            .await,
    )
    .await;
    let mut watch = backend.watch("/registry/events/", created).await.unwrap();
    let response = tokio::time::timeout(EVENT_TIMEOUT, async {
        loop {
            let response = watch.responses.next().await.unwrap().unwrap();
            if !response.events.is_empty() {
                return response;
            }
        }
    })
    .await
    .expect("the key expires");
    let event = &response.events[0];
    assert_eq!(event.kind, KvEventKind::Delete);
    assert_eq!(event.kv.key, key);
    assert!(event.kv.mod_revision > created);
    assert_eq!(
        event.prev.as_ref().unwrap().value,
        Bytes::from_static(b"event")
    );
    assert!(backend.get(key, None).await.unwrap().kv.is_none());
}

#[tokio::test]
async fn similar_ttls_share_one_lease() {
    let (server, backend) = start().await;
    let ttl = Some(Duration::from_secs(3600));
    for name in ["a", "b"] {
        written(
            backend
                .create(
                    &format!("/registry/events/ns/{name}"),
                    Bytes::from_static(b"{}"),
                    ttl,
                )
                .await,
        )
        .await;
    }
    // A short TTL has no slack to share, so it gets its own lease.
    written(
        backend
            .create(
                "/registry/events/ns/short",
                Bytes::from_static(b"{}"),
                Some(Duration::from_secs(5)),
            )
            .await,
    )
    .await;
    let mut raw = raw_client(&server).await;
    let leases = raw.leases().await.unwrap();
    assert_eq!(leases.leases().len(), 2, "{leases:?}");
    let kvs = raw
        .get(
            "/registry/events/",
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    let lease_of = |name: &str| {
        kvs.kvs()
            .iter()
            .find(|kv| kv.key_str().unwrap().ends_with(name))
            .unwrap()
            .lease()
    };
    assert_eq!(lease_of("/a"), lease_of("/b"));
    assert_ne!(lease_of("/a"), lease_of("/short"));
    let ttl = raw.lease_time_to_live(lease_of("/a"), None).await.unwrap();
    assert!(
        (3600..=3600 + 60).contains(&ttl.granted_ttl()),
        "{}",
        ttl.granted_ttl()
    );

    // An update without a TTL detaches the key from its lease.
    let current = backend
        .get("/registry/events/ns/a", None)
        .await
        .unwrap()
        .kv
        .unwrap();
    written(
        backend
            .update(
                "/registry/events/ns/a",
                current.mod_revision,
                Bytes::from_static(b"[]"),
                None,
            )
            .await,
    )
    .await;
    let got = raw.get("/registry/events/ns/a", None).await.unwrap();
    assert_eq!(got.kvs()[0].lease(), 0);
}

#[tokio::test]
async fn watch_delivers_deletes_with_previous_value_and_progress_only_when_ordered() {
    let (server, backend) = start().await;
    let key = "/registry/pods/ns/p";
    let start_rev = backend.current_revision().await.unwrap();
    let mut watch = backend.watch("/registry/pods/", start_rev).await.unwrap();
    let (created, _) = written(backend.create(key, Bytes::from_static(b"v1"), None).await).await;
    let (deleted, _) = written(backend.delete(key, created).await).await;

    let mut events = Vec::new();
    while events.len() < 2 {
        let response = tokio::time::timeout(EVENT_TIMEOUT, watch.responses.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        events.extend(response.events);
    }
    assert_eq!(events[0].kind, KvEventKind::Put);
    assert_eq!(
        (events[0].kv.create_revision, events[0].kv.mod_revision),
        (created, created)
    );
    assert_eq!(events[1].kind, KvEventKind::Delete);
    assert_eq!(events[1].kv.mod_revision, deleted);
    assert!(events[1].kv.value.is_empty());
    assert_eq!(
        events[1].prev.as_ref().unwrap().value,
        Bytes::from_static(b"v1")
    );

    // Progress requests are offered only by an etcd that answers them in order.
    let status = raw_client(&server).await.status().await.unwrap();
    match (&watch.progress, progress_is_ordered(status.version())) {
        (Some(progress), true) => {
            progress.request();
            let answer = tokio::time::timeout(EVENT_TIMEOUT, watch.responses.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert!(answer.events.is_empty());
            assert_eq!(answer.revision, deleted);
        }
        (None, false) => {}
        (offered, ordered) => panic!(
            "etcd {} orders progress: {ordered}, but the watch offers it: {}",
            status.version(),
            offered.is_some()
        ),
    }
}

#[tokio::test]
async fn dropping_a_watch_cancels_it_in_etcd() {
    let (server, backend) = start().await;
    let watches =
        || async { etcd_gauge(&server.endpoint(), "etcd_debugging_mvcc_watcher_total").await };
    let watch = backend.watch("/registry/pods/", 0).await.unwrap();
    wait_for(|| async { watches().await == 1.0 }).await;
    drop(watch);
    wait_for(|| async { watches().await == 0.0 }).await;
}

/// Waits until `condition` holds, polling, or fails the test after `EVENT_TIMEOUT`.
async fn wait_for<F: std::future::Future<Output = bool>>(condition: impl Fn() -> F) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "condition not met in {EVENT_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A gauge from etcd's Prometheus endpoint (served on the client URL).
async fn etcd_gauge(endpoint: &str, name: &str) -> f64 {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect to etcd metrics");
    stream
        .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .await
        .expect("request metrics");
    let mut body = String::new();
    stream
        .read_to_string(&mut body)
        .await
        .expect("read metrics");
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in etcd metrics"))
}

/// A list or a watch replay larger than gRPC's default 4 MiB message limit is delivered whole:
/// a few thousand ordinary objects reach that size.
#[tokio::test]
async fn responses_beyond_four_mebibytes_are_delivered() {
    let (_server, backend) = start().await;
    let start_revision = backend.current_revision().await.unwrap();
    let value = Bytes::from(vec![b'x'; 1 << 20]);
    for i in 0..6 {
        let outcome = backend
            .create(&format!("/big/{i}"), value.clone(), None)
            .await
            .unwrap();
        assert!(matches!(outcome, CasOutcome::Written { .. }));
    }
    let range = backend
        .range(RangeRequest {
            prefix: "/big/",
            ..RangeRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(range.kvs.len(), 6);
    assert!(range.kvs.iter().all(|kv| kv.value.len() == 1 << 20));
    let mut watch = backend.watch("/big/", start_revision).await.unwrap();
    let mut events = 0;
    while events < 6 {
        let response = tokio::time::timeout(EVENT_TIMEOUT, watch.responses.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        events += response.events.len();
    }
    assert_eq!(events, 6);
}
