//! Reads: a small pool of read-only connections and the queries they run.
//!
//! Every read runs on `spawn_blocking`, inside one read transaction, so the revision it reports
//! and the rows it returns come from the same snapshot. In WAL mode a reader never waits for the
//! writer, and it writes nothing, so reads cost no flash wear.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use rkube_storage::{
    GetResponse, KeyValue, KvEvent, KvEventKind, RangeRequest, RangeResponse, Result, Revision,
    StorageError,
};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Semaphore;

use crate::db::{Location, compacted, fail, last_revision, prefix_range, read_key, read_kv};

/// A key at a past revision. A key's rows ordered by `prev_revision` are ordered by revision:
/// take the newest at or below the revision read (a tombstone means "absent").
pub(crate) const GET_AT: &str = "SELECT key, value, create_revision, revision, deleted FROM log
    WHERE key = ?1 AND revision <= ?2 ORDER BY prev_revision DESC LIMIT 1";

/// Live keys in `[?1, ?2)`, in key order, at most ?3 (-1: all).
pub(crate) const RANGE_LATEST: &str = "SELECT key, value, create_revision, revision FROM current
    WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3";

/// How many live keys lie in `[?1, ?2)`.
pub(crate) const COUNT_LATEST: &str = "SELECT COUNT(*) FROM current WHERE key >= ?1 AND key < ?2";

/// Keys in `[?1, ?2)` at revision ?4: per key the newest row at or below it (the one without a
/// successor at or below it), unless that row is a tombstone.
pub(crate) const RANGE_AT: &str = "SELECT l.key, l.value, l.create_revision, l.revision FROM log l
    WHERE l.key >= ?1 AND l.key < ?2 AND l.revision <= ?4 AND l.deleted = 0
      AND NOT EXISTS (SELECT 1 FROM log n WHERE n.key = l.key
                      AND n.prev_revision = l.revision AND n.revision <= ?4)
    ORDER BY l.key LIMIT ?3";

/// How many keys `RANGE_AT` finds at revision ?3.
pub(crate) const COUNT_AT: &str = "SELECT COUNT(*) FROM log l
    WHERE l.key >= ?1 AND l.key < ?2 AND l.revision <= ?3 AND l.deleted = 0
      AND NOT EXISTS (SELECT 1 FROM log n WHERE n.key = l.key
                      AND n.prev_revision = l.revision AND n.revision <= ?3)";

/// Changes to keys in `[?3, ?4)` with revisions in `(?1, ?2]`, at most ?5, each with its
/// previous value: the predecessor row, unless that was a tombstone (a re-create). Compaction
/// keeps the predecessor of every row at or above the compaction point.
pub(crate) const HISTORY: &str = "SELECT l.key, l.value, l.create_revision, l.revision, l.deleted,
        p.key, p.value, p.create_revision, p.revision
    FROM log l LEFT JOIN log p ON p.revision = l.prev_revision AND p.deleted = 0
    WHERE l.revision > ?1 AND l.revision <= ?2 AND l.key >= ?3 AND l.key < ?4
    ORDER BY l.revision LIMIT ?5";

/// The read connections, opened on first use, at most `size` at a time.
pub(crate) struct Readers {
    location: Location,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    pub(crate) fn new(location: Location, size: usize) -> Self {
        Readers {
            location,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    /// Runs `read` on a pooled connection inside one read transaction.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| StorageError::unavailable("reading: the datastore is closed", e))?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = this
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => this.location.open_reader()?,
            };
            let result = in_read_transaction(&conn, read);
            this.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            result
        })
        .await
        .map_err(|e| StorageError::unavailable("running a read", e))?
    }

    /// Refuses further reads and closes the idle connections.
    pub(crate) fn close(&self) {
        self.permits.close();
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

fn in_read_transaction<T>(
    conn: &Connection,
    read: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.execute_batch("BEGIN")
        .map_err(fail("starting a read transaction"))?;
    let result = read(conn);
    // A read transaction has nothing to keep; ending it releases the snapshot.
    let end = conn
        .execute_batch("ROLLBACK")
        .map_err(fail("ending a read transaction"));
    let value = result?;
    end?;
    Ok(value)
}

/// Checks that `revision` can be read: not compacted away, not in the future.
/// Returns the current revision.
fn check_readable(conn: &Connection, revision: Revision) -> Result<Revision> {
    let compacted = compacted(conn)?;
    if revision < compacted {
        return Err(StorageError::Compacted {
            requested: revision,
            compacted,
        });
    }
    let current = last_revision(conn)?;
    if revision > current {
        return Err(StorageError::TooLargeResourceVersion {
            requested: revision,
            current,
        });
    }
    Ok(current)
}

/// Picks the revision to read at: `None` for the latest state (served from `current`).
fn historical(
    conn: &Connection,
    revision: Option<Revision>,
) -> Result<(Option<Revision>, Revision)> {
    match revision.filter(|&r| r > 0) {
        // Like etcd, revision 0 means "latest".
        None => Ok((None, last_revision(conn)?)),
        Some(rev) => {
            let current = check_readable(conn, rev)?;
            // At the current revision the current table is exact, and index-only.
            Ok(((rev < current).then_some(rev), rev))
        }
    }
}

pub(crate) fn get(conn: &Connection, key: &str, revision: Option<Revision>) -> Result<GetResponse> {
    let (at, served) = historical(conn, revision)?;
    let mut stmt = match at {
        None => conn.prepare_cached(
            "SELECT key, value, create_revision, revision, 0 FROM current WHERE key = ?1",
        ),
        Some(_) => conn.prepare_cached(GET_AT),
    }
    .map_err(fail("preparing a point read"))?;
    let mut rows = match at {
        None => stmt.query(params![key.as_bytes()]),
        Some(rev) => stmt.query(params![key.as_bytes(), rev]),
    }
    .map_err(fail("reading a key"))?;
    let kv = match rows.next().map_err(fail("reading a key"))? {
        Some(row) => {
            let deleted: bool = row.get(4).map_err(fail("reading a key"))?;
            (!deleted).then(|| read_kv(row, 0)).transpose()?
        }
        None => None,
    };
    Ok(GetResponse {
        kv,
        revision: served,
    })
}

pub(crate) fn range(conn: &Connection, request: &RangeRequest<'_>) -> Result<RangeResponse> {
    let (at, served) = historical(conn, request.revision)?;
    let (prefix_start, end) = prefix_range(request.prefix);
    let start = match request.start {
        Some(start) if start.as_bytes() > prefix_start.as_slice() => start.as_bytes().to_vec(),
        _ => prefix_start,
    };
    let limit = request.limit.filter(|&l| l > 0);
    // One row past the limit tells whether there are more.
    let fetch = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX - 1) + 1);
    let (select, count) = match at {
        None => (RANGE_LATEST, COUNT_LATEST),
        Some(_) => (RANGE_AT, COUNT_AT),
    };
    let mut stmt = conn
        .prepare_cached(select)
        .map_err(fail("preparing a range read"))?;
    let mut rows = match at {
        None => stmt.query(params![start, end, fetch]),
        Some(rev) => stmt.query(params![start, end, fetch, rev]),
    }
    .map_err(fail("reading a range"))?;
    let mut kvs = Vec::new();
    while let Some(row) = rows.next().map_err(fail("reading a range"))? {
        kvs.push(read_kv(row, 0)?);
    }
    let more = limit.is_some_and(|l| kvs.len() > l);
    if let Some(l) = limit {
        kvs.truncate(l);
    }
    let count = if more {
        let mut stmt = conn
            .prepare_cached(count)
            .map_err(fail("preparing a count"))?;
        match at {
            None => stmt.query_row(params![start, end], |row| row.get(0)),
            Some(rev) => stmt.query_row(params![start, end, rev], |row| row.get(0)),
        }
        .map_err(fail("counting a range"))?
    } else {
        kvs.len() as u64
    };
    Ok(RangeResponse {
        kvs,
        more,
        count,
        revision: served,
    })
}

pub(crate) fn count(conn: &Connection, prefix: &str) -> Result<u64> {
    let (start, end) = prefix_range(prefix);
    conn.prepare_cached(COUNT_LATEST)
        .and_then(|mut s| s.query_row(params![start, end], |row| row.get(0)))
        .map_err(fail("counting keys"))
}

/// Where a watch starts: the current revision and the compaction point, from one snapshot.
pub(crate) fn watch_start(conn: &Connection) -> Result<(Revision, Revision)> {
    Ok((last_revision(conn)?, compacted(conn)?))
}

/// Fails with `Compacted` when events after `after` are no longer all in the log.
pub(crate) fn check_watchable(after: Revision, compacted: Revision) -> Result<()> {
    if after.saturating_add(1) < compacted {
        return Err(StorageError::Compacted {
            requested: after,
            compacted,
        });
    }
    Ok(())
}

/// Up to `limit` events under `prefix` with revisions in `(after, until]`, from the log.
pub(crate) fn history(
    conn: &Connection,
    prefix: &str,
    after: Revision,
    until: Revision,
    limit: usize,
) -> Result<Vec<KvEvent>> {
    check_watchable(after, compacted(conn)?)?;
    let (start, end) = prefix_range(prefix);
    let mut stmt = conn
        .prepare_cached(HISTORY)
        .map_err(fail("preparing a history read"))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt
        .query(params![after, until, start, end, limit])
        .map_err(fail("reading history"))?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(fail("reading history"))? {
        let deleted: bool = row.get(4).map_err(fail("reading history"))?;
        let has_prev = !matches!(row.get_ref(5), Ok(ValueRef::Null));
        let prev = has_prev.then(|| read_kv(row, 5)).transpose()?;
        let kv = if deleted {
            let key = read_key(row, 0)?;
            let revision: Revision = row.get(3).map_err(fail("reading history"))?;
            tombstone(key, revision)
        } else {
            read_kv(row, 0)?
        };
        events.push(event(kv, deleted, prev));
    }
    Ok(events)
}

/// The key-value a delete event carries: etcd's tombstone, the key at the delete's revision.
pub(crate) fn tombstone(key: String, revision: Revision) -> KeyValue {
    KeyValue {
        key,
        value: Bytes::new(),
        create_revision: 0,
        mod_revision: revision,
    }
}

/// A watch event, the same whether it comes from the log or from a live batch.
pub(crate) fn event(kv: KeyValue, deleted: bool, prev: Option<KeyValue>) -> KvEvent {
    KvEvent {
        kind: if deleted {
            KvEventKind::Delete
        } else {
            KvEventKind::Put
        },
        kv,
        prev,
    }
}

/// The live key-value of `key` as the writer sees it inside its transaction.
pub(crate) fn current(conn: &Connection, key: &str) -> Result<Option<KeyValue>> {
    let mut stmt = conn
        .prepare_cached("SELECT key, value, create_revision, revision FROM current WHERE key = ?1")
        .map_err(fail("preparing a point read"))?;
    let mut rows = stmt
        .query(params![key.as_bytes()])
        .map_err(fail("reading a key"))?;
    rows.next()
        .map_err(fail("reading a key"))?
        .map(|row| read_kv(row, 0))
        .transpose()
}

/// The revision of `key`'s newest log row (tombstones included), 0 if it has none.
pub(crate) fn newest_row(conn: &Connection, key: &str) -> Result<Revision> {
    conn.prepare_cached(
        "SELECT revision FROM log WHERE key = ?1 ORDER BY prev_revision DESC LIMIT 1",
    )
    .and_then(|mut s| {
        s.query_row(params![key.as_bytes()], |row| row.get(0))
            .optional()
    })
    .map(Option::unwrap_or_default)
    .map_err(fail("reading a key's history"))
}
