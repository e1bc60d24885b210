//! Strategic merge patch, as upstream's `strategicpatch.StrategicMergeMapPatch` applies it on
//! the server (parallel lists merged, unmatched nulls ignored), with each field's
//! `patchStrategy` and `patchMergeKey` from [`crate::types`].
//!
//! How a patch merges into an object:
//! - Objects merge key by key; `null` deletes a key; a key the object lacks takes the patch's
//!   value (with its directives and nulls removed); values of different JSON types are replaced.
//! - Lists whose field has the `merge` strategy merge: objects by the merge key (an element of
//!   the patch merges into the element with the same key, or is appended), scalars as a union.
//!   Other lists are replaced. The result keeps the patch's order for the elements it names,
//!   with the object's other elements interleaved where they were (upstream's order).
//! - Directives: `$patch: replace` (an object or list is the patch's, not a merge),
//!   `$patch: delete` (an object is emptied; in a list, the element with that key goes),
//!   `$retainKeys: [...]` (keys not listed are cleared), `$deleteFromPrimitiveList/<field>:
//!   [...]` (those scalars leave the list), `$setElementOrder/<field>: [...]` (the order of
//!   the merged list).
//! - Fields the type does not have (and values of `map` or "any" fields) merge as plain
//!   objects, lists in them are replaced.
//!
//! Upstream mutates Go maps in place and then decodes the result into the typed object, which
//! drops directive keys and nulls left in values copied from the patch; here the result is
//! the stored JSON, so those are dropped when the values are copied ([`finish`]).
//! Errors are upstream's messages with kube-apiserver's HTTP answers (its
//! `interpretStrategicMergePatchError`): malformed directives are 400, lists of lists 422,
//! anything else 500.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::rejected;
use crate::status::{ApiError, Reason};
use crate::types::{Field, Shape, TypeRef};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Why a strategic merge patch cannot be applied; the messages are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `$deleteFromPrimitiveList` not followed by `/<field>`.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveList,
    /// `$retainKeys` is not a list, or the patch sets a key it does not list.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeys,
    /// `$setElementOrder` not followed by `/<field>`.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrder,
    /// A list whose elements are lists.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// A value of another JSON type than the merge needs (Go's type names).
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        /// The type needed.
        expected: &'static str,
        /// The type found.
        actual: &'static str,
    },
    /// An element of a list merged by key lacks the key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey {
        /// The element, as Go prints it.
        map: String,
        /// The merge key.
        key: String,
    },
    /// A `$patch` value this place does not accept.
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType {
        /// The directive's value.
        directive: String,
        /// The object holding it, as Go prints it.
        map: String,
    },
    /// `$patch: merge` on a list element.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// Lists merged together hold elements of different JSON types.
    #[error("list element types are not identical: {0}")]
    MixedElements(String),
    /// An element of a list merged by key is not an object.
    #[error("value for key {0} is not a map")]
    NotAMap(usize),
    /// A list of objects with the `merge` strategy but no merge key.
    #[error("cannot merge lists without merge key for {0}")]
    NoMergeKeyDeclared(&'static str),
    /// The patch's elements are not in `$setElementOrder`'s order.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    OrderMismatch {
        /// The patch's list, as Go prints it.
        patch: String,
        /// The `$setElementOrder` list, as Go prints it.
        order: String,
    },
    /// `$setElementOrder` for a list that is empty on both sides.
    #[error("no elements in any of the given slices")]
    NoElements,
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::BadPrimitiveList | Error::BadRetainKeys | Error::BadSetElementOrder => {
                ApiError::bad_request(err.to_string())
            }
            Error::ListOfLists => rejected(err.to_string()),
            // Upstream passes these through as plain errors: a 500 with the message.
            _ => ApiError::new(500, Reason::InternalError, err.to_string(), None),
        }
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// Applies `patch` to `original`, an object of type `ty`.
pub fn apply(original: &Value, patch: &Map<String, Value>, ty: TypeRef) -> Result<Value> {
    let original = match original {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    merge_map(original, patch.clone(), Schema::Struct(ty)).map(Value::Object)
}

/// Where a value sits, for looking up how its fields merge.
#[derive(Debug, Clone, Copy)]
enum Schema {
    /// An object of a struct type.
    Struct(TypeRef),
    /// An object with arbitrary keys and values of this shape.
    Map(Shape),
    /// A value the table does not describe.
    Unknown,
}

/// How one field merges: its patch strategy (without `retainKeys`) and merge key.
#[derive(Debug, Clone, Copy, Default)]
struct Meta {
    strategy: &'static str,
    merge_key: &'static str,
}

impl Schema {
    fn of(shape: Shape) -> Schema {
        match shape {
            Shape::Struct(t) => Schema::Struct(t),
            Shape::Map(value) => Schema::Map(*value),
            _ => Schema::Unknown,
        }
    }

    /// How field `key` merges and the schema of its value, or of its elements for a list.
    fn lookup(self, key: &str, list: bool) -> (Meta, Schema) {
        let (meta, shape) = match self {
            Schema::Struct(t) => match t.field(key) {
                Some(field) => (Meta::of(field), field.shape()),
                None => return (Meta::default(), Schema::Unknown),
            },
            Schema::Map(value) => (Meta::default(), value),
            Schema::Unknown => return (Meta::default(), Schema::Unknown),
        };
        let shape = if list {
            shape.list_element()
        } else {
            Some(shape)
        };
        (meta, shape.map_or(Schema::Unknown, Schema::of))
    }
}

impl Meta {
    fn of(field: &Field) -> Meta {
        // `retainKeys` acts through the `$retainKeys` directive only; what is left of the
        // strategy decides how the value merges.
        let strategy = field
            .patch_strategy()
            .unwrap_or("")
            .split(',')
            .find(|s| *s != "retainKeys")
            .unwrap_or("");
        Meta {
            strategy,
            merge_key: field.patch_merge_key().unwrap_or(""),
        }
    }
}

/// Merges `patch` into `original` (upstream's `mergeMap`).
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Schema,
) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                Ok(finish_map(patch))
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch, schema)?;

    for (key, patch_value) in patch {
        let (key, delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(rest) => (
                rest.strip_prefix('/')
                    .ok_or(Error::BadPrimitiveList)?
                    .to_owned(),
                true,
            ),
            None => (key, false),
        };
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        let Some(current) = original.remove(&key) else {
            if !delete_list && let Some(value) = remove_directives(patch_value) {
                original.insert(key, value);
            }
            continue;
        };
        let merged = match (current, patch_value) {
            (Value::Object(current), Value::Object(patch_value)) => {
                let (meta, sub) = schema.lookup(&key, false);
                Some(Value::Object(if meta.strategy == "replace" {
                    finish_map(patch_value)
                } else {
                    merge_map(current, patch_value, sub)?
                }))
            }
            (Value::Array(current), Value::Array(patch_value)) => {
                let (meta, sub) = schema.lookup(&key, true);
                Some(Value::Array(merge_list_field(
                    current,
                    patch_value,
                    sub,
                    meta,
                    delete_list,
                )?))
            }
            // Scalars of the same type: the patch's value, even from a deletion list.
            (current, patch_value) if go_type(&current) == go_type(&patch_value) => {
                remove_directives(patch_value)
            }
            (current, _) if delete_list => Some(current),
            (_, patch_value) => remove_directives(patch_value),
        };
        if let Some(value) = merged {
            original.insert(key, value);
        }
    }
    Ok(original)
}

/// `$retainKeys`: clears the keys of `original` it does not list, after checking that the
/// patch sets none but those.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(Error::BadRetainKeys);
    };
    let retained = |key: &str| retain.iter().any(|k| k.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || key.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !retained(key) {
            return Err(Error::BadRetainKeys);
        }
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

/// `$setElementOrder/<field>`: merges that field's list now and puts it in the given order
/// (upstream's `mergePatchIntoOriginal`); the list leaves the patch.
fn merge_ordered_lists(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: Schema,
) -> Result<()> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive in directives {
        let order = patch.remove(&directive).unwrap_or(Value::Null);
        let Value::Array(order) = order else {
            return Err(bad_arg_type("[]interface {}", &order));
        };
        let key = directive
            .strip_prefix(SET_ELEMENT_ORDER)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or(Error::BadSetElementOrder)?
            .to_owned();
        let current = match original.get(&key) {
            Some(Value::Array(list)) => Some(list.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
            None => None,
        };
        let patched = match patch.remove(&key) {
            Some(Value::Array(list)) => Some(list),
            Some(other) => return Err(bad_arg_type("[]interface {}", &other)),
            None => None,
        };
        let (meta, sub) = schema.lookup(&key, true);
        check_order(patched.as_deref().unwrap_or(&[]), &order, meta.merge_key)?;
        let merged = match (&current, patched.clone()) {
            (Some(current), None) => current.clone(),
            (None, Some(patched)) => patched.into_iter().filter_map(remove_directives).collect(),
            (Some(current), Some(patched)) => {
                merge_list_field(current.clone(), patched, sub, meta, false)?
            }
            (None, None) => continue,
        };
        let current = current.unwrap_or_default();
        let (in_order, server_only) = partition(merged, &order, meta.merge_key)?;
        let kind = element_type(&[&current, patched.as_deref().unwrap_or(&[])])?;
        let list = normalize_order(
            in_order,
            server_only,
            &order,
            &current,
            meta.merge_key,
            kind,
        )?;
        original.insert(key, Value::Array(list));
    }
    Ok(())
}

/// Checks that the patch's elements (deletions and directives aside) appear in `order` in the
/// same relative order (upstream's `validatePatchWithSetOrderList`).
fn check_order(patch: &[Value], order: &[Value], merge_key: &str) -> Result<()> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let kept: Vec<&Value> = if merge_key.is_empty() {
        patch.iter().collect()
    } else {
        split_deletions(patch)?.0
    };
    let (mut p, mut o) = (0, 0);
    while p < kept.len() && o < order.len() {
        if kept[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if merge_key_equal(kept[p], &order[o], merge_key)? {
            p += 1;
        }
        o += 1;
    }
    if p < kept.len() {
        return Err(Error::OrderMismatch {
            patch: go_fmt_list(patch),
            order: go_fmt_list(order),
        });
    }
    Ok(())
}

/// A list field: merged when its strategy is `merge` (or it is a deletion list), else the
/// patch's list (upstream's `mergeSliceHandler`).
fn merge_list_field(
    current: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema,
    meta: Meta,
    delete_list: bool,
) -> Result<Vec<Value>> {
    if meta.strategy == "merge" || delete_list {
        merge_list(current, patch, schema, meta.merge_key, delete_list)
    } else {
        Ok(patch.into_iter().map(finish).collect())
    }
}

/// Merges two lists (upstream's `mergeSlice`).
fn merge_list(
    current: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema,
    merge_key: &str,
    delete_list: bool,
) -> Result<Vec<Value>> {
    if current.is_empty() && patch.is_empty() {
        return Ok(current);
    }
    let kind = element_type(&[&current, &patch])?;
    let (server_order, patch, merged) = if kind != GoType::Map {
        if delete_list {
            return Ok(current
                .into_iter()
                .filter(|v| !patch.iter().any(|d| go_eq(v, d)))
                .collect());
        }
        let mut both = current.clone();
        both.extend(patch.iter().cloned().map(finish));
        (current, patch, dedup_scalars(both))
    } else {
        if merge_key.is_empty() {
            return Err(Error::NoMergeKeyDeclared("struct"));
        }
        let (current, patch) = apply_element_directives(current, patch, merge_key)?;
        let merged = merge_by_key(current.clone(), &patch, merge_key, schema)?;
        (current, patch, merged)
    };
    let (in_patch, server_only) = partition(merged, &patch, merge_key)?;
    normalize_order(
        in_patch,
        server_only,
        &patch,
        &server_order,
        merge_key,
        kind,
    )
}

/// `$patch` on list elements: `delete` removes the elements with that key, `replace` makes
/// the patch's other elements the whole list. Returns the list to merge into and the patch
/// without directive elements (upstream's `mergeSliceWithSpecialElements`).
fn apply_element_directives(
    mut current: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut plain = Vec::new();
    let mut replace = false;
    for element in patch {
        let Some(directive) = element.get(DIRECTIVE) else {
            plain.push(element);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Some(value) = element.get(merge_key) else {
                    return Err(no_merge_key(&element, merge_key));
                };
                for (i, v) in current.iter().enumerate() {
                    if !v.is_object() {
                        return Err(Error::NotAMap(i));
                    }
                }
                current.retain(|v| !v.get(merge_key).is_some_and(|k| go_eq(k, value)));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(Error::MergeDirectiveInList),
            _ => {
                let map = element.as_object().cloned().unwrap_or_default();
                return Err(bad_patch_type(directive, &map));
            }
        }
    }
    Ok(if replace {
        (plain.into_iter().map(finish).collect(), Vec::new())
    } else {
        (current, plain)
    })
}

/// Merges each patch element into the element of `current` with the same key, or appends it
/// (upstream's `mergeSliceWithoutSpecialElements`).
fn merge_by_key(
    mut current: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    schema: Schema,
) -> Result<Vec<Value>> {
    for element in patch {
        let Value::Object(element) = element else {
            return Err(bad_arg_type("map[string]interface {}", element));
        };
        let Some(key) = element.get(merge_key) else {
            return Err(no_merge_key(&Value::Object(element.clone()), merge_key));
        };
        match find_by_key(&current, merge_key, key)? {
            Some(i) => {
                let Value::Object(found) = std::mem::take(&mut current[i]) else {
                    return Err(Error::NotAMap(i));
                };
                current[i] = Value::Object(merge_map(found, element.clone(), schema)?);
            }
            None => current.push(finish(Value::Object(element.clone()))),
        }
    }
    Ok(current)
}

/// The index of the element whose `merge_key` is `value`.
fn find_by_key(list: &[Value], merge_key: &str, value: &Value) -> Result<Option<usize>> {
    for (i, element) in list.iter().enumerate() {
        let Value::Object(map) = element else {
            return Err(Error::NotAMap(i));
        };
        if map.get(merge_key).is_some_and(|v| go_eq(v, value)) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Splits `merged` into the elements `by` names and the others, each in `merged`'s order.
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut named = Vec::new();
    let mut others = Vec::new();
    for element in merged {
        let found = if merge_key.is_empty() {
            by.iter().any(|b| go_eq(b, &element))
        } else {
            let Value::Object(map) = &element else {
                return Err(bad_arg_type("map[string]interface {}", &element));
            };
            let Some(key) = map.get(merge_key) else {
                return Err(no_merge_key(&element, merge_key));
            };
            find_by_key(by, merge_key, key)?.is_some()
        };
        if found {
            named.push(element);
        } else {
            others.push(element);
        }
    }
    Ok((named, others))
}

/// Sorts the patch's elements by `patch_order` and the object's own by `server_order`, then
/// interleaves them (upstream's `normalizeElementOrder`).
fn normalize_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>> {
    let patch_items = sort_by_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = sort_by_order(server_only, server_order, merge_key, kind)?;
    Ok(interleave(
        server_only,
        patch_items,
        server_order,
        merge_key,
        kind,
    ))
}

/// Sorts `items` by their position in `order`, `$patch: delete` elements last (upstream's
/// `normalizeSliceOrder`).
fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>> {
    let (mut items, deletions) = if kind == GoType::Map {
        for element in items.iter().chain(order) {
            if !element.is_object() {
                return Err(bad_arg_type("map[string]interface {}", element));
            }
            if element.get(merge_key).is_none() {
                return Err(no_merge_key(element, merge_key));
            }
        }
        let (kept, deletions) = split_deletions(&items)?;
        let deletions: Vec<Value> = deletions.into_iter().cloned().collect();
        (kept.into_iter().cloned().collect::<Vec<_>>(), deletions)
    } else {
        (items, Vec::new())
    };
    // Elements `order` does not name keep their place behind the ones it does.
    items.sort_by_key(|v| position(order, v, merge_key, kind).unwrap_or(usize::MAX));
    items.extend(deletions);
    Ok(items)
}

/// Merges two lists, each already in order, keeping both orders: an element of `left` goes
/// before the next of `right` when `server_order` has it earlier (upstream's
/// `mergeSortedSlice`).
fn interleave(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => {
                let li = position(server_order, l, merge_key, kind);
                let ri = position(server_order, r, merge_key, kind);
                matches!((li, ri), (Some(li), Some(ri)) if li < ri)
            }
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
    out
}

/// The index in `list` of the element equal to `value` (by merge key for objects).
fn position(list: &[Value], value: &Value, merge_key: &str, kind: GoType) -> Option<usize> {
    let id = |v: &Value| -> Option<Value> {
        if kind == GoType::Map {
            v.get(merge_key).cloned()
        } else {
            Some(v.clone())
        }
    };
    let wanted = id(value);
    list.iter().position(|v| match (&wanted, id(v)) {
        (Some(a), Some(b)) => go_eq(a, &b),
        (None, None) => true,
        _ => false,
    })
}

/// The elements without and with `$patch: delete`.
fn split_deletions(list: &[Value]) -> Result<(Vec<&Value>, Vec<&Value>)> {
    let mut kept = Vec::new();
    let mut deletions = Vec::new();
    for element in list {
        let Value::Object(map) = element else {
            return Err(bad_arg_type("map[string]interface {}", element));
        };
        if map.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
            deletions.push(element);
        } else {
            kept.push(element);
        }
    }
    Ok((kept, deletions))
}

/// Whether two elements have the same merge key value (or are equal, without a key).
fn merge_key_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool> {
    if merge_key.is_empty() {
        return Ok(go_eq(left, right));
    }
    let key = |v: &Value| -> Result<Value> {
        let Value::Object(map) = v else {
            return Err(bad_arg_type("map[string]interface {}", v));
        };
        map.get(merge_key)
            .cloned()
            .ok_or_else(|| no_merge_key(v, merge_key))
    };
    Ok(go_eq(&key(left)?, &key(right)?))
}

/// Removes scalars that appear earlier, the way upstream does: a duplicate's place is taken by
/// the last element.
fn dedup_scalars(mut list: Vec<Value>) -> Vec<Value> {
    let mut i = 0;
    while i + 1 < list.len() {
        let mut j = i + 1;
        while j < list.len() {
            if go_eq(&list[i], &list[j]) {
                list.swap_remove(j);
            } else {
                j += 1;
            }
        }
        i += 1;
    }
    list
}

/// A value copied from the patch where the object had none: directives and nulls removed; an
/// object with `$patch` is dropped (upstream's `discardNullValuesFromPatch` then
/// `removeDirectives`).
fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) if map.contains_key(DIRECTIVE) => None,
        Value::Object(map) => Some(Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .filter_map(|(k, v)| Some((k, remove_directives(v)?)))
                .filter(|(k, _)| !is_directive_key(k))
                .collect(),
        )),
        Value::Array(list) => Some(Value::Array(
            list.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// A value taken whole from the patch, as decoding into the typed object leaves it: directive
/// keys and null fields dropped.
fn finish(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(finish_map(map)),
        Value::Array(list) => Value::Array(list.into_iter().map(finish).collect()),
        other => other,
    }
}

fn finish_map(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .filter(|(k, v)| !v.is_null() && !is_directive_key(k))
        .map(|(k, v)| (k, finish(v)))
        .collect()
}

fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        || key.starts_with(SET_ELEMENT_ORDER)
}

/// The Go type a value decodes to; values of different types never compare equal, and lists
/// must hold one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoType {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Slice,
    Map,
}

impl GoType {
    fn name(self) -> &'static str {
        match self {
            GoType::Nil => "%!s(<nil>)",
            GoType::Bool => "bool",
            GoType::Int => "int64",
            GoType::Float => "float64",
            GoType::String => "string",
            GoType::Slice => "[]interface {}",
            GoType::Map => "map[string]interface {}",
        }
    }
}

fn go_type(value: &Value) -> GoType {
    match value {
        Value::Null => GoType::Nil,
        Value::Bool(_) => GoType::Bool,
        Value::Number(n) if n.is_f64() => GoType::Float,
        Value::Number(_) => GoType::Int,
        Value::String(_) => GoType::String,
        Value::Array(_) => GoType::Slice,
        Value::Object(_) => GoType::Map,
    }
}

/// The one element type of the lists (upstream's `sliceElementType`).
fn element_type(lists: &[&[Value]]) -> Result<GoType> {
    let mut found = None;
    for value in lists.iter().flat_map(|l| l.iter()) {
        let t = go_type(value);
        match found {
            None if t == GoType::Slice => return Err(Error::ListOfLists),
            None => found = Some(t),
            Some(prev) if prev != t => {
                let all: Vec<String> = lists.iter().map(|l| go_fmt_list(l)).collect();
                return Err(Error::MixedElements(format!("[{}]", all.join(" "))));
            }
            Some(_) => {}
        }
    }
    found.ok_or(Error::NoElements)
}

/// Go's `==` on decoded JSON scalars (objects and lists compare by value here; Go would
/// panic).
fn go_eq(a: &Value, b: &Value) -> bool {
    go_type(a) == go_type(b) && a == b
}

fn bad_arg_type(expected: &'static str, actual: &Value) -> Error {
    Error::BadArgType {
        expected,
        actual: go_type(actual).name(),
    }
}

fn no_merge_key(element: &Value, merge_key: &str) -> Error {
    Error::NoMergeKey {
        map: go_fmt(element),
        key: merge_key.to_owned(),
    }
}

fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> Error {
    let directive = match directive {
        Value::String(s) => s.clone(),
        other => format!("%!s({}={})", go_type(other).name(), go_fmt(other)),
    };
    Error::BadPatchType {
        directive,
        map: go_fmt(&Value::Object(map.clone())),
    }
}

/// A decoded JSON value as Go's `%v` prints it: `map[k:v]` with sorted keys, `[a b]`.
fn go_fmt(value: &Value) -> String {
    let mut out = String::new();
    write_go(&mut out, value);
    out
}

fn go_fmt_list(list: &[Value]) -> String {
    go_fmt(&Value::Array(list.to_vec()))
}

fn write_go(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
            Some(f) => out.push_str(&go_float(f)),
            None => out.push_str(&n.to_string()),
        },
        Value::String(s) => out.push_str(s),
        Value::Array(list) => {
            out.push('[');
            for (i, v) in list.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(out, v);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            // serde_json's map iterates in key order, as Go prints maps.
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_go(out, v);
            }
            out.push(']');
        }
    }
}

/// A float as Go's `%v`: the shortest digits, in exponent form when the decimal exponent is
/// below -4 or at least 6.
fn go_float(f: f64) -> String {
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return f.to_string();
    }
    let mut out = String::from(mantissa);
    let sign = if exp < 0 { '-' } else { '+' };
    let _ = write!(out, "e{sign}{:02}", exp.abs());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::lookup_kind;
    use serde_json::json;

    fn pod() -> TypeRef {
        lookup_kind("", "v1", "Pod").expect("Pod")
    }

    fn smp(ty: TypeRef, original: Value, patch: Value) -> Result<Value> {
        let Value::Object(patch) = patch else {
            panic!("patch must be an object")
        };
        apply(&original, &patch, ty)
    }

    /// (what, original pod spec, patch to the spec, expected spec)
    fn pod_spec_cases() -> Vec<(&'static str, Value, Value, Value)> {
        let c = |name: &str, image: &str| json!({"name": name, "image": image});
        vec![
            (
                "containers merge by name, new ones appended",
                json!({"containers": [c("a", "1"), c("b", "1")]}),
                json!({"containers": [{"name": "b", "image": "2"}, c("c", "1")]}),
                json!({"containers": [c("a", "1"), c("b", "2"), c("c", "1")]}),
            ),
            (
                "the patch's order wins for the elements it names",
                json!({"containers": [c("a", "1"), c("b", "1"), c("c", "1")]}),
                json!({"containers": [{"name": "c", "image": "2"}, {"name": "a", "image": "2"}]}),
                json!({"containers": [c("b", "1"), c("c", "2"), c("a", "2")]}),
            ),
            (
                "$patch: delete removes the element with that key",
                json!({"containers": [c("a", "1"), c("b", "1")]}),
                json!({"containers": [{"name": "a", "$patch": "delete"}]}),
                json!({"containers": [c("b", "1")]}),
            ),
            (
                "$patch: replace makes the list the patch's",
                json!({"containers": [c("a", "1"), c("b", "1")]}),
                json!({"containers": [c("z", "9"), {"$patch": "replace"}]}),
                json!({"containers": [c("z", "9")]}),
            ),
            (
                "nested lists merge by their own key; null deletes",
                json!({"containers": [{"name": "a", "image": "1", "env": [
                    {"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]}),
                json!({"containers": [{"name": "a", "image": null, "env": [
                    {"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}]}]}),
                json!({"containers": [{"name": "a", "env": [
                    {"name": "X", "value": "1"}, {"name": "Y", "value": "3"},
                    {"name": "Z", "value": "4"}]}]}),
            ),
            (
                "lists without a strategy are replaced",
                json!({"tolerations": [{"key": "a"}, {"key": "b"}]}),
                json!({"tolerations": [{"key": "c"}]}),
                json!({"tolerations": [{"key": "c"}]}),
            ),
            (
                "scalar lists without a strategy are replaced",
                json!({"containers": [{"name": "a", "args": ["x", "y"]}]}),
                json!({"containers": [{"name": "a", "args": ["z"]}]}),
                json!({"containers": [{"name": "a", "args": ["z"]}]}),
            ),
            (
                "maps merge key by key",
                json!({"nodeSelector": {"a": "1", "b": "2"}}),
                json!({"nodeSelector": {"b": null, "c": "3"}}),
                json!({"nodeSelector": {"a": "1", "c": "3"}}),
            ),
            (
                "$patch: replace on a map",
                json!({"nodeSelector": {"a": "1", "b": "2"}}),
                json!({"nodeSelector": {"c": "3", "$patch": "replace"}}),
                json!({"nodeSelector": {"c": "3"}}),
            ),
            (
                "$patch: delete on a map empties it",
                json!({"nodeSelector": {"a": "1"}, "hostname": "h"}),
                json!({"nodeSelector": {"$patch": "delete"}}),
                json!({"nodeSelector": {}, "hostname": "h"}),
            ),
            (
                "$retainKeys clears the keys it does not list",
                json!({"volumes": [{"name": "v", "emptyDir": {}}]}),
                json!({"volumes": [{"name": "v", "hostPath": {"path": "/x"},
                    "$retainKeys": ["name", "hostPath"]}]}),
                json!({"volumes": [{"name": "v", "hostPath": {"path": "/x"}}]}),
            ),
            (
                // Upstream puts elements the object lacks before the ones only it has.
                "a new element goes first and keeps no directives or nulls",
                json!({"containers": [c("a", "1")]}),
                json!({"containers": [{"name": "b", "image": null,
                    "$setElementOrder/env": [{"name": "E"}], "env": [{"name": "E"}]}]}),
                json!({"containers": [{"name": "b", "env": [{"name": "E"}]}, c("a", "1")]}),
            ),
            (
                "a new field takes the patch's value without directives",
                json!({}),
                json!({"containers": [{"name": "a", "ports": [
                    {"containerPort": 80, "$patch": "delete"}, {"containerPort": 81}]}]}),
                json!({"containers": [{"name": "a", "ports": [{"containerPort": 81}]}]}),
            ),
            (
                "$setElementOrder orders the merged list, the object's others interleaved",
                json!({"containers": [c("a", "1"), c("b", "1"), c("c", "1")]}),
                json!({"$setElementOrder/containers": [{"name": "c"}, {"name": "d"}, {"name": "a"}],
                    "containers": [c("d", "1")]}),
                json!({"containers": [c("b", "1"), c("c", "1"), c("d", "1"), c("a", "1")]}),
            ),
            (
                "$setElementOrder without the list in the patch reorders",
                json!({"containers": [c("a", "1"), c("b", "1")]}),
                json!({"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}),
                json!({"containers": [c("b", "1"), c("a", "1")]}),
            ),
            (
                "fields the type lacks merge like maps",
                json!({"x-unknown": {"a": 1, "list": [1, 2]}}),
                json!({"x-unknown": {"b": 2, "list": [3]}}),
                json!({"x-unknown": {"a": 1, "b": 2, "list": [3]}}),
            ),
            (
                "a value of another type is replaced",
                json!({"hostname": {"a": 1}}),
                json!({"hostname": "h"}),
                json!({"hostname": "h"}),
            ),
            (
                "ports merge by containerPort",
                json!({"containers": [{"name": "a", "ports": [
                    {"containerPort": 80, "name": "http"}, {"containerPort": 443}]}]}),
                json!({"containers": [{"name": "a", "ports": [
                    {"containerPort": 80, "name": "web"}]}]}),
                json!({"containers": [{"name": "a", "ports": [
                    {"containerPort": 80, "name": "web"}, {"containerPort": 443}]}]}),
            ),
        ]
    }

    #[test]
    fn pod_spec_patches() {
        for (what, original, patch, expected) in pod_spec_cases() {
            let got = smp(pod(), json!({"spec": original}), json!({"spec": patch}))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(got, json!({"spec": expected}), "{what}");
        }
    }

    #[test]
    fn metadata_patches() {
        let cases = [
            (
                "scalar merge lists are unions in the patch's order, new ones first",
                json!({"finalizers": ["a", "b"]}),
                json!({"finalizers": ["c", "a"]}),
                json!({"finalizers": ["c", "a", "b"]}),
            ),
            (
                "$deleteFromPrimitiveList removes scalars",
                json!({"finalizers": ["a", "b", "c"]}),
                json!({"$deleteFromPrimitiveList/finalizers": ["b"]}),
                json!({"finalizers": ["a", "c"]}),
            ),
            (
                "duplicates in the patch are dropped",
                json!({"finalizers": ["a"]}),
                json!({"finalizers": ["b", "b", "a"]}),
                json!({"finalizers": ["b", "a"]}),
            ),
            (
                "annotations merge; null removes",
                json!({"annotations": {"a": "1", "b": "2"}}),
                json!({"annotations": {"a": null, "c": "3"}}),
                json!({"annotations": {"b": "2", "c": "3"}}),
            ),
            (
                "$retainKeys on the object itself",
                json!({"labels": {"a": "1"}, "annotations": {"b": "2"}}),
                json!({"$retainKeys": ["labels"], "labels": {"c": "3"}}),
                json!({"labels": {"a": "1", "c": "3"}}),
            ),
        ];
        for (what, original, patch, expected) in cases {
            let got = smp(
                pod(),
                json!({"metadata": original}),
                json!({"metadata": patch}),
            )
            .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(got, json!({"metadata": expected}), "{what}");
        }
    }

    #[test]
    fn strategies_of_struct_fields() {
        let deployment = lookup_kind("apps", "v1", "Deployment").expect("Deployment");
        // `retainKeys`: switching the strategy type clears the other type's parameters.
        let got = smp(
            deployment,
            json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            json!({"spec": {"strategy": {"type": "Recreate", "rollingUpdate": null,
                "$retainKeys": ["type"]}}}),
        );
        assert_eq!(got, Ok(json!({"spec": {"strategy": {"type": "Recreate"}}})));
        // `replace`: the PodDisruptionBudget's selector is the patch's, not a merge.
        let pdb = lookup_kind("policy", "v1", "PodDisruptionBudget").expect("PDB");
        let got = smp(
            pdb,
            json!({"spec": {"selector": {"matchLabels": {"a": "1"}}}}),
            json!({"spec": {"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}}}),
        );
        assert_eq!(
            got,
            Ok(
                json!({"spec": {"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}}})
            )
        );
    }

    #[test]
    fn bad_directives_answer_as_upstream() {
        let cases = [
            (
                json!({"$deleteFromPrimitiveList": ["a"]}),
                400,
                "invalid patch format of primitive list",
            ),
            (
                json!({"$setElementOrder": []}),
                400,
                "invalid patch format of setElementOrder list",
            ),
            (
                json!({"$retainKeys": "spec"}),
                400,
                "invalid patch format of retainKeys",
            ),
            (
                json!({"$retainKeys": ["metadata"], "spec": {}}),
                400,
                "invalid patch format of retainKeys",
            ),
            (
                json!({"spec": {"containers": [{"image": "x"}]}}),
                500,
                "map: map[image:x] does not contain declared merge key: name",
            ),
            (
                json!({"spec": {"$patch": "merge"}}),
                500,
                "unknown patch type: merge in map: map[$patch:merge]",
            ),
            (
                json!({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}),
                500,
                "merging lists cannot yet be specified in the patch",
            ),
            (
                json!({"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}}),
                500,
                "unknown patch type: bogus in map: map[$patch:bogus name:a]",
            ),
            (
                json!({"metadata": {"finalizers": [1]}}),
                500,
                "list element types are not identical: [[a] [1]]",
            ),
            (
                json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                    "containers": [{"name": "b"}, {"name": "a"}]}}),
                500,
                "The order in patch list:\n[map[name:b] map[name:a]]\n doesn't match \
                 $setElementOrder list:\n[map[name:a] map[name:b]]\n",
            ),
        ];
        let original = json!({"metadata": {"finalizers": ["a"]},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        for (patch, code, message) in cases {
            let err =
                ApiError::from(smp(pod(), original.clone(), patch.clone()).expect_err("fails"));
            assert_eq!(err.code(), code, "{patch}");
            let shown = match code {
                422 => err
                    .details()
                    .map(|d| d.causes[0].message.clone())
                    .unwrap_or_default(),
                _ => err.message().to_owned(),
            };
            assert_eq!(shown, message, "{patch}");
        }
        let lists = smp(
            pod(),
            json!({"metadata": {"finalizers": []}}),
            json!({"metadata": {"finalizers": [["a"]]}}),
        );
        assert_eq!(lists, Err(Error::ListOfLists));
        let err = ApiError::from(Error::ListOfLists);
        assert_eq!((err.code(), err.reason()), (422, Reason::Invalid));
    }

    #[test]
    fn go_formatting() {
        assert_eq!(
            go_fmt(&json!({"b": [1, 2.5, true, null], "a": {"x": "y"}})),
            "map[a:map[x:y] b:[1 2.5 true <nil>]]"
        );
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(123456.5), "123456.5");
    }
}
