//! The built-in admission plugins, one module each (the small defaulting ones together).

pub mod certificates;
pub mod defaults;
pub mod limit_ranger;
pub mod namespace_lifecycle;
pub mod node_restriction;
pub mod pod_security;
pub mod priority;
pub mod pvc_resize;
pub mod resource_quota;
pub mod service_account;
