//! Which `redis-server` and `redis-cli` the tools run (`semsearch demo`,
//! the test harness, `.ci` scripts through `semsearch redis fetch`): one on
//! PATH when it is Redis 7 or newer, else a private copy in the cache dir
//! (`$XDG_CACHE_HOME` or `~/.cache`, `semsearch/redis/`), fetched once the way
//! the model is: from a registry the machine already reaches, verified,
//! installed atomically, reused next time.
//!
//! The registry is Debian's: `apt-get download` of `redis-tools` (the
//! server and the CLI), `redis-server` (the `redis-server` name, a symlink)
//! and the libraries the binary links that a minimal Debian lacks
//! (`liblzf1`, `libjemalloc2`, `libatomic1`), unpacked with `dpkg-deb -x`.
//! apt checks every package against the archive's signed hashes, and the
//! installed copy counts only once its `--version` says 7 or newer (checked
//! again on every reuse). `bin/redis-server` and `bin/redis-cli` in the
//! copy are small `sh` wrappers that add its library dir to
//! `LD_LIBRARY_PATH`, so scripts can put `bin/` first on PATH.
//!
//! When the machine's package lists are missing (a fresh container that never
//! ran `apt-get update`), the download is retried with private lists in a
//! temp dir, so nothing outside the cache dir is written.
//!
//! Deliberately not here: starting servers ([`super::redis_child`],
//! [`super::redis_cluster`]), and any way to pick a Redis older than 7.

use std::{
    ffi::{OsStr, OsString},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
};

use thiserror::Error;

/// The oldest Redis major version the tools accept (the one the tests and
/// the cluster tooling run against).
pub const MIN_MAJOR: u32 = 7;

/// Debian packages a private copy is made of: the binaries, the symlink
/// that gives `redis-server` its name (Redis picks its mode from argv[0]),
/// and the libraries a minimal Debian image does not ship.
pub const DEBIAN_PACKAGES: &[&str] = &["redis-tools", "redis-server", "liblzf1", "libjemalloc2", "libatomic1"];

/// The two programs to run, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisBinaries {
    pub server: PathBuf,
    pub cli: PathBuf,
    /// `7.0.15`, as `redis-server --version` prints it.
    pub version: String,
    pub origin: RedisOrigin,
}

impl RedisBinaries {
    /// The directory holding both programs (for PATH).
    pub fn bin_dir(&self) -> &Path {
        self.server.parent().unwrap_or(Path::new("/"))
    }
}

/// Where [`RedisBinaries`] were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisOrigin {
    /// On PATH: the machine's own installation.
    Path,
    /// A private copy fetched earlier, reused as it was.
    Cached,
    /// A private copy fetched by this call.
    Fetched,
}

/// Why no usable `redis-server` could be had.
#[derive(Debug, Clone, Error)]
pub enum LocateError {
    /// No cache dir to fetch into ($XDG_CACHE_HOME and $HOME are unset).
    #[error(
        "no redis-server {MIN_MAJOR}.x on PATH, and no cache dir to fetch one into (set HOME or XDG_CACHE_HOME); \
         install one with `apt-get install redis-server` or `brew install redis`"
    )]
    NoCacheDir,
    /// The fetch failed at `step`; `detail` is the tool's own words.
    #[error(
        "no redis-server {MIN_MAJOR}.x on PATH, and fetching Debian's into {dir} failed ({step}): {detail}. \
         Install one with `apt-get install redis-server` (Debian/Ubuntu) or `brew install redis` (macOS)"
    )]
    Fetch { dir: PathBuf, step: FetchStep, detail: String },
}

impl LocateError {
    /// Whether the registry could not be reached or asked (no apt-get, no
    /// network): the one failure a test may skip on.
    pub fn registry_unreachable(&self) -> bool {
        matches!(self, Self::Fetch { step: FetchStep::Download, .. })
    }
}

/// The step of a fetch that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchStep {
    /// `apt-get download` (with the machine's lists, then private ones).
    Download,
    /// `dpkg-deb -x`, or writing the wrappers.
    Unpack,
    /// The unpacked `redis-server --version` did not run or was too old.
    Verify,
    /// Moving the verified copy into place.
    Install,
}

impl std::fmt::Display for FetchStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Download => "apt-get download",
            Self::Unpack => "dpkg-deb -x",
            Self::Verify => "verifying --version",
            Self::Install => "installing into the cache",
        })
    }
}

/// Where to look: the PATH to search and the dir a private copy lives in.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The PATH value to search; `None` searches nothing.
    pub path: Option<OsString>,
    /// `…/semsearch/redis`; `None` when there is no cache dir.
    pub private_dir: Option<PathBuf>,
}

impl Lookup {
    /// The process's PATH and `$XDG_CACHE_HOME` (or `~/.cache`)`/semsearch/redis`.
    pub fn from_env() -> Self {
        Self {
            path: crate::config::program_search_path(),
            private_dir: crate::config::cache_dir().map(|d| d.join("redis")),
        }
    }
}

/// The binaries for this process, looked up (and fetched if need be) once;
/// later calls answer the same.
///
/// # Errors
/// [`LocateError`] when none is on PATH and none could be fetched.
pub fn locate() -> Result<&'static RedisBinaries, LocateError> {
    static LOCATED: OnceLock<Result<RedisBinaries, LocateError>> = OnceLock::new();
    LOCATED.get_or_init(|| locate_with(&Lookup::from_env())).as_ref().map_err(Clone::clone)
}

/// As [`locate`], for an explicit [`Lookup`] and without the process-wide
/// memo. Logs one line on stderr when it fetches.
///
/// # Errors
/// [`LocateError`] when none is on PATH and none could be fetched.
pub fn locate_with(lookup: &Lookup) -> Result<RedisBinaries, LocateError> {
    if let Some(found) = lookup.path.as_deref().and_then(on_path) {
        return Ok(found);
    }
    let dir = lookup.private_dir.as_deref().ok_or(LocateError::NoCacheDir)?;
    if let Ok(mut cached) = verify(dir) {
        cached.origin = RedisOrigin::Cached;
        return Ok(cached);
    }
    let fetched = fetch_into(dir)?;
    eprintln!(
        "redis: no redis-server {MIN_MAJOR}.x on PATH; fetched Debian's redis {} ({}) into {} (reused next time)",
        fetched.version,
        DEBIAN_PACKAGES.join(", "),
        dir.display()
    );
    Ok(fetched)
}

/// `redis-server` and `redis-cli` from the first PATH entry holding both,
/// when that server is [`MIN_MAJOR`] or newer.
fn on_path(path: &OsStr) -> Option<RedisBinaries> {
    let dir = std::env::split_paths(path)
        .find(|d| is_executable(&d.join("redis-server")) && is_executable(&d.join("redis-cli")))?;
    let server = dir.join("redis-server");
    let version = server_version(&server).ok()?;
    Some(RedisBinaries { server, cli: dir.join("redis-cli"), version, origin: RedisOrigin::Path })
}

fn is_executable(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The version `server --version` prints, when it runs and is new enough.
fn server_version(server: &Path) -> Result<String, String> {
    let out = Command::new(server)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", server.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{} --version: {}{}", server.display(), stdout, String::from_utf8_lossy(&out.stderr)));
    }
    let version = parse_server_version(&stdout).ok_or_else(|| format!("unexpected --version output: {stdout}"))?;
    match version.split('.').next().and_then(|m| m.parse::<u32>().ok()) {
        Some(major) if major >= MIN_MAJOR => Ok(version.to_owned()),
        _ => Err(format!("redis-server {version} is older than {MIN_MAJOR}.0")),
    }
}

/// `7.0.15` out of `Redis server v=7.0.15 sha=… malloc=… bits=64 build=…`.
fn parse_server_version(output: &str) -> Option<&str> {
    let rest = output.strip_prefix("Redis server ")?;
    rest.split_whitespace().find_map(|word| word.strip_prefix("v="))
}

/// The private copy in `dir`, when it runs and is new enough.
fn verify(dir: &Path) -> Result<RedisBinaries, String> {
    let server = dir.join("bin/redis-server");
    let cli = dir.join("bin/redis-cli");
    let version = server_version(&server)?;
    let out = Command::new(&cli).arg("--version").stdin(Stdio::null()).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{} --version failed: {}", cli.display(), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(RedisBinaries { server, cli, version, origin: RedisOrigin::Fetched })
}

/// Downloads, unpacks and verifies Debian's packages in a temp dir beside
/// `dir`, then renames it into place (a concurrent fetch that won the race is
/// kept instead). A failed fetch leaves nothing behind.
fn fetch_into(dir: &Path) -> Result<RedisBinaries, LocateError> {
    let fail = |step, detail: String| LocateError::Fetch { dir: dir.to_path_buf(), step, detail };
    let parent = dir.parent().ok_or_else(|| fail(FetchStep::Install, "the dir has no parent".into()))?;
    std::fs::create_dir_all(parent)
        .map_err(|e| fail(FetchStep::Install, format!("mkdir {}: {e}", parent.display())))?;
    let work = tempfile::Builder::new()
        .prefix(".redis-fetch-")
        .tempdir_in(parent)
        .map_err(|e| fail(FetchStep::Install, format!("temp dir in {}: {e}", parent.display())))?;
    let debs = work.path().join("debs");
    let root = work.path().join("redis");
    for d in [&debs, &root.join("bin")] {
        std::fs::create_dir_all(d).map_err(|e| fail(FetchStep::Install, format!("mkdir {}: {e}", d.display())))?;
    }

    download(&debs, work.path()).map_err(|detail| fail(FetchStep::Download, detail))?;
    unpack(&debs, &root).map_err(|detail| fail(FetchStep::Unpack, detail))?;
    verify(&root).map_err(|detail| fail(FetchStep::Verify, detail))?;

    if dir.exists() {
        // A copy that does not verify (checked by the caller) is replaced.
        if verify(dir).is_err() {
            std::fs::remove_dir_all(dir)
                .map_err(|e| fail(FetchStep::Install, format!("removing {}: {e}", dir.display())))?;
        }
    }
    if let Err(e) = std::fs::rename(&root, dir) {
        // Another process may have installed its copy meanwhile: use that.
        return verify(dir).map_err(|_| fail(FetchStep::Install, format!("rename into {}: {e}", dir.display())));
    }
    // The wrappers find their files relative to themselves, so the rename
    // keeps them working; check the installed copy, not the temp one.
    verify(dir).map_err(|detail| fail(FetchStep::Verify, detail))
}

/// `apt-get download` of [`DEBIAN_PACKAGES`] into `debs`: with the machine's
/// package lists, else with private ones fetched into `work` (no root needed,
/// nothing written outside `work`).
fn download(debs: &Path, work: &Path) -> Result<(), String> {
    let first = run(Command::new("apt-get").current_dir(debs).arg("download").args(DEBIAN_PACKAGES));
    let Err(first) = first else { return Ok(()) };
    let lists = work.join("apt/lists");
    let cache = work.join("apt/cache");
    for d in [lists.join("partial"), cache.join("archives/partial")] {
        std::fs::create_dir_all(&d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    }
    let private = |command: &mut Command| {
        command
            .arg("-o")
            .arg(format!("Dir::State::Lists={}", lists.display()))
            .arg("-o")
            .arg(format!("Dir::Cache={}", cache.display()))
            .args(["-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"]);
    };
    let mut update = Command::new("apt-get");
    private(&mut update);
    run(update.arg("update").arg("-qq"))
        .and_then(|()| {
            let mut get = Command::new("apt-get");
            get.current_dir(debs);
            private(&mut get);
            run(get.arg("download").args(DEBIAN_PACKAGES))
        })
        .map_err(|second| format!("{first}; with private package lists: {second}"))
}

/// `dpkg-deb -x` of every `.deb` in `debs` into `root`, then the wrappers.
fn unpack(debs: &Path, root: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(debs).map_err(|e| format!("reading {}: {e}", debs.display()))?;
    let mut unpacked = 0;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension() == Some(OsStr::new("deb")) {
            run(Command::new("dpkg-deb").arg("-x").arg(&path).arg(root))?;
            unpacked += 1;
        }
    }
    if unpacked < DEBIAN_PACKAGES.len() {
        return Err(format!("{unpacked} packages downloaded, {} expected", DEBIAN_PACKAGES.len()));
    }
    let lib = lib_dir(root).ok_or_else(|| format!("no usr/lib/<triplet> in {}", root.display()))?;
    for program in ["redis-server", "redis-cli"] {
        let wrapper = root.join("bin").join(program);
        std::fs::write(&wrapper, wrapper_script(program, &lib))
            .map_err(|e| format!("writing {}: {e}", wrapper.display()))?;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `usr/lib/x86_64-linux-gnu` (or the machine's triplet), relative to `root`.
fn lib_dir(root: &Path) -> Option<String> {
    let entries = std::fs::read_dir(root.join("usr/lib")).ok()?;
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with("-linux-gnu"))
        .map(|n| format!("usr/lib/{n}"))
}

/// A wrapper that runs `usr/bin/<program>` of the copy it sits in, with the
/// copy's libraries first. Paths are relative to the wrapper, so the copy can
/// be renamed into place; `exec` keeps the pid the caller spawned.
fn wrapper_script(program: &str, lib: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # Written by semsearch: Debian's {program}, unpacked beside this file, with its libraries.\n\
         root=\"$(cd \"${{0%/*}}/..\" && pwd)\"\n\
         LD_LIBRARY_PATH=\"$root/{lib}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}\" exec \"$root/usr/bin/{program}\" \"$@\"\n"
    )
}

/// Runs `command`; its stderr (or the spawn error) is the failure's detail.
fn run(command: &mut Command) -> Result<(), String> {
    let name = command.get_program().to_string_lossy().into_owned();
    let out = command.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {name}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let detail: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("W: ")).collect();
        Err(format!("{name} exited with {}: {}", out.status, detail.join(" / ").trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_redis_server_output() {
        let out = "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=ae4d7c971a948f0\n";
        assert_eq!(parse_server_version(out), Some("7.0.15"));
        assert_eq!(parse_server_version("Valkey server v=8.0.1"), None);
        assert_eq!(parse_server_version(""), None);
    }

    #[test]
    fn a_path_without_redis_finds_nothing() {
        let empty = tempfile::tempdir().expect("temp dir");
        assert_eq!(on_path(empty.path().as_os_str()), None);
    }

    #[test]
    fn an_old_redis_on_path_is_not_suitable() {
        // Arrange: a fake redis-server 6.2 and redis-cli on a PATH of their own.
        let bin = tempfile::tempdir().expect("temp dir");
        for (name, body) in
            [("redis-server", "echo 'Redis server v=6.2.14 sha=0 bits=64'"), ("redis-cli", "echo 'redis-cli 6.2.14'")]
        {
            let p = bin.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }

        // Act
        let found = on_path(bin.path().as_os_str());

        // Assert
        assert_eq!(found, None, "6.2 is older than {MIN_MAJOR}");
    }

    #[test]
    fn no_cache_dir_and_nothing_on_path_is_an_error_that_says_how_to_install() {
        let err = locate_with(&Lookup { path: None, private_dir: None }).expect_err("nothing to use");
        assert!(matches!(err, LocateError::NoCacheDir));
        assert!(err.to_string().contains("apt-get install redis-server"), "{err}");
    }

    /// The fetch path for real: PATH holds no redis-server, so Debian's
    /// packages are downloaded into a fresh cache dir, verified, and reused by
    /// the next lookup. Skipped (saying so) only when apt-get cannot reach
    /// the registry.
    #[test]
    fn without_redis_on_path_a_private_copy_is_fetched_verified_and_reused() {
        // Arrange
        let cache = tempfile::tempdir().expect("temp dir");
        let lookup = Lookup { path: Some(OsString::new()), private_dir: Some(cache.path().join("semsearch/redis")) };

        // Act
        let fetched = match locate_with(&lookup) {
            Ok(found) => found,
            Err(e) if e.registry_unreachable() => {
                eprintln!("SKIPPED without_redis_on_path_a_private_copy_is_fetched_verified_and_reused: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let again = locate_with(&lookup).expect("the cached copy");

        // Assert
        assert_eq!(fetched.origin, RedisOrigin::Fetched);
        assert!(fetched.server.starts_with(cache.path()), "{fetched:?}");
        assert!(fetched.version.split('.').next().and_then(|m| m.parse::<u32>().ok()).is_some_and(|m| m >= MIN_MAJOR));
        assert_eq!(again.origin, RedisOrigin::Cached);
        assert_eq!(again.server, fetched.server);
        let leftovers: Vec<_> = std::fs::read_dir(cache.path().join("semsearch"))
            .expect("read")
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "redis")
            .collect();
        assert!(leftovers.is_empty(), "temp dirs left behind: {leftovers:?}");
        // It serves: the fetched server answers PING through the fetched CLI.
        let dir = tempfile::tempdir().expect("temp dir");
        let server = crate::tools::redis_child::ChildRedis::start_with(&fetched, dir.path(), &[]).expect("starts");
        let pong =
            Command::new(&fetched.cli).arg("-s").arg(server.socket()).arg("PING").output().expect("redis-cli runs");
        assert_eq!(String::from_utf8_lossy(&pong.stdout).trim(), "PONG");
    }
}
