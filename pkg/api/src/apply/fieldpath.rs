//! Field paths and sets of them, as structured-merge-diff's `fieldpath` package, with the
//! `FieldsV1` JSON encoding `managedFields` entries carry.
//!
//! A [`Set`] is a tree: each node has members (paths that end there) and children (paths that
//! go on). Elements sort as upstream's `PathElement.Compare` does (field names, then keys, then
//! values, then indexes), which is also the order `FieldsV1` is written in.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// What can go wrong reading `FieldsV1`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key is not one of `f:`, `k:`, `v:`, `i:` or `.`.
    #[error("unknown path element type: {0:?}")]
    UnknownElement(String),
    /// The JSON after `k:`, `v:` or `i:` does not parse as what it must be.
    #[error("invalid path element {element:?}: {source}")]
    BadElement {
        /// The key as written.
        element: String,
        /// Why it does not parse.
        source: serde_json::Error,
    },
    /// A `k:` key that is not an object, or an `i:` that is not an index.
    #[error("invalid path element {0:?}")]
    Malformed(String),
    /// A node that is not a JSON object.
    #[error("expected an object for {0:?}")]
    NotAnObject(String),
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum PathElement {
    /// A struct field or map key: `f:<name>`.
    Field(String),
    /// An element of a map list, by its key fields sorted by name: `k:{"name":"x"}`.
    Key(Vec<(String, Value)>),
    /// An element of a set list, by value: `v:"x"`.
    Value(Value),
    /// An element of a list by position: `i:3`.
    Index(usize),
}

impl Eq for PathElement {}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        use PathElement::*;
        let rank = |e: &PathElement| match e {
            Field(_) => 0,
            Key(_) => 1,
            Value(_) => 2,
            Index(_) => 3,
        };
        match (self, other) {
            (Field(a), Field(b)) => a.cmp(b),
            (Key(a), Key(b)) => compare_keys(a, b),
            (Value(a), Value(b)) => compare_values(a, b),
            (Index(a), Index(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Upstream's `FieldList.Compare`: shorter first, then name by name and value by value.
fn compare_keys(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| {
        a.iter()
            .zip(b)
            .map(|((an, av), (bn, bv))| an.cmp(bn).then_with(|| compare_values(av, bv)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    })
}

/// Upstream's `value.Compare`: a total order over JSON values; numbers (compared numerically)
/// before strings, booleans, lists, maps, and null last.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    let rank = |v: &Value| match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    };
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => x
            .iter()
            .zip(y)
            .map(|(x, y)| compare_values(x, y))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Value::Object(x), Value::Object(y)) => {
            // `Map` iterates in key order (serde_json without `preserve_order`).
            let (x, y): (Vec<_>, Vec<_>) = (x.iter().collect(), y.iter().collect());
            x.iter()
                .zip(&y)
                .map(|((xk, xv), (yk, yv))| xk.cmp(yk).then_with(|| compare_values(xv, yv)))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| x.len().cmp(&y.len()))
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// A value as upstream's `value.ToString` prints it in paths (JSON).
fn value_string(v: &Value) -> String {
    v.to_string()
}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl PathElement {
    /// The `FieldsV1` key of the element.
    pub fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                // Written by hand so the fields keep their (sorted) order.
                let body: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                    .collect();
                format!("k:{{{}}}", body.join(","))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key (not `.`).
    pub fn decode(key: &str) -> Result<PathElement, Error> {
        let bad = |source| Error::BadElement {
            element: key.to_string(),
            source,
        };
        let (kind, rest) = key
            .split_once(':')
            .ok_or_else(|| Error::UnknownElement(key.to_string()))?;
        match kind {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => match serde_json::from_str::<Value>(rest).map_err(bad)? {
                Value::Object(map) => Ok(PathElement::key(map.into_iter().collect())),
                _ => Err(Error::Malformed(key.to_string())),
            },
            "v" => Ok(PathElement::Value(serde_json::from_str(rest).map_err(bad)?)),
            "i" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|_| Error::Malformed(key.to_string())),
            _ => Err(Error::UnknownElement(key.to_string())),
        }
    }

    /// A key element with its fields sorted by name.
    pub fn key(mut fields: Vec<(String, Value)>) -> PathElement {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }
}

/// A path from the root of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    /// A path of field names (`["spec", "replicas"]`).
    pub fn fields(names: &[&str]) -> Path {
        Path(
            names
                .iter()
                .map(|n| PathElement::Field((*n).to_string()))
                .collect(),
        )
    }

    /// This path with `element` appended.
    pub fn child(&self, element: PathElement) -> Path {
        let mut p = self.clone();
        p.0.push(element);
        p
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|e| write!(f, "{e}"))
    }
}

/// A set of paths (see the [module docs](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, Set>,
}

impl Set {
    /// The empty set.
    pub fn new() -> Set {
        Set::default()
    }

    /// A set of these paths.
    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Set {
        let mut s = Set::new();
        for p in paths {
            s.insert(p);
        }
        s
    }

    /// Whether the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(Set::is_empty)
    }

    /// Adds a path (the empty path is ignored: the root is never a member).
    pub fn insert(&mut self, path: &Path) {
        self.insert_elements(&path.0);
    }

    fn insert_elements(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self
                .children
                .entry(first.clone())
                .or_default()
                .insert_elements(rest),
        }
    }

    /// Whether the path is a member.
    pub fn has(&self, path: &Path) -> bool {
        let mut node = self;
        let Some((last, parents)) = path.0.split_last() else {
            return false;
        };
        for e in parents {
            match node.children.get(e) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.members.contains(last)
    }

    /// Whether the element is a member at this node.
    pub fn has_member(&self, element: &PathElement) -> bool {
        self.members.contains(element)
    }

    /// The subset under `element` (upstream's `WithPrefix`).
    pub fn child(&self, element: &PathElement) -> Option<&Set> {
        self.children.get(element).filter(|c| !c.is_empty())
    }

    /// Every path in either set.
    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (e, c) in &other.children {
            let merged = match out.children.get(e) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(e.clone(), merged);
        }
        out
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &Set) -> Set {
        Set {
            members: self.members.intersection(&other.members).cloned().collect(),
            children: self
                .children
                .iter()
                .filter_map(|(e, c)| {
                    let both = c.intersection(other.children.get(e)?);
                    (!both.is_empty()).then(|| (e.clone(), both))
                })
                .collect(),
        }
    }

    /// The paths of this set that are not in `other` (paths under a member of `other` stay).
    pub fn difference(&self, other: &Set) -> Set {
        Set {
            members: self.members.difference(&other.members).cloned().collect(),
            children: self
                .children
                .iter()
                .filter_map(|(e, c)| {
                    let rest = match other.children.get(e) {
                        Some(o) => c.difference(o),
                        None => c.clone(),
                    };
                    (!rest.is_empty()).then(|| (e.clone(), rest))
                })
                .collect(),
        }
    }

    /// The paths of this set that are neither in `other` nor under one of its members.
    pub fn recursive_difference(&self, other: &Set) -> Set {
        Set {
            members: self.members.difference(&other.members).cloned().collect(),
            children: self
                .children
                .iter()
                .filter(|(e, _)| !other.members.contains(e))
                .filter_map(|(e, c)| {
                    let rest = match other.children.get(e) {
                        Some(o) => c.recursive_difference(o),
                        None => c.clone(),
                    };
                    (!rest.is_empty()).then(|| (e.clone(), rest))
                })
                .collect(),
        }
    }

    /// Every member path, members of a node before its children's.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Path::default(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for m in &self.members {
            out.push(prefix.child(m.clone()));
        }
        for (e, c) in &self.children {
            prefix.0.push(e.clone());
            c.collect_paths(prefix, out);
            prefix.0.pop();
        }
    }

    /// The nodes of the set (members and children), for walks alongside a value.
    pub(crate) fn children(&self) -> impl Iterator<Item = (&PathElement, &Set)> {
        self.children.iter()
    }

    /// Adds `element` as a member of this node.
    pub(crate) fn insert_member(&mut self, element: PathElement) {
        self.members.insert(element);
    }

    /// Puts `child` under `element` (nothing when it is empty).
    pub(crate) fn attach(&mut self, element: PathElement, child: Set) {
        if !child.is_empty() {
            let merged = match self.children.remove(&element) {
                Some(mine) => mine.union(&child),
                None => child,
            };
            self.children.insert(element, merged);
        }
    }

    /// The child node at `element`, created when absent.
    pub(crate) fn child_mut(&mut self, element: PathElement) -> &mut Set {
        self.children.entry(element).or_default()
    }

    /// The `FieldsV1` JSON of the set.
    ///
    /// Upstream writes a node's children in its path element order (fields, then keys, values,
    /// indexes; keys and values compared as values); a JSON object here keeps its keys sorted
    /// as text. The kinds never mix in one node (a node is an object's or a list's), so only
    /// numeric values inside one kind can come out differently (`k:{"port":443}` before
    /// `k:{"port":80}`); `i:` entries come only from live list items that cannot be keyed,
    /// which upstream refuses outright. Readers of a set never depend on the order.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.encode(false))
    }

    fn encode(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        let empty = self.members.is_empty() && self.children.is_empty();
        if include_self && !empty {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        let mut keys: BTreeSet<&PathElement> = self.members.iter().collect();
        keys.extend(self.children.keys());
        for e in keys {
            let value = match self.children.get(e) {
                Some(c) => c.encode(self.members.contains(e)),
                None => Map::new(),
            };
            out.insert(e.encode(), Value::Object(value));
        }
        out
    }

    /// The set a `FieldsV1` JSON object holds.
    pub fn from_fields_v1(value: &Value) -> Result<Set, Error> {
        let map = value
            .as_object()
            .ok_or_else(|| Error::NotAnObject(String::new()))?;
        let mut set = Set::new();
        for (key, child) in map {
            if key == "." {
                continue;
            }
            let element = PathElement::decode(key)?;
            let inner = child
                .as_object()
                .ok_or_else(|| Error::NotAnObject(key.clone()))?;
            if inner.is_empty() || inner.contains_key(".") {
                set.members.insert(element.clone());
            }
            if inner.keys().any(|k| k != ".") {
                set.children.insert(element, Set::from_fields_v1(child)?);
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> PathElement {
        PathElement::key(vec![("name".into(), json!(name))])
    }

    #[test]
    fn fields_v1_round_trips_in_upstreams_order() {
        let text = r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{}}},"f:finalizers":{"v:\"a\"":{}},"f:replicas":{}}}"#;
        let set = Set::from_fields_v1(&serde_json::from_str(text).expect("json")).expect("set");
        assert!(set.has(&Path::fields(&["spec", "replicas"])));
        assert!(set.has(&Path::fields(&["metadata", "labels"])));
        assert!(!set.has(&Path::fields(&["metadata"])));
        assert_eq!(
            set.to_fields_v1(),
            serde_json::from_str::<Value>(text).expect("json")
        );
        let again = Set::from_fields_v1(&set.to_fields_v1()).expect("set");
        assert_eq!(again, set);
    }

    #[test]
    fn elements_sort_and_print_as_upstream() {
        let mut v = [
            PathElement::Index(0),
            PathElement::Value(json!("b")),
            key("x"),
            PathElement::Field("z".into()),
            PathElement::Value(json!(3)),
        ];
        v.sort();
        let encoded: Vec<String> = v.iter().map(PathElement::encode).collect();
        assert_eq!(
            encoded,
            ["f:z", r#"k:{"name":"x"}"#, "v:3", r#"v:"b""#, "i:0"]
        );
        let path = Path(vec![
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            key("nginx"),
            PathElement::Field("image".into()),
        ]);
        assert_eq!(path.to_string(), r#".spec.containers[name="nginx"].image"#);
        assert_eq!(PathElement::Value(json!("a")).to_string(), r#"[="a"]"#);
        assert!(PathElement::decode("x:1").is_err());
        assert!(PathElement::decode("k:[1]").is_err());
    }

    #[test]
    fn set_algebra() {
        let a = Set::from_paths(&[
            Path::fields(&["a", "b"]),
            Path::fields(&["a", "c"]),
            Path::fields(&["d"]),
        ]);
        let b = Set::from_paths(&[Path::fields(&["a", "b"]), Path::fields(&["a"])]);
        let diff = a.difference(&b);
        assert_eq!(
            diff.paths(),
            [Path::fields(&["d"]), Path::fields(&["a", "c"])]
        );
        assert_eq!(a.intersection(&b).paths(), [Path::fields(&["a", "b"])]);
        assert_eq!(a.union(&b).paths().len(), 4);
        // `a` as a member takes everything under it.
        assert_eq!(a.recursive_difference(&b).paths(), [Path::fields(&["d"])]);
        assert!(a.difference(&a).is_empty());
    }
}
