//! The writer thread: the only connection that writes.
//!
//! Writes arrive on a channel. The thread takes every request waiting (up to `max_batch`), runs
//! each in its own SAVEPOINT inside one transaction (a failed compare-and-swap rolls back only
//! itself), commits once (one fsync for the whole batch), publishes the batch's events to the
//! watchers, and only then answers the callers. Between batches it deletes expired keys (waking
//! at the next expiry, never polling), compacts in small chunks so writes never wait long, and
//! truncates the WAL when it grows past its limit.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rkube_storage::{CasOutcome, KeyValue, KvEvent, Result, Revision, StorageError};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{broadcast, oneshot};

use crate::SqliteConfig;
use crate::db::{Location, compacted, fail, last_revision, wal_limit_bytes};
use crate::read::{current, event, newest_row, tombstone};

/// Log rows one compaction step looks at, so a compaction never holds the write lock long.
const COMPACT_CHUNK: i64 = 1000;

/// Keys whose TTL passed by ?1, oldest first, at most ?2.
pub(crate) const EXPIRED: &str =
    "SELECT key, revision FROM current WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2";

/// Deletes log rows in `(?1, ?2]` that compaction at ?3 frees (see [`compact_chunk`]).
pub(crate) const COMPACT: &str = "DELETE FROM log WHERE revision > ?1 AND revision <= ?2
    AND (deleted = 1 OR EXISTS (SELECT 1 FROM log n WHERE n.key = log.key
                                AND n.prev_revision = log.revision AND n.revision < ?3))";

/// A request to the writer.
pub(crate) enum Command {
    /// A conditional write, answered once it is durable.
    Write(WriteOp, oneshot::Sender<Result<CasOutcome>>),
    /// Compact history up to a revision, answered when done.
    Compact(Revision, oneshot::Sender<Result<()>>),
    /// Finish what is queued, checkpoint, and stop.
    Close(oneshot::Sender<Result<()>>),
}

/// One conditional write.
pub(crate) enum WriteOp {
    Create {
        key: String,
        value: Bytes,
        ttl: Option<Duration>,
    },
    Update {
        key: String,
        expected: Revision,
        value: Bytes,
        ttl: Option<Duration>,
    },
    Delete {
        key: String,
        expected: Revision,
    },
}

/// The events of one committed transaction, shared by every watcher.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The revision of the batch's last write.
    pub(crate) revision: Revision,
    /// Every change, in revision order.
    pub(crate) events: Vec<KvEvent>,
}

/// State the writer shares with the backend handle.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// The newest revision whose events have been published: every write acknowledged so far.
    pub(crate) published: AtomicU64,
    /// Transactions committed by the writer (batches, compaction steps).
    pub(crate) commits: AtomicU64,
}

/// A compaction in progress: rows in `(cursor, target)` are still to be examined.
struct Compaction {
    target: Revision,
    cursor: Revision,
    reply: oneshot::Sender<Result<()>>,
}

pub(crate) struct Writer {
    conn: Connection,
    wal: Option<PathBuf>,
    wal_limit: u64,
    max_batch: usize,
    commands: Receiver<Command>,
    events: broadcast::Sender<Arc<Batch>>,
    shared: Arc<Shared>,
    /// The earliest `expires_at` (unix milliseconds) of any key, if one has a TTL.
    next_expiry: Option<i64>,
    compactions: VecDeque<(Revision, oneshot::Sender<Result<()>>)>,
    compaction: Option<Compaction>,
}

/// A write taken from the channel (with its caller) or made up by TTL expiry (without).
type Item = (WriteOp, Option<oneshot::Sender<Result<CasOutcome>>>);

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        location: &Location,
        config: &SqliteConfig,
        commands: Receiver<Command>,
        events: broadcast::Sender<Arc<Batch>>,
        shared: Arc<Shared>,
    ) -> Result<Self> {
        let mut writer = Writer {
            wal: location.path().map(|p| {
                let mut wal = p.as_os_str().to_owned();
                wal.push("-wal");
                PathBuf::from(wal)
            }),
            wal_limit: wal_limit_bytes(config),
            max_batch: config.max_batch.max(1),
            conn,
            commands,
            events,
            shared,
            next_expiry: None,
            compactions: VecDeque::new(),
            compaction: None,
        };
        writer.refresh_expiry()?;
        Ok(writer)
    }

    /// Runs until closed or until every handle is gone.
    pub(crate) fn run(mut self) {
        let close_reply = loop {
            let mut items = Vec::new();
            let mut close = None;
            let mut disconnected = false;
            match self.wait() {
                Ok(command) => self.take(command, &mut items, &mut close),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => disconnected = true,
            }
            while close.is_none() && items.len() < self.max_batch {
                match self.commands.try_recv() {
                    Ok(command) => self.take(command, &mut items, &mut close),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            self.expire(&mut items);
            if !items.is_empty() {
                self.commit_batch(items);
            }
            self.compact_step();
            let _ = self.bound_wal(false);
            if close.is_some() || disconnected {
                break close;
            }
        };
        // Compactions already asked for still run: their callers are waiting.
        while self.compaction.is_some() || !self.compactions.is_empty() {
            self.compact_step();
        }
        let result = self.bound_wal(true);
        if let Some(reply) = close_reply {
            let _ = reply.send(result);
        }
    }

    /// Blocks for the next command, no longer than until the next expiry and not at all while
    /// a compaction is under way.
    fn wait(&self) -> std::result::Result<Command, RecvTimeoutError> {
        if self.compaction.is_some() || !self.compactions.is_empty() {
            return self.commands.try_recv().map_err(|e| match e {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            });
        }
        match self.next_expiry {
            None => self
                .commands
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => {
                let wait = u64::try_from(at.saturating_sub(now_millis())).unwrap_or(0);
                self.commands.recv_timeout(Duration::from_millis(wait))
            }
        }
    }

    fn take(
        &mut self,
        command: Command,
        items: &mut Vec<Item>,
        close: &mut Option<oneshot::Sender<Result<()>>>,
    ) {
        match command {
            Command::Write(op, reply) => items.push((op, Some(reply))),
            Command::Compact(revision, reply) => self.compactions.push_back((revision, reply)),
            Command::Close(reply) => *close = Some(reply),
        }
    }

    /// Adds a delete for every key whose TTL has passed (at most a batch's worth).
    fn expire(&mut self, items: &mut Vec<Item>) {
        let now = now_millis();
        if self.next_expiry.is_none_or(|at| at > now) {
            return;
        }
        let expired = self.conn.prepare_cached(EXPIRED).and_then(|mut stmt| {
            let limit = i64::try_from(self.max_batch).unwrap_or(i64::MAX);
            stmt.query_map(params![now, limit], |row| {
                Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Revision>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        });
        match expired {
            // Nothing due after all (the key was rewritten or deleted): look again.
            Ok(expired) if expired.is_empty() => {
                if let Err(e) = self.refresh_expiry() {
                    tracing::error!(error = %e, "TTL expiry stalls until the next write");
                }
            }
            Ok(expired) => {
                for (key, expected) in expired {
                    match String::from_utf8(key) {
                        Ok(key) => items.push((WriteOp::Delete { key, expected }, None)),
                        Err(e) => {
                            tracing::error!(error = %e, "expired key is not UTF-8; left in place")
                        }
                    }
                }
            }
            Err(e) => {
                // Retrying at once would spin; the next write with a TTL looks again.
                tracing::error!(error = %e, "could not look up expired keys");
                self.next_expiry = None;
            }
        }
    }

    fn refresh_expiry(&mut self) -> Result<()> {
        self.next_expiry = self
            .conn
            .prepare_cached("SELECT MIN(expires_at) FROM current WHERE expires_at IS NOT NULL")
            .and_then(|mut s| s.query_row([], |row| row.get(0)))
            .map_err(fail("reading the next key expiry"))?;
        Ok(())
    }

    /// Runs `items` in one transaction, publishes the events, answers the callers.
    fn commit_batch(&mut self, items: Vec<Item>) {
        let touches_ttl = items.iter().any(|(op, reply)| {
            reply.is_none()
                || matches!(
                    op,
                    WriteOp::Create { ttl: Some(_), .. } | WriteOp::Update { ttl: Some(_), .. }
                )
        });
        let (ops, replies): (Vec<WriteOp>, Vec<_>) = items.into_iter().unzip();
        let outcomes = self.run_batch(&ops);
        if touches_ttl && let Err(e) = self.refresh_expiry() {
            tracing::error!(error = %e, "TTL expiry stalls until the next write");
        }
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            Err(e) => {
                let message = e.to_string();
                tracing::error!(error = %message, "write batch failed");
                for reply in replies.into_iter().flatten() {
                    let _ = reply.send(Err(StorageError::unavailable(
                        "committing a write",
                        message.clone(),
                    )));
                }
                return;
            }
        };
        self.shared.commits.fetch_add(1, Ordering::Relaxed);
        let mut events = Vec::new();
        let mut answers = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            answers.push(outcome.map(|(outcome, event)| {
                events.extend(event);
                outcome
            }));
        }
        if let Some(last) = events.last() {
            let revision = last.kv.mod_revision;
            // Nobody listening is fine; watchers subscribe before they read history.
            let _ = self.events.send(Arc::new(Batch { revision, events }));
            self.shared.published.store(revision, Ordering::Release);
        }
        for (reply, answer) in replies.into_iter().zip(answers) {
            match reply {
                Some(reply) => {
                    let _ = reply.send(answer);
                }
                None => {
                    if let Err(e) = answer {
                        tracing::error!(error = %e, "deleting an expired key failed");
                    }
                }
            }
        }
    }

    /// One transaction, one savepoint per write. The outer error fails the whole batch.
    #[allow(clippy::type_complexity)]
    fn run_batch(&self, ops: &[WriteOp]) -> Result<Vec<Result<(CasOutcome, Option<KvEvent>)>>> {
        let conn = &self.conn;
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(fail("starting a write transaction"))?;
        let body = || -> Result<Vec<_>> {
            let now = now_millis();
            let mut outcomes = Vec::with_capacity(ops.len());
            for op in ops {
                conn.execute_batch("SAVEPOINT write")
                    .map_err(fail("starting a write"))?;
                let outcome = apply(conn, op, now);
                if outcome.is_err() {
                    conn.execute_batch("ROLLBACK TO write")
                        .map_err(fail("undoing a failed write"))?;
                }
                conn.execute_batch("RELEASE write")
                    .map_err(fail("finishing a write"))?;
                outcomes.push(outcome);
            }
            conn.execute_batch("COMMIT")
                .map_err(fail("committing a write batch"))?;
            Ok(outcomes)
        };
        body().inspect_err(|_| {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
        })
    }

    /// Starts the next queued compaction, or runs one chunk of the current one.
    fn compact_step(&mut self) {
        if self.compaction.is_none() {
            let Some((target, reply)) = self.compactions.pop_front() else {
                return;
            };
            match self.start_compaction(target) {
                Ok(true) => {
                    self.compaction = Some(Compaction {
                        target,
                        cursor: 0,
                        reply,
                    });
                }
                Ok(false) => {
                    let _ = reply.send(Ok(()));
                    return;
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                    return;
                }
            }
        }
        let Some(compaction) = self.compaction.as_mut() else {
            return;
        };
        match compact_chunk(&self.conn, compaction.target, compaction.cursor) {
            Ok(Some(cursor)) => {
                self.shared.commits.fetch_add(1, Ordering::Relaxed);
                compaction.cursor = cursor;
            }
            Ok(None) => {
                if let Some(done) = self.compaction.take() {
                    let _ = done.reply.send(Ok(()));
                }
            }
            Err(e) => {
                if let Some(failed) = self.compaction.take() {
                    let _ = failed.reply.send(Err(e));
                }
            }
        }
    }

    /// Records the new compaction point (from here on, reads below it fail); false when there
    /// is nothing to do.
    fn start_compaction(&self, target: Revision) -> Result<bool> {
        let current = last_revision(&self.conn)?;
        if target > current {
            return Err(StorageError::TooLargeResourceVersion {
                requested: target,
                current,
            });
        }
        let compacted = compacted(&self.conn)?;
        if target <= compacted {
            // etcd refuses to compact at or below the compaction point.
            return if target == 0 {
                Ok(false)
            } else {
                Err(StorageError::Compacted {
                    requested: target,
                    compacted,
                })
            };
        }
        self.conn
            .execute(
                "UPDATE meta SET value = ?1 WHERE name = 'compacted'",
                params![target],
            )
            .map_err(fail("recording the compaction point"))?;
        self.shared.commits.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Checkpoints when the WAL outgrew its limit, or always (`force`, on close): TRUNCATE
    /// resets the file to zero bytes.
    fn bound_wal(&self, force: bool) -> Result<()> {
        let Some(wal) = &self.wal else {
            return Ok(());
        };
        if !force {
            let size = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
            if size <= self.wal_limit {
                return Ok(());
            }
        }
        // A reader still on an old snapshot makes this report busy; the next try gets it.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(fail("checkpointing the WAL"))
            .inspect_err(|e| tracing::warn!(error = %e, "WAL checkpoint failed"))
    }
}

/// Runs one write inside the current savepoint.
fn apply(conn: &Connection, op: &WriteOp, now: i64) -> Result<(CasOutcome, Option<KvEvent>)> {
    let key = match op {
        WriteOp::Create { key, .. } | WriteOp::Update { key, .. } | WriteOp::Delete { key, .. } => {
            key
        }
    };
    let existing = current(conn, key)?;
    let revision = last_revision(conn)? + 1;
    let expires_at = |ttl: &Option<Duration>| {
        ttl.map(|t| now.saturating_add(i64::try_from(t.as_millis()).unwrap_or(i64::MAX)))
    };
    let mismatch = |current: Option<KeyValue>| Ok((CasOutcome::Mismatch { current }, None));
    match op {
        WriteOp::Create { value, ttl, .. } => {
            if existing.is_some() {
                return mismatch(existing);
            }
            // The predecessor of a re-created key is its tombstone (if not compacted away).
            let prev_revision = newest_row(conn, key)?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: revision,
                mod_revision: revision,
            };
            append(conn, &kv, prev_revision, false, expires_at(ttl))?;
            Ok((
                CasOutcome::Written {
                    revision,
                    prev: None,
                },
                Some(event(kv, false, None)),
            ))
        }
        WriteOp::Update {
            expected,
            value,
            ttl,
            ..
        } => {
            let prev = match existing {
                Some(kv) if kv.mod_revision == *expected => kv,
                other => return mismatch(other),
            };
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: prev.create_revision,
                mod_revision: revision,
            };
            append(conn, &kv, prev.mod_revision, false, expires_at(ttl))?;
            Ok((
                CasOutcome::Written {
                    revision,
                    prev: Some(prev.clone()),
                },
                Some(event(kv, false, Some(prev))),
            ))
        }
        WriteOp::Delete { expected, .. } => {
            let prev = match existing {
                Some(kv) if kv.mod_revision == *expected => kv,
                other => return mismatch(other),
            };
            let kv = KeyValue {
                key: key.clone(),
                value: Bytes::new(),
                create_revision: prev.create_revision,
                mod_revision: revision,
            };
            append(conn, &kv, prev.mod_revision, true, None)?;
            Ok((
                CasOutcome::Written {
                    revision,
                    prev: Some(prev.clone()),
                },
                Some(event(tombstone(key.clone(), revision), true, Some(prev))),
            ))
        }
    }
}

/// Appends a row to the log and mirrors it into `current`, in the caller's transaction.
fn append(
    conn: &Connection,
    kv: &KeyValue,
    prev_revision: Revision,
    deleted: bool,
    expires_at: Option<i64>,
) -> Result<()> {
    let key = kv.key.as_bytes();
    conn.prepare_cached(
        "INSERT INTO log (revision, key, create_revision, prev_revision, deleted, value, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            kv.mod_revision,
            key,
            kv.create_revision,
            prev_revision,
            deleted,
            kv.value.as_ref(),
            expires_at
        ])
    })
    .map_err(|e| StorageError::unavailable(format!("appending {} to the log", kv.key), e))?;
    let mirrored = if deleted {
        conn.prepare_cached("DELETE FROM current WHERE key = ?1")
            .and_then(|mut s| s.execute(params![key]))
    } else {
        conn.prepare_cached(
            "INSERT INTO current (key, revision, create_revision, value, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (key) DO UPDATE SET revision = excluded.revision,
                 create_revision = excluded.create_revision, value = excluded.value,
                 expires_at = excluded.expires_at",
        )
        .and_then(|mut s| {
            s.execute(params![
                key,
                kv.mod_revision,
                kv.create_revision,
                kv.value.as_ref(),
                expires_at
            ])
        })
    };
    mirrored
        .map(drop)
        .map_err(|e| StorageError::unavailable(format!("updating current value of {}", kv.key), e))
}

/// Deletes the history below `target` in the log rows after `cursor`, one chunk in its own
/// transaction. Returns the new cursor, or `None` when the compaction is complete.
///
/// A row below `target` stays only if it is its key's newest row below `target` and not a
/// tombstone: that keeps the state at `target` readable, and the previous value of every event
/// at or after `target`, so a watch from `target - 1` still gets complete events.
fn compact_chunk(
    conn: &Connection,
    target: Revision,
    cursor: Revision,
) -> Result<Option<Revision>> {
    let chunk_end: Option<Revision> = conn
        .prepare_cached(
            "SELECT revision FROM log WHERE revision > ?1 AND revision < ?2
             ORDER BY revision LIMIT 1 OFFSET ?3",
        )
        .and_then(|mut s| {
            s.query_row(params![cursor, target, COMPACT_CHUNK - 1], |row| row.get(0))
                .optional()
        })
        .map_err(fail("planning a compaction step"))?;
    let end = chunk_end.unwrap_or(target.saturating_sub(1));
    if end <= cursor {
        return Ok(None);
    }
    conn.prepare_cached(COMPACT)
        .and_then(|mut s| s.execute(params![cursor, end, target]))
        .map_err(fail("compacting the log"))?;
    Ok(chunk_end.map(|_| end))
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
