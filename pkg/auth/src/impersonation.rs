//! Impersonation (`Impersonate-User`, `-Group`, `-Uid`, `Impersonate-Extra-<key>`): each
//! requested part is authorized with the `impersonate` verb (on `users`, `groups` or
//! `serviceaccounts` in the core group, `uids` and `userextras/<key>` in
//! `authentication.k8s.io`), then the request runs as the impersonated user, as upstream's
//! filter.

use http::HeaderMap;
use rkube_api::status::ApiError;

use crate::authz::{Attributes, Authorizer, forbidden};
use crate::user::{
    ANONYMOUS_USER, AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP, UserInfo, service_account_groups,
    split_service_account,
};

/// `Impersonate-User`.
pub const USER_HEADER: &str = "impersonate-user";
/// `Impersonate-Group`, repeated.
pub const GROUP_HEADER: &str = "impersonate-group";
/// `Impersonate-Uid`.
pub const UID_HEADER: &str = "impersonate-uid";
/// `Impersonate-Extra-<key>`, the key percent-encoded.
pub const EXTRA_HEADER_PREFIX: &str = "impersonate-extra-";

/// One thing asked for, as upstream's object reference.
struct Request {
    kind: &'static str,
    namespace: String,
    name: String,
    field_path: String,
}

impl Request {
    fn new(kind: &'static str, name: &str) -> Self {
        Request {
            kind,
            namespace: String::new(),
            name: name.to_owned(),
            field_path: String::new(),
        }
    }

    /// Go's `%v` of the `ObjectReference` (upstream's 400 message prints them so).
    fn go_value(&self) -> String {
        let version = if matches!(self.kind, "UserExtra" | "UID") {
            "authentication.k8s.io/v1"
        } else {
            ""
        };
        format!(
            "{{{} {} {}  {}  {}}}",
            self.kind, self.namespace, self.name, version, self.field_path
        )
    }
}

/// Whether a request carries any impersonation header.
pub fn requested(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        name == USER_HEADER
            || name == GROUP_HEADER
            || name == UID_HEADER
            || name.starts_with(EXTRA_HEADER_PREFIX)
    })
}

/// Decodes `%XX` escapes (Go's `url.PathUnescape`); `None` for a malformed escape.
fn path_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok())
}

/// The user `requester` acts as: `Ok(None)` without impersonation headers; a 400 for headers
/// that ask for groups, extras or a uid without a user; a 403 when a part is not allowed.
pub fn impersonate(
    headers: &HeaderMap,
    requester: &UserInfo,
    authorizer: &dyn Authorizer,
) -> Result<Option<UserInfo>, ApiError> {
    let mut requests = Vec::new();
    let user = header_values(headers, USER_HEADER)
        .next()
        .unwrap_or_default();
    if !user.is_empty() {
        requests.push(match split_service_account(user) {
            Some((namespace, name)) => Request {
                namespace: namespace.to_owned(),
                ..Request::new("ServiceAccount", name)
            },
            None => Request::new("User", user),
        });
    }
    let groups_given = headers.contains_key(GROUP_HEADER);
    requests.extend(header_values(headers, GROUP_HEADER).map(|g| Request::new("Group", g)));
    let mut extra_headers: Vec<&str> = headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|n| n.starts_with(EXTRA_HEADER_PREFIX))
        .collect();
    extra_headers.sort_unstable();
    for name in &extra_headers {
        let raw = &name[EXTRA_HEADER_PREFIX.len()..];
        let key = path_unescape(raw).unwrap_or_else(|| raw.to_owned());
        for value in header_values(headers, name) {
            requests.push(Request {
                field_path: key.clone(),
                ..Request::new("UserExtra", value)
            });
        }
    }
    let uid = header_values(headers, UID_HEADER)
        .next()
        .unwrap_or_default();
    if !uid.is_empty() {
        requests.push(Request::new("UID", uid));
    }
    if requests.is_empty() {
        return Ok(None);
    }
    if user.is_empty() {
        let listed: Vec<String> = requests.iter().map(Request::go_value).collect();
        return Err(ApiError::bad_request(format!(
            "requested [{}] without impersonating a user",
            listed.join(" ")
        )));
    }
    let mut acting = UserInfo::default();
    for request in &requests {
        let (group, resource, subresource) = match request.kind {
            "ServiceAccount" => {
                acting.name = user.to_owned();
                if !groups_given {
                    acting.groups = service_account_groups(&request.namespace);
                }
                ("", "serviceaccounts", "")
            }
            "User" => {
                acting.name = user.to_owned();
                ("", "users", "")
            }
            "Group" => {
                acting.groups.push(request.name.clone());
                ("", "groups", "")
            }
            "UserExtra" => {
                acting
                    .extra
                    .entry(request.field_path.clone())
                    .or_default()
                    .push(request.name.clone());
                (
                    "authentication.k8s.io",
                    "userextras",
                    request.field_path.as_str(),
                )
            }
            _ => {
                acting.uid = request.name.clone();
                ("authentication.k8s.io", "uids", "")
            }
        };
        let attributes = Attributes::resource(
            requester,
            "impersonate",
            group,
            resource,
            subresource,
            &request.namespace,
            &request.name,
        );
        let decision = authorizer.authorize(&attributes);
        if !decision.allowed() {
            return Err(forbidden(&attributes, decision.reason()));
        }
    }
    let implied = if acting.name == ANONYMOUS_USER {
        UNAUTHENTICATED_GROUP
    } else {
        AUTHENTICATED_GROUP
    };
    if !acting.in_group(implied) {
        acting.groups.push(implied.to_owned());
    }
    Ok(Some(acting))
}

/// Removes the impersonation headers (the impersonated request must not carry them on).
pub fn strip(headers: &mut HeaderMap) {
    let names: Vec<http::HeaderName> = headers
        .keys()
        .filter(|n| {
            let n = n.as_str();
            n == USER_HEADER
                || n == GROUP_HEADER
                || n == UID_HEADER
                || n.starts_with(EXTRA_HEADER_PREFIX)
        })
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::Decision;

    /// Allows impersonating users and the group `g`, nothing else.
    #[derive(Debug)]
    struct Users;

    impl Authorizer for Users {
        fn authorize(&self, a: &Attributes<'_>) -> Decision {
            let ok = a.verb == "impersonate"
                && (a.resource == "users"
                    || a.resource == "serviceaccounts"
                    || (a.resource == "groups" && a.name == "g"));
            if ok {
                Decision::Allow(String::new())
            } else {
                Decision::NoOpinion(String::new())
            }
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn impersonation_is_authorized_part_by_part() {
        let bob = UserInfo::new("bob", &[]);
        assert_eq!(impersonate(&HeaderMap::new(), &bob, &Users), Ok(None));
        let jane = impersonate(
            &headers(&[("Impersonate-User", "jane"), ("Impersonate-Group", "g")]),
            &bob,
            &Users,
        )
        .unwrap()
        .unwrap();
        assert_eq!(jane.name, "jane");
        assert_eq!(jane.groups, ["g", "system:authenticated"]);
        let sa = impersonate(
            &headers(&[("Impersonate-User", "system:serviceaccount:ns:sa")]),
            &bob,
            &Users,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            sa.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                "system:authenticated"
            ]
        );

        let err = impersonate(
            &headers(&[
                ("Impersonate-User", "jane"),
                ("Impersonate-Group", "admins"),
            ]),
            &bob,
            &Users,
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            r#"groups "admins" is forbidden: User "bob" cannot impersonate resource "groups" in API group "" at the cluster scope"#
        );
        let err = impersonate(
            &headers(&[
                ("Impersonate-User", "jane"),
                ("Impersonate-Extra-Scopes%2Fx", "v"),
            ]),
            &bob,
            &Users,
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            r#"userextras.authentication.k8s.io "v" is forbidden: User "bob" cannot impersonate resource "userextras/scopes/x" in API group "authentication.k8s.io" at the cluster scope"#
        );
        let err = impersonate(&headers(&[("Impersonate-Group", "g")]), &bob, &Users).unwrap_err();
        assert_eq!(err.code(), 400);
        assert_eq!(
            err.message(),
            "requested [{Group  g    }] without impersonating a user"
        );
    }

    #[test]
    fn headers_are_stripped() {
        let mut h = headers(&[
            ("Impersonate-User", "jane"),
            ("Impersonate-Extra-a", "1"),
            ("Accept", "x"),
        ]);
        assert!(requested(&h));
        strip(&mut h);
        assert!(!requested(&h));
        assert_eq!(h.len(), 1);
    }
}
