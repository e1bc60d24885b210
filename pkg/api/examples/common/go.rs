//! Reading upstream's Go API types, shared by the generators in this directory
//! (`gen-proto-schema`, `gen-type-table`): each package's type declarations, struct fields with
//! their tags, and the `// +marker` comments above them.
//!
//! This is a line reader for the regular layout of `k8s.io/api`-style sources, not a Go parser:
//! a declaration starts at column 0 (`type Name struct {` ... `}` at column 0), one field per
//! line, tags between backticks. Files that are tests, generated (`zz_`, `.pb.`) or not Go are
//! skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One Go package (a directory with `.go` files).
#[derive(Debug)]
pub struct Package {
    /// Import path (`k8s.io/api/core/v1`).
    pub import_path: String,
    /// The `package` of its `generated.proto`, if it has one (`k8s.io.api.core.v1`).
    pub proto_package: Option<String>,
    /// Type declarations in file order (files sorted by path).
    pub types: Vec<TypeDecl>,
    /// Constants with a literal value: name -> the literal as written (`"ReadWrite"`, `3`).
    pub consts: BTreeMap<String, String>,
}

/// `type Name ...` at the top level of a file.
#[derive(Debug)]
pub struct TypeDecl {
    /// The Go name.
    pub name: String,
    /// The comment lines above the declaration, without `//`, trimmed.
    pub comments: Vec<String>,
    /// What follows the name on the declaration line (`struct {`, `[]string`, `= Foo`).
    pub raw: String,
    /// The struct's fields (empty for non-structs).
    pub fields: Vec<FieldDecl>,
    /// For a non-struct, the underlying type; `None` for structs and what cannot be read.
    pub underlying: Option<GoType>,
}

/// One line of a struct body that declares a tagged field.
#[derive(Debug)]
pub struct FieldDecl {
    /// The text before the tag: `Name Type` or, for an embedded struct, `Type`.
    pub decl: String,
    /// The tag between the backticks.
    pub tag: String,
    /// The comment lines above the field, without `//`, trimmed.
    pub comments: Vec<String>,
    /// The field's type with package aliases resolved.
    pub ty: Option<GoType>,
}

/// A Go type expression with package aliases resolved to import paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoType {
    /// A predeclared type (`string`, `int32`, `bool`, `byte`...).
    Builtin(String),
    /// A named type: (import path, name).
    Named(String, String),
    /// `*T`.
    Pointer(Box<GoType>),
    /// `[]T`.
    Slice(Box<GoType>),
    /// `map[K]V`.
    Map(Box<GoType>, Box<GoType>),
    /// Anything else (`interface{}`, function types).
    Other(String),
}

impl FieldDecl {
    /// The value of `key:"..."` in the tag.
    pub fn tag_value(&self, key: &str) -> Option<&str> {
        self.tag
            .split(&format!("{key}:\""))
            .nth(1)?
            .split('"')
            .next()
    }

    /// The JSON name and the options after it (`("replicas", "omitempty")`).
    pub fn json(&self) -> Option<(&str, &str)> {
        let json = self.tag_value("json")?;
        Some(json.split_once(',').unwrap_or((json, "")))
    }

    /// The last word of the declaration: the type as written.
    pub fn go_type_text(&self) -> &str {
        self.decl.split_whitespace().last().unwrap_or("")
    }

    /// Whether the declaration names only a type (an embedded struct).
    pub fn is_embedded(&self) -> bool {
        self.decl.split_whitespace().count() == 1
    }
}

impl Package {
    /// The declaration named `name`.
    pub fn find(&self, name: &str) -> Option<&TypeDecl> {
        self.types.iter().find(|t| t.name == name)
    }
}

/// The markers (`+listType=map`) among comment lines: (name, value) in order.
pub fn markers(comments: &[String]) -> impl Iterator<Item = (&str, &str)> {
    comments.iter().filter_map(|c| {
        let marker = c.strip_prefix('+')?;
        Some(marker.split_once('=').unwrap_or((marker, "")))
    })
}

/// Reads every package under each of `roots` (checkouts of Go modules), keyed by import path.
pub fn read_modules(
    roots: &[PathBuf],
) -> Result<BTreeMap<String, Package>, Box<dyn std::error::Error>> {
    let mut out = BTreeMap::new();
    for root in roots {
        let module = std::fs::read_to_string(root.join("go.mod"))?
            .lines()
            .find_map(|l| l.strip_prefix("module "))
            .map(|m| m.trim().to_owned())
            .ok_or_else(|| format!("{}: go.mod has no module line", root.display()))?;
        read_dir(root, &module, &mut out)?;
    }
    Ok(out)
}

fn read_dir(
    dir: &Path,
    import_path: &str,
    out: &mut BTreeMap<String, Package>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    let proto = dir.join("generated.proto");
    let proto_package = if proto.exists() {
        std::fs::read_to_string(&proto)?
            .lines()
            .find_map(|l| l.strip_prefix("package "))
            .map(|p| p.trim_end_matches(';').to_owned())
    } else {
        None
    };
    let mut types = Vec::new();
    let mut consts = BTreeMap::new();
    for entry in entries {
        let path = entry.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            read_dir(&path, &format!("{import_path}/{name}"), out)?;
            continue;
        }
        if !name.ends_with(".go")
            || name.ends_with("_test.go")
            || name.starts_with("zz_")
            || name.contains(".pb.")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        read_file(&text, import_path, &mut types);
        read_consts(&text, &mut consts);
    }
    if !types.is_empty() {
        out.insert(
            import_path.to_owned(),
            Package {
                import_path: import_path.to_owned(),
                proto_package,
                types,
                consts,
            },
        );
    }
    Ok(())
}

/// The declarations of one file.
fn read_file(text: &str, package: &str, types: &mut Vec<TypeDecl>) {
    let imports = imports(text);
    let mut comments: Vec<String> = Vec::new();
    let mut in_struct = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(comment) = trimmed.strip_prefix("//") {
            comments.push(comment.trim().to_owned());
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        let attached = std::mem::take(&mut comments);
        if let Some(rest) = line.strip_prefix("type ") {
            let (name, raw) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let raw = raw.trim().to_owned();
            in_struct = raw == "struct {";
            let underlying = (!raw.starts_with("struct") && !raw.starts_with("interface"))
                .then(|| parse_type(raw.trim_start_matches("= "), package, &imports))
                .flatten();
            types.push(TypeDecl {
                name: name.to_owned(),
                comments: attached,
                raw,
                fields: Vec::new(),
                underlying,
            });
        } else if line.starts_with('}') {
            in_struct = false;
        } else if in_struct && let Some((decl, rest)) = trimmed.split_once('`') {
            let tag = rest.split('`').next().unwrap_or("").to_owned();
            let decl = decl.trim().to_owned();
            let ty = decl
                .split_whitespace()
                .last()
                .and_then(|t| parse_type(t, package, &imports));
            if let Some(current) = types.last_mut() {
                current.fields.push(FieldDecl {
                    decl,
                    tag,
                    comments: attached,
                    ty,
                });
            }
        }
    }
}

/// The constants of one file whose value is a single literal (`Name Type = "x"`, in a
/// `const (` block or on a `const` line).
fn read_consts(text: &str, consts: &mut BTreeMap<String, String>) {
    let mut in_block = false;
    for line in text.lines() {
        let spec = if in_block {
            if line.starts_with(')') {
                in_block = false;
                continue;
            }
            line.trim()
        } else if line == "const (" {
            in_block = true;
            continue;
        } else if let Some(single) = line.strip_prefix("const ") {
            single
        } else {
            continue;
        };
        let Some((names, value)) = spec.split_once('=') else {
            continue;
        };
        let value = value.split("//").next().unwrap_or("").trim();
        let literal = (value.starts_with('"') && value.ends_with('"') && value.len() >= 2)
            || value.parse::<f64>().is_ok()
            || value == "true"
            || value == "false";
        if let Some(name) = names.split_whitespace().next().filter(|_| literal) {
            consts.insert(name.to_owned(), value.to_owned());
        }
    }
}

/// Import aliases of a file: alias (or last path element) -> import path.
fn imports(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut in_block = false;
    for line in text.lines() {
        let line = line.trim();
        let spec = if in_block {
            if line.starts_with(')') {
                break;
            }
            line
        } else if line == "import (" {
            in_block = true;
            continue;
        } else if let Some(single) = line.strip_prefix("import ") {
            single
        } else {
            continue;
        };
        let (alias, path) = match spec.split_once('"') {
            Some((alias, path)) => (alias.trim(), path.trim_end_matches('"')),
            None => continue,
        };
        let alias = if alias.is_empty() {
            path.rsplit('/').next().unwrap_or(path)
        } else {
            alias
        };
        out.insert(alias.to_owned(), path.to_owned());
    }
    out
}

const BUILTINS: &[&str] = &[
    "string", "bool", "byte", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16",
    "uint32", "uint64", "float32", "float64",
];

/// Parses a type expression written in `package` with its file's `imports`.
fn parse_type(text: &str, package: &str, imports: &BTreeMap<String, String>) -> Option<GoType> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('*') {
        return Some(GoType::Pointer(Box::new(parse_type(
            rest, package, imports,
        )?)));
    }
    if let Some(rest) = text.strip_prefix("[]") {
        return Some(GoType::Slice(Box::new(parse_type(rest, package, imports)?)));
    }
    if let Some(rest) = text.strip_prefix("map[") {
        let close = rest.find(']')?;
        let key = parse_type(&rest[..close], package, imports)?;
        let value = parse_type(&rest[close + 1..], package, imports)?;
        return Some(GoType::Map(Box::new(key), Box::new(value)));
    }
    if text.is_empty()
        || !text
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
    {
        return Some(GoType::Other(text.to_owned()));
    }
    Some(match text.split_once('.') {
        Some((alias, name)) => GoType::Named(imports.get(alias)?.clone(), name.to_owned()),
        None if BUILTINS.contains(&text) => GoType::Builtin(text.to_owned()),
        None => GoType::Named(package.to_owned(), text.to_owned()),
    })
}
