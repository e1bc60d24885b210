//! `Strategy`: the kind-specific part of a write, as upstream's `RESTCreateStrategy`,
//! `RESTUpdateStrategy` and `RESTDeleteStrategy`.
//!
//! The generic registry owns everything common to all objects (metadata validation, uid,
//! creationTimestamp, generateName, resourceVersion checks, generation, finalizers, dry run);
//! a strategy only adds what its kind needs. Strategies work on the generic JSON form so that
//! the registry can treat every kind alike; each kind converts to its k8s-openapi type inside.

use rkube_api::field::FieldError;
use rkube_api::user::UserInfo;
use serde_json::Value;

/// What a kind adds to the generic registry. Every method has the behaviour of a kind that adds
/// nothing, so a kind implements only what upstream's strategy for it does.
pub trait Strategy: Send + Sync + 'static {
    /// Upstream's defaulting (`SetDefaults_<Kind>`): fills fields the client left unset. Runs on
    /// every create and update of the main resource, before admission and validation.
    fn default(&self, _object: &mut Value) {}

    /// `PrepareForCreate`: clears what a client may not set on create (usually `status`).
    fn prepare_for_create(&self, _object: &mut Value) {}

    /// The part of `PrepareForCreate` that reads the requesting user from the request's context
    /// (CertificateSigningRequests record who asked). Not called for the server's own writes.
    fn fill_requester(&self, _object: &mut Value, _user: &UserInfo) {}

    /// `PrepareForUpdate`: restores from `old` what a client may not change through the main
    /// resource (usually `status`).
    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}

    /// `Validate`: the kind's own rules on create (the registry validates `metadata`).
    fn validate(&self, _object: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// `ValidateUpdate`: the kind's rules on update, including immutable fields.
    fn validate_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        self.validate(new)
    }

    /// `PrepareForUpdate` of a subresource that writes one part of the object (`status`, or
    /// CertificateSigningRequests' `approval`): `new` is the stored object with the part the
    /// client sent already in place; a kind adjusts it further (CSRs keep their approval
    /// conditions on `status` writes and stamp condition times).
    fn prepare_for_subresource_update(&self, _subresource: &str, _new: &mut Value, _old: &Value) {}

    /// `ValidateUpdate` of that subresource: by default the kind's own update validation.
    fn validate_subresource_update(
        &self,
        _subresource: &str,
        new: &Value,
        old: &Value,
    ) -> Vec<FieldError> {
        self.validate_update(new, old)
    }

    /// `WarningsOnCreate`/`WarningsOnUpdate`: sent back as `Warning` headers.
    fn warnings(&self, _object: &Value) -> Vec<String> {
        Vec::new()
    }

    /// Whether this kind has a `status` stanza the main resource must not write (it is then
    /// written only through the `status` subresource).
    fn has_status_subresource(&self) -> bool {
        false
    }

    /// Whether a change from `old` to `new` bumps `metadata.generation`: upstream bumps it for
    /// kinds with a spec when the spec changes (and on deletionTimestamp for some).
    fn generation_changes(&self, old: &Value, new: &Value) -> bool {
        old.get("spec") != new.get("spec")
    }

    /// `AllowCreateOnUpdate`: whether PUT of a missing object creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// Field-selector fields this kind supports beyond `metadata.name` and
    /// `metadata.namespace` (e.g. pods' `spec.nodeName`, `status.phase`).
    fn selectable_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// The value of one of [`Strategy::selectable_fields`] on `object`, as field selectors compare
    /// it (a missing field is the empty string, as upstream).
    fn field_value(&self, _object: &Value, _field: &str) -> Option<String> {
        None
    }

    /// What holds this object's deletion besides `metadata.finalizers` (namespaces: a non-empty
    /// `spec.finalizers`, which the namespace controller empties through `finalize`). `Some`
    /// carries the message of upstream's 409 when the object is deleted again while held.
    fn deletion_hold(&self, _object: &Value) -> Option<&'static str> {
        None
    }

    /// What a kind changes when its deletion starts (namespaces: `status.phase: Terminating`).
    fn prepare_for_delete(&self, _object: &mut Value) {}

    /// The grace period a delete without one uses (pods: `spec.terminationGracePeriodSeconds`);
    /// `None` deletes at once. `Some(0)` means the object must go at once even when the client
    /// asked for a grace period (an unscheduled or finished pod, as upstream's
    /// `CheckGracefulDelete`).
    fn default_grace_period_seconds(&self, _object: &Value) -> Option<i64> {
        None
    }
}
