//! The Node authorizer's data: the [`NodeGraph`] kept current from the registry's watches of
//! pods, persistent volumes, volume attachments and resource slices (what upstream's graph
//! populator watches), loaded before the server serves so a node is never refused what its
//! pods need for want of a list.

use std::sync::Arc;

use rkube_api::resources;
use rkube_auth::authz::node::Source;
use rkube_registry::Registry;
use serde_json::Value;

use crate::feed::{self, Feed};

pub use rkube_auth::authz::NodeGraph;

/// The resources the graph follows, as `(group, plural, source)`, all at `v1`.
const SOURCES: &[(&str, &str, Source)] = &[
    ("", "pods", Source::Pods),
    ("", "persistentvolumes", Source::PersistentVolumes),
    (
        "storage.k8s.io",
        "volumeattachments",
        Source::VolumeAttachments,
    ),
    ("resource.k8s.io", "resourceslices", Source::ResourceSlices),
];

/// The graph's objects from one source, as the feed sees them.
struct SourceIndex {
    graph: Arc<NodeGraph>,
    source: Source,
}

impl feed::Index for SourceIndex {
    fn replace(&self, objects: &[Value]) {
        self.graph.replace(self.source, objects);
    }

    fn upsert(&self, object: &Value) {
        self.graph.upsert(self.source, object);
    }

    fn remove(&self, object: &Value) {
        self.graph.remove(self.source, object);
    }
}

/// Starts feeding `graph` from the registry's watches of what is served; returns once each
/// resource has been listed.
pub async fn feed(registry: &Registry, graph: Arc<NodeGraph>) -> Feed {
    let mut sources = Vec::new();
    for &(group, plural, source) in SOURCES {
        let rest = resources::lookup(group, "v1", plural)
            .and_then(|resource| registry.rest(resource, None));
        let Some(rest) = rest else {
            tracing::debug!(
                group,
                plural,
                "not served: the Node authorizer does without it"
            );
            continue;
        };
        sources.push(feed::Source {
            what: plural,
            rest,
            index: Arc::new(SourceIndex {
                graph: graph.clone(),
                source,
            }),
        });
    }
    feed::start(sources).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac;
    use rkube_auth::authz::PolicyRule;
    use rkube_auth::authz::node::Vertex;
    use rkube_auth::authz::node::node_rules;
    use rkube_auth::authz::rbac::Kind;
    use rkube_registry::rest::{CreateOptions, DeleteOptions, Scope};
    use rkube_storage::KvStore;
    use serde_json::json;

    #[test]
    fn the_system_node_role_grants_the_node_authorizers_static_rules() {
        let policy = rbac::bootstrap_policy().unwrap();
        let role = policy
            .iter()
            .find(|(kind, o)| *kind == Kind::ClusterRole && o["metadata"]["name"] == "system:node")
            .map(|(_, o)| o["rules"].clone())
            .unwrap();
        let rules: Vec<PolicyRule> = serde_json::from_value(role).unwrap();
        assert_eq!(rules, node_rules());
    }

    #[tokio::test]
    async fn the_graph_follows_the_registrys_pods() {
        let backend = Arc::new(rkube_storage_sqlite::SqliteBackend::open_in_memory().unwrap());
        let registry = Registry::new(Arc::new(KvStore::new(backend)));
        let graph = Arc::new(NodeGraph::new());
        let pods = registry
            .rest(resources::lookup("", "v1", "pods").unwrap(), None)
            .unwrap();
        let ns = Scope {
            namespace: Some("ns".into()),
        };
        let pod = |name: &str| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns"},
                   "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "i"}],
                            "volumes": [{"name": "s", "secret": {"secretName": format!("{name}-secret")}}]}})
        };
        pods.create(&ns, pod("before"), &CreateOptions::default())
            .await
            .unwrap();
        let _feed = feed(&registry, graph.clone()).await;
        // Listed before `feed` returns.
        assert!(graph.reaches("node-a", Vertex::Secret, "ns", "before-secret"));
        pods.create(&ns, pod("after"), &CreateOptions::default())
            .await
            .unwrap();
        let deleted = DeleteOptions {
            grace_period_seconds: Some(0),
            ..DeleteOptions::default()
        };
        pods.delete(&ns, "before", &deleted).await.unwrap();
        let followed = || {
            graph.reaches("node-a", Vertex::Secret, "ns", "after-secret")
                && !graph.reaches("node-a", Vertex::Secret, "ns", "before-secret")
        };
        for _ in 0..500 {
            if followed() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the graph never saw the pod created and the pod deleted after the list");
    }
}
