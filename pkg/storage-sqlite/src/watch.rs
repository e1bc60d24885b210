//! Watch streams: history from the log, then the writer's live batches, with no gap and no
//! duplicate.
//!
//! A watch subscribes to the writer's broadcast *before* it reads where the log ends, so every
//! write after that point arrives live, and every write before it is in the log. Events at or
//! below what was already delivered are skipped. A watcher that falls a whole broadcast buffer
//! behind is closed with `WatcherTooSlow` rather than slowing the writer down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rkube_storage::{
    KvEvent, KvWatchResponse, KvWatchStream, ProgressRequester, Result, Revision, StorageError,
};
use tokio::sync::Notify;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use crate::read::{Readers, history};
use crate::writer::Batch;

/// Events read from the log per step of a history replay.
const HISTORY_PAGE: usize = 500;

/// Progress requests from the watch's [`ProgressRequester`].
#[derive(Default)]
struct Progress {
    requested: AtomicBool,
    wake: Notify,
}

struct Watch {
    readers: Arc<Readers>,
    prefix: String,
    batches: broadcast::Receiver<Arc<Batch>>,
    /// The log is replayed up to here; later writes come as batches.
    history_until: Revision,
    /// No event at or below this is sent (again).
    delivered: Revision,
    /// The newest published revision this watch has taken in: the answer to a progress request.
    seen: Revision,
    progress: Arc<Progress>,
    done: bool,
}

/// A watch of `prefix` after `after`. `batches` was subscribed before `snapshot` (the last
/// revision in the log) was read.
pub(crate) fn start(
    readers: Arc<Readers>,
    batches: broadcast::Receiver<Arc<Batch>>,
    prefix: &str,
    after: Revision,
    snapshot: Revision,
) -> KvWatchStream {
    let progress = Arc::new(Progress::default());
    let watch = Watch {
        readers,
        prefix: prefix.to_string(),
        batches,
        history_until: snapshot,
        delivered: after,
        seen: snapshot,
        progress: Arc::clone(&progress),
        done: false,
    };
    let responses = futures::stream::unfold(watch, |mut watch| async move {
        let response = watch.next().await?;
        Some((response, watch))
    });
    KvWatchStream {
        responses: Box::pin(responses),
        // Batches are published in revision order on one channel, so a progress answer always
        // follows the events it covers.
        progress: Some(ProgressRequester::new(move || {
            progress.requested.store(true, Ordering::Release);
            progress.wake.notify_one();
        })),
    }
}

impl Watch {
    async fn next(&mut self) -> Option<Result<KvWatchResponse>> {
        if self.done {
            return None;
        }
        let response = self.step().await;
        // The stream ends after its first error.
        self.done = response.is_err();
        Some(response)
    }

    async fn step(&mut self) -> Result<KvWatchResponse> {
        while self.delivered < self.history_until {
            let (prefix, after, until) = (self.prefix.clone(), self.delivered, self.history_until);
            let events = self
                .readers
                .run(move |conn| history(conn, &prefix, after, until, HISTORY_PAGE))
                .await?;
            self.delivered = match events.last() {
                Some(last) if events.len() == HISTORY_PAGE => last.kv.mod_revision,
                _ => until,
            };
            if !events.is_empty() {
                return Ok(KvWatchResponse {
                    events,
                    revision: self.seen,
                });
            }
        }
        loop {
            // Batches already published come before a progress answer.
            match self.batches.try_recv() {
                Ok(batch) => {
                    if let Some(response) = self.accept(&batch) {
                        return Ok(response);
                    }
                    continue;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Lagged(n)) => return Err(self.lagged(n)),
                Err(TryRecvError::Closed) => return Err(closed()),
            }
            if self.progress.requested.swap(false, Ordering::AcqRel) {
                return Ok(KvWatchResponse {
                    events: Vec::new(),
                    revision: self.seen,
                });
            }
            tokio::select! {
                received = self.batches.recv() => match received {
                    Ok(batch) => {
                        if let Some(response) = self.accept(&batch) {
                            return Ok(response);
                        }
                    }
                    Err(RecvError::Lagged(n)) => return Err(self.lagged(n)),
                    Err(RecvError::Closed) => return Err(closed()),
                },
                () = self.progress.wake.notified() => {}
            }
        }
    }

    /// The batch's events under the prefix not delivered yet, if any.
    fn accept(&mut self, batch: &Batch) -> Option<KvWatchResponse> {
        self.seen = self.seen.max(batch.revision);
        if batch.revision <= self.delivered {
            return None;
        }
        let events: Vec<KvEvent> = batch
            .events
            .iter()
            .filter(|e| e.kv.mod_revision > self.delivered && e.kv.key.starts_with(&self.prefix))
            .cloned()
            .collect();
        self.delivered = batch.revision;
        (!events.is_empty()).then_some(KvWatchResponse {
            events,
            revision: batch.revision,
        })
    }

    fn lagged(&self, missed: u64) -> StorageError {
        StorageError::WatcherTooSlow(format!(
            "watch of {:?} fell {missed} write batches behind after revision {}",
            self.prefix, self.delivered
        ))
    }
}

fn closed() -> StorageError {
    StorageError::unavailable("watching", "the SQLite datastore was closed")
}
