//! The namespace controller against the real API: the router over the registry and an
//! in-memory SQLite store, driven by a `kube::Client` built on the router as a tower service
//! (DESIGN §6 level 3).

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, NamespaceCondition, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use rkube_controllers::{ControllerManager, namespace};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod common;
use common::client;

/// A guard against a hang, never a measure of speed: passes take milliseconds.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// The controller manager running on `client` until the returned sender is dropped or fired.
fn start(client: &Client, manager: ControllerManager) -> (oneshot::Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let client = client.clone();
    let task = tokio::spawn(manager.run(move |_| client.clone(), async {
        let _ = stopped.await;
    }));
    (stop, task)
}

async fn create<K>(client: &Client, namespace: &str, object: serde_json::Value) -> K
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let object: K = serde_json::from_value(object).expect("object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create")
}

async fn create_namespace(client: &Client, name: &str) -> Namespace {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns");
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace")
}

/// A watch of one namespace, started (its initial list done) before the test acts, so no
/// change after that can be missed.
struct NamespaceWatch {
    name: String,
    events: futures::stream::BoxStream<'static, watcher::Result<watcher::Event<Namespace>>>,
}

impl NamespaceWatch {
    async fn start(client: &Client, name: &str) -> NamespaceWatch {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut watch = NamespaceWatch {
            name: name.to_string(),
            events: watcher(namespaces, config).boxed(),
        };
        watch
            .next(|event| matches!(event, watcher::Event::InitDone).then_some(()))
            .await;
        watch
    }

    /// The first event `pick` takes something from.
    async fn next<T>(&mut self, pick: impl Fn(watcher::Event<Namespace>) -> Option<T>) -> T {
        let found = async {
            while let Some(event) = self.events.try_next().await.expect("watch") {
                if let Some(found) = pick(event) {
                    return found;
                }
            }
            panic!("the watch of namespace {} ended", self.name);
        };
        tokio::time::timeout(HANG_GUARD, found)
            .await
            .unwrap_or_else(|_| panic!("namespace {}: never saw what was waited for", self.name))
    }

    /// Waits until the namespace is written in a state `test` accepts; returns it.
    async fn until(&mut self, test: impl Fn(&Namespace) -> bool) -> Namespace {
        self.next(|event| match event {
            watcher::Event::Apply(ns) if test(&ns) => Some(ns),
            _ => None,
        })
        .await
    }

    /// Waits until the namespace is removed; returns its last state.
    async fn deleted(&mut self) -> Namespace {
        self.next(|event| match event {
            watcher::Event::Delete(ns) => Some(ns),
            _ => None,
        })
        .await
    }
}

fn condition<'a>(ns: &'a Namespace, kind: &str) -> Option<&'a NamespaceCondition> {
    ns.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

async fn names<K>(client: &Client, namespace: &str) -> Vec<String>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let list = api.list(&ListParams::default()).await.expect("list");
    list.items.iter().map(|o| o.name_any()).collect()
}

#[tokio::test]
async fn a_deleted_namespace_is_emptied_then_removed() {
    let client = client().await;
    let (stop, manager) = start(&client, ControllerManager::default());
    let ns = create_namespace(&client, "doomed").await;
    for name in ["a", "b"] {
        create::<ConfigMap>(
            &client,
            "doomed",
            json!({"metadata": {"name": name}, "data": {"k": "v"}}),
        )
        .await;
    }
    create::<Secret>(
        &client,
        "doomed",
        json!({"metadata": {"name": "s"}, "stringData": {"password": "x"}}),
    )
    .await;
    let labels = json!({"app": "web"});
    create::<Deployment>(
        &client,
        "doomed",
        json!({
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]}
                }
            }
        }),
    )
    .await;
    // Another namespace's objects are not touched.
    create::<ConfigMap>(&client, "default", json!({"metadata": {"name": "kept"}})).await;

    let mut watch = NamespaceWatch::start(&client, "doomed").await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("delete namespace");
    let last = watch.deleted().await;
    assert_eq!(last.metadata.uid, ns.metadata.uid);

    // It went only once its content had: the last pass found nothing left.
    let status = last.status.as_ref().expect("status");
    assert_eq!(status.phase.as_deref(), Some("Terminating"));
    let remaining = condition(&last, "NamespaceContentRemaining").expect("condition");
    assert_eq!(
        (remaining.status.as_str(), remaining.message.as_deref()),
        ("False", Some("All content successfully removed"))
    );
    for kind in [
        "NamespaceDeletionDiscoveryFailure",
        "NamespaceDeletionGroupVersionParsingFailure",
        "NamespaceDeletionContentFailure",
        "NamespaceFinalizersRemaining",
    ] {
        assert_eq!(
            condition(&last, kind).expect(kind).status,
            "False",
            "{kind}"
        );
    }
    assert!(
        last.spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_none_or(Vec::is_empty)
    );

    assert!(names::<ConfigMap>(&client, "doomed").await.is_empty());
    assert!(names::<Secret>(&client, "doomed").await.is_empty());
    assert!(names::<Deployment>(&client, "doomed").await.is_empty());
    assert!(namespaces.get_opt("doomed").await.expect("get").is_none());
    assert!(
        names::<ConfigMap>(&client, "default")
            .await
            .contains(&"kept".to_string())
    );

    stop.send(()).expect("manager running");
    manager.await.expect("manager stopped cleanly");
}

#[tokio::test]
async fn content_held_by_finalizers_holds_the_namespace_and_says_so() {
    let client = client().await;
    // Look again soon (one second and a bit) rather than upstream's 15-second estimate.
    let manager = ControllerManager {
        namespace: namespace::Config {
            finalizer_estimate: Duration::from_millis(2),
        },
        ..ControllerManager::default()
    };
    let (stop, manager) = start(&client, manager);
    create_namespace(&client, "held").await;
    create::<ConfigMap>(
        &client,
        "held",
        json!({"metadata": {"name": "pinned", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    create::<ConfigMap>(&client, "held", json!({"metadata": {"name": "free"}})).await;

    let mut watch = NamespaceWatch::start(&client, "held").await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete namespace");
    let waiting = watch
        .until(|ns| {
            condition(ns, "NamespaceFinalizersRemaining").is_some_and(|c| c.status == "True")
        })
        .await;
    let finalizers = condition(&waiting, "NamespaceFinalizersRemaining").expect("condition");
    assert_eq!(finalizers.reason.as_deref(), Some("SomeFinalizersRemain"));
    assert_eq!(
        finalizers.message.as_deref(),
        Some(
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        )
    );
    let remaining = condition(&waiting, "NamespaceContentRemaining").expect("condition");
    assert_eq!(
        (
            remaining.status.as_str(),
            remaining.reason.as_deref(),
            remaining.message.as_deref()
        ),
        (
            "True",
            Some("SomeResourcesRemain"),
            Some("Some resources are remaining: configmaps. has 1 resource instances")
        )
    );
    assert_eq!(
        waiting.spec.as_ref().and_then(|s| s.finalizers.clone()),
        Some(vec![namespace::FINALIZER.to_string()])
    );
    // The held object is marked for deletion; the other is gone.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "held");
    let pinned = configmaps.get("pinned").await.expect("pinned still there");
    assert!(pinned.metadata.deletion_timestamp.is_some());
    assert_eq!(names::<ConfigMap>(&client, "held").await, ["pinned"]);

    // Its controller finishes: the namespace follows.
    configmaps
        .patch(
            "pinned",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("release the finalizer");
    let last = watch.deleted().await;
    assert_eq!(last.name_any(), "held");
    assert!(names::<ConfigMap>(&client, "held").await.is_empty());

    stop.send(()).expect("manager running");
    manager.await.expect("manager stopped cleanly");
}

#[tokio::test]
async fn namespaces_not_being_deleted_are_left_alone() {
    let client = client().await;
    let (stop, manager) = start(&client, ControllerManager::default());
    create_namespace(&client, "alive").await;
    create::<ConfigMap>(&client, "alive", json!({"metadata": {"name": "c"}})).await;
    // A namespace deleted while the manager runs is handled; the live one is not.
    create_namespace(&client, "dying").await;
    let mut watch = NamespaceWatch::start(&client, "dying").await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete("dying", &DeleteParams::default())
        .await
        .expect("delete");
    watch.deleted().await;
    let alive = namespaces.get("alive").await.expect("alive");
    assert_eq!(
        alive.status.and_then(|s| s.phase).as_deref(),
        Some("Active")
    );
    assert_eq!(names::<ConfigMap>(&client, "alive").await, ["c"]);
    stop.send(()).expect("manager running");
    manager.await.expect("manager stopped cleanly");
}

#[tokio::test]
async fn a_manager_stopped_before_its_first_list_stops() {
    let client = client().await;
    let (stop, manager) = start(&client, ControllerManager::default());
    stop.send(()).expect("manager running");
    tokio::time::timeout(HANG_GUARD, manager)
        .await
        .expect("the manager never stopped")
        .expect("manager stopped cleanly");
}
