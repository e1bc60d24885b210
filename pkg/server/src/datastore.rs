//! Opens the configured datastore as a [`KvBackend`], and closes it when the server stops.
//!
//! Every failure here happens at start and names what it was opening — the SQLite file, or
//! the etcd endpoints — with the cause underneath, so `rkube server` exits with an error a
//! person can act on instead of serving a broken cluster.

use rkube_storage::{KvBackend, StorageError};
use rkube_storage_etcd::{EtcdBackend, EtcdConfig};
use rkube_storage_sqlite::SqliteBackend;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{DatastoreEndpoint, DatastoreTls};

/// The datastore could not be opened or closed.
#[derive(Debug, thiserror::Error)]
pub enum DatastoreError {
    /// A directory for the server's state could not be created.
    #[error("creating directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The filesystem's refusal.
        #[source]
        source: io::Error,
    },
    /// The SQLite database could not be opened (unwritable, corrupt, not a database).
    #[error("opening SQLite datastore {path}")]
    Sqlite {
        /// The database file, or `:memory:`.
        path: String,
        /// The backend's error.
        #[source]
        source: StorageError,
    },
    /// Opening SQLite did not finish (the blocking task was lost).
    #[error("opening SQLite datastore {path}: the opening task failed")]
    SqliteTask {
        /// The database file.
        path: String,
        /// Why the task ended.
        #[source]
        source: tokio::task::JoinError,
    },
    /// etcd could not be reached or refused us; the source names the endpoints.
    #[error("opening the etcd datastore")]
    Etcd(#[source] StorageError),
    /// Closing the datastore failed: writes may not have reached disk.
    #[error("closing the datastore")]
    Close(#[source] StorageError),
}

/// An open datastore: the backend the server uses, and what closing it takes.
#[derive(Clone)]
pub enum Datastore {
    /// The embedded SQLite datastore.
    Sqlite(Arc<SqliteBackend>),
    /// An external etcd.
    Etcd(Arc<EtcdBackend>),
}

impl std::fmt::Debug for Datastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Datastore::Sqlite(_) => "Datastore::Sqlite",
            Datastore::Etcd(_) => "Datastore::Etcd",
        })
    }
}

impl Datastore {
    /// Opens `endpoint`: creates SQLite's directory (mode 0700: the database holds every
    /// Secret) and opens the file, or connects to etcd and checks that it answers.
    pub async fn open(
        endpoint: &DatastoreEndpoint,
        tls: &DatastoreTls,
    ) -> Result<Datastore, DatastoreError> {
        match endpoint {
            DatastoreEndpoint::Sqlite(path) => {
                if let Some(dir) = path.parent() {
                    create_private_dir(dir)?;
                }
                let owned = path.clone();
                let opened = tokio::task::spawn_blocking(move || SqliteBackend::open(&owned))
                    .await
                    .map_err(|source| DatastoreError::SqliteTask {
                        path: path.display().to_string(),
                        source,
                    })?;
                let backend = opened.map_err(|source| DatastoreError::Sqlite {
                    path: path.display().to_string(),
                    source,
                })?;
                Ok(Datastore::Sqlite(Arc::new(backend)))
            }
            DatastoreEndpoint::SqliteInMemory => {
                let backend =
                    SqliteBackend::open_in_memory().map_err(|source| DatastoreError::Sqlite {
                        path: ":memory:".to_string(),
                        source,
                    })?;
                Ok(Datastore::Sqlite(Arc::new(backend)))
            }
            DatastoreEndpoint::Etcd(endpoints) => connect_etcd(endpoints, tls).await,
        }
    }

    /// The backend, for the object store, the compactor and the health checks.
    pub fn backend(&self) -> Arc<dyn KvBackend> {
        match self {
            Datastore::Sqlite(b) => b.clone(),
            Datastore::Etcd(b) => b.clone(),
        }
    }

    /// Closes the datastore once nothing uses it any more. For SQLite this drains the group
    /// commit and checkpoints the WAL, so every acknowledged write is in the database file.
    /// etcd keeps its own data safe; dropping the client is all it takes.
    pub async fn close(&self) -> Result<(), DatastoreError> {
        match self {
            Datastore::Sqlite(b) => b.close().await.map_err(DatastoreError::Close),
            Datastore::Etcd(_) => Ok(()),
        }
    }
}

/// Connects to etcd; the backend checks, within the configured connect timeout, that a member
/// answers, so an unreachable cluster fails the start instead of the first request.
async fn connect_etcd(
    endpoints: &[String],
    tls: &DatastoreTls,
) -> Result<Datastore, DatastoreError> {
    let config = EtcdConfig {
        ca_file: tls.ca_file.clone(),
        cert_file: tls.cert_file.clone(),
        key_file: tls.key_file.clone(),
        ..EtcdConfig::new(endpoints.to_vec())
    };
    let backend = EtcdBackend::connect(config)
        .await
        .map_err(DatastoreError::Etcd)?;
    Ok(Datastore::Etcd(Arc::new(backend)))
}

/// Creates `dir` and any missing parents with mode 0700 (existing ones keep their mode).
pub fn create_private_dir(dir: &Path) -> Result<(), DatastoreError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| DatastoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::*;

    fn chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }

    #[tokio::test]
    async fn sqlite_directory_is_private_and_data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = DatastoreEndpoint::default_for(dir.path());
        let store = Datastore::open(&endpoint, &DatastoreTls::default())
            .await
            .unwrap();
        let backend = store.backend();
        backend
            .create("/registry/a", bytes::Bytes::from_static(b"1"), None)
            .await
            .unwrap();
        let revision = backend.current_revision().await.unwrap();
        drop(backend);
        store.close().await.unwrap();
        drop(store);
        let mode = std::fs::metadata(dir.path().join("server/db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);

        let store = Datastore::open(&endpoint, &DatastoreTls::default())
            .await
            .unwrap();
        let got = store.backend().get("/registry/a", None).await.unwrap();
        assert_eq!(got.kv.unwrap().value, bytes::Bytes::from_static(b"1"));
        assert_eq!(got.revision, revision);
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn corrupt_database_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
        let err = Datastore::open(
            &DatastoreEndpoint::Sqlite(path.clone()),
            &DatastoreTls::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, DatastoreError::Sqlite { .. }), "{err:?}");
        assert!(
            chain(&err).contains(&path.display().to_string()),
            "{}",
            chain(&err)
        );
    }

    #[tokio::test]
    async fn unusable_data_dir_names_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "").unwrap();
        let endpoint = DatastoreEndpoint::default_for(&file);
        let err = Datastore::open(&endpoint, &DatastoreTls::default())
            .await
            .unwrap_err();
        let DatastoreError::CreateDir { path, .. } = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(path, &file.join("server/db"));
    }

    #[tokio::test]
    async fn unreachable_etcd_names_the_endpoints() {
        // A port that was just free and is now closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = DatastoreEndpoint::Etcd(vec![format!("http://127.0.0.1:{port}")]);
        let started = std::time::Instant::now();
        let err = Datastore::open(&endpoint, &DatastoreTls::default())
            .await
            .unwrap_err();
        let text = chain(&err);
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        let limit = EtcdConfig::new(Vec::new()).connect_timeout + Duration::from_secs(2);
        assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
    }
}
