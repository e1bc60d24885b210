//! TTLs as etcd leases, shared the way kube-apiserver's lease manager shares them.
//!
//! Granting a lease per write would make etcd track one lease per Event object (the main TTL
//! user) and cost a round trip per write. Instead a lease is reused while it expires no earlier
//! than the TTL asked for and no later than that plus a small slack (5% of the TTL, at most a
//! minute), for at most 1000 keys.

use std::time::{Duration, Instant};

use etcd_client::Client;
use rkube_storage::{Result, StorageError};
use tokio::sync::Mutex;

/// How much later than asked a key may expire, as a fraction of its TTL...
const REUSE_FRACTION: f64 = 0.05;
/// ...and at most this many seconds.
const MAX_REUSE_SECS: u64 = 60;
/// Keys attached to one lease at most, so that one expiry does not delete a flood of keys.
const MAX_KEYS_PER_LEASE: usize = 1000;

/// The last lease granted.
#[derive(Debug)]
struct Lease {
    id: i64,
    expires: Instant,
    keys: usize,
}

/// Hands out leases for TTLs, reusing the last one when it fits.
#[derive(Debug, Default)]
pub(crate) struct LeaseManager {
    // An async lock: a grant happens under it, so concurrent writers with similar TTLs wait for
    // one grant instead of each making their own.
    last: Mutex<Option<Lease>>,
}

impl LeaseManager {
    /// A lease that expires between `ttl` and `ttl` plus the reuse slack from now.
    pub(crate) async fn lease_for(&self, client: &Client, ttl: Duration) -> Result<i64> {
        // etcd leases count whole seconds; round up so a key never expires early.
        let ttl_secs = ttl
            .as_secs()
            .saturating_add(u64::from(ttl.subsec_nanos() > 0))
            .max(1);
        let reuse_secs = ((ttl_secs as f64 * REUSE_FRACTION) as u64).min(MAX_REUSE_SECS);
        let now = Instant::now();
        let earliest = now + Duration::from_secs(ttl_secs);
        let latest = earliest + Duration::from_secs(reuse_secs);
        let mut last = self.last.lock().await;
        if let Some(lease) = last.as_mut()
            && earliest < lease.expires
            && lease.expires < latest
            && lease.keys < MAX_KEYS_PER_LEASE
        {
            lease.keys += 1;
            return Ok(lease.id);
        }
        let asked = ttl_secs.saturating_add(reuse_secs);
        let granted = client
            .lease_client()
            .grant(i64::try_from(asked).unwrap_or(i64::MAX), None)
            .await
            .map_err(|e| {
                StorageError::unavailable(format!("granting an etcd lease of {asked}s"), e)
            })?;
        // etcd may grant more than asked (its minimum TTL); track what it really granted.
        let granted_secs = u64::try_from(granted.ttl()).unwrap_or(asked);
        *last = Some(Lease {
            id: granted.id(),
            expires: now + Duration::from_secs(granted_secs),
            keys: 1,
        });
        Ok(granted.id())
    }
}
