//! Objects walked by their type, as structured-merge-diff's `typed` package: the field set of
//! an object, the comparison of two objects, the merge of an applied configuration into a
//! live object, and the removal of a set of fields.
//!
//! Types come from [`crate::types`]. Granular structs and maps descend field by field; atomic
//! ones, atomic lists and scalars are leaves; `set` lists are identified by value and `map`
//! lists by their key fields. Values without a type (custom resources, `RawExtension`) are
//! typed by their content as upstream's "deduced" type: objects are granular maps, lists are
//! atomic.

use serde_json::{Map, Value};

use super::fieldpath::{Path, PathElement, Set};
use crate::types::{ListMerge, ListType, Shape, TypeRef};

/// A value that does not fit its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A field the struct type does not have.
    #[error("{0}: field not declared in schema")]
    NotDeclared(String),
    /// An element of a map list without one of its keys.
    #[error(
        "{path}: associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
    )]
    MissingKey {
        /// The list.
        path: String,
        /// The key field.
        key: String,
    },
    /// An element of a list whose shape cannot identify it.
    #[error("{0}: {1}")]
    BadElement(String, &'static str),
}

/// The type of a value, with the markers of the field that holds it.
#[derive(Debug, Clone, Copy)]
pub enum Schema {
    /// A struct; atomic when replaced whole.
    Struct(TypeRef, bool),
    /// A map with values of one shape; atomic when replaced whole.
    Map(Shape, bool),
    /// A list of elements of one shape, merged as the list type says.
    List(Shape, ListMerge),
    /// A scalar.
    Scalar,
    /// No type: shaped by the value.
    Deduced,
}

const ATOMIC_LIST: ListMerge = ListMerge {
    list_type: ListType::Atomic,
    keys: &[],
};

impl Schema {
    /// The schema of a kind's objects.
    pub fn root(kind: Option<TypeRef>) -> Schema {
        kind.map_or(Schema::Deduced, |t| Schema::Struct(t, false))
    }

    /// The schema of a field's value.
    pub fn of_field(field: &'static crate::types::Field) -> Schema {
        match field.shape() {
            Shape::Struct(t) => Schema::Struct(t, field.is_atomic()),
            Shape::Map(v) => Schema::Map(*v, field.is_atomic()),
            Shape::List(e) => Schema::List(*e, field.list_merge().unwrap_or(ATOMIC_LIST)),
            Shape::Scalar(_) => Schema::Scalar,
            Shape::Any => Schema::Deduced,
        }
    }

    /// The schema of an unmarked value of `shape` (a list element, a map value).
    fn of_shape(shape: Shape) -> Schema {
        match shape {
            Shape::Struct(t) => Schema::Struct(t, t.is_atomic()),
            Shape::Map(v) => Schema::Map(*v, false),
            Shape::List(e) => Schema::List(*e, ATOMIC_LIST),
            Shape::Scalar(_) => Schema::Scalar,
            Shape::Any => Schema::Deduced,
        }
    }

    /// A deduced schema made concrete by a value.
    fn resolve(self, value: Option<&Value>) -> Schema {
        match (self, value) {
            (Schema::Deduced, Some(Value::Object(_))) => Schema::Map(Shape::Any, false),
            (Schema::Deduced, Some(Value::Array(_))) => Schema::List(Shape::Any, ATOMIC_LIST),
            (Schema::Deduced, _) => Schema::Scalar,
            (s, _) => s,
        }
    }

    /// The schema of the field or map entry `name`; `None` for a field a struct lacks.
    fn member(self, name: &str) -> Option<Schema> {
        match self {
            Schema::Struct(t, _) => t.field(name).map(Schema::of_field),
            Schema::Map(v, _) => Some(Schema::of_shape(v)),
            _ => Some(Schema::Deduced),
        }
    }

    /// Like [`Self::member`], lenient: unknown struct fields are untyped.
    fn member_or_deduced(self, name: &str) -> Schema {
        self.member(name).unwrap_or(Schema::Deduced)
    }

    /// Whether values of this schema are leaves (scalars and atomic things).
    fn is_leaf(self) -> bool {
        match self {
            Schema::Struct(_, atomic) | Schema::Map(_, atomic) => atomic,
            Schema::List(_, merge) => merge.list_type == ListType::Atomic,
            Schema::Scalar | Schema::Deduced => true,
        }
    }

    fn is_object(self) -> bool {
        matches!(self, Schema::Struct(..) | Schema::Map(..))
    }
}

/// The default of a list-map key field (upstream's OpenAPI `default`, from `+default=`
/// markers): an element that omits the key has this value.
fn key_default(element: Shape, key: &str) -> Option<Value> {
    element.as_struct()?.field(key)?.default_value()
}

/// The path element of a list item, as upstream's `listItemToPathElement`; lenient callers
/// (live objects) fall back to the index for items that cannot be identified.
fn item_element(
    item: &Value,
    index: usize,
    element: Shape,
    merge: ListMerge,
    path: &Path,
    strict: bool,
) -> Result<PathElement, Error> {
    let fail = |e: Error| {
        if strict {
            Err(e)
        } else {
            Ok(PathElement::Index(index))
        }
    };
    match merge.list_type {
        ListType::Map if !merge.keys.is_empty() => {
            let Some(map) = item.as_object() else {
                return fail(Error::BadElement(
                    path.to_string(),
                    "associative list with keys may not have non-map elements",
                ));
            };
            let mut fields = Vec::with_capacity(merge.keys.len());
            for key in merge.keys {
                match map.get(*key).cloned().or_else(|| key_default(element, key)) {
                    Some(v) => fields.push(((*key).to_string(), v)),
                    None => {
                        return fail(Error::MissingKey {
                            path: path.to_string(),
                            key: (*key).to_string(),
                        });
                    }
                }
            }
            Ok(PathElement::key(fields))
        }
        _ if !item.is_object() && !item.is_array() => Ok(PathElement::Value(item.clone())),
        _ => fail(Error::BadElement(
            path.to_string(),
            "associative list without keys has an element that's a map type",
        )),
    }
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty)
}

/// The set of fields `value` holds (upstream's `ToFieldSet`). `strict` refuses fields the
/// type lacks and list items without their keys, as for an applied configuration.
pub fn field_set(value: &Value, schema: Schema, strict: bool) -> Result<Set, Error> {
    let mut set = Set::new();
    field_set_into(value, schema, &mut set, &Path::default(), strict)?;
    Ok(set)
}

fn field_set_into(
    value: &Value,
    schema: Schema,
    node: &mut Set,
    path: &Path,
    strict: bool,
) -> Result<(), Error> {
    let schema = schema.resolve(Some(value));
    if schema.is_leaf() {
        return Ok(());
    }
    match (schema, value) {
        (Schema::Struct(..) | Schema::Map(..), Value::Object(map)) => {
            for (key, child) in map {
                let pe = PathElement::Field(key.clone());
                let child_path = path.child(pe.clone());
                let declared = schema.member(key);
                let child_schema = match declared {
                    Some(s) => s,
                    None if strict => return Err(Error::NotDeclared(child_path.to_string())),
                    None => Schema::Deduced,
                };
                let mut sub = Set::new();
                field_set_into(child, child_schema, &mut sub, &child_path, strict)?;
                let is_struct_field = matches!(schema, Schema::Struct(..)) && declared.is_some();
                if child.is_null()
                    || is_empty_object(child)
                    || !is_struct_field
                    || child_schema.resolve(Some(child)).is_leaf()
                {
                    node.insert_member(pe.clone());
                }
                node.attach(pe, sub);
            }
        }
        (Schema::List(element, merge), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let pe = item_element(item, i, element, merge, path, strict)?;
                let mut sub = Set::new();
                let child_path = path.child(pe.clone());
                field_set_into(
                    item,
                    Schema::of_shape(element),
                    &mut sub,
                    &child_path,
                    strict,
                )?;
                node.insert_member(pe.clone());
                node.attach(pe, sub);
            }
        }
        _ => {}
    }
    Ok(())
}

/// What changed between two objects (upstream's `Comparison`): leaves and whole subtrees
/// that appeared, changed value, or went away.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Present only in the new object.
    pub added: Set,
    /// Present in both with different values.
    pub modified: Set,
    /// Present only in the old object.
    pub removed: Set,
}

impl Comparison {
    /// The comparison without the paths of `ignored` and what lies under them.
    pub fn excluding(self, ignored: &Set) -> Comparison {
        Comparison {
            added: self.added.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            removed: self.removed.recursive_difference(ignored),
        }
    }
}

/// Compares `old` and `new` (upstream's `TypedValue.Compare`).
pub fn compare(old: &Value, new: &Value, schema: Schema) -> Comparison {
    let mut out = Comparison::default();
    compare_at(Some(old), Some(new), schema, &Path::default(), &mut out);
    out
}

fn non_empty_object(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object).filter(|m| !m.is_empty())
}

fn non_empty_array(v: Option<&Value>) -> Option<&Vec<Value>> {
    v.and_then(Value::as_array).filter(|a| !a.is_empty())
}

fn find_item<'v>(items: &[(PathElement, &'v Value)], pe: &PathElement) -> Option<&'v Value> {
    items.iter().find(|(p, _)| p == pe).map(|(_, v)| *v)
}

fn compare_at(
    old: Option<&Value>,
    new: Option<&Value>,
    schema: Schema,
    path: &Path,
    out: &mut Comparison,
) {
    if !path.0.is_empty() {
        match (old, new) {
            (None, None) => return,
            (None, Some(_)) => out.added.insert(path),
            (Some(_), None) => out.removed.insert(path),
            (Some(_), Some(_)) => {}
        }
    }
    let schema = schema.resolve(new.or(old));
    let leaf = schema.is_leaf()
        || match schema {
            Schema::List(..) => non_empty_array(old).is_none() && non_empty_array(new).is_none(),
            _ => non_empty_object(old).is_none() && non_empty_object(new).is_none(),
        };
    if leaf {
        if let (Some(o), Some(n)) = (old, new)
            && o != n
        {
            out.modified.insert(path);
        }
        return;
    }
    match schema {
        Schema::List(element, merge) => {
            let old_items = index_items(old, element, merge, path);
            let new_items = index_items(new, element, merge, path);
            let mut seen: Vec<&PathElement> = Vec::new();
            for (pe, _) in old_items.iter().chain(&new_items) {
                if seen.contains(&pe) {
                    continue;
                }
                seen.push(pe);
                let (o, n) = (find_item(&old_items, pe), find_item(&new_items, pe));
                compare_at(
                    o,
                    n,
                    Schema::of_shape(element),
                    &path.child(pe.clone()),
                    out,
                );
            }
        }
        _ => {
            let (o, n) = (non_empty_object(old), non_empty_object(new));
            let mut keys: Vec<&String> = o.into_iter().flat_map(|m| m.keys()).collect();
            for key in n.into_iter().flat_map(|m| m.keys()) {
                if !o.is_some_and(|o| o.contains_key(key)) {
                    keys.push(key);
                }
            }
            for key in keys {
                compare_at(
                    o.and_then(|m| m.get(key)),
                    n.and_then(|m| m.get(key)),
                    schema.member_or_deduced(key),
                    &path.child(PathElement::Field(key.clone())),
                    out,
                );
            }
        }
    }
}

/// The items of a list value with their path elements (lenient).
fn index_items<'v>(
    list: Option<&'v Value>,
    element: Shape,
    merge: ListMerge,
    path: &Path,
) -> Vec<(PathElement, &'v Value)> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, item)| {
            item_element(item, i, element, merge, path, false)
                .ok()
                .map(|pe| (pe, item))
        })
        .collect()
}

/// Merges an applied configuration into a live object (upstream's `TypedValue.Merge`): the
/// configuration wins on leaves, granular objects merge field by field, map and set lists
/// merge by element, keeping the live order around the configuration's.
pub fn merge(live: &Value, config: &Value, schema: Schema) -> Value {
    merge_at(Some(live), Some(config), schema, &Path::default()).unwrap_or(Value::Null)
}

fn merge_at(
    live: Option<&Value>,
    config: Option<&Value>,
    schema: Schema,
    path: &Path,
) -> Option<Value> {
    let (l, r) = match (live, config) {
        (None, None) => return None,
        (Some(l), None) => return Some(l.clone()),
        (None, Some(r)) => return Some(r.clone()),
        (Some(l), Some(r)) => (l, r),
    };
    let schema = schema.resolve(Some(r));
    if schema.is_leaf() {
        return Some(r.clone());
    }
    match (schema, l, r) {
        (s, Value::Object(lm), Value::Object(rm)) if s.is_object() => {
            if lm.is_empty() && rm.is_empty() {
                return Some(r.clone());
            }
            let mut out = lm.clone();
            for (key, rv) in rm {
                let child = path.child(PathElement::Field(key.clone()));
                if let Some(v) =
                    merge_at(lm.get(key), Some(rv), schema.member_or_deduced(key), &child)
                {
                    out.insert(key.clone(), v);
                }
            }
            Some(Value::Object(out))
        }
        // A null configuration leaves a granular object as it is (upstream merges with nothing).
        (s, Value::Object(lm), Value::Null) if s.is_object() && !lm.is_empty() => Some(l.clone()),
        (Schema::List(element, merge), Value::Array(la), Value::Array(ra)) => {
            if la.is_empty() && ra.is_empty() {
                return Some(r.clone());
            }
            Some(Value::Array(merge_lists(la, ra, element, merge, path)))
        }
        _ => Some(r.clone()),
    }
}

/// Upstream's ordering of merged list items: live items stay in place, configuration items
/// come in the configuration's order, shared items where the configuration puts them.
fn merge_lists(
    lhs: &[Value],
    rhs: &[Value],
    element: Shape,
    merge: ListMerge,
    path: &Path,
) -> Vec<Value> {
    let ident = |items: &[Value]| -> Vec<PathElement> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item_element(item, i, element, merge, path, false).unwrap_or(PathElement::Index(i))
            })
            .collect()
    };
    let (lpe, rpe) = (ident(lhs), ident(rhs));
    let find = |pes: &[PathElement], pe: &PathElement| pes.iter().position(|p| p == pe);
    let mut shared: std::collections::VecDeque<&PathElement> =
        rpe.iter().filter(|pe| find(&lpe, pe).is_some()).collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: Vec<&PathElement> = Vec::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let elem_schema = Schema::of_shape(element);
    let item = |pe: &PathElement, l: Option<&Value>, r: Option<&Value>| {
        merge_at(l, r, elem_schema, &path.child(pe.clone()))
    };
    let (mut li, mut ri) = (0, 0);
    while li < lpe.len() || ri < rpe.len() {
        if li < lpe.len() && ri < rpe.len() {
            let pe = &lpe[li];
            if *pe == rpe[ri] {
                merged_rhs.push(pe);
                out.extend(item(pe, Some(&lhs[li]), Some(&rhs[ri])));
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if find(&rpe, pe).is_some() && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lpe.len() {
            let pe = &lpe[li];
            if find(&rpe, pe).is_none() {
                out.extend(item(pe, Some(&lhs[li]), None));
                li += 1;
                continue;
            } else if merged_rhs.contains(&pe) {
                li += 1;
                continue;
            }
        }
        if ri < rpe.len() {
            let pe = &rpe[ri];
            merged_rhs.push(pe);
            let l = find(&lpe, pe).map(|i| &lhs[i]);
            out.extend(item(pe, l, Some(&rhs[ri])));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    out
}

/// `value` without the fields of `set` (upstream's `RemoveItems`); `None` when nothing is left
/// of a container that lost items.
pub fn remove(value: &Value, set: &Set, schema: Schema) -> Option<Value> {
    let schema = schema.resolve(Some(value));
    if schema.is_leaf() {
        return Some(value.clone());
    }
    match (schema, value) {
        (Schema::List(element, merge), Value::Array(items)) if !items.is_empty() => {
            let path = Path::default();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let pe = item_element(item, i, element, merge, &path, false)
                    .unwrap_or(PathElement::Index(i));
                if set.has_member(&pe) {
                    continue;
                }
                match set.child(&pe) {
                    Some(sub) => out.extend(remove(item, sub, Schema::of_shape(element))),
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        (s, Value::Object(map)) if s.is_object() && !map.is_empty() => {
            let mut out = Map::new();
            for (key, v) in map {
                let pe = PathElement::Field(key.clone());
                if set.has_member(&pe) {
                    continue;
                }
                match set.child(&pe) {
                    Some(sub) => {
                        if let Some(v) = remove(v, sub, schema.member_or_deduced(key)) {
                            out.insert(key.clone(), v);
                        }
                    }
                    None => {
                        out.insert(key.clone(), v.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        _ => Some(value.clone()),
    }
}

/// `set` plus every struct field on its paths as a member (upstream's
/// `EnsureNamedFieldsAreMembers`), so that removing a set also removes fields it only
/// descends through.
pub fn with_named_fields(set: &Set, schema: Schema) -> Set {
    let mut out = set.clone();
    add_named_fields(set, schema, &mut out);
    out
}

fn add_named_fields(set: &Set, schema: Schema, out: &mut Set) {
    for (pe, child) in set.children() {
        let child_schema = match (schema, pe) {
            (Schema::Struct(t, _), PathElement::Field(name)) => match t.field(name) {
                Some(f) => {
                    out.insert_member(pe.clone());
                    Schema::of_field(f)
                }
                None => Schema::Deduced,
            },
            (Schema::Map(v, _), PathElement::Field(_)) => Schema::of_shape(v),
            (Schema::List(e, _), _) => Schema::of_shape(e),
            _ => Schema::Deduced,
        };
        add_named_fields(child, child_schema, out.child_mut(pe.clone()));
    }
}
