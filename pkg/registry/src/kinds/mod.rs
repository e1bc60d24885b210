//! One strategy per built-in kind, and the table from resource to strategy.

use std::sync::Arc;

use rkube_api::resources::Resource;

use crate::Strategy;

/// The strategy of a kind that adds nothing to the generic registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Generic;

impl Strategy for Generic {}

/// The strategy for `resource`.
pub fn strategy_for(_resource: &Resource) -> Arc<dyn Strategy> {
    Arc::new(Generic)
}
