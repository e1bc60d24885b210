//! Generates `pkg/api/src/types/table.rs`, the table of upstream's API struct types that
//! strategic merge patch, server-side apply and the OpenAPI documents read.
//!
//! ```text
//! cargo run -p rkube-api --example gen-type-table -- <go-api-dir>... > pkg/api/src/types/table.rs
//! ```
//! Each `<go-api-dir>` is a checkout of one of upstream's Go API modules at the served release
//! (`k8s.io/api`, `k8s.io/apimachinery`, `k8s.io/apiextensions-apiserver`,
//! `k8s.io/kube-aggregator`, tags `v0.34.x`).
//!
//! Roots are every struct of the group-versions rkube serves (plus `meta/v1`); everything their
//! fields reference is followed. Per field it writes the JSON name, the shape (named
//! non-struct types resolved to what they hold, apimachinery's hand-written JSON types as
//! scalars or "any"), the `+listType`/`+listMapKey`/`+mapType`/`+structType` markers (a named
//! type's markers when the field has none), the `patchStrategy`/`patchMergeKey` tags, whether
//! the Go field is a pointer and whether its json tag has `omitempty` (so server-side apply can
//! build the Go zero value of a type as upstream's converter writes it), and `+default=`
//! markers (literals, or `ref(Const)` resolved in the field's package), which give list-map
//! keys their defaults; embedded `json:",inline"` structs are flattened into their parent. Per
//! type it writes `+structType=atomic`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use rkube_api::protobuf::proto_package;

#[path = "common/go.rs"]
#[allow(dead_code)] // shared with gen-proto-schema, which uses more of it
mod go;

use go::{GoType, TypeDecl};

const META_V1: &str = "k8s.io/apimachinery/pkg/apis/meta/v1";

type Error = Box<dyn std::error::Error>;

/// A resolved shape, before struct types get their table index.
#[derive(Debug, Clone)]
enum Shape {
    Scalar(&'static str),
    Any,
    Struct(String, String),
    List(Box<Shape>),
    Map(Box<Shape>),
}

/// The markers that describe a list or an object's merge behaviour.
#[derive(Debug, Default, Clone)]
struct Markers {
    list_type: Option<String>,
    map_keys: Vec<String>,
    map_type: Option<String>,
}

impl Markers {
    fn read(comments: &[String]) -> Self {
        let mut out = Markers::default();
        for (name, value) in go::markers(comments) {
            match name {
                "listType" => out.list_type = Some(value.to_owned()),
                "listMapKey" => out.map_keys.push(value.to_owned()),
                "mapType" | "structType" => out.map_type = Some(value.to_owned()),
                _ => {}
            }
        }
        out
    }

    /// These markers where set, else `fallback`'s (a named type's own markers).
    fn or(self, fallback: Markers) -> Markers {
        let keys_from_list_type = self.list_type.is_some();
        Markers {
            list_type: self.list_type.or(fallback.list_type),
            map_keys: if keys_from_list_type {
                self.map_keys
            } else {
                fallback.map_keys
            },
            map_type: self.map_type.or(fallback.map_type),
        }
    }
}

/// A field ready to be written.
#[derive(Debug)]
struct Field {
    json: String,
    shape: Shape,
    markers: Markers,
    patch_strategy: Option<String>,
    merge_key: Option<String>,
    /// A Go pointer (`*T`): absent or null when unset, never a zero value.
    pointer: bool,
    /// `omitempty` in the json tag.
    omitempty: bool,
    /// The `+default=` marker's value as compact JSON.
    default: Option<String>,
}

struct Resolver<'a> {
    packages: &'a BTreeMap<String, go::Package>,
    warnings: usize,
}

fn main() -> Result<(), Error> {
    let go_dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if go_dirs.is_empty() {
        return Err("usage: gen-type-table <go-api-dir>... (see the file's docs)".into());
    }
    let packages = go::read_modules(&go_dirs)?;

    // Served group-versions, found by their proto package as the protobuf decoder finds them.
    let mut served: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    for r in rkube_api::resources::all() {
        let proto = proto_package(r.group, r.version);
        let package = packages
            .values()
            .find(|p| p.proto_package.as_deref() == Some(proto.as_str()))
            .ok_or_else(|| format!("no Go package for {}/{}", r.group, r.version))?;
        served.insert(package.import_path.clone(), (r.group, r.version));
    }
    served.insert(META_V1.to_owned(), ("meta.k8s.io", "v1"));

    let mut resolver = Resolver {
        packages: &packages,
        warnings: 0,
    };
    let mut todo: Vec<(String, String)> = served
        .keys()
        .flat_map(|path| {
            packages[path]
                .types
                .iter()
                .filter(|t| is_struct(t) && special(path, &t.name).is_none())
                .map(|t| (path.clone(), t.name.clone()))
        })
        .collect();
    let mut types: BTreeMap<(String, String), (bool, Vec<Field>)> = BTreeMap::new();
    while let Some((path, name)) = todo.pop() {
        let key = (definition_prefix(&path), name.clone());
        if types.contains_key(&key) {
            continue;
        }
        let decl = resolver.decl(&path, &name)?;
        let atomic = Markers::read(&decl.comments).map_type.as_deref() == Some("atomic");
        let fields = resolver.fields(&path, decl)?;
        for field in &fields {
            field
                .shape
                .structs(&mut |p, n| todo.push((p.to_owned(), n.to_owned())));
        }
        types.insert(key, (atomic, fields));
    }

    let prefixes: BTreeSet<String> = types.keys().map(|(p, _)| p.clone()).collect();
    let package_index: BTreeMap<&String, usize> =
        prefixes.iter().enumerate().map(|(i, p)| (p, i)).collect();
    let type_index: BTreeMap<&(String, String), usize> =
        types.keys().enumerate().map(|(i, k)| (k, i)).collect();

    let mut out = String::new();
    writeln!(
        out,
        "// @generated by `cargo run -p rkube-api --example gen-type-table -- <go-api-dir>...`\n\
         // from upstream's Go API types; see pkg/api/examples/gen-type-table.rs. Do not edit.\n\n\
         use super::ListType as L;\n\
         use super::MapType as M;\n\
         use super::Scalar as S;\n\
         use super::Shape::{{Any, List, Map, Scalar, Struct}};\n\
         use super::TypeRef as R;\n\
         use super::{{Package, TypeDef, f, t}};\n\n\
         /// The Go packages of [`TYPES`], sorted by definition name prefix.\n\
         #[rustfmt::skip]\n\
         pub(super) static PACKAGES: [Package; {}] = [",
        prefixes.len()
    )?;
    for prefix in &prefixes {
        let group_version = served
            .iter()
            .find(|(path, _)| definition_prefix(path) == *prefix)
            .map_or("None".to_owned(), |(_, gv)| format!("Some({gv:?})"));
        writeln!(
            out,
            "    Package {{ prefix: {prefix:?}, group_version: {group_version} }},"
        )?;
    }
    writeln!(
        out,
        "];\n\n\
         /// Every struct type, sorted by definition name.\n\
         #[rustfmt::skip]\n\
         pub(super) static TYPES: [TypeDef; {}] = [",
        types.len()
    )?;
    for ((prefix, name), (atomic, fields)) in &types {
        writeln!(out, "t({}, {name:?}, {atomic}, &[", package_index[prefix])?;
        for field in fields {
            let mut refs = Vec::new();
            let shape = field.shape.render(&mut |p, n| {
                let key = (definition_prefix(p), n.to_owned());
                refs.push(n.to_owned());
                type_index[&key]
            });
            write!(out, "    f({:?}, {shape})", field.json)?;
            let m = &field.markers;
            if let Some(list_type) = &m.list_type {
                write!(out, ".list(L::{}, &{:?})", camel(list_type), m.map_keys)?;
            }
            if field.patch_strategy.is_some() || field.merge_key.is_some() {
                write!(
                    out,
                    ".patch({:?}, {:?})",
                    field.patch_strategy, field.merge_key
                )?;
            }
            if let Some(map_type) = &m.map_type {
                write!(out, ".mapped(M::{})", camel(map_type))?;
            }
            if field.pointer {
                write!(out, ".ptr()")?;
            }
            if !field.omitempty {
                write!(out, ".no_omitempty()")?;
            }
            if let Some(default) = &field.default {
                write!(out, ".default({default:?})")?;
            }
            write!(out, ",")?;
            if !refs.is_empty() {
                write!(out, " // {}", refs.join(", "))?;
            }
            writeln!(out)?;
        }
        writeln!(out, "]),")?;
    }
    writeln!(out, "];")?;
    eprintln!(
        "{} packages, {} types, {} warnings",
        prefixes.len(),
        types.len(),
        resolver.warnings
    );
    print!("{out}");
    Ok(())
}

impl Shape {
    /// Calls `visit` with every struct type the shape references.
    fn structs(&self, visit: &mut impl FnMut(&str, &str)) {
        match self {
            Shape::Struct(path, name) => visit(path, name),
            Shape::List(elem) | Shape::Map(elem) => elem.structs(visit),
            Shape::Scalar(_) | Shape::Any => {}
        }
    }

    /// The Rust expression, with `index` giving each struct type's table index.
    fn render(&self, index: &mut impl FnMut(&str, &str) -> usize) -> String {
        match self {
            Shape::Scalar(s) => format!("Scalar(S::{s})"),
            Shape::Any => "Any".to_owned(),
            Shape::Struct(path, name) => format!("Struct(R({}))", index(path, name)),
            Shape::List(elem) => format!("List(&{})", elem.render(index)),
            Shape::Map(elem) => format!("Map(&{})", elem.render(index)),
        }
    }
}

impl<'a> Resolver<'a> {
    fn decl(&self, path: &str, name: &str) -> Result<&'a TypeDecl, Error> {
        self.packages
            .get(path)
            .and_then(|p| p.find(name))
            .ok_or_else(|| format!("type {path}.{name} is referenced but not found").into())
    }

    /// The JSON fields of a struct, embedded structs flattened.
    fn fields(&mut self, path: &str, decl: &TypeDecl) -> Result<Vec<Field>, Error> {
        let mut out = Vec::new();
        for field in &decl.fields {
            let Some((json, options)) = field.json() else {
                if !field.decl.starts_with(char::is_lowercase) {
                    self.warn(format!(
                        "{path}.{}: `{}` has no json tag",
                        decl.name, field.decl
                    ));
                }
                continue;
            };
            if json == "-" {
                continue;
            }
            let ty = field
                .ty
                .as_ref()
                .ok_or_else(|| format!("{path}.{}: cannot read `{}`", decl.name, field.decl))?;
            if json.is_empty() && field.is_embedded() {
                let (embedded_path, embedded_name) = match strip_pointer(ty) {
                    GoType::Named(p, n) => (p, n),
                    other => return Err(format!("embedded {other:?} is not a named type").into()),
                };
                let embedded = self.decl(embedded_path, embedded_name)?;
                out.extend(self.fields(embedded_path, embedded)?);
                continue;
            }
            let (shape, type_markers) = self.shape(ty)?;
            let tag = |key| {
                field
                    .tag_value(key)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            };
            let omitempty = options.split(',').any(|o| o == "omitempty");
            let default = self.default(path, decl, field)?;
            let json = json.to_owned();
            if out.iter().any(|f: &Field| f.json == json) {
                self.warn(format!("{path}.{}: duplicate JSON name {json}", decl.name));
            }
            out.push(Field {
                json,
                shape,
                markers: Markers::read(&field.comments).or(type_markers),
                patch_strategy: tag("patchStrategy"),
                merge_key: tag("patchMergeKey"),
                pointer: matches!(ty, GoType::Pointer(_)),
                omitempty,
                default,
            });
        }
        Ok(out)
    }

    /// A field's `+default=` marker as compact JSON: a JSON literal, or `ref(Name)` naming a
    /// constant of the field's package (as openapi-gen reads it).
    fn default(
        &mut self,
        path: &str,
        decl: &TypeDecl,
        field: &go::FieldDecl,
    ) -> Result<Option<String>, Error> {
        let Some(marker) = go::markers(&field.comments)
            .filter(|(name, _)| *name == "default")
            .map(|(_, value)| value)
            .last()
        else {
            return Ok(None);
        };
        let literal = match marker
            .strip_prefix("ref(")
            .and_then(|r| r.strip_suffix(')'))
        {
            Some(name) => match self.packages.get(path).and_then(|p| p.consts.get(name)) {
                Some(value) => value.as_str(),
                None => {
                    self.warn(format!(
                        "{path}.{}: default {marker} names no constant",
                        decl.name
                    ));
                    return Ok(None);
                }
            },
            None => marker,
        };
        let value: serde_json::Value = serde_json::from_str(literal)
            .map_err(|e| format!("{path}.{}: default {marker} is not JSON: {e}", decl.name))?;
        Ok(Some(value.to_string()))
    }

    /// The shape of a Go type, and the markers of the named non-struct type it went through.
    fn shape(&mut self, ty: &GoType) -> Result<(Shape, Markers), Error> {
        Ok(match ty {
            GoType::Pointer(inner) => self.shape(inner)?,
            GoType::Builtin(b) => (builtin(b), Markers::default()),
            GoType::Slice(elem) if **elem == GoType::Builtin("byte".into()) => {
                (Shape::Scalar("Bytes"), Markers::default())
            }
            GoType::Slice(elem) => (
                Shape::List(Box::new(self.shape(elem)?.0)),
                Markers::default(),
            ),
            GoType::Map(_, value) => (
                Shape::Map(Box::new(self.shape(value)?.0)),
                Markers::default(),
            ),
            GoType::Named(path, name) => {
                if let Some(shape) = special(path, name) {
                    return Ok((shape, Markers::default()));
                }
                let decl = self.decl(path, name)?;
                if is_struct(decl) {
                    return Ok((
                        Shape::Struct(path.clone(), name.clone()),
                        Markers::default(),
                    ));
                }
                let markers = Markers::read(&decl.comments);
                match &decl.underlying {
                    Some(underlying) => (self.shape(underlying)?.0, markers),
                    None => {
                        self.warn(format!("{path}.{name} (`{}`) taken as any JSON", decl.raw));
                        (Shape::Any, markers)
                    }
                }
            }
            GoType::Other(text) if text == "interface{}" || text == "any" => {
                (Shape::Any, Markers::default())
            }
            GoType::Other(text) => {
                self.warn(format!("`{text}` taken as any JSON"));
                (Shape::Any, Markers::default())
            }
        })
    }

    fn warn(&mut self, message: String) {
        eprintln!("warning: {message}");
        self.warnings += 1;
    }
}

fn is_struct(decl: &TypeDecl) -> bool {
    decl.raw.starts_with("struct")
}

fn strip_pointer(ty: &GoType) -> &GoType {
    match ty {
        GoType::Pointer(inner) => strip_pointer(inner),
        other => other,
    }
}

fn builtin(name: &str) -> Shape {
    Shape::Scalar(match name {
        "string" => "String",
        "bool" => "Boolean",
        "float32" | "float64" => "Number",
        _ => "Integer",
    })
}

/// apimachinery's types with hand-written JSON.
fn special(path: &str, name: &str) -> Option<Shape> {
    const APIEXT: &str = "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1";
    Some(match (path, name) {
        ("k8s.io/apimachinery/pkg/util/intstr", "IntOrString") => Shape::Scalar("IntOrString"),
        ("k8s.io/apimachinery/pkg/api/resource", "Quantity") => Shape::Scalar("Quantity"),
        (META_V1, "Time") => Shape::Scalar("Time"),
        (META_V1, "MicroTime") => Shape::Scalar("MicroTime"),
        (META_V1, "Duration") => Shape::Scalar("Duration"),
        ("k8s.io/apimachinery/pkg/runtime", "RawExtension")
        | (META_V1, "FieldsV1")
        | (APIEXT, "JSON" | "JSONSchemaPropsOrArray" | "JSONSchemaPropsOrBool")
        | (APIEXT, "JSONSchemaPropsOrStringArray") => Shape::Any,
        _ => return None,
    })
}

/// `k8s.io/api/core/v1` -> `io.k8s.api.core.v1`, as OpenAPI definitions are named.
fn definition_prefix(import_path: &str) -> String {
    let (domain, rest) = import_path.split_once('/').unwrap_or((import_path, ""));
    let reversed: Vec<&str> = domain.split('.').rev().collect();
    format!("{}.{}", reversed.join("."), rest.replace('/', "."))
}

fn camel(marker: &str) -> String {
    let mut chars = marker.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}
