//! Server-side apply and `managedFields`, as upstream's structured-merge-diff and field
//! manager define them.
//!
//! # Layout
//! - [`fieldpath`]: paths (`.spec.containers[name="x"].image`), sets of paths, and their
//!   `FieldsV1` encoding.
//! - [`typed`]: objects walked by their type from [`crate::types`]: the set of fields an
//!   object holds, the comparison of two objects, the merge of an applied configuration, the
//!   removal of fields.
//! - [`managed`]: the managedFields entries and the two operations on them, an update (any
//!   write) and an apply (with conflicts, `force`, pruning, and kubectl's client-side apply
//!   annotation).
//!
//! The registry calls [`managed::update`] after building every written object and
//! [`managed::apply`] to build the object of an apply patch; both are pure functions of the
//! live object, the new object or configuration, and a [`managed::Context`].

pub mod fieldpath;
pub mod managed;
pub mod typed;

#[cfg(test)]
mod tests;
