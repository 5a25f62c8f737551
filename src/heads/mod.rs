//! Trained heads that read the encoder's one pass.
//!
//! Today: the loaded-language sentence head ([`MlpHead`] on the L2-normalised mean-pooled
//! sentence vector), the article frames head ([`frames`]) and the generic per-token span tagger
//! ([`tagger`], BIO labels over the token states of [`crate::encode::Encoder::encode_tokens`]). Heads are stored as safetensors files with their metadata (threshold,
//! encoder checksum, training data, seed) in the safetensors header, so a head file is
//! self-describing and `slant eval` can put it in a manifest.

use math::{dot, sigmoid};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::Dtype;

mod file;
pub mod frames;
pub mod loaded_spans;
pub mod lora;
pub mod math;
pub mod tagger;
pub mod tuned;

pub use file::{HeadFile, HeadWriter};

use crate::{Error, Result};

/// Name of the committed loaded-language head, relative to the models folder.
pub const LOADED_HEAD_FILE: &str = "loaded.safetensors";

/// The sentence feature the heads read: the mean-pooled encoder vector scaled to unit length.
pub fn sentence_features(pooled: &[f32]) -> Vec<f32> {
    let norm = pooled.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    pooled.iter().map(|x| x / norm).collect()
}

/// Header key of a sentence head naming the features it reads ([`SentenceFeatures`]).
pub const FEATURES_KEY: &str = "features";
/// Header key: sha256 of the span head whose token evidence a
/// [`SentenceFeatures::MeanSpanEvidence`] head reads.
pub const SPAN_EVIDENCE_SHA_KEY: &str = "span_evidence_sha256";
/// The `features` value written by heads from before feature kinds were recorded: mean pooling.
const LEGACY_MEAN_FEATURES: &str = "mean-pooled final hidden states, L2-normalised";

/// What a loaded-language sentence head reads, from its header (`features`, absent = mean).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentenceFeatures {
    /// [`sentence_features`]: the L2-normalised mean-pooled vector.
    Mean,
    /// The mean-pooled vector followed by [`span_evidence`] of the span head with this sha256,
    /// computed from the token states of the same encoder pass.
    MeanSpanEvidence { span_sha256: String },
}

impl SentenceFeatures {
    /// Header value of `features`.
    pub fn name(&self) -> &'static str {
        match self {
            SentenceFeatures::Mean => "mean",
            SentenceFeatures::MeanSpanEvidence { .. } => "mean+span_evidence",
        }
    }

    /// The kind `head` reads; an unknown `features` value or a missing span sha256 is an error.
    pub fn of(head: &MlpHead) -> Result<Self> {
        match head.meta.get(FEATURES_KEY).map(String::as_str) {
            None | Some("mean") | Some(LEGACY_MEAN_FEATURES) => Ok(SentenceFeatures::Mean),
            Some("mean+span_evidence") => match head.meta.get(SPAN_EVIDENCE_SHA_KEY) {
                Some(sha) if !sha.is_empty() => Ok(SentenceFeatures::MeanSpanEvidence {
                    span_sha256: sha.clone(),
                }),
                _ => Err(Error::Mismatch(format!(
                    "the sentence head reads span evidence but its header has no `{SPAN_EVIDENCE_SHA_KEY}`"
                ))),
            },
            Some(other) => Err(Error::Unsupported(format!(
                "the sentence head reads unknown features {other:?} (this slant knows `mean` and \
                 `mean+span_evidence`)"
            ))),
        }
    }

    /// Record the kind in a head's header.
    pub fn write(&self, meta: &mut BTreeMap<String, String>) {
        meta.insert(FEATURES_KEY.into(), self.name().into());
        match self {
            SentenceFeatures::Mean => {
                meta.remove(SPAN_EVIDENCE_SHA_KEY);
            }
            SentenceFeatures::MeanSpanEvidence { span_sha256 } => {
                meta.insert(SPAN_EVIDENCE_SHA_KEY.into(), span_sha256.clone());
            }
        }
    }

    /// Length of the feature vector for an encoder of `hidden` dimensions.
    pub fn dim(&self, hidden: usize) -> usize {
        match self {
            SentenceFeatures::Mean => hidden,
            SentenceFeatures::MeanSpanEvidence { .. } => hidden + SPAN_EVIDENCE_DIM,
        }
    }

    /// The span head sha256 this kind needs, if any.
    pub fn span_sha256(&self) -> Option<&str> {
        match self {
            SentenceFeatures::Mean => None,
            SentenceFeatures::MeanSpanEvidence { span_sha256 } => Some(span_sha256),
        }
    }

    /// Check that the span head with sha256 `have` (`None`: no span head found) is the one this
    /// kind reads; `what` names where the span head came from, for the error.
    pub fn check_span_head(&self, have: Option<&str>, what: &str) -> Result<()> {
        let Some(want) = self.span_sha256() else {
            return Ok(());
        };
        match have {
            Some(h) if h == want => Ok(()),
            Some(h) => Err(Error::Mismatch(format!(
                "the sentence head reads the token evidence of the span head with sha256 {want}, \
                 but {what} has sha256 {h}; pass --spans-head with the span head it was trained \
                 with, or retrain it with `slant train loaded --span-evidence FILE`"
            ))),
            None => Err(Error::Mismatch(format!(
                "the sentence head reads the token evidence of the span head with sha256 {want}, \
                 but no span head was found ({what}); pass --spans-head FILE"
            ))),
        }
    }
}

/// Number of span-evidence features.
pub const SPAN_EVIDENCE_DIM: usize = 2;

/// A span head's token evidence for one sentence: the max and the mean, over the sentence's
/// word-piece tokens (offsets `a < b`; special tokens left out), of P(not `O`), from the
/// head's per-token probabilities `probs` (label `o` is `O`). Zeros for a sentence without
/// word pieces.
pub fn span_evidence(
    probs: &[Vec<f32>],
    offsets: &[(usize, usize)],
    o: usize,
) -> [f32; SPAN_EVIDENCE_DIM] {
    let p: Vec<f32> = probs
        .iter()
        .zip(offsets)
        .filter(|(_, &(a, b))| a < b)
        .map(|(p, _)| 1.0 - p[o])
        .collect();
    let mx = p.iter().copied().fold(0.0f32, f32::max);
    let mean = if p.is_empty() {
        0.0
    } else {
        p.iter().sum::<f32>() / p.len() as f32
    };
    [mx, mean]
}

/// How a sentence head pools the encoder's final token states into its features.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// The L2-normalised mean of the token states ([`sentence_features`]).
    #[default]
    Mean,
    /// The L2-normalised mean followed by the L2-normalised element-wise max of the token states
    /// (special tokens included in both).
    MeanMax,
}

impl Pooling {
    /// Name as written in head headers and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::MeanMax => "mean-max",
        }
    }

    /// Features of one sentence from its mean-pooled vector and its `n × hidden` token states.
    pub fn features(self, pooled: &[f32], states: &[f32]) -> Vec<f32> {
        let mut f = sentence_features(pooled);
        if self == Pooling::MeanMax {
            let h = pooled.len();
            let mut mx = vec![f32::NEG_INFINITY; h];
            for row in states.chunks_exact(h.max(1)) {
                for (m, v) in mx.iter_mut().zip(row) {
                    *m = m.max(*v);
                }
            }
            if states.len() < h {
                mx.fill(0.0);
            }
            f.extend(sentence_features(&mx));
        }
        f
    }
}

/// A one-hidden-layer perceptron (or logistic regression when `hidden == 0`) producing one
/// logit. Weights are row-major: `w1` is `hidden x input`, `w2` is `hidden`.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpHead {
    pub input: usize,
    pub hidden: usize,
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    pub w2: Vec<f32>,
    pub b2: f32,
    /// Decision threshold on the probability (chosen on a development split).
    pub threshold: f32,
    /// Temperature `T` of the probability, `sigmoid(logit / T)` (temperature scaling, fitted on
    /// held-out data; stored in the header as `temperature`, absent = 1).
    pub temperature: f32,
    /// Free-form provenance stored in the file header (encoder sha256, data, seed, metrics).
    pub meta: BTreeMap<String, String>,
}

impl MlpHead {
    /// The logit for one feature vector.
    pub fn logit(&self, x: &[f32]) -> f32 {
        debug_assert_eq!(x.len(), self.input);
        if self.hidden == 0 {
            return dot(&self.w2, x) + self.b2;
        }
        let mut out = self.b2;
        for j in 0..self.hidden {
            let row = &self.w1[j * self.input..(j + 1) * self.input];
            let h = (dot(row, x) + self.b1[j]).max(0.0);
            out += self.w2[j] * h;
        }
        out
    }

    /// The (temperature-scaled) probability for one feature vector.
    pub fn prob(&self, x: &[f32]) -> f32 {
        sigmoid(self.logit(x) / self.temperature)
    }

    /// Save as safetensors with `meta`, `threshold`, `input` and `hidden` in the header.
    pub fn save(&self, path: &Path) -> Result<()> {
        let b2 = [self.b2];
        let mut w = HeadWriter::new("slant-mlp-head-v1", &self.meta, self.input, self.hidden);
        w.meta("threshold", self.threshold);
        if self.temperature != 1.0 {
            w.meta("temperature", self.temperature);
        }
        w.tensor("w2", vec![self.w2.len()], &self.w2)
            .tensor("b2", vec![1], &b2)
            .hidden_layer(self.input, self.hidden, &self.w1, &self.b1);
        w.write(path)
    }

    /// Load a head written by [`MlpHead::save`] (a header without `format`, from before it was
    /// written, is accepted).
    pub fn load(path: &Path) -> Result<Self> {
        let file = HeadFile::open(path)?;
        if file.meta_opt("format").is_some() {
            file.require_format("slant-mlp-head-v1", "loaded-language head")?;
        }
        let input: usize = file.meta_parse("input")?;
        let hidden: usize = file.meta_parse("hidden")?;
        let threshold: f32 = file.meta_parse("threshold")?;
        let temperature: f32 = match file.meta_opt("temperature") {
            None => 1.0,
            Some(v) => v
                .parse()
                .ok()
                .filter(|t: &f32| t.is_finite() && *t > 0.0)
                .ok_or_else(|| {
                    file.error(format!("bad temperature {v:?} (want a positive number)"))
                })?,
        };
        let w2 = file.tensor_f32("w2", &[if hidden == 0 { input } else { hidden }])?;
        let b2 = file.tensor_f32("b2", &[1])?[0];
        let (w1, b1) = if hidden > 0 {
            (
                file.tensor_f32("w1", &[hidden, input])?,
                file.tensor_f32("b1", &[hidden])?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let meta = file.provenance(&["threshold", "input", "hidden", "format", "temperature"]);
        Ok(Self {
            input,
            hidden,
            w1,
            b1,
            w2,
            b2,
            threshold,
            temperature,
            meta,
        })
    }
}

impl MlpHead {
    /// One head whose logit is the mean of the logits of `heads` (same input, hidden layers
    /// side by side, output weights divided by their number): a seed ensemble stored in the
    /// ordinary head format. Threshold, temperature and meta come from the first head.
    pub fn average(heads: &[MlpHead]) -> Result<MlpHead> {
        let first = heads
            .first()
            .ok_or_else(|| Error::Mismatch("an ensemble needs at least one head".into()))?;
        if heads
            .iter()
            .any(|h| h.input != first.input || (h.hidden == 0) != (first.hidden == 0))
        {
            return Err(Error::Mismatch(
                "ensemble heads must share their input size and all have (or all lack) a hidden layer"
                    .into(),
            ));
        }
        let k = heads.len() as f32;
        let mut out = first.clone();
        out.b2 = heads.iter().map(|h| h.b2).sum::<f32>() / k;
        if first.hidden == 0 {
            out.w2 = (0..first.input)
                .map(|i| heads.iter().map(|h| h.w2[i]).sum::<f32>() / k)
                .collect();
            return Ok(out);
        }
        out.hidden = heads.iter().map(|h| h.hidden).sum();
        out.w1 = heads.iter().flat_map(|h| h.w1.iter().copied()).collect();
        out.b1 = heads.iter().flat_map(|h| h.b1.iter().copied()).collect();
        out.w2 = heads
            .iter()
            .flat_map(|h| h.w2.iter().map(|w| w / k))
            .collect();
        Ok(out)
    }
}

/// Write f32 tensors `(name, shape, data)` and the header metadata as a safetensors file,
/// creating the parent folder. Every head's `save` goes through here.
pub(crate) fn write_f32_safetensors(
    path: &Path,
    tensors: &[(&str, Vec<usize>, &[f32])],
    meta: HashMap<String, String>,
) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, d)| f32_bytes(d)).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, shape, _), b)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|t| (n.to_string(), t))
                .map_err(|e| Error::Internal(format!("safetensors: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let out = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::Internal(format!("safetensors: {e}")))?;
    let out = sorted_metadata(out)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}

/// `bytes` (a serialised safetensors file) with its `__metadata__` keys in sorted order.
/// `safetensors::serialize` writes them in `HashMap` order, which changes from one process to the
/// next, so the same head trained twice by the same command would get another sha256 (and a
/// sentence head that names its span head by sha256 would refuse an identical retrained one).
/// The tensors' entries and their data are kept as they are; the header is re-padded to 8 bytes
/// with spaces, as the format asks.
fn sorted_metadata(bytes: Vec<u8>) -> Result<Vec<u8>> {
    let bad = |m: String| Error::Internal(format!("safetensors header: {m}"));
    let n = u64::from_le_bytes(
        bytes
            .get(..8)
            .ok_or_else(|| bad("too short".into()))?
            .try_into()
            .expect("8 bytes"),
    ) as usize;
    let header = bytes
        .get(8..8 + n)
        .ok_or_else(|| bad("shorter than its length".into()))?;
    let mut v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| bad(e.to_string()))?;
    // Rebuild the object with `__metadata__` first and every key sorted, whatever map type
    // serde_json was built with.
    let mut entries: Vec<(String, serde_json::Value)> =
        std::mem::take(&mut v).into_iter().collect();
    entries.sort_by(|a, b| (a.0 != "__metadata__", &a.0).cmp(&(b.0 != "__metadata__", &b.0)));
    let mut out_map = serde_json::Map::new();
    for (k, val) in entries {
        let val = match (k.as_str(), val) {
            ("__metadata__", serde_json::Value::Object(m)) => {
                let sorted: BTreeMap<String, serde_json::Value> = m.into_iter().collect();
                serde_json::Value::Object(sorted.into_iter().collect())
            }
            (_, val) => val,
        };
        out_map.insert(k, val);
    }
    let mut json = serde_json::to_vec(&out_map).map_err(|e| bad(e.to_string()))?;
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::SafeTensors;

    #[test]
    fn head_files_are_byte_identical_whatever_the_metadata_order() {
        let dir = std::env::temp_dir().join(format!("slant-meta-order-{}", std::process::id()));
        let data = [1.0f32, -2.0, 3.5];
        let mut files = Vec::new();
        for i in 0..6 {
            // A fresh HashMap each time: its iteration order differs between instances.
            let meta: HashMap<String, String> = (0..12)
                .map(|k| (format!("key{k:02}"), format!("value {k}")))
                .collect();
            let path = dir.join(format!("h{i}.safetensors"));
            write_f32_safetensors(&path, &[("w", vec![3], &data)], meta).unwrap();
            files.push(std::fs::read(&path).unwrap());
        }
        assert!(files.windows(2).all(|w| w[0] == w[1]));
        // Still a valid safetensors file with the metadata and tensor intact.
        let (_, md) = SafeTensors::read_metadata(&files[0]).unwrap();
        let header = md.metadata().clone().unwrap();
        assert_eq!(header.len(), 12);
        assert_eq!(header["key07"], "value 7");
        let st = SafeTensors::deserialize(&files[0]).unwrap();
        let w = st.tensor("w").unwrap();
        assert_eq!(w.shape(), &[3]);
        assert_eq!(w.data(), f32_bytes(&data).as_slice());
        let text = String::from_utf8_lossy(&files[0][8..]);
        assert!(text.find("key00").unwrap() < text.find("key11").unwrap());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn save_load_roundtrip_keeps_weights_threshold_and_meta() {
        let head = MlpHead {
            input: 3,
            hidden: 2,
            w1: vec![0.1, -0.2, 0.3, 0.4, 0.5, -0.6],
            b1: vec![0.01, -0.02],
            w2: vec![1.5, -2.0],
            b2: 0.25,
            threshold: 0.42,
            temperature: 1.0,
            meta: [("seed".to_string(), "7".to_string())]
                .into_iter()
                .collect(),
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.safetensors");
        head.save(&p).unwrap();
        let back = MlpHead::load(&p).unwrap();
        assert_eq!(back, head);
        // Worked by hand: h = relu([0.1-0.4+0.9+0.01, 0.4+1.0-1.8-0.02]) = [0.61, 0]
        let logit = back.logit(&[1.0, 2.0, 3.0]);
        assert!((logit - (1.5 * 0.61 + 0.25)).abs() < 1e-6, "{logit}");
    }

    #[test]
    fn logistic_head_has_no_hidden_layer() {
        let head = MlpHead {
            input: 2,
            hidden: 0,
            w1: vec![],
            b1: vec![],
            w2: vec![2.0, -1.0],
            b2: 0.0,
            threshold: 0.5,
            temperature: 1.0,
            meta: BTreeMap::new(),
        };
        assert!((head.prob(&[1.0, 2.0]) - 0.5).abs() < 1e-7);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.safetensors");
        head.save(&p).unwrap();
        assert_eq!(MlpHead::load(&p).unwrap(), head);
    }

    #[test]
    fn temperature_scales_the_probability_and_travels_in_the_header() {
        let mut head = MlpHead {
            input: 1,
            hidden: 0,
            w1: vec![],
            b1: vec![],
            w2: vec![2.0],
            b2: 0.0,
            threshold: 0.5,
            temperature: 1.0,
            meta: BTreeMap::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.safetensors");
        head.save(&p).unwrap();
        let plain = std::fs::read(&p).unwrap();
        // Absent key = temperature 1: an old head loads and scores as before.
        assert!(!String::from_utf8_lossy(&plain).contains("temperature"));
        assert!((head.prob(&[1.0]) - sigmoid(2.0)).abs() < 1e-7);
        head.temperature = 2.0;
        assert!((head.prob(&[1.0]) - sigmoid(1.0)).abs() < 1e-7);
        assert_eq!(head.logit(&[1.0]), 2.0);
        head.save(&p).unwrap();
        let back = MlpHead::load(&p).unwrap();
        assert_eq!(back, head);
        assert!(!back.meta.contains_key("temperature"));
        let mut bytes = std::fs::read(&p).unwrap();
        let at = bytes.windows(3).position(|w| w == b"\"2\"").unwrap();
        bytes[at + 1] = b'0';
        std::fs::write(&p, bytes).unwrap();
        let e = MlpHead::load(&p).unwrap_err().to_string();
        assert!(e.contains("bad temperature"), "{e}");
    }

    #[test]
    fn non_head_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.safetensors");
        std::fs::write(&p, b"not safetensors").unwrap();
        let e = MlpHead::load(&p).unwrap_err().to_string();
        assert!(e.contains("x.safetensors"), "{e}");
    }

    #[test]
    fn mean_max_pooling_by_hand() {
        let pooled = [1.0, 1.0];
        let states = [3.0, -4.0, 0.0, 2.0];
        assert_eq!(Pooling::Mean.features(&pooled, &states).len(), 2);
        let f = Pooling::MeanMax.features(&pooled, &states);
        // max = [3, 2] -> /sqrt(13)
        let r = 13f32.sqrt();
        assert!(
            (f[2] - 3.0 / r).abs() < 1e-6 && (f[3] - 2.0 / r).abs() < 1e-6,
            "{f:?}"
        );
        assert!((f[0] - 0.5f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn feature_kind_comes_from_the_header_and_old_heads_read_mean() {
        let mut head = MlpHead {
            input: 2,
            hidden: 0,
            w1: vec![],
            b1: vec![],
            w2: vec![1.0, 1.0],
            b2: 0.0,
            threshold: 0.5,
            temperature: 1.0,
            meta: BTreeMap::new(),
        };
        assert_eq!(SentenceFeatures::of(&head).unwrap(), SentenceFeatures::Mean);
        head.meta
            .insert(FEATURES_KEY.into(), LEGACY_MEAN_FEATURES.into());
        assert_eq!(SentenceFeatures::of(&head).unwrap(), SentenceFeatures::Mean);
        let ev = SentenceFeatures::MeanSpanEvidence {
            span_sha256: "ab12".into(),
        };
        ev.write(&mut head.meta);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.safetensors");
        head.save(&p).unwrap();
        let back = MlpHead::load(&p).unwrap();
        assert_eq!(SentenceFeatures::of(&back).unwrap(), ev);
        assert_eq!(ev.dim(384), 386);
        assert!(ev.check_span_head(Some("ab12"), "x").is_ok());
        let e = ev
            .check_span_head(Some("ff00"), "models/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ab12") && e.contains("ff00"), "{e}");
        assert!(ev.check_span_head(None, "none").is_err());
        assert!(SentenceFeatures::Mean.check_span_head(None, "none").is_ok());
        head.meta.remove(SPAN_EVIDENCE_SHA_KEY);
        assert!(SentenceFeatures::of(&head).is_err());
        head.meta.insert(FEATURES_KEY.into(), "mean+lexicon".into());
        let e = SentenceFeatures::of(&head).unwrap_err().to_string();
        assert!(e.contains("mean+lexicon"), "{e}");
    }

    #[test]
    fn span_evidence_by_hand_skips_special_tokens() {
        // Label 0 is O. Tokens: [CLS], "vile" (P(O) 0.2), "men" (0.9), [SEP].
        let probs = vec![
            vec![0.0, 1.0],
            vec![0.2, 0.8],
            vec![0.9, 0.1],
            vec![0.0, 1.0],
        ];
        let offsets = [(0, 0), (0, 4), (5, 8), (0, 0)];
        let [mx, mean] = span_evidence(&probs, &offsets, 0);
        assert!(
            (mx - 0.8).abs() < 1e-6 && (mean - 0.45).abs() < 1e-6,
            "{mx} {mean}"
        );
        assert_eq!(span_evidence(&probs[..1], &offsets[..1], 0), [0.0, 0.0]);
    }

    #[test]
    fn averaged_head_gives_the_mean_logit() {
        let mk = |seed: f32, hidden: usize| MlpHead {
            input: 3,
            hidden,
            w1: (0..hidden * 3)
                .map(|i| (i as f32 * 0.37 + seed).sin())
                .collect(),
            b1: (0..hidden).map(|i| (i as f32 + seed).cos() * 0.1).collect(),
            w2: (0..if hidden > 0 { hidden } else { 3 })
                .map(|i| (i as f32 * 1.3 - seed).sin())
                .collect(),
            b2: seed * 0.1,
            threshold: 0.5,
            temperature: 1.0,
            meta: BTreeMap::new(),
        };
        for hidden in [0, 4] {
            let heads = [mk(0.5, hidden), mk(1.5, hidden), mk(-2.0, hidden)];
            let avg = MlpHead::average(&heads).unwrap();
            for x in [[1.0, -0.5, 0.25], [0.0, 2.0, -1.0]] {
                let want = heads.iter().map(|h| h.logit(&x)).sum::<f32>() / 3.0;
                assert!((avg.logit(&x) - want).abs() < 1e-5, "hidden {hidden}");
            }
            assert_eq!(avg.hidden, 3 * hidden);
        }
        assert!(MlpHead::average(&[]).is_err());
        assert!(MlpHead::average(&[mk(0.0, 0), mk(0.0, 2)]).is_err());
    }

    #[test]
    fn features_have_unit_length() {
        let f = sentence_features(&[3.0, 4.0]);
        assert!((f[0] - 0.6).abs() < 1e-7 && (f[1] - 0.8).abs() < 1e-7);
    }
}
