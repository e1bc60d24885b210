//! Tuning knobs of the SQLite backend, with defaults fit for a small edge node.

use std::path::PathBuf;

/// How to open a [`crate::SqliteBackend`].
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file, created if missing (its directory must exist); `None` keeps the
    /// database in memory for the life of the backend.
    pub path: Option<PathBuf>,
    /// The most writes committed together in one transaction (group commit).
    pub max_batch: usize,
    /// WAL pages after which SQLite checkpoints on its own; past twice that size the writer
    /// forces a truncating checkpoint, so the WAL file stays bounded.
    pub wal_checkpoint_pages: u32,
    /// Connections reads run on, in parallel with the writer.
    pub read_connections: usize,
    /// `synchronous=FULL` (an acknowledged write survives power loss) rather than `NORMAL`
    /// (it survives a crash of the process, not of the machine).
    pub synchronous_full: bool,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            path: None,
            max_batch: 256,
            wal_checkpoint_pages: 1000,
            read_connections: 4,
            synchronous_full: true,
        }
    }
}
