//! # Layout
//! Who is asking and may they: rkube's authentication and authorization, below the API
//! server and above nothing but `rkube-api` (DESIGN: `apiserver -> auth -> api`). Objects the
//! checks need (service accounts, pods, secrets, RBAC) arrive through interfaces the server
//! feeds from the registry, so this crate never touches storage.
//!
//! - [`user`]: [`UserInfo`] and the well-known user and group names.
//! - [`authn`]: the [`authn::Authenticator`] contract and union (401 on a bad credential,
//!   anonymous only when nothing was presented); client certificates ([`authn::x509`], over
//!   `rkube_api::x509`'s certificate reader), bearer tokens from a static token file
//!   ([`authn::token_file`]), service account JWTs ([`authn::service_account`], also the JWKS
//!   and OIDC discovery documents) and bootstrap tokens ([`authn::bootstrap`]).
//! - [`impersonation`]: the `Impersonate-*` headers, checked with the `impersonate` verb.
//! - [`authz`]: the [`authz::Authorizer`] contract and union, `system:masters`, upstream's 403
//!   messages; [`authz::rbac`]: rule matching, the in-memory [`authz::RbacIndex`], and the
//!   escalation check; [`authz::node`]: the Node authorizer over the in-memory
//!   [`authz::NodeGraph`] of what each node's pods use, and the static node rules.
//! - [`review`]: TokenReview, SelfSubjectReview and the four access reviews.
//!
//! Data flows: request -> [`authn::Union`] (user) -> [`impersonation`] (maybe another user)
//! -> [`authz::Union`] (masters, Node, RBAC: allow or 403) -> the API; the server puts the
//! user on the request.

// `ApiError` is what a refusal answers with (it reaches the client as is): boxing it only to
// unbox it at the boundary would buy nothing.
#![allow(clippy::result_large_err)]

pub mod authn;
pub mod authz;
pub mod impersonation;
pub mod review;
/// [`UserInfo`] and the well-known user and group names live in rkube-api, shared with admission.
pub use rkube_api::user;

pub use user::UserInfo;
