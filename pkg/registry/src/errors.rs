//! The one place a [`StorageError`] becomes an [`ApiError`], worded as upstream's
//! `storage/errors` interpretation (`InterpretGetError`, `InterpretCreateError`, ...) and the
//! etcd3 store's list errors.
//!
//! Errors raised inside a registry callback (an update function refusing a write) travel
//! through storage boxed in [`StorageError::Rejected`] and come out here unchanged.

use rkube_api::resources::Resource;
use rkube_api::status::ApiError;
use rkube_storage::revision::{decode_continue, encode_continue};
use rkube_storage::{BoxError, StorageError};

/// Seconds a client waits before retrying a read at a resourceVersion the server has not
/// reached yet (upstream's `resourceVersionTooHighRetrySeconds`).
const TOO_LARGE_RETRY_SECONDS: i32 = 1;

/// Seconds a client waits before retrying when storage is unreachable (upstream passes 2 to
/// `NewServerTimeout` in every `Interpret*Error`).
const UNREACHABLE_RETRY_SECONDS: i32 = 2;

/// The 410 message for a continue token whose revision was compacted (upstream's
/// `inconsistentContinue`); the Status then carries a token that continues at the latest
/// revision, see [`inconsistent_continue_token`].
pub const INCONSISTENT_CONTINUE: &str = "The provided continue parameter is too old to display \
a consistent list result. You can start a new list without the continue parameter, or use the \
continue token in this response to retrieve the remainder of the results. Continuing with the \
provided token results in an inconsistent list - objects that were created, modified, or \
deleted between the time the first chunk was returned and now may show up in the list.";

/// The operation a storage error happened in; it words unreachable-storage errors
/// (`The get operation against pods could not be completed at this time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// create
    Create,
    /// get
    Get,
    /// list
    List,
    /// watch
    Watch,
    /// update (and patch)
    Update,
    /// delete
    Delete,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Get => "get",
            Operation::List => "list",
            Operation::Watch => "watch",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// Converts a storage error about object `name` of `resource` (`name` is empty for lists and
/// watches) into the Status a client sees.
pub fn to_api_error(
    err: StorageError,
    resource: &Resource,
    name: &str,
    operation: Operation,
) -> ApiError {
    let gr = resource.group_resource();
    match err {
        StorageError::NotFound { .. } => ApiError::not_found(gr, name),
        StorageError::AlreadyExists { .. } => ApiError::already_exists(gr, name),
        StorageError::Conflict { message, .. } => ApiError::conflict(gr, name, message),
        StorageError::Compacted {
            requested,
            compacted,
        } => ApiError::resource_expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        StorageError::TooLargeResourceVersion { requested, current } => {
            ApiError::too_large_resource_version(requested, current, TOO_LARGE_RETRY_SECONDS)
        }
        StorageError::InvalidResourceVersion(rv) => invalid_resource_version(&rv),
        err @ StorageError::InvalidContinue(_) => {
            ApiError::bad_request(format!("invalid continue token: {err}"))
        }
        err @ StorageError::InvalidObject { .. } => ApiError::internal(err),
        StorageError::Rejected(inner) => from_rejected(inner),
        err @ StorageError::WatcherTooSlow(_) => ApiError::resource_expired(err.to_string()),
        StorageError::Unavailable { context, source } => {
            tracing::warn!(%context, error = %source, resource = %gr, "storage unavailable");
            ApiError::server_timeout(gr, operation.as_str(), UNREACHABLE_RETRY_SECONDS)
        }
    }
}

/// 400 for a `resourceVersion` that is not a revision; upstream wraps the strconv error in a
/// field error on `resourceVersion`.
pub fn invalid_resource_version(rv: &str) -> ApiError {
    ApiError::bad_request(format!(
        "invalid resource version: resourceVersion: Invalid value: {rv:?}: \
         strconv.ParseUint: parsing {rv:?}: invalid syntax"
    ))
}

/// Converts a storage error of a list; a list resumed with `continue_token` whose revision was
/// compacted gets upstream's continue-specific 410 instead of `too old resource version`.
pub fn list_error(
    err: StorageError,
    resource: &Resource,
    continue_token: Option<&str>,
) -> ApiError {
    match (&err, continue_token) {
        (StorageError::Compacted { .. }, Some(_)) => {
            ApiError::resource_expired(INCONSISTENT_CONTINUE)
        }
        _ => to_api_error(err, resource, "", Operation::List),
    }
}

/// The token the API server puts in the `metadata.continue` of the 410 Status answering a
/// list whose continue token was compacted: the same position, continued at the latest
/// revision (an inconsistent list, as the message says). `prefix` is the listed storage prefix
/// ([`crate::generic::GenericRest::list_prefix`]); `None` when the token does not decode.
pub fn inconsistent_continue_token(token: &str, prefix: &str) -> Option<String> {
    let position = decode_continue(token, prefix).ok()?;
    // The decoded start key is "<last key>\0"; encoding appends the NUL again.
    let last_key = position.start_key.strip_suffix('\u{0}')?;
    Some(encode_continue(last_key, prefix, None))
}

/// Recovers an [`ApiError`] a callback raised; anything else is an internal error.
pub fn from_rejected(err: BoxError) -> ApiError {
    match err.downcast::<ApiError>() {
        Ok(api) => *api,
        Err(other) => ApiError::internal(other),
    }
}

/// Boxes an [`ApiError`] for the trip through a storage callback.
pub(crate) fn reject(err: ApiError) -> BoxError {
    Box::new(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_api::resources::lookup;
    use rkube_api::status::Reason;
    use serde_json::json;

    fn res(group: &str, plural: &str) -> &'static Resource {
        lookup(group, "v1", plural).unwrap()
    }

    fn wire(e: &ApiError) -> serde_json::Value {
        serde_json::from_slice(&e.to_json()).unwrap()
    }

    #[test]
    fn not_found_and_exists_name_the_group_resource() {
        let key = || "/registry/x".to_string();
        let e = to_api_error(
            StorageError::NotFound { key: key() },
            res("", "configmaps"),
            "x",
            Operation::Get,
        );
        assert_eq!(
            (e.code(), e.message()),
            (404, r#"configmaps "x" not found"#)
        );
        let e = to_api_error(
            StorageError::NotFound { key: key() },
            res("apps", "deployments"),
            "web",
            Operation::Get,
        );
        assert_eq!(e.message(), r#"deployments.apps "web" not found"#);
        let e = to_api_error(
            StorageError::AlreadyExists { key: key() },
            res("", "configmaps"),
            "x",
            Operation::Create,
        );
        assert_eq!((e.code(), e.reason()), (409, Reason::AlreadyExists));
    }

    #[test]
    fn conflicts_and_expiry_match_upstream_wording() {
        let e = to_api_error(
            StorageError::Conflict {
                key: "/k".into(),
                message: "Precondition failed: UID in precondition: a, UID in object meta: b"
                    .into(),
            },
            res("", "configmaps"),
            "x",
            Operation::Delete,
        );
        assert_eq!(
            e.message(),
            r#"Operation cannot be fulfilled on configmaps "x": Precondition failed: UID in precondition: a, UID in object meta: b"#
        );
        let compacted = || StorageError::Compacted {
            requested: 3,
            compacted: 10,
        };
        let e = to_api_error(compacted(), res("", "pods"), "", Operation::Watch);
        assert_eq!((e.code(), e.reason()), (410, Reason::Expired));
        assert_eq!(e.message(), "too old resource version: 3 (10)");
        let e = list_error(compacted(), res("", "pods"), Some("tok"));
        assert_eq!(e.message(), INCONSISTENT_CONTINUE);
        let e = to_api_error(
            StorageError::TooLargeResourceVersion {
                requested: 9,
                current: 4,
            },
            res("", "pods"),
            "",
            Operation::List,
        );
        assert_eq!(e.code(), 504);
        assert_eq!(
            wire(&e)["details"]["causes"][0]["reason"],
            json!("ResourceVersionTooLarge")
        );
    }

    #[test]
    fn rejected_api_errors_pass_through() {
        let inner = ApiError::bad_request("nope");
        let e = to_api_error(
            StorageError::Rejected(reject(inner.clone())),
            res("", "pods"),
            "p",
            Operation::Update,
        );
        assert_eq!(e, inner);
        let e = to_api_error(
            StorageError::Rejected("boom".into()),
            res("", "pods"),
            "p",
            Operation::Update,
        );
        assert_eq!(
            (e.code(), e.message()),
            (500, "Internal error occurred: boom")
        );
    }

    #[test]
    fn unavailable_is_a_server_timeout() {
        let e = to_api_error(
            StorageError::unavailable("reading", "disk gone"),
            res("", "pods"),
            "p",
            Operation::Get,
        );
        assert_eq!((e.code(), e.reason()), (500, Reason::ServerTimeout));
        assert_eq!(
            e.message(),
            "The get operation against pods could not be completed at this time, please try again."
        );
    }

    #[test]
    fn bad_continue_and_resource_version_are_400() {
        let e = to_api_error(
            StorageError::InvalidContinue("encoded start key empty".into()),
            res("", "pods"),
            "",
            Operation::List,
        );
        assert_eq!(
            (e.code(), e.message()),
            (
                400,
                "invalid continue token: continue key is not valid: encoded start key empty"
            )
        );
        let e = to_api_error(
            StorageError::InvalidResourceVersion("abc".into()),
            res("", "pods"),
            "",
            Operation::Get,
        );
        assert_eq!(e.code(), 400);
    }

    #[test]
    fn inconsistent_token_continues_at_latest() {
        let prefix = "/registry/configmaps/";
        let token = encode_continue("/registry/configmaps/ns/b", prefix, Some(12));
        let again = inconsistent_continue_token(&token, prefix).unwrap();
        let decoded = decode_continue(&again, prefix).unwrap();
        assert_eq!(decoded.revision, None);
        assert_eq!(decoded.start_key, "/registry/configmaps/ns/b\u{0}");
    }
}
