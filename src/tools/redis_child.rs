//! A private `redis-server` child process: for `semsearch demo`, the test
//! suite and the load benchmark. Never used against a production Redis.
//!
//! It listens only on a unix socket inside its own directory (no TCP port, so
//! it can never collide with, or be mistaken for, the instance on 6379) and
//! persists nothing unless asked. Dropping it kills the process.

use std::{
    io::{Read, Write},
    os::unix::{net::UnixStream, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use thiserror::Error;

use super::redis_binary::{self, LocateError, RedisBinaries};

#[derive(Debug, Error)]
pub enum ChildError {
    /// No `redis-server` 7.x on PATH, and none could be fetched (the message
    /// says how to install one).
    #[error(transparent)]
    Locate(#[from] LocateError),
    /// The located `redis-server` would not start.
    #[error(
        "cannot start {program}: {source}. Install Redis with `apt-get install redis-server` \
         (Debian/Ubuntu) or `brew install redis` (macOS), or run Redis in Docker: \
         `docker run -p 6379:6379 redis:7-alpine` and use `semsearch serve`"
    )]
    Spawn { program: PathBuf, source: std::io::Error },
    #[error("redis-server did not answer PING on {socket} within {waited_ms} ms")]
    NotReady { socket: PathBuf, waited_ms: u64 },
}

/// A running `redis-server` that belongs to us.
#[derive(Debug)]
pub struct ChildRedis {
    /// The `redis-server` to run: PATH's, or the private copy
    /// ([`redis_binary::locate`]).
    program: PathBuf,
    child: Option<Child>,
    dir: PathBuf,
    /// Started in its own process group (see [`ChildRedis::start_detached`]).
    detached: bool,
}

/// How long to wait for a fresh server to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);

impl ChildRedis {
    /// Starts a server whose socket and files live in `dir` (which must exist).
    ///
    /// The server is PATH's `redis-server` 7.x, else a private copy fetched
    /// into the cache dir ([`redis_binary::locate`]).
    ///
    /// # Errors
    /// [`ChildError::Locate`] when there is no server to run,
    /// [`ChildError::Spawn`] when it cannot be run,
    /// [`ChildError::NotReady`] when it does not come up.
    pub fn start(dir: &Path, extra_args: &[&str]) -> Result<Self, ChildError> {
        Self::start_with(redis_binary::locate()?, dir, extra_args)
    }

    /// As [`ChildRedis::start`], with the given binaries.
    ///
    /// # Errors
    /// As [`ChildRedis::start`], but never [`ChildError::Locate`].
    pub fn start_with(binaries: &RedisBinaries, dir: &Path, extra_args: &[&str]) -> Result<Self, ChildError> {
        let mut redis = Self { program: binaries.server.clone(), child: None, dir: dir.to_path_buf(), detached: false };
        redis.restart_with(extra_args)?;
        Ok(redis)
    }

    /// As [`ChildRedis::start`], in a process group of its own, so the
    /// terminal's Ctrl-C reaches only our process, which then stops the
    /// service first and the server last (`semsearch demo`). The owner must
    /// drop it: the group no longer dies with the terminal's signal.
    ///
    /// # Errors
    /// As [`ChildRedis::start`].
    pub fn start_detached(dir: &Path, extra_args: &[&str]) -> Result<Self, ChildError> {
        let program = redis_binary::locate()?.server.clone();
        let mut redis = Self { program, child: None, dir: dir.to_path_buf(), detached: true };
        redis.restart_with(extra_args)?;
        Ok(redis)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// `unix:///…/redis.sock`, for `REDIS_URL`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server if running and starts it again in the same directory
    /// (so a `dump.rdb` saved there is loaded).
    ///
    /// # Errors
    /// As [`ChildRedis::start`].
    pub fn restart_with(&mut self, extra_args: &[&str]) -> Result<(), ChildError> {
        self.kill();
        let _ = std::fs::remove_file(self.socket());
        let mut command = Command::new(&self.program);
        if self.detached {
            command.process_group(0);
        }
        let child = command
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| ChildError::Spawn { program: self.program.clone(), source })?;
        self.child = Some(child);
        let step = Duration::from_millis(10);
        let mut waited = Duration::ZERO;
        while waited < START_TIMEOUT {
            if self.answers_ping() {
                return Ok(());
            }
            std::thread::sleep(step);
            waited += step;
        }
        Err(ChildError::NotReady { socket: self.socket(), waited_ms: waited.as_millis() as u64 })
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(self.socket()) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        // -NOAUTH also proves the server is up (started with --requirepass).
        matches!(s.read(&mut buf), Ok(n) if n > 0 && (buf.starts_with(b"+PONG") || buf.starts_with(b"-NOAUTH")))
    }

    /// Kills the server (SIGKILL: as abrupt as a crash). Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for ChildRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
