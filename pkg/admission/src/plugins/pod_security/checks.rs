//! The Pod Security Standards checks (upstream's `pod-security-admission/policy`), each with
//! the versions where its rule changed, and the evaluation of a level at a version: the
//! baseline checks in ID order, then (for restricted) the restricted ones, a restricted check
//! replacing the baseline check it overrides.

use std::collections::BTreeSet;

use serde_json::Value;

use super::policy::{Level, LevelVersion, Version};

/// The newest policy version: the minor of the Kubernetes version rkube serves. `latest` and
/// newer versions evaluate as this one, as upstream caps them at its own version.
pub const NEWEST_MINOR: u32 = rkube_api::KUBERNETES_MINOR;

/// One failed check: upstream's reason and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `privileged`, `runAsNonRoot != true`...
    pub reason: &'static str,
    /// What exactly (`container "c" must not set securityContext.privileged=true`).
    pub detail: String,
}

/// The pod (or pod template) a check reads: its metadata and spec.
#[derive(Debug, Clone, Copy)]
pub struct Pod<'a> {
    /// `metadata` (annotations are read).
    pub meta: &'a Value,
    /// `spec`.
    pub spec: &'a Value,
}

impl<'a> Pod<'a> {
    /// Init containers, containers, ephemeral containers: upstream's visiting order.
    fn containers(&self) -> impl Iterator<Item = Container<'a>> {
        ["initContainers", "containers", "ephemeralContainers"]
            .into_iter()
            .flat_map(|list| self.spec[list].as_array().into_iter().flatten())
            .map(|spec| Container {
                name: spec["name"].as_str().unwrap_or(""),
                spec,
            })
    }

    fn sc(&self, field: &str) -> &'a Value {
        let spec: &'a Value = self.spec;
        &spec["securityContext"][field]
    }

    fn annotations(&self) -> impl Iterator<Item = (&str, &str)> {
        self.meta["annotations"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
    }

    /// Upstream's `spec.os.name == windows` exemptions (1.25+).
    fn windows(&self) -> bool {
        self.spec["os"]["name"] == "windows"
    }

    /// The names of the containers for which `bad` holds.
    fn containers_where(&self, bad: impl Fn(&Container<'a>) -> bool) -> Vec<&'a str> {
        self.containers()
            .filter(|c| bad(c))
            .map(|c| c.name)
            .collect()
    }
}

struct Container<'a> {
    name: &'a str,
    spec: &'a Value,
}

impl<'a> Container<'a> {
    fn sc(&self, field: &str) -> &'a Value {
        let spec: &'a Value = self.spec;
        &spec["securityContext"][field]
    }
}

fn set(value: &Value) -> bool {
    !value.is_null()
}

fn quote_join<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    items
        .into_iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 { singular } else { plural }
}

/// `container "a"` / `containers "a", "b"`.
fn containers_phrase(names: &[&str]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        quote_join(names)
    )
}

/// "pod" first when the pod itself is at fault, then the containers.
fn setters(pod_bad: bool, containers: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    if pod_bad {
        out.push("pod".to_owned());
    }
    if !containers.is_empty() {
        out.push(containers_phrase(containers));
    }
    out
}

fn fail(reason: &'static str, detail: String) -> Option<Violation> {
    Some(Violation { reason, detail })
}

type CheckFn = fn(&Pod<'_>) -> Option<Violation>;

/// One check: its ID (which orders checks and names overrides), its level, the minor version
/// each rule starts at (ascending), and the baseline check it replaces at restricted.
struct Check {
    id: &'static str,
    level: Level,
    versions: &'static [(u32, CheckFn)],
    overrides: Option<&'static str>,
}

/// Every check. Upstream orders a level's checks by ID, baseline ones first.
const CHECKS: &[Check] = &[
    Check {
        id: "allowPrivilegeEscalation",
        level: Level::Restricted,
        versions: &[
            (8, allow_privilege_escalation),
            (25, |p| {
                (!p.windows()).then(|| allow_privilege_escalation(p))?
            }),
        ],
        overrides: None,
    },
    Check {
        id: "appArmorProfile",
        level: Level::Baseline,
        versions: &[(0, app_armor_profile)],
        overrides: None,
    },
    Check {
        id: "capabilities_baseline",
        level: Level::Baseline,
        versions: &[(0, capabilities_baseline)],
        overrides: None,
    },
    Check {
        id: "capabilities_restricted",
        level: Level::Restricted,
        versions: &[
            (22, capabilities_restricted),
            (25, |p| {
                (!p.windows()).then(|| capabilities_restricted(p))?
            }),
        ],
        overrides: Some("capabilities_baseline"),
    },
    Check {
        id: "hostNamespaces",
        level: Level::Baseline,
        versions: &[(0, host_namespaces)],
        overrides: None,
    },
    Check {
        id: "hostPathVolumes",
        level: Level::Baseline,
        versions: &[(0, host_path_volumes)],
        overrides: None,
    },
    Check {
        id: "hostPorts",
        level: Level::Baseline,
        versions: &[(0, host_ports)],
        overrides: None,
    },
    Check {
        id: "hostProbesAndHostLifecycle",
        level: Level::Baseline,
        versions: &[(34, host_probes_and_lifecycle)],
        overrides: None,
    },
    Check {
        id: "privileged",
        level: Level::Baseline,
        versions: &[(0, privileged)],
        overrides: None,
    },
    Check {
        id: "procMount",
        level: Level::Baseline,
        versions: &[(0, proc_mount)],
        overrides: None,
    },
    Check {
        id: "restrictedVolumes",
        level: Level::Restricted,
        versions: &[(0, restricted_volumes)],
        overrides: Some("hostPathVolumes"),
    },
    Check {
        id: "runAsNonRoot",
        level: Level::Restricted,
        versions: &[(0, run_as_non_root)],
        overrides: None,
    },
    Check {
        id: "runAsUser",
        level: Level::Restricted,
        versions: &[(23, run_as_user)],
        overrides: None,
    },
    Check {
        id: "seLinuxOptions",
        level: Level::Baseline,
        versions: &[
            (0, |p| se_linux_options(p, SELINUX_TYPES_1_0)),
            (31, |p| se_linux_options(p, SELINUX_TYPES_1_31)),
        ],
        overrides: None,
    },
    Check {
        id: "seccompProfile_baseline",
        level: Level::Baseline,
        versions: &[(0, seccomp_annotations), (19, seccomp_baseline)],
        overrides: None,
    },
    Check {
        id: "seccompProfile_restricted",
        level: Level::Restricted,
        versions: &[
            (19, seccomp_restricted),
            (25, |p| (!p.windows()).then(|| seccomp_restricted(p))?),
        ],
        overrides: Some("seccompProfile_baseline"),
    },
    Check {
        id: "sysctls",
        level: Level::Baseline,
        versions: &[
            (0, |p| sysctls(p, 1)),
            (27, |p| sysctls(p, 2)),
            (29, |p| sysctls(p, 3)),
            (32, |p| sysctls(p, 4)),
        ],
        overrides: None,
    },
    Check {
        id: "windowsHostProcess",
        level: Level::Baseline,
        versions: &[(0, windows_host_process)],
        overrides: None,
    },
];

impl Check {
    /// The rule in force at `minor`, if the check exists there.
    fn at(&self, minor: u32) -> Option<CheckFn> {
        self.versions
            .iter()
            .rev()
            .find(|(since, _)| *since <= minor)
            .map(|(_, f)| *f)
    }
}

/// The checks of `lv` on `pod`, in upstream's order; empty for privileged.
pub fn evaluate(lv: LevelVersion, pod: &Pod<'_>) -> Vec<Violation> {
    let minor = match lv.version {
        Version::V1(minor) => minor.min(NEWEST_MINOR),
        Version::Latest => NEWEST_MINOR,
    };
    let active = |level: Level| {
        CHECKS
            .iter()
            .filter(move |c| c.level == level)
            .filter_map(move |c| Some((c, c.at(minor)?)))
    };
    let restricted: Vec<(&Check, CheckFn)> = match lv.level {
        Level::Privileged => return Vec::new(),
        Level::Baseline => Vec::new(),
        Level::Restricted => active(Level::Restricted).collect(),
    };
    let overridden = |id: &str| restricted.iter().any(|(c, _)| c.overrides == Some(id));
    active(Level::Baseline)
        .filter(|(c, _)| !overridden(c.id))
        .chain(restricted.iter().copied())
        .filter_map(|(_, check)| check(pod))
        .collect()
}

/// Upstream's detail summary: `reason (detail), reason (detail)`.
pub fn details(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            if v.detail.is_empty() {
                v.reason.to_owned()
            } else {
                format!("{} ({})", v.reason, v.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Upstream's reason summary: `reason, reason`.
pub fn reasons(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| v.reason)
        .collect::<Vec<_>>()
        .join(", ")
}

fn allow_privilege_escalation(pod: &Pod<'_>) -> Option<Violation> {
    let bad = pod.containers_where(|c| c.sc("allowPrivilegeEscalation") != false);
    if bad.is_empty() {
        return None;
    }
    fail(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

fn app_armor_profile(pod: &Pod<'_>) -> Option<Violation> {
    let bad_type = |profile: &Value| {
        let allowed = matches!(
            profile["type"].as_str(),
            Some("RuntimeDefault" | "Localhost")
        );
        (set(profile) && !allowed).then(|| profile["type"].as_str().unwrap_or("").to_owned())
    };
    let mut bad_values = BTreeSet::new();
    let pod_bad = bad_type(pod.sc("appArmorProfile"));
    let pod_is_bad = pod_bad.is_some();
    bad_values.extend(pod_bad);
    let mut bad_containers = Vec::new();
    for c in pod.containers() {
        if let Some(t) = bad_type(c.sc("appArmorProfile")) {
            bad_containers.push(c.name);
            bad_values.insert(t);
        }
    }
    let mut setters = setters(pod_is_bad, &bad_containers);
    let mut values: Vec<String> = bad_values.into_iter().collect();
    let mut annotations: Vec<String> = pod
        .annotations()
        .filter(|(k, v)| {
            k.starts_with("container.apparmor.security.beta.kubernetes.io/")
                && !(v.is_empty() || *v == "runtime/default" || v.starts_with("localhost/"))
        })
        .map(|(k, v)| format!("{k}={}", rkube_api::field::go_quote(v)))
        .collect();
    if !annotations.is_empty() {
        annotations.sort();
        setters.push(pluralize("annotation", "annotations", annotations.len()).to_owned());
        values.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    fail(
        if values.len() == 1 {
            "forbidden AppArmor profile"
        } else {
            "forbidden AppArmor profiles"
        },
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            quote_join(&values)
        ),
    )
}

fn added_capabilities<'a>(c: &Container<'a>) -> impl Iterator<Item = &'a str> {
    c.spec["securityContext"]["capabilities"]["add"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap_or(""))
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The containers adding a capability `allowed` refuses, and those capabilities (sorted).
fn forbidden_capabilities<'a>(
    pod: &'a Pod<'_>,
    allowed: impl Fn(&str) -> bool,
) -> (Vec<&'a str>, BTreeSet<&'a str>) {
    let mut names = Vec::new();
    let mut caps = BTreeSet::new();
    for c in pod.containers() {
        let bad: Vec<&str> = added_capabilities(&c).filter(|cap| !allowed(cap)).collect();
        if !bad.is_empty() {
            names.push(c.name);
            caps.extend(bad);
        }
    }
    (names, caps)
}

fn capabilities_baseline(pod: &Pod<'_>) -> Option<Violation> {
    let (names, caps) = forbidden_capabilities(pod, |cap| BASELINE_CAPABILITIES.contains(&cap));
    if names.is_empty() {
        return None;
    }
    fail(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&names),
            quote_join(caps)
        ),
    )
}

fn capabilities_restricted(pod: &Pod<'_>) -> Option<Violation> {
    let no_drop_all = pod.containers_where(|c| {
        !c.sc("capabilities")["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "ALL"))
    });
    let (adding, caps) = forbidden_capabilities(pod, |cap| cap == "NET_BIND_SERVICE");
    let mut details = Vec::new();
    if !no_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&no_drop_all)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            quote_join(caps)
        ));
    }
    if details.is_empty() {
        return None;
    }
    fail("unrestricted capabilities", details.join("; "))
}

fn host_namespaces(pod: &Pod<'_>) -> Option<Violation> {
    let host: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|f| pod.spec[*f] == true)
        .map(|f| format!("{f}=true"))
        .collect();
    if host.is_empty() {
        return None;
    }
    fail("host namespaces", host.join(", "))
}

fn volumes<'a>(pod: &'a Pod<'_>) -> impl Iterator<Item = &'a Value> {
    pod.spec["volumes"].as_array().into_iter().flatten()
}

fn volume_name(volume: &Value) -> &str {
    volume["name"].as_str().unwrap_or("")
}

fn host_path_volumes(pod: &Pod<'_>) -> Option<Violation> {
    let names: Vec<&str> = volumes(pod)
        .filter(|v| set(&v["hostPath"]))
        .map(volume_name)
        .collect();
    if names.is_empty() {
        return None;
    }
    fail(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", names.len()),
            quote_join(&names)
        ),
    )
}

fn host_ports(pod: &Pod<'_>) -> Option<Violation> {
    let mut names = Vec::new();
    // Upstream keeps the ports as a set of strings: sorted as text.
    let mut ports = BTreeSet::new();
    for c in pod.containers() {
        let own: Vec<String> = c.spec["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["hostPort"].as_i64())
            .filter(|p| *p != 0)
            .map(|p| p.to_string())
            .collect();
        if !own.is_empty() {
            names.push(c.name);
            ports.extend(own);
        }
    }
    if names.is_empty() {
        return None;
    }
    fail(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&names),
            pluralize("uses", "use", names.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.into_iter().collect::<Vec<_>>().join(", ")
        ),
    )
}

fn host_probes_and_lifecycle(pod: &Pod<'_>) -> Option<Violation> {
    let mut names = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for c in pod.containers() {
        let handlers = [
            &c.spec["livenessProbe"],
            &c.spec["readinessProbe"],
            &c.spec["startupProbe"],
            &c.spec["lifecycle"]["postStart"],
            &c.spec["lifecycle"]["preStop"],
        ];
        for handler in handlers {
            for kind in ["httpGet", "tcpSocket"] {
                if let Some(host) = handler[kind]["host"].as_str().filter(|h| !h.is_empty()) {
                    names.insert(c.name);
                    hosts.insert(host);
                }
            }
        }
    }
    if names.is_empty() {
        return None;
    }
    let names: Vec<&str> = names.into_iter().collect();
    let noun = pluralize(
        "probe or lifecycle host",
        "probe or lifecycle hosts",
        hosts.len(),
    );
    fail(
        "probe or lifecycle host",
        format!(
            "{} {} {noun} {}",
            containers_phrase(&names),
            pluralize("uses", "use", names.len()),
            quote_join(&hosts)
        ),
    )
}

fn privileged(pod: &Pod<'_>) -> Option<Violation> {
    let bad = pod.containers_where(|c| c.sc("privileged") == true);
    if bad.is_empty() {
        return None;
    }
    fail(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

fn proc_mount(pod: &Pod<'_>) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for c in pod.containers() {
        if let Some(m) = c.sc("procMount").as_str().filter(|m| *m != "Default") {
            bad.push(c.name);
            types.insert(m);
        }
    }
    if bad.is_empty() {
        return None;
    }
    fail(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            quote_join(types)
        ),
    )
}

/// The volume sources restricted allows.
const RESTRICTED_ALLOWED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The volume sources restricted refuses, in the order upstream names the first one set.
const RESTRICTED_FORBIDDEN_VOLUMES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

fn restricted_volumes(pod: &Pod<'_>) -> Option<Violation> {
    let mut names = Vec::new();
    let mut types = BTreeSet::new();
    for v in volumes(pod) {
        if RESTRICTED_ALLOWED_VOLUMES.iter().any(|t| set(&v[*t])) {
            continue;
        }
        names.push(volume_name(v));
        let kind = RESTRICTED_FORBIDDEN_VOLUMES
            .iter()
            .find(|t| set(&v[**t]))
            .copied()
            .unwrap_or("unknown");
        types.insert(kind);
    }
    if names.is_empty() {
        return None;
    }
    fail(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", names.len()),
            quote_join(&names),
            pluralize("uses", "use", names.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            quote_join(types)
        ),
    )
}

fn run_as_non_root(pod: &Pod<'_>) -> Option<Violation> {
    let pod_value = pod.sc("runAsNonRoot");
    let explicit = pod.containers_where(|c| c.sc("runAsNonRoot") == false);
    let setters = setters(*pod_value == false, &explicit);
    if !setters.is_empty() {
        return fail(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if *pod_value == true {
        return None;
    }
    let implicit = pod.containers_where(|c| c.sc("runAsNonRoot").is_null());
    if implicit.is_empty() {
        return None;
    }
    fail(
        "runAsNonRoot != true",
        format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_phrase(&implicit)
        ),
    )
}

fn run_as_user(pod: &Pod<'_>) -> Option<Violation> {
    let explicit = pod.containers_where(|c| c.sc("runAsUser") == 0);
    let setters = setters(*pod.sc("runAsUser") == 0, &explicit);
    if setters.is_empty() {
        return None;
    }
    fail(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    )
}

const SELINUX_TYPES_1_0: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];
const SELINUX_TYPES_1_31: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn se_linux_options(pod: &Pod<'_>, allowed_types: &[&str]) -> Option<Violation> {
    let mut bad_types = BTreeSet::new();
    let (mut user, mut role) = (false, false);
    let mut valid = |options: &Value| {
        if options.is_null() {
            return true;
        }
        let text = |f: &str| options[f].as_str().unwrap_or("").to_owned();
        let mut ok = true;
        let kind = text("type");
        if !allowed_types.contains(&kind.as_str()) {
            ok = false;
            bad_types.insert(kind);
        }
        if !text("user").is_empty() {
            ok = false;
            user = true;
        }
        if !text("role").is_empty() {
            ok = false;
            role = true;
        }
        ok
    };
    let pod_bad = !valid(pod.sc("seLinuxOptions"));
    let mut bad_containers = Vec::new();
    for c in pod.containers() {
        if !valid(c.sc("seLinuxOptions")) {
            bad_containers.push(c.name);
        }
    }
    let setters = setters(pod_bad, &bad_containers);
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        data.push(format!(
            "{} {}",
            pluralize("type", "types", bad_types.len()),
            quote_join(&bad_types)
        ));
    }
    if user {
        data.push("user may not be set".to_owned());
    }
    if role {
        data.push("role may not be set".to_owned());
    }
    fail(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    )
}

fn valid_seccomp(profile_type: &Value) -> bool {
    matches!(profile_type.as_str(), Some("RuntimeDefault" | "Localhost"))
}

/// Before 1.19, seccomp profiles were annotations.
fn seccomp_annotations(pod: &Pod<'_>) -> Option<Violation> {
    const POD_KEY: &str = "seccomp.security.alpha.kubernetes.io/pod";
    const CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";
    let valid =
        |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let annotation = |key: &str| pod.meta["annotations"][key].as_str().map(str::to_owned);
    let mut forbidden = BTreeSet::new();
    let keys = std::iter::once(POD_KEY.to_owned()).chain(
        pod.containers()
            .map(|c| format!("{CONTAINER_PREFIX}{}", c.name)),
    );
    for key in keys {
        if let Some(value) = annotation(&key).filter(|v| !valid(v)) {
            forbidden.insert(format!("{key}={}", rkube_api::field::go_quote(&value)));
        }
    }
    if forbidden.is_empty() {
        return None;
    }
    fail(
        "seccompProfile",
        format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", forbidden.len()),
            forbidden.into_iter().collect::<Vec<_>>().join(", ")
        ),
    )
}

/// The explicit seccomp profile types that are not allowed: whether the pod sets one, the
/// containers that do, and the types (sorted).
fn bad_seccomp<'a>(pod: &'a Pod<'_>) -> (bool, Vec<&'a str>, BTreeSet<&'a str>) {
    let mut types = BTreeSet::new();
    let pod_profile = pod.sc("seccompProfile");
    let pod_bad = set(pod_profile) && !valid_seccomp(&pod_profile["type"]);
    if pod_bad {
        types.insert(pod_profile["type"].as_str().unwrap_or(""));
    }
    let mut containers = Vec::new();
    for c in pod.containers() {
        let profile = c.sc("seccompProfile");
        if set(profile) && !valid_seccomp(&profile["type"]) {
            containers.push(c.name);
            types.insert(profile["type"].as_str().unwrap_or(""));
        }
    }
    (pod_bad, containers, types)
}

fn seccomp_explicit(pod: &Pod<'_>) -> Option<Violation> {
    let (pod_bad, containers, types) = bad_seccomp(pod);
    let setters = setters(pod_bad, &containers);
    if setters.is_empty() {
        return None;
    }
    fail(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            quote_join(types)
        ),
    )
}

fn seccomp_baseline(pod: &Pod<'_>) -> Option<Violation> {
    seccomp_explicit(pod)
}

fn seccomp_restricted(pod: &Pod<'_>) -> Option<Violation> {
    if let Some(v) = seccomp_explicit(pod) {
        return Some(v);
    }
    if valid_seccomp(&pod.sc("seccompProfile")["type"]) {
        return None;
    }
    let implicit = pod.containers_where(|c| c.sc("seccompProfile").is_null());
    if implicit.is_empty() {
        return None;
    }
    fail(
        "seccompProfile",
        format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_phrase(&implicit)
        ),
    )
}

/// The safe sysctls, by the version that made them safe (1.0, 1.27, 1.29, 1.32).
const SAFE_SYSCTLS: [&[&str]; 4] = [
    &[
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    ],
    &["net.ipv4.ip_local_reserved_ports"],
    &[
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ],
    &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"],
];

/// Only the sysctls of the first `generations` of [`SAFE_SYSCTLS`] are allowed.
fn sysctls(pod: &Pod<'_>, generations: usize) -> Option<Violation> {
    let safe = |name: &str| {
        SAFE_SYSCTLS[..generations]
            .iter()
            .any(|g| g.contains(&name))
    };
    let bad: Vec<&str> = pod
        .sc("sysctls")
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["name"].as_str().unwrap_or(""))
        .filter(|n| !safe(n))
        .collect();
    if bad.is_empty() {
        return None;
    }
    fail("forbidden sysctls", bad.join(", "))
}

fn windows_host_process(pod: &Pod<'_>) -> Option<Violation> {
    let host_process = |sc: &Value| sc["windowsOptions"]["hostProcess"] == true;
    let bad = pod.containers_where(|c| host_process(&c.spec["securityContext"]));
    let setters = setters(host_process(&pod.spec["securityContext"]), &bad);
    if setters.is_empty() {
        return None;
    }
    fail(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_listed_in_upstreams_id_order() {
        // Upstream orders a level's checks by ID (byte order): the list must stay sorted.
        let ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted);
        for check in CHECKS {
            assert!(
                check.versions.windows(2).all(|w| w[0].0 < w[1].0),
                "{}",
                check.id
            );
            assert!(
                check
                    .versions
                    .iter()
                    .all(|(minor, _)| *minor <= NEWEST_MINOR)
            );
        }
    }
}
