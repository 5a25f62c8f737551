//! One reader for head files: a safetensors file's metadata header and its f32 tensors, with
//! errors that name the file and what is wrong with it.
//!
//! Every head's `load` ([`super::MlpHead::load`], [`super::frames::FramesHead::load`],
//! [`super::tagger::TaggerHead::load`]) opens its file with [`HeadFile::open`], reads its header
//! keys with [`HeadFile::meta`] / [`HeadFile::meta_opt`] / [`HeadFile::meta_parse`] /
//! [`HeadFile::meta_json`] and its weights with [`HeadFile::tensor_f32`]; every head's `save`
//! writes through one [`HeadWriter`] (and so through [`super::write_f32_safetensors`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use safetensors::{Dtype, SafeTensors};

use crate::{Error, Result};

/// One tensor of a head file as stored: its dtype, shape and little-endian bytes.
#[derive(Debug, Clone)]
struct StoredTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

/// A head file read into memory: the header metadata and the tensors.
#[derive(Debug, Clone)]
pub struct HeadFile {
    /// Where it was read from (named in every error).
    pub path: PathBuf,
    /// The header's `__metadata__` (empty when the file has none).
    pub metadata: BTreeMap<String, String>,
    tensors: BTreeMap<String, StoredTensor>,
}

impl HeadFile {
    /// Read and parse the safetensors file at `path`. An unreadable file is an I/O error naming
    /// it; a file that is not safetensors is an `Error::BadModel` naming it.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        crate::encode::files::check_safetensors(path, &bytes)?;
        let bad = |e: safetensors::SafeTensorError| {
            Error::bad_model(path, format!("not a safetensors file ({e})"))
        };
        let (_, md) = SafeTensors::read_metadata(&bytes).map_err(bad)?;
        let st = SafeTensors::deserialize(&bytes).map_err(bad)?;
        let metadata = md
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, t)| {
                let stored = StoredTensor {
                    dtype: t.dtype(),
                    shape: t.shape().to_vec(),
                    data: t.data().to_vec(),
                };
                (name, stored)
            })
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            metadata,
            tensors,
        })
    }

    /// An `Error::BadModel` `"{path}: {what}"`.
    pub fn error(&self, what: impl Display) -> Error {
        Error::bad_model(&self.path, what)
    }

    /// The header value of `key`, or `None`.
    pub fn meta_opt(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// The header value of `key`; absent is an error naming the file and the key.
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.meta_opt(key)
            .ok_or_else(|| self.error(format!("no `{key}` in header")))
    }

    /// The header value of `key` parsed as `T` (`str::parse`); absent or unparsable is an error.
    pub fn meta_parse<T: FromStr>(&self, key: &str) -> Result<T> {
        let v = self.meta(key)?;
        v.parse()
            .map_err(|_| self.error(format!("bad `{key}` {v:?} in header")))
    }

    /// The header value of `key` parsed as JSON; absent or invalid is an error.
    pub fn meta_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T> {
        serde_json::from_str(self.meta(key)?)
            .map_err(|e| self.error(format!("bad `{key}` in header: {e}")))
    }

    /// Check that the header's `format` is `format`; `what` names the kind of head expected
    /// (e.g. `frames head`) for the error.
    pub fn require_format(&self, format: &str, what: &str) -> Result<()> {
        match self.meta_opt("format") {
            Some(f) if f == format => Ok(()),
            Some(f) => Err(self.error(format!(
                "not a slant {what} (format is {f:?}, expected {format:?})"
            ))),
            None => Err(self.error(format!(
                "not a slant {what} (no `format` in header, expected {format:?})"
            ))),
        }
    }

    /// The f32 tensor `name`, which must have shape `shape`; absent, another dtype or another
    /// shape is an error naming the file and the tensor.
    pub fn tensor_f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| self.error(format!("no tensor `{name}`")))?;
        if t.dtype != Dtype::F32 {
            return Err(self.error(format!("tensor `{name}` is {:?}, expected F32", t.dtype)));
        }
        if t.shape != shape {
            return Err(self.error(format!(
                "tensor `{name}` has shape {:?}, expected {shape:?}",
                t.shape
            )));
        }
        Ok(t.data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// The tensor `name` stored as F16 (or F32), widened to f32; it must have shape `shape`.
    pub fn tensor_f16_or_f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| self.error(format!("no tensor `{name}`")))?;
        if t.dtype == Dtype::F32 {
            return self.tensor_f32(name, shape);
        }
        if t.dtype != Dtype::F16 {
            return Err(self.error(format!(
                "tensor `{name}` is {:?}, expected F16 or F32",
                t.dtype
            )));
        }
        if t.shape != shape {
            return Err(self.error(format!(
                "tensor `{name}` has shape {:?}, expected {shape:?}",
                t.shape
            )));
        }
        Ok(t.data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect())
    }

    /// The header without the keys in `known` (those the loader turned into fields): the
    /// provenance a head keeps in its `meta`.
    pub fn provenance(&self, known: &[&str]) -> BTreeMap<String, String> {
        self.metadata
            .iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The one writer of head files: a head's own header entries, then its `format`, `input` and
/// `hidden`, its tensors, and (with a hidden layer) `w1` `[hidden × input]` and `b1`.
pub struct HeadWriter<'a> {
    meta: HashMap<String, String>,
    tensors: Vec<(&'a str, Vec<usize>, &'a [f32])>,
}

impl<'a> HeadWriter<'a> {
    /// A head of `format` whose input is `input` wide with a hidden layer of `hidden` (0: none),
    /// carrying `meta` (provenance) in its header.
    pub fn new(format: &str, meta: &BTreeMap<String, String>, input: usize, hidden: usize) -> Self {
        let mut m: HashMap<String, String> = meta.clone().into_iter().collect();
        m.insert("format".into(), format.into());
        m.insert("input".into(), input.to_string());
        m.insert("hidden".into(), hidden.to_string());
        Self {
            meta: m,
            tensors: Vec::new(),
        }
    }

    /// One more header entry.
    pub fn meta(&mut self, key: &str, value: impl ToString) -> &mut Self {
        self.meta.insert(key.into(), value.to_string());
        self
    }

    /// One more header entry holding `value` as JSON.
    pub fn meta_json(&mut self, key: &str, value: &impl serde::Serialize) -> Result<&mut Self> {
        let v = serde_json::to_string(value).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(self.meta(key, v))
    }

    /// One f32 tensor.
    pub fn tensor(&mut self, name: &'a str, shape: Vec<usize>, data: &'a [f32]) -> &mut Self {
        self.tensors.push((name, shape, data));
        self
    }

    /// `w1` and `b1` of a hidden layer `hidden` wide on an `input`-wide input; nothing when
    /// `hidden` is 0.
    pub fn hidden_layer(
        &mut self,
        input: usize,
        hidden: usize,
        w1: &'a [f32],
        b1: &'a [f32],
    ) -> &mut Self {
        if hidden > 0 {
            self.tensor("w1", vec![hidden, input], w1);
            self.tensor("b1", vec![hidden], b1);
        }
        self
    }

    /// Write the file (its parent folder created), header keys sorted.
    pub fn write(&self, path: &Path) -> Result<()> {
        super::write_f32_safetensors(path, &self.tensors, self.meta.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Every committed head, loaded and saved again through [`HeadWriter`], holds the same
    /// header entries and the same tensor bytes (the header is compared as a map: heads written
    /// before header keys were sorted keep their old key order).
    #[test]
    fn committed_heads_are_rewritten_unchanged() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let tmp = tempfile::tempdir().unwrap();
        let parts = |b: &[u8]| {
            let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
            let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
            (header, b[8 + n..].to_vec())
        };
        let same = |name: &str, save: &dyn Fn(&Path, &Path)| {
            let (orig, copy) = (models.join(name), tmp.path().join(name));
            save(&orig, &copy);
            let (a, b) = (std::fs::read(&orig).unwrap(), std::fs::read(&copy).unwrap());
            assert!(parts(&a) == parts(&b), "{name} changed when saved again");
        };
        same("loaded.safetensors", &|a, b| {
            crate::heads::MlpHead::load(a).unwrap().save(b).unwrap()
        });
        same("frames.safetensors", &|a, b| {
            crate::heads::frames::FramesHead::load(a)
                .unwrap()
                .save(b)
                .unwrap()
        });
        for tagger in ["attribution.safetensors", "loaded_spans.safetensors"] {
            same(tagger, &|a, b| {
                crate::heads::tagger::TaggerHead::load(a)
                    .unwrap()
                    .save(b)
                    .unwrap()
            });
        }
    }

    fn write(dir: &Path, meta: &[(&str, &str)]) -> PathBuf {
        let p = dir.join("h.safetensors");
        let meta: HashMap<String, String> = meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let w = [1.0f32, -2.0, 3.5, 0.25, 0.0, -1.0];
        super::super::write_f32_safetensors(&p, &[("w", vec![2, 3], &w)], meta).unwrap();
        p
    }

    #[test]
    fn reads_metadata_and_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            &[("format", "x-v1"), ("input", "3"), ("labels", "[\"O\"]")],
        );
        let f = HeadFile::open(&p).unwrap();
        assert_eq!(f.path, p);
        assert_eq!(f.meta("format").unwrap(), "x-v1");
        assert_eq!(f.meta_opt("hidden"), None);
        assert_eq!(f.meta_parse::<usize>("input").unwrap(), 3);
        assert_eq!(f.meta_json::<Vec<String>>("labels").unwrap(), vec!["O"]);
        f.require_format("x-v1", "x head").unwrap();
        assert_eq!(
            f.tensor_f32("w", &[2, 3]).unwrap(),
            vec![1.0, -2.0, 3.5, 0.25, 0.0, -1.0]
        );
        let rest = f.provenance(&["format", "labels"]);
        assert_eq!(rest.keys().collect::<Vec<_>>(), vec!["input"]);
    }

    #[test]
    fn missing_or_bad_key_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), &[("format", "x-v1"), ("input", "three")]);
        let f = HeadFile::open(&p).unwrap();
        let e = f.meta("hidden").unwrap_err().to_string();
        assert!(
            e.contains("h.safetensors") && e.contains("no `hidden` in header"),
            "{e}"
        );
        let e = f.meta_parse::<usize>("input").unwrap_err().to_string();
        assert!(
            e.contains("h.safetensors") && e.contains("bad `input`"),
            "{e}"
        );
        let e = f.meta_json::<Vec<String>>("input").unwrap_err().to_string();
        assert!(e.contains("bad `input`"), "{e}");
        let e = f.require_format("y-v1", "y head").unwrap_err().to_string();
        assert!(
            e.contains("h.safetensors") && e.contains("not a slant y head") && e.contains("x-v1"),
            "{e}"
        );
        let p2 = write(dir.path(), &[]);
        let e = HeadFile::open(&p2)
            .unwrap()
            .require_format("y-v1", "y head")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no `format`"), "{e}");
    }

    #[test]
    fn missing_tensor_or_wrong_shape_names_the_file_and_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let f = HeadFile::open(&write(dir.path(), &[])).unwrap();
        let e = f.tensor_f32("w", &[3, 2]).unwrap_err().to_string();
        assert!(
            e.contains("h.safetensors")
                && e.contains("tensor `w` has shape [2, 3], expected [3, 2]"),
            "{e}"
        );
        let e = f.tensor_f32("w", &[6]).unwrap_err().to_string();
        assert!(e.contains("expected [6]"), "{e}");
        let e = f.tensor_f32("b", &[1]).unwrap_err().to_string();
        assert!(
            e.contains("h.safetensors") && e.contains("no tensor `b`"),
            "{e}"
        );
    }

    #[test]
    fn non_f32_tensor_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i.safetensors");
        let data = [1u8, 0, 0, 0, 2, 0, 0, 0];
        let view = safetensors::tensor::TensorView::new(Dtype::I32, vec![2], &data).unwrap();
        let bytes = safetensors::serialize(vec![("w", view)], None).unwrap();
        std::fs::write(&p, bytes).unwrap();
        let f = HeadFile::open(&p).unwrap();
        assert!(f.metadata.is_empty());
        let e = f.tensor_f32("w", &[2]).unwrap_err().to_string();
        assert!(
            e.contains("i.safetensors") && e.contains("tensor `w` is I32, expected F32"),
            "{e}"
        );
    }

    #[test]
    fn not_a_safetensors_file_or_no_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.safetensors");
        std::fs::write(&p, b"not safetensors").unwrap();
        let e = HeadFile::open(&p).unwrap_err().to_string();
        assert!(
            e.contains("x.safetensors") && e.contains("not a safetensors file"),
            "{e}"
        );
        let e = HeadFile::open(&dir.path().join("absent.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("absent.safetensors"), "{e}");
    }
}
