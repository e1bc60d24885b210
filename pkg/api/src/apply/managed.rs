//! `metadata.managedFields`: who owns which fields, kept up to date on every write, and
//! server-side apply. Upstream's field manager stack
//! (`k8s.io/apimachinery/pkg/util/managedfields/internal`) over structured-merge-diff's
//! `merge.Updater`, in one place:
//!
//! - an **update** (create, update, any non-apply patch, subresource writes) takes ownership
//!   of the fields it changed, which leave every other manager's set; a manager entry is
//!   `(manager, Update, apiVersion, subresource)`; more than ten update entries fold the oldest
//!   into `ancient-changes`; an object without managedFields is not tracked on update;
//! - an **apply** merges the configuration into the live object, owns exactly the fields the
//!   configuration sets (entry `(manager, Apply, subresource)`), removes fields it applied
//!   before and no longer sends when nobody else owns them, and refuses to change fields other
//!   managers own unless forced;
//! - `kubectl`'s server-side apply honours the client-side `last-applied-configuration`
//!   annotation: values it already shows are no conflicts, and the annotation follows the
//!   applied configuration.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value, json};

use super::fieldpath::{self, Path, PathElement, Set};
use super::typed::{self, Schema, compare, field_set, merge, remove, with_named_fields};
use crate::status::{ApiError, Reason, StatusCause};

/// kubectl's client-side apply annotation.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager whose server-side applies upgrade from client-side apply (upstream's choice).
const KUBECTL: &str = "kubectl";

/// Upstream's `DefaultMaxUpdateManagers`.
const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager old update entries fold into.
const ANCIENT_CHANGES: &str = "ancient-changes";

/// Upstream's limit on the total size of annotations.
const MAX_ANNOTATIONS_SIZE: usize = 256 * 1024;

/// What can go wrong tracking fields or applying.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Stored managedFields that do not decode.
    #[error("failed to decode managed fields: {0}")]
    Decode(String),
    /// An apply configuration carrying managedFields.
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsInApply,
    /// An apply configuration that does not fit the kind's type.
    #[error("{0}")]
    Typed(#[from] typed::Error),
    /// Apply would change fields other managers own.
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
}

impl Error {
    /// The answer upstream gives: 409 with one cause per conflicting field, 400 for
    /// managedFields in an apply, 500 for the rest (`context` names the object, as
    /// `ns/name; apps/v1, Kind=Deployment`).
    pub fn into_api_error(self, context: &str) -> ApiError {
        match self {
            Error::Conflicts(conflicts) => {
                let causes = conflicts
                    .iter()
                    .map(|c| StatusCause {
                        cause_type: "FieldManagerConflict".into(),
                        message: format!("conflict with {}", c.manager),
                        field: c.path.to_string(),
                    })
                    .collect();
                ApiError::apply_conflict(causes, conflict_message(&conflicts))
            }
            Error::ManagedFieldsInApply => ApiError::bad_request(self.to_string()),
            // Plain errors upstream: 500 with the text as the message.
            Error::Typed(e) => ApiError::new(
                500,
                Reason::InternalError,
                format!("failed to create typed patch object ({context}): {e}"),
                None,
            ),
            Error::Decode(_) => ApiError::new(500, Reason::InternalError, self.to_string(), None),
        }
    }
}

/// `operation` of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write.
    Update,
}

impl Operation {
    /// The JSON value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// What identifies an entry (upstream's manager identifier): apply entries leave out the
/// apiVersion, so a manager applying through another version keeps its entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagerId {
    /// `manager`.
    pub manager: String,
    /// `operation`.
    pub operation: Operation,
    /// `apiVersion` ("" for apply entries).
    pub api_version: String,
    /// `subresource` ("" for the main resource).
    pub subresource: String,
}

impl fmt::Display for ManagerId {
    /// Upstream's `printManager`: `"kubectl"`, `"x" with subresource "status" using v1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.manager)?;
        if !self.subresource.is_empty() {
            write!(f, " with subresource {:?}", self.subresource)?;
        }
        if self.operation == Operation::Update {
            write!(f, " using {}", self.api_version)?;
        }
        Ok(())
    }
}

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `apiVersion` of the fields.
    pub api_version: String,
    /// `time`, when known.
    pub time: Option<String>,
    /// The fields owned.
    pub fields: Set,
}

/// The decoded managedFields of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Managed {
    /// The entries by identity.
    pub entries: BTreeMap<ManagerId, Entry>,
}

/// One field another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Who owns it.
    pub manager: ManagerId,
    /// The field.
    pub path: Path,
}

/// Upstream's message for a failed apply.
fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager, only.path
        );
    }
    let mut by_manager: BTreeMap<String, Vec<&Path>> = BTreeMap::new();
    for c in conflicts {
        by_manager
            .entry(c.manager.to_string())
            .or_default()
            .push(&c.path);
    }
    let mut lines = Vec::new();
    for (manager, paths) in by_manager {
        lines.push(format!("conflicts with {manager}:"));
        lines.extend(paths.iter().map(|p| format!("- {p}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Which part of an object a write may own (upstream's reset fields of a strategy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    /// Everything.
    All,
    /// Everything but `status` (the main resource of a kind with a status subresource).
    AllButStatus,
    /// Only `status` (the status subresource).
    OnlyStatus,
}

impl Owned {
    fn filter(self, set: &Set) -> Set {
        let status = PathElement::Field("status".into());
        match self {
            Owned::All => set.clone(),
            Owned::AllButStatus => {
                set.recursive_difference(&Set::from_paths(&[Path(vec![status])]))
            }
            Owned::OnlyStatus => {
                let mut only = Set::new();
                if set.has_member(&status) {
                    only.insert_member(status.clone());
                }
                if let Some(child) = set.child(&status) {
                    only.attach(status, child.clone());
                }
                only
            }
        }
    }
}

/// Where a write happens.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The kind's schema.
    pub schema: Schema,
    /// The apiVersion of the request.
    pub api_version: &'a str,
    /// The subresource ("" for the main resource).
    pub subresource: &'a str,
    /// What the write may own.
    pub owned: Owned,
    /// Now, as RFC 3339 seconds.
    pub now: &'a str,
}

/// The fields no manager owns (upstream's `stripMetaManager`).
fn strip_set() -> Set {
    let mut paths = vec![
        Path::fields(&["apiVersion"]),
        Path::fields(&["kind"]),
        Path::fields(&["metadata"]),
    ];
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        paths.push(Path::fields(&["metadata", f]));
    }
    Set::from_paths(&paths)
}

fn managed_fields(object: &Value) -> Option<&Value> {
    object
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .filter(|v| !v.is_null())
}

/// A copy of `object` without managedFields.
fn stripped(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    copy
}

impl Managed {
    /// The managedFields of `object` (empty when it has none).
    pub fn decode(object: &Value) -> Result<Managed, Error> {
        let Some(list) = managed_fields(object) else {
            return Ok(Managed::default());
        };
        let list = list
            .as_array()
            .ok_or_else(|| Error::Decode("managedFields must be a list".into()))?;
        let mut managed = Managed::default();
        for entry in list {
            let text = |f: &str| entry.get(f).and_then(Value::as_str).unwrap_or("");
            if text("fieldsType") != "FieldsV1" {
                return Err(Error::Decode(format!(
                    "error decoding versioned set from {entry}: wrong format of managed fields: fieldsType {:?}",
                    text("fieldsType")
                )));
            }
            let operation = match text("operation") {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                other => {
                    return Err(Error::Decode(format!("unknown operation {other:?}")));
                }
            };
            let fields = match entry.get("fieldsV1") {
                Some(v) => Set::from_fields_v1(v)
                    .map_err(|e: fieldpath::Error| Error::Decode(e.to_string()))?,
                None => Set::new(),
            };
            let api_version = text("apiVersion").to_string();
            let id = ManagerId {
                manager: text("manager").to_string(),
                operation,
                api_version: match operation {
                    Operation::Apply => String::new(),
                    Operation::Update => api_version.clone(),
                },
                subresource: text("subresource").to_string(),
            };
            let time = entry
                .get("time")
                .and_then(Value::as_str)
                .map(str::to_string);
            if managed
                .entries
                .insert(
                    id.clone(),
                    Entry {
                        api_version,
                        time,
                        fields,
                    },
                )
                .is_some()
            {
                return Err(Error::Decode(format!("duplicate entries for manager {id}")));
            }
        }
        Ok(managed)
    }

    /// The managedFields JSON, in upstream's order (apply entries first, then by time,
    /// manager, apiVersion, subresource).
    pub fn encode(&self) -> Vec<Value> {
        let mut entries: Vec<(&ManagerId, &Entry)> = self.entries.iter().collect();
        entries.sort_by(|(a, ae), (b, be)| {
            let seconds = |e: &Entry| e.time.clone().unwrap_or_default();
            a.operation
                .cmp(&b.operation)
                .then_with(|| seconds(ae).cmp(&seconds(be)))
                .then_with(|| a.manager.cmp(&b.manager))
                .then_with(|| ae.api_version.cmp(&be.api_version))
                .then_with(|| a.subresource.cmp(&b.subresource))
        });
        entries
            .into_iter()
            .map(|(id, e)| {
                let mut m = Map::new();
                m.insert("manager".into(), json!(id.manager));
                m.insert("operation".into(), json!(id.operation.as_str()));
                m.insert("apiVersion".into(), json!(e.api_version));
                if let Some(t) = &e.time {
                    m.insert("time".into(), json!(t));
                }
                m.insert("fieldsType".into(), json!("FieldsV1"));
                m.insert("fieldsV1".into(), e.fields.to_fields_v1());
                if !id.subresource.is_empty() {
                    m.insert("subresource".into(), json!(id.subresource));
                }
                Value::Object(m)
            })
            .collect()
    }

    /// Writes the entries into `object`'s metadata (removing managedFields when none).
    pub fn store(&self, object: &mut Value) {
        let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        if self.entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(self.encode()));
        }
    }

    /// Drops the fields nobody owns from every entry, and entries left empty.
    fn tidy(&mut self) {
        let strip = strip_set();
        for e in self.entries.values_mut() {
            e.fields = e.fields.difference(&strip);
        }
        self.entries.retain(|_, e| !e.fields.is_empty());
    }

    /// Takes `changed` and `removed` away from every entry but `except`.
    fn disown(&mut self, changed: &Set, removed: &Set, except: Option<&ManagerId>) {
        for (id, e) in &mut self.entries {
            if Some(id) != except {
                e.fields = e.fields.difference(changed).difference(removed);
            }
        }
    }

    /// Folds the oldest update entries into `ancient-changes` (one per apiVersion) while
    /// there are more than upstream's cap.
    fn cap_updates(&mut self) {
        let mut updaters: Vec<ManagerId> = self
            .entries
            .keys()
            .filter(|id| id.operation == Operation::Update)
            .cloned()
            .collect();
        let mut count = updaters.len();
        if count <= MAX_UPDATE_MANAGERS {
            return;
        }
        let time = |m: &Managed, id: &ManagerId| {
            m.entries
                .get(id)
                .and_then(|e| e.time.clone())
                .unwrap_or_default()
        };
        updaters.sort_by(|a, b| time(self, a).cmp(&time(self, b)).then_with(|| a.cmp(b)));
        let mut first_of_version: BTreeMap<String, ManagerId> = BTreeMap::new();
        for id in updaters {
            if count <= MAX_UPDATE_MANAGERS {
                break;
            }
            let Some(entry) = self.entries.get(&id).cloned() else {
                continue;
            };
            let version = entry.api_version.clone();
            let Some(first) = first_of_version.get(&version).cloned() else {
                first_of_version.insert(version, id);
                continue;
            };
            let bucket = ManagerId {
                manager: ANCIENT_CHANGES.into(),
                operation: Operation::Update,
                api_version: version.clone(),
                subresource: String::new(),
            };
            if !self.entries.contains_key(&bucket)
                && let Some(first_entry) = self.entries.remove(&first)
            {
                self.entries.insert(bucket.clone(), first_entry);
            }
            self.entries.remove(&id);
            let into = self.entries.entry(bucket).or_insert_with(|| Entry {
                api_version: version,
                time: None,
                fields: Set::new(),
            });
            into.fields = into.fields.union(&entry.fields);
            into.time = entry.time;
            count -= 1;
        }
    }
}

/// Whether a write asks to clear managedFields (`[]` or `[{}]`).
fn reset_requested(object: &Value) -> bool {
    match managed_fields(object)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([]) => true,
        Some([only]) => only.as_object().is_some_and(Map::is_empty),
        _ => false,
    }
}

/// The object a create compares against: upstream compares with the Go zero value of the
/// kind, so fields that value already holds (non-pointer structs and their zero fields) are
/// no additions and get no `.` of their own, while pointer structs, maps and lists do.
fn zero_object(schema: Schema) -> Value {
    match schema {
        Schema::Struct(t, _) => Value::Object(t.zero_object()),
        _ => json!({}),
    }
}

/// Tracks an update of `live` (`None`: a create) into `new`: sets `new`'s managedFields.
/// Managed fields the client sent are the starting point on the main resource; otherwise
/// (and on subresources) the live object's are.
pub fn update(live: Option<&Value>, new: &mut Value, manager: &str, cx: &Context<'_>) {
    let decoded_new = if !cx.subresource.is_empty() {
        None
    } else if reset_requested(new) {
        Some(Managed::default())
    } else {
        Managed::decode(new).ok().filter(|m| !m.entries.is_empty())
    };
    let mut managed = match decoded_new {
        Some(m) => m,
        None => live
            .map(|l| Managed::decode(l).unwrap_or_default())
            .unwrap_or_default(),
    };
    // An object without managedFields stays untracked on update (upstream's
    // skipNonAppliedManager, with creates always tracked).
    if managed.entries.is_empty() && live.is_some() {
        managed.store(new);
        return;
    }
    let new_plain = stripped(new);
    let old_plain = match live {
        Some(l) => stripped(l),
        None => zero_object(cx.schema),
    };
    let cmp = compare(&old_plain, &new_plain, cx.schema);
    let changed = cx.owned.filter(&cmp.modified.union(&cmp.added));
    let removed = cx.owned.filter(&cmp.removed);
    managed.disown(&changed, &removed, None);
    if !changed.is_empty() {
        let id = ManagerId {
            manager: manager.to_string(),
            operation: Operation::Update,
            api_version: cx.api_version.to_string(),
            subresource: cx.subresource.to_string(),
        };
        let entry = managed.entries.entry(id).or_insert_with(|| Entry {
            api_version: cx.api_version.to_string(),
            time: None,
            fields: Set::new(),
        });
        entry.fields = entry.fields.union(&changed);
        entry.time = Some(cx.now.to_string());
    }
    managed.tidy();
    managed.cap_updates();
    managed.store(new);
}

/// Server-side apply of `config` by `manager` onto `live` (`None`: the object does not exist
/// yet). Returns the new object with its managedFields, or the conflicts.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    cx: &Context<'_>,
) -> Result<Value, Error> {
    if managed_fields(config).is_some() {
        return Err(Error::ManagedFieldsInApply);
    }
    let mut managed = match live {
        Some(l) => Managed::decode(l)?,
        None => Managed::default(),
    };
    let live_plain = live.map_or_else(|| json!({}), stripped);
    let applied = cx.owned.filter(&field_set(config, cx.schema, true)?);
    let merged = merge(&live_plain, config, cx.schema);
    let id = ManagerId {
        manager: manager.to_string(),
        operation: Operation::Apply,
        api_version: String::new(),
        subresource: cx.subresource.to_string(),
    };
    let previous = managed.entries.remove(&id);
    managed.entries.insert(
        id.clone(),
        Entry {
            api_version: cx.api_version.to_string(),
            time: previous.as_ref().and_then(|p| p.time.clone()),
            fields: applied,
        },
    );
    let result = match previous.filter(|p| !p.fields.is_empty()) {
        Some(last) => prune(&merged, &managed, &last.fields, cx.schema),
        None => merged,
    };
    let cmp = compare(&live_plain, &result, cx.schema);
    let changed = cx.owned.filter(&cmp.modified.union(&cmp.added));
    let removed = cx.owned.filter(&cmp.removed);
    let mut conflicts = Vec::new();
    for (other, entry) in &managed.entries {
        if *other == id {
            continue;
        }
        for path in entry.fields.intersection(&changed).paths() {
            conflicts.push(Conflict {
                manager: other.clone(),
                path,
            });
        }
    }
    if !force && !conflicts.is_empty() {
        let allowed = match live {
            Some(l) if manager == KUBECTL => allowed_by_last_applied(l, cx.schema),
            _ => Set::new(),
        };
        conflicts.retain(|c| !allowed.has(&c.path));
        if !conflicts.is_empty() {
            return Err(Error::Conflicts(conflicts));
        }
    }
    managed.disown(&changed, &removed, Some(&id));
    let mut object = if result == live_plain {
        live_plain
    } else {
        if let Some(e) = managed.entries.get_mut(&id) {
            e.time = Some(cx.now.to_string());
        }
        result
    };
    if manager == KUBECTL {
        update_last_applied(&mut object, config);
    }
    managed.tidy();
    managed.store(&mut object);
    Ok(object)
}

/// Removes what `manager` applied last time (`last`) and no longer applies, unless another
/// manager (or this apply) owns it (upstream's `prune`, `addBackOwnedItems` and
/// `addBackDanglingItems`).
fn prune(merged: &Value, managed: &Managed, last: &Set, schema: Schema) -> Value {
    let set_of =
        |v: &Value| with_named_fields(&field_set(v, schema, false).unwrap_or_default(), schema);
    let last = with_named_fields(last, schema);
    let without = |set: &Set| remove(merged, set, schema).unwrap_or_else(|| json!({}));
    let pruned = without(&last);
    let owned = managed
        .entries
        .values()
        .fold(Set::new(), |acc, e| acc.union(&e.fields));
    let owned = with_named_fields(&owned, schema);
    let merged_set = set_of(merged);
    let pruned = without(&merged_set.difference(&set_of(&pruned).union(&owned)));
    without(&merged_set.difference(&set_of(&pruned)).intersection(&last))
}

/// The fields whose live values still are what kubectl's last client-side apply set
/// (upstream's `allowedConflictsFromLastApplied`).
fn allowed_by_last_applied(live: &Value, schema: Schema) -> Set {
    let Some(text) = live
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    else {
        return Set::new();
    };
    let Ok(last) = serde_json::from_str::<Value>(text) else {
        return Set::new();
    };
    let live = stripped(live);
    let cmp = compare(&last, &live, schema);
    field_set(&last, schema, false)
        .unwrap_or_default()
        .difference(&cmp.modified)
        .difference(&cmp.added)
        .difference(&cmp.removed)
}

/// Keeps a client-side apply annotation in step with server-side applies by kubectl
/// (upstream's `lastAppliedUpdater`): when present, it becomes the applied configuration.
fn update_last_applied(object: &mut Value, config: &Value) {
    let Some(annotations) = object
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if annotations
        .get(LAST_APPLIED)
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return;
    }
    let mut last = config.clone();
    if let Some(a) = last
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
        && a.remove(LAST_APPLIED).is_some()
        && a.is_empty()
        && let Some(meta) = last.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.remove("annotations");
    }
    annotations.insert(LAST_APPLIED.into(), Value::String(last.to_string()));
    let size: usize = annotations
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if size > MAX_ANNOTATIONS_SIZE {
        annotations.remove(LAST_APPLIED);
    }
}

/// The managedFields a subresource that shows one field of its parent (the `scale` of a
/// workload: the parent's `path` is the Scale's `sub_path`) starts from: the parent's entries
/// that own `path`, each owning just `sub_path` in `api_version` (upstream's
/// `ScaleHandler.ToSubresource`).
pub fn to_subresource(
    parent: &Managed,
    path: &Path,
    sub_path: &Path,
    api_version: &str,
) -> Managed {
    let only = Set::from_paths([sub_path]);
    let entries = parent
        .entries
        .iter()
        .filter(|(_, e)| e.fields.has(path))
        .map(|(id, e)| {
            let entry = Entry {
                api_version: api_version.to_string(),
                time: e.time.clone(),
                fields: only.clone(),
            };
            (id.clone(), entry)
        })
        .collect();
    Managed { entries }
}

/// The parent's managedFields after a write of the subresource view (upstream's
/// `ScaleHandler.ToParent`): a parent entry that owned `path` keeps it only while the same
/// manager still owns `sub_path` in `sub`; managers that own `sub_path` in `sub` and are not
/// among them own `path` in a new entry of `api_version`. Entries are matched by manager,
/// operation and subresource (the subresource view shows another apiVersion).
pub fn to_parent(
    parent: &Managed,
    sub: &Managed,
    path: &Path,
    sub_path: &Path,
    api_version: &str,
) -> Managed {
    let same = |a: &ManagerId, b: &ManagerId| {
        a.manager == b.manager && a.operation == b.operation && a.subresource == b.subresource
    };
    let mut remaining: Vec<(&ManagerId, &Entry)> = sub.entries.iter().collect();
    let mut out = Managed::default();
    for (id, entry) in &parent.entries {
        if !entry.fields.has(path) {
            out.entries.insert(id.clone(), entry.clone());
        } else if let Some(i) = remaining.iter().position(|(s, _)| same(s, id)) {
            remaining.remove(i);
            out.entries.insert(id.clone(), entry.clone());
        } else {
            let fields = entry.fields.difference(&Set::from_paths([path]));
            if !fields.is_empty() {
                let kept = Entry {
                    fields,
                    ..entry.clone()
                };
                out.entries.insert(id.clone(), kept);
            }
        }
    }
    for (id, entry) in remaining {
        if !entry.fields.has(sub_path) {
            continue;
        }
        let id = ManagerId {
            api_version: match id.operation {
                Operation::Apply => String::new(),
                Operation::Update => api_version.to_string(),
            },
            ..id.clone()
        };
        let entry = Entry {
            api_version: api_version.to_string(),
            time: entry.time.clone(),
            fields: Set::from_paths([path]),
        };
        out.entries.insert(id, entry);
    }
    out
}
