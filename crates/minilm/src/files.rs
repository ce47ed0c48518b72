//! The model directory: which files it holds, where it is by default, and
//! whether they are the files we expect (sha256).
//!
//! The directory holds `config.json`, `tokenizer.json` and `model.safetensors`
//! of sentence-transformers/all-MiniLM-L6-v2. The two files that decide the
//! numbers are pinned by sha256; `config.json` is checked by content when it
//! is parsed (`bert::BertConfig`), since its bytes differ harmlessly between
//! copies. Every failure names the file and the command that fixes it.
//!
//! Nothing here reads the environment: the caller (config) passes the
//! directory, or the parts of the default ([`default_model_dir`]).

use std::{
    fs::File,
    io::{self, Read},
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use thiserror::Error;

/// The model's name, as the API reports it.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// The command that gets or repairs the model files (phase 2 of issue 11 adds it).
pub const FETCH_COMMAND: &str = "semsearch model fetch";

/// One file the model directory must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFile {
    pub name: &'static str,
    /// Lower-case hex sha256, or `None` for a file checked by content.
    pub sha256: Option<&'static str>,
}

/// `config.json`: BERT's shape; validated when parsed.
pub const CONFIG: ModelFile = ModelFile { name: "config.json", sha256: None };
/// `tokenizer.json`: the official WordPiece tokenizer.
pub const TOKENIZER: ModelFile = ModelFile {
    name: "tokenizer.json",
    sha256: Some("be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
};
/// `model.safetensors`: the official weights (f32).
pub const WEIGHTS: ModelFile = ModelFile {
    name: "model.safetensors",
    sha256: Some("53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
};

/// Every file of all-MiniLM-L6-v2 the embedder reads.
pub const MINILM_FILES: [ModelFile; 3] = [CONFIG, TOKENIZER, WEIGHTS];

/// Why the model directory cannot be used. Each variant names the file and
/// says how to fix it.
#[derive(Debug, Error)]
pub enum ModelFileError {
    #[error("model file {} is missing; run `{FETCH_COMMAND} --dir {}` to get it", .dir.join(.file).display(), .dir.display())]
    Missing { dir: PathBuf, file: &'static str },
    #[error(
        "model file {} has sha256 {actual}, expected {expected}; run `{FETCH_COMMAND} --dir {}` to replace it",
        .dir.join(.file).display(), .dir.display()
    )]
    Checksum { dir: PathBuf, file: &'static str, expected: &'static str, actual: String },
    #[error("cannot read model file {}; run `{FETCH_COMMAND} --dir {}` if it is damaged", .dir.join(.file).display(), .dir.display())]
    Read {
        dir: PathBuf,
        file: &'static str,
        #[source]
        source: io::Error,
    },
}

/// semsearch's cache directory: `$XDG_CACHE_HOME` (when set to an
/// absolute path, as the XDG spec requires) or `$HOME/.cache`, then
/// `semsearch`. `None` when neither is usable. The caller reads the two
/// variables (only `config` reads the environment).
pub fn cache_root(xdg_cache_home: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    let cache = match xdg_cache_home.filter(|p| p.is_absolute()) {
        Some(xdg) => xdg.to_path_buf(),
        None => home.filter(|p| !p.as_os_str().is_empty())?.join(".cache"),
    };
    Some(cache.join("semsearch"))
}

/// Where the model lives unless configured: [`cache_root`] +
/// `models/all-MiniLM-L6-v2`.
pub fn default_model_dir(xdg_cache_home: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    Some(cache_root(xdg_cache_home, home)?.join("models").join(MODEL_NAME))
}

/// Checks that `dir` holds every file in `files` and that the pinned ones
/// have their sha256. Reads each pinned file once (about 0.1 s for the weights).
///
/// # Errors
/// The first file that is missing, unreadable or different.
pub fn verify_dir(dir: &Path, files: &[ModelFile]) -> Result<(), ModelFileError> {
    for file in files {
        verify_file(dir, file)?;
    }
    Ok(())
}

/// [`verify_dir`] for one file.
///
/// # Errors
/// See [`verify_dir`].
pub fn verify_file(dir: &Path, file: &ModelFile) -> Result<(), ModelFileError> {
    let path = dir.join(file.name);
    let read_error = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            ModelFileError::Missing { dir: dir.to_path_buf(), file: file.name }
        } else {
            ModelFileError::Read { dir: dir.to_path_buf(), file: file.name, source }
        }
    };
    let Some(expected) = file.sha256 else {
        return match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(()),
            Ok(_) => Err(ModelFileError::Missing { dir: dir.to_path_buf(), file: file.name }),
            Err(e) => Err(read_error(e)),
        };
    };
    let actual = sha256_file(&path).map_err(read_error)?;
    if actual != expected {
        return Err(ModelFileError::Checksum { dir: dir.to_path_buf(), file: file.name, expected, actual });
    }
    Ok(())
}

/// Lower-case hex sha256 of a file, read in 1 MiB chunks.
///
/// # Errors
/// Opening or reading the file.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: ModelFile = ModelFile {
        name: "hello.txt",
        // sha256 of "hello\n"
        sha256: Some("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"),
    };

    #[test]
    fn default_dir_prefers_an_absolute_xdg_cache_home() {
        let dir = default_model_dir(Some(Path::new("/x/cache")), Some(Path::new("/home/u")));

        assert_eq!(dir, Some(PathBuf::from("/x/cache/semsearch/models/all-MiniLM-L6-v2")));
    }

    #[test]
    fn default_dir_ignores_a_relative_xdg_cache_home_and_uses_home() {
        let dir = default_model_dir(Some(Path::new("rel")), Some(Path::new("/home/u")));

        assert_eq!(dir, Some(PathBuf::from("/home/u/.cache/semsearch/models/all-MiniLM-L6-v2")));
    }

    #[test]
    fn default_dir_is_none_without_xdg_or_home() {
        assert_eq!(default_model_dir(None, None), None);
        assert_eq!(default_model_dir(None, Some(Path::new(""))), None);
    }

    #[test]
    fn verify_accepts_the_right_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("hello.txt"), "hello\n").expect("write");

        verify_dir(dir.path(), &[HELLO]).expect("matching sha256");
    }

    #[test]
    fn verify_names_the_missing_file_and_the_fix() {
        let dir = tempfile::tempdir().expect("temp dir");

        let err = verify_dir(dir.path(), &[HELLO]).expect_err("file is absent");

        assert!(matches!(err, ModelFileError::Missing { file: "hello.txt", .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("hello.txt") && msg.contains("semsearch model fetch --dir"), "{msg}");
    }

    #[test]
    fn verify_reports_a_checksum_mismatch_with_both_digests() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("hello.txt"), "hellO\n").expect("write");

        let err = verify_dir(dir.path(), &[HELLO]).expect_err("bytes differ");

        let ModelFileError::Checksum { expected, actual, .. } = &err else { panic!("{err:?}") };
        assert_eq!(*expected, HELLO.sha256.expect("pinned"));
        assert_ne!(actual, expected);
        assert!(err.to_string().contains("semsearch model fetch"), "{err}");
    }

    #[test]
    fn verify_requires_an_unpinned_file_to_exist_as_a_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("config.json")).expect("a directory in its place");

        let err = verify_dir(dir.path(), &[CONFIG]).expect_err("a directory is not the file");

        assert!(matches!(err, ModelFileError::Missing { file: "config.json", .. }), "{err:?}");
    }
}
