//! `Object`: a stored object as the object-level store hands it out.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::Value;

use crate::{Revision, StorageError};

/// An object read from storage: its JSON with `metadata.resourceVersion` set to the revision
/// it was read at, plus the key it lives under.
///
/// Cheap to clone (one `Arc`). Its JSON encoding is computed at most once and shared, so a watch
/// event fanned out to many watchers is serialized once.
#[derive(Clone)]
pub struct Object(Arc<Inner>);

struct Inner {
    key: String,
    revision: Revision,
    value: Value,
    json: OnceLock<Bytes>,
}

impl Object {
    /// Builds an object at `revision`, writing the revision into `metadata.resourceVersion`.
    /// Fails when `value` is not a JSON object with an object `metadata`.
    pub fn new(
        key: impl Into<String>,
        mut value: Value,
        revision: Revision,
    ) -> crate::Result<Self> {
        let key = key.into();
        if !rkube_api::meta::set_resource_version(&mut value, Some(&revision.to_string())) {
            return Err(StorageError::InvalidObject {
                key,
                reason: "an object must be a JSON object with an object-valued metadata".into(),
            });
        }
        Ok(Object(Arc::new(Inner {
            key,
            revision,
            value,
            json: OnceLock::new(),
        })))
    }

    /// Decodes stored bytes into an object at `revision`. A value that is not JSON is reported
    /// as `InvalidObject` naming the key: a corrupt row is an error, never skipped silently.
    pub fn decode(key: &str, bytes: &[u8], revision: Revision) -> crate::Result<Self> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| StorageError::InvalidObject {
                key: key.to_string(),
                reason: format!("stored value is not valid JSON: {e}"),
            })?;
        Object::new(key, value, revision)
    }

    /// The key the object is stored under.
    pub fn key(&self) -> &str {
        &self.0.key
    }

    /// The revision this copy was read at (its resourceVersion).
    pub fn revision(&self) -> Revision {
        self.0.revision
    }

    /// The object, with `metadata.resourceVersion` set.
    pub fn value(&self) -> &Value {
        &self.0.value
    }

    /// The object, owned (cloned only if other holders share it).
    pub fn into_value(self) -> Value {
        match Arc::try_unwrap(self.0) {
            Ok(inner) => inner.value,
            Err(shared) => shared.value.clone(),
        }
    }

    /// The object's JSON encoding, computed once and shared by every holder.
    pub fn json(&self) -> &Bytes {
        self.0.json.get_or_init(|| {
            // Serializing a `Value` cannot fail: its map keys are strings.
            Bytes::from(serde_json::to_vec(&self.0.value).unwrap_or_default())
        })
    }

    /// True when both handles share one allocation (the same copy, not merely equal).
    pub fn ptr_eq(&self, other: &Object) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("key", &self.0.key)
            .field("revision", &self.0.revision)
            .finish()
    }
}

/// Encodes an object for storage: the stored bytes never carry `metadata.resourceVersion`,
/// since the backend's revision is the resourceVersion.
pub fn encode_for_storage(key: &str, mut value: Value) -> crate::Result<Bytes> {
    if !rkube_api::meta::set_resource_version(&mut value, None) {
        return Err(StorageError::InvalidObject {
            key: key.to_string(),
            reason: "an object must be a JSON object with an object-valued metadata".into(),
        });
    }
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| StorageError::InvalidObject {
            key: key.to_string(),
            reason: format!("cannot encode: {e}"),
        })
}

/// Conditions a write or delete checks against the current object, as upstream's
/// `metav1.Preconditions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// The object's `metadata.uid` must be this.
    pub uid: Option<String>,
    /// The object's `metadata.resourceVersion` must be this.
    pub resource_version: Option<String>,
}

impl Preconditions {
    /// Checks the current object; a mismatch is a `Conflict` worded as upstream's.
    pub fn check(&self, current: &Object) -> crate::Result<()> {
        let meta = |field| rkube_api::meta::field(current.value(), field).unwrap_or("");
        if let Some(uid) = &self.uid
            && uid != meta("uid")
        {
            return Err(StorageError::Conflict {
                key: current.key().to_string(),
                message: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta("uid")
                ),
            });
        }
        if let Some(rv) = &self.resource_version
            && rv != meta("resourceVersion")
        {
            return Err(StorageError::Conflict {
                key: current.key().to_string(),
                message: format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, \
                     ResourceVersion in object meta: {}",
                    meta("resourceVersion")
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_carries_revision_as_resource_version() {
        let obj = Object::new("/k", json!({"metadata": {"name": "a"}}), 42).unwrap();
        assert_eq!(obj.revision(), 42);
        assert_eq!(rkube_api::meta::resource_version(obj.value()), Some("42"));
        let again = obj.clone();
        assert!(
            std::ptr::eq(obj.json(), again.json()),
            "encoded once, shared"
        );
    }

    #[test]
    fn decode_reports_corrupt_values() {
        let err = Object::decode("/registry/x", b"{not json", 3).unwrap_err();
        assert!(matches!(err, StorageError::InvalidObject { ref key, .. } if key == "/registry/x"));
        assert!(Object::decode("/k", b"[1,2]", 3).is_err());
    }

    #[test]
    fn storage_encoding_drops_resource_version() {
        let bytes = encode_for_storage(
            "/k",
            json!({"metadata": {"name": "a", "resourceVersion": "9"}}),
        )
        .unwrap();
        assert_eq!(&bytes[..], br#"{"metadata":{"name":"a"}}"#);
    }

    #[test]
    fn preconditions_match_upstream_wording() {
        let obj = Object::new("/k", json!({"metadata": {"uid": "u1"}}), 5).unwrap();
        assert!(Preconditions::default().check(&obj).is_ok());
        let ok = Preconditions {
            uid: Some("u1".into()),
            resource_version: Some("5".into()),
        };
        assert!(ok.check(&obj).is_ok());
        let err = Preconditions {
            uid: Some("u2".into()),
            resource_version: None,
        }
        .check(&obj)
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "conflict on /k: Precondition failed: UID in precondition: u2, UID in object meta: u1"
        );
        let err = Preconditions {
            uid: None,
            resource_version: Some("4".into()),
        }
        .check(&obj)
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("ResourceVersion in precondition: 4")
        );
    }
}
