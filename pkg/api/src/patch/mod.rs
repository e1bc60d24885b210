//! Patches applied to objects in their JSON form.
//!
//! # Layout
//! - [`strategic`]: strategic merge patch (`application/strategic-merge-patch+json`), driven by
//!   the table of upstream's types in [`crate::types`]: lists merged by key, `$patch`,
//!   `$retainKeys`, `$setElementOrder`, `$deleteFromPrimitiveList` directives, and upstream's
//!   errors mapped to the HTTP answers kube-apiserver gives.
//!
//! JSON patch and JSON merge patch need no schema and are applied where they are parsed (the
//! registry); [`rejected`] is the answer upstream gives when a patch cannot be applied.

pub mod strategic;

use crate::status::{ApiError, Reason, StatusCause, StatusDetails};

/// `422 Invalid` "the server rejected our request due to an error in our request", with
/// `message` as the one `UnexpectedServerResponse` cause: how kube-apiserver answers a JSON
/// patch that fails to apply or a strategic merge patch with lists of lists (its
/// `NewGenericServerResponse(422, ...)`); kubectl prints "The request is invalid".
pub fn rejected(message: impl Into<String>) -> ApiError {
    ApiError::new(
        422,
        Reason::Invalid,
        "the server rejected our request due to an error in our request",
        Some(StatusDetails {
            causes: vec![StatusCause {
                cause_type: "UnexpectedServerResponse".into(),
                message: message.into(),
                field: String::new(),
            }],
            ..StatusDetails::default()
        }),
    )
}
