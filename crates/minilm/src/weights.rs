//! Reading f32 tensors out of a `.safetensors` file, one tensor at a time.
//!
//! The format is an 8-byte little-endian header length, a JSON header
//! (`name → {dtype, shape, data_offsets}`) and the raw data. We parse the
//! header with serde_json and then read each tensor with a positioned read,
//! converting 64 KiB at a time, so loading never holds the file in memory
//! beside the model (the `safetensors` crate wants the whole file as one
//! slice: a 90 MB copy or an `unsafe` mmap). Every offset is checked
//! against the file's length before it is used.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

use serde::Deserialize;
use thiserror::Error;

/// Headers larger than this are refused (the real one is 11 KB).
const MAX_HEADER_BYTES: u64 = 16 << 20;

/// Why a tensor could not be read.
#[derive(Debug, Error)]
pub enum WeightsError {
    #[error("cannot read {}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a safetensors file: {reason}", .path.display())]
    Format { path: PathBuf, reason: String },
    #[error("{} has no tensor {name:?}", .path.display())]
    MissingTensor { path: PathBuf, name: String },
    #[error("tensor {name:?} in {} is {dtype} {got:?}, expected F32 {expected:?}", .path.display())]
    WrongShape { path: PathBuf, name: String, dtype: String, got: Vec<usize>, expected: Vec<usize> },
}

#[derive(Debug, Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// An open `.safetensors` file with its parsed, bounds-checked header.
#[derive(Debug)]
pub struct TensorFile {
    path: PathBuf,
    file: File,
    data_start: u64,
    tensors: HashMap<String, TensorInfo>,
}

impl TensorFile {
    /// Opens `path` and parses its header.
    ///
    /// # Errors
    /// I/O, a malformed header, or an offset outside the file.
    pub fn open(path: &Path) -> Result<Self, WeightsError> {
        let io_err = |source| WeightsError::Io { path: path.to_path_buf(), source };
        let format = |reason: String| WeightsError::Format { path: path.to_path_buf(), reason };
        let mut file = File::open(path).map_err(io_err)?;
        let file_len = file.metadata().map_err(io_err)?.len();
        let mut len_bytes = [0u8; 8];
        file.read_exact(&mut len_bytes).map_err(io_err)?;
        let header_len = u64::from_le_bytes(len_bytes);
        if header_len > MAX_HEADER_BYTES || header_len + 8 > file_len {
            return Err(format(format!("header length {header_len} does not fit a {file_len}-byte file")));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(io_err)?;
        let mut raw: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&header).map_err(|e| format(format!("header is not JSON: {e}")))?;
        raw.remove("__metadata__");
        let data_start = 8 + header_len;
        let mut tensors = HashMap::with_capacity(raw.len());
        for (name, value) in raw {
            let info: TensorInfo =
                serde_json::from_value(value).map_err(|e| format(format!("tensor {name:?}: {e}")))?;
            let [begin, end] = info.data_offsets;
            if begin > end || data_start.checked_add(end).is_none_or(|e| e > file_len) {
                return Err(format(format!("tensor {name:?} has offsets {begin}..{end} outside the file")));
            }
            tensors.insert(name, info);
        }
        Ok(Self { path: path.to_path_buf(), file, data_start, tensors })
    }

    /// Reads tensor `name`, which must be F32 of exactly `shape`, as a flat
    /// row-major vector.
    ///
    /// # Errors
    /// Missing tensor, other dtype or shape, byte count not matching the shape, I/O.
    pub fn read_f32(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, WeightsError> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| WeightsError::MissingTensor { path: self.path.clone(), name: name.to_owned() })?;
        let count: usize = shape.iter().product();
        let [begin, end] = info.data_offsets;
        if info.dtype != "F32" || info.shape != shape || end - begin != 4 * count as u64 {
            return Err(WeightsError::WrongShape {
                path: self.path.clone(),
                name: name.to_owned(),
                dtype: info.dtype.clone(),
                got: info.shape.clone(),
                expected: shape.to_vec(),
            });
        }
        let io_err = |source| WeightsError::Io { path: self.path.clone(), source };
        self.file.seek(SeekFrom::Start(self.data_start + begin)).map_err(io_err)?;
        let mut out = Vec::with_capacity(count);
        let mut buf = vec![0u8; 64 << 10];
        while out.len() < count {
            let take = ((count - out.len()) * 4).min(buf.len());
            self.file.read_exact(&mut buf[..take]).map_err(io_err)?;
            out.extend(buf[..take].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(header: &str, data: &[u8]) -> tempfile::NamedTempFile {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), bytes).expect("write");
        file
    }

    fn floats(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn reads_a_tensor_by_name_and_shape() {
        let data = floats(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        let header = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},
            "b":{"dtype":"F32","shape":[2,3],"data_offsets":[4,28]}}"#;
        let file = write_file(header, &data);

        let mut tensors = TensorFile::open(file.path()).expect("valid file");

        assert_eq!(tensors.read_f32("b", &[2, 3]).expect("b"), vec![2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(tensors.read_f32("a", &[1]).expect("a"), vec![1.0]);
    }

    #[test]
    fn refuses_a_wrong_shape_or_dtype() {
        let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"i":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}"#;
        let file = write_file(header, &[0u8; 16]);
        let mut tensors = TensorFile::open(file.path()).expect("valid file");

        let shape = tensors.read_f32("a", &[3]).expect_err("shape differs");
        let dtype = tensors.read_f32("i", &[1]).expect_err("not f32");
        let missing = tensors.read_f32("nope", &[1]).expect_err("absent");

        assert!(matches!(shape, WeightsError::WrongShape { .. }), "{shape:?}");
        assert!(matches!(dtype, WeightsError::WrongShape { .. }), "{dtype:?}");
        assert!(matches!(missing, WeightsError::MissingTensor { .. }), "{missing:?}");
    }

    #[test]
    fn refuses_offsets_past_the_end_of_the_file() {
        let header = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
        let file = write_file(header, &[0u8; 8]);

        let err = TensorFile::open(file.path()).expect_err("truncated data");

        assert!(matches!(err, WeightsError::Format { .. }), "{err:?}");
    }

    #[test]
    fn refuses_a_header_longer_than_the_file() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), 1000u64.to_le_bytes()).expect("write");

        let err = TensorFile::open(file.path()).expect_err("no header");

        assert!(matches!(err, WeightsError::Format { .. }), "{err:?}");
    }
}
