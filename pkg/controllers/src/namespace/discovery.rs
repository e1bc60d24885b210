//! Which namespaced resources the server can delete, learnt from API discovery (`/api`,
//! `/apis` and each group version's resource list), as upstream's
//! `ServerPreferredNamespacedResources` filtered to the `delete` verb: one version per group
//! resource (the most preferred that serves it), subresources left out. A group version whose
//! resource list cannot be read does not stop the others: it is reported, as client-go's
//! `ErrGroupDiscoveryFailed`, and the rest is deleted.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::Client;
use kube::core::ApiResource;

use super::message;

/// A namespaced resource discovery lists with the `delete` verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deletable {
    /// The API group, empty for the core group.
    pub group: String,
    /// The version served (the most preferred that has the resource).
    pub version: String,
    /// The kind.
    pub kind: String,
    /// The resource (plural) name.
    pub plural: String,
    /// Whether the collection can be listed.
    pub list: bool,
    /// Whether the collection can be deleted in one request.
    pub deletecollection: bool,
}

impl Deletable {
    /// The resource as kube's dynamic API addresses it.
    pub fn api_resource(&self) -> ApiResource {
        let api_version = if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        };
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version,
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }

    /// `resource.group`, as upstream's conditions name resources (`pods.` in the core group).
    pub fn group_resource(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    /// Go's `GroupVersionResource.String()`, as upstream's messages print it.
    pub fn gvr(&self) -> String {
        format!("{}/{}, Resource={}", self.group, self.version, self.plural)
    }

    /// Whether this is the core group's pods (whose graceful termination is waited for).
    pub fn is_pods(&self) -> bool {
        self.group.is_empty() && self.plural == "pods"
    }
}

/// What discovery found.
#[derive(Debug, Default)]
pub(crate) struct Discovered {
    /// The deletable namespaced resources, in discovery order.
    pub resources: Vec<Deletable>,
    /// Discovery failed, wholly or for some group versions: upstream's condition message.
    pub failure: Option<String>,
    /// Group versions that did not parse: upstream's message.
    pub parse_failure: Option<String>,
}

/// Discovers the deletable namespaced resources through `client`.
pub(crate) async fn discover(client: &Client) -> Discovered {
    let (core, apis) = match (
        client.list_core_api_versions().await,
        client.list_api_groups().await,
    ) {
        (Ok(core), Ok(apis)) => (core, apis),
        // Without the list of groups nothing can be found: the whole pass fails.
        (Err(e), _) | (_, Err(e)) => {
            return Discovered {
                failure: Some(message(&e)),
                ..Discovered::default()
            };
        }
    };
    let mut groups = Vec::new();
    let mut failed = Vec::new();
    let mut lists = Vec::new();
    for version in &core.versions {
        match client.list_core_api_resources(version).await {
            Ok(list) => lists.push(list),
            Err(e) => failed.push(format!("{version}: {}", message(&e))),
        }
    }
    groups.push(lists);
    for group in &apis.groups {
        let mut lists = Vec::new();
        // The server lists a group's versions most preferred first.
        for version in &group.versions {
            match client
                .list_api_group_resources(&version.group_version)
                .await
            {
                Ok(list) => lists.push(list),
                Err(e) => failed.push(format!("{}: {}", version.group_version, message(&e))),
            }
        }
        groups.push(lists);
    }
    let (resources, unparsed) = deletable(&groups);
    Discovered {
        resources,
        failure: (!failed.is_empty()).then(|| {
            failed.sort();
            format!(
                "Discovery failed for some groups, {} failing: unable to retrieve the complete \
                 list of server APIs: {}",
                failed.len(),
                failed.join(", ")
            )
        }),
        parse_failure: (!unparsed.is_empty()).then(|| aggregate(&unparsed)),
    }
}

/// The deletable namespaced resources in `groups` (each group's resource lists, most preferred
/// version first), and a message for each group version that does not parse.
pub(crate) fn deletable(groups: &[Vec<APIResourceList>]) -> (Vec<Deletable>, Vec<String>) {
    let mut resources = Vec::new();
    let mut unparsed = Vec::new();
    for lists in groups {
        let mut seen = BTreeSet::new();
        for list in lists {
            let Some((group, version)) = parse_group_version(&list.group_version) else {
                unparsed.push(format!(
                    "unexpected GroupVersion string: {}",
                    list.group_version
                ));
                continue;
            };
            for resource in &list.resources {
                let verb = |v: &str| resource.verbs.iter().any(|have| have == v);
                if resource.name.contains('/')
                    || !resource.namespaced
                    || !verb("delete")
                    || !seen.insert(resource.name.clone())
                {
                    continue;
                }
                resources.push(Deletable {
                    group: group.to_string(),
                    version: version.to_string(),
                    kind: resource.kind.clone(),
                    plural: resource.name.clone(),
                    list: verb("list"),
                    deletecollection: verb("deletecollection"),
                });
            }
        }
    }
    (resources, unparsed)
}

/// `group/version`, or a bare `version` in the core group (Go's `schema.ParseGroupVersion`);
/// `None` for anything else.
fn parse_group_version(text: &str) -> Option<(&str, &str)> {
    match text.split_once('/') {
        None if !text.is_empty() => Some(("", text)),
        Some((group, version)) if !version.contains('/') => Some((group, version)),
        _ => None,
    }
}

/// Go's `utilerrors.NewAggregate(...).Error()`: one message as it is, several (duplicates
/// dropped) as `[a, b]`.
pub(crate) fn aggregate(messages: &[String]) -> String {
    let mut seen = BTreeSet::new();
    let unique: Vec<&str> = messages
        .iter()
        .filter(|m| seen.insert(m.as_str()))
        .map(String::as_str)
        .collect();
    match unique.as_slice() {
        [one] => (*one).to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;

    use super::*;

    fn resource(name: &str, kind: &str, namespaced: bool, verbs: &str) -> APIResource {
        APIResource {
            name: name.into(),
            kind: kind.into(),
            namespaced,
            verbs: verbs.split(' ').map(str::to_string).collect(),
            ..APIResource::default()
        }
    }

    fn list(group_version: &str, resources: Vec<APIResource>) -> APIResourceList {
        APIResourceList {
            group_version: group_version.into(),
            resources,
        }
    }

    const CRUD: &str = "create delete deletecollection get list patch update watch";

    #[test]
    fn namespaced_deletable_resources_of_the_preferred_version() {
        let core = vec![list(
            "v1",
            vec![
                resource("configmaps", "ConfigMap", true, CRUD),
                resource("namespaces", "Namespace", false, CRUD),
                resource("namespaces/finalize", "Namespace", false, "update"),
                resource("pods/status", "Pod", true, "get patch update"),
                resource("bindings", "Binding", true, "create"),
                resource("events", "Event", true, "delete get list"),
            ],
        )];
        let autoscaling = vec![
            list(
                "autoscaling/v2",
                vec![resource(
                    "horizontalpodautoscalers",
                    "HorizontalPodAutoscaler",
                    true,
                    CRUD,
                )],
            ),
            list(
                "autoscaling/v1",
                vec![
                    resource(
                        "horizontalpodautoscalers",
                        "HorizontalPodAutoscaler",
                        true,
                        CRUD,
                    ),
                    resource("olds", "Old", true, CRUD),
                ],
            ),
        ];
        let broken = vec![list("a/b/c", vec![resource("x", "X", true, CRUD)])];
        let (found, unparsed) = deletable(&[core, autoscaling, broken]);
        let names: Vec<(String, bool, bool)> = found
            .iter()
            .map(|d| (d.gvr(), d.list, d.deletecollection))
            .collect();
        assert_eq!(
            names,
            [
                ("/v1, Resource=configmaps".to_string(), true, true),
                ("/v1, Resource=events".to_string(), true, false),
                (
                    "autoscaling/v2, Resource=horizontalpodautoscalers".to_string(),
                    true,
                    true
                ),
                ("autoscaling/v1, Resource=olds".to_string(), true, true),
            ]
        );
        assert_eq!(unparsed, ["unexpected GroupVersion string: a/b/c"]);
        assert_eq!(found[0].group_resource(), "configmaps.");
        assert_eq!(found[0].api_resource().api_version, "v1");
        assert_eq!(found[2].api_resource().api_version, "autoscaling/v2");
    }

    #[test]
    fn group_versions_parse_as_go_does() {
        assert_eq!(parse_group_version("v1"), Some(("", "v1")));
        assert_eq!(parse_group_version("apps/v1"), Some(("apps", "v1")));
        assert_eq!(parse_group_version("a/b/c"), None);
    }

    #[test]
    fn aggregates_read_as_go_prints_them() {
        assert_eq!(aggregate(&["one".into()]), "one");
        assert_eq!(
            aggregate(&["a".into(), "b".into(), "a".into()]),
            "[a, b]".to_string()
        );
    }
}
