//! Opening connections, the schema, and turning rows into key-values.
//!
//! Tables:
//! - `log`: one row per write, append-only until compaction. `revision` is an AUTOINCREMENT
//!   primary key, so a revision is never handed out twice, even after compaction deleted the
//!   newest rows. `prev_revision` is the revision of the key's previous row (0 for its first),
//!   and `UNIQUE (key, prev_revision)` makes the database itself refuse a second successor of
//!   one row: two compare-and-swaps from the same revision cannot both land. The same index
//!   orders a key's rows by revision (each row's `prev_revision` is its predecessor's revision),
//!   which is what historical reads and compaction walk.
//! - `current`: the live keys (no tombstones), for point reads, range scans and counts.
//! - `meta`: the schema version and the compaction point.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rkube_storage::{KeyValue, Result, Revision, StorageError};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};

use crate::SqliteConfig;

/// The schema this code reads and writes; a database with a newer one is refused.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits on a lock before giving up. Readers never wait on the writer in
/// WAL mode; this is a backstop for checkpoints and for the in-memory database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    revision INTEGER PRIMARY KEY AUTOINCREMENT,
    key BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    value BLOB NOT NULL,
    expires_at INTEGER,
    UNIQUE (key, prev_revision)
);
CREATE TABLE IF NOT EXISTS current (
    key BLOB PRIMARY KEY,
    revision INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    value BLOB NOT NULL,
    expires_at INTEGER
);
CREATE INDEX IF NOT EXISTS current_expiry ON current (expires_at) WHERE expires_at IS NOT NULL;
INSERT OR IGNORE INTO meta (name, value) VALUES ('compacted', 0);
";

/// Where the database lives.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// A file on disk.
    File(PathBuf),
    /// A named `memdb` database: every connection opening the same name shares it, so the reader
    /// pool and the writer see one database, exactly as with a file.
    Memory(String),
}

impl Location {
    pub(crate) fn from_config(config: &SqliteConfig) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        match &config.path {
            Some(path) => Location::File(path.clone()),
            None => Location::Memory(format!(
                "file:/rkube-{}-{}?vfs=memdb",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            )),
        }
    }

    /// The database file, for messages and for sizing the WAL.
    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Location::File(path) => Some(path),
            Location::Memory(_) => None,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Location::File(path) => path.display().to_string(),
            Location::Memory(_) => "in-memory database".into(),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        match self {
            Location::File(path) => Connection::open_with_flags(path, flags),
            Location::Memory(uri) => {
                Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
            }
        }
    }

    /// Opens the writer's connection: sets WAL and durability, creates or checks the schema.
    pub(crate) fn open_writer(&self, config: &SqliteConfig) -> Result<Connection> {
        let fail = |what: &str| {
            let context = format!("{what} {}", self.describe());
            move |e: rusqlite::Error| StorageError::unavailable(context, e)
        };
        let conn = self.open().map_err(fail("opening SQLite database"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(fail("configuring"))?;
        // The first statement that reads the file: a file that is not a database fails here.
        if let Location::File(_) = self {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(fail("switching to WAL mode in"))?;
        }
        let synchronous = if config.synchronous_full {
            "FULL"
        } else {
            "NORMAL"
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {synchronous};
             PRAGMA wal_autocheckpoint = {pages};
             PRAGMA journal_size_limit = {limit};",
            pages = config.wal_checkpoint_pages,
            limit = wal_limit_bytes(config),
        ))
        .map_err(fail("configuring"))?;
        let found: Option<i64> = conn
            .query_row(
                "SELECT value FROM meta WHERE name = 'schema_version'",
                [],
                |row| row.get(0),
            )
            .optional()
            .or_else(|e| match e {
                // A fresh database has no meta table yet.
                rusqlite::Error::SqliteFailure(_, Some(ref m))
                    if m.starts_with("no such table") =>
                {
                    Ok(None)
                }
                e => Err(e),
            })
            .map_err(fail("reading the schema version of"))?;
        if let Some(version) = found.filter(|&v| v > SCHEMA_VERSION) {
            return Err(StorageError::unavailable(
                format!("opening SQLite database {}", self.describe()),
                format!(
                    "its schema version {version} is newer than the {SCHEMA_VERSION} this rkube \
                     supports; use a newer rkube"
                ),
            ));
        }
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE;{SCHEMA}
             INSERT OR REPLACE INTO meta (name, value) VALUES ('schema_version', {SCHEMA_VERSION});
             COMMIT;"
        ))
        .map_err(fail("creating the schema of"))?;
        Ok(conn)
    }

    /// Opens a read connection (after the writer created the schema).
    pub(crate) fn open_reader(&self) -> Result<Connection> {
        let conn = self.open().map_err(|e| {
            StorageError::unavailable(format!("opening a reader on {}", self.describe()), e)
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| conn.pragma_update(None, "query_only", true))
            .map_err(|e| {
                StorageError::unavailable(format!("configuring a reader on {}", self.describe()), e)
            })?;
        Ok(conn)
    }
}

/// Past this size the WAL is checkpointed with TRUNCATE, and SQLite trims it to this size.
pub(crate) fn wal_limit_bytes(config: &SqliteConfig) -> u64 {
    // 4 KiB is SQLite's default page size; twice the autocheckpoint size leaves room for it
    // to work on its own before the writer steps in.
    2 * 4096 * u64::from(config.wal_checkpoint_pages.max(1))
}

/// Wraps a SQLite failure with what was being done.
pub(crate) fn fail(context: &'static str) -> impl Fn(rusqlite::Error) -> StorageError {
    move |e| StorageError::unavailable(context, e)
}

/// The revision of the last write committed (0 for an empty database).
pub(crate) fn last_revision(conn: &Connection) -> Result<Revision> {
    conn.prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'log'")
        .and_then(|mut s| s.query_row([], |row| row.get(0)).optional())
        .map(Option::unwrap_or_default)
        .or_else(|e| match e {
            // sqlite_sequence appears with the first AUTOINCREMENT table; it is there after
            // the schema is created, but be lenient with a database that never had a write.
            rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.starts_with("no such table") => {
                Ok(0)
            }
            e => Err(e),
        })
        .map_err(fail("reading the current revision"))
}

/// The compaction point: reads below it fail with `Compacted`.
pub(crate) fn compacted(conn: &Connection) -> Result<Revision> {
    conn.prepare_cached("SELECT value FROM meta WHERE name = 'compacted'")
        .and_then(|mut s| s.query_row([], |row| row.get(0)))
        .map_err(fail("reading the compaction point"))
}

/// Reads a key-value from four columns starting at `at`: key, value, create and mod revision.
/// A row that does not have the shape we write is reported, never skipped.
pub(crate) fn read_kv(row: &Row<'_>, at: usize) -> Result<KeyValue> {
    let key = read_key(row, at)?;
    let value = match row.get_ref(at + 1) {
        Ok(ValueRef::Blob(b)) => Bytes::copy_from_slice(b),
        Ok(other) => {
            return Err(corrupt(
                &key,
                format!("value is {:?}, not a blob", other.data_type()),
            ));
        }
        Err(e) => return Err(corrupt(&key, e.to_string())),
    };
    let revision = |i: usize| -> Result<Revision> {
        row.get::<_, Revision>(i)
            .map_err(|e| corrupt(&key, e.to_string()))
    };
    Ok(KeyValue {
        create_revision: revision(at + 2)?,
        mod_revision: revision(at + 3)?,
        key,
        value,
    })
}

/// Reads a key column.
pub(crate) fn read_key(row: &Row<'_>, at: usize) -> Result<String> {
    match row.get_ref(at) {
        Ok(ValueRef::Blob(b)) => String::from_utf8(b.to_vec()).map_err(|e| {
            corrupt(
                &String::from_utf8_lossy(b),
                format!("key is not UTF-8: {e}"),
            )
        }),
        Ok(other) => Err(corrupt(
            "?",
            format!("key is {:?}, not a blob", other.data_type()),
        )),
        Err(e) => Err(corrupt("?", e.to_string())),
    }
}

fn corrupt(key: &str, reason: String) -> StorageError {
    StorageError::InvalidObject {
        key: key.to_string(),
        reason: format!("unreadable row in the SQLite datastore: {reason}"),
    }
}

/// The key range `[start, end)` of a prefix, as SQLite blobs.
pub(crate) fn prefix_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let mut end = rkube_storage::kv::prefix_end(prefix);
    // prefix_end answers [0] when no key bound exists (the empty prefix). No UTF-8 string holds
    // the byte 0xff, so [0xff] sorts after every key.
    if end == [0] {
        end = vec![0xff];
    }
    (prefix.as_bytes().to_vec(), end)
}
