//! The encoder stage: one pass of a local BERT-family transformer per sentence batch.
//!
//! This module is the only place that knows which inference engine runs the encoder
//! (today: [candle](https://github.com/huggingface/candle), pure Rust). Everything it hands
//! out is plain `f32` data ([`SentenceEncoding`]), so another backend (e.g. libtorch) could be
//! added behind [`Encoder`] without touching the heads.
//!
//! Batching: sentences are tokenized once, sorted by token count and cut into batches of at most
//! `batch_size` sentences, so a batch is padded only up to its own longest sentence (never to the
//! tokenizer file's fixed 128). The batch composition depends only on the token counts and
//! `batch_size`, never on the thread count, so results are identical for any number of threads.
//! Sentences longer than the model's limit are truncated; [`EncodeStats::truncated`] counts them.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::{Error, Result};

/// Default number of sentences per encoder batch (measured: larger batches buy little on CPU).
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// One sentence after the encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceEncoding {
    /// Mean of the final hidden states over the sentence's tokens (special tokens included, as
    /// sentence-transformers does), not normalised.
    pub pooled: Vec<f32>,
    /// Number of tokens fed to the model (after truncation, special tokens included).
    pub n_tokens: usize,
    /// True when the sentence was longer than the model's limit and was cut.
    pub truncated: bool,
}

/// Counters of an encoding run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EncodeStats {
    pub sentences: usize,
    pub tokens: usize,
    pub padded_tokens: usize,
    pub truncated: usize,
    pub batches: usize,
}

/// A loaded encoder: model weights, tokenizer and their provenance.
pub struct Encoder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    hidden: usize,
    max_tokens: usize,
    dir: PathBuf,
    weights_sha256: String,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("dir", &self.dir)
            .field("hidden", &self.hidden)
            .field("max_tokens", &self.max_tokens)
            .field("weights_sha256", &self.weights_sha256)
            .finish()
    }
}

/// sha256 of a file, hex encoded.
pub fn sha256_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the default encoder lives, relative to the project root, once `models/fetch` ran.
pub const DEFAULT_ENCODER_DIR: &str = "models/encoder/all-MiniLM-L6-v2";

/// Resolve the encoder folder: an explicit `--model`, else `SLANT_MODEL`, else the default
/// folder next to the binary's project (walking up from the current directory and from the
/// executable), so `target/release/slant` finds `models/encoder/...` from anywhere in the repo.
pub fn resolve_model_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Ok(p) = std::env::var("SLANT_MODEL") {
        if !p.is_empty() {
            return Ok(PathBuf::from(p));
        }
    }
    let mut starts: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(parent) = exe.parent() {
            starts.push(parent.to_path_buf());
        }
    }
    for start in starts {
        for dir in start.ancestors() {
            let cand = dir.join(DEFAULT_ENCODER_DIR);
            if cand.join("model.safetensors").is_file() {
                return Ok(cand);
            }
        }
    }
    Err(Error::Model(format!(
        "no encoder found: looked for {DEFAULT_ENCODER_DIR}/model.safetensors above the current \
         directory and the executable. Run `models/fetch` in the slant checkout, or pass \
         --model DIR (a BERT-family folder with config.json, tokenizer.json, model.safetensors), \
         or set SLANT_MODEL"
    )))
}

impl Encoder {
    /// Load a BERT-family model folder (`config.json`, `tokenizer.json`, `model.safetensors`;
    /// optional `sentence_bert_config.json` whose `max_seq_length` caps the input length).
    pub fn load(dir: &Path) -> Result<Self> {
        let need = ["config.json", "tokenizer.json", "model.safetensors"];
        for n in need {
            if !dir.join(n).is_file() {
                return Err(Error::Model(format!(
                    "{} is missing {n} (a model folder needs config.json, tokenizer.json and \
                     model.safetensors; run models/fetch for the default encoder)",
                    dir.display()
                )));
            }
        }
        let cfg_path = dir.join("config.json");
        let cfg_text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let config: BertConfig = serde_json::from_str(&cfg_text)
            .map_err(|e| Error::Model(format!("{}: {e}", cfg_path.display())))?;
        let mut max_tokens = config.max_position_embeddings;
        let sb = dir.join("sentence_bert_config.json");
        if let Ok(t) = std::fs::read_to_string(&sb) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) {
                if let Some(m) = v.get("max_seq_length").and_then(|m| m.as_u64()) {
                    max_tokens = max_tokens.min(m as usize);
                }
            }
        }
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", tok_path.display())))?;
        // The shipped tokenizer.json pads every input to 128: we batch by length instead.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let weights = dir.join("model.safetensors");
        let weights_sha256 = sha256_file(&weights)?;
        let device = Device::Cpu;
        // SAFETY: the file is memory-mapped read-only and not modified while the model lives.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device)? };
        let model = BertModel::load(vb, &config)?;
        Ok(Self {
            model,
            tokenizer,
            device,
            hidden: config.hidden_size,
            max_tokens,
            dir: dir.to_path_buf(),
            weights_sha256,
        })
    }

    /// Hidden size of the pooled vectors.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }
    /// Maximum tokens per sentence (longer ones are truncated).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }
    /// The model folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// sha256 of `model.safetensors`.
    pub fn weights_sha256(&self) -> &str {
        &self.weights_sha256
    }
    /// The tokenizer (padding off, truncation at [`Self::max_tokens`]).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Encode sentences; the result is in the input order. See the module doc for batching.
    pub fn encode(
        &self,
        texts: &[&str],
        batch_size: usize,
    ) -> Result<(Vec<SentenceEncoding>, EncodeStats)> {
        let batch_size = batch_size.max(1);
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        // Stable sort by length, ties by input position: the batching depends on nothing else.
        order.sort_by_key(|&i| (encodings[i].get_ids().len(), i));
        let mut out: Vec<Option<SentenceEncoding>> = vec![None; texts.len()];
        let mut stats = EncodeStats {
            sentences: texts.len(),
            ..Default::default()
        };
        for chunk in order.chunks(batch_size) {
            let max_len = chunk
                .iter()
                .map(|&i| encodings[i].get_ids().len())
                .max()
                .unwrap_or(0);
            let b = chunk.len();
            let mut ids = vec![0u32; b * max_len];
            let mut mask = vec![0u32; b * max_len];
            for (row, &i) in chunk.iter().enumerate() {
                let e = &encodings[i];
                let n = e.get_ids().len();
                ids[row * max_len..row * max_len + n].copy_from_slice(e.get_ids());
                for m in &mut mask[row * max_len..row * max_len + n] {
                    *m = 1;
                }
                stats.tokens += n;
            }
            stats.padded_tokens += b * max_len;
            stats.batches += 1;
            let pooled = self.forward_pooled(&ids, &mask, b, max_len)?;
            for (row, &i) in chunk.iter().enumerate() {
                let e = &encodings[i];
                let truncated = !e.get_overflowing().is_empty();
                if truncated {
                    stats.truncated += 1;
                }
                out[i] = Some(SentenceEncoding {
                    pooled: pooled[row * self.hidden..(row + 1) * self.hidden].to_vec(),
                    n_tokens: e.get_ids().len(),
                    truncated,
                });
            }
        }
        Ok((
            out.into_iter()
                .map(|o| o.expect("every sentence is in exactly one batch"))
                .collect(),
            stats,
        ))
    }

    /// Run the model on one padded batch and mean-pool over the real tokens: `b * hidden` floats.
    fn forward_pooled(&self, ids: &[u32], mask: &[u32], b: usize, t: usize) -> Result<Vec<f32>> {
        if b == 0 || t == 0 {
            return Ok(vec![0.0; b * self.hidden]);
        }
        let ids_t = Tensor::from_slice(ids, (b, t), &self.device)?;
        let mask_t = Tensor::from_slice(mask, (b, t), &self.device)?;
        let type_ids = ids_t.zeros_like()?;
        let hidden = self.model.forward(&ids_t, &type_ids, Some(&mask_t))?; // (b, t, h)
        let maskf = mask_t.to_dtype(DType::F32)?.unsqueeze(2)?; // (b, t, 1)
        let summed = hidden.broadcast_mul(&maskf)?.sum(1)?; // (b, h)
        let counts = maskf.sum(1)?; // (b, 1)
        let pooled = summed.broadcast_div(&counts)?;
        Ok(pooled.flatten_all()?.to_vec1::<f32>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real encoder, when `models/fetch` has been run; tests that need it skip otherwise.
    pub(crate) fn test_encoder() -> Option<Encoder> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_ENCODER_DIR);
        if !dir.join("model.safetensors").is_file() {
            eprintln!("skipping: encoder not fetched (run models/fetch)");
            return None;
        }
        Some(Encoder::load(&dir).expect("encoder loads"))
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (na * nb)
    }

    #[test]
    fn batch_size_does_not_change_outputs() {
        let Some(enc) = test_encoder() else { return };
        let texts = [
            "The Taliban called for recognition.",
            "Short.",
            "Akhund claimed the Taliban did not want international endorsement for the officials.",
            "A much longer sentence about humanitarian aid, famine, and the United Nations' warnings about food insecurity in Afghanistan.",
            "",
        ];
        let (one, s1) = enc.encode(&texts, 1).unwrap();
        let (all, s5) = enc.encode(&texts, 5).unwrap();
        assert_eq!(s1.sentences, 5);
        assert!(s5.padded_tokens > s5.tokens, "a mixed batch needs padding");
        assert_eq!(s1.padded_tokens, s1.tokens, "single sentences need none");
        for (a, b) in one.iter().zip(&all) {
            assert_eq!(a.n_tokens, b.n_tokens);
            let max_diff = a
                .pooled
                .iter()
                .zip(&b.pooled)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(max_diff < 1e-4, "padding changed the output by {max_diff}");
        }
    }

    #[test]
    fn similar_sentences_are_closer_than_unrelated_ones() {
        // A real pretrained encoder separates meaning; a random or broken one would not.
        let Some(enc) = test_encoder() else { return };
        let texts = [
            "The Taliban asked Muslim countries to recognise their government.",
            "Afghanistan's Taliban rulers urged Islamic nations to officially recognize them.",
            "The recipe needs two cups of flour and a pinch of salt.",
        ];
        let (e, _) = enc.encode(&texts, 8).unwrap();
        let near = cosine(&e[0].pooled, &e[1].pooled);
        let far = cosine(&e[0].pooled, &e[2].pooled);
        assert!(near > 0.6 && far < 0.2, "near {near}, far {far}");
        assert_eq!(e[0].pooled.len(), 384);
    }

    #[test]
    fn long_sentences_are_truncated_and_counted() {
        let Some(enc) = test_encoder() else { return };
        let long = "word ".repeat(600);
        let (e, s) = enc.encode(&[long.as_str(), "short one"], 2).unwrap();
        assert!(e[0].truncated);
        assert!(!e[1].truncated);
        assert_eq!(e[0].n_tokens, enc.max_tokens());
        assert_eq!(s.truncated, 1);
    }
}
