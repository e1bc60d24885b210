//! # Layout
//! The API vocabulary every rkube component shares. No tokio, no I/O: plain data, parsing and
//! formatting, so it can sit at the bottom of the dependency graph.
//!
//! - [`resources`]: the static table of every built-in resource a 1.34 kube-apiserver serves
//!   (discovery names, verbs, shortNames, categories, subresources, etcd key prefix, watch
//!   cache) and the `/api` + `/apis` group-versions in discovery order. The API server routes
//!   and answers discovery from it; storage builds keys from it.
//! - [`field`]: field paths (`spec.containers[0].image`) and field errors rendered as upstream.
//! - [`validation`]: name, label and annotation rules with upstream's messages, and
//!   `generateName`. Validation produces `field` errors...
//! - [`status`]: ... which [`status::ApiError::invalid`] turns into the `422` Status; every other
//!   failure (`404 NotFound`, `409 Conflict`, `410 Expired`, ...) is built there too and
//!   serialized as the exact `metav1.Status` JSON clients expect.
//! - [`selector`]: label and field selectors (parse, validate, match without allocating), used
//!   by list/watch filtering and by controllers' selectors.
//! - [`meta`]: read and write `metadata` fields of an object in its generic JSON form
//!   (`serde_json::Value`), the form storage, patches and custom resources work on.
//! - [`protobuf`]: Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`)
//!   decoded to that same JSON form, driven by a schema generated from upstream's types.
//! - [`patch`]: strategic merge patch over that JSON form, merging lists as [`types`] says.
//! - [`types`]: upstream's API struct types as a generated table (fields, shapes, list types and
//!   keys, patch strategies, atomic markers) with an API to navigate it from a kind, for code
//!   that merges objects in their JSON form.
//! - [`audit`]: the annotations layers add to a request's audit event.
//! - [`cel`]: the limits every CEL expression the API takes must meet, and the deep stack CEL
//!   runs on.
//! - [`references`]: the secrets, config maps and claims a pod or persistent volume names.
//! - [`user`]: who made a request ([`user::UserInfo`]) and the well-known user and group names.
//! - [`x509`]: just enough DER and PEM to read certificate requests and certificates and to
//!   write certificates (the certificates API's validation and signer).
//!
//! Typed built-in kinds come from `k8s-openapi` (re-exported as [`k8s_openapi`]).

pub use k8s_openapi;

/// The Kubernetes version rkube's API claims, `major.minor.patch`. The one place to bump it
/// (with [`KUBERNETES_MINOR`]; a test keeps the two in step).
pub const KUBERNETES_VERSION: &str = "1.34.0";

/// The minor of [`KUBERNETES_VERSION`], for code that picks behaviour by version (PodSecurity's
/// policy versions).
pub const KUBERNETES_MINOR: u32 = 34;

pub mod apply;
pub mod audit;
pub mod cel;
pub mod field;
pub mod meta;
pub mod patch;
pub mod protobuf;
pub mod references;
pub mod resources;
pub mod selector;
pub mod status;
pub mod types;
pub mod user;
pub mod validation;
pub mod x509;

#[cfg(test)]
mod tests {
    #[test]
    fn the_minor_is_the_versions_minor() {
        let minor = super::KUBERNETES_VERSION.split('.').nth(1);
        assert_eq!(minor, Some(super::KUBERNETES_MINOR.to_string().as_str()));
    }
}
