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
//! - [`subresources`]: pods' `binding`, `eviction`, `ephemeralcontainers`, `resize` and
//!   connect subresources (`log`, `exec`, ...), and serviceaccounts' `token` (signed by the
//!   [`TokenSigner`] the server hands in).
//! - [`errors`]: the one conversion of `StorageError` into the `ApiError` clients see.
//! - [`registry`]: [`Registry`], every stored resource's handlers over one store, with one
//!   watch cache per storage prefix; [`conversion`]: the versions that share a prefix
//!   (autoscaling v1/v2, core and events.k8s.io Events), each served through a converting
//!   `Store` over the stored version; [`bootstrap`]: the default namespaces and the
//!   `kubernetes` Service, written through the same handlers.
//!
//! Data flows: API server handler -> [`Registry::rest`] -> generic registry (metadata, uid,
//! generation, finalizers, preconditions) -> strategy (kind rules) -> validating admission ->
//! `Store` (conversion where versions share storage -> watch cache -> `KvStore`); storage errors come back through [`errors`].

pub mod bootstrap;
pub mod conversion;
pub mod errors;
mod field_manager;
pub mod generic;
pub mod kinds;
pub mod registry;
pub mod rest;
pub mod scale;
pub mod service_ips;
pub mod strategy;
pub mod subresources;

pub use bootstrap::{BootstrapConfig, ensure_defaults};
pub use generic::{GenericRest, StatusRest};
pub use registry::Registry;
pub use rest::Rest;
pub use scale::ScaleRest;
pub use strategy::Strategy;
pub use subresources::token::TokenSigner;
