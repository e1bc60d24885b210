//! admissionregistration.k8s.io: Mutating- and ValidatingWebhookConfigurations,
//! ValidatingAdmissionPolicies and their bindings, defaulted as upstream's
//! `pkg/apis/admissionregistration/v1/defaults.go` and validated as
//! `pkg/apis/admissionregistration/validation`, with the generation rules of
//! `pkg/registry/admissionregistration/*/strategy.go`.
//!
//! CEL expressions (matchConditions, validations, messageExpressions, audit annotation values,
//! variables) are parsed, and a syntax error is reported as upstream's `compilation failed:`
//! message. They are not type-checked against the matched resources' schemas, so an
//! expression that parses but names an unknown field or returns the wrong type is accepted
//! here (upstream rejects it) and fails when evaluated.

use std::collections::HashSet;

use rkube_api::field::{FieldError, Path};
use rkube_api::k8s_openapi::ByteString;
use rkube_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector as MetaSelector, Time,
};
use rkube_api::selector::validate_label_selector;
use rkube_api::validation::{
    is_dns1035_label, is_dns1123_subdomain, is_qualified_name, is_valid_path_segment_name,
    name_is_dns_subdomain, regex_error,
};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::common::{child_map, decode, default_field, each_map, range_error};
use crate::Strategy;

/// `failurePolicy` values (upstream lists sets sorted).
const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
/// `matchPolicy` values.
const MATCH_POLICIES: &[&str] = &["Equivalent", "Exact"];
/// `sideEffects` values a new webhook may have.
const NO_SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
/// `sideEffects` values a webhook stored before v1 may keep.
const SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun", "Some", "Unknown"];
/// `operations` values.
const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
/// `reinvocationPolicy` values.
const REINVOCATION_POLICIES: &[&str] = &["IfNeeded", "Never"];
/// `scope` values.
const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
/// A validation's `reason` values.
const REASONS: &[&str] = &["Forbidden", "Invalid", "RequestEntityTooLarge"];
/// A binding's `validationActions` values.
const VALIDATION_ACTIONS: &[&str] = &["Audit", "Deny", "Warn"];
/// The AdmissionReview versions the server speaks.
const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];
/// Upstream's cap on matchConditions per webhook or policy.
const MAX_MATCH_CONDITIONS: usize = 64;
/// Upstream's cap on a policy's auditAnnotations.
const MAX_AUDIT_ANNOTATIONS: usize = 20;
/// Upstream's cap on an audit annotation's valueExpression, in bytes.
const MAX_AUDIT_VALUE_EXPRESSION: usize = 5 * 1024;
/// Words CEL reserves, which cannot name a variable.
const CEL_RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// A field Go reads as its zero value when absent or null.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize, Default)]
struct WebhookConfiguration {
    #[serde(default, deserialize_with = "null_default")]
    webhooks: Vec<Webhook>,
}

/// A MutatingWebhook or ValidatingWebhook (`reinvocationPolicy` is checked on mutating ones).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Webhook {
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    #[serde(default, deserialize_with = "null_default")]
    client_config: ClientConfig,
    #[serde(default, deserialize_with = "null_default")]
    rules: Vec<Rule>,
    failure_policy: Option<String>,
    match_policy: Option<String>,
    namespace_selector: Option<MetaSelector>,
    object_selector: Option<MetaSelector>,
    side_effects: Option<String>,
    timeout_seconds: Option<i32>,
    #[serde(default, deserialize_with = "null_default")]
    admission_review_versions: Vec<String>,
    reinvocation_policy: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    match_conditions: Vec<MatchCondition>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ClientConfig {
    url: Option<String>,
    service: Option<ServiceReference>,
    // Decoded only so that a caBundle that is not base64 is reported.
    #[serde(rename = "caBundle")]
    _ca_bundle: Option<ByteString>,
}

#[derive(Deserialize, Default)]
struct ServiceReference {
    #[serde(default, deserialize_with = "null_default")]
    namespace: String,
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    path: Option<String>,
    port: Option<i32>,
}

/// A RuleWithOperations, or a NamedRuleWithOperations (with `resourceNames`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default, deserialize_with = "null_default")]
    operations: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    api_groups: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    api_versions: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    resources: Vec<String>,
    scope: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    resource_names: Vec<String>,
}

#[derive(Deserialize, Default, PartialEq)]
struct MatchCondition {
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    #[serde(default, deserialize_with = "null_default")]
    expression: String,
}

#[derive(Deserialize, Default)]
struct Policy {
    #[serde(default, deserialize_with = "null_default")]
    metadata: PolicyMeta,
    #[serde(default, deserialize_with = "null_default")]
    spec: PolicySpec,
}

#[derive(Deserialize, Default)]
struct PolicyMeta {
    #[serde(default, deserialize_with = "null_default")]
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PolicySpec {
    param_kind: Option<ParamKind>,
    match_constraints: Option<MatchResources>,
    #[serde(default, deserialize_with = "null_default")]
    validations: Vec<Validation>,
    failure_policy: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    audit_annotations: Vec<AuditAnnotation>,
    #[serde(default, deserialize_with = "null_default")]
    match_conditions: Vec<MatchCondition>,
    #[serde(default, deserialize_with = "null_default")]
    variables: Vec<Variable>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ParamKind {
    #[serde(default, deserialize_with = "null_default")]
    api_version: String,
    #[serde(default, deserialize_with = "null_default")]
    kind: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MatchResources {
    namespace_selector: Option<MetaSelector>,
    object_selector: Option<MetaSelector>,
    #[serde(default, deserialize_with = "null_default")]
    resource_rules: Vec<Rule>,
    #[serde(default, deserialize_with = "null_default")]
    exclude_resource_rules: Vec<Rule>,
    match_policy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Validation {
    #[serde(default, deserialize_with = "null_default")]
    expression: String,
    #[serde(default, deserialize_with = "null_default")]
    message: String,
    reason: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    message_expression: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuditAnnotation {
    #[serde(default, deserialize_with = "null_default")]
    key: String,
    #[serde(default, deserialize_with = "null_default")]
    value_expression: String,
}

#[derive(Deserialize, Default)]
struct Variable {
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    #[serde(default, deserialize_with = "null_default")]
    expression: String,
}

#[derive(Deserialize, Default)]
struct PolicyStatus {
    #[serde(default, deserialize_with = "null_default")]
    status: StatusBody,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StatusBody {
    type_checking: Option<TypeChecking>,
    #[serde(default, deserialize_with = "null_default")]
    conditions: Vec<Condition>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TypeChecking {
    #[serde(default, deserialize_with = "null_default")]
    expression_warnings: Vec<ExpressionWarning>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ExpressionWarning {
    #[serde(default, deserialize_with = "null_default")]
    field_ref: String,
    #[serde(default, deserialize_with = "null_default")]
    warning: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Condition {
    #[serde(rename = "type", default, deserialize_with = "null_default")]
    type_: String,
    #[serde(default, deserialize_with = "null_default")]
    status: String,
    observed_generation: Option<i64>,
    last_transition_time: Option<Time>,
    #[serde(default, deserialize_with = "null_default")]
    reason: String,
    #[serde(default, deserialize_with = "null_default")]
    message: String,
}

#[derive(Deserialize, Default)]
struct Binding {
    #[serde(default, deserialize_with = "null_default")]
    spec: BindingSpec,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct BindingSpec {
    #[serde(default, deserialize_with = "null_default")]
    policy_name: String,
    param_ref: Option<ParamRef>,
    match_resources: Option<MatchResources>,
    #[serde(default, deserialize_with = "null_default")]
    validation_actions: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ParamRef {
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    selector: Option<MetaSelector>,
    parameter_not_found_action: Option<String>,
}

// ---- defaults ----

/// `SetDefaults_Rule` on every rule in `map[key]`.
fn default_rules(map: &mut Map<String, Value>, key: &str) {
    for rule in each_map(map, key) {
        default_field(rule, "scope", "*");
    }
}

/// `SetDefaults_MatchResources`, and its rules'.
fn default_match_resources(map: &mut Map<String, Value>) {
    default_field(map, "matchPolicy", "Equivalent");
    default_field(map, "namespaceSelector", json!({}));
    default_field(map, "objectSelector", json!({}));
    default_rules(map, "resourceRules");
    default_rules(map, "excludeResourceRules");
}

/// `SetDefaults_ValidatingWebhook`/`SetDefaults_MutatingWebhook` on every webhook, with their
/// services' port and their rules' scope.
fn default_webhooks(object: &mut Value, mutating: bool) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    for hook in each_map(map, "webhooks") {
        default_field(hook, "failurePolicy", "Fail");
        default_field(hook, "matchPolicy", "Equivalent");
        default_field(hook, "namespaceSelector", json!({}));
        default_field(hook, "objectSelector", json!({}));
        default_field(hook, "timeoutSeconds", 10);
        if mutating {
            default_field(hook, "reinvocationPolicy", "Never");
        }
        if let Some(service) = child_map(hook, "clientConfig").and_then(|c| child_map(c, "service"))
        {
            default_field(service, "port", 443);
        }
        default_rules(hook, "rules");
    }
}

// ---- shared validation ----

/// Errors of an enum field that must be set.
fn required_enum(value: Option<&str>, supported: &[&str], path: &Path) -> Option<FieldError> {
    match value {
        None => Some(FieldError::required(path, "")),
        Some(v) if !supported.contains(&v) => Some(FieldError::not_supported(path, v, supported)),
        Some(_) => None,
    }
}

/// Errors of an optional enum field (an empty string is a value like any other).
fn optional_enum(value: Option<&str>, supported: &[&str], path: &Path) -> Option<FieldError> {
    value
        .filter(|v| !supported.contains(v))
        .map(|v| FieldError::not_supported(path, v, supported))
}

/// `field.Invalid` for each message, all with the same bad value.
fn invalid_each(path: &Path, value: &str, msgs: Vec<String>) -> impl Iterator<Item = FieldError> {
    msgs.into_iter()
        .map(move |m| FieldError::invalid(path, value, m))
}

/// Upstream's `ValidateQualifiedName`.
fn qualified_name(value: &str, path: &Path) -> Vec<FieldError> {
    invalid_each(path, value, is_qualified_name(value)).collect()
}

/// Upstream's `IsFullyQualifiedName`: a DNS subdomain of at least three labels.
fn fully_qualified_name(name: &str, path: &Path) -> Option<FieldError> {
    if name.is_empty() {
        return Some(FieldError::required(path, ""));
    }
    let errs = is_dns1123_subdomain(name);
    if !errs.is_empty() {
        return Some(FieldError::invalid(path, name, errs.join(",")));
    }
    (name.split('.').count() < 3).then(|| {
        FieldError::invalid(
            path,
            name,
            "should be a domain with at least three segments separated by dots",
        )
    })
}

/// A label selector, strictly unless `allow_invalid_values` (webhooks stored before values were
/// checked keep theirs: upstream then skips `matchExpressions[*].values[*]`).
fn selector(selector: &MetaSelector, allow_invalid_values: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = validate_label_selector(selector, path);
    if allow_invalid_values {
        let exprs = format!("{}.matchExpressions[", path.as_str());
        errs.retain(|e| !(e.field.starts_with(&exprs) && e.field.contains("].values[")));
    }
    errs
}

/// `Invalid value: <shown>: compilation failed: ...` when `expression` does not parse.
fn compile(expression: &str, shown: &str, path: &Path) -> Option<FieldError> {
    rkube_api::cel::compile_error(expression)
        .map(|detail| FieldError::invalid(path, shown, format!("compilation failed: {detail}")))
}

fn has_wildcard(values: &[String]) -> bool {
    values.iter().any(|v| v == "*")
}

/// Upstream's `validateResources`: subresource forms and wildcard combinations.
fn validate_resources(resources: &[String], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if resources.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    // `x/*` seen, `*/x` seen.
    let mut all_subresources_of: HashSet<&str> = HashSet::new();
    let mut all_resources_with: HashSet<&str> = HashSet::new();
    let mut double_wildcard = false;
    let mut single_wildcard = false;
    let mut without_subresource = false;
    for (i, item) in resources.iter().enumerate() {
        if item.is_empty() {
            errs.push(FieldError::required(&path.index(i), ""));
            continue;
        }
        double_wildcard |= item == "*/*";
        single_wildcard |= item == "*";
        let Some((res, sub)) = item.split_once('/') else {
            // As upstream: the last resource without a subresource decides.
            without_subresource = item != "*";
            continue;
        };
        if all_subresources_of.contains(res) {
            errs.push(FieldError::invalid(
                &path.index(i),
                item.as_str(),
                format!("if '{res}/*' is present, must not specify {item}"),
            ));
        }
        if all_resources_with.contains(sub) {
            errs.push(FieldError::invalid(
                &path.index(i),
                item.as_str(),
                format!("if '*/{sub}' is present, must not specify {item}"),
            ));
        }
        if sub == "*" {
            all_subresources_of.insert(res);
        }
        if res == "*" {
            all_resources_with.insert(sub);
        }
    }
    if resources.len() > 1 && double_wildcard {
        errs.push(FieldError::invalid(
            path,
            json!(resources),
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single_wildcard && without_subresource {
        errs.push(FieldError::invalid(
            path,
            json!(resources),
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
    errs
}

/// A rule's list that must not be empty and may hold `*` only alone (`what`: "operations",
/// "API groups", ...), as upstream words it.
fn wildcard_list(values: &[String], path: &Path, what: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if values.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    if values.len() > 1 && has_wildcard(values) {
        errs.push(FieldError::invalid(
            path,
            json!(values),
            format!("if '*' is present, must not specify other {what}"),
        ));
    }
    errs
}

/// Upstream's `validateRuleWithOperations` (subresources allowed, as everywhere it is used).
fn validate_rule(rule: &Rule, path: &Path) -> Vec<FieldError> {
    let ops = path.child("operations");
    let mut errs = wildcard_list(&rule.operations, &ops, "operations");
    for (i, op) in rule.operations.iter().enumerate() {
        errs.extend(optional_enum(Some(op), OPERATIONS, &ops.index(i)));
    }
    errs.extend(wildcard_list(
        &rule.api_groups,
        &path.child("apiGroups"),
        "API groups",
    ));
    let versions = path.child("apiVersions");
    errs.extend(wildcard_list(&rule.api_versions, &versions, "API versions"));
    for (i, v) in rule.api_versions.iter().enumerate() {
        if v.is_empty() {
            errs.push(FieldError::required(&versions.index(i), ""));
        }
    }
    errs.extend(validate_resources(
        &rule.resources,
        &path.child("resources"),
    ));
    errs.extend(optional_enum(
        rule.scope.as_deref(),
        SCOPES,
        &path.child("scope"),
    ));
    errs
}

/// Upstream's `validateNamedRuleWithOperations`: resource names, then the rule.
fn validate_named_rule(rule: &Rule, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let names_path = path.child("resourceNames");
    let mut seen = HashSet::new();
    for (i, name) in rule.resource_names.iter().enumerate() {
        let p = names_path.index(i);
        errs.extend(invalid_each(&p, name, is_valid_path_segment_name(name)));
        if !seen.insert(name.as_str()) {
            errs.push(FieldError::duplicate(&p, name.as_str()));
        }
    }
    errs.extend(validate_rule(rule, path));
    errs
}

/// Upstream's `validateMatchConditions`.
fn validate_match_conditions(conditions: &[MatchCondition], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if conditions.len() > MAX_MATCH_CONDITIONS {
        errs.push(FieldError::too_many(
            path,
            i64::try_from(conditions.len()).unwrap_or(i64::MAX),
            MAX_MATCH_CONDITIONS as i64,
        ));
    }
    let mut names = HashSet::new();
    for (i, c) in conditions.iter().enumerate() {
        let p = path.index(i);
        let expression = c.expression.trim();
        if expression.is_empty() {
            errs.push(FieldError::required(&p.child("expression"), ""));
        } else {
            errs.extend(compile(expression, expression, &p.child("expression")));
        }
        if c.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            errs.extend(qualified_name(&c.name, &p.child("name")));
            if !names.insert(c.name.as_str()) {
                errs.push(FieldError::duplicate(&p.child("name"), c.name.as_str()));
            }
        }
    }
    errs
}

/// Upstream's `validateMatchResources`.
fn validate_match_resources(m: &MatchResources, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    errs.extend(required_enum(
        m.match_policy.as_deref(),
        MATCH_POLICIES,
        &path.child("matchPolicy"),
    ));
    for (key, sel) in [
        ("namespaceSelector", &m.namespace_selector),
        ("objectSelector", &m.object_selector),
    ] {
        match sel {
            None => errs.push(FieldError::required(&path.child(key), "")),
            Some(s) => errs.extend(selector(s, false, &path.child(key))),
        }
    }
    for (key, rules) in [
        ("resourceRules", &m.resource_rules),
        ("excludeResourceRules", &m.exclude_resource_rules),
    ] {
        for (i, rule) in rules.iter().enumerate() {
            errs.extend(validate_named_rule(rule, &path.child(key).index(i)));
        }
    }
    errs
}

// ---- webhook configurations ----

/// A Go `url.Parse` result, as far as webhook URL validation looks at it.
#[derive(Debug, Default, PartialEq)]
struct GoUrl<'a> {
    scheme: String,
    host: &'a str,
    user: Option<&'a str>,
    raw_query: &'a str,
    fragment: &'a str,
}

/// Go's `unescape` check: every `%` starts two hex digits; the error names the bad escape.
fn check_escapes(s: &str) -> Result<(), String> {
    let bytes = s.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                let end = (i + 3).min(s.len());
                let bad = s.get(i..end).unwrap_or(&s[i..]);
                return Err(format!(
                    "invalid URL escape {}",
                    rkube_api::field::go_quote(bad)
                ));
            }
        }
    }
    Ok(())
}

/// Go's `parseHost`: a bracketed IPv6 literal or a name, an optional numeric port, escapes and
/// the characters a host may hold.
fn check_host(host: &str) -> Result<(), String> {
    let port = if let Some(rest) = host.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| "missing ']' in host".to_owned())?;
        &rest[close + 1..]
    } else {
        host.rfind(':').map_or("", |i| &host[i..])
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if !port_ok {
        return Err(format!(
            "invalid port {} after host",
            rkube_api::field::go_quote(port)
        ));
    }
    check_escapes(host)?;
    let allowed = |c: char| {
        c.is_ascii_alphanumeric() || !c.is_ascii() || "-_.~$&'()*+,;=:[]<>\"%".contains(c)
    };
    match host.chars().find(|c| !allowed(*c)) {
        Some(c) => Err(format!(
            "invalid character {} in host name",
            rkube_api::field::go_quote(&c.to_string())
        )),
        None => Ok(()),
    }
}

/// Go's `url.Parse` of an absolute URL reference, with its error messages (`parse "<url>":
/// <reason>`).
fn parse_go_url(raw: &str) -> Result<GoUrl<'_>, String> {
    let (before_fragment, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    let fail =
        |url: &str, reason: String| format!("parse {}: {reason}", rkube_api::field::go_quote(url));
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(fail(
            before_fragment,
            "net/url: invalid control character in URL".into(),
        ));
    }
    // getScheme: letters first, then letters, digits, `+`, `-`, `.` up to a `:`.
    let mut scheme = "";
    let mut rest = before_fragment;
    for (i, b) in before_fragment.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => {
                return Err(fail(before_fragment, "missing protocol scheme".into()));
            }
            b':' => {
                scheme = &before_fragment[..i];
                rest = &before_fragment[i + 1..];
                break;
            }
            _ => break,
        }
    }
    let mut url = GoUrl {
        scheme: scheme.to_ascii_lowercase(),
        fragment,
        ..GoUrl::default()
    };
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        rest = &rest[..rest.len() - 1];
    } else if let Some((path, query)) = rest.split_once('?') {
        rest = path;
        url.raw_query = query;
    }
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            // An opaque URL (`https:host`): no host.
            return Ok(url);
        }
        if rest.split('/').next().is_some_and(|s| s.contains(':')) {
            return Err(fail(
                before_fragment,
                "first path segment in URL cannot contain colon".into(),
            ));
        }
    }
    let mut path = rest;
    if let Some(after) = rest.strip_prefix("//")
        && (!scheme.is_empty() || !rest.starts_with("///"))
    {
        let (authority, p) = after.find('/').map_or((after, ""), |i| after.split_at(i));
        path = p;
        let (user, host) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        check_host(host).map_err(|e| fail(before_fragment, e))?;
        if let Some(user) = user {
            check_escapes(user).map_err(|e| fail(before_fragment, e))?;
        }
        url.host = host;
        url.user = user;
    }
    check_escapes(path).map_err(|e| fail(before_fragment, e))?;
    check_escapes(fragment).map_err(|e| fail(raw, e))?;
    Ok(url)
}

/// Upstream's `ValidateWebhookURL` with https required.
fn validate_webhook_url(raw: &str, path: &Path) -> Vec<FieldError> {
    const FORM: &str = "; desired format: https://host[/path]";
    let url = match parse_go_url(raw) {
        Ok(url) => url,
        Err(e) => {
            return vec![FieldError::required(
                path,
                format!("url must be a valid URL: {e}{FORM}"),
            )];
        }
    };
    let mut errs = Vec::new();
    if url.scheme != "https" {
        errs.push(FieldError::invalid(
            path,
            url.scheme.as_str(),
            format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    if url.host.is_empty() {
        errs.push(FieldError::invalid(
            path,
            url.host,
            format!("host must be specified{FORM}"),
        ));
    }
    if let Some(user) = url.user {
        errs.push(FieldError::invalid(
            path,
            user,
            "user information is not permitted in the URL",
        ));
    }
    if !url.fragment.is_empty() {
        errs.push(FieldError::invalid(
            path,
            url.fragment,
            "fragments are not permitted in the URL",
        ));
    }
    if !url.raw_query.is_empty() {
        errs.push(FieldError::invalid(
            path,
            url.raw_query,
            "query parameters are not permitted in the URL",
        ));
    }
    errs
}

/// Upstream's `ValidateWebhookService`.
fn validate_webhook_service(service: &ServiceReference, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    // Upstream passes the service's name and namespace to each other's parameter, so a
    // missing namespace is reported at `name` and the other way round; clients see that.
    if service.namespace.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    if service.name.is_empty() {
        errs.push(FieldError::required(&path.child("namespace"), ""));
    }
    let port = service.port.unwrap_or(443);
    if !(1..=65535).contains(&port) {
        errs.push(FieldError::invalid(
            &path.child("port"),
            port,
            format!("port is not valid: {}", range_error(1, 65535)),
        ));
    }
    let Some(url_path) = service.path.as_deref() else {
        return errs;
    };
    let at = path.child("path");
    if url_path.is_empty() || url_path == "/" {
        return errs;
    }
    if url_path == "//" {
        errs.push(FieldError::invalid(
            &at,
            url_path,
            "segment[0] may not be empty",
        ));
        return errs;
    }
    if !url_path.starts_with('/') {
        errs.push(FieldError::invalid(&at, url_path, "must start with a '/'"));
    }
    // Upstream drops the first byte whatever it is, and one trailing slash.
    let mut steps = url_path.get(1..).unwrap_or_default();
    steps = steps.strip_suffix('/').unwrap_or(steps);
    for (i, step) in steps.split('/').enumerate() {
        if step.is_empty() {
            errs.push(FieldError::invalid(
                &at,
                url_path,
                format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        errs.extend(
            is_dns1123_subdomain(step)
                .into_iter()
                .map(|m| FieldError::invalid(&at, url_path, format!("segment[{i}]: {m}"))),
        );
    }
    errs
}

/// Upstream's `validateAdmissionReviewVersions`.
fn validate_review_versions(
    versions: &[String],
    require_recognized: bool,
    path: &Path,
) -> Vec<FieldError> {
    let accepted = REVIEW_VERSIONS.join(", ");
    if versions.is_empty() {
        return vec![FieldError::required(
            path,
            format!("must specify one of {accepted}"),
        )];
    }
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    let mut recognized = false;
    for (i, v) in versions.iter().enumerate() {
        if !seen.insert(v.as_str()) {
            errs.push(FieldError::invalid(&path.index(i), v, "duplicate version"));
            continue;
        }
        errs.extend(invalid_each(&path.index(i), v, is_dns1035_label(v)));
        recognized |= REVIEW_VERSIONS.contains(&v.as_str());
    }
    if require_recognized && !recognized {
        errs.push(FieldError::invalid(
            path,
            json!(versions),
            format!("must include at least one of {accepted}"),
        ));
    }
    errs
}

/// What an update may keep from the stored configuration that a create may not have
/// (upstream's `validationOptions`).
struct WebhookRules {
    ignore_match_conditions: bool,
    require_no_side_effects: bool,
    require_recognized_review_version: bool,
    require_unique_names: bool,
    allow_invalid_label_values: bool,
}

impl WebhookRules {
    /// The rules of a create.
    const STRICT: Self = Self {
        ignore_match_conditions: false,
        require_no_side_effects: true,
        require_recognized_review_version: true,
        require_unique_names: true,
        allow_invalid_label_values: false,
    };

    /// The rules of an update from `old`: a rule a stored webhook already breaks is relaxed,
    /// so that the object can still be changed (and matchConditions are not compiled again
    /// when none changed).
    fn for_update(new: &[Webhook], old: &[Webhook]) -> Self {
        let mut names = HashSet::new();
        Self {
            ignore_match_conditions: new.len() == old.len()
                && new
                    .iter()
                    .zip(old)
                    .all(|(n, o)| n.match_conditions == o.match_conditions),
            require_no_side_effects: old.iter().all(|h| {
                h.side_effects
                    .as_deref()
                    .is_some_and(|s| NO_SIDE_EFFECTS.contains(&s))
            }),
            require_recognized_review_version: old.iter().all(|h| {
                h.admission_review_versions.is_empty()
                    || h.admission_review_versions
                        .iter()
                        .any(|v| REVIEW_VERSIONS.contains(&v.as_str()))
            }),
            require_unique_names: old.iter().all(|h| names.insert(h.name.as_str())),
            allow_invalid_label_values: old.iter().any(|h| {
                [&h.namespace_selector, &h.object_selector]
                    .into_iter()
                    .flatten()
                    .any(|s| !validate_label_selector(s, &Path::none()).is_empty())
            }),
        }
    }
}

/// Upstream's `validateValidatingWebhook`/`validateMutatingWebhook`.
fn validate_webhook(
    hook: &Webhook,
    mutating: bool,
    rules: &WebhookRules,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    errs.extend(fully_qualified_name(&hook.name, &path.child("name")));
    for (i, rule) in hook.rules.iter().enumerate() {
        errs.extend(validate_rule(rule, &path.child("rules").index(i)));
    }
    errs.extend(optional_enum(
        hook.failure_policy.as_deref(),
        FAILURE_POLICIES,
        &path.child("failurePolicy"),
    ));
    errs.extend(optional_enum(
        hook.match_policy.as_deref(),
        MATCH_POLICIES,
        &path.child("matchPolicy"),
    ));
    let side_effects = if rules.require_no_side_effects {
        NO_SIDE_EFFECTS
    } else {
        SIDE_EFFECTS
    };
    let se_path = path.child("sideEffects");
    match hook.side_effects.as_deref() {
        None => errs.push(FieldError::required(
            &se_path,
            format!("must specify one of {}", side_effects.join(", ")),
        )),
        value => errs.extend(optional_enum(value, side_effects, &se_path)),
    }
    if let Some(t) = hook.timeout_seconds
        && !(1..=30).contains(&t)
    {
        errs.push(FieldError::invalid(
            &path.child("timeoutSeconds"),
            t,
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    for (key, sel) in [
        ("namespaceSelector", &hook.namespace_selector),
        ("objectSelector", &hook.object_selector),
    ] {
        if let Some(s) = sel {
            errs.extend(selector(
                s,
                rules.allow_invalid_label_values,
                &path.child(key),
            ));
        }
    }
    if mutating {
        errs.extend(optional_enum(
            hook.reinvocation_policy.as_deref(),
            REINVOCATION_POLICIES,
            &path.child("reinvocationPolicy"),
        ));
    }
    let cc = path.child("clientConfig");
    match (&hook.client_config.url, &hook.client_config.service) {
        (Some(url), None) => errs.extend(validate_webhook_url(url, &cc.child("url"))),
        (None, Some(service)) => {
            errs.extend(validate_webhook_service(service, &cc.child("service")));
        }
        _ => errs.push(FieldError::required(
            &cc,
            "exactly one of url or service is required",
        )),
    }
    if !rules.ignore_match_conditions {
        errs.extend(validate_match_conditions(
            &hook.match_conditions,
            &path.child("matchConditions"),
        ));
    }
    errs
}

fn validate_webhook_configuration(
    config: &WebhookConfiguration,
    mutating: bool,
    rules: &WebhookRules,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    for (i, hook) in config.webhooks.iter().enumerate() {
        let p = Path::new("webhooks").index(i);
        errs.extend(validate_webhook(hook, mutating, rules, &p));
        errs.extend(validate_review_versions(
            &hook.admission_review_versions,
            rules.require_recognized_review_version,
            &p.child("admissionReviewVersions"),
        ));
        if rules.require_unique_names && !hook.name.is_empty() && !names.insert(hook.name.as_str())
        {
            errs.push(FieldError::duplicate(&p.child("name"), hook.name.as_str()));
        }
    }
    errs
}

/// Mutating- (`MUTATING`) and ValidatingWebhookConfigurations.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookConfigurationStrategy<const MUTATING: bool>;

/// MutatingWebhookConfigurations.
pub type MutatingWebhookConfigurationStrategy = WebhookConfigurationStrategy<true>;
/// ValidatingWebhookConfigurations.
pub type ValidatingWebhookConfigurationStrategy = WebhookConfigurationStrategy<false>;

impl<const MUTATING: bool> Strategy for WebhookConfigurationStrategy<MUTATING> {
    fn default(&self, object: &mut Value) {
        default_webhooks(object, MUTATING);
    }

    fn prepare_for_create(&self, object: &mut Value) {
        // Upstream starts these at generation 1 although they have no `spec`.
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("generation".into(), json!(1));
        }
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        match decode::<WebhookConfiguration>(object) {
            Ok(config) => validate_webhook_configuration(&config, MUTATING, &WebhookRules::STRICT),
            Err(e) => vec![e],
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let config = match decode::<WebhookConfiguration>(new) {
            Ok(c) => c,
            Err(e) => return vec![e],
        };
        // A stored object that no longer decodes relaxes nothing.
        let rules = decode::<WebhookConfiguration>(old).map_or(WebhookRules::STRICT, |o| {
            WebhookRules::for_update(&config.webhooks, &o.webhooks)
        });
        validate_webhook_configuration(&config, MUTATING, &rules)
    }

    fn generation_changes(&self, old: &Value, new: &Value) -> bool {
        old.get("webhooks") != new.get("webhooks")
    }
}

// ---- policies ----

/// Upstream's `isCELIdentifier`.
fn is_cel_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !CEL_RESERVED.contains(&name)
}

/// Upstream's `validateParamKind`.
fn validate_param_kind(kind: &ParamKind, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let av = path.child("apiVersion");
    let version = &kind.api_version;
    if version.is_empty() {
        errs.push(FieldError::required(&av, ""));
    } else if version.matches('/').count() > 1 {
        errs.push(FieldError::invalid(
            &av,
            version,
            format!("unexpected GroupVersion string: {version}"),
        ));
    } else {
        let (group, v) = match version.split_once('/') {
            _ if version == "/" => ("", ""),
            Some((g, v)) => (g, v),
            None => ("", version.as_str()),
        };
        if !group.is_empty() {
            let msgs = is_dns1123_subdomain(group);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(&av, group, msgs.join(",")));
            }
        }
        if v.is_empty() {
            errs.push(FieldError::invalid(
                &av,
                version,
                "version must be specified",
            ));
        } else {
            let msgs = is_dns1035_label(v);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(&av, v, msgs.join(",")));
            }
        }
    }
    let kp = path.child("kind");
    if kind.kind.is_empty() {
        errs.push(FieldError::required(&kp, ""));
    } else {
        let msgs = is_dns1035_label(&kind.kind.to_lowercase());
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &kp,
                &kind.kind,
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    msgs.join(",")
                ),
            ));
        }
    }
    errs
}

/// A variable's or validation's `expression`: present, and compiling.
fn required_expression(expression: &str, path: &Path) -> Vec<FieldError> {
    if expression.trim().is_empty() {
        return vec![FieldError::required(path, "expression is not specified")];
    }
    compile(expression, expression, path).into_iter().collect()
}

/// Upstream's `validateVariable`.
fn validate_variable(v: &Variable, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if v.name.trim().is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "name is not specified",
        ));
    } else if !is_cel_identifier(&v.name) {
        errs.push(FieldError::invalid(
            &path.child("name"),
            &v.name,
            "name is not a valid CEL identifier",
        ));
    }
    errs.extend(required_expression(
        &v.expression,
        &path.child("expression"),
    ));
    errs
}

/// Upstream's `validateValidation`.
fn validate_validation(v: &Validation, path: &Path) -> Vec<FieldError> {
    let mut errs = required_expression(&v.expression, &path.child("expression"));
    let me = path.child("messageExpression");
    if !v.message_expression.is_empty() && v.message_expression.trim().is_empty() {
        errs.push(FieldError::invalid(
            &me,
            &v.message_expression,
            "must be non-empty if specified",
        ));
    } else if !v.message_expression.is_empty() {
        // The untrimmed source, so that error columns match what the user wrote.
        errs.extend(compile(&v.message_expression, &v.message_expression, &me));
    }
    let message = v.message.trim();
    if !v.message.is_empty() && message.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("message"),
            &v.message,
            "message must be non-empty if specified",
        ));
    } else if message.contains(['\n', '\r']) {
        errs.push(FieldError::invalid(
            &path.child("message"),
            &v.message,
            "message must not contain line breaks",
        ));
    }
    errs.extend(optional_enum(
        v.reason.as_deref(),
        REASONS,
        &path.child("reason"),
    ));
    errs
}

/// Upstream's `validateAuditAnnotation`.
fn validate_audit_annotation(
    policy_name: &str,
    a: &AuditAnnotation,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let key = path.child("key");
    if policy_name.is_empty() {
        errs.push(FieldError::invalid(
            &key,
            &a.key,
            "requires metadata.name be non-empty",
        ));
    } else {
        // The key becomes `<policy name>/<key>` in the audit event.
        errs.extend(qualified_name(&format!("{policy_name}/{}", a.key), &key));
    }
    let ve = path.child("valueExpression");
    let trimmed = a.value_expression.trim();
    if trimmed.is_empty() {
        errs.push(FieldError::required(
            &ve,
            "valueExpression is not specified",
        ));
    } else if trimmed.len() > MAX_AUDIT_VALUE_EXPRESSION {
        errs.push(FieldError::required(
            &ve,
            format!("must not exceed {MAX_AUDIT_VALUE_EXPRESSION} bytes in length"),
        ));
    } else {
        errs.extend(compile(trimmed, &a.value_expression, &ve));
    }
    errs
}

/// Upstream's `validateValidatingAdmissionPolicySpec`; `ignore_match_conditions` on updates
/// that change neither the matchConditions nor the paramKind. `raw_spec` gives the bad value
/// of a too-long auditAnnotations list as the client wrote it.
fn validate_policy(
    policy: &Policy,
    raw_spec: Option<&Value>,
    ignore_match_conditions: bool,
) -> Vec<FieldError> {
    let spec = &policy.spec;
    let path = Path::new("spec");
    let mut errs = Vec::new();
    errs.extend(required_enum(
        spec.failure_policy.as_deref(),
        FAILURE_POLICIES,
        &path.child("failurePolicy"),
    ));
    if let Some(kind) = &spec.param_kind {
        errs.extend(validate_param_kind(kind, &path.child("paramKind")));
    }
    let mc = path.child("matchConstraints");
    match &spec.match_constraints {
        None => errs.push(FieldError::required(&mc, "")),
        Some(m) => {
            errs.extend(validate_match_resources(m, &mc));
            // Resource rules give the expressions their types.
            if m.resource_rules.is_empty() {
                errs.push(FieldError::required(&mc.child("resourceRules"), ""));
            }
        }
    }
    if !ignore_match_conditions {
        errs.extend(validate_match_conditions(
            &spec.match_conditions,
            &path.child("matchConditions"),
        ));
    }
    for (i, v) in spec.variables.iter().enumerate() {
        errs.extend(validate_variable(v, &path.child("variables").index(i)));
    }
    let annotations = path.child("auditAnnotations");
    if spec.validations.is_empty() && spec.audit_annotations.is_empty() {
        let msg = "validations or auditAnnotations must contain at least one item";
        errs.push(FieldError::required(&path.child("validations"), msg));
        errs.push(FieldError::required(&annotations, msg));
        return errs;
    }
    for (i, v) in spec.validations.iter().enumerate() {
        errs.extend(validate_validation(v, &path.child("validations").index(i)));
    }
    if spec.audit_annotations.len() > MAX_AUDIT_ANNOTATIONS {
        let raw = raw_spec
            .and_then(|s| s.get("auditAnnotations"))
            .cloned()
            .unwrap_or(Value::Null);
        errs.push(FieldError::invalid(
            &annotations,
            raw,
            format!("must not have more than {MAX_AUDIT_ANNOTATIONS} auditAnnotations"),
        ));
    }
    let mut keys = HashSet::new();
    for (i, a) in spec.audit_annotations.iter().enumerate() {
        let p = annotations.index(i);
        errs.extend(validate_audit_annotation(&policy.metadata.name, a, &p));
        if !keys.insert(a.key.as_str()) {
            errs.push(FieldError::duplicate(&p.child("key"), a.key.as_str()));
        }
    }
    errs
}

/// The condition reason format of metav1 `Condition`.
fn is_condition_reason(reason: &str) -> bool {
    let bytes = reason.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_alphabetic)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b',' | b':'))
        && bytes
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// metav1 `ValidateConditions`.
fn validate_conditions(conditions: &[Condition], path: &Path) -> Vec<FieldError> {
    const MAX_REASON: usize = 1024;
    const MAX_MESSAGE: usize = 32768;
    let mut errs = Vec::new();
    let mut types = HashSet::new();
    for (i, c) in conditions.iter().enumerate() {
        let p = path.index(i);
        let tp = p.child("type");
        errs.extend(qualified_name(&c.type_, &tp));
        if !types.insert(c.type_.as_str()) {
            errs.push(FieldError::duplicate(&tp, c.type_.as_str()));
        }
        errs.extend(optional_enum(
            Some(&c.status),
            &["False", "True", "Unknown"],
            &p.child("status"),
        ));
        if let Some(g) = c.observed_generation
            && g < 0
        {
            errs.push(FieldError::invalid(
                &p.child("observedGeneration"),
                g,
                "must be greater than or equal to zero",
            ));
        }
        if c.last_transition_time.is_none() {
            errs.push(FieldError::required(
                &p.child("lastTransitionTime"),
                "must be set",
            ));
        }
        let rp = p.child("reason");
        if c.reason.is_empty() {
            errs.push(FieldError::required(&rp, "must be set"));
        } else {
            if !is_condition_reason(&c.reason) {
                errs.push(FieldError::invalid(
                    &rp,
                    &c.reason,
                    regex_error(
                        "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'",
                        "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?",
                        &["my_name", "MY_NAME", "MyName", "ReasonA,ReasonB", "ReasonA:ReasonB"],
                    ),
                ));
            }
            if c.reason.len() > MAX_REASON {
                errs.push(FieldError::too_long(&rp, MAX_REASON as i64));
            }
        }
        if c.message.len() > MAX_MESSAGE {
            errs.push(FieldError::too_long(
                &p.child("message"),
                MAX_MESSAGE as i64,
            ));
        }
    }
    errs
}

/// Upstream's `validateValidatingAdmissionPolicyStatus` (a warning's fieldRef is required but
/// not parsed as JSONPath).
fn validate_policy_status(status: &StatusBody) -> Vec<FieldError> {
    let path = Path::new("status");
    let mut errs = Vec::new();
    if let Some(tc) = &status.type_checking {
        let wp = path.child("typeChecking").child("expressionWarnings");
        for (i, w) in tc.expression_warnings.iter().enumerate() {
            if w.warning.is_empty() {
                errs.push(FieldError::required(&wp.index(i).child("warning"), ""));
            }
            if w.field_ref.trim().is_empty() {
                errs.push(FieldError::required(&wp.index(i).child("fieldRef"), ""));
            }
        }
    }
    errs.extend(validate_conditions(
        &status.conditions,
        &path.child("conditions"),
    ));
    errs
}

/// ValidatingAdmissionPolicies: defaults, validation with CEL parsing, `status` written only
/// through its subresource (the generic registry keeps it on the main resource).
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidatingAdmissionPolicyStrategy;

impl Strategy for ValidatingAdmissionPolicyStrategy {
    fn default(&self, object: &mut Value) {
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        default_field(spec, "failurePolicy", "Fail");
        if let Some(m) = child_map(spec, "matchConstraints") {
            default_match_resources(m);
        }
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        match decode::<Policy>(object) {
            Ok(p) => validate_policy(&p, object.get("spec"), false),
            Err(e) => vec![e],
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let policy = match decode::<Policy>(new) {
            Ok(p) => p,
            Err(e) => return vec![e],
        };
        let unchanged = |key: &str| {
            new.get("spec").and_then(|s| s.get(key)) == old.get("spec").and_then(|s| s.get(key))
        };
        let ignore = unchanged("paramKind") && unchanged("matchConditions");
        validate_policy(&policy, new.get("spec"), ignore)
    }

    fn validate_subresource_update(
        &self,
        _subresource: &str,
        new: &Value,
        _old: &Value,
    ) -> Vec<FieldError> {
        match decode::<PolicyStatus>(new) {
            Ok(s) => validate_policy_status(&s.status),
            Err(e) => vec![e],
        }
    }

    fn has_status_subresource(&self) -> bool {
        true
    }
}

/// Upstream's `validateParamRef`.
fn validate_param_ref(r: &ParamRef, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    const EXCLUSIVE: &str = "name and selector are mutually exclusive";
    if !r.name.is_empty() {
        let np = path.child("name");
        errs.extend(invalid_each(
            &np,
            &r.name,
            is_valid_path_segment_name(&r.name),
        ));
        if r.selector.is_some() {
            errs.push(FieldError::forbidden(&np, EXCLUSIVE));
        }
    }
    if let Some(s) = &r.selector {
        let sp = path.child("selector");
        errs.extend(selector(s, false, &sp));
        if !r.name.is_empty() {
            errs.push(FieldError::forbidden(&sp, EXCLUSIVE));
        }
    }
    if r.name.is_empty() && r.selector.is_none() {
        errs.push(FieldError::required(
            path,
            "one of name or selector must be specified",
        ));
    }
    let ap = path.child("parameterNotFoundAction");
    match r.parameter_not_found_action.as_deref() {
        None | Some("") => errs.push(FieldError::required(&ap, "")),
        value => errs.extend(optional_enum(value, &["Deny", "Allow"], &ap)),
    }
    errs
}

/// Upstream's `validateValidationActions`.
fn validate_validation_actions(actions: &[String], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (i, action) in actions.iter().enumerate() {
        errs.extend(optional_enum(
            Some(action),
            VALIDATION_ACTIONS,
            &path.index(i),
        ));
        if !seen.insert(action.as_str()) {
            errs.push(FieldError::duplicate(&path.index(i), action.as_str()));
        }
    }
    if seen.contains("Deny") && seen.contains("Warn") {
        errs.push(FieldError::invalid(
            path,
            json!(actions),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
    if seen.is_empty() {
        errs.push(FieldError::required(
            path,
            "at least one validation action is required",
        ));
    }
    errs
}

/// ValidatingAdmissionPolicyBindings: matchResources defaults and validation.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidatingAdmissionPolicyBindingStrategy;

impl Strategy for ValidatingAdmissionPolicyBindingStrategy {
    fn default(&self, object: &mut Value) {
        if let Some(m) = object
            .get_mut("spec")
            .and_then(Value::as_object_mut)
            .and_then(|spec| child_map(spec, "matchResources"))
        {
            default_match_resources(m);
        }
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let binding = match decode::<Binding>(object) {
            Ok(b) => b,
            Err(e) => return vec![e],
        };
        let spec = &binding.spec;
        let path = Path::new("spec");
        let mut errs = Vec::new();
        let pn = path.child("policyName");
        if spec.policy_name.is_empty() {
            errs.push(FieldError::required(&pn, ""));
        } else {
            errs.extend(invalid_each(
                &pn,
                &spec.policy_name,
                name_is_dns_subdomain(&spec.policy_name, false),
            ));
        }
        if let Some(r) = &spec.param_ref {
            errs.extend(validate_param_ref(r, &path.child("paramRef")));
        }
        if let Some(m) = &spec.match_resources {
            errs.extend(validate_match_resources(m, &path.child("matchResources")));
        }
        errs.extend(validate_validation_actions(
            &spec.validation_actions,
            &path.child("validationActions"),
        ));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.to_string()).collect()
    }

    /// A valid webhook, with `patch` merged into it.
    fn hook(patch: Value) -> Value {
        let mut h = json!({
            "name": "check.example.com",
            "clientConfig": {"url": "https://hooks.example.com/check"},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                "resources": ["pods"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        });
        json_patch::merge(&mut h, &patch);
        h
    }

    /// The errors of creating a defaulted ValidatingWebhookConfiguration with `hooks`.
    fn webhook_errors(hooks: Value) -> Vec<String> {
        let s = WebhookConfigurationStrategy::<false>;
        let mut o = json!({"metadata": {"name": "w"}, "webhooks": hooks});
        s.default(&mut o);
        msgs(s.validate(&o))
    }

    #[test]
    fn webhooks_get_upstreams_defaults() {
        let mut o = json!({"metadata": {"name": "w"}, "webhooks": [
            {"name": "a.b.c", "clientConfig": {"service": {"namespace": "n", "name": "s"}},
             "rules": [{"operations": ["*"]}, {"scope": "Namespaced"}]},
            {"name": "d.e.f", "failurePolicy": "Ignore", "timeoutSeconds": 3,
             "namespaceSelector": {"matchLabels": {"x": "y"}}, "reinvocationPolicy": "IfNeeded"},
        ]});
        let mut validating = o.clone();
        WebhookConfigurationStrategy::<false>.default(&mut validating);
        assert_eq!(
            validating["webhooks"],
            json!([
                {"name": "a.b.c", "failurePolicy": "Fail", "matchPolicy": "Equivalent",
                 "namespaceSelector": {}, "objectSelector": {}, "timeoutSeconds": 10,
                 "clientConfig": {"service": {"namespace": "n", "name": "s", "port": 443}},
                 "rules": [{"operations": ["*"], "scope": "*"}, {"scope": "Namespaced"}]},
                {"name": "d.e.f", "failurePolicy": "Ignore", "matchPolicy": "Equivalent",
                 "namespaceSelector": {"matchLabels": {"x": "y"}}, "objectSelector": {},
                 "timeoutSeconds": 3, "reinvocationPolicy": "IfNeeded"},
            ])
        );
        let s = WebhookConfigurationStrategy::<true>;
        s.default(&mut o);
        assert_eq!(o["webhooks"][0]["reinvocationPolicy"], "Never");
        assert_eq!(o["webhooks"][1]["reinvocationPolicy"], "IfNeeded");
        s.prepare_for_create(&mut o);
        assert_eq!(o["metadata"]["generation"], 1);
        assert!(!s.generation_changes(&o, &o.clone()));
        let mut changed = o.clone();
        changed["webhooks"][0]["timeoutSeconds"] = json!(5);
        assert!(s.generation_changes(&o, &changed));
    }

    #[test]
    fn webhook_validation_matches_upstream() {
        assert!(webhook_errors(json!([hook(json!({}))])).is_empty());
        let cases: &[(Value, &[&str])] = &[
            (
                json!({"sideEffects": null}),
                &[
                    "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
                ],
            ),
            (
                json!({"sideEffects": "Some"}),
                &[
                    r#"webhooks[0].sideEffects: Unsupported value: "Some": supported values: "None", "NoneOnDryRun""#,
                ],
            ),
            (
                json!({"admissionReviewVersions": null}),
                &[
                    "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
                ],
            ),
            (
                json!({"admissionReviewVersions": ["v2", "v2", "V3"]}),
                &[
                    r#"webhooks[0].admissionReviewVersions[1]: Invalid value: "v2": duplicate version"#,
                    r#"webhooks[0].admissionReviewVersions[2]: Invalid value: "V3": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#,
                    r#"webhooks[0].admissionReviewVersions: Invalid value: ["v2","v2","V3"]: must include at least one of v1, v1beta1"#,
                ],
            ),
            (
                json!({"name": "short.name"}),
                &[
                    r#"webhooks[0].name: Invalid value: "short.name": should be a domain with at least three segments separated by dots"#,
                ],
            ),
            (json!({"name": ""}), &["webhooks[0].name: Required value"]),
            (
                json!({"clientConfig": {"url": null}}),
                &[
                    "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
                ],
            ),
            (
                json!({"clientConfig": {"url": "http://u:p@x/y?q=1#f"}}),
                &[
                    r#"webhooks[0].clientConfig.url: Invalid value: "http": 'https' is the only allowed URL scheme; desired format: https://host[/path]"#,
                    r#"webhooks[0].clientConfig.url: Invalid value: "u:p": user information is not permitted in the URL"#,
                    r#"webhooks[0].clientConfig.url: Invalid value: "f": fragments are not permitted in the URL"#,
                    r#"webhooks[0].clientConfig.url: Invalid value: "q=1": query parameters are not permitted in the URL"#,
                ],
            ),
            (
                json!({"clientConfig": {"url": "https:///path"}}),
                &[
                    r#"webhooks[0].clientConfig.url: Invalid value: "": host must be specified; desired format: https://host[/path]"#,
                ],
            ),
            (
                json!({"clientConfig": {"url": "https://host:port/"}}),
                &[
                    r#"webhooks[0].clientConfig.url: Required value: url must be a valid URL: parse "https://host:port/": invalid port ":port" after host; desired format: https://host[/path]"#,
                ],
            ),
            (
                json!({"clientConfig": {"url": null, "service": {"name": "", "namespace": "ns",
                    "port": 0, "path": "/a//B"}}}),
                &[
                    "webhooks[0].clientConfig.service.namespace: Required value",
                    "webhooks[0].clientConfig.service.port: Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive",
                    r#"webhooks[0].clientConfig.service.path: Invalid value: "/a//B": segment[1] may not be empty"#,
                    r#"webhooks[0].clientConfig.service.path: Invalid value: "/a//B": segment[2]: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                ],
            ),
            (json!({"clientConfig": {"caBundle": "not base64!"}}), &[]),
            (
                json!({"timeoutSeconds": 31, "failurePolicy": "Maybe", "matchPolicy": "Fuzzy"}),
                &[
                    r#"webhooks[0].failurePolicy: Unsupported value: "Maybe": supported values: "Fail", "Ignore""#,
                    r#"webhooks[0].matchPolicy: Unsupported value: "Fuzzy": supported values: "Equivalent", "Exact""#,
                    "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
                ],
            ),
            (
                json!({"rules": [
                    {"operations": ["*", "PATCH"], "apiGroups": ["*", "apps"], "apiVersions": [""],
                     "resources": ["pods/*", "pods/log"], "scope": "Global"},
                    {"resources": ["*", "pods", "*/*"]},
                ]}),
                &[
                    r#"webhooks[0].rules[0].operations: Invalid value: ["*","PATCH"]: if '*' is present, must not specify other operations"#,
                    r#"webhooks[0].rules[0].operations[1]: Unsupported value: "PATCH": supported values: "*", "CONNECT", "CREATE", "DELETE", "UPDATE""#,
                    r#"webhooks[0].rules[0].apiGroups: Invalid value: ["*","apps"]: if '*' is present, must not specify other API groups"#,
                    "webhooks[0].rules[0].apiVersions[0]: Required value",
                    r#"webhooks[0].rules[0].resources[1]: Invalid value: "pods/log": if 'pods/*' is present, must not specify pods/log"#,
                    r#"webhooks[0].rules[0].scope: Unsupported value: "Global": supported values: "*", "Cluster", "Namespaced""#,
                    "webhooks[0].rules[1].operations: Required value",
                    "webhooks[0].rules[1].apiGroups: Required value",
                    "webhooks[0].rules[1].apiVersions: Required value",
                    r#"webhooks[0].rules[1].resources: Invalid value: ["*","pods","*/*"]: if '*/*' is present, must not specify other resources"#,
                    r#"webhooks[0].rules[1].resources: Invalid value: ["*","pods","*/*"]: if '*' is present, must not specify other resources without subresources"#,
                ],
            ),
            (
                json!({"objectSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}),
                &[
                    "webhooks[0].objectSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                ],
            ),
            (
                json!({"matchConditions": [
                    {"name": "a", "expression": "object.spec.replicas <="},
                    {"name": "a", "expression": " "},
                    {"name": "not/ok/", "expression": "true"},
                ]}),
                &[
                    "webhooks[0].matchConditions[0].expression: Invalid value: \"object.spec.replicas <=\": compilation failed: ERROR: <input>:1:24: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | object.spec.replicas <=\n | .......................^",
                    "webhooks[0].matchConditions[1].expression: Required value",
                    r#"webhooks[0].matchConditions[1].name: Duplicate value: "a""#,
                    r#"webhooks[0].matchConditions[2].name: Invalid value: "not/ok/": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"#,
                ],
            ),
            (
                json!({"timeoutSeconds": "ten"}),
                &[
                    r#"webhooks[0].timeoutSeconds: Invalid value: "ten": invalid type: string "ten", expected i32"#,
                ],
            ),
        ];
        for (patch, want) in cases {
            let got = webhook_errors(json!([hook(patch.clone())]));
            let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            if patch.pointer("/clientConfig/caBundle").is_some() {
                // Whatever the base64 decoder says, it is reported at the field.
                assert_eq!(got.len(), 1, "{got:?}");
                assert!(
                    got[0].starts_with(
                        "webhooks[0].clientConfig.caBundle: Invalid value: \"not base64!\""
                    ),
                    "{got:?}"
                );
                continue;
            }
            want.sort();
            let mut sorted = got.clone();
            sorted.sort();
            assert_eq!(sorted, want, "{patch}: {got:#?}");
        }
        assert_eq!(
            webhook_errors(json!([hook(json!({})), hook(json!({}))])),
            [r#"webhooks[1].name: Duplicate value: "check.example.com""#]
        );
        let too_many: Vec<Value> = (0..65)
            .map(|i| json!({"name": format!("c{i}"), "expression": "true"}))
            .collect();
        assert_eq!(
            webhook_errors(json!([hook(json!({"matchConditions": too_many}))])),
            ["webhooks[0].matchConditions: Too many: 65: must have at most 64 items"]
        );
        let s = WebhookConfigurationStrategy::<true>;
        let o = json!({"webhooks": [hook(json!({"reinvocationPolicy": "Always"}))]});
        assert_eq!(
            msgs(s.validate(&o)),
            [
                r#"webhooks[0].reinvocationPolicy: Unsupported value: "Always": supported values: "IfNeeded", "Never""#
            ]
        );
    }

    #[test]
    fn webhook_updates_keep_what_was_stored() {
        let s = WebhookConfigurationStrategy::<false>;
        // Stored before v1: side effects Unknown, no known review version, duplicate names,
        // an invalid label value, a match condition that no longer parses.
        let legacy = hook(json!({
            "sideEffects": "Unknown",
            "admissionReviewVersions": ["v0"],
            "namespaceSelector": {"matchExpressions": [
                {"key": "a", "operator": "In", "values": ["bad value"]}]},
            "matchConditions": [{"name": "m", "expression": "a +"}],
        }));
        let old = json!({"webhooks": [legacy.clone(), legacy.clone()]});
        let mut new = old.clone();
        new["webhooks"][0]["timeoutSeconds"] = json!(5);
        assert!(
            s.validate_update(&new, &old).is_empty(),
            "{:?}",
            s.validate_update(&new, &old)
        );
        // Each webhook breaks four rules on create, and the second repeats the first's name.
        assert_eq!(s.validate(&new).len(), 9, "{:?}", msgs(s.validate(&new)));
        // Changing the match conditions compiles them again.
        new["webhooks"][1]["matchConditions"][0]["name"] = json!("n");
        assert_eq!(
            msgs(s.validate_update(&new, &old)),
            [
                "webhooks[0].matchConditions[0].expression: Invalid value: \"a +\": compilation failed: ERROR: <input>:1:4: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | a +\n | ...^",
                "webhooks[1].matchConditions[0].expression: Invalid value: \"a +\": compilation failed: ERROR: <input>:1:4: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | a +\n | ...^",
            ]
        );
        // A valid stored object relaxes nothing.
        let old = json!({"webhooks": [hook(json!({}))]});
        let new = json!({"webhooks": [hook(json!({"sideEffects": "Some"}))]});
        assert_eq!(s.validate_update(&new, &old).len(), 1);
    }

    #[test]
    fn go_url_parsing() {
        let u = parse_go_url("HTTPS://user@[::1]:8443/p%20q?x=1#frag").unwrap();
        assert_eq!(
            u,
            GoUrl {
                scheme: "https".into(),
                host: "[::1]:8443",
                user: Some("user"),
                raw_query: "x=1",
                fragment: "frag",
            }
        );
        assert_eq!(parse_go_url("https:opaque").unwrap().host, "");
        assert_eq!(parse_go_url("example.com/x").unwrap().scheme, "");
        assert_eq!(
            parse_go_url("://x").unwrap_err(),
            r#"parse "://x": missing protocol scheme"#
        );
        assert_eq!(
            parse_go_url("https://h/%zz").unwrap_err(),
            r#"parse "https://h/%zz": invalid URL escape "%zz""#
        );
        assert_eq!(
            parse_go_url("https://a b/").unwrap_err(),
            r#"parse "https://a b/": invalid character " " in host name"#
        );
        assert_eq!(
            parse_go_url("https://h/\n").unwrap_err(),
            r#"parse "https://h/\n": net/url: invalid control character in URL"#
        );
        assert_eq!(parse_go_url("a:b/c").map(|u| u.scheme), Ok("a".to_owned()));
        assert_eq!(
            parse_go_url("1a:b").unwrap_err(),
            r#"parse "1a:b": first path segment in URL cannot contain colon"#
        );
    }

    /// A valid policy, with `patch` merged into its spec.
    fn policy(patch: Value) -> Value {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {
            "matchConstraints": {"resourceRules": [{"operations": ["CREATE"],
                "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"]}]},
            "validations": [{"expression": "object.spec.replicas <= 5"}],
        }});
        json_patch::merge(&mut p["spec"], &patch);
        ValidatingAdmissionPolicyStrategy.default(&mut p);
        p
    }

    #[test]
    fn policies_get_upstreams_defaults() {
        let p =
            policy(json!({"matchConstraints": {"excludeResourceRules": [{"scope": "Cluster"}]}}));
        assert_eq!(p["spec"]["failurePolicy"], "Fail");
        assert_eq!(
            p["spec"]["matchConstraints"],
            json!({"matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {},
                "resourceRules": [{"operations": ["CREATE"], "apiGroups": ["apps"],
                    "apiVersions": ["v1"], "resources": ["deployments"], "scope": "*"}],
                "excludeResourceRules": [{"scope": "Cluster"}]})
        );
        let mut b = json!({"spec": {"policyName": "p", "validationActions": ["Deny"]}});
        ValidatingAdmissionPolicyBindingStrategy.default(&mut b);
        assert_eq!(b["spec"].get("matchResources"), None);
        let mut b = json!({"spec": {"matchResources": {"resourceRules": [{}]}}});
        ValidatingAdmissionPolicyBindingStrategy.default(&mut b);
        assert_eq!(
            b["spec"]["matchResources"],
            json!({"matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {},
                "resourceRules": [{"scope": "*"}]})
        );
    }

    #[test]
    fn policy_validation_matches_upstream() {
        let s = ValidatingAdmissionPolicyStrategy;
        assert!(s.validate(&policy(json!({}))).is_empty());
        let cases: &[(Value, &[&str])] = &[
            (
                json!({"validations": null}),
                &[
                    "spec.validations: Required value: validations or auditAnnotations must contain at least one item",
                    "spec.auditAnnotations: Required value: validations or auditAnnotations must contain at least one item",
                ],
            ),
            (
                json!({"validations": [{"expression": "object.spec.replicas <="}]}),
                &[
                    "spec.validations[0].expression: Invalid value: \"object.spec.replicas <=\": compilation failed: ERROR: <input>:1:24: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | object.spec.replicas <=\n | .......................^",
                ],
            ),
            (
                json!({"validations": [{"expression": "", "message": "a\nb", "reason": "Teapot",
                    "messageExpression": "'x' +"}]}),
                &[
                    "spec.validations[0].expression: Required value: expression is not specified",
                    "spec.validations[0].messageExpression: Invalid value: \"'x' +\": compilation failed: ERROR: <input>:1:6: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | 'x' +\n | .....^",
                    r#"spec.validations[0].message: Invalid value: "a\nb": message must not contain line breaks"#,
                    r#"spec.validations[0].reason: Unsupported value: "Teapot": supported values: "Forbidden", "Invalid", "RequestEntityTooLarge""#,
                ],
            ),
            (
                json!({"failurePolicy": "Never", "matchConstraints": null}),
                &[
                    r#"spec.failurePolicy: Unsupported value: "Never": supported values: "Fail", "Ignore""#,
                    "spec.matchConstraints: Required value",
                ],
            ),
            (
                json!({"matchConstraints": {"resourceRules": null, "matchPolicy": "Any",
                    "excludeResourceRules": [{"operations": ["DELETE"], "apiGroups": [""],
                        "apiVersions": ["v1"], "resources": ["pods/log"],
                        "resourceNames": ["a", "a", "b/c"]}]}}),
                &[
                    r#"spec.matchConstraints.matchPolicy: Unsupported value: "Any": supported values: "Equivalent", "Exact""#,
                    r#"spec.matchConstraints.excludeResourceRules[0].resourceNames[1]: Duplicate value: "a""#,
                    r#"spec.matchConstraints.excludeResourceRules[0].resourceNames[2]: Invalid value: "b/c": may not contain '/'"#,
                    "spec.matchConstraints.resourceRules: Required value",
                ],
            ),
            (
                json!({"paramKind": {"apiVersion": "a/b/c", "kind": "Bad_Kind"}}),
                &[
                    r#"spec.paramKind.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c"#,
                    r#"spec.paramKind.kind: Invalid value: "Bad_Kind": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#,
                ],
            ),
            (
                json!({"paramKind": {"apiVersion": "example.com/"}}),
                &[
                    r#"spec.paramKind.apiVersion: Invalid value: "example.com/": version must be specified"#,
                    "spec.paramKind.kind: Required value",
                ],
            ),
            (
                json!({"variables": [{"name": "in", "expression": "1"}, {"name": " ", "expression": "("}]}),
                &[
                    r#"spec.variables[0].name: Invalid value: "in": name is not a valid CEL identifier"#,
                    "spec.variables[1].name: Required value: name is not specified",
                    "spec.variables[1].expression: Invalid value: \"(\": compilation failed: ERROR: <input>:1:2: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | (\n | .^",
                ],
            ),
            (
                json!({"validations": null, "auditAnnotations": [
                    {"key": "k", "valueExpression": "'v'"},
                    {"key": "k", "valueExpression": ""},
                    {"key": "bad key", "valueExpression": "'v'"},
                ]}),
                &[
                    r#"spec.auditAnnotations[1].valueExpression: Required value: valueExpression is not specified"#,
                    r#"spec.auditAnnotations[1].key: Duplicate value: "k""#,
                    r#"spec.auditAnnotations[2].key: Invalid value: "p/bad key": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#,
                ],
            ),
            (
                json!({"matchConditions": [{"name": "", "expression": "true"}]}),
                &["spec.matchConditions[0].name: Required value"],
            ),
        ];
        for (patch, want) in cases {
            let got = msgs(s.validate(&policy(patch.clone())));
            let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            want.sort();
            let mut sorted = got.clone();
            sorted.sort();
            assert_eq!(sorted, want, "{patch}: {got:#?}");
        }
        let many: Vec<Value> = (0..21)
            .map(|i| json!({"key": format!("k{i}"), "valueExpression": "'v'"}))
            .collect();
        let got = msgs(s.validate(&policy(json!({"auditAnnotations": many}))));
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with(
                r#"spec.auditAnnotations: Invalid value: [{"key":"k0","valueExpression":"'v'"},"#
            ) && got[0].ends_with("]: must not have more than 20 auditAnnotations"),
            "{got:?}"
        );
    }

    #[test]
    fn policy_updates_and_status() {
        let s = ValidatingAdmissionPolicyStrategy;
        let old = policy(json!({"matchConditions": [{"name": "m", "expression": "a +"}]}));
        let mut new = old.clone();
        new["spec"]["validations"][0]["message"] = json!("changed");
        assert!(s.validate_update(&new, &old).is_empty());
        new["spec"]["paramKind"] = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert_eq!(s.validate_update(&new, &old).len(), 1);

        let mut status = old.clone();
        status["status"] = json!({
            "typeChecking": {"expressionWarnings": [{"fieldRef": "", "warning": "w"}]},
            "conditions": [
                {"type": "Ready", "status": "Maybe", "reason": "1bad",
                 "lastTransitionTime": "2024-01-01T00:00:00Z", "observedGeneration": -1},
                {"type": "Ready", "status": "True", "reason": "Ok"},
            ],
        });
        assert_eq!(
            msgs(s.validate_subresource_update("status", &status, &old)),
            [
                "status.typeChecking.expressionWarnings[0].fieldRef: Required value",
                r#"status.conditions[0].status: Unsupported value: "Maybe": supported values: "False", "True", "Unknown""#,
                "status.conditions[0].observedGeneration: Invalid value: -1: must be greater than or equal to zero",
                r#"status.conditions[0].reason: Invalid value: "1bad": a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName',  or 'ReasonA,ReasonB',  or 'ReasonA:ReasonB', regex used for validation is '[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?')"#,
                r#"status.conditions[1].type: Duplicate value: "Ready""#,
                "status.conditions[1].lastTransitionTime: Required value: must be set",
            ]
        );
    }

    #[test]
    fn binding_validation_matches_upstream() {
        let s = ValidatingAdmissionPolicyBindingStrategy;
        let ok = json!({"spec": {"policyName": "p", "validationActions": ["Deny", "Audit"],
            "paramRef": {"name": "cm", "parameterNotFoundAction": "Allow"}}});
        assert!(s.validate(&ok).is_empty());
        let cases: &[(Value, &[&str])] = &[
            (
                json!({}),
                &[
                    "spec.policyName: Required value",
                    "spec.validationActions: Required value: at least one validation action is required",
                ],
            ),
            (
                json!({"policyName": "P", "validationActions": ["Deny", "Warn", "Deny", "Log"]}),
                &[
                    r#"spec.policyName: Invalid value: "P": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                    r#"spec.validationActions[2]: Duplicate value: "Deny""#,
                    r#"spec.validationActions[3]: Unsupported value: "Log": supported values: "Audit", "Deny", "Warn""#,
                    r#"spec.validationActions: Invalid value: ["Deny","Warn","Deny","Log"]: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"#,
                ],
            ),
            (
                json!({"policyName": "p", "validationActions": ["Warn"],
                    "paramRef": {"name": "a", "selector": {}, "parameterNotFoundAction": "Skip"}}),
                &[
                    "spec.paramRef.name: Forbidden: name and selector are mutually exclusive",
                    "spec.paramRef.selector: Forbidden: name and selector are mutually exclusive",
                    r#"spec.paramRef.parameterNotFoundAction: Unsupported value: "Skip": supported values: "Deny", "Allow""#,
                ],
            ),
            (
                json!({"policyName": "p", "validationActions": ["Audit"], "paramRef": {}}),
                &[
                    "spec.paramRef: Required value: one of name or selector must be specified",
                    "spec.paramRef.parameterNotFoundAction: Required value",
                ],
            ),
            (
                json!({"policyName": "p", "validationActions": ["Audit"],
                    "matchResources": {"resourceRules": [{"operations": ["CREATE"]}]}}),
                &[
                    "spec.matchResources.resourceRules[0].apiGroups: Required value",
                    "spec.matchResources.resourceRules[0].apiVersions: Required value",
                    "spec.matchResources.resourceRules[0].resources: Required value",
                ],
            ),
        ];
        for (spec, want) in cases {
            let mut b = json!({"spec": spec});
            s.default(&mut b);
            let got = msgs(s.validate(&b));
            let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            want.sort();
            let mut sorted = got.clone();
            sorted.sort();
            assert_eq!(sorted, want, "{spec}: {got:#?}");
        }
    }

    #[test]
    fn cel_parser_limits() {
        let detail = rkube_api::cel::compile_error;
        assert_eq!(detail("a.?b.orValue(1) > 0 && [1].all(x, x > 0)"), None);
        assert_eq!(
            detail(&format!("{}1{}", "(".repeat(90), ")".repeat(90))),
            None
        );
        assert_eq!(
            detail(&format!("{}1{}", "(".repeat(200), ")".repeat(200))).as_deref(),
            Some("ERROR: <input>:-1:0: expression recursion limit exceeded: 96")
        );
        // Inputs that panic the parser, or need far more stack than a request thread has.
        let ternaries = format!("{}1", "true ? 1 : ".repeat(120));
        assert!(detail(&ternaries).is_some());
        assert_eq!(
            detail(&format!("a{}", ".b".repeat(40_000))).as_deref(),
            Some("ERROR: <input>:-1:0: expression recursion limit exceeded: 250")
        );
        let long = "1".repeat(100_001);
        assert_eq!(
            detail(&long).as_deref(),
            Some(
                "ERROR: <input>:-1:0: expression code point size exceeds limit: size: 100001, limit 100000"
            )
        );
    }
}
