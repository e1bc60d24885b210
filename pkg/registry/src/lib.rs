//! # Layout
//! Per-resource REST semantics over [`rkube_storage::Store`]: what kube-apiserver's
//! `registry/generic` and each `pkg/registry/<group>/<resource>/strategy.go` do.
//!
//! - [`rest`]: the [`Rest`] trait, one resource or subresource as the API server calls it
//!   (create, get, list, watch, update, patch, delete, deletecollection), with the parsed
//!   request options.
//! - [`strategy`]: the [`Strategy`] trait, what a kind adds to the generic registry
//!   (defaulting, prepare-for-create/update, validation, field selectors, graceful deletion).
//! - [`kinds`]: one module per built-in kind implementing it over k8s-openapi's typed structs,
//!   and [`kinds::strategy_for`], the table from resource to strategy.
//!
//! Data flows: API server handler -> generic registry (metadata, uid, generation, finalizers,
//! preconditions) -> strategy (kind rules) -> validating admission -> `Store`.

pub mod kinds;
pub mod rest;
pub mod strategy;

pub use rest::Rest;
pub use strategy::Strategy;
