//! The review APIs, create-only and never stored: TokenReview and SelfSubjectReview
//! (`authentication.k8s.io`), SubjectAccessReview, SelfSubjectAccessReview,
//! LocalSubjectAccessReview and SelfSubjectRulesReview (`authorization.k8s.io`). Each takes
//! the posted object and answers it with its `status` filled in.

use std::collections::BTreeMap;
use std::sync::Arc;

use rkube_api::field::{FieldError, Path};
use rkube_api::resources::GroupKind;
use rkube_api::selector::{FieldSelector, escape_field_value};
use rkube_api::status::ApiError;
use serde_json::{Value, json};

use crate::authn::{Audiences, BearerToken};
use crate::authz::{Attributes, Authorizer, Decision};
use crate::user::UserInfo;

/// Answers the review APIs with the server's token authenticators and authorizer.
#[derive(Debug, Clone)]
pub struct Reviewer {
    tokens: BearerToken,
    audiences: Vec<String>,
    authorizer: Arc<dyn Authorizer>,
}

/// The attributes a SubjectAccessReview spec asks about, owned.
#[derive(Debug)]
struct Asked {
    resource_request: bool,
    verb: String,
    group: String,
    version: String,
    resource: String,
    subresource: String,
    namespace: String,
    name: String,
    path: String,
    /// The `fieldSelector` of resourceAttributes; `Err` when it cannot be parsed (ignored then,
    /// and said in `evaluationError`, as upstream).
    field_selector: Result<Option<FieldSelector>, ()>,
}

impl Default for Asked {
    fn default() -> Self {
        Asked {
            resource_request: false,
            verb: String::new(),
            group: String::new(),
            version: String::new(),
            resource: String::new(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
            path: String::new(),
            field_selector: Ok(None),
        }
    }
}

/// Upstream's `FieldSelectorAttributes`: a `rawSelector`, or `requirements` of which `In` and
/// `NotIn` with one value (`=`, `!=`) are the ones fields support.
fn field_selector(attributes: &Value) -> Result<Option<FieldSelector>, ()> {
    let Some(selector) = attributes.get("fieldSelector").filter(|v| v.is_object()) else {
        return Ok(None);
    };
    let raw = text(selector, "rawSelector");
    if !raw.is_empty() {
        return FieldSelector::parse(&raw).map(Some).map_err(drop);
    }
    let mut terms = Vec::new();
    for requirement in selector["requirements"].as_array().into_iter().flatten() {
        let values = strings(requirement.get("values"));
        let operator = match (text(requirement, "operator").as_str(), values.as_slice()) {
            ("In", [_]) => "=",
            ("NotIn", [_]) => "!=",
            _ => return Err(()),
        };
        terms.push(format!(
            "{}{operator}{}",
            text(requirement, "key"),
            escape_field_value(&values[0])
        ));
    }
    if terms.is_empty() {
        return Ok(None);
    }
    FieldSelector::parse(&terms.join(","))
        .map(Some)
        .map_err(drop)
}

fn text(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Reviewer {
    /// Reviews tokens with `tokens` (accepted for `audiences`) and access with `authorizer`.
    pub fn new(tokens: BearerToken, audiences: &[&str], authorizer: Arc<dyn Authorizer>) -> Self {
        Reviewer {
            tokens,
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            authorizer,
        }
    }

    /// Whether `plural` in `group` is one of the review resources.
    pub fn serves(group: &str, plural: &str) -> bool {
        matches!(
            (group, plural),
            (
                "authentication.k8s.io",
                "tokenreviews" | "selfsubjectreviews"
            ) | (
                "authorization.k8s.io",
                "subjectaccessreviews"
                    | "selfsubjectaccessreviews"
                    | "localsubjectaccessreviews"
                    | "selfsubjectrulesreviews"
            )
        )
    }

    /// Answers a create of `plural` by `user` (in `namespace` for the namespaced
    /// LocalSubjectAccessReview) with `body`, the posted object.
    pub async fn review(
        &self,
        user: &UserInfo,
        plural: &str,
        namespace: &str,
        mut body: Value,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request("the request body must be an object"));
        }
        let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
        let status = match plural {
            "tokenreviews" => self.token_review(&spec).await?,
            "selfsubjectreviews" => json!({"userInfo": user_json(user)}),
            "subjectaccessreviews" => {
                let subject = subject_of(&spec);
                let asked = asked(&spec, "SubjectAccessReview", "")?;
                self.access(&subject, &asked)
            }
            "selfsubjectaccessreviews" => {
                let asked = asked(&spec, "SelfSubjectAccessReview", "")?;
                self.access(user, &asked)
            }
            "localsubjectaccessreviews" => {
                let subject = subject_of(&spec);
                let asked = asked(&spec, "LocalSubjectAccessReview", namespace)?;
                self.access(&subject, &asked)
            }
            "selfsubjectrulesreviews" => self.rules(user, &text(&spec, "namespace")),
            _ => {
                return Err(ApiError::internal(format!(
                    "{plural} is not a review resource"
                )));
            }
        };
        body["status"] = status;
        if !body.get("metadata").is_some_and(Value::is_object) {
            body["metadata"] = json!({});
        }
        if plural == "localsubjectaccessreviews" {
            body["metadata"]["namespace"] = namespace.into();
        }
        body["metadata"]["creationTimestamp"] = Value::Null;
        Ok(body)
    }

    /// Upstream's TokenReview: the token presented to `spec.audiences` (the API server's when
    /// none are given); the answer's audiences are those among them the token is valid for.
    async fn token_review(&self, spec: &Value) -> Result<Value, ApiError> {
        let token = text(spec, "token");
        if token.is_empty() {
            return Err(ApiError::bad_request(
                "token is required for TokenReview in authentication",
            ));
        }
        let wanted = strings(spec.get("audiences"));
        let targets = if wanted.is_empty() {
            &self.audiences
        } else {
            &wanted
        };
        let audiences = Audiences {
            implicit: &self.audiences,
            targets,
        };
        Ok(
            match self.tokens.authenticate_for(&token, audiences).await {
                Ok((mut user, audiences)) => {
                    if !user.in_group(crate::user::AUTHENTICATED_GROUP) {
                        user.groups
                            .push(crate::user::AUTHENTICATED_GROUP.to_owned());
                    }
                    let mut status = json!({"authenticated": true, "user": user_json(&user)});
                    if !audiences.is_empty() {
                        status["audiences"] = audiences.into();
                    }
                    status
                }
                Err(e) => json!({"user": {}, "error": e.to_string()}),
            },
        )
    }

    fn access(&self, user: &UserInfo, asked: &Asked) -> Value {
        let attributes = Attributes {
            user,
            verb: &asked.verb,
            resource_request: asked.resource_request,
            api_group: &asked.group,
            api_version: &asked.version,
            resource: &asked.resource,
            subresource: &asked.subresource,
            namespace: &asked.namespace,
            name: &asked.name,
            path: &asked.path,
            field_selector: asked.field_selector.as_ref().ok().and_then(Option::as_ref),
        };
        let decision = self.authorizer.authorize(&attributes);
        let mut status = json!({"allowed": decision.allowed()});
        if let Decision::Deny(_) = decision {
            status["denied"] = true.into();
        }
        if !decision.reason().is_empty() {
            status["reason"] = decision.reason().into();
        }
        if asked.field_selector.is_err() {
            status["evaluationError"] =
                "spec.resourceAttributes.fieldSelector ignored due to parse error".into();
        }
        status
    }

    fn rules(&self, user: &UserInfo, namespace: &str) -> Value {
        let found = self.authorizer.rules_for(user, namespace);
        let (mut resource, mut non_resource) = (Vec::new(), Vec::new());
        for rule in found.rules {
            if !rule.resources.is_empty() {
                resource.push(json!({
                    "verbs": rule.verbs,
                    "apiGroups": rule.api_groups,
                    "resources": rule.resources,
                    "resourceNames": (!rule.resource_names.is_empty()).then_some(&rule.resource_names),
                }));
            }
            if !rule.non_resource_urls.is_empty() {
                non_resource
                    .push(json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}));
            }
        }
        let mut status = json!({
            "resourceRules": resource,
            "nonResourceRules": non_resource,
            "incomplete": !found.errors.is_empty(),
        });
        if !found.errors.is_empty() {
            status["evaluationError"] = format!("[{}]", found.errors.join(", ")).into();
        }
        status
    }
}

/// A user as the review APIs show it (`username`, `uid`, `groups`, `extra`).
fn user_json(user: &UserInfo) -> Value {
    serde_json::to_value(user).unwrap_or_else(|_| json!({}))
}

/// The subject of a (Local)SubjectAccessReview.
fn subject_of(spec: &Value) -> UserInfo {
    let extra: BTreeMap<String, Vec<String>> = spec
        .get("extra")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), strings(Some(v))))
                .collect()
        })
        .unwrap_or_default();
    UserInfo {
        name: text(spec, "user"),
        uid: text(spec, "uid"),
        groups: strings(spec.get("groups")),
        extra,
    }
}

/// The attributes a spec asks about, validated as upstream's `ValidateSubjectAccessReviewSpec`.
fn asked(spec: &Value, kind: &str, namespace: &str) -> Result<Asked, ApiError> {
    let resource = spec.get("resourceAttributes").filter(|v| v.is_object());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| v.is_object());
    let path = Path::new("spec");
    let mut errs = Vec::new();
    match (resource, non_resource) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            &path.child("nonResourceAttributes"),
            "",
            "cannot be specified in combination with resourceAttributes",
        )),
        (None, None) => errs.push(FieldError::invalid(
            &path.child("resourceAttributes"),
            "null",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
        _ => {}
    }
    if kind != "SelfSubjectAccessReview"
        && text(spec, "user").is_empty()
        && strings(spec.get("groups")).is_empty()
    {
        errs.push(FieldError::required(
            &path.child("user"),
            "at least one of user or group must be specified",
        ));
    }
    if kind == "LocalSubjectAccessReview"
        && let Some(r) = resource
        && text(r, "namespace") != namespace
    {
        errs.push(FieldError::invalid(
            &path.child("resourceAttributes").child("namespace"),
            text(r, "namespace"),
            "must match metadata.namespace",
        ));
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid(
            GroupKind::new("authorization.k8s.io", kind),
            "",
            &errs,
        ));
    }
    Ok(match (resource, non_resource) {
        (Some(r), _) => Asked {
            resource_request: true,
            verb: text(r, "verb"),
            group: text(r, "group"),
            version: text(r, "version"),
            resource: text(r, "resource"),
            subresource: text(r, "subresource"),
            namespace: text(r, "namespace"),
            name: text(r, "name"),
            path: String::new(),
            field_selector: field_selector(r),
        },
        (None, Some(n)) => Asked {
            verb: text(n, "verb"),
            path: text(n, "path"),
            ..Asked::default()
        },
        (None, None) => Asked::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{
        NodeAuthorizer, NodeGraph, PrivilegedGroups, RbacAuthorizer, RbacIndex, Union, rbac::Kind,
    };

    fn reviewer() -> Reviewer {
        let index = Arc::new(RbacIndex::new());
        index.replace(
            Kind::ClusterRole,
            &[json!({"metadata": {"name": "view"},
            "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]})],
        );
        index.replace(Kind::RoleBinding, &[json!({"metadata": {"name": "b", "namespace": "ns"},
            "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": "alice"}]})]);
        let authorizer = Union::new(vec![
            Arc::new(PrivilegedGroups(vec!["system:masters".into()])),
            Arc::new(NodeAuthorizer::new(Arc::new(NodeGraph::new()))),
            Arc::new(RbacAuthorizer::new(index)),
        ]);
        Reviewer::new(BearerToken::new(vec![]), &["api"], Arc::new(authorizer))
    }

    /// A token authenticator that knows nothing of audiences: `static` is alice.
    #[derive(Debug)]
    struct StaticToken;

    #[async_trait::async_trait]
    impl crate::authn::TokenAuthenticator for StaticToken {
        async fn authenticate_token(
            &self,
            token: &str,
        ) -> Result<Option<UserInfo>, crate::authn::AuthnError> {
            Ok((token == "static").then(|| UserInfo::new("alice", &["devs"])))
        }
    }

    #[tokio::test]
    async fn token_reviews_answer_for_the_audiences_asked() {
        let r = Reviewer::new(
            BearerToken::new(vec![Arc::new(StaticToken)]),
            &["api", "k3s"],
            Arc::new(Union::new(vec![])),
        );
        let review = |spec: Value| {
            let r = r.clone();
            async move {
                r.review(
                    &UserInfo::anonymous(),
                    "tokenreviews",
                    "",
                    json!({"spec": spec}),
                )
                .await
            }
        };
        // No audiences asked: the API server's.
        let status = review(json!({"token": "static"})).await.unwrap()["status"].clone();
        assert_eq!(
            status,
            json!({"authenticated": true, "audiences": ["api", "k3s"],
                   "user": {"username": "alice", "groups": ["devs", "system:authenticated"]}})
        );
        let status = review(json!({"token": "static", "audiences": ["vault", "k3s"]}))
            .await
            .unwrap()["status"]
            .clone();
        assert_eq!(status["audiences"], json!(["k3s"]));
        // A token for none of them is not recognized.
        let status = review(json!({"token": "static", "audiences": ["vault"]}))
            .await
            .unwrap()["status"]
            .clone();
        assert_eq!(status, json!({"user": {}, "error": "invalid bearer token"}));
        let err = review(json!({"audiences": ["vault"]})).await.unwrap_err();
        assert_eq!(err.code(), 400);
        assert_eq!(
            err.message(),
            "token is required for TokenReview in authentication"
        );
    }

    #[tokio::test]
    async fn access_reviews_answer_for_the_subject() {
        let r = reviewer();
        let alice = UserInfo::new("alice", &["system:authenticated"]);
        let ssar = |verb: &str, ns: &str| {
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "resource": "pods", "namespace": ns}}})
        };
        let answer = r
            .review(&alice, "selfsubjectaccessreviews", "", ssar("list", "ns"))
            .await
            .unwrap();
        assert_eq!(answer["status"]["allowed"], true);
        assert_eq!(answer["kind"], "SelfSubjectAccessReview");
        let answer = r
            .review(&alice, "selfsubjectaccessreviews", "", ssar("delete", "ns"))
            .await
            .unwrap();
        assert_eq!(answer["status"], json!({"allowed": false}));

        let sar = json!({"spec": {"user": "alice", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "ns"}}});
        let answer = r
            .review(&alice, "subjectaccessreviews", "", sar)
            .await
            .unwrap();
        assert_eq!(answer["status"]["allowed"], true);
        let err = r
            .review(
                &alice,
                "subjectaccessreviews",
                "",
                json!({"spec": {"resourceAttributes": {"verb": "get"}}}),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), 422);
        assert_eq!(
            err.message(),
            r#"SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Required value: at least one of user or group must be specified"#
        );
        let lsar = json!({"spec": {"user": "alice", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "other"}}});
        assert_eq!(
            r.review(&alice, "localsubjectaccessreviews", "ns", lsar)
                .await
                .unwrap_err()
                .code(),
            422
        );

        let rules = r
            .review(
                &alice,
                "selfsubjectrulesreviews",
                "",
                json!({"spec": {"namespace": "ns"}}),
            )
            .await
            .unwrap();
        assert_eq!(
            rules["status"]["resourceRules"][0]["verbs"],
            json!(["get", "list"])
        );
        assert_eq!(rules["status"]["incomplete"], false);

        let whoami = r
            .review(&alice, "selfsubjectreviews", "", json!({}))
            .await
            .unwrap();
        assert_eq!(
            whoami["status"]["userInfo"],
            json!({"username": "alice", "groups": ["system:authenticated"]})
        );
        let token = r
            .review(&alice, "tokenreviews", "", json!({"spec": {"token": "x"}}))
            .await
            .unwrap();
        assert_eq!(
            token["status"],
            json!({"user": {}, "error": "invalid bearer token"})
        );
    }

    #[tokio::test]
    async fn access_reviews_pass_their_field_selector_to_the_authorizer() {
        let r = reviewer();
        let admin = UserInfo::new("admin", &["system:masters"]);
        // Nodes may list only the pods bound to them: the Node authorizer reads the selector.
        let list_pods = |selector: Value| {
            json!({"spec": {"user": "system:node:n1", "groups": ["system:nodes"],
                "resourceAttributes": {"verb": "list", "resource": "pods", "fieldSelector": selector}}})
        };
        let status = |selector| async {
            r.review(&admin, "subjectaccessreviews", "", list_pods(selector))
                .await
                .unwrap()["status"]
                .clone()
        };
        assert_eq!(
            status(json!({"rawSelector": "spec.nodeName=n1"})).await["allowed"],
            true
        );
        assert_eq!(
            status(json!({"requirements": [{"key": "spec.nodeName", "operator": "In", "values": ["n1"]}]}))
                .await["allowed"],
            true
        );
        assert_eq!(
            status(json!({"rawSelector": "spec.nodeName=n2"})).await["allowed"],
            false
        );
        assert_eq!(status(json!({})).await["allowed"], false);
        // A selector that cannot be parsed is ignored, and the answer says so.
        for bad in [
            json!({"rawSelector": "key in value"}),
            json!({"requirements": [{"key": "spec.nodeName", "operator": "In", "values": ["n1", "n2"]}]}),
        ] {
            let answer = status(bad).await;
            assert_eq!(answer["allowed"], false);
            assert_eq!(
                answer["evaluationError"],
                "spec.resourceAttributes.fieldSelector ignored due to parse error"
            );
        }
    }
}
