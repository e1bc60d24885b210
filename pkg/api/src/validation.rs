//! Name, label and annotation validation with apimachinery's exact messages.
//!
//! The `is_*` functions mirror `k8s.io/apimachinery/pkg/util/validation`: they return the list
//! of problems as plain strings (empty when valid), which callers wrap in [`FieldError`]s at the
//! right path. The `validate_*` functions do that wrapping the way `ObjectMeta` validation does
//! upstream (`metadata.name`, `metadata.labels`, `metadata.annotations`).
//!
//! The regular expressions are checked by hand (no regex engine at runtime); the messages still
//! quote upstream's regex text, since that is what clients show.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use crate::field::{FieldError, Path};

/// Longest DNS-1123 label (RFC 1123), also the limit for namespace names.
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Longest DNS-1123 subdomain, the limit for most object names.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Longest DNS-1035 label (service names).
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
/// Longest name part of a qualified name (label and annotation keys).
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// Longest label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Total size limit of an object's annotations, keys plus values, in bytes (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
/// Random characters appended to `metadata.generateName`.
pub const GENERATED_SUFFIX_LENGTH: usize = 5;
/// Longest `generateName` base kept before the random suffix: upstream's name generator
/// truncates to 63 - 5 for every resource, so generated names always fit a DNS label.
pub const MAX_GENERATED_NAME_LENGTH: usize = 63 - GENERATED_SUFFIX_LENGTH;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// Upstream's `MaxLenError`.
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// Upstream's `EmptyError`.
pub fn empty_error() -> &'static str {
    "must be non-empty"
}

/// Upstream's `RegexError`: the message, the examples and the regex, punctuated exactly as Go
/// builds it (including the doubled space before each ` or `).
pub fn regex_error(msg: &str, regex: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{regex}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push('\'');
        s.push_str(ex);
        s.push_str("', ");
    }
    s.push_str("regex used for validation is '");
    s.push_str(regex);
    s.push_str("')");
    s
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_lower_alnum(f)
                && is_lower_alnum(l)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// `^[a-z]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns1035_label(s: &str) -> bool {
    matches_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
fn matches_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Problems with `value` as a DNS-1123 label (63 lowercase alphanumerics or `-`).
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            // A valid subdomain that is not a valid label can only be failing on its dots.
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Problems with `value` as a DNS-1123 subdomain (253 characters, dot-separated labels).
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Problems with `value` as a DNS-1035 label (starts with a letter).
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Problems with `value` as a qualified name: a label or annotation key, `[prefix/]name` where
/// the prefix is a DNS-1123 subdomain and the name at most 63 characters.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let mut parts = value.split('/');
    let first = parts.next().unwrap_or_default();
    let (prefix, name) = match (parts.next(), parts.next()) {
        (None, _) => (None, first),
        (Some(name), None) => (Some(first), name),
        (Some(_), Some(_)) => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            errs.push(format!("prefix part {}", empty_error()));
        } else {
            errs.extend(
                is_dns1123_subdomain(prefix)
                    .into_iter()
                    .map(|m| format!("prefix part {m}")),
            );
        }
    }
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Problems with `value` as a label value (empty, or a qualified name part of at most 63).
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !matches_qualified_name(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Problems with `name` as a URL path segment: every object name must pass this (upstream
/// `path.IsValidPathSegmentName`), whatever its kind's own name rule.
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|bad| name.contains(**bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

/// A kind's rule for object names: `(name, is_generate_name_prefix) -> problems`.
pub type NameValidator = fn(&str, bool) -> Vec<String>;

/// Upstream `maskTrailingDash`: a generateName prefix may end in `-` since random characters
/// follow; the check replaces the last two characters by `a`, as upstream does.
fn mask_trailing_dash(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() > 1 && name.ends_with('-') {
        // The suffix is ASCII '-', and the byte before it may start a multi-byte char; cut on
        // a char boundary at or before len-2 so that non-ASCII input cannot panic.
        let mut cut = name.len() - 2;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        std::borrow::Cow::Owned(format!("{}a", &name[..cut]))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// Names that must be DNS-1123 subdomains (most kinds).
pub fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_subdomain(&mask_trailing_dash(name))
    } else {
        is_dns1123_subdomain(name)
    }
}

/// Names that must be DNS-1123 labels (namespaces, ...).
pub fn name_is_dns_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_label(&mask_trailing_dash(name))
    } else {
        is_dns1123_label(name)
    }
}

/// Names that must be DNS-1035 labels (services).
pub fn name_is_dns1035_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1035_label(&mask_trailing_dash(name))
    } else {
        is_dns1035_label(name)
    }
}

/// Validates `metadata.name` and `metadata.generateName` as upstream's `ValidateObjectMeta`
/// does: generateName checked as a prefix, then name required (`name or generateName is
/// required`) or checked with `name_fn`. The create path runs this after generating a name.
pub fn validate_object_name(
    name: &str,
    generate_name: &str,
    name_fn: NameValidator,
    metadata: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !generate_name.is_empty() {
        let path = metadata.child("generateName");
        errs.extend(
            name_fn(generate_name, true)
                .into_iter()
                .map(|m| FieldError::invalid(&path, generate_name, m)),
        );
    }
    let path = metadata.child("name");
    if name.is_empty() {
        errs.push(FieldError::required(
            &path,
            "name or generateName is required",
        ));
    } else {
        errs.extend(
            name_fn(name, false)
                .into_iter()
                .map(|m| FieldError::invalid(&path, name, m)),
        );
    }
    errs
}

/// Validates label keys (qualified names) and values; errors are reported at `path` itself
/// (`metadata.labels`), with the key or value as the bad value, as upstream does.
pub fn validate_labels<'a, I>(labels: I, path: &Path) -> Vec<FieldError>
where
    I: IntoIterator<Item = (&'a String, &'a String)>,
{
    let mut errs = Vec::new();
    for (k, v) in labels {
        errs.extend(
            is_qualified_name(k)
                .into_iter()
                .map(|m| FieldError::invalid(path, k, m)),
        );
        errs.extend(
            is_valid_label_value(v)
                .into_iter()
                .map(|m| FieldError::invalid(path, v, m)),
        );
    }
    errs
}

/// Validates annotation keys (qualified names, case-insensitive) and the 256 KiB total size
/// (`Too long: may not be more than 262144 bytes`).
pub fn validate_annotations<'a, I>(annotations: I, path: &Path) -> Vec<FieldError>
where
    I: IntoIterator<Item = (&'a String, &'a String)>,
{
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        total = total.saturating_add(k.len()).saturating_add(v.len());
        errs.extend(
            is_qualified_name(&k.to_ascii_lowercase())
                .into_iter()
                .map(|m| FieldError::invalid(path, k, m)),
        );
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(
            path,
            TOTAL_ANNOTATION_SIZE_LIMIT as i64,
        ));
    }
    errs
}

/// The alphabet of upstream's `utilrand.String`: no vowels (no accidental words), no
/// look-alike characters.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A name for `metadata.generateName`: the base truncated to [`MAX_GENERATED_NAME_LENGTH`]
/// bytes, then five random characters, as upstream's `SimpleNameGenerator`.
pub fn generate_name(base: &str) -> String {
    generate_name_from(base, random_u64())
}

/// [`generate_name`] with the randomness supplied, for deterministic callers and tests.
pub fn generate_name_from(base: &str, mut random: u64) -> String {
    let mut cut = base.len().min(MAX_GENERATED_NAME_LENGTH);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut name = String::with_capacity(cut + GENERATED_SUFFIX_LENGTH);
    name.push_str(&base[..cut]);
    let n = NAME_ALPHABET.len() as u64;
    for _ in 0..GENERATED_SUFFIX_LENGTH {
        name.push(char::from(NAME_ALPHABET[(random % n) as usize]));
        random /= n;
    }
    name
}

/// A per-call random number without a random-number crate: std's `RandomState` is seeded from
/// the OS once per thread and its keys advance on every construction; a thread-local counter
/// keeps successive calls distinct. Names need uniqueness, not cryptographic strength
/// (collisions are retried by the create path, as upstream).
fn random_u64() -> u64 {
    thread_local! {
        static COUNTER: Cell<u64> = const { Cell::new(0) };
    }
    let n = COUNTER.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n
    });
    let mut h = RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    #[test]
    fn dns1123_label() {
        assert!(is_dns1123_label("my-name").is_empty());
        assert!(is_dns1123_label("a").is_empty());
        assert!(is_dns1123_label(&"a".repeat(63)).is_empty());
        assert_eq!(
            is_dns1123_label("a.b"),
            vec!["must not contain dots".to_owned()]
        );
        assert_eq!(
            is_dns1123_label("My-Name"),
            vec![
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_owned()
            ]
        );
        let long = is_dns1123_label(&"a".repeat(64));
        assert_eq!(long, vec!["must be no more than 63 characters".to_owned()]);
        assert_eq!(is_dns1123_label("").len(), 1);
        assert_eq!(is_dns1123_label("-a").len(), 1);
    }

    #[test]
    fn dns1123_subdomain() {
        assert!(is_dns1123_subdomain("example.com").is_empty());
        assert!(is_dns1123_subdomain("kube-system").is_empty());
        assert_eq!(
            is_dns1123_subdomain("Foo"),
            vec![
                r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_owned()
            ]
        );
        assert_eq!(is_dns1123_subdomain("a..b").len(), 1);
        assert_eq!(is_dns1123_subdomain("a.").len(), 1);
        let long = "a".repeat(254);
        assert_eq!(
            is_dns1123_subdomain(&long),
            vec!["must be no more than 253 characters".to_owned()]
        );
    }

    #[test]
    fn dns1035_label() {
        assert!(is_dns1035_label("my-svc").is_empty());
        assert_eq!(
            is_dns1035_label("1abc"),
            vec![
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_owned()
            ]
        );
    }

    #[test]
    fn qualified_names() {
        for ok in [
            "app",
            "App_1.x",
            "example.com/MyName",
            "kubernetes.io/metadata.name",
        ] {
            assert!(is_qualified_name(ok).is_empty(), "{ok}");
        }
        assert_eq!(
            is_qualified_name("/a"),
            vec!["prefix part must be non-empty".to_owned()]
        );
        assert_eq!(
            is_qualified_name("a/"),
            vec![
                "name part must be non-empty".to_owned(),
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_owned()
            ]
        );
        assert_eq!(
            is_qualified_name("a/b/c"),
            vec![
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_owned()
            ]
        );
        let errs = is_qualified_name("Bad_Prefix/x");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("prefix part a lowercase RFC 1123 subdomain"));
        assert_eq!(
            is_qualified_name(&"a".repeat(64)),
            vec!["name part must be no more than 63 characters".to_owned()]
        );
    }

    #[test]
    fn label_values() {
        assert!(is_valid_label_value("").is_empty());
        assert!(is_valid_label_value("v1.2_3-x").is_empty());
        assert_eq!(
            is_valid_label_value("-x"),
            vec![
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_owned()
            ]
        );
        assert_eq!(is_valid_label_value(&"a".repeat(64)).len(), 1);
    }

    #[test]
    fn path_segment_names() {
        assert_eq!(is_valid_path_segment_name(".."), vec!["may not be '..'"]);
        assert_eq!(
            is_valid_path_segment_name("a/b%c"),
            vec!["may not contain '/'", "may not contain '%'"]
        );
        assert!(is_valid_path_segment_name("a.b").is_empty());
    }

    #[test]
    fn object_names_and_generate_name() {
        let meta = Path::new("metadata");
        let errs = validate_object_name("", "", name_is_dns_subdomain, &meta);
        assert_eq!(
            errs[0].to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
        // A generateName prefix may end in '-'.
        assert!(validate_object_name("web-x2b4z", "web-", name_is_dns_subdomain, &meta).is_empty());
        let errs = validate_object_name("Bad", "", name_is_dns_label, &meta);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .to_string()
                .starts_with(r#"metadata.name: Invalid value: "Bad": a lowercase RFC 1123 label"#)
        );
        let errs = validate_object_name("x", "Bad-", name_is_dns_subdomain, &meta);
        assert!(
            errs[0]
                .to_string()
                .starts_with(r#"metadata.generateName: Invalid value: "Bad-""#)
        );
    }

    #[test]
    fn generated_names_follow_upstream_shape() {
        let name = generate_name_from("web-", 0);
        assert_eq!(name, "web-bbbbb");
        let long = "x".repeat(300);
        let name = generate_name(&long);
        assert_eq!(name.len(), 63);
        assert!(name.starts_with(&"x".repeat(58)));
        assert!(name[58..].bytes().all(|b| NAME_ALPHABET.contains(&b)));
        let names: HashSet<String> = (0..200).map(|_| generate_name("a-")).collect();
        assert!(names.len() > 190, "random suffixes collide too often");
        // Truncation never splits a multi-byte character.
        assert!(generate_name(&"é".repeat(40)).len() <= 63);
    }

    #[test]
    fn labels_and_annotations() {
        let path = Path::new("metadata").child("labels");
        let mut labels = BTreeMap::new();
        labels.insert("app".to_owned(), "web".to_owned());
        assert!(validate_labels(&labels, &path).is_empty());
        labels.insert("bad key".to_owned(), "-v".to_owned());
        let errs = validate_labels(&labels, &path);
        assert_eq!(errs.len(), 2);
        assert!(
            errs[0].to_string().starts_with(
                r#"metadata.labels: Invalid value: "bad key": name part must consist"#
            )
        );
        assert!(
            errs[1]
                .to_string()
                .starts_with(r#"metadata.labels: Invalid value: "-v": a valid label"#)
        );

        let path = Path::new("metadata").child("annotations");
        let mut ann = BTreeMap::new();
        ann.insert("Example.COM/Key".to_owned(), "x".to_owned());
        assert!(validate_annotations(&ann, &path).is_empty());
        ann.insert("big".to_owned(), "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT));
        let errs = validate_annotations(&ann, &path);
        assert_eq!(
            errs[0].to_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
    }
}
