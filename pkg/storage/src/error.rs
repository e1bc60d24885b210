//! The one error type of the storage layer. The API server maps each variant to a `Status`
//! in exactly one place; nothing here knows about HTTP.

use crate::Revision;

/// A boxed error from a caller's callback (an update function or a delete validation),
/// passed through storage untouched so the caller can recover its own type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Result of a storage operation.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Everything that can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key does not exist (at the revision read).
    #[error("key not found: {key}")]
    NotFound {
        /// The key that was looked up.
        key: String,
    },
    /// A create found the key already present.
    #[error("key already exists: {key}")]
    AlreadyExists {
        /// The key that was created.
        key: String,
    },
    /// A precondition (uid or resourceVersion) did not hold, or an optimistic write lost its race
    /// more often than it may retry.
    #[error("conflict on {key}: {message}")]
    Conflict {
        /// The key written.
        key: String,
        /// What did not match, in upstream's words.
        message: String,
    },
    /// The requested revision has been compacted away.
    #[error("revision {requested} has been compacted; the oldest available is {compacted}")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The compaction point: the oldest revision still readable.
        compacted: Revision,
    },
    /// The requested revision is newer than anything the store has seen (in time).
    #[error("resource version {requested} is too large: the store is at {current}")]
    TooLargeResourceVersion {
        /// The revision asked for.
        requested: Revision,
        /// The newest revision the store has.
        current: Revision,
    },
    /// A resourceVersion that is not a decimal revision.
    #[error("invalid resource version {0:?}")]
    InvalidResourceVersion(String),
    /// A continue token that does not decode or does not belong to this listing.
    #[error("continue key is not valid: {0}")]
    InvalidContinue(String),
    /// An object that cannot be stored as given, or a stored value that cannot be decoded
    /// (a corrupt row is reported, never skipped).
    #[error("invalid object at {key}: {reason}")]
    InvalidObject {
        /// The key of the object.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The caller's update function or delete validation refused; its error is inside.
    #[error(transparent)]
    Rejected(BoxError),
    /// A watcher could not keep up and was dropped; the client re-lists and watches again.
    #[error("watcher fell behind and was closed: {0}")]
    WatcherTooSlow(String),
    /// The backend failed or cannot be reached.
    #[error("storage backend unavailable: {context}")]
    Unavailable {
        /// What was being done.
        context: String,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
}

impl StorageError {
    /// Wraps a backend failure with what was being done.
    pub fn unavailable(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StorageError::Unavailable {
            context: context.into(),
            source: source.into(),
        }
    }

    /// True for [`StorageError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}
