//! [`Attributes`]: what admission knows about one request (upstream's `admission.Attributes`).

use rkube_api::resources::GroupResource;
use serde_json::Value;

/// The operation admitted (upstream's `admission.Operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A create (POST, or a PUT or apply that creates).
    Create,
    /// An update (PUT, PATCH).
    Update,
    /// A delete.
    Delete,
    /// A connect subresource (exec, attach, portforward, proxy).
    Connect,
}

impl Operation {
    /// The name admission reviews and webhook rules use (`CREATE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// Who asks (upstream's `user.Info`), as the authentication layer found it.
pub use rkube_api::user::UserInfo;

/// A group, version and name (kind or resource).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Gvn {
    /// API group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind or plural resource.
    pub name: String,
}

impl Gvn {
    /// A group, version and name.
    pub fn new(group: &str, version: &str, name: &str) -> Self {
        Gvn {
            group: group.to_owned(),
            version: version.to_owned(),
            name: name.to_owned(),
        }
    }

    /// Whether this is `name` in the core group.
    pub fn is_core(&self, name: &str) -> bool {
        self.group.is_empty() && self.name == name
    }
}

/// One request as admission sees it.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    /// The operation.
    pub operation: Option<Operation>,
    /// The kind of the object.
    pub kind: Gvn,
    /// The resource.
    pub resource: Gvn,
    /// The subresource ("" for the resource itself).
    pub subresource: String,
    /// The namespace ("" for cluster-scoped resources).
    pub namespace: String,
    /// The object's name ("" for a create with `generateName`).
    pub name: String,
    /// The object the request writes (`None` for deletes and connects).
    pub object: Option<Value>,
    /// The stored object (updates and deletes).
    pub old_object: Option<Value>,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// The request's options object (`CreateOptions`, `UpdateOptions`, `DeleteOptions`).
    pub options: Option<Value>,
    /// Who asks.
    pub user: UserInfo,
    /// The request's audit annotations (plugins record decisions there, as upstream's
    /// `Attributes.AddAnnotation`).
    pub audit_annotations: rkube_api::audit::AuditAnnotations,
    /// Mutating admission's second pass (upstream's reinvocation context).
    pub reinvocation: crate::chain::Reinvocation,
}

impl Attributes {
    /// The operation (`Create` when unset, which only tests leave it).
    pub fn op(&self) -> Operation {
        self.operation.unwrap_or(Operation::Create)
    }

    /// Whether this is a write of the core resource `plural` itself (no subresource).
    pub fn is_core(&self, plural: &str) -> bool {
        self.resource.is_core(plural) && self.subresource.is_empty()
    }

    /// The resource as errors name it.
    pub fn group_resource(&self) -> GroupResource<'_> {
        GroupResource::new(&self.resource.group, &self.resource.name)
    }

    /// The name upstream's `admission.NewForbidden` reports: the object's name, else its
    /// `generateName`, else the request's, else `Unknown`.
    pub fn object_name(&self) -> String {
        let field = |f: &str| {
            self.object
                .as_ref()
                .and_then(|o| rkube_api::meta::field(o, f))
                .filter(|s| !s.is_empty())
        };
        field("name")
            .or_else(|| field("generateName"))
            .map(str::to_owned)
            .unwrap_or_else(|| {
                if self.name.is_empty() {
                    "Unknown".to_owned()
                } else {
                    self.name.clone()
                }
            })
    }

    /// Upstream's `admission.NewForbidden`: 403 `<resource> "<name>" is forbidden: <err>`.
    pub fn forbidden(&self, err: impl std::fmt::Display) -> rkube_api::status::ApiError {
        rkube_api::status::ApiError::forbidden(self.group_resource(), &self.object_name(), err)
    }
}
