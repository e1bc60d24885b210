//! # Layout
//! Types shared by every rkube component. No tokio, no I/O.
//!
//! - [`meta`]: read and write `metadata` fields of an object in its generic JSON form
//!   (`serde_json::Value`), the form storage, patches and custom resources work on.
//!
//! Typed built-in kinds (k8s-openapi), GroupVersionResource tables, field errors and `Status`
//! builders join this crate with the API server.

pub mod meta;
