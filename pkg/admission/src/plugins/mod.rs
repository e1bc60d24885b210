//! The built-in admission plugins, one module each (the small defaulting ones together).

pub mod defaults;
pub mod limit_ranger;
pub mod namespace_lifecycle;
pub mod pod_security;
pub mod priority;
pub mod resource_quota;
pub mod service_account;
