//! A real `redis-server` on loopback for the `replicas` scenario and the tests: started from
//! `PATH` on a free port of 127.0.0.1, with no persistence, killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The variable naming a running Redis for the tests (`.ci/run` starts one and sets it).
pub const TEST_REDIS_URL: &str = "AZAD_TEST_REDIS_URL";

/// What to do when `redis-server` is missing.
pub const INSTALL_HINT: &str = "redis-server is not on PATH: install it (Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: `brew install redis`), or set AZAD_TEST_REDIS_URL to a running server";

/// A `redis-server` process this program started.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` on a free port of 127.0.0.1 (no RDB or AOF files) and waits
    /// until it answers `PING`.
    ///
    /// # Errors
    ///
    /// [`INSTALL_HINT`] when the binary is missing; otherwise why it did not start.
    pub async fn start() -> Result<Self, String> {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let mut server = Self { child: None, port };
        server.spawn().await?;
        Ok(server)
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    INSTALL_HINT.to_owned()
                } else {
                    format!("cannot start redis-server: {e}")
                }
            })?;
        self.child = Some(child);
        for _ in 0..200 {
            if ping(self.port).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(format!("redis-server did not answer on 127.0.0.1:{}", self.port))
    }

    /// `redis://127.0.0.1:{port}`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: an outage, not a shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: no persistence).
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub async fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn().await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn ping(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return false };
    if stream.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    matches!(tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut answer)).await, Ok(Ok(_)))
        && &answer == b"+PONG\r\n"
}

/// The Redis to use: [`TEST_REDIS_URL`] when set, else a `redis-server` started here (kept
/// alive by the returned handle).
///
/// # Errors
///
/// [`INSTALL_HINT`] when no URL is set and `redis-server` is missing.
pub async fn url_or_start() -> Result<(String, Option<RedisServer>), String> {
    match std::env::var(TEST_REDIS_URL) {
        Ok(url) if !url.is_empty() => Ok((url, None)),
        _ => {
            let server = RedisServer::start().await?;
            Ok((server.url(), Some(server)))
        }
    }
}
