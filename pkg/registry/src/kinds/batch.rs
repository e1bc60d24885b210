//! Jobs and CronJobs (`pkg/registry/batch/{job,cronjob}`, `pkg/apis/batch/v1/defaults.go`,
//! `pkg/apis/batch/validation`).

use rkube_api::field::{FieldError, Path};
use rkube_api::k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec};
use rkube_api::selector::LabelSelector;
use serde_json::{Map, Value, json};

use super::common::{
    child_map, clear_status, decode_or_errors, default_field, default_if_empty, ensure_map,
    enum_value, immutable, keep_status, map_mut, non_negative,
};
use super::pod::{default_pod_spec, restart_policy_error, validate_pod_spec};
use crate::Strategy;

const JOB_RESTART: &[&str] = &["OnFailure", "Never"];
const CONCURRENCY: &[&str] = &["Allow", "Forbid", "Replace"];

/// `SetDefaults_Job` on a job spec, template included.
fn default_job_spec(spec: &mut Map<String, Value>) {
    let unset = |s: &Map<String, Value>, k: &str| s.get(k).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), 1.into());
    }
    default_field(spec, "parallelism", 1);
    let per_index = !unset(spec, "backoffLimitPerIndex");
    default_field(spec, "backoffLimit", if per_index { i32::MAX } else { 6 });
    default_if_empty(spec, "completionMode", "NonIndexed");
    default_field(spec, "suspend", false);
    let policy = if unset(spec, "podFailurePolicy") {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    default_field(spec, "podReplacementPolicy", policy);
    if let Some(pod) = child_map(spec, "template").and_then(|t| child_map(t, "spec")) {
        default_pod_spec(pod);
    }
}

/// `ValidateJobSpec`'s main rules at `path`.
fn validate_job_spec(spec: &JobSpec, path: &Path, selector_set: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (key, value) in [
        ("parallelism", spec.parallelism),
        ("completions", spec.completions),
        ("backoffLimit", spec.backoff_limit),
    ] {
        if let Some(v) = value {
            errs.extend(non_negative(v.into(), &path.child(key)));
        }
    }
    let tpl = path.child("template");
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if selector_set {
        match &spec.selector {
            None => errs.push(FieldError::required(&path.child("selector"), "")),
            Some(s) => {
                if let Ok(sel) = LabelSelector::from_label_selector(Some(s))
                    && !sel.is_empty()
                    && !sel.matches(&labels)
                {
                    errs.push(FieldError::invalid(
                        &tpl.child("metadata").child("labels"),
                        json!(labels),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        }
    }
    let pod = spec.template.spec.clone().unwrap_or_default();
    errs.extend(validate_pod_spec(&pod, &tpl.child("spec")));
    errs.extend(restart_policy_error(
        &pod,
        JOB_RESTART,
        &tpl.child("spec").child("restartPolicy"),
    ));
    errs
}

/// The Job strategy.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobStrategy;

const JOB_FIELDS: &[&str] = &["status.successful"];

impl Strategy for JobStrategy {
    fn default(&self, object: &mut Value) {
        if let Some(spec) = map_mut(object, "spec") {
            default_job_spec(spec);
        }
    }

    /// Clears status and, unless the client chose its own selector, generates one from the
    /// uid (`generateSelector`), labelling the template to match. Needs `metadata.uid`, so the
    /// registry fills system fields first.
    fn prepare_for_create(&self, object: &mut Value) {
        clear_status(object);
        let manual = object.pointer("/spec/manualSelector") == Some(&Value::Bool(true));
        let Some(uid) = rkube_api::meta::uid(object).map(str::to_owned) else {
            return;
        };
        let name = rkube_api::meta::name(object).unwrap_or_default().to_owned();
        let Some(spec) = map_mut(object, "spec") else {
            return;
        };
        if manual {
            return;
        }
        let labels = [
            ("batch.kubernetes.io/controller-uid", uid.as_str()),
            ("batch.kubernetes.io/job-name", name.as_str()),
            ("controller-uid", uid.as_str()),
            ("job-name", name.as_str()),
        ];
        if let Some(meta) = ensure_map(spec, "template").and_then(|t| ensure_map(t, "metadata"))
            && let Some(l) = ensure_map(meta, "labels")
        {
            for (k, v) in labels {
                l.entry(k).or_insert_with(|| v.into());
            }
        }
        if spec.get("selector").is_none_or(Value::is_null) {
            spec.insert(
                "selector".into(),
                json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
            );
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        match decode_or_errors::<Job>(object) {
            Ok(job) => validate_job_spec(&job.spec.unwrap_or_default(), &Path::new("spec"), true),
            Err(errs) => errs,
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let (Ok(n), Ok(o)) = (decode_or_errors::<Job>(new), decode_or_errors::<Job>(old)) else {
            return errs;
        };
        let (n, o) = (n.spec.unwrap_or_default(), o.spec.unwrap_or_default());
        let path = Path::new("spec");
        errs.extend(immutable(&n.selector, &o.selector, &path.child("selector")));
        errs.extend(immutable(
            &n.completions,
            &o.completions,
            &path.child("completions"),
        ));
        errs.extend(immutable(
            &n.completion_mode,
            &o.completion_mode,
            &path.child("completionMode"),
        ));
        // A suspended job that never started may change its pod template's scheduling
        // directives; otherwise the template is fixed.
        if o.suspend != Some(true) {
            errs.extend(immutable(&n.template, &o.template, &path.child("template")));
        }
        errs
    }

    fn has_status_subresource(&self) -> bool {
        true
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        JOB_FIELDS
    }

    fn field_value(&self, object: &Value, field: &str) -> Option<String> {
        (field == "status.successful").then(|| {
            let n = object.pointer("/status/succeeded").and_then(Value::as_i64);
            n.unwrap_or(0).to_string()
        })
    }
}

/// The CronJob strategy.
#[derive(Debug, Clone, Copy, Default)]
pub struct CronJobStrategy;

impl Strategy for CronJobStrategy {
    fn default(&self, object: &mut Value) {
        let Some(spec) = map_mut(object, "spec") else {
            return;
        };
        default_if_empty(spec, "concurrencyPolicy", "Allow");
        default_field(spec, "suspend", false);
        default_field(spec, "successfulJobsHistoryLimit", 3);
        default_field(spec, "failedJobsHistoryLimit", 1);
        if let Some(job) = child_map(spec, "jobTemplate").and_then(|t| child_map(t, "spec")) {
            default_job_spec(job);
        }
    }

    fn prepare_for_create(&self, object: &mut Value) {
        clear_status(object);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, object: &Value) -> Vec<FieldError> {
        let cj = match decode_or_errors::<CronJob>(object) {
            Ok(cj) => cj,
            Err(errs) => return errs,
        };
        let spec = cj.spec.unwrap_or_default();
        let path = Path::new("spec");
        let mut errs = Vec::new();
        let sched = path.child("schedule");
        if spec.schedule.is_empty() {
            errs.push(FieldError::required(&sched, ""));
        } else if let Some(msg) = schedule_error(&spec.schedule) {
            errs.push(FieldError::invalid(&sched, spec.schedule.as_str(), msg));
        }
        errs.extend(enum_value(
            spec.concurrency_policy.as_deref().unwrap_or_default(),
            CONCURRENCY,
            &path.child("concurrencyPolicy"),
        ));
        for (key, value) in [
            (
                "successfulJobsHistoryLimit",
                spec.successful_jobs_history_limit,
            ),
            ("failedJobsHistoryLimit", spec.failed_jobs_history_limit),
        ] {
            if let Some(v) = value {
                errs.extend(non_negative(v.into(), &path.child(key)));
            }
        }
        let job = spec.job_template.spec.unwrap_or_default();
        errs.extend(validate_job_spec(
            &job,
            &path.child("jobTemplate").child("spec"),
            false,
        ));
        errs
    }

    fn has_status_subresource(&self) -> bool {
        true
    }
}

/// The shape check of a cron schedule (robfig/cron's standard parser): five fields or a
/// `@` descriptor, optionally after `TZ=`/`CRON_TZ=`.
fn schedule_error(schedule: &str) -> Option<String> {
    let s = schedule.trim();
    let s = match s.strip_prefix("TZ=").or_else(|| s.strip_prefix("CRON_TZ=")) {
        Some(rest) => rest.split_once(' ').map_or("", |(_, r)| r.trim()),
        None => s,
    };
    if let Some(d) = s.strip_prefix('@') {
        let known = [
            "yearly", "annually", "monthly", "weekly", "daily", "midnight", "hourly",
        ];
        return (!known.contains(&d) && !d.starts_with("every "))
            .then(|| format!("unrecognized descriptor: {s}"));
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    (fields.len() != 5).then(|| {
        format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.to_string()).collect()
    }

    fn job(restart: &str) -> Value {
        json!({"metadata": {"name": "j", "uid": "u-1"}, "spec": {"template": {"spec": {
            "restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]}}}})
    }

    #[test]
    fn job_defaults_and_selector() {
        let s = JobStrategy;
        let mut j = job("Never");
        s.default(&mut j);
        s.prepare_for_create(&mut j);
        let spec = &j["spec"];
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );
        assert_eq!(
            spec["template"]["metadata"]["labels"],
            json!({"batch.kubernetes.io/controller-uid": "u-1",
                   "batch.kubernetes.io/job-name": "j",
                   "controller-uid": "u-1", "job-name": "j"})
        );
        assert!(s.validate(&j).is_empty());
        assert_eq!(
            s.field_value(&json!({"status": {"succeeded": 2}}), "status.successful")
                .as_deref(),
            Some("2")
        );
    }

    #[test]
    fn job_rules() {
        let s = JobStrategy;
        // An unset restartPolicy defaults to Always, which jobs refuse.
        let mut j = job("");
        s.default(&mut j);
        s.prepare_for_create(&mut j);
        assert_eq!(
            msgs(s.validate(&j)),
            [
                r#"spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never""#
            ]
        );
        let mut old = job("Never");
        s.default(&mut old);
        s.prepare_for_create(&mut old);
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = "other".into();
        let errs = msgs(s.validate_update(&new, &old));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("spec.template: Invalid value: "));
        assert!(errs[0].ends_with(": field is immutable"));
    }

    #[test]
    fn cronjob_defaults_and_schedule() {
        let s = CronJobStrategy;
        let mut cj = json!({"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec":
            {"template": {"spec": {"restartPolicy": "OnFailure",
              "containers": [{"name": "c", "image": "busybox"}]}}}}}});
        s.default(&mut cj);
        assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
        assert_eq!(cj["spec"]["suspend"], false);
        assert!(s.validate(&cj).is_empty());
        cj["spec"]["schedule"] = "bad".into();
        assert_eq!(
            msgs(s.validate(&cj)),
            [r#"spec.schedule: Invalid value: "bad": expected exactly 5 fields, found 1: [bad]"#]
        );
        assert_eq!(schedule_error("@hourly"), None);
        assert_eq!(schedule_error("CRON_TZ=UTC 0 * * * *"), None);
    }
}
