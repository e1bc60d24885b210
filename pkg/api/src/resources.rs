//! The table of every built-in resource a Kubernetes 1.34 kube-apiserver serves by default,
//! and the group-versions of `/api` and `/apis` in upstream's discovery order.
//!
//! One [`Resource`] per (group, version, plural), listed group by group in discovery order
//! (preferred version first) and alphabetically inside a group-version, as upstream lists them.
//! Each carries what discovery shows (singular name, kind, scope, verbs, shortNames, categories,
//! subresources) and what storage needs: the etcd key prefix kube-apiserver uses (so rkube's
//! keys read like upstream's: `/registry/services/specs/default/kubernetes`, `/registry/minions/n1`)
//! and whether upstream serves the resource from its watch cache.
//!
//! Only group-versions enabled by default are listed: alpha and beta APIs are off by default
//! since 1.24, so `resource.k8s.io/v1` (GA in 1.34) is here and its betas are not.
//!
//! Lookups (by group/version/plural, by kind, by short name or any kubectl-style name) go
//! through hash maps built once on first use; the table itself is static data.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

/// A group and resource, as errors name them: `pods`, `deployments.apps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupResource<'a> {
    /// API group; empty for the core group.
    pub group: &'a str,
    /// Plural resource name.
    pub resource: &'a str,
}

impl<'a> GroupResource<'a> {
    /// A group and resource.
    pub const fn new(group: &'a str, resource: &'a str) -> Self {
        Self { group, resource }
    }

    /// Whether both parts are empty (upstream's `GroupResource.Empty`).
    pub fn is_empty(&self) -> bool {
        self.group.is_empty() && self.resource.is_empty()
    }
}

impl fmt::Display for GroupResource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// A group and kind, as validation errors name them: `ConfigMap`, `Deployment.apps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupKind<'a> {
    /// API group; empty for the core group.
    pub group: &'a str,
    /// Kind.
    pub kind: &'a str,
}

impl<'a> GroupKind<'a> {
    /// A group and kind.
    pub const fn new(group: &'a str, kind: &'a str) -> Self {
        Self { group, kind }
    }
}

impl fmt::Display for GroupKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

/// An API group of `/apis` with its served versions, preferred version first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiGroup {
    /// Group name.
    pub name: &'static str,
    /// Served versions, preferred first (the order of `APIGroup.versions`).
    pub versions: &'static [&'static str],
}

impl ApiGroup {
    /// The preferred version.
    pub fn preferred_version(&self) -> &'static str {
        self.versions[0]
    }
}

/// A subresource (`pods/status`, `deployments/scale`) as discovery lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    /// Name after the slash (`status`, `scale`, `log`).
    pub name: &'static str,
    /// Kind of the request/response body (`Pod`, `Scale`, `PodExecOptions`).
    pub kind: &'static str,
    /// Group and version of that kind when they differ from the parent resource's
    /// (`autoscaling/v1` for `Scale`, `policy/v1` for `Eviction`).
    pub kind_group_version: Option<(&'static str, &'static str)>,
    /// Verbs, as discovery lists them.
    pub verbs: &'static [&'static str],
}

/// One built-in resource at one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Plural resource name, the URL segment (`pods`).
    pub plural: &'static str,
    /// Singular name (`pod`); `endpoints` is its own singular.
    pub singular: &'static str,
    /// Kind (`Pod`).
    pub kind: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Verbs, in discovery's (alphabetical) order.
    pub verbs: &'static [&'static str],
    /// Short names kubectl accepts (`po`).
    pub short_names: &'static [&'static str],
    /// Categories (`all`, `api-extensions`).
    pub categories: &'static [&'static str],
    /// Subresources, alphabetically.
    pub subresources: &'static [Subresource],
    /// etcd key prefix under `/registry/` kube-apiserver uses, or `None` for resources that are
    /// not stored (reviews, bindings, componentstatuses).
    pub storage_prefix: Option<&'static str>,
    /// Whether kube-apiserver serves lists and watches from its watch cache (all stored
    /// resources except events, whose cache is disabled by default).
    pub watch_cache: bool,
    /// The `apiVersion` objects under `storage_prefix` are stored as, when it is not this
    /// resource's own: kube-apiserver keeps one version per prefix (autoscaling/v2 for HPAs,
    /// core v1 for Events) and converts the others on every read and write.
    pub stored_as: Option<&'static str>,
}

impl Resource {
    /// The group and resource, for error messages.
    pub fn group_resource(&self) -> GroupResource<'static> {
        GroupResource::new(self.group, self.plural)
    }

    /// The group and kind, for validation errors.
    pub fn group_kind(&self) -> GroupKind<'static> {
        GroupKind::new(self.group, self.kind)
    }

    /// `apiVersion` of objects at this version: `v1`, `apps/v1`.
    pub fn api_version(&self) -> Cow<'static, str> {
        if self.group.is_empty() {
            Cow::Borrowed(self.version)
        } else {
            Cow::Owned(format!("{}/{}", self.group, self.version))
        }
    }

    /// Whether discovery lists `verb` for the resource itself.
    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// The named subresource.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The `apiVersion` objects of this resource are stored as ([`Resource::stored_as`], or
    /// its own).
    pub fn storage_api_version(&self) -> Cow<'static, str> {
        match self.stored_as {
            Some(stored) => Cow::Borrowed(stored),
            None => self.api_version(),
        }
    }

    /// Whether another served version shares this resource's storage prefix, so objects read
    /// under it may be in a version other than this one.
    pub fn shares_storage(&self) -> bool {
        self.storage_prefix.is_some()
            && all().iter().any(|other| {
                other.storage_prefix == self.storage_prefix
                    && (other.group, other.version) != (self.group, self.version)
            })
    }

    /// The storage key of an object: `/registry/<prefix>/<namespace>/<name>` (no namespace
    /// segment for cluster-scoped resources). `None` for resources that are not stored.
    pub fn storage_key(&self, namespace: &str, name: &str) -> Option<String> {
        let prefix = self.storage_prefix?;
        Some(if self.namespaced {
            format!("/registry/{prefix}/{namespace}/{name}")
        } else {
            format!("/registry/{prefix}/{name}")
        })
    }
}

// Verb sets, in discovery order.
const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Namespaces are deleted one by one (the namespace controller empties them first).
const CRUD_NO_COLLECTION: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const CREATE: &[&str] = &["create"];
const GET: &[&str] = &["get"];
const GET_LIST: &[&str] = &["get", "list"];
const UPDATE: &[&str] = &["update"];
const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];
const CREATE_GET: &[&str] = &["create", "get"];
const PROXY: &[&str] = &["create", "delete", "get", "patch", "update"];

const ALL: &[&str] = &["all"];
const API_EXTENSIONS: &[&str] = &["api-extensions"];

const fn sub(
    name: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        kind,
        kind_group_version: None,
        verbs,
    }
}

const fn sub_in(
    name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        kind,
        kind_group_version: Some((group, version)),
        verbs,
    }
}

const fn status(kind: &'static str) -> Subresource {
    sub("status", kind, GET_PATCH_UPDATE)
}

const SCALE: Subresource = sub_in("scale", "autoscaling", "v1", "Scale", GET_PATCH_UPDATE);

/// A stored, watch-cached resource with full CRUD verbs and nothing else; the builder methods
/// below adjust the rest.
const fn res(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> Resource {
    Resource {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        verbs: CRUD,
        short_names: &[],
        categories: &[],
        subresources: &[],
        storage_prefix: Some(plural),
        watch_cache: true,
        stored_as: None,
    }
}

impl Resource {
    const fn short(self, short_names: &'static [&'static str]) -> Self {
        Self {
            short_names,
            ..self
        }
    }
    const fn cats(self, categories: &'static [&'static str]) -> Self {
        Self { categories, ..self }
    }
    const fn subs(self, subresources: &'static [Subresource]) -> Self {
        Self {
            subresources,
            ..self
        }
    }
    const fn prefix(self, prefix: &'static str) -> Self {
        Self {
            storage_prefix: Some(prefix),
            ..self
        }
    }
    const fn verbs(self, verbs: &'static [&'static str]) -> Self {
        Self { verbs, ..self }
    }
    /// Not stored: served by a handler (reviews, bindings, componentstatuses).
    const fn virtual_only(self) -> Self {
        Self {
            storage_prefix: None,
            watch_cache: false,
            ..self
        }
    }
    const fn stored_as(self, api_version: &'static str) -> Self {
        Self {
            stored_as: Some(api_version),
            ..self
        }
    }
    const fn no_watch_cache(self) -> Self {
        Self {
            watch_cache: false,
            ..self
        }
    }
}

/// Versions of the legacy core group served at `/api`.
pub const CORE_VERSIONS: &[&str] = &["v1"];

/// Groups served at `/apis`, in upstream's discovery order (kube-apiserver's group priorities,
/// the aggregator's `apiregistration.k8s.io` first).
#[rustfmt::skip]
pub static API_GROUPS: &[ApiGroup] = &[
    ApiGroup { name: "apiregistration.k8s.io", versions: &["v1"] },
    ApiGroup { name: "apps", versions: &["v1"] },
    ApiGroup { name: "events.k8s.io", versions: &["v1"] },
    ApiGroup { name: "authentication.k8s.io", versions: &["v1"] },
    ApiGroup { name: "authorization.k8s.io", versions: &["v1"] },
    ApiGroup { name: "autoscaling", versions: &["v2", "v1"] },
    ApiGroup { name: "batch", versions: &["v1"] },
    ApiGroup { name: "certificates.k8s.io", versions: &["v1"] },
    ApiGroup { name: "networking.k8s.io", versions: &["v1"] },
    ApiGroup { name: "policy", versions: &["v1"] },
    ApiGroup { name: "rbac.authorization.k8s.io", versions: &["v1"] },
    ApiGroup { name: "storage.k8s.io", versions: &["v1"] },
    ApiGroup { name: "admissionregistration.k8s.io", versions: &["v1"] },
    ApiGroup { name: "apiextensions.k8s.io", versions: &["v1"] },
    ApiGroup { name: "scheduling.k8s.io", versions: &["v1"] },
    ApiGroup { name: "coordination.k8s.io", versions: &["v1"] },
    ApiGroup { name: "node.k8s.io", versions: &["v1"] },
    ApiGroup { name: "discovery.k8s.io", versions: &["v1"] },
    ApiGroup { name: "flowcontrol.apiserver.k8s.io", versions: &["v1"] },
    ApiGroup { name: "resource.k8s.io", versions: &["v1"] },
];

const HPA_SUBS: &[Subresource] = &[status("HorizontalPodAutoscaler")];

/// Every built-in resource: core first, then `/apis` groups in [`API_GROUPS`] order, each
/// group's preferred version first, resources alphabetical inside a group-version.
#[rustfmt::skip]
pub static RESOURCES: &[Resource] = &[
    // ---- core/v1 ----
    res("", "v1", "bindings", "binding", "Binding", true).verbs(CREATE).virtual_only(),
    res("", "v1", "componentstatuses", "componentstatus", "ComponentStatus", false)
        .verbs(GET_LIST).short(&["cs"]).virtual_only(),
    res("", "v1", "configmaps", "configmap", "ConfigMap", true).short(&["cm"]),
    res("", "v1", "endpoints", "endpoints", "Endpoints", true)
        .short(&["ep"]).prefix("services/endpoints"),
    res("", "v1", "events", "event", "Event", true).short(&["ev"]).no_watch_cache(),
    res("", "v1", "limitranges", "limitrange", "LimitRange", true).short(&["limits"]),
    res("", "v1", "namespaces", "namespace", "Namespace", false)
        .verbs(CRUD_NO_COLLECTION).short(&["ns"])
        .subs(&[sub("finalize", "Namespace", UPDATE), status("Namespace")]),
    res("", "v1", "nodes", "node", "Node", false).short(&["no"]).prefix("minions")
        .subs(&[sub("proxy", "NodeProxyOptions", PROXY), status("Node")]),
    res("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", true)
        .short(&["pvc"]).subs(&[status("PersistentVolumeClaim")]),
    res("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", false)
        .short(&["pv"]).subs(&[status("PersistentVolume")]),
    res("", "v1", "pods", "pod", "Pod", true).short(&["po"]).cats(ALL).subs(&[
        sub("attach", "PodAttachOptions", CREATE_GET),
        sub("binding", "Binding", CREATE),
        sub("ephemeralcontainers", "Pod", GET_PATCH_UPDATE),
        sub_in("eviction", "policy", "v1", "Eviction", CREATE),
        sub("exec", "PodExecOptions", CREATE_GET),
        sub("log", "Pod", GET),
        sub("portforward", "PodPortForwardOptions", CREATE_GET),
        sub("proxy", "PodProxyOptions", PROXY),
        sub("resize", "Pod", GET_PATCH_UPDATE),
        status("Pod"),
    ]),
    res("", "v1", "podtemplates", "podtemplate", "PodTemplate", true),
    res("", "v1", "replicationcontrollers", "replicationcontroller", "ReplicationController", true)
        .short(&["rc"]).cats(ALL).prefix("controllers")
        .subs(&[SCALE, status("ReplicationController")]),
    res("", "v1", "resourcequotas", "resourcequota", "ResourceQuota", true)
        .short(&["quota"]).subs(&[status("ResourceQuota")]),
    res("", "v1", "secrets", "secret", "Secret", true),
    res("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true)
        .short(&["sa"])
        .subs(&[sub_in("token", "authentication.k8s.io", "v1", "TokenRequest", CREATE)]),
    res("", "v1", "services", "service", "Service", true)
        .short(&["svc"]).cats(ALL).prefix("services/specs")
        .subs(&[sub("proxy", "ServiceProxyOptions", PROXY), status("Service")]),
    // ---- apiregistration.k8s.io/v1 (kube-aggregator; stored under its group) ----
    res("apiregistration.k8s.io", "v1", "apiservices", "apiservice", "APIService", false)
        .cats(API_EXTENSIONS).prefix("apiregistration.k8s.io/apiservices")
        .subs(&[status("APIService")]),
    // ---- apps/v1 ----
    res("apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", true),
    res("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true)
        .short(&["ds"]).cats(ALL).subs(&[status("DaemonSet")]),
    res("apps", "v1", "deployments", "deployment", "Deployment", true)
        .short(&["deploy"]).cats(ALL).subs(&[SCALE, status("Deployment")]),
    res("apps", "v1", "replicasets", "replicaset", "ReplicaSet", true)
        .short(&["rs"]).cats(ALL).subs(&[SCALE, status("ReplicaSet")]),
    res("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true)
        .short(&["sts"]).cats(ALL).subs(&[SCALE, status("StatefulSet")]),
    // ---- events.k8s.io/v1 (same storage as core events) ----
    res("events.k8s.io", "v1", "events", "event", "Event", true)
        .short(&["ev"]).no_watch_cache().stored_as("v1"),
    // ---- authentication.k8s.io/v1 ----
    res("authentication.k8s.io", "v1", "selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview", false)
        .verbs(CREATE).virtual_only(),
    res("authentication.k8s.io", "v1", "tokenreviews", "tokenreview", "TokenReview", false)
        .verbs(CREATE).virtual_only(),
    // ---- authorization.k8s.io/v1 ----
    res("authorization.k8s.io", "v1", "localsubjectaccessreviews", "localsubjectaccessreview", "LocalSubjectAccessReview", true)
        .verbs(CREATE).virtual_only(),
    res("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview", false)
        .verbs(CREATE).virtual_only(),
    res("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "selfsubjectrulesreview", "SelfSubjectRulesReview", false)
        .verbs(CREATE).virtual_only(),
    res("authorization.k8s.io", "v1", "subjectaccessreviews", "subjectaccessreview", "SubjectAccessReview", false)
        .verbs(CREATE).virtual_only(),
    // ---- autoscaling/v2, then v1 (both over one storage) ----
    res("autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler", true)
        .short(&["hpa"]).cats(ALL).subs(HPA_SUBS),
    res("autoscaling", "v1", "horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler", true)
        .short(&["hpa"]).cats(ALL).subs(HPA_SUBS).stored_as("autoscaling/v2"),
    // ---- batch/v1 ----
    res("batch", "v1", "cronjobs", "cronjob", "CronJob", true)
        .short(&["cj"]).cats(ALL).subs(&[status("CronJob")]),
    res("batch", "v1", "jobs", "job", "Job", true).cats(ALL).subs(&[status("Job")]),
    // ---- certificates.k8s.io/v1 ----
    res("certificates.k8s.io", "v1", "certificatesigningrequests", "certificatesigningrequest", "CertificateSigningRequest", false)
        .short(&["csr"])
        .subs(&[sub("approval", "CertificateSigningRequest", GET_PATCH_UPDATE), status("CertificateSigningRequest")]),
    // ---- networking.k8s.io/v1 ----
    res("networking.k8s.io", "v1", "ingressclasses", "ingressclass", "IngressClass", false),
    res("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", true)
        .short(&["ing"]).prefix("ingress").subs(&[status("Ingress")]),
    res("networking.k8s.io", "v1", "ipaddresses", "ipaddress", "IPAddress", false).short(&["ip"]),
    res("networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", true)
        .short(&["netpol"]),
    res("networking.k8s.io", "v1", "servicecidrs", "servicecidr", "ServiceCIDR", false)
        .subs(&[status("ServiceCIDR")]),
    // ---- policy/v1 ----
    res("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", true)
        .short(&["pdb"]).subs(&[status("PodDisruptionBudget")]),
    // ---- rbac.authorization.k8s.io/v1 ----
    res("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false),
    res("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", false),
    res("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", true),
    res("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", true),
    // ---- storage.k8s.io/v1 ----
    res("storage.k8s.io", "v1", "csidrivers", "csidriver", "CSIDriver", false),
    res("storage.k8s.io", "v1", "csinodes", "csinode", "CSINode", false),
    res("storage.k8s.io", "v1", "csistoragecapacities", "csistoragecapacity", "CSIStorageCapacity", true),
    res("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", false).short(&["sc"]),
    res("storage.k8s.io", "v1", "volumeattachments", "volumeattachment", "VolumeAttachment", false)
        .subs(&[status("VolumeAttachment")]),
    res("storage.k8s.io", "v1", "volumeattributesclasses", "volumeattributesclass", "VolumeAttributesClass", false)
        .short(&["vac"]),
    // ---- admissionregistration.k8s.io/v1 ----
    res("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "mutatingwebhookconfiguration", "MutatingWebhookConfiguration", false)
        .cats(API_EXTENSIONS),
    res("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", "validatingadmissionpolicy", "ValidatingAdmissionPolicy", false)
        .cats(API_EXTENSIONS).subs(&[status("ValidatingAdmissionPolicy")]),
    res("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings", "validatingadmissionpolicybinding", "ValidatingAdmissionPolicyBinding", false)
        .cats(API_EXTENSIONS),
    res("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "validatingwebhookconfiguration", "ValidatingWebhookConfiguration", false)
        .cats(API_EXTENSIONS),
    // ---- apiextensions.k8s.io/v1 (apiextensions-apiserver; stored under its group) ----
    res("apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition", "CustomResourceDefinition", false)
        .short(&["crd", "crds"]).cats(API_EXTENSIONS)
        .prefix("apiextensions.k8s.io/customresourcedefinitions")
        .subs(&[status("CustomResourceDefinition")]),
    // ---- scheduling.k8s.io/v1 ----
    res("scheduling.k8s.io", "v1", "priorityclasses", "priorityclass", "PriorityClass", false).short(&["pc"]),
    // ---- coordination.k8s.io/v1 ----
    res("coordination.k8s.io", "v1", "leases", "lease", "Lease", true),
    // ---- node.k8s.io/v1 ----
    res("node.k8s.io", "v1", "runtimeclasses", "runtimeclass", "RuntimeClass", false),
    // ---- discovery.k8s.io/v1 ----
    res("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", true),
    // ---- flowcontrol.apiserver.k8s.io/v1 ----
    res("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", "flowschema", "FlowSchema", false)
        .subs(&[status("FlowSchema")]),
    res("flowcontrol.apiserver.k8s.io", "v1", "prioritylevelconfigurations", "prioritylevelconfiguration", "PriorityLevelConfiguration", false)
        .subs(&[status("PriorityLevelConfiguration")]),
    // ---- resource.k8s.io/v1 (dynamic resource allocation, GA in 1.34) ----
    res("resource.k8s.io", "v1", "deviceclasses", "deviceclass", "DeviceClass", false),
    res("resource.k8s.io", "v1", "resourceclaims", "resourceclaim", "ResourceClaim", true)
        .subs(&[status("ResourceClaim")]),
    res("resource.k8s.io", "v1", "resourceclaimtemplates", "resourceclaimtemplate", "ResourceClaimTemplate", true),
    res("resource.k8s.io", "v1", "resourceslices", "resourceslice", "ResourceSlice", false),
];

/// Hash indexes over [`RESOURCES`], built on first lookup.
struct Index {
    by_gvr: HashMap<(&'static str, &'static str, &'static str), usize>,
    by_gvk: HashMap<(&'static str, &'static str, &'static str), usize>,
    /// Plural, singular and short names to the first (preferred) resource using them.
    by_name: HashMap<&'static str, usize>,
    by_short: HashMap<&'static str, usize>,
    by_gv: HashMap<(&'static str, &'static str), Range<usize>>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let mut idx = Index {
        by_gvr: HashMap::with_capacity(RESOURCES.len()),
        by_gvk: HashMap::with_capacity(RESOURCES.len()),
        by_name: HashMap::new(),
        by_short: HashMap::new(),
        by_gv: HashMap::new(),
    };
    for (i, r) in RESOURCES.iter().enumerate() {
        idx.by_gvr.insert((r.group, r.version, r.plural), i);
        idx.by_gvk.insert((r.group, r.version, r.kind), i);
        // First entry wins: the table is in discovery order, so core beats events.k8s.io for
        // `events`/`ev` and autoscaling/v2 beats v1, as kubectl resolves them.
        for name in [r.plural, r.singular]
            .into_iter()
            .chain(r.short_names.iter().copied())
        {
            idx.by_name.entry(name).or_insert(i);
        }
        for short in r.short_names {
            idx.by_short.entry(short).or_insert(i);
        }
        idx.by_gv
            .entry((r.group, r.version))
            .and_modify(|range| range.end = i + 1)
            .or_insert(i..i + 1);
    }
    idx
});

/// Every built-in resource, in discovery order.
pub fn all() -> &'static [Resource] {
    RESOURCES
}

/// The resource served at `group/version/plural`.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    INDEX
        .by_gvr
        .get(&(group, version, plural))
        .map(|&i| &RESOURCES[i])
}

/// The resource whose objects have this group, version and kind.
pub fn lookup_kind(group: &str, version: &str, kind: &str) -> Option<&'static Resource> {
    INDEX
        .by_gvk
        .get(&(group, version, kind))
        .map(|&i| &RESOURCES[i])
}

/// The preferred resource with this short name (`po`, `deploy`, `ev` → core events).
pub fn by_short_name(short: &str) -> Option<&'static Resource> {
    INDEX.by_short.get(short).map(|&i| &RESOURCES[i])
}

/// The preferred resource a kubectl-style name refers to: a plural, singular or short name.
pub fn resolve(name: &str) -> Option<&'static Resource> {
    INDEX.by_name.get(name).map(|&i| &RESOURCES[i])
}

/// The resources of one group-version, in discovery order (an `APIResourceList`). Empty for a
/// group-version that is not served.
pub fn resources_in(group: &str, version: &str) -> &'static [Resource] {
    INDEX
        .by_gv
        .get(&(group, version))
        .map_or(&[], |range| &RESOURCES[range.clone()])
}

/// The `/apis` group with this name.
pub fn api_group(name: &str) -> Option<&'static ApiGroup> {
    API_GROUPS.iter().find(|g| g.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope, Resource as K8sResource};
    use std::any::TypeId;

    const CRUD_STR: &str = "create delete deletecollection get list patch update watch";

    fn get(group: &str, version: &str, plural: &str) -> &'static Resource {
        lookup(group, version, plural).unwrap_or_else(|| panic!("{group}/{version}/{plural}"))
    }

    #[test]
    fn pods_match_upstream_discovery() {
        let pods = get("", "v1", "pods");
        assert_eq!(pods.kind, "Pod");
        assert_eq!(pods.singular, "pod");
        assert!(pods.namespaced);
        assert_eq!(pods.verbs.join(" "), CRUD_STR);
        assert_eq!(pods.short_names, ["po"]);
        assert_eq!(pods.categories, ["all"]);
        let names: Vec<_> = pods.subresources.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "attach",
                "binding",
                "ephemeralcontainers",
                "eviction",
                "exec",
                "log",
                "portforward",
                "proxy",
                "resize",
                "status"
            ]
        );
        let eviction = pods.subresource("eviction").expect("eviction");
        assert_eq!(eviction.kind_group_version, Some(("policy", "v1")));
        assert_eq!((eviction.kind, eviction.verbs), ("Eviction", CREATE));
        assert_eq!(pods.subresource("log").map(|s| s.verbs), Some(GET));
        assert_eq!(
            pods.subresource("exec").map(|s| s.kind),
            Some("PodExecOptions")
        );
        assert_eq!(
            pods.storage_key("default", "web").as_deref(),
            Some("/registry/pods/default/web")
        );
        assert!(pods.watch_cache);
    }

    #[test]
    fn special_core_resources() {
        let cs = get("", "v1", "componentstatuses");
        assert_eq!(cs.verbs, ["get", "list"]);
        assert_eq!(cs.short_names, ["cs"]);
        assert!(!cs.namespaced);
        assert_eq!(cs.storage_prefix, None);
        let bindings = get("", "v1", "bindings");
        assert_eq!(bindings.verbs, ["create"]);
        assert_eq!(bindings.storage_key("ns", "x"), None);
        let ns = get("", "v1", "namespaces");
        assert!(!ns.has_verb("deletecollection"));
        assert_eq!(ns.subresource("finalize").map(|s| s.verbs), Some(UPDATE));
        let sa = get("", "v1", "serviceaccounts");
        let token = sa.subresource("token").expect("token");
        assert_eq!(
            token.kind_group_version,
            Some(("authentication.k8s.io", "v1"))
        );
        assert_eq!(token.kind, "TokenRequest");
        assert_eq!(get("", "v1", "endpoints").singular, "endpoints");
        assert_eq!(get("", "v1", "events").short_names, ["ev"]);
        assert!(get("", "v1", "nodes").subresource("proxy").is_some());
        assert!(get("", "v1", "services").subresource("proxy").is_some());
        let rc_scale = get("", "v1", "replicationcontrollers")
            .subresource("scale")
            .expect("scale");
        assert_eq!(rc_scale.kind_group_version, Some(("autoscaling", "v1")));
        assert_eq!(
            get("certificates.k8s.io", "v1", "certificatesigningrequests")
                .subresource("approval")
                .map(|s| s.verbs),
            Some(GET_PATCH_UPDATE)
        );
    }

    #[test]
    fn storage_prefixes_match_kube_apiserver_layout() {
        let cases = [
            (
                "",
                "services",
                "default",
                "kubernetes",
                "/registry/services/specs/default/kubernetes",
            ),
            (
                "",
                "endpoints",
                "default",
                "kubernetes",
                "/registry/services/endpoints/default/kubernetes",
            ),
            ("", "nodes", "", "n1", "/registry/minions/n1"),
            (
                "",
                "replicationcontrollers",
                "ns",
                "rc",
                "/registry/controllers/ns/rc",
            ),
            (
                "apps",
                "deployments",
                "ns",
                "d",
                "/registry/deployments/ns/d",
            ),
            (
                "networking.k8s.io",
                "ingresses",
                "ns",
                "i",
                "/registry/ingress/ns/i",
            ),
            (
                "coordination.k8s.io",
                "leases",
                "kube-node-lease",
                "n1",
                "/registry/leases/kube-node-lease/n1",
            ),
            (
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "",
                "a.b.c",
                "/registry/apiextensions.k8s.io/customresourcedefinitions/a.b.c",
            ),
            (
                "apiregistration.k8s.io",
                "apiservices",
                "",
                "v1.apps",
                "/registry/apiregistration.k8s.io/apiservices/v1.apps",
            ),
            (
                "rbac.authorization.k8s.io",
                "clusterroles",
                "",
                "admin",
                "/registry/clusterroles/admin",
            ),
            (
                "",
                "serviceaccounts",
                "ns",
                "default",
                "/registry/serviceaccounts/ns/default",
            ),
        ];
        for (group, plural, ns, name, key) in cases {
            let r = resources_in(
                group,
                api_group(group).map_or("v1", ApiGroup::preferred_version),
            )
            .iter()
            .find(|r| r.plural == plural)
            .unwrap_or_else(|| panic!("{plural}"));
            assert_eq!(r.storage_key(ns, name).as_deref(), Some(key));
        }
        // Both Event APIs share one storage and neither is watch-cached upstream.
        let core = get("", "v1", "events");
        let new = get("events.k8s.io", "v1", "events");
        assert_eq!(core.storage_prefix, new.storage_prefix);
        assert!(!core.watch_cache && !new.watch_cache);
        assert_eq!(
            get("autoscaling", "v1", "horizontalpodautoscalers").storage_prefix,
            get("autoscaling", "v2", "horizontalpodautoscalers").storage_prefix
        );
        // Everything stored except events is watch-cached; nothing unstored is.
        for r in RESOURCES {
            assert_eq!(
                r.watch_cache,
                r.storage_prefix.is_some() && r.plural != "events",
                "{}",
                r.plural
            );
        }
    }

    #[test]
    fn a_shared_prefix_holds_one_served_version() {
        // kube-apiserver's storage versions: autoscaling/v2 HPAs, core v1 Events.
        let hpa_v1 = get("autoscaling", "v1", "horizontalpodautoscalers");
        let hpa_v2 = get("autoscaling", "v2", "horizontalpodautoscalers");
        assert_eq!(hpa_v1.storage_api_version(), "autoscaling/v2");
        assert_eq!(hpa_v2.storage_api_version(), "autoscaling/v2");
        let events = get("events.k8s.io", "v1", "events");
        assert_eq!(events.storage_api_version(), "v1");
        assert!(hpa_v1.shares_storage() && hpa_v2.shares_storage() && events.shares_storage());
        assert!(!get("", "v1", "configmaps").shares_storage());
        // Every version under a shared prefix names the same stored version, one that is served
        // there and stores as itself.
        for r in RESOURCES.iter().filter(|r| r.shares_storage()) {
            let stored = r.storage_api_version();
            let owner = RESOURCES
                .iter()
                .find(|o| o.storage_prefix == r.storage_prefix && o.api_version() == stored)
                .unwrap_or_else(|| panic!("{} {}: {stored} is not served", r.group, r.plural));
            assert_eq!(owner.stored_as, None, "{}", owner.plural);
        }
    }

    #[test]
    fn short_names_and_names_resolve_to_preferred_versions() {
        assert_eq!(
            by_short_name("deploy").map(|r| r.plural),
            Some("deployments")
        );
        assert_eq!(by_short_name("po").map(|r| r.kind), Some("Pod"));
        assert_eq!(by_short_name("ev").map(|r| r.group), Some(""));
        assert_eq!(by_short_name("hpa").map(|r| r.version), Some("v2"));
        assert_eq!(
            by_short_name("crds").map(|r| r.kind),
            Some("CustomResourceDefinition")
        );
        assert_eq!(by_short_name("nope"), None);
        assert_eq!(resolve("pod").map(|r| r.plural), Some("pods"));
        assert_eq!(resolve("statefulsets").map(|r| r.group), Some("apps"));
        assert_eq!(resolve("netpol").map(|r| r.kind), Some("NetworkPolicy"));
        assert_eq!(
            lookup_kind("apps", "v1", "Deployment").map(|r| r.plural),
            Some("deployments")
        );
        assert_eq!(lookup_kind("", "v1", "Deployment"), None);
        assert_eq!(lookup("apps", "v1beta1", "deployments"), None);
    }

    #[test]
    fn short_names_are_unique_across_groups_except_shared_kinds() {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for r in RESOURCES {
            for s in r.short_names {
                if let Some(kind) = seen.insert(s, r.kind) {
                    assert_eq!(kind, r.kind, "short name {s} used by two kinds");
                }
            }
        }
    }

    #[test]
    fn table_is_in_discovery_order() {
        // Core first, then groups in API_GROUPS order with versions in preferred order.
        let mut expected: Vec<(&str, &str)> = vec![("", "v1")];
        for g in API_GROUPS {
            for v in g.versions {
                expected.push((g.name, v));
            }
        }
        let mut actual: Vec<(&str, &str)> = Vec::new();
        for r in RESOURCES {
            if actual.last() != Some(&(r.group, r.version)) {
                actual.push((r.group, r.version));
            }
        }
        assert_eq!(actual, expected, "group-versions contiguous and ordered");
        for &(g, v) in &expected {
            let list = resources_in(g, v);
            assert!(!list.is_empty(), "{g}/{v}");
            assert!(
                list.windows(2).all(|w| w[0].plural < w[1].plural),
                "{g}/{v} sorted"
            );
            for r in list {
                assert!(
                    r.subresources.windows(2).all(|w| w[0].name < w[1].name),
                    "{} subresources sorted",
                    r.plural
                );
                assert!(
                    r.verbs.windows(2).all(|w| w[0] < w[1]),
                    "{} verbs sorted",
                    r.plural
                );
            }
        }
        assert_eq!(API_GROUPS[0].name, "apiregistration.k8s.io");
        assert_eq!(
            api_group("autoscaling").map(ApiGroup::preferred_version),
            Some("v2")
        );
        assert!(resources_in("resource.k8s.io", "v1beta1").is_empty());
        assert!(API_GROUPS.iter().all(|g| {
            g.versions
                .iter()
                .all(|v| !v.contains("alpha") && !v.contains("beta"))
        }));
    }

    #[test]
    fn api_versions_and_group_names() {
        let d = get("apps", "v1", "deployments");
        assert_eq!(d.api_version(), "apps/v1");
        assert_eq!(get("", "v1", "pods").api_version(), "v1");
        assert_eq!(d.group_resource().to_string(), "deployments.apps");
        assert_eq!(d.group_kind().to_string(), "Deployment.apps");
        assert_eq!(get("", "v1", "pods").group_resource().to_string(), "pods");
    }

    /// Asserts that the table's entry for a k8s-openapi type agrees on group, version, kind,
    /// plural and scope, and returns its index so the caller can check every entry is covered.
    fn check<K: K8sResource<Scope: 'static>>() -> usize {
        let r = lookup(K::GROUP, K::VERSION, K::URL_PATH_SEGMENT)
            .unwrap_or_else(|| panic!("{} missing from table", K::KIND));
        assert_eq!(r.kind, K::KIND);
        assert_eq!(r.api_version(), K::API_VERSION);
        let scope = TypeId::of::<K::Scope>();
        let namespaced = if scope == TypeId::of::<NamespaceResourceScope>() {
            true
        } else {
            assert_eq!(scope, TypeId::of::<ClusterResourceScope>(), "{}", K::KIND);
            false
        };
        assert_eq!(r.namespaced, namespaced, "{} scope", K::KIND);
        RESOURCES
            .iter()
            .position(|x| std::ptr::eq(x, r))
            .unwrap_or_default()
    }

    #[test]
    fn every_entry_has_a_k8s_openapi_type() {
        use k8s_openapi::api::{
            admissionregistration::v1 as adm, apps::v1 as apps, authentication::v1 as authn,
            authorization::v1 as authz, autoscaling::v1 as as1, autoscaling::v2 as as2,
            batch::v1 as batch, certificates::v1 as certs, coordination::v1 as coord,
            core::v1 as core, discovery::v1 as disc, events::v1 as events, flowcontrol::v1 as flow,
            networking::v1 as net, node::v1 as node, policy::v1 as policy, rbac::v1 as rbac,
            resource::v1 as dra, scheduling::v1 as sched, storage::v1 as storage,
        };
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
        use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apireg;

        let covered = [
            check::<core::Binding>(),
            check::<core::ComponentStatus>(),
            check::<core::ConfigMap>(),
            check::<core::Endpoints>(),
            check::<core::Event>(),
            check::<core::LimitRange>(),
            check::<core::Namespace>(),
            check::<core::Node>(),
            check::<core::PersistentVolumeClaim>(),
            check::<core::PersistentVolume>(),
            check::<core::Pod>(),
            check::<core::PodTemplate>(),
            check::<core::ReplicationController>(),
            check::<core::ResourceQuota>(),
            check::<core::Secret>(),
            check::<core::ServiceAccount>(),
            check::<core::Service>(),
            check::<apireg::APIService>(),
            check::<apps::ControllerRevision>(),
            check::<apps::DaemonSet>(),
            check::<apps::Deployment>(),
            check::<apps::ReplicaSet>(),
            check::<apps::StatefulSet>(),
            check::<events::Event>(),
            check::<authn::SelfSubjectReview>(),
            check::<authn::TokenReview>(),
            check::<authz::LocalSubjectAccessReview>(),
            check::<authz::SelfSubjectAccessReview>(),
            check::<authz::SelfSubjectRulesReview>(),
            check::<authz::SubjectAccessReview>(),
            check::<as2::HorizontalPodAutoscaler>(),
            check::<as1::HorizontalPodAutoscaler>(),
            check::<batch::CronJob>(),
            check::<batch::Job>(),
            check::<certs::CertificateSigningRequest>(),
            check::<net::IngressClass>(),
            check::<net::Ingress>(),
            check::<net::IPAddress>(),
            check::<net::NetworkPolicy>(),
            check::<net::ServiceCIDR>(),
            check::<policy::PodDisruptionBudget>(),
            check::<rbac::ClusterRoleBinding>(),
            check::<rbac::ClusterRole>(),
            check::<rbac::RoleBinding>(),
            check::<rbac::Role>(),
            check::<storage::CSIDriver>(),
            check::<storage::CSINode>(),
            check::<storage::CSIStorageCapacity>(),
            check::<storage::StorageClass>(),
            check::<storage::VolumeAttachment>(),
            check::<storage::VolumeAttributesClass>(),
            check::<adm::MutatingWebhookConfiguration>(),
            check::<adm::ValidatingAdmissionPolicy>(),
            check::<adm::ValidatingAdmissionPolicyBinding>(),
            check::<adm::ValidatingWebhookConfiguration>(),
            check::<apiext::CustomResourceDefinition>(),
            check::<sched::PriorityClass>(),
            check::<coord::Lease>(),
            check::<node::RuntimeClass>(),
            check::<disc::EndpointSlice>(),
            check::<flow::FlowSchema>(),
            check::<flow::PriorityLevelConfiguration>(),
            check::<dra::DeviceClass>(),
            check::<dra::ResourceClaim>(),
            check::<dra::ResourceClaimTemplate>(),
            check::<dra::ResourceSlice>(),
        ];
        let mut covered = covered.to_vec();
        covered.sort_unstable();
        covered.dedup();
        assert_eq!(
            covered.len(),
            RESOURCES.len(),
            "every table entry is checked"
        );

        // Subresource kinds from other groups exist too.
        assert_eq!(
            (
                <as1::Scale as K8sResource>::GROUP,
                <as1::Scale as K8sResource>::KIND
            ),
            SCALE
                .kind_group_version
                .map(|(g, _)| (g, SCALE.kind))
                .unwrap_or_default()
        );
        assert_eq!(<policy::Eviction as K8sResource>::KIND, "Eviction");
        assert_eq!(
            <authn::TokenRequest as K8sResource>::GROUP,
            "authentication.k8s.io"
        );
    }
}
