//! The component schemas: k8s-openapi's `JsonSchema` impls for every kind the API serves,
//! generated once per dialect, then decorated as kube-apiserver's documents are:
//! `x-kubernetes-group-version-kind` on every kind (and its list), a `<Kind>List` schema per
//! resource, and the list-merge extensions of [`super::patch_meta`].

use std::borrow::Cow;
use std::sync::LazyLock;

use rkube_api::k8s_openapi::Resource as K8sResource;
use rkube_api::k8s_openapi::api::{
    admissionregistration::v1 as adm, apps::v1 as apps, authentication::v1 as authn,
    authorization::v1 as authz, autoscaling::v1 as as1, autoscaling::v2 as as2, batch::v1 as batch,
    certificates::v1 as certs, coordination::v1 as coord, core::v1 as core, discovery::v1 as disc,
    events::v1 as events, flowcontrol::v1 as flow, networking::v1 as net, node::v1 as node,
    policy::v1 as policy, rbac::v1 as rbac, resource::v1 as dra, scheduling::v1 as sched,
    storage::v1 as storage,
};
use rkube_api::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use rkube_api::k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use rkube_api::k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use rkube_api::k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apireg;
use rkube_api::k8s_openapi::schemars::generate::{SchemaGenerator, SchemaSettings};
use rkube_api::k8s_openapi::schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use super::Dialect;
use super::patch_meta;

/// One kind with a schema: its group, version and kind, and how to generate it.
pub(crate) struct Kind {
    /// API group; empty for core.
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// The schema's name (`io.k8s.api.apps.v1.Deployment`).
    pub name: fn() -> Cow<'static, str>,
    generate: fn(&mut SchemaGenerator) -> Schema,
}

const fn kind<K: K8sResource + JsonSchema>() -> Kind {
    Kind {
        group: K::GROUP,
        version: K::VERSION,
        kind: K::KIND,
        name: K::schema_name,
        generate: SchemaGenerator::subschema_for::<K>,
    }
}

/// Every kind of the resource table, plus the subresource bodies of other groups (`Scale`,
/// `Eviction`, `TokenRequest`).
pub(crate) static KINDS: &[Kind] = &[
    kind::<core::Binding>(),
    kind::<core::ComponentStatus>(),
    kind::<core::ConfigMap>(),
    kind::<core::Endpoints>(),
    kind::<core::Event>(),
    kind::<core::LimitRange>(),
    kind::<core::Namespace>(),
    kind::<core::Node>(),
    kind::<core::PersistentVolumeClaim>(),
    kind::<core::PersistentVolume>(),
    kind::<core::Pod>(),
    kind::<core::PodTemplate>(),
    kind::<core::ReplicationController>(),
    kind::<core::ResourceQuota>(),
    kind::<core::Secret>(),
    kind::<core::ServiceAccount>(),
    kind::<core::Service>(),
    kind::<apireg::APIService>(),
    kind::<apps::ControllerRevision>(),
    kind::<apps::DaemonSet>(),
    kind::<apps::Deployment>(),
    kind::<apps::ReplicaSet>(),
    kind::<apps::StatefulSet>(),
    kind::<events::Event>(),
    kind::<authn::SelfSubjectReview>(),
    kind::<authn::TokenReview>(),
    kind::<authn::TokenRequest>(),
    kind::<authz::LocalSubjectAccessReview>(),
    kind::<authz::SelfSubjectAccessReview>(),
    kind::<authz::SelfSubjectRulesReview>(),
    kind::<authz::SubjectAccessReview>(),
    kind::<as2::HorizontalPodAutoscaler>(),
    kind::<as1::HorizontalPodAutoscaler>(),
    kind::<as1::Scale>(),
    kind::<batch::CronJob>(),
    kind::<batch::Job>(),
    kind::<certs::CertificateSigningRequest>(),
    kind::<net::IngressClass>(),
    kind::<net::Ingress>(),
    kind::<net::IPAddress>(),
    kind::<net::NetworkPolicy>(),
    kind::<net::ServiceCIDR>(),
    kind::<policy::PodDisruptionBudget>(),
    kind::<policy::Eviction>(),
    kind::<rbac::ClusterRoleBinding>(),
    kind::<rbac::ClusterRole>(),
    kind::<rbac::RoleBinding>(),
    kind::<rbac::Role>(),
    kind::<storage::CSIDriver>(),
    kind::<storage::CSINode>(),
    kind::<storage::CSIStorageCapacity>(),
    kind::<storage::StorageClass>(),
    kind::<storage::VolumeAttachment>(),
    kind::<storage::VolumeAttributesClass>(),
    kind::<adm::MutatingWebhookConfiguration>(),
    kind::<adm::ValidatingAdmissionPolicy>(),
    kind::<adm::ValidatingAdmissionPolicyBinding>(),
    kind::<adm::ValidatingWebhookConfiguration>(),
    kind::<apiext::CustomResourceDefinition>(),
    kind::<sched::PriorityClass>(),
    kind::<coord::Lease>(),
    kind::<node::RuntimeClass>(),
    kind::<disc::EndpointSlice>(),
    kind::<flow::FlowSchema>(),
    kind::<flow::PriorityLevelConfiguration>(),
    kind::<dra::DeviceClass>(),
    kind::<dra::ResourceClaim>(),
    kind::<dra::ResourceClaimTemplate>(),
    kind::<dra::ResourceSlice>(),
];

/// The kind with this group, version and kind.
pub(crate) fn find(group: &str, version: &str, kind: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

/// Schema names of the meta types every document's operations use.
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
pub(crate) const API_GROUP: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup";
pub(crate) const API_GROUP_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList";
pub(crate) const API_VERSIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// The name of a kind's list schema.
pub(crate) fn list_name(kind: &Kind) -> String {
    format!("{}List", (kind.name)())
}

/// The v3 component schemas, built once: the v3 documents and field validation share them.
pub(crate) static V3: LazyLock<Map<String, Value>> = LazyLock::new(|| definitions(Dialect::V3));

/// Every component schema in `dialect`, keyed by name.
pub(crate) fn definitions(dialect: Dialect) -> Map<String, Value> {
    let settings = match dialect {
        // `$ref` siblings become `allOf: [{$ref}]` as upstream's v3 documents have them.
        Dialect::V3 => SchemaSettings::openapi3(),
        // Swagger 2.0 keeps `$ref` with sibling descriptions, as upstream's v2 document.
        Dialect::V2 => SchemaSettings::draft07().with(|s| {
            s.definitions_path = "/definitions".into();
            s.meta_schema = None;
            s.transforms.clear();
        }),
    };
    let mut generator = settings.into_generator();
    for k in KINDS {
        (k.generate)(&mut generator);
    }
    for generate in [
        SchemaGenerator::subschema_for::<meta::DeleteOptions>,
        SchemaGenerator::subschema_for::<meta::Status>,
        SchemaGenerator::subschema_for::<meta::WatchEvent<RawExtension>>,
        SchemaGenerator::subschema_for::<meta::Patch>,
        SchemaGenerator::subschema_for::<meta::APIResourceList>,
        SchemaGenerator::subschema_for::<meta::APIGroup>,
        SchemaGenerator::subschema_for::<meta::APIGroupList>,
        SchemaGenerator::subschema_for::<meta::APIVersions>,
        SchemaGenerator::subschema_for::<meta::ListMeta>,
    ] {
        generate(&mut generator);
    }
    let mut defs = generator.take_definitions(true);
    // k8s-openapi makes every resource's `metadata` a required field (its Rust type is not an
    // Option); upstream's Go field is `omitempty` and never required. kubectl's client-side
    // validation would refuse a manifest without metadata (a TokenReview) otherwise.
    for schema in defs.values_mut() {
        if let Some(Value::Array(required)) = schema.get_mut("required") {
            required.retain(|f| f != "metadata");
        }
        if schema
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
            && let Some(map) = schema.as_object_mut()
        {
            map.remove("required");
        }
    }
    for k in KINDS {
        let name = (k.name)();
        let gvk = json!([{"group": k.group, "kind": k.kind, "version": k.version}]);
        if let Some(Value::Object(schema)) = defs.get_mut(name.as_ref()) {
            schema.insert("x-kubernetes-group-version-kind".into(), gvk);
        }
        if rkube_api::resources::lookup_kind(k.group, k.version, k.kind)
            .is_some_and(|r| r.has_verb("list"))
        {
            defs.insert(list_name(k), list_schema(k, dialect));
        }
    }
    let core_gvk = |kind: &str| json!([{"group": "", "kind": kind, "version": "v1"}]);
    for (name, kind) in [
        (STATUS, "Status"),
        (API_RESOURCE_LIST, "APIResourceList"),
        (API_GROUP, "APIGroup"),
        (API_GROUP_LIST, "APIGroupList"),
        (API_VERSIONS, "APIVersions"),
    ] {
        if let Some(Value::Object(schema)) = defs.get_mut(name) {
            schema.insert("x-kubernetes-group-version-kind".into(), core_gvk(kind));
        }
    }
    patch_meta::decorate(&mut defs);
    defs
}

/// A `<Kind>List` schema, shaped as upstream's generated lists.
fn list_schema(kind: &Kind, dialect: Dialect) -> Value {
    let reference = |name: &str| match dialect {
        Dialect::V3 => json!({"allOf": [{"$ref": dialect.reference(name)}]}),
        Dialect::V2 => json!({"$ref": dialect.reference(name)}),
    };
    let mut item = reference(&(kind.name)());
    let mut metadata = reference(LIST_META);
    item["default"] = json!({});
    metadata["description"] = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata".into();
    let api_version = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
    let kind_doc = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
    json!({
        "description": format!("{}List is a list of {} objects.", kind.kind, kind.kind),
        "properties": {
            "apiVersion": {"description": api_version, "type": "string"},
            "items": {"description": format!("Items is the list of {}.", kind.kind), "items": item, "type": "array"},
            "kind": {"description": kind_doc, "type": "string"},
            "metadata": metadata,
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": kind.group, "kind": format!("{}List", kind.kind), "version": kind.version}],
    })
}
