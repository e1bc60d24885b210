//! Query parameters and `DeleteOptions` bodies decoded into the registry's option types, with
//! upstream's checks and messages: values that do not decode are `400 BadRequest` (upstream's
//! parameter codec), values that decode but break a rule are `422 Invalid` on
//! `<X>Options.meta.k8s.io` (upstream's `ValidateCreateOptions` and friends).

use rkube_api::field::{BadValue, FieldError, Path};
use rkube_api::resources::GroupKind;
use rkube_api::selector::{FieldSelector, LabelSelector};
use rkube_api::status::ApiError;

use crate::response::Failure;
use rkube_registry::rest::{
    CreateOptions, DeleteOptions, FieldValidation, GetOptions, ListOptions, PatchOptions,
    PatchType, UpdateOptions,
};
use serde::Deserialize;

use crate::request_info::go_list_bool;

/// The decoded query string of one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// From decoded pairs.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Query(pairs)
    }

    /// The first value of `key` (upstream decodes only the first of repeated scalars).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in order (what connect subresources pass on).
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean parameter as upstream decodes it.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(go_list_bool)
    }

    /// An integer parameter; a bad number is upstream's `strconv.ParseInt` error as a 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>, Failure> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => parse_int(v)
                .map(Some)
                .map_err(|e| ApiError::bad_request(e).into()),
        }
    }
}

/// Go's `strconv.ParseInt(v, 10, 64)` with its error text.
fn parse_int(v: &str) -> Result<i64, String> {
    v.parse::<i64>().map_err(|_| {
        let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
        let why = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        // JSON quoting matches Go's %q for the characters a number string holds.
        format!(
            "strconv.ParseInt: parsing {}: {why}",
            serde_json::Value::from(v)
        )
    })
}

/// `meta.k8s.io` kinds of the options a 422 names.
fn options_kind(kind: &'static str) -> GroupKind<'static> {
    GroupKind::new("meta.k8s.io", kind)
}

fn invalid(kind: &'static str, errs: &[FieldError]) -> Result<(), Failure> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(options_kind(kind), "", errs).into())
    }
}

/// `dryRun`: only `All` exists.
fn dry_run(values: &[String], errs: &mut Vec<FieldError>) -> bool {
    if values.iter().any(|v| v != "All") {
        let bad = serde_json::Value::from(values.to_vec());
        errs.push(FieldError::not_supported(
            &Path::new("dryRun"),
            BadValue::Json(bad),
            &["All"],
        ));
    }
    !values.is_empty()
}

/// `fieldValidation`; empty means upstream's default, Warn.
fn field_validation(value: Option<&str>, errs: &mut Vec<FieldError>) -> FieldValidation {
    match value.unwrap_or("") {
        "" | "Warn" => FieldValidation::Warn,
        "Ignore" => FieldValidation::Ignore,
        "Strict" => FieldValidation::Strict,
        other => {
            errs.push(FieldError::not_supported(
                &Path::new("fieldValidation"),
                other,
                &["", "Ignore", "Strict", "Warn"],
            ));
            FieldValidation::Warn
        }
    }
}

/// Upstream's limit on `fieldManager`.
const FIELD_MANAGER_MAX_LENGTH: i64 = 128;

/// `fieldManager`: at most 128 bytes, printable characters only.
fn field_manager(value: Option<&str>, errs: &mut Vec<FieldError>) -> Option<String> {
    let value = value.filter(|v| !v.is_empty())?;
    let path = Path::new("fieldManager");
    if value.len() as i64 > FIELD_MANAGER_MAX_LENGTH {
        errs.push(FieldError::too_long(&path, FIELD_MANAGER_MAX_LENGTH));
    }
    for (i, c) in value.char_indices() {
        if c.is_control() {
            errs.push(FieldError::invalid(
                &path,
                value,
                format!("invalid character U+{:04X} (at position {i})", u32::from(c)),
            ));
        }
    }
    Some(value.to_owned())
}

fn dry_run_values(q: &Query) -> Vec<String> {
    q.all("dryRun").into_iter().map(str::to_owned).collect()
}

/// `CreateOptions` from the query.
pub(crate) fn create_options(q: &Query) -> Result<CreateOptions, Failure> {
    let mut errs = Vec::new();
    let field_manager = field_manager(q.get("fieldManager"), &mut errs);
    let dry_run = dry_run(&dry_run_values(q), &mut errs);
    let field_validation = field_validation(q.get("fieldValidation"), &mut errs);
    invalid("CreateOptions", &errs)?;
    Ok(CreateOptions {
        dry_run,
        field_manager,
        field_validation,
        user_agent: None,
        admission: Default::default(),
        user: None,
    })
}

/// `UpdateOptions` from the query.
pub(crate) fn update_options(q: &Query) -> Result<UpdateOptions, Failure> {
    let mut errs = Vec::new();
    let field_manager = field_manager(q.get("fieldManager"), &mut errs);
    let dry_run = dry_run(&dry_run_values(q), &mut errs);
    let field_validation = field_validation(q.get("fieldValidation"), &mut errs);
    invalid("UpdateOptions", &errs)?;
    Ok(UpdateOptions {
        dry_run,
        field_manager,
        field_validation,
        user_agent: None,
        admission: Default::default(),
    })
}

/// `PatchOptions` from the query; `force` only with apply, and apply needs a field manager.
pub(crate) fn patch_options(q: &Query, patch_type: PatchType) -> Result<PatchOptions, Failure> {
    let mut errs = Vec::new();
    let force = q.get("force");
    if patch_type == PatchType::Apply {
        if q.get("fieldManager").is_none_or(str::is_empty) {
            errs.push(FieldError::required(
                &Path::new("fieldManager"),
                "is required for apply patch",
            ));
        }
    } else if force.is_some() {
        errs.push(FieldError::forbidden(
            &Path::new("force"),
            "may not be specified for non-apply patch",
        ));
    }
    let field_manager = field_manager(q.get("fieldManager"), &mut errs);
    let dry_run = dry_run(&dry_run_values(q), &mut errs);
    let field_validation = field_validation(q.get("fieldValidation"), &mut errs);
    invalid("PatchOptions", &errs)?;
    Ok(PatchOptions {
        dry_run,
        field_manager,
        force: force.is_some_and(go_list_bool),
        field_validation,
        ..PatchOptions::default()
    })
}

/// `GetOptions` from the query.
pub(crate) fn get_options(q: &Query) -> GetOptions {
    GetOptions {
        resource_version: q.get("resourceVersion").unwrap_or("").to_owned(),
    }
}

/// `ListOptions` from the query of a list (`watch` false) or watch; `name` is the object a
/// single-object watch is about (it becomes a `metadata.name` field selector, as upstream).
pub(crate) fn list_options(
    q: &Query,
    watch: bool,
    name: Option<&str>,
) -> Result<ListOptions, Failure> {
    let label_selector = q.get("labelSelector").filter(|s| !s.is_empty());
    if let Some(s) = label_selector {
        LabelSelector::parse(s).map_err(|e| Failure::from(ApiError::bad_request(e.to_string())))?;
    }
    let mut field_selector = q
        .get("fieldSelector")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    if let Some(s) = &field_selector {
        let parsed = FieldSelector::parse(s)
            .map_err(|e| Failure::from(ApiError::bad_request(e.to_string())))?;
        if let Some(name) = name
            && parsed.requires_exact_match("metadata.name") != Some(name)
        {
            return Err(ApiError::bad_request(
                "fieldSelector metadata.name doesn't match requested name",
            )
            .into());
        }
    } else if let Some(name) = name {
        field_selector = Some(format!(
            "metadata.name={}",
            rkube_api::selector::escape_field_value(name)
        ));
    }
    let options = ListOptions {
        label_selector: label_selector.map(str::to_owned),
        field_selector,
        limit: q.int("limit")?,
        continue_token: q
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        resource_version: q.get("resourceVersion").unwrap_or("").to_owned(),
        resource_version_match: q.get("resourceVersionMatch").unwrap_or("").to_owned(),
        allow_watch_bookmarks: q.flag("allowWatchBookmarks"),
        send_initial_events: q.get("sendInitialEvents").map(go_list_bool),
        timeout_seconds: q.int("timeoutSeconds")?,
    };
    invalid("ListOptions", &validate_list_options(&options, watch))?;
    Ok(options)
}

const NOT_OLDER_THAN: &str = "NotOlderThan";
const EXACT: &str = "Exact";

/// Upstream's `ValidateListOptions` (with the WatchList feature on, as in 1.34).
fn validate_list_options(o: &ListOptions, watch: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rvm = Path::new("resourceVersionMatch");
    let matching = o.resource_version_match.as_str();
    if watch {
        if o.send_initial_events.is_some() && matching != NOT_OLDER_THAN {
            errs.push(FieldError::forbidden(
                &rvm,
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !matching.is_empty() {
            if o.send_initial_events.is_none() {
                errs.push(FieldError::forbidden(
                    &rvm,
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if matching != NOT_OLDER_THAN {
                errs.push(FieldError::not_supported(&rvm, matching, &[NOT_OLDER_THAN]));
            }
            if o.continue_token.is_some() {
                errs.push(FieldError::forbidden(
                    &rvm,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
        return errs;
    }
    if !matching.is_empty() {
        if o.resource_version.is_empty() {
            errs.push(FieldError::forbidden(
                &rvm,
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if o.continue_token.is_some() {
            errs.push(FieldError::forbidden(
                &rvm,
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if matching != EXACT && matching != NOT_OLDER_THAN {
            errs.push(FieldError::not_supported(
                &rvm,
                matching,
                &[EXACT, NOT_OLDER_THAN, ""],
            ));
        }
        if matching == EXACT && o.resource_version == "0" {
            errs.push(FieldError::forbidden(
                &rvm,
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if o.send_initial_events.is_some() {
        errs.push(FieldError::forbidden(
            &Path::new("sendInitialEvents"),
            "sendInitialEvents is forbidden for list",
        ));
    }
    errs
}

/// `metav1.DeleteOptions` as a body carries it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteBody {
    kind: Option<String>,
    grace_period_seconds: Option<i64>,
    preconditions: Option<PreconditionsBody>,
    orphan_dependents: Option<bool>,
    propagation_policy: Option<String>,
    #[serde(default)]
    dry_run: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PreconditionsBody {
    uid: Option<String>,
    resource_version: Option<String>,
}

/// `DeleteOptions` from the body when there is one, else from the query (upstream reads one or
/// the other, never both). The second value is the deprecated `orphanDependents`, which decides
/// between 200 and 202 for a delete that did not finish at once.
pub(crate) fn delete_options(
    q: &Query,
    body: Option<serde_json::Value>,
) -> Result<(DeleteOptions, Option<bool>), Failure> {
    let parsed = match body {
        Some(body) => {
            let parsed: DeleteBody = serde_json::from_value(body)
                .map_err(|e| Failure::from(ApiError::bad_request(e.to_string())))?;
            if parsed.kind.as_deref().is_some_and(|k| k != "DeleteOptions") {
                return Err(ApiError::bad_request(
                    "decoded object cannot be converted to DeleteOptions",
                )
                .into());
            }
            parsed
        }
        None => DeleteBody {
            kind: None,
            grace_period_seconds: q.int("gracePeriodSeconds")?,
            preconditions: None,
            orphan_dependents: q.get("orphanDependents").map(go_list_bool),
            propagation_policy: q.get("propagationPolicy").map(str::to_owned),
            dry_run: dry_run_values(q),
        },
    };
    let mut errs = Vec::new();
    let policy_path = Path::new("propagationPolicy");
    if let (Some(_), Some(policy)) = (parsed.orphan_dependents, &parsed.propagation_policy) {
        errs.push(FieldError::invalid(
            &policy_path,
            policy.as_str(),
            "orphanDependents and deletionPropagation cannot be both set",
        ));
    }
    if let Some(policy) = &parsed.propagation_policy
        && !matches!(policy.as_str(), "Foreground" | "Background" | "Orphan")
    {
        errs.push(FieldError::not_supported(
            &policy_path,
            policy.as_str(),
            &["Foreground", "Background", "Orphan", "nil"],
        ));
    }
    let dry_run = dry_run(&parsed.dry_run, &mut errs);
    invalid("DeleteOptions", &errs)?;
    let propagation_policy = parsed.propagation_policy.or_else(|| {
        parsed
            .orphan_dependents
            .map(|orphan| if orphan { "Orphan" } else { "Background" }.to_owned())
    });
    let pre = parsed.preconditions.unwrap_or_default();
    Ok((
        DeleteOptions {
            dry_run,
            grace_period_seconds: parsed.grace_period_seconds,
            precondition_uid: pre.uid,
            precondition_resource_version: pre.resource_version,
            propagation_policy,
            admission: Default::default(),
        },
        parsed.orphan_dependents,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Query {
        Query::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn message(r: Result<impl std::fmt::Debug, Failure>) -> (u16, String) {
        let e = r.expect_err("an error");
        (e.code(), e.message().to_owned())
    }

    #[test]
    fn bad_numbers_are_go_parse_errors() {
        assert_eq!(
            message(list_options(&q(&[("limit", "abc")]), false, None)),
            (
                400,
                r#"strconv.ParseInt: parsing "abc": invalid syntax"#.to_owned()
            )
        );
        assert_eq!(
            message(list_options(
                &q(&[("timeoutSeconds", "99999999999999999999")]),
                true,
                None
            )),
            (
                400,
                r#"strconv.ParseInt: parsing "99999999999999999999": value out of range"#
                    .to_owned()
            )
        );
        let ok = list_options(&q(&[("limit", "5"), ("timeoutSeconds", "7")]), false, None)
            .expect("valid");
        assert_eq!((ok.limit, ok.timeout_seconds), (Some(5), Some(7)));
    }

    #[test]
    fn dry_run_and_field_validation_are_validated() {
        assert_eq!(
            message(create_options(&q(&[("dryRun", "foo")]))),
            (
                422,
                r#"CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ["foo"]: supported values: "All""#
                    .to_owned()
            )
        );
        assert_eq!(
            message(update_options(&q(&[("fieldValidation", "Loud")]))),
            (
                422,
                r#"UpdateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loud": supported values: "", "Ignore", "Strict", "Warn""#
                    .to_owned()
            )
        );
        let o =
            create_options(&q(&[("dryRun", "All"), ("fieldValidation", "Strict")])).expect("valid");
        assert!(o.dry_run);
        assert_eq!(o.field_validation, FieldValidation::Strict);
        assert_eq!(
            message(patch_options(&q(&[]), PatchType::Apply)).1,
            r#"PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch"#
        );
        assert_eq!(
            message(patch_options(&q(&[("force", "true")]), PatchType::Merge)).1,
            r#"PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch"#
        );
    }

    #[test]
    fn list_option_rules() {
        assert_eq!(
            message(list_options(
                &q(&[("resourceVersionMatch", "Exact")]),
                false,
                None
            ))
            .1,
            r#"ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"#
        );
        assert_eq!(
            message(list_options(
                &q(&[("sendInitialEvents", "true")]),
                true,
                None
            ))
            .1,
            r#"ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"#
        );
        let o = list_options(
            &q(&[
                ("sendInitialEvents", "true"),
                ("resourceVersionMatch", "NotOlderThan"),
                ("allowWatchBookmarks", "true"),
            ]),
            true,
            Some("x"),
        )
        .expect("valid");
        assert_eq!(o.send_initial_events, Some(true));
        assert_eq!(o.field_selector.as_deref(), Some("metadata.name=x"));
        assert_eq!(
            message(list_options(
                &q(&[("fieldSelector", "metadata.name=y")]),
                true,
                Some("x")
            ))
            .1,
            "fieldSelector metadata.name doesn't match requested name"
        );
        assert_eq!(
            message(list_options(
                &q(&[("labelSelector", "a in (")]),
                false,
                None
            ))
            .0,
            400
        );
    }

    #[test]
    fn delete_options_from_body_or_query() {
        let (o, orphan) = delete_options(
            &q(&[("gracePeriodSeconds", "9")]),
            Some(serde_json::json!({
                "kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                "preconditions": {"uid": "u"}, "propagationPolicy": "Foreground"
            })),
        )
        .expect("valid");
        assert_eq!(o.grace_period_seconds, Some(0));
        assert_eq!(o.precondition_uid.as_deref(), Some("u"));
        assert_eq!(o.propagation_policy.as_deref(), Some("Foreground"));
        assert_eq!(orphan, None);
        let (o, orphan) = delete_options(
            &q(&[("orphanDependents", "false"), ("dryRun", "All")]),
            None,
        )
        .expect("valid");
        assert_eq!(o.propagation_policy.as_deref(), Some("Background"));
        assert!(o.dry_run);
        assert_eq!(orphan, Some(false));
        assert_eq!(
            message(delete_options(&q(&[("propagationPolicy", "Now")]), None)).1,
            r#"DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Now": supported values: "Foreground", "Background", "Orphan", "nil""#
        );
    }
}
