//! [`EtcdBackend`]: `KvBackend` over etcd. Each trait call is one etcd request; conditional
//! writes are one transaction whose failure branch reads the key, so a mismatch returns the
//! current value without a second round trip (kube-apiserver's etcd3 store does the same).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, KvClient, PutOptions, Txn, TxnOp,
    TxnOpResponse, TxnResponse, WatchOptions,
};
use rkube_storage::kv::prefix_end;
use rkube_storage::{
    CasOutcome, GetResponse, KeyValue, KvBackend, KvWatchStream, RangeRequest, RangeResponse,
    Result, Revision, StorageError,
};

use crate::EtcdConfig;
use crate::lease::LeaseManager;

/// etcd's `ErrCompacted`, as it reaches the client in a gRPC status message.
const ERR_COMPACTED: &str = "required revision has been compacted";
/// etcd's `ErrFutureRev`.
const ERR_FUTURE_REV: &str = "required revision is a future revision";
/// How long to wait for etcd to tell the compaction point after a compacted read.
const COMPACTION_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest gRPC response accepted. gRPC's default of 4 MiB would fail a plain list of a few
/// thousand objects; kube-apiserver lifts the limit the same way (MaxCallRecvMsgSize).
pub(crate) const MAX_RESPONSE_BYTES: usize = i32::MAX as usize;

/// The etcd datastore.
#[derive(Clone)]
pub struct EtcdBackend {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    client: Client,
    endpoints: String,
    leases: LeaseManager,
    /// The highest revision this process compacted to: the fallback compaction point when etcd
    /// cannot be asked for it.
    compacted: AtomicU64,
    /// Whether this etcd orders requested progress after the events it covers.
    ordered_progress: bool,
}

impl fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("endpoints", &self.inner.endpoints)
            .finish_non_exhaustive()
    }
}

impl EtcdBackend {
    /// Connects to etcd and checks that the cluster answers within `config.connect_timeout`.
    pub async fn connect(config: EtcdConfig) -> Result<Self> {
        let options = config.connect_options()?;
        let endpoints = config.describe();
        let context = if config.ca_file.is_some() {
            format!(
                "connecting to etcd at {endpoints} (TLS files {})",
                config.describe_tls()
            )
        } else {
            format!("connecting to etcd at {endpoints}")
        };
        // The client dials lazily; a linearizable read proves the cluster really answers (it
        // has a leader, and the TLS handshake works) before the server starts on top of it.
        let attempt = async {
            let mut client = Client::connect(&config.endpoints, Some(options)).await?;
            revision_of(&client).await?;
            let version = client.status().await?.version().to_string();
            Ok::<_, etcd_client::Error>((client, version))
        };
        let (client, version) = match tokio::time::timeout(config.connect_timeout, attempt).await {
            Ok(Ok(connected)) => connected,
            Ok(Err(e)) => return Err(StorageError::unavailable(context, e)),
            Err(_) => {
                return Err(StorageError::unavailable(
                    context,
                    format!("no answer within {:?}", config.connect_timeout),
                ));
            }
        };
        let ordered_progress = progress_is_ordered(&version);
        if !ordered_progress {
            tracing::warn!(
                %endpoints,
                %version,
                "this etcd may answer watch progress requests before delivering earlier events \
                 (etcd#15220, fixed in 3.4.31 and 3.5.13); watches offer no progress requests, \
                 so consistent reads go to etcd instead of the watch cache: upgrade etcd"
            );
        }
        Ok(EtcdBackend {
            inner: std::sync::Arc::new(Inner {
                client,
                endpoints,
                leases: LeaseManager::default(),
                compacted: AtomicU64::new(0),
                ordered_progress,
            }),
        })
    }

    fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The KV API, accepting responses of any size (large lists).
    fn kv(&self) -> KvClient {
        self.client()
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    /// Puts `key` under the lease for `ttl`, or without a lease (which also detaches any lease
    /// an update replaces, as kube-apiserver does).
    async fn put_op(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<TxnOp> {
        let mut options = PutOptions::new().with_prev_key();
        if let Some(ttl) = ttl {
            options = options.with_lease(self.inner.leases.lease_for(self.client(), ttl).await?);
        }
        Ok(TxnOp::put(key, value.to_vec(), Some(options)))
    }

    /// Runs `write` if `compare` holds, else reads the key: one transaction either way.
    async fn conditional(
        &self,
        key: &str,
        compare: Compare,
        write: TxnOp,
        what: &str,
    ) -> Result<CasOutcome> {
        let txn = Txn::new()
            .when([compare])
            .and_then([write])
            .or_else([TxnOp::get(key, None)]);
        let response = self
            .kv()
            .txn(txn)
            .await
            .map_err(|e| StorageError::unavailable(format!("{what} {key} in etcd"), e))?;
        txn_outcome(key, &response)
    }

    /// The error for a failed read: etcd's compaction and future-revision errors in the trait's
    /// terms, anything else as `Unavailable`.
    async fn read_error(
        &self,
        error: etcd_client::Error,
        key: &str,
        requested: Option<Revision>,
    ) -> StorageError {
        let message = error.to_string();
        match requested {
            Some(requested) if message.contains(ERR_COMPACTED) => StorageError::Compacted {
                requested,
                compacted: self.compaction_point(key, requested).await,
            },
            Some(requested) if message.contains(ERR_FUTURE_REV) => self.too_large(requested).await,
            _ => StorageError::unavailable(format!("reading {key} from etcd"), error),
        }
    }

    async fn too_large(&self, requested: Revision) -> StorageError {
        StorageError::TooLargeResourceVersion {
            requested,
            current: self
                .current_revision()
                .await
                .unwrap_or(requested.saturating_sub(1)),
        }
    }

    /// etcd's compaction point. Range errors do not carry it, but a watch from a compacted
    /// revision is cancelled with it, so a short-lived watch asks etcd directly (this also
    /// sees compactions made by other clients).
    async fn compaction_point(&self, key: &str, requested: Revision) -> Revision {
        let fallback = self
            .inner
            .compacted
            .load(Ordering::Relaxed)
            .max(requested.saturating_add(1));
        let Ok(start) = i64::try_from(requested) else {
            return fallback;
        };
        let probe = async {
            let options = WatchOptions::new().with_start_revision(start.max(1));
            let mut stream = self
                .client()
                .watch_client()
                .watch(key, Some(options))
                .await
                .ok()?;
            while let Ok(Some(response)) = stream.message().await {
                if response.compact_revision() > 0 {
                    return Some(to_revision(response.compact_revision()));
                }
                if response.canceled() || !response.events().is_empty() {
                    return None;
                }
            }
            None
        };
        tokio::time::timeout(COMPACTION_PROBE_TIMEOUT, probe)
            .await
            .ok()
            .flatten()
            .unwrap_or(fallback)
    }

    /// A revision for a request, or `TooLargeResourceVersion` if etcd could never reach it.
    async fn etcd_revision(&self, requested: Revision) -> Result<i64> {
        match i64::try_from(requested) {
            Ok(revision) => Ok(revision),
            Err(_) => Err(self.too_large(requested).await),
        }
    }
}

#[async_trait]
impl KvBackend for EtcdBackend {
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<GetResponse> {
        // Revision 0 is etcd's "latest"; it is treated the same here.
        let revision = revision.filter(|&r| r > 0);
        let mut options = GetOptions::new();
        if let Some(revision) = revision {
            options = options.with_revision(self.etcd_revision(revision).await?);
        }
        let mut response = match self.kv().get(key, Some(options)).await {
            Ok(response) => response,
            Err(e) => return Err(self.read_error(e, key, revision).await),
        };
        let header = header_revision(response.header());
        let kv = response
            .take_kvs()
            .into_iter()
            .next()
            .map(convert)
            .transpose()?;
        Ok(GetResponse {
            kv,
            revision: revision.unwrap_or(header),
        })
    }

    async fn range(&self, request: RangeRequest<'_>) -> Result<RangeResponse> {
        // A start before the prefix would read keys outside it; etcd's range is [start, end).
        let start = request
            .start
            .filter(|s| *s > request.prefix)
            .unwrap_or(request.prefix);
        let revision = request.revision.filter(|&r| r > 0);
        let mut options = GetOptions::new().with_range(prefix_end(request.prefix));
        if let Some(limit) = request.limit.filter(|&l| l > 0) {
            options = options.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        if let Some(revision) = revision {
            options = options.with_revision(self.etcd_revision(revision).await?);
        }
        let mut response = match self.kv().get(start, Some(options)).await {
            Ok(response) => response,
            Err(e) => return Err(self.read_error(e, request.prefix, revision).await),
        };
        let header = header_revision(response.header());
        let more = response.more();
        let count = u64::try_from(response.count()).unwrap_or(0);
        let kvs = response
            .take_kvs()
            .into_iter()
            .map(convert)
            .collect::<Result<Vec<_>>>()?;
        Ok(RangeResponse {
            kvs,
            more,
            count,
            revision: revision.unwrap_or(header),
        })
    }

    async fn count(&self, prefix: &str) -> Result<u64> {
        let options = GetOptions::new()
            .with_range(prefix_end(prefix))
            .with_count_only();
        let response = self
            .kv()
            .get(prefix, Some(options))
            .await
            .map_err(|e| StorageError::unavailable(format!("counting {prefix} in etcd"), e))?;
        Ok(u64::try_from(response.count()).unwrap_or(0))
    }

    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<CasOutcome> {
        let put = self.put_op(key, value, ttl).await?;
        let absent = Compare::create_revision(key, CompareOp::Equal, 0);
        self.conditional(key, absent, put, "creating").await
    }

    async fn update(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<CasOutcome> {
        // No existing key has mod_revision 0, and etcd would treat "== 0" as "is absent" and
        // create the key: that is `create`'s job, so answer with what is there.
        if expected == 0 {
            return Ok(CasOutcome::Mismatch {
                current: self.get(key, None).await?.kv,
            });
        }
        let expected = self.etcd_revision(expected).await?;
        let put = self.put_op(key, value, ttl).await?;
        let unchanged = Compare::mod_revision(key, CompareOp::Equal, expected);
        self.conditional(key, unchanged, put, "updating").await
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<CasOutcome> {
        if expected == 0 {
            return Ok(CasOutcome::Mismatch {
                current: self.get(key, None).await?.kv,
            });
        }
        let expected = self.etcd_revision(expected).await?;
        let delete = TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key()));
        let unchanged = Compare::mod_revision(key, CompareOp::Equal, expected);
        self.conditional(key, unchanged, delete, "deleting").await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<KvWatchStream> {
        crate::watch::watch(self.client(), prefix, after, self.inner.ordered_progress).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        revision_of(self.client())
            .await
            .map_err(|e| StorageError::unavailable("reading etcd's current revision", e))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let target = self.etcd_revision(revision).await?;
        match self.kv().compact(target, None).await {
            Ok(_) => {
                self.inner.compacted.fetch_max(revision, Ordering::Relaxed);
                Ok(())
            }
            // Someone (another API server, etcd's own auto-compaction) already compacted past
            // it: the history is gone either way.
            Err(e) if e.to_string().contains(ERR_COMPACTED) => Ok(()),
            Err(e) if e.to_string().contains(ERR_FUTURE_REV) => Err(self.too_large(revision).await),
            Err(e) => Err(StorageError::unavailable(
                format!("compacting etcd to revision {revision}"),
                e,
            )),
        }
    }
}

/// The cluster's current revision, from a linearizable count-only read of one key: the
/// cheapest request whose answer needs the leader and carries the revision.
pub(crate) async fn revision_of(client: &Client) -> Result<Revision, etcd_client::Error> {
    let response = client
        .kv_client()
        .get("/", Some(GetOptions::new().with_count_only()))
        .await?;
    Ok(header_revision(response.header()))
}

/// Whether etcd `version` orders requested progress notifications after the events they cover.
/// Older servers answer a progress request at their current revision even while the watch is
/// still catching up (etcd#15220, #17557); kube-apiserver does not request progress from them,
/// and watches on them offer none.
pub fn progress_is_ordered(version: &str) -> bool {
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|part| part.parse::<u64>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    match (major, minor) {
        (3, 4) => patch >= 31,
        (3, 5) => patch >= 13,
        (3, 0..=3) | (0..=2, _) => false,
        _ => true,
    }
}

/// The outcome of a conditional write transaction built by [`EtcdBackend::conditional`].
fn txn_outcome(key: &str, response: &TxnResponse) -> Result<CasOutcome> {
    let revision = header_revision(response.header());
    let first = response.op_responses().into_iter().next();
    if !response.succeeded() {
        let current = match first {
            Some(TxnOpResponse::Get(mut get)) => get.take_kvs().into_iter().next(),
            _ => None,
        };
        return Ok(CasOutcome::Mismatch {
            current: current.map(convert).transpose()?,
        });
    }
    let prev = match first {
        Some(TxnOpResponse::Put(mut put)) => put.take_prev_key(),
        Some(TxnOpResponse::Delete(mut delete)) => delete.take_prev_kvs().into_iter().next(),
        other => {
            return Err(StorageError::unavailable(
                format!("writing {key} to etcd"),
                format!("unexpected transaction response {other:?}"),
            ));
        }
    };
    Ok(CasOutcome::Written {
        revision,
        prev: prev.map(convert).transpose()?,
    })
}

/// The revision in a response header (etcd always sends one).
pub(crate) fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    header.map_or(0, |h| to_revision(h.revision()))
}

/// etcd revisions are int64 but never negative.
pub(crate) fn to_revision(revision: i64) -> Revision {
    u64::try_from(revision).unwrap_or(0)
}

/// An etcd key-value as the trait's `KeyValue`, without copying the value.
pub(crate) fn convert(kv: etcd_client::KeyValue) -> Result<KeyValue> {
    let create_revision = to_revision(kv.create_revision());
    let mod_revision = to_revision(kv.mod_revision());
    let (key, value) = kv.into_key_value();
    let key = String::from_utf8(key).map_err(|e| StorageError::InvalidObject {
        key: String::from_utf8_lossy(e.as_bytes()).into_owned(),
        reason: "etcd key is not UTF-8".into(),
    })?;
    Ok(KeyValue {
        key,
        value: Bytes::from(value),
        create_revision,
        mod_revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_ordering_by_etcd_version() {
        assert!(!progress_is_ordered("3.4.23"));
        assert!(progress_is_ordered("3.4.31"));
        assert!(!progress_is_ordered("3.5.12"));
        assert!(progress_is_ordered("3.5.13"));
        assert!(progress_is_ordered("3.6.0"));
        assert!(!progress_is_ordered("3.3.27"));
    }
}
