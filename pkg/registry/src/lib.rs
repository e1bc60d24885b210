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
//! - [`generic`]: [`GenericRest`], `Rest` for any stored resource (metadata rules, uid,
//!   generateName, generation, resourceVersion checks, patches, finalizers, graceful
//!   deletion, dry run), and [`StatusRest`], its `status` subresource; [`scale`]:
//!   [`ScaleRest`], the `autoscaling/v1` Scale of workloads; [`service_ips`]: Services'
//!   ClusterIP allocation, one `IPAddress` object per address as upstream 1.33+.
//! - [`errors`]: the one conversion of `StorageError` into the `ApiError` clients see.
//! - [`registry`]: [`Registry`], every stored resource's handlers over one store, with one
//!   watch cache per storage prefix; [`bootstrap`]: the default namespaces and the
//!   `kubernetes` Service, written through the same handlers.
//!
//! Data flows: API server handler -> [`Registry::rest`] -> generic registry (metadata, uid,
//! generation, finalizers, preconditions) -> strategy (kind rules) -> validating admission ->
//! `Store` (watch cache -> `KvStore`); storage errors come back through [`errors`].

pub mod bootstrap;
pub mod errors;
pub mod generic;
pub mod kinds;
pub mod registry;
pub mod rest;
pub mod scale;
pub mod service_ips;
pub mod strategy;

pub use bootstrap::{BootstrapConfig, ensure_defaults};
pub use generic::{GenericRest, StatusRest};
pub use registry::Registry;
pub use rest::Rest;
pub use scale::ScaleRest;
pub use strategy::Strategy;
