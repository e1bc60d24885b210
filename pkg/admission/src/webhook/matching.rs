//! Upstream's webhook (and policy) matching: rules, namespaceSelector, objectSelector.

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use rkube_api::selector::LabelSelector;
use serde_json::Value;

use crate::attributes::Attributes;

use super::labels;

fn contains(list: &Value, want: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|v| v == "*" || v.as_str() == Some(want)))
}

/// One `resources` entry against the request's resource and subresource: `*` (every
/// resource, no subresource), `*/*`, `pods`, `pods/*`, `*/status`, `pods/status`.
fn resource_matches(entry: &str, resource: &str, sub: &str) -> bool {
    let (r, s) = entry.split_once('/').unwrap_or((entry, ""));
    let resource_ok = r == "*" || r == resource;
    let sub_ok = if entry.contains('/') {
        s == "*" || s == sub
    } else {
        sub.is_empty()
    };
    resource_ok && sub_ok
}

/// Whether one of `rules` (`RuleWithOperations` or, for policies, `NamedRuleWithOperations`)
/// matches.
pub fn rules_match(rules: &Value, attrs: &Attributes) -> bool {
    rules
        .as_array()
        .into_iter()
        .flatten()
        .any(|rule| rule_matches(rule, attrs))
}

/// Whether one rule matches `attrs`.
pub fn rule_matches(rule: &Value, attrs: &Attributes) -> bool {
    let scope_ok = match rule["scope"].as_str().unwrap_or("*") {
        "Cluster" => attrs.namespace.is_empty() || attrs.kind.is_core("Namespace"),
        "Namespaced" => !attrs.namespace.is_empty() && !attrs.kind.is_core("Namespace"),
        _ => true,
    };
    let names_ok = rule["resourceNames"]
        .as_array()
        .is_none_or(|n| n.is_empty() || n.iter().any(|v| v.as_str() == Some(attrs.name.as_str())));
    scope_ok
        && names_ok
        && contains(&rule["operations"], attrs.op().as_str())
        && contains(&rule["apiGroups"], &attrs.resource.group)
        && contains(&rule["apiVersions"], &attrs.resource.version)
        && rule["resources"].as_array().is_some_and(|rs| {
            rs.iter()
                .filter_map(Value::as_str)
                .any(|e| resource_matches(e, &attrs.resource.name, &attrs.subresource))
        })
}

fn selector(value: &Value) -> Option<LabelSelector> {
    if value.is_null() {
        return Some(LabelSelector::everything());
    }
    let parsed: metav1::LabelSelector = serde_json::from_value(value.clone()).ok()?;
    LabelSelector::from_label_selector(Some(&parsed)).ok()
}

/// `objectSelector`: the object's or the old object's labels match (an unparsable selector
/// matches nothing).
pub fn object_selector_matches(value: &Value, attrs: &Attributes) -> bool {
    let Some(selector) = selector(value) else {
        return false;
    };
    selector.is_empty()
        || [attrs.object.as_ref(), attrs.old_object.as_ref()]
            .into_iter()
            .flatten()
            .any(|o| selector.matches(&labels(Some(o))))
}

/// `namespaceSelector`: cluster-scoped requests always match, except namespaces themselves,
/// which are matched by their own labels; namespaced ones by their namespace's labels.
pub fn namespace_selector_matches(
    value: &Value,
    attrs: &Attributes,
    namespace: Option<&Value>,
) -> bool {
    let Some(selector) = selector(value) else {
        return false;
    };
    if selector.is_empty() {
        return true;
    }
    if attrs.kind.is_core("Namespace") {
        let own = attrs.object.as_ref().or(attrs.old_object.as_ref());
        return selector.matches(&labels(own));
    }
    if attrs.namespace.is_empty() {
        return true;
    }
    selector.matches(&labels(namespace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::Operation;
    use crate::testing::attrs;
    use serde_json::json;

    #[test]
    fn rules_match_operations_groups_and_subresources() {
        let rule = json!({"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]});
        let mut a = attrs(Operation::Create, "", "pods", "Pod", "ns", Some(json!({})));
        assert!(rule_matches(&rule, &a));
        a.subresource = "status".into();
        assert!(!rule_matches(&rule, &a));
        let status = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/status"]});
        assert!(rule_matches(&status, &a));
        a.operation = Some(Operation::Update);
        assert!(!rule_matches(&rule, &a));
        let cluster = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "scope": "Cluster"});
        a.subresource.clear();
        assert!(!rule_matches(&cluster, &a));
    }

    #[test]
    fn selectors_read_labels() {
        let a = attrs(
            Operation::Create,
            "",
            "pods",
            "Pod",
            "ns",
            Some(json!({"metadata": {"labels": {"app": "web"}}})),
        );
        assert!(object_selector_matches(
            &json!({"matchLabels": {"app": "web"}}),
            &a
        ));
        assert!(!object_selector_matches(
            &json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}),
            &a
        ));
        let ns = json!({"metadata": {"labels": {"team": "a"}}});
        assert!(namespace_selector_matches(
            &json!({"matchLabels": {"team": "a"}}),
            &a,
            Some(&ns)
        ));
        assert!(!namespace_selector_matches(
            &json!({"matchLabels": {"team": "b"}}),
            &a,
            Some(&ns)
        ));
    }
}
