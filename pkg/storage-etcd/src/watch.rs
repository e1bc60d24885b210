//! An etcd watch as a [`KvWatchStream`].
//!
//! The watch starts at `after + 1` with previous values and progress notifications. The stream
//! owns the etcd watch: dropping it drops the gRPC stream, which cancels the watch in etcd.
//! Progress requests go through an unbounded channel that the stream drains while it waits for
//! etcd, so `ProgressRequester::request` never blocks and needs no runtime.

use etcd_client::{
    Client, EventType, WatchOptions, WatchRequestSender, WatchResponse, WatchResponseStream,
};
use futures::StreamExt;
use rkube_storage::kv::prefix_end;
use rkube_storage::{
    KvEvent, KvEventKind, KvWatchResponse, KvWatchStream, ProgressRequester, Result, Revision,
    StorageError,
};
use tokio::sync::mpsc;

use crate::backend::{convert, header_revision, to_revision};

/// Starts watching `prefix` for changes after revision `after`.
///
/// `ordered_progress` says whether this etcd answers a progress request only after the events it
/// covers; if not, the stream offers no progress requests at all.
pub(crate) async fn watch(
    client: &Client,
    prefix: &str,
    after: Revision,
    ordered_progress: bool,
) -> Result<KvWatchStream> {
    let start = after
        .checked_add(1)
        .and_then(|r| i64::try_from(r).ok())
        .ok_or(StorageError::TooLargeResourceVersion {
            requested: after,
            current: 0,
        })?;
    let options = WatchOptions::new()
        .with_range(prefix_end(prefix))
        .with_start_revision(start)
        .with_prev_key()
        .with_progress_notify();
    let (requests, responses) = client
        .watch_client()
        .max_decoding_message_size(crate::backend::MAX_RESPONSE_BYTES)
        .watch(prefix, Some(options))
        .await
        .map_err(|e| StorageError::unavailable(format!("starting an etcd watch on {prefix}"), e))?
        .split();
    let (progress_tx, progress_rx) = mpsc::unbounded_channel();
    let state = Watch {
        prefix: prefix.to_string(),
        start: after + 1,
        requests,
        responses,
        progress: progress_rx,
        done: false,
    };
    let responses = futures::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    });
    Ok(KvWatchStream {
        responses: responses.boxed(),
        // A send fails only once the stream is gone, when there is nothing left to report on.
        progress: ordered_progress.then(|| {
            ProgressRequester::new(move || {
                let _ = progress_tx.send(());
            })
        }),
    })
}

/// The state of one watch stream.
struct Watch {
    prefix: String,
    /// The first revision asked for (`after + 1`).
    start: Revision,
    requests: WatchRequestSender,
    responses: WatchResponseStream,
    progress: mpsc::UnboundedReceiver<()>,
    /// Set after the stream's final (error) item.
    done: bool,
}

impl Watch {
    /// The next item: a response, or the error that ends the stream.
    async fn next(&mut self) -> Option<Result<KvWatchResponse>> {
        while !self.done {
            let item = tokio::select! {
                // `Some(())` disables this branch once every requester is dropped.
                Some(()) = self.progress.recv() => {
                    // Requests that piled up are answered by one notification.
                    while self.progress.try_recv().is_ok() {}
                    match self.requests.request_progress().await {
                        Ok(()) => None,
                        Err(e) => Some(Err(self.failed("requesting watch progress", e))),
                    }
                }
                message = self.responses.next() => match message {
                    Some(Ok(response)) => self.map(response),
                    Some(Err(e)) => Some(Err(self.failed("receiving watch events", e))),
                    None => Some(Err(self.failed("receiving watch events", "etcd closed the watch"))),
                },
            };
            if let Some(item) = item {
                self.done |= item.is_err();
                return Some(item);
            }
        }
        None
    }

    fn failed(&self, what: &str, error: impl Into<rkube_storage::BoxError>) -> StorageError {
        StorageError::unavailable(format!("{what} on {}", self.prefix), error)
    }

    /// One etcd response as a stream item; `None` for those the trait has no use for.
    fn map(&self, response: WatchResponse) -> Option<Result<KvWatchResponse>> {
        if response.compact_revision() > 0 {
            return Some(Err(StorageError::Compacted {
                requested: self.start,
                compacted: to_revision(response.compact_revision()),
            }));
        }
        if response.canceled() {
            let reason = match response.cancel_reason() {
                "" => "etcd cancelled the watch".to_string(),
                reason => format!("etcd cancelled the watch: {reason}"),
            };
            return Some(Err(self.failed("watching", reason)));
        }
        // The creation acknowledgement says nothing about progress.
        if response.created() {
            return None;
        }
        let revision = header_revision(response.header());
        let events = response
            .events()
            .iter()
            .map(|event| {
                let kind = match event.event_type() {
                    EventType::Put => KvEventKind::Put,
                    EventType::Delete => KvEventKind::Delete,
                };
                let kv = event
                    .kv()
                    .cloned()
                    .ok_or_else(|| StorageError::InvalidObject {
                        key: self.prefix.clone(),
                        reason: "etcd watch event without a key".into(),
                    })?;
                Ok(KvEvent {
                    kind,
                    kv: convert(kv)?,
                    prev: event.prev_kv().cloned().map(convert).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>();
        Some(events.map(|events| KvWatchResponse { events, revision }))
    }
}
