//! # Layout
//! The Kubernetes API over HTTP, in front of [`rkube_registry`].
//!
//! A request flows: [`router`] (one axum dispatcher) -> [`request_info`] (verb, group, version,
//! resource, namespace, name, subresource, as upstream's `RequestInfoFactory`) -> discovery
//! (`discovery`: `/api`, `/apis`, resource lists, aggregated discovery) or the resource's
//! [`rkube_registry::Rest`], found through the [`Resolver`] -> a verb handler (`handlers`),
//! which decodes query options (`options`, upstream's checks and messages) and bodies
//! (JSON/YAML, 3 MiB limit), calls the registry, and encodes the answer in the negotiated form
//! (`negotiate`: `Accept` with q-values; JSON, YAML, and the `as=` transformations in
//! `as_table`: Table, PartialObjectMetadata[List]). Watches stream newline-delimited frames
//! built from each event's shared bytes (`watch`). Every failure leaves as an upstream `Status`
//! (`response`).
//!
//! The review resources (TokenReview, SelfSubjectReview, the access reviews) are answered by
//! `review` for the caller the server's gate found, through the same create path.
//!
//! Writes pass admission (`admit`): the handler hands the registry the chain's mutating and
//! validating callbacks, built from the request and the caller found in its extensions.
//!
//! - [`openapi`]: the OpenAPI v2 and v3 documents (`/openapi/v2`, `/openapi/v3/...`) built from
//!   k8s-openapi's schemas and the resource table, and the schema-driven `fieldValidation` of
//!   write bodies (unknown and duplicate fields).
//! - [`table`]: upstream's printer columns for every built-in resource (`kubectl get` output),
//!   as `meta.k8s.io/v1` Table column definitions and row cells; `as_table` builds the Table
//!   objects around them.

mod admit;
mod as_table;
mod discovery;
mod handlers;
mod negotiate;
pub mod openapi;
mod options;
pub mod request_info;
mod response;
mod review;
mod router;
pub mod table;
mod watch;

pub use review::reviews_layer;
pub use router::{Resolver, router};
