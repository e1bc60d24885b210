//! Conformance cases for [`Store`](crate::Store): kube-apiserver's `storage.Interface` semantics.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use serde_json::{Value, json};

use super::{PREFIX, StoreFixture, assert_quiet, key, next_within, object};
use crate::{
    BoxError, GetOptions, ListOptions, Object, ObjectList, Preconditions, Predicate, ReadAt,
    StorageError, Update, WatchEvent, WatchOptions, WatchStart, WatchStream,
};

async fn create(f: &StoreFixture, name: &str, labels: Value) -> Object {
    f.store
        .create(&key(name), object(name, labels, json!({"v": "1"})), None)
        .await
        .unwrap()
}

async fn get(f: &StoreFixture, name: &str) -> crate::Result<Object> {
    f.store.get(&key(name), &GetOptions::default()).await
}

async fn list(f: &StoreFixture, options: ListOptions) -> ObjectList {
    f.store.list(PREFIX, &options).await.unwrap()
}

fn names(list: &[Object]) -> Vec<String> {
    list.iter()
        .map(|o| {
            rkube_api::meta::name(o.value())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn label_is(label: &'static str, value: &'static str) -> Predicate {
    Predicate::new(move |o| {
        rkube_api::meta::labels(o)
            .and_then(|l| l.get(label))
            .and_then(Value::as_str)
            == Some(value)
    })
}

/// Changes an object through a guaranteed update.
async fn update_with(
    f: &StoreFixture,
    name: &str,
    change: impl Fn(&mut Value) + Send + Sync,
) -> Object {
    f.store
        .guaranteed_update(&key(name), &Preconditions::default(), false, &mut |cur| {
            let mut value = cur.expect("exists").into_value();
            change(&mut value);
            async move { Ok(Update::new(value)) }.boxed()
        })
        .await
        .unwrap()
}

/// Sets `data.v`.
async fn set_data(f: &StoreFixture, name: &str, v: &str) -> Object {
    update_with(f, name, |value| value["data"]["v"] = json!(v)).await
}

/// Replaces `metadata.labels`.
async fn set_labels(f: &StoreFixture, name: &str, labels: Value) -> Object {
    update_with(f, name, |value| {
        value["metadata"]["labels"] = labels.clone()
    })
    .await
}

async fn delete(f: &StoreFixture, name: &str) -> Object {
    f.store
        .delete(&key(name), &Preconditions::default(), None)
        .await
        .unwrap()
}

fn rv(o: &Object) -> String {
    rkube_api::meta::resource_version(o.value())
        .unwrap_or_default()
        .to_string()
}

/// A created object carries its revision as resourceVersion, reads back equal, cannot be
/// created twice, and a missing key is `NotFound`.
pub async fn create_then_get(f: &StoreFixture) {
    let created = create(f, "a", json!({})).await;
    assert_eq!(rv(&created), created.revision().to_string());
    assert_eq!(created.key(), key("a"));
    let got = get(f, "a").await.unwrap();
    assert_eq!(got.value(), created.value());
    assert_eq!(got.revision(), created.revision());
    let again = f
        .store
        .create(&key("a"), object("a", json!({}), json!({})), None)
        .await;
    assert!(
        matches!(again, Err(StorageError::AlreadyExists { .. })),
        "{again:?}"
    );
    assert!(get(f, "missing").await.unwrap_err().is_not_found());
}

/// Upstream refuses a resourceVersion on an object to be created.
pub async fn create_refuses_resource_version(f: &StoreFixture) {
    let mut value = object("a", json!({}), json!({}));
    value["metadata"]["resourceVersion"] = json!("12");
    let err = f.store.create(&key("a"), value, None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("resourceVersion should not be set on objects to be created"),
        "{err}"
    );
    let not_an_object = f.store.create(&key("b"), json!([1]), None).await;
    assert!(matches!(
        not_an_object,
        Err(StorageError::InvalidObject { .. })
    ));
}

/// `NotOlderThan` is served once the store has the revision, and refused beyond it.
pub async fn get_not_older_than(f: &StoreFixture) {
    let created = create(f, "a", json!({})).await;
    let at = |r| GetOptions {
        at: ReadAt::NotOlderThan(r),
    };
    let got = f
        .store
        .get(&key("a"), &at(created.revision()))
        .await
        .unwrap();
    assert_eq!(got.revision(), created.revision());
    let any = f
        .store
        .get(&key("a"), &GetOptions { at: ReadAt::Any })
        .await
        .unwrap();
    assert_eq!(any.revision(), created.revision());
    let future = created.revision() + 1000;
    let err = f.store.get(&key("a"), &at(future)).await.unwrap_err();
    assert!(
        matches!(err, StorageError::TooLargeResourceVersion { .. }),
        "{err:?}"
    );
}

/// A list returns objects in key order with their own resourceVersions, at a list revision not
/// older than any of them, filtered by the predicate.
pub async fn list_in_key_order_with_predicate(f: &StoreFixture) {
    create(f, "c", json!({"tier": "web"})).await;
    create(f, "a", json!({"tier": "db"})).await;
    let b = create(f, "b", json!({"tier": "web"})).await;
    // Outside the prefix: never listed.
    f.store
        .create(
            "/registry/elsewhere/ns/x",
            object("x", json!({}), json!({})),
            None,
        )
        .await
        .unwrap();
    let all = list(f, ListOptions::default()).await;
    assert_eq!(names(&all.items), ["a", "b", "c"]);
    assert!(all.revision >= b.revision());
    assert_eq!(rv(&all.items[1]), b.revision().to_string());
    assert!(all.continue_token.is_none() && all.remaining_item_count.is_none());
    let web = list(
        f,
        ListOptions {
            predicate: label_is("tier", "web"),
            ..ListOptions::default()
        },
    )
    .await;
    assert_eq!(names(&web.items), ["b", "c"]);
}

/// Pages of a limited list are read at the first page's revision: writes made between pages
/// do not show; `remainingItemCount` counts what is left.
pub async fn list_paginates_consistently(f: &StoreFixture) {
    for i in 0..10 {
        create(f, &format!("o{i}"), json!({})).await;
    }
    let limited = |token: Option<String>| ListOptions {
        limit: Some(3),
        continue_token: token,
        ..ListOptions::default()
    };
    let first = list(f, limited(None)).await;
    assert_eq!(names(&first.items), ["o0", "o1", "o2"]);
    assert_eq!(first.remaining_item_count, Some(7));
    // Changes after the first page must not leak into later pages.
    delete(f, "o5").await;
    create(f, "o45", json!({})).await;
    set_data(f, "o4", "changed").await;
    let mut seen = names(&first.items);
    let mut token = first.continue_token.clone();
    let mut remaining = vec![];
    while let Some(t) = token {
        let page = list(f, limited(Some(t))).await;
        assert_eq!(
            page.revision, first.revision,
            "every page at the first page's revision"
        );
        remaining.push(page.remaining_item_count);
        seen.extend(names(&page.items));
        token = page.continue_token;
    }
    let expected: Vec<String> = (0..10).map(|i| format!("o{i}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(remaining, [Some(4), Some(1), None]);
    let o4 = list(f, limited(None)).await;
    assert_eq!(o4.items.len(), 3, "a fresh list sees the new state");
}

/// A limit counts matching objects only: a filtered list still returns full pages.
pub async fn list_paginates_through_a_predicate(f: &StoreFixture) {
    for i in 0..20 {
        let tier = if i % 3 == 0 { "web" } else { "db" };
        create(f, &format!("o{i:02}"), json!({"tier": tier})).await;
    }
    let mut token = None;
    let mut pages = vec![];
    loop {
        let page = list(
            f,
            ListOptions {
                limit: Some(2),
                continue_token: token,
                predicate: label_is("tier", "web"),
                ..ListOptions::default()
            },
        )
        .await;
        assert!(
            page.remaining_item_count.is_none(),
            "unknown under a filter"
        );
        pages.push(names(&page.items));
        token = page.continue_token;
        if token.is_none() {
            break;
        }
    }
    let flat: Vec<String> = pages.concat();
    assert_eq!(flat, ["o00", "o03", "o06", "o09", "o12", "o15", "o18"]);
    assert!(
        pages[..pages.len() - 1].iter().all(|p| p.len() == 2),
        "{pages:?}"
    );
}

/// Continue tokens that do not decode are `InvalidContinue`.
pub async fn list_rejects_bad_continue_tokens(f: &StoreFixture) {
    create(f, "a", json!({})).await;
    for bad in [
        "not-base64!!",
        "e30",
        "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MCwic3RhcnQiOiJ4In0",
    ] {
        let err = f
            .store
            .list(
                PREFIX,
                &ListOptions {
                    continue_token: Some(bad.into()),
                    ..ListOptions::default()
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidContinue(_)),
            "{bad}: {err:?}"
        );
    }
}

/// `Exact` lists the state at a past revision; below the compaction point it is `Compacted`.
pub async fn list_exact_revision_and_compaction(f: &StoreFixture) {
    let a = create(f, "a", json!({})).await;
    let past = a.revision();
    set_data(f, "a", "2").await;
    create(f, "b", json!({})).await;
    let old = list(
        f,
        ListOptions {
            at: ReadAt::Exact(past),
            ..ListOptions::default()
        },
    )
    .await;
    assert_eq!(names(&old.items), ["a"]);
    assert_eq!(old.revision, past);
    assert_eq!(old.items[0].value()["data"]["v"], json!("1"));
    let now = f.store.current_revision().await.unwrap();
    f.backend.compact(now).await.unwrap();
    let err = f
        .store
        .list(
            PREFIX,
            &ListOptions {
                at: ReadAt::Exact(past),
                ..ListOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Compacted { .. }), "{err:?}");
}

/// A continue token whose revision has been compacted away is `Compacted` (the API server's
/// 410 Expired).
pub async fn list_continue_after_compaction_expires(f: &StoreFixture) {
    for i in 0..4 {
        create(f, &format!("o{i}"), json!({})).await;
    }
    let first = list(
        f,
        ListOptions {
            limit: Some(2),
            ..ListOptions::default()
        },
    )
    .await;
    set_data(f, "o0", "2").await;
    let now = f.store.current_revision().await.unwrap();
    f.backend.compact(now).await.unwrap();
    let err = f
        .store
        .list(
            PREFIX,
            &ListOptions {
                limit: Some(2),
                continue_token: first.continue_token,
                ..ListOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Compacted { .. }), "{err:?}");
}

/// A guaranteed update writes a new revision; an update that changes nothing writes nothing
/// and returns the current object.
pub async fn guaranteed_update_writes_and_skips_no_ops(f: &StoreFixture) {
    let created = create(f, "a", json!({})).await;
    let updated = set_data(f, "a", "2").await;
    assert!(updated.revision() > created.revision());
    assert_eq!(get(f, "a").await.unwrap().value()["data"]["v"], json!("2"));
    let before = f.store.current_revision().await.unwrap();
    let same = set_data(f, "a", "2").await;
    assert_eq!(
        same.revision(),
        updated.revision(),
        "no-op returns the current object"
    );
    assert_eq!(
        f.store.current_revision().await.unwrap(),
        before,
        "no-op writes nothing"
    );
    // The resourceVersion the update function leaves in the object does not matter.
    let kept = f
        .store
        .guaranteed_update(&key("a"), &Preconditions::default(), false, &mut |cur| {
            async move {
                let mut value = cur.expect("exists").into_value();
                value["metadata"]["resourceVersion"] = json!("1");
                Ok(Update::new(value))
            }
            .boxed()
        })
        .await
        .unwrap();
    assert_eq!(kept.revision(), updated.revision());
}

/// uid and resourceVersion preconditions are checked against the current object.
pub async fn guaranteed_update_checks_preconditions(f: &StoreFixture) {
    let mut value = object("a", json!({}), json!({}));
    value["metadata"]["uid"] = json!("uid-1");
    let created = f.store.create(&key("a"), value, None).await.unwrap();
    let noop = &mut |cur: Option<Object>| {
        async move { Ok(Update::new(cur.expect("exists").into_value())) }.boxed()
    };
    let good = Preconditions {
        uid: Some("uid-1".into()),
        resource_version: Some(created.revision().to_string()),
    };
    f.store
        .guaranteed_update(&key("a"), &good, false, noop)
        .await
        .unwrap();
    for bad in [
        Preconditions {
            uid: Some("uid-2".into()),
            ..Preconditions::default()
        },
        Preconditions {
            resource_version: Some((created.revision() + 7).to_string()),
            ..Preconditions::default()
        },
    ] {
        let err = f
            .store
            .guaranteed_update(&key("a"), &bad, false, noop)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StorageError::Conflict { message, .. } if message.starts_with("Precondition failed")),
            "{err:?}"
        );
    }
    let missing = f
        .store
        .guaranteed_update(&key("none"), &Preconditions::default(), false, noop)
        .await;
    assert!(missing.unwrap_err().is_not_found());
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused by the caller")
    }
}

impl std::error::Error for Refused {}

/// An update function's error aborts the update and comes back unchanged inside `Rejected`.
pub async fn guaranteed_update_passes_rejections_through(f: &StoreFixture) {
    let created = create(f, "a", json!({})).await;
    let err = f
        .store
        .guaranteed_update(&key("a"), &Preconditions::default(), false, &mut |_| {
            async { Err::<Update, BoxError>(Box::new(Refused)) }.boxed()
        })
        .await
        .unwrap_err();
    match err {
        StorageError::Rejected(inner) => assert!(inner.downcast_ref::<Refused>().is_some()),
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(get(f, "a").await.unwrap().revision(), created.revision());
}

/// With `ignore_not_found`, the update function sees `None` and its result is created.
pub async fn guaranteed_update_may_create(f: &StoreFixture) {
    let created = f
        .store
        .guaranteed_update(&key("new"), &Preconditions::default(), true, &mut |cur| {
            async move {
                assert!(cur.is_none());
                Ok(Update::new(object("new", json!({}), json!({"v": "0"}))))
            }
            .boxed()
        })
        .await
        .unwrap();
    assert_eq!(get(f, "new").await.unwrap().revision(), created.revision());
}

/// 32 tasks each incrementing one counter 5 times: no update is lost.
pub async fn concurrent_guaranteed_updates_lose_nothing(f: &StoreFixture) {
    f.store
        .create(
            &key("counter"),
            object("counter", json!({}), json!({"n": 0})),
            None,
        )
        .await
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = Arc::clone(&f.store);
            tokio::spawn(async move {
                for _ in 0..5 {
                    store
                        .guaranteed_update(
                            &key("counter"),
                            &Preconditions::default(),
                            false,
                            &mut |cur| {
                                async move {
                                    let mut value = cur.expect("exists").into_value();
                                    let n = value["data"]["n"].as_i64().unwrap_or(0);
                                    value["data"]["n"] = json!(n + 1);
                                    Ok(Update::new(value))
                                }
                                .boxed()
                            },
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        get(f, "counter").await.unwrap().value()["data"]["n"],
        json!(160)
    );
}

/// A delete returns the last state at the delete's revision; the object is gone after.
pub async fn delete_returns_last_state(f: &StoreFixture) {
    create(f, "a", json!({})).await;
    let updated = set_data(f, "a", "last").await;
    let deleted = delete(f, "a").await;
    assert!(deleted.revision() > updated.revision());
    assert_eq!(rv(&deleted), deleted.revision().to_string());
    assert_eq!(deleted.value()["data"]["v"], json!("last"));
    assert!(get(f, "a").await.unwrap_err().is_not_found());
    let again = f
        .store
        .delete(&key("a"), &Preconditions::default(), None)
        .await;
    assert!(again.unwrap_err().is_not_found());
}

/// A delete checks preconditions and the caller's validation; a refusal keeps the object.
pub async fn delete_checks_preconditions_and_validation(f: &StoreFixture) {
    let created = create(f, "a", json!({})).await;
    let stale = Preconditions {
        resource_version: Some((created.revision() + 3).to_string()),
        ..Preconditions::default()
    };
    let err = f.store.delete(&key("a"), &stale, None).await.unwrap_err();
    assert!(matches!(err, StorageError::Conflict { .. }), "{err:?}");
    let err = f
        .store
        .delete(
            &key("a"),
            &Preconditions::default(),
            Some(&mut |_| async { Err::<(), BoxError>(Box::new(Refused)) }.boxed()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Rejected(_)), "{err:?}");
    assert!(
        get(f, "a").await.is_ok(),
        "a refused delete keeps the object"
    );
    let mut seen = None;
    f.store
        .delete(
            &key("a"),
            &Preconditions {
                resource_version: Some(created.revision().to_string()),
                ..Preconditions::default()
            },
            Some(&mut |cur: Object| {
                seen = Some(cur.revision());
                async { Ok(()) }.boxed()
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        seen,
        Some(created.revision()),
        "validation sees the current object"
    );
}

async fn next_event(w: &mut WatchStream, what: &str) -> WatchEvent {
    loop {
        match next_within(w, what).await {
            WatchEvent::Bookmark {
                initial_events_end: false,
                ..
            } => continue,
            WatchEvent::Error(e) => panic!("watch failed waiting for {what}: {e}"),
            event => return event,
        }
    }
}

fn describe(event: &WatchEvent) -> (String, String, u64) {
    let (kind, object) = match event {
        WatchEvent::Added(o) => ("ADDED", o),
        WatchEvent::Modified(o) => ("MODIFIED", o),
        WatchEvent::Deleted(o) => ("DELETED", o),
        other => panic!("not an object event: {other:?}"),
    };
    assert_eq!(
        rv(object),
        object.revision().to_string(),
        "event object carries its revision"
    );
    let name = rkube_api::meta::name(object.value()).unwrap_or_default();
    (kind.to_string(), name.to_string(), object.revision())
}

/// A watch from a resourceVersion delivers every later change, in order, as upstream types
/// them, with each object at its event's revision.
pub async fn watch_from_resource_version(f: &StoreFixture) {
    let a = create(f, "a", json!({})).await;
    let a2 = set_data(f, "a", "2").await;
    let mut w = f
        .store
        .watch(
            PREFIX,
            &WatchOptions {
                start: WatchStart::At(a.revision()),
                ..WatchOptions::default()
            },
        )
        .await
        .unwrap();
    let b = create(f, "b", json!({})).await;
    let gone = delete(f, "a").await;
    let got = [
        describe(&next_event(&mut w, "MODIFIED a").await),
        describe(&next_event(&mut w, "ADDED b").await),
        describe(&next_event(&mut w, "DELETED a").await),
    ];
    assert_eq!(
        got,
        [
            ("MODIFIED".into(), "a".into(), a2.revision()),
            ("ADDED".into(), "b".into(), b.revision()),
            ("DELETED".into(), "a".into(), gone.revision()),
        ]
    );
    assert_quiet(&mut w, Duration::from_millis(200), "after three changes").await;
}

/// Without a resourceVersion a watch first sends the current objects as ADDED (and, when asked,
/// a bookmark closing them), then follows changes with no gap.
pub async fn watch_with_initial_events(f: &StoreFixture) {
    create(f, "a", json!({"tier": "web"})).await;
    create(f, "b", json!({"tier": "db"})).await;
    let before = f.store.current_revision().await.unwrap();
    let mut w = f
        .store
        .watch(
            PREFIX,
            &WatchOptions {
                start: WatchStart::Latest,
                initial_events: true,
                initial_events_end: true,
                bookmarks: true,
                predicate: label_is("tier", "web"),
            },
        )
        .await
        .unwrap();
    assert_eq!(describe(&next_event(&mut w, "initial a").await).1, "a");
    match next_within(&mut w, "the initial-events-end bookmark").await {
        WatchEvent::Bookmark {
            revision,
            initial_events_end: true,
        } => assert!(revision >= before),
        other => panic!("expected the initial-events-end bookmark, got {other:?}"),
    }
    let c = create(f, "c", json!({"tier": "web"})).await;
    let added = describe(&next_event(&mut w, "ADDED c").await);
    assert_eq!(added, ("ADDED".into(), "c".into(), c.revision()));
}

/// Through a label filter, an object starting to match is ADDED, changing while matching is
/// MODIFIED, and no longer matching is DELETED (with its previous state).
pub async fn watch_predicate_transitions(f: &StoreFixture) {
    create(f, "a", json!({"tier": "db"})).await;
    let start = f.store.current_revision().await.unwrap();
    let mut w = f
        .store
        .watch(
            PREFIX,
            &WatchOptions {
                start: WatchStart::At(start),
                predicate: label_is("tier", "web"),
                ..WatchOptions::default()
            },
        )
        .await
        .unwrap();
    set_data(f, "a", "ignored while not matching").await;
    let joined = set_labels(f, "a", json!({"tier": "web"})).await;
    let changed = set_data(f, "a", "seen").await;
    let left = set_labels(f, "a", json!({"tier": "db"})).await;
    let added = next_event(&mut w, "ADDED on starting to match").await;
    assert_eq!(
        describe(&added),
        ("ADDED".into(), "a".into(), joined.revision())
    );
    let modified = next_event(&mut w, "MODIFIED while matching").await;
    assert_eq!(
        describe(&modified),
        ("MODIFIED".into(), "a".into(), changed.revision())
    );
    let deleted = next_event(&mut w, "DELETED on leaving").await;
    assert_eq!(
        describe(&deleted),
        ("DELETED".into(), "a".into(), left.revision())
    );
    let last = deleted.object().expect("has object").value();
    assert_eq!(
        last["metadata"]["labels"]["tier"],
        json!("web"),
        "previous state"
    );
    set_data(f, "a", "ignored again").await;
    assert_quiet(
        &mut w,
        Duration::from_millis(200),
        "object no longer matches",
    )
    .await;
}

/// With bookmarks on, a progress request yields a bookmark covering every write so far.
pub async fn watch_bookmark_on_progress_request(f: &StoreFixture) {
    let start = f.store.current_revision().await.unwrap();
    let w = f
        .store
        .watch(
            PREFIX,
            &WatchOptions {
                start: WatchStart::At(start),
                bookmarks: true,
                predicate: label_is("never", "matches"),
                ..WatchOptions::default()
            },
        )
        .await
        .unwrap();
    let written = create(f, "a", json!({})).await.revision();
    let mut w = w;
    if !w.supports_progress() {
        // The backend cannot promise ordered progress (old etcd): nothing to check.
        return;
    }
    assert!(w.request_progress());
    loop {
        match next_within(&mut w, "a bookmark").await {
            WatchEvent::Bookmark { revision, .. } if revision >= written => break,
            WatchEvent::Bookmark { .. } => {
                w.request_progress();
            }
            other => panic!("expected only bookmarks, got {other:?}"),
        }
    }
}

/// Several watchers of one prefix see the same events in the same order.
pub async fn watch_many_watchers_same_events(f: &StoreFixture) {
    let start = f.store.current_revision().await.unwrap();
    let mut watchers = Vec::new();
    for _ in 0..5 {
        let options = WatchOptions {
            start: WatchStart::At(start),
            ..WatchOptions::default()
        };
        watchers.push(f.store.watch(PREFIX, &options).await.unwrap());
    }
    for i in 0..20 {
        create(f, &format!("o{i:02}"), json!({})).await;
    }
    let mut seen = Vec::new();
    for w in &mut watchers {
        let mut events = Vec::new();
        for _ in 0..20 {
            events.push(describe(&next_event(w, "one of 20 creates").await));
        }
        assert!(
            events.windows(2).all(|p| p[0].2 < p[1].2),
            "in revision order"
        );
        seen.push(events);
    }
    assert!(
        seen.windows(2).all(|p| p[0] == p[1]),
        "every watcher sees the same events"
    );
}

/// An object written with a TTL is gone after it (Events, bootstrap tokens).
pub async fn ttl_expires_objects(f: &StoreFixture) {
    f.store
        .create(
            &key("event"),
            object("event", json!({}), json!({})),
            Some(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    create(f, "keeper", json!({})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while get(f, "event").await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "TTL never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(get(f, "keeper").await.is_ok());
}

/// `count` counts the objects under a prefix.
pub async fn count_objects(f: &StoreFixture) {
    for i in 0..3 {
        create(f, &format!("o{i}"), json!({})).await;
    }
    delete(f, "o1").await;
    assert_eq!(f.store.count(PREFIX).await.unwrap(), 2);
}

/// A stored value that is not a JSON object is an `InvalidObject` error naming the key, for
/// reads and lists alike: never skipped, never a panic.
pub async fn corrupt_value_is_an_error(f: &StoreFixture) {
    create(f, "good", json!({})).await;
    let outcome = f
        .backend
        .create(&key("bad"), Bytes::from_static(b"\x00not json"), None)
        .await
        .unwrap();
    assert!(matches!(outcome, crate::CasOutcome::Written { .. }));
    let get_err = get(f, "bad").await.unwrap_err();
    assert!(
        matches!(&get_err, StorageError::InvalidObject { key: k, .. } if *k == key("bad")),
        "{get_err:?}"
    );
    let list_err = f
        .store
        .list(PREFIX, &ListOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(list_err, StorageError::InvalidObject { .. }),
        "{list_err:?}"
    );
}
