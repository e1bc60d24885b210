//! Table output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): the columns and
//! cells kube-apiserver's printers produce for each built-in resource.
//!
//! [`PRINTERS`] maps a resource (group and plural) to its column definitions
//! ([`columns`](self::columns) module) and row function ([`printers`], [`pod`]); resources
//! without a printer get upstream's default table (name and creation time). Like the API
//! server, rows always carry the wide (`-o wide`) cells; kubectl hides columns of priority 1
//! unless asked.

mod columns;
mod format;
mod pod;
mod printers;
#[cfg(test)]
mod tests;

use jiff::Timestamp;
use rkube_api::resources::Resource;
use serde::Serialize;
use serde_json::Value;

/// One column, as `metav1.TableColumnDefinition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Header (`NAME`, `READY`; kubectl upper-cases it).
    pub name: &'static str,
    /// OpenAPI type: `string`, `integer`, `number`, `boolean`, `date`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// OpenAPI format: `name` for the name column, otherwise usually empty.
    pub format: &'static str,
    /// What the column shows.
    pub description: &'static str,
    /// 0: always shown; 1 and above: only with `-o wide`.
    pub priority: i32,
}

/// The default table of a resource without its own printer: name and creation time.
const DEFAULT_COLUMNS: &[Column] = &[
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        description: "Name must be unique within a namespace. Is required when creating \
                      resources, although some resources may allow a client to request the \
                      generation of an appropriate name automatically. Name is primarily \
                      intended for creation idempotence and configuration definition. Cannot \
                      be updated. More info: \
                      https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        priority: 0,
    },
    Column {
        name: "Created At",
        type_: "date",
        format: "",
        description: "CreationTimestamp is a timestamp representing the server time when this \
                      object was created. It is not guaranteed to be set in happens-before \
                      order across separate operations. Clients may not set this value. It is \
                      represented in RFC3339 form and is in UTC.\n\nPopulated by the system. \
                      Read-only. Null for lists. More info: \
                      https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        priority: 0,
    },
];

/// Builds a row from cells of mixed types (strings, integers, booleans).
macro_rules! row {
    ($($cell:expr),* $(,)?) => {
        vec![$(serde_json::Value::from($cell)),*]
    };
}
use row;

/// A row function: all cells of one object, as of a given time.
type Row = fn(&Value, Timestamp) -> Vec<Value>;

/// One upstream printer: the resources it serves, its columns and its row function.
struct Printer {
    group: &'static str,
    plurals: &'static [&'static str],
    columns: &'static [Column],
    row: Row,
}

const fn printer(
    group: &'static str,
    plurals: &'static [&'static str],
    columns: &'static [Column],
    row: Row,
) -> Printer {
    Printer {
        group,
        plurals,
        columns,
        row,
    }
}

/// Every built-in printer, by API group and plural (all versions of a group share one).
const PRINTERS: &[Printer] = {
    use columns as c;
    use printers as p;
    &[
        printer("", &["pods"], c::POD, pod::row),
        printer("", &["podtemplates"], c::POD_TEMPLATE, p::pod_template),
        printer(
            "",
            &["replicationcontrollers"],
            c::REPLICATION_CONTROLLER,
            p::replication_controller,
        ),
        printer("", &["services"], c::SERVICE, p::service),
        printer("", &["endpoints"], c::ENDPOINTS, p::endpoints),
        printer("", &["nodes"], c::NODE, p::node),
        printer("", &["events"], c::EVENT, |o, now| {
            p::event(o, now, &p::CORE_EVENT)
        }),
        printer("", &["namespaces"], c::NAMESPACE, p::namespace),
        printer("", &["secrets"], c::SECRET, p::secret),
        printer(
            "",
            &["serviceaccounts"],
            c::SERVICE_ACCOUNT,
            p::service_account,
        ),
        printer(
            "",
            &["persistentvolumes"],
            c::PERSISTENT_VOLUME,
            p::persistent_volume,
        ),
        printer(
            "",
            &["persistentvolumeclaims"],
            c::PERSISTENT_VOLUME_CLAIM,
            p::persistent_volume_claim,
        ),
        printer(
            "",
            &["componentstatuses"],
            c::COMPONENT_STATUS,
            p::component_status,
        ),
        printer("", &["configmaps"], c::CONFIG_MAP, p::config_map),
        printer(
            "",
            &["resourcequotas"],
            c::RESOURCE_QUOTA,
            p::resource_quota,
        ),
        printer("apps", &["deployments"], c::DEPLOYMENT, p::deployment),
        printer("apps", &["replicasets"], c::REPLICA_SET, p::replica_set),
        printer("apps", &["daemonsets"], c::DAEMON_SET, p::daemon_set),
        printer("apps", &["statefulsets"], c::STATEFUL_SET, p::stateful_set),
        printer(
            "apps",
            &["controllerrevisions"],
            c::CONTROLLER_REVISION,
            p::controller_revision,
        ),
        printer("batch", &["jobs"], c::JOB, p::job),
        printer("batch", &["cronjobs"], c::CRON_JOB, p::cron_job),
        printer(
            "autoscaling",
            &["horizontalpodautoscalers"],
            c::HORIZONTAL_POD_AUTOSCALER,
            p::horizontal_pod_autoscaler,
        ),
        printer(
            "policy",
            &["poddisruptionbudgets"],
            c::POD_DISRUPTION_BUDGET,
            p::pod_disruption_budget,
        ),
        printer("events.k8s.io", &["events"], c::EVENT, |o, now| {
            p::event(o, now, &p::EVENTS_API_EVENT)
        }),
        printer("networking.k8s.io", &["ingresses"], c::INGRESS, p::ingress),
        printer(
            "networking.k8s.io",
            &["ingressclasses"],
            c::INGRESS_CLASS,
            p::ingress_class,
        ),
        printer(
            "networking.k8s.io",
            &["networkpolicies"],
            c::NETWORK_POLICY,
            p::network_policy,
        ),
        printer(
            "networking.k8s.io",
            &["servicecidrs"],
            c::SERVICE_CIDR,
            p::service_cidr,
        ),
        printer(
            "networking.k8s.io",
            &["ipaddresses"],
            c::IP_ADDRESS,
            p::ip_address,
        ),
        printer(
            "discovery.k8s.io",
            &["endpointslices"],
            c::ENDPOINT_SLICE,
            p::endpoint_slice,
        ),
        printer(
            "rbac.authorization.k8s.io",
            &["rolebindings"],
            c::ROLE_BINDING,
            p::role_binding,
        ),
        printer(
            "rbac.authorization.k8s.io",
            &["clusterrolebindings"],
            c::CLUSTER_ROLE_BINDING,
            p::role_binding,
        ),
        printer(
            "certificates.k8s.io",
            &["certificatesigningrequests"],
            c::CERTIFICATE_SIGNING_REQUEST,
            p::certificate_signing_request,
        ),
        printer("coordination.k8s.io", &["leases"], c::LEASE, p::lease),
        printer(
            "storage.k8s.io",
            &["storageclasses"],
            c::STORAGE_CLASS,
            p::storage_class,
        ),
        printer(
            "storage.k8s.io",
            &["volumeattributesclasses"],
            c::VOLUME_ATTRIBUTES_CLASS,
            p::volume_attributes_class,
        ),
        printer(
            "storage.k8s.io",
            &["volumeattachments"],
            c::VOLUME_ATTACHMENT,
            p::volume_attachment,
        ),
        printer("storage.k8s.io", &["csinodes"], c::CSI_NODE, p::csi_node),
        printer(
            "storage.k8s.io",
            &["csidrivers"],
            c::CSI_DRIVER,
            p::csi_driver,
        ),
        printer(
            "storage.k8s.io",
            &["csistoragecapacities"],
            c::CSI_STORAGE_CAPACITY,
            p::csi_storage_capacity,
        ),
        printer(
            "scheduling.k8s.io",
            &["priorityclasses"],
            c::PRIORITY_CLASS,
            p::priority_class,
        ),
        printer(
            "node.k8s.io",
            &["runtimeclasses"],
            c::RUNTIME_CLASS,
            p::runtime_class,
        ),
        printer(
            "admissionregistration.k8s.io",
            &[
                "mutatingwebhookconfigurations",
                "validatingwebhookconfigurations",
            ],
            c::WEBHOOK_CONFIGURATION,
            p::webhook_configuration,
        ),
        printer(
            "admissionregistration.k8s.io",
            &["validatingadmissionpolicies"],
            c::VALIDATING_ADMISSION_POLICY,
            p::validating_admission_policy,
        ),
        printer(
            "admissionregistration.k8s.io",
            &["validatingadmissionpolicybindings"],
            c::VALIDATING_ADMISSION_POLICY_BINDING,
            p::validating_admission_policy_binding,
        ),
        printer(
            "flowcontrol.apiserver.k8s.io",
            &["flowschemas"],
            c::FLOW_SCHEMA,
            p::flow_schema,
        ),
        printer(
            "flowcontrol.apiserver.k8s.io",
            &["prioritylevelconfigurations"],
            c::PRIORITY_LEVEL_CONFIGURATION,
            p::priority_level_configuration,
        ),
        printer(
            "resource.k8s.io",
            &["deviceclasses", "resourceclaimtemplates"],
            c::NAME_AGE,
            p::name_age,
        ),
        printer(
            "resource.k8s.io",
            &["resourceclaims"],
            c::RESOURCE_CLAIM,
            p::resource_claim,
        ),
        printer(
            "resource.k8s.io",
            &["resourceslices"],
            c::RESOURCE_SLICE,
            p::resource_slice,
        ),
        printer(
            "apiregistration.k8s.io",
            &["apiservices"],
            c::API_SERVICE,
            p::api_service,
        ),
    ]
};

/// The printer of `resource`, if upstream has one.
fn find(resource: &Resource) -> Option<&'static Printer> {
    PRINTERS
        .iter()
        .find(|p| p.group == resource.group && p.plurals.contains(&resource.plural))
}

/// The column definitions of `resource`'s table.
pub fn columns(resource: &Resource) -> &'static [Column] {
    find(resource).map_or(DEFAULT_COLUMNS, |p| p.columns)
}

/// The cells of one row for `object`, one per column of [`columns`], as of `now`
/// (ages are relative to it). Missing or odd fields give upstream's placeholders, never a
/// panic.
pub fn cells(resource: &Resource, object: &Value, now: Timestamp) -> Vec<Value> {
    match find(resource) {
        Some(p) => (p.row)(object, now),
        None => {
            let meta =
                |field| rkube_api::meta::field(object, field).map_or(Value::Null, Value::from);
            vec![meta("name"), meta("creationTimestamp")]
        }
    }
}
