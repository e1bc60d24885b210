//! Acknowledged writes survive SIGKILL: a child process writes and reports each acknowledged
//! write; the parent kills it at a random moment, reopens the file and finds every one.
//!
//! The child is this test binary itself, re-run with `CHILD_DB` naming the database.

// Helpers outside #[test] fns unwrap too: a panic is the test failing, with a backtrace.
#![allow(clippy::unwrap_used)]

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rkube_storage::{CasOutcome, KvBackend};
use rkube_storage_sqlite::SqliteBackend;

const CHILD_DB: &str = "RKUBE_DURABILITY_CHILD_DB";
const TEST_NAME: &str = "acknowledged_writes_survive_sigkill";

/// Kills the child if the test fails half-way.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(path) = std::env::var(CHILD_DB) {
        return child(&path);
    }
    let rounds: usize = std::env::var("RKUBE_DURABILITY_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let mut total = 0;
    for round in 0..rounds {
        total += parent_round(round);
    }
    assert!(total > 0, "the child never acknowledged a write");
}

/// One child run; returns how many acknowledged writes were checked.
fn parent_round(round: usize) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_DB, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        let mut stdout = BufReader::new(stdout);
        let mut line = Vec::new();
        // Only whole lines count: a line cut short by the kill was not fully reported.
        while stdout.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            if let Some(ack) = line
                .strip_suffix(b"\n")
                .and_then(|l| std::str::from_utf8(l).ok())
                .and_then(|l| l.strip_prefix("ack "))
                .and_then(|l| l.split_once(' '))
            {
                acks.push((ack.0.to_string(), ack.1.parse::<u64>().unwrap()));
            }
            line.clear();
        }
        acks
    });
    let delay = 100 + RandomState::new().hash_one(round) % 400;
    std::thread::sleep(Duration::from_millis(delay));
    // SIGKILL: no destructor, no close, no checkpoint.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let acks = reader.join().unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let backend = SqliteBackend::open(&path).unwrap();
        for (key, revision) in &acks {
            let kv = backend.get(key, None).await.unwrap().kv.unwrap_or_else(|| {
                panic!("round {round}: acknowledged {key} at {revision} is lost")
            });
            assert_eq!(kv.mod_revision, *revision, "round {round}: {key}");
        }
        let newest = acks.iter().map(|(_, r)| *r).max().unwrap_or(0);
        match backend
            .create("/after/restart", Bytes::from("x"), None)
            .await
            .unwrap()
        {
            CasOutcome::Written { revision, .. } => assert!(revision > newest),
            CasOutcome::Mismatch { .. } => panic!("fresh key exists"),
        }
        backend.close().await.unwrap();
    });
    eprintln!(
        "round {round}: killed after {delay} ms, {} acknowledged writes all present",
        acks.len()
    );
    acks.len()
}

/// The child: several writers on one file database, each reporting every acknowledged write,
/// until killed.
fn child(path: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let backend = Arc::new(SqliteBackend::open(path.as_ref()).unwrap());
        let writers: Vec<_> = (0..8)
            .map(|writer| {
                let backend = Arc::clone(&backend);
                tokio::spawn(async move {
                    for i in 0.. {
                        let key = format!("/registry/configmaps/w{writer}/cm{i}");
                        let value = Bytes::from(format!("{{\"data\":{i}}}"));
                        if let CasOutcome::Written { revision, .. } =
                            backend.create(&key, value, None).await.unwrap()
                        {
                            let mut out = std::io::stdout().lock();
                            writeln!(out, "ack {key} {revision}").unwrap();
                            out.flush().unwrap();
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
    });
}
