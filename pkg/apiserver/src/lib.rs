//! # Layout
//! The Kubernetes API over HTTP, in front of [`rkube_registry`].
//!
//! - [`table`]: upstream's printer columns for every built-in resource (`kubectl get` output),
//!   as `meta.k8s.io/v1` Table column definitions and row cells.

pub mod table;
