//! The log backend (`--audit-log-path`): events, already encoded as lines, go through a
//! bounded channel to one writer thread, which appends them to the file (or stdout for `-`)
//! and rotates the file as upstream's lumberjack does.
//!
//! Upstream's log backend runs in `blocking` mode by default: each request writes its own
//! events and waits for the write. Here the request only waits for room in the channel
//! ([`BUFFER`] lines, upstream's batch buffer size), so a disk hiccup costs no request
//! anything until the buffer is full; once it is full, senders block until the writer catches
//! up, so, as in blocking mode, no event is ever dropped and a disk that cannot keep up slows
//! the API down rather than losing its audit trail. Lines in the buffer when the process dies
//! uncleanly are lost; a graceful shutdown ([`LogSink::close`]) writes them all.
//!
//! Rotation (lumberjack's rules): when a line would take the file past `--audit-log-maxsize`
//! MiB, the file is renamed to `<name>-<UTC time as 2006-01-02T15-04-05.000><.ext>` and a new
//! one started; then backups beyond `--audit-log-maxbackup` (newest kept) and older than
//! `--audit-log-maxage` days are deleted. Zero disables each limit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use jiff::Timestamp;

/// Lines the channel holds before senders wait (upstream's default batch buffer size).
pub const BUFFER: usize = 10_000;

/// The time format of rotated files' names (Go layout `2006-01-02T15-04-05.000`).
const BACKUP_TIME: &str = "%Y-%m-%dT%H-%M-%S%.3f";

/// The log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Creating the log's directory or the file itself failed.
    #[error("opening the audit log {path}")]
    Open {
        /// The log file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The writer thread could not be started.
    #[error("starting the audit log writer")]
    Thread(#[source] io::Error),
}

/// Where events are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Standard output (`--audit-log-path -`).
    Stdout,
    /// A file, rotated.
    File(Rotation),
}

/// A log file and its rotation limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The file.
    pub path: PathBuf,
    /// Size in bytes past which the file is rotated; 0 never rotates.
    pub max_size: u64,
    /// Rotated files older than this many days are deleted; 0 keeps them.
    pub max_age_days: u32,
    /// At most this many rotated files are kept; 0 keeps them all.
    pub max_backups: usize,
}

enum Message {
    Line(Vec<u8>),
    Close,
}

/// The sending side: cheap to call from request handling, see the module docs.
#[derive(Debug)]
pub struct LogSink {
    sender: SyncSender<Message>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl LogSink {
    /// Opens `destination` (creating the file and its directory, as upstream does at start) and
    /// starts the writer thread.
    pub fn open(destination: Destination) -> Result<LogSink, LogError> {
        let output = match destination {
            Destination::Stdout => Output::Stdout(io::stdout()),
            Destination::File(rotation) => {
                ensure_file(&rotation.path).map_err(|source| LogError::Open {
                    path: rotation.path.clone(),
                    source,
                })?;
                Output::File(RotatingFile::new(rotation, Timestamp::now))
            }
        };
        let (sender, receiver) = sync_channel(BUFFER);
        let writer = std::thread::Builder::new()
            .name("audit-log".to_owned())
            .spawn(move || write_until_closed(&receiver, output))
            .map_err(LogError::Thread)?;
        Ok(LogSink {
            sender,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Queues one line; waits while the buffer is full (blocking mode: nothing is dropped).
    pub fn send(&self, line: Vec<u8>) {
        match self.sender.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(message)) => {
                let send = || self.sender.send(message);
                // A multi-threaded runtime moves this worker's other tasks elsewhere while it
                // waits; elsewhere (tests, loopback callers on a current-thread runtime) the
                // writer thread needs no runtime, so a plain wait always ends.
                let sent = match tokio::runtime::Handle::try_current() {
                    Ok(handle)
                        if handle.runtime_flavor()
                            == tokio::runtime::RuntimeFlavor::MultiThread =>
                    {
                        tokio::task::block_in_place(send)
                    }
                    _ => send(),
                };
                if sent.is_err() {
                    tracing::debug!("the audit log is closed: event not written");
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::debug!("the audit log is closed: event not written");
            }
        }
    }

    /// Writes every line queued so far, then stops the writer. Lines sent afterwards are
    /// dropped.
    pub fn close(&self) {
        let writer = self.writer.lock().map(|mut w| w.take()).unwrap_or_default();
        let Some(writer) = writer else { return };
        if self.sender.send(Message::Close).is_ok() && writer.join().is_err() {
            tracing::error!("the audit log writer panicked");
        }
    }
}

/// Creates the log's directory (owner only) and the file (0600) if missing, as upstream's
/// `ensureLogFile`.
fn ensure_file(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

/// The writer thread: writes what arrives, flushing whenever the channel runs dry.
fn write_until_closed(receiver: &Receiver<Message>, mut output: Output) {
    // `recv` fails once every sender is gone: the sink was dropped without `close`.
    while let Ok(first) = receiver.recv() {
        let mut message = first;
        let mut closing = false;
        loop {
            match message {
                Message::Line(line) => {
                    if let Err(e) = output.write(&line) {
                        tracing::error!(error = %e, "writing an audit event");
                    }
                }
                Message::Close => {
                    closing = true;
                    break;
                }
            }
            match receiver.try_recv() {
                Ok(next) => message = next,
                Err(_) => break,
            }
        }
        if let Err(e) = output.flush() {
            tracing::error!(error = %e, "flushing the audit log");
        }
        if closing {
            return;
        }
    }
}

enum Output {
    Stdout(io::Stdout),
    File(RotatingFile),
}

impl Output {
    fn write(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.lock().write_all(line),
            Output::File(file) => file.write(line),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.lock().flush(),
            Output::File(file) => file.flush(),
        }
    }
}

/// A file that rotates itself, as lumberjack's `Logger`.
struct RotatingFile {
    rotation: Rotation,
    file: Option<BufWriter<File>>,
    size: u64,
    clock: fn() -> Timestamp,
}

impl RotatingFile {
    fn new(rotation: Rotation, clock: fn() -> Timestamp) -> RotatingFile {
        RotatingFile {
            rotation,
            file: None,
            size: 0,
            clock,
        }
    }

    fn write(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        let max = self.rotation.max_size;
        if max > 0 && len > max {
            return Err(io::Error::other(format!(
                "write length {len} exceeds maximum file size {max}"
            )));
        }
        if self.file.is_none() {
            self.open_existing_or_new(len)?;
        }
        if max > 0 && self.size + len > max {
            self.rotate()?;
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("the audit log file is not open"))?;
        file.write_all(line)?;
        self.size += len;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |file| file.flush())
    }

    fn open_existing_or_new(&mut self, len: u64) -> io::Result<()> {
        self.remove_old_backups();
        let size = match fs::metadata(&self.rotation.path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.open_new(),
            Err(e) => return Err(e),
        };
        let max = self.rotation.max_size;
        if max > 0 && size + len >= max {
            return self.rotate();
        }
        match OpenOptions::new().append(true).open(&self.rotation.path) {
            Ok(file) => {
                self.file = Some(BufWriter::new(file));
                self.size = size;
                Ok(())
            }
            Err(_) => self.open_new(),
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut file) = self.file.take() {
            file.flush()?;
        }
        self.open_new()?;
        self.remove_old_backups();
        Ok(())
    }

    /// Moves the current file aside (keeping its mode) and starts an empty one.
    fn open_new(&mut self) -> io::Result<()> {
        let path = &self.rotation.path;
        let mut mode = 0o600;
        if let Ok(meta) = fs::metadata(path) {
            mode = meta.permissions().mode() & 0o777;
            fs::rename(path, self.backup_name((self.clock)()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(mode)
            .open(path)?;
        self.file = Some(BufWriter::new(file));
        self.size = 0;
        Ok(())
    }

    /// `<dir>/<stem>-<time><ext>`.
    fn backup_name(&self, at: Timestamp) -> PathBuf {
        let (stem, ext) = self.stem_and_ext();
        self.rotation
            .path
            .with_file_name(format!("{stem}-{}{ext}", at.strftime(BACKUP_TIME)))
    }

    fn stem_and_ext(&self) -> (String, String) {
        let name = self
            .rotation
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match name.rfind('.') {
            Some(dot) => (name[..dot].to_owned(), name[dot..].to_owned()),
            None => (name, String::new()),
        }
    }

    /// Deletes rotated files beyond the count and age limits (lumberjack's `millRunOnce`).
    fn remove_old_backups(&self) {
        let Rotation {
            max_size,
            max_backups,
            max_age_days,
            ..
        } = self.rotation;
        // Without a size limit upstream does not rotate, nor touch old files.
        if max_size == 0 || (max_backups == 0 && max_age_days == 0) {
            return;
        }
        let dir = match self.rotation.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        let (stem, ext) = self.stem_and_ext();
        let prefix = format!("{stem}-");
        let mut backups: Vec<(Timestamp, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let time = name.strip_prefix(&prefix)?.strip_suffix(ext.as_str())?;
                let at = jiff::civil::DateTime::strptime(BACKUP_TIME, time)
                    .ok()?
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .ok()?
                    .timestamp();
                Some((at, entry.path()))
            })
            .collect();
        backups.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        let mut remove = Vec::new();
        if max_backups > 0 && backups.len() > max_backups {
            remove.extend(backups.drain(max_backups..).map(|(_, p)| p));
        }
        if max_age_days > 0 {
            let cutoff = (self.clock)().as_second() - i64::from(max_age_days) * 24 * 60 * 60;
            remove.extend(
                backups
                    .into_iter()
                    .filter(|(at, _)| at.as_second() < cutoff)
                    .map(|(_, p)| p),
            );
        }
        for path in remove {
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "removing an old audit log");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    /// A clock the test moves: seconds since the epoch.
    static NOW: AtomicI64 = AtomicI64::new(1_700_000_000);

    fn clock() -> Timestamp {
        Timestamp::from_second(NOW.load(Ordering::SeqCst)).unwrap()
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn rotates_by_size_and_keeps_the_newest_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        ensure_file(&path).unwrap();
        let mut file = RotatingFile::new(
            Rotation {
                path: path.clone(),
                max_size: 25,
                max_age_days: 0,
                max_backups: 2,
            },
            clock,
        );
        // 10-byte lines: two fit in 25 bytes, the third starts a new file.
        for i in 0..7 {
            file.write(format!("line {i:04}\n").as_bytes()).unwrap();
            file.flush().unwrap();
            NOW.fetch_add(1, Ordering::SeqCst);
        }
        let names = listing(dir.path());
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(names[2], "audit.log");
        assert!(
            names[0].starts_with("audit-") && names[0].ends_with(".000.log"),
            "{names:?}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "line 0006\n");
        // The newest two backups survive: lines 2-3 and 4-5.
        assert_eq!(
            fs::read_to_string(dir.path().join(&names[0])).unwrap(),
            "line 0002\nline 0003\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join(&names[1])).unwrap(),
            "line 0004\nline 0005\n"
        );
        // A line larger than the limit is refused, not split.
        assert!(file.write(&[b'x'; 30]).is_err());
    }

    #[test]
    fn reopening_appends_and_old_backups_expire() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit");
        ensure_file(&path).unwrap();
        fs::write(&path, "old\n").unwrap();
        // A backup far older than a day, and an unrelated file.
        fs::write(dir.path().join("audit-2001-01-01T00-00-00.000"), "x").unwrap();
        fs::write(dir.path().join("other.log"), "x").unwrap();
        let rotation = Rotation {
            path: path.clone(),
            max_size: 1000,
            max_age_days: 1,
            max_backups: 0,
        };
        let mut file = RotatingFile::new(rotation.clone(), clock);
        file.write(b"new\n").unwrap();
        file.flush().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "old\nnew\n");
        assert_eq!(listing(dir.path()), ["audit", "other.log"]);
        // A file already at the limit is rotated before the first write.
        let mut file = RotatingFile::new(
            Rotation {
                max_size: 8,
                ..rotation
            },
            clock,
        );
        file.write(b"next\n").unwrap();
        file.flush().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "next\n");
        assert_eq!(listing(dir.path()).len(), 3);
    }

    #[test]
    fn the_sink_writes_everything_before_closing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs").join("audit.log");
        let sink = LogSink::open(Destination::File(Rotation {
            path: path.clone(),
            max_size: 0,
            max_age_days: 0,
            max_backups: 0,
        }))
        .unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        for i in 0..(BUFFER + 500) {
            sink.send(format!("{i}\n").into_bytes());
        }
        sink.close();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), BUFFER + 500);
        assert_eq!(text.lines().last(), Some(&*(BUFFER + 499).to_string()));
        // After close, lines are dropped quietly.
        sink.send(b"late\n".to_vec());
        assert!(!fs::read_to_string(&path).unwrap().contains("late"));
    }
}
