//! [`DirectorySource`]: a directory of mounted Kubernetes secrets (or Docker/Compose
//! secrets): one file per key, the file's name is the key, its content the value.
//!
//! Kubernetes mounts a secret volume as timestamped directories, a `..data` symlink to the
//! current one and, per key, a symlink `key → ..data/key`; an update writes a new timestamped
//! directory and swaps `..data` atomically (rename of a fresh symlink over it). The source reads
//! the file through the symlinks at every call, so it always sees the current value;
//! [`DirectorySource::watch`] additionally reports each swap (or, without `..data`, any change
//! of the files' sizes and modification times) so a [`SecretCache`](super::SecretCache) can drop
//! its entries at once instead of waiting for its TTL.
//!
//! The watch polls (default every 2 s) rather than using inotify: inotify does not see a
//! symlink swap under a watched symlinked directory reliably, and polling two `stat`s is cheap.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::env::{content_version, io_error};
use super::source::{SecretError, SecretFuture, SecretSource, SecretValue};

/// Secrets from a directory of files: one file per key, the file's name is the key, its
/// content the value.
///
/// Kubernetes mounts a secret volume as timestamped directories, a `..data` symlink to the
/// current one and, per key, a symlink `key → ..data/key`; an update writes a new timestamped
/// directory and swaps `..data` atomically (rename of a fresh symlink over it). The source reads
/// the file through the symlinks at every call, so it always sees the current value;
/// [`DirectorySource::watch`] additionally reports each swap (or, without `..data`, any change
/// of the files' sizes and modification times) so a [`SecretCache`](super::SecretCache) can drop
/// its entries at once instead of waiting for its TTL.
///
/// The watch polls (default every 2 s) rather than using inotify: inotify does not see a
/// symlink swap under a watched symlinked directory reliably, and polling two `stat`s is cheap.
///
/// A value has its trailing newline (`\n` or `\r\n`, one) removed by default, as files
/// created with an editor or `echo` end with one; [`keep_trailing_newline`](Self::keep_trailing_newline)
/// keeps bytes exact. The version is a keyed digest of the content. Names must be plain file
/// names (`[A-Za-z0-9._-]`, not starting with `.`): `../x` or `..data` are
/// [`SecretError::Misconfigured`].
///
/// # Example
///
/// ```
/// use azad_core::secrets::{DirectorySource, SecretSource};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("azad-doc-dir-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("db-password"), "hunter2\n").unwrap();
/// let source = DirectorySource::new(&dir);
/// assert_eq!(source.get("db-password", None).await.unwrap().expose(), "hunter2");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct DirectorySource {
    dir: PathBuf,
    trim_newline: bool,
    name: String,
}

impl DirectorySource {
    /// The directory at `dir` (e.g. `/var/run/secrets/myapp`).
    #[must_use]
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self { dir: dir.as_ref().to_owned(), trim_newline: true, name: "directory".to_owned() }
    }

    /// Keeps a trailing newline in values (bytes exactly as mounted).
    #[must_use]
    pub fn keep_trailing_newline(mut self) -> Self {
        self.trim_newline = false;
        self
    }

    /// Names this source in audit events and errors (default `directory`).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Polls the directory every `interval` and sends a new generation number each time the
    /// mounted secret changes (a `..data` swap, or a file's size or modification time). The
    /// polling task ends when every receiver is dropped. Needs a Tokio runtime.
    #[must_use]
    pub fn watch(&self, interval: Duration) -> watch::Receiver<u64> {
        let (tx, rx) = watch::channel(0u64);
        let dir = self.dir.clone();
        // The baseline is taken now, not in the task: a change made right after `watch`
        // returns (before the task first runs) must be reported, not become the baseline.
        let mut last = fingerprint(&dir);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = tx.closed() => break,
                    _ = ticker.tick() => {}
                }
                let polled = dir.clone();
                let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&polled)).await else { continue };
                if now != last {
                    tracing::info!(target: super::audit::AUDIT_TARGET, dir = %dir.display(), "mounted secrets changed");
                    last = now;
                    tx.send_modify(|generation| *generation += 1);
                }
            }
        });
        rx
    }

    async fn read(&self, name: &str, version: Option<&str>) -> Result<SecretValue, SecretError> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !plain {
            return Err(SecretError::misconfigured(format!("{name:?} is not a plain file name")));
        }
        let path = self.dir.join(name);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The key is absent; the directory itself missing is a misconfiguration.
                return match tokio::fs::metadata(&self.dir).await {
                    Ok(_) => Err(SecretError::not_found(name, version)),
                    Err(e) => Err(io_error(name, &self.dir, &e)),
                };
            }
            Err(e) => return Err(io_error(name, &path, &e)),
        };
        let current = content_version(&bytes);
        if let Some(asked) = version
            && asked != current
        {
            return Err(SecretError::not_found(name, Some(asked)));
        }
        let mut text = String::from_utf8(bytes)
            .map_err(|_| SecretError::invalid_response(format!("{} is not UTF-8", path.display())))?;
        if self.trim_newline {
            if text.ends_with("\r\n") {
                text.truncate(text.len() - 2);
            } else if text.ends_with('\n') {
                text.truncate(text.len() - 1);
            }
        }
        Ok(SecretValue::new(text).with_version(current))
    }
}

/// What identifies the mounted content: the `..data` target if there is one, else every
/// visible file's name, size and modification time.
fn fingerprint(dir: &Path) -> Option<Vec<(String, u64, Option<SystemTime>)>> {
    if let Ok(target) = std::fs::read_link(dir.join("..data")) {
        return Some(vec![(target.display().to_string(), 0, None)]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if let Ok(meta) = std::fs::metadata(entry.path()) {
            out.push((name, meta.len(), meta.modified().ok()));
        }
    }
    out.sort();
    Some(out)
}

impl fmt::Display for DirectorySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.dir.display())
    }
}

impl SecretSource for DirectorySource {
    fn name(&self) -> &str {
        &self.name
    }

    fn get<'a>(&'a self, name: &'a str, version: Option<&'a str>) -> SecretFuture<'a> {
        Box::pin(self.read(name, version))
    }
}
