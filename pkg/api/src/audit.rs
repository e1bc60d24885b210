//! [`AuditAnnotations`]: the annotations one request's audit event carries, added by the
//! layers a request passes (authorization's decision, admission plugins such as PodSecurity
//! and ValidatingAdmissionPolicy) and written by the audit layer when the event is logged.

use std::sync::{Arc, Mutex};

/// A request's audit annotations, shared by every layer that handles the request (a clone
/// adds to the same list). Upstream's `audit.AddAuditAnnotation`: the first value given for a
/// key wins and later ones are dropped.
#[derive(Debug, Default, Clone)]
pub struct AuditAnnotations(Arc<Mutex<Vec<(String, String)>>>);

impl AuditAnnotations {
    /// Records `key: value` unless `key` already has a value.
    pub fn add(&self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        if let Ok(mut list) = self.0.lock()
            && !list.iter().any(|(k, _)| *k == key)
        {
            list.push((key, value.into()));
        }
    }

    /// Everything recorded so far, in the order it was added.
    pub fn snapshot(&self) -> Vec<(String, String)> {
        self.0.lock().map(|list| list.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_list_and_the_first_value_wins() {
        let annotations = AuditAnnotations::default();
        let other = annotations.clone();
        annotations.add("authorization.k8s.io/decision", "allow");
        other.add("authorization.k8s.io/decision", "forbid");
        other.add(
            "pod-security.kubernetes.io/enforce-policy",
            "restricted:latest",
        );
        assert_eq!(
            annotations.snapshot(),
            vec![
                (
                    "authorization.k8s.io/decision".to_owned(),
                    "allow".to_owned()
                ),
                (
                    "pod-security.kubernetes.io/enforce-policy".to_owned(),
                    "restricted:latest".to_owned()
                ),
            ]
        );
    }
}
