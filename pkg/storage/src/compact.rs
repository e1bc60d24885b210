//! Periodic compaction, as kube-apiserver runs it against etcd.
//!
//! Every `interval` the compactor compacts up to the revision it saw at the previous tick, so
//! history younger than one interval is always kept: watchers and paginated lists that are
//! less than one interval behind never see `Compacted`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::{KvBackend, Revision};

/// Compacts `backend` every `interval`, keeping one interval of history, until `shutdown`
/// turns true. A failed compaction is logged and retried at the next tick.
pub async fn run_compactor(
    backend: Arc<dyn KvBackend>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: Option<Revision> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let current = match backend.current_revision().await {
            Ok(rev) => rev,
            Err(e) => {
                tracing::warn!(error = %e, "compactor could not read the current revision");
                continue;
            }
        };
        if let Some(target) = previous.filter(|&rev| rev > 0) {
            match backend.compact(target).await {
                Ok(()) => tracing::debug!(revision = target, "compacted"),
                Err(e) => tracing::warn!(revision = target, error = %e, "compaction failed"),
            }
        }
        previous = Some(current);
    }
}
