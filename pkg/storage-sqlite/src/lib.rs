//! # Layout
//! rkube's embedded default datastore: a [`KvBackend`] over one SQLite database, etcd's model
//! (one revision counter, history until compaction, watches from a revision) in two tables.
//!
//! - [`SqliteBackend`] (here): the handle callers hold. Writes go to the writer thread and wait
//!   for its answer; reads go to the reader pool; watches subscribe to the writer's batches.
//! - [`SqliteConfig`] (`config`): the path (or in-memory) and the tuning knobs.
//! - `db`: opening connections (WAL, `synchronous`, WAL bounds), the schema, and row decoding.
//! - `writer`: the one thread that writes. It group-commits whatever writes are waiting (one
//!   transaction, a savepoint each), then publishes the batch's events and answers the callers;
//!   it also expires TTL keys, compacts in small steps, and keeps the WAL bounded.
//! - `read`: the pool of read connections (each read on `spawn_blocking`, in one snapshot) and
//!   the queries: latest reads from the `current` table, historical ones from the `log`.
//! - `watch`: a watch replays the log after its revision, then follows the writer's batches.
//!
//! Writes flow caller -> channel -> writer -> (commit) -> broadcast -> watchers, then the answer
//! goes back to the caller, so an acknowledged write is durable and already visible to watches.
//!
//! In-memory mode uses SQLite's `memdb` VFS under a name unique to the backend: the writer and
//! the readers open the same shared database, so everything runs the same code as a file,
//! except that `memdb` has no WAL (readers and the writer take turns on its locks instead).

mod config;
mod db;
mod read;
mod watch;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rkube_storage::{
    CasOutcome, GetResponse, KvBackend, KvWatchStream, RangeRequest, RangeResponse, Result,
    Revision, StorageError,
};
use tokio::sync::{broadcast, oneshot};

pub use config::SqliteConfig;

use crate::db::Location;
use crate::read::Readers;
use crate::writer::{Batch, Command, Shared, WriteOp, Writer};

/// Write batches a watcher may fall behind before it is closed with `WatcherTooSlow`.
const WATCH_BUFFER: usize = 1024;

/// A [`KvBackend`] stored in SQLite. See the crate docs for how it works.
pub struct SqliteBackend {
    describe: String,
    /// `None` once closed.
    commands: Mutex<Option<std::sync::mpsc::Sender<Command>>>,
    /// Kept to subscribe watchers; `None` once closed, so watches end when the writer stops.
    events: Mutex<Option<broadcast::Sender<Arc<Batch>>>>,
    readers: Arc<Readers>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("database", &self.describe)
            .finish()
    }
}

impl SqliteBackend {
    /// Opens (or creates) the database file at `path`; its directory must exist.
    pub fn open(path: &Path) -> Result<Self> {
        Self::with_config(SqliteConfig {
            path: Some(path.to_path_buf()),
            ..SqliteConfig::default()
        })
    }

    /// A database that lives in memory and disappears with the backend.
    pub fn open_in_memory() -> Result<Self> {
        Self::with_config(SqliteConfig::default())
    }

    /// Opens the database `config` describes and starts the writer thread.
    pub fn with_config(config: SqliteConfig) -> Result<Self> {
        let location = Location::from_config(&config);
        let conn = location.open_writer(&config)?;
        let shared = Arc::new(Shared::default());
        shared
            .published
            .store(db::last_revision(&conn)?, Ordering::Release);
        let (commands, receiver) = std::sync::mpsc::channel();
        let (events, _) = broadcast::channel(WATCH_BUFFER);
        let writer = Writer::new(
            conn,
            &location,
            &config,
            receiver,
            events.clone(),
            Arc::clone(&shared),
        )?;
        std::thread::Builder::new()
            .name("rkube-sqlite-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StorageError::unavailable("starting the SQLite writer thread", e))?;
        Ok(SqliteBackend {
            describe: location.describe(),
            commands: Mutex::new(Some(commands)),
            events: Mutex::new(Some(events)),
            readers: Arc::new(Readers::new(location, config.read_connections)),
            shared,
        })
    }

    /// Finishes every write already sent, checkpoints the WAL into the database file and stops
    /// the writer; later calls fail with `Unavailable`. Closing twice is fine.
    pub async fn close(&self) -> Result<()> {
        let commands = lock(&self.commands).take();
        lock(&self.events).take();
        let result = match commands {
            Some(commands) => {
                let (reply, answer) = oneshot::channel();
                match commands.send(Command::Close(reply)) {
                    Ok(()) => answer.await.unwrap_or(Ok(())),
                    // The writer is gone already: nothing is pending.
                    Err(_) => Ok(()),
                }
            }
            None => Ok(()),
        };
        self.readers.close();
        result
    }

    /// Transactions the writer has committed (for tests of group commit).
    #[cfg(test)]
    pub(crate) fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    async fn send<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let sent = lock(&self.commands)
            .as_ref()
            .map(|commands| commands.send(command(reply)).is_ok());
        if sent != Some(true) {
            return Err(self.closed());
        }
        answer.await.map_err(|_| self.closed())?
    }

    async fn write(&self, op: WriteOp) -> Result<CasOutcome> {
        self.send(|reply| Command::Write(op, reply)).await
    }

    fn closed(&self) -> StorageError {
        StorageError::unavailable(
            format!("writing to {}", self.describe),
            "the SQLite datastore is closed",
        )
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl KvBackend for SqliteBackend {
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<GetResponse> {
        let key = key.to_string();
        self.readers
            .run(move |conn| read::get(conn, &key, revision))
            .await
    }

    async fn range(&self, request: RangeRequest<'_>) -> Result<RangeResponse> {
        let prefix = request.prefix.to_string();
        let start = request.start.map(str::to_string);
        let (revision, limit) = (request.revision, request.limit);
        self.readers
            .run(move |conn| {
                read::range(
                    conn,
                    &RangeRequest {
                        prefix: &prefix,
                        start: start.as_deref(),
                        revision,
                        limit,
                    },
                )
            })
            .await
    }

    async fn count(&self, prefix: &str) -> Result<u64> {
        let prefix = prefix.to_string();
        self.readers
            .run(move |conn| read::count(conn, &prefix))
            .await
    }

    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<CasOutcome> {
        self.write(WriteOp::Create {
            key: key.to_string(),
            value,
            ttl,
        })
        .await
    }

    async fn update(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<CasOutcome> {
        self.write(WriteOp::Update {
            key: key.to_string(),
            expected,
            value,
            ttl,
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<CasOutcome> {
        self.write(WriteOp::Delete {
            key: key.to_string(),
            expected,
        })
        .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<KvWatchStream> {
        // Subscribe first: whatever commits after the snapshot below arrives live.
        let batches = lock(&self.events)
            .as_ref()
            .map(broadcast::Sender::subscribe)
            .ok_or_else(|| {
                StorageError::unavailable(
                    format!("watching {}", self.describe),
                    "the SQLite datastore is closed",
                )
            })?;
        let (snapshot, compacted) = self.readers.run(read::watch_start).await?;
        read::check_watchable(after, compacted)?;
        Ok(watch::start(
            Arc::clone(&self.readers),
            batches,
            prefix,
            after,
            snapshot,
        ))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.published.load(Ordering::Acquire))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.send(|reply| Command::Compact(revision, reply)).await
    }
}
