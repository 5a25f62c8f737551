//! The encoder stage: one pass of a local BERT-family transformer per sentence batch.
//!
//! This module is the only place that knows which inference engine runs the encoder: the fast
//! fp32 engine of [`fast`] (default) or [candle](https://github.com/huggingface/candle)'s
//! `BertModel` (the reference, [`Engine::Candle`]); both pure Rust. Everything it hands
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
use config::EncoderConfig;

pub mod config;
pub mod f32mm;
pub mod fast;
pub mod files;
pub mod int8;

pub use fast::Profile;

/// Which implementation runs the encoder. Both read the same weights; `fast` is tested equal to
/// `candle` (the reference) within 1e-4 on pooled vectors and token states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Engine {
    /// Packed tokens, no padding, own AVX-512/AVX2 matmul kernels and fused element-wise passes
    /// (src/encode/fast.rs, src/encode/f32mm.rs).
    #[default]
    Fast,
    /// candle-transformers' `BertModel` on padded batches (the reference).
    Candle,
}

impl Engine {
    /// Name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Fast => "fast",
            Engine::Candle => "candle",
        }
    }
}

/// Arithmetic of the fast engine's linear maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Precision {
    /// fp32 everywhere (the default; equal to the candle reference within 1e-4).
    #[default]
    Fp32,
    /// int8 weights (per output channel) and activations (per row) in the six layers' linear
    /// maps, exact i32 sums; embeddings, attention, LayerNorm and GELU stay fp32.
    Int8,
}

impl Precision {
    /// Name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
        }
    }
}

enum Backend {
    Candle(Box<BertModel>),
    Fast(Box<fast::FastBert>),
}

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

/// One sentence after the encoder, with every token's final hidden state and its offsets: what
/// token-level heads (span taggers) read. See [`Encoder::encode_tokens`].
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEncoding {
    /// Same as [`SentenceEncoding::pooled`] (bit-identical to what [`Encoder::encode`] returns).
    pub pooled: Vec<f32>,
    /// Final-layer hidden states, `n_tokens × hidden`, row-major, special tokens included.
    pub states: Vec<f32>,
    /// Byte offsets of each token into the text given to the encoder; `(0, 0)` for the special
    /// tokens (`[CLS]`, `[SEP]`). Word pieces of one word have adjacent, non-overlapping ranges.
    pub offsets: Vec<(usize, usize)>,
    /// Number of tokens fed to the model (after truncation, special tokens included).
    pub n_tokens: usize,
    /// True when the sentence was longer than the model's limit and was cut (tokens past the
    /// limit have no state: a tagger sees only the first `n_tokens`).
    pub truncated: bool,
    /// With [`TokenExtras::extra`]: the mean of each token's states after the asked
    /// lower layers, `n_tokens × hidden` like `states`, from the same pass; empty otherwise.
    pub extra: Vec<f32>,
    /// With [`TokenExtras::branch`]: [`Branch::States`] keeps each token's state
    /// after the asked layer (`n_tokens × hidden`); [`Branch::Pooled`] keeps the mean-pooled
    /// output of a second top run on those states (`hidden` floats); empty otherwise.
    pub branch: Vec<f32>,
}

/// A branch off the encoder's single pass at a lower layer (fast engine only): the tuned loaded
/// head ([`crate::heads::tuned`]) replaces the top layers with its own merged copy, and reads
/// what the pass had after layer `l`.
#[derive(Debug, Clone, Copy)]
pub enum Branch<'a> {
    /// Keep each token's state after layer `l` (1-based).
    States(usize),
    /// Run `stack` on the states after layer `l`, batch by batch inside the pass, and keep
    /// only its mean-pooled output (no per-token copy is held).
    Pooled(usize, &'a fast::LayerStack),
}

impl Branch<'_> {
    /// The layer the branch leaves the pass after.
    pub fn layer(&self) -> usize {
        match *self {
            Branch::States(l) | Branch::Pooled(l, _) => l,
        }
    }
}

impl TokenEncoding {
    /// The hidden state of token `i`.
    pub fn state(&self, i: usize) -> &[f32] {
        let h = self.states.len() / self.n_tokens.max(1);
        &self.states[i * h..(i + 1) * h]
    }
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
    backend: Backend,
    tokenizer: Tokenizer,
    device: Device,
    hidden: usize,
    n_layers: usize,
    max_tokens: usize,
    dir: PathBuf,
    weights_sha256: String,
    /// Stage timings, kept when `SLANT_PROFILE` is set and printed to stderr on drop.
    profile: Option<std::sync::Mutex<Profile>>,
    /// Called with the number of sentences of each batch encoded (progress bars of long
    /// evaluation and training runs); see [`Encoder::set_progress`].
    progress: Option<ProgressHook>,
}

/// A callback told how many sentences each encoder batch finished.
pub type ProgressHook = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

impl Drop for Encoder {
    fn drop(&mut self) {
        if let Some(p) = self.profile.take() {
            let p = p.into_inner().unwrap_or_else(|e| e.into_inner());
            if p.batches > 0 {
                eprint!("{}", p.render(self.engine().name()));
            }
        }
    }
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("dir", &self.dir)
            .field("engine", &self.engine())
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

/// The fetched default encoder's folder, for tests that need the real model: `None` (after a
/// skip message) when `models/fetch` has not been run.
#[cfg(test)]
pub(crate) fn fetched_encoder_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_ENCODER_DIR);
    if dir.join("model.safetensors").is_file() {
        Some(dir)
    } else {
        eprintln!("skipping: encoder not fetched (run models/fetch)");
        None
    }
}

/// Where the accurate encoder (all-mpnet-base-v2) lives once `models/fetch --accurate` ran.
pub const ACCURATE_ENCODER_DIR: &str = "models/encoder/all-mpnet-base-v2";

/// The release folder a model name stands for: `default` (all-MiniLM-L6-v2) or `accurate`
/// (all-mpnet-base-v2), with the command that fetches it.
fn named_encoder(name: &Path) -> Option<(&'static str, &'static str)> {
    match name.to_str()? {
        "default" => Some((DEFAULT_ENCODER_DIR, "models/fetch")),
        "accurate" => Some((ACCURATE_ENCODER_DIR, "models/fetch --accurate")),
        _ => None,
    }
}

/// `rel` (a release folder) above the current directory or the executable, once fetched.
fn find_release(rel: &str) -> Option<PathBuf> {
    let mut starts: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(parent) = exe.parent() {
            starts.push(parent.to_path_buf());
        }
    }
    starts
        .iter()
        .flat_map(|s| s.ancestors())
        .map(|d| d.join(rel))
        .find(|c| c.join("model.safetensors").is_file())
}

/// Resolve the encoder folder: an explicit `--model` (a folder, or the name `default` or
/// `accurate`), else `SLANT_MODEL`, else the default folder next to the binary's project
/// (walking up from the current directory and from the executable), so `target/release/slant`
/// finds `models/encoder/...` from anywhere in the repo.
pub fn resolve_model_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    let given = explicit.map(Path::to_path_buf).or_else(|| {
        std::env::var("SLANT_MODEL")
            .ok()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    });
    if let Some(p) = given {
        return match named_encoder(&p) {
            Some((rel, fetch)) if !p.exists() => find_release(rel).ok_or_else(|| {
                Error::Missing(format!(
                    "the {} encoder is not fetched: looked for {rel}/model.safetensors above the \
                     current directory and the executable. Run `{fetch}` in the slant checkout",
                    p.display()
                ))
            }),
            _ => Ok(p),
        };
    }
    find_release(DEFAULT_ENCODER_DIR).ok_or_else(|| {
        Error::Missing(format!(
            "no encoder found: looked for {DEFAULT_ENCODER_DIR}/model.safetensors above the \
             current directory and the executable. Run `models/fetch` in the slant checkout, or \
             pass --model DIR (a BERT or MPNet folder with config.json, tokenizer.json, \
             model.safetensors), --model accurate after `models/fetch --accurate`, or set \
             SLANT_MODEL"
        ))
    })
}

/// How to run an encoder: which engine, which precision. The default is the fast engine in
/// fp32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncoderOptions {
    pub engine: Engine,
    /// int8 needs [`Engine::Fast`].
    pub precision: Precision,
}

impl EncoderOptions {
    /// The default precision on `engine`.
    pub fn engine(engine: Engine) -> Self {
        Self {
            engine,
            ..Self::default()
        }
    }
}

/// What a head or training step asks of one encoding pass beyond the final token states.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenExtras<'a> {
    /// Also keep, per token, the mean of its states after layers `a..=b` (fast engine only).
    pub extra: Option<(usize, usize)>,
    /// Also fill [`TokenEncoding::branch`] (fast engine only; see [`Branch`]).
    pub branch: Option<Branch<'a>>,
}

impl Encoder {
    /// Load a BERT-family model folder (`config.json`, `tokenizer.json`, `model.safetensors`;
    /// optional `sentence_bert_config.json` whose `max_seq_length` caps the input length) to run
    /// as `opts` says. The one constructor of [`Encoder`].
    pub fn load(dir: &Path, opts: EncoderOptions) -> Result<Self> {
        let EncoderOptions { engine, precision } = opts;
        if precision == Precision::Int8 && engine != Engine::Fast {
            return Err(Error::Unsupported(format!(
                "--precision int8 needs the fast engine (this run: --engine {})",
                engine.name()
            )));
        }
        let need = ["config.json", "tokenizer.json", "model.safetensors"];
        for n in need {
            if !dir.join(n).is_file() {
                return Err(Error::Missing(format!(
                    "{} is missing {n} (a model folder needs config.json, tokenizer.json and \
                     model.safetensors; run models/fetch for the default encoder)",
                    dir.display()
                )));
            }
        }
        let cfg_path = dir.join("config.json");
        let cfg_text = std::fs::read(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let config = EncoderConfig::parse(&cfg_path, &cfg_text)?;
        if engine == Engine::Candle && config.model_type != "bert" {
            return Err(Error::Unsupported(format!(
                "the candle engine runs BERT encoders only; {} is {:?}: use --engine fast",
                dir.display(),
                config.model_type
            )));
        }
        // MPNet's position ids start after its padding id (2, RoBERTa-style).
        let first_position = if config.model_type == "mpnet" { 2 } else { 0 };
        let mut max_tokens = config.max_position_embeddings - first_position;
        let sb = dir.join("sentence_bert_config.json");
        if let Ok(t) = std::fs::read_to_string(&sb) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) {
                if let Some(m) = v.get("max_seq_length").and_then(|m| m.as_u64()) {
                    max_tokens = max_tokens.min(m as usize);
                }
            }
        }
        let tok_path = dir.join("tokenizer.json");
        let tok_bytes = std::fs::read(&tok_path).map_err(|e| Error::io(&tok_path, e))?;
        let mut tokenizer = Tokenizer::from_bytes(&tok_bytes).map_err(|e| {
            // A truncated tokenizer.json is damage, named as such (the tokenizer's own parser
            // reports only "EOF while parsing"); it is parsed a second time only then.
            match files::parse_json::<serde::de::IgnoredAny>(&tok_path, &tok_bytes) {
                Err(damage @ Error::Damaged { .. }) => damage,
                _ => Error::Tokenizer(format!("{}: {e}", tok_path.display())),
            }
        })?;
        drop(tok_bytes);
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
        let device = Device::Cpu;
        // The weights file is mapped once: its sha256 is computed on a second thread while the
        // engine reads (and for int8 quantises) the weights from the same pages.
        let file = std::fs::File::open(&weights).map_err(|e| Error::io(&weights, e))?;
        // SAFETY: the file is mapped read-only and only read while loading; a file changed by
        // another process meanwhile could give torn weights, as a plain read could.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&weights, e))?;
        files::check_safetensors(&weights, &map)?;
        let (weights_sha256, backend) = std::thread::scope(|s| {
            let sha = s.spawn(|| hex(&Sha256::digest(&map[..])));
            let backend = (|| -> Result<Backend> {
                Ok(match engine {
                    Engine::Candle => {
                        // SAFETY: the file is memory-mapped read-only and not modified while
                        // the model lives.
                        let bert: BertConfig = serde_json::from_slice(&cfg_text)
                            .map_err(|e| Error::bad_model(&cfg_path, e))?;
                        let vb = unsafe {
                            VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device)?
                        };
                        Backend::Candle(Box::new(BertModel::load(vb, &bert)?))
                    }
                    Engine::Fast => Backend::Fast(Box::new(fast::FastBert::from_bytes(
                        &map,
                        &weights,
                        &config,
                        precision == Precision::Int8,
                    )?)),
                })
            })();
            (sha.join().expect("sha256 thread panicked"), backend)
        });
        // Damaged weights in a release's folder are named as such, before any parse error.
        files::check_known_weights(dir, &weights_sha256)?;
        let backend = backend?;
        let profile = std::env::var_os("SLANT_PROFILE")
            .filter(|v| !v.is_empty() && v != "0")
            .map(|_| std::sync::Mutex::new(Profile::default()));
        Ok(Self {
            backend,
            profile,
            progress: None,
            tokenizer,
            device,
            hidden: config.hidden_size,
            n_layers: config.num_hidden_layers,
            max_tokens,
            dir: dir.to_path_buf(),
            weights_sha256,
        })
    }

    /// The engine running this encoder.
    pub fn engine(&self) -> Engine {
        match self.backend {
            Backend::Candle(_) => Engine::Candle,
            Backend::Fast(_) => Engine::Fast,
        }
    }
    /// The precision of the encoder's linear maps.
    pub fn precision(&self) -> Precision {
        match &self.backend {
            Backend::Fast(f) if f.is_int8() => Precision::Int8,
            _ => Precision::Fp32,
        }
    }

    /// Engine and precision as one name (`fast`, `candle`, `fast-int8`): what the feature
    /// cache is keyed by.
    pub fn variant(&self) -> String {
        match self.precision() {
            Precision::Fp32 => self.engine().name().to_string(),
            p => format!("{}-{}", self.engine().name(), p.name()),
        }
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
    /// The known release these weights are (by sha256), if any.
    pub fn known(&self) -> Option<&'static files::KnownEncoder> {
        files::known_by_sha(&self.weights_sha256)
    }
    /// The tokenizer (padding off, truncation at [`Self::max_tokens`]).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Encode sentences; the result is in the input order. See the module doc for batching.
    /// Report every finished batch to `hook` (its sentence count); `None` stops reporting.
    pub fn set_progress(&mut self, hook: Option<ProgressHook>) {
        self.progress = hook;
    }

    fn tick(&self, sentences: usize) {
        if let Some(h) = &self.progress {
            h(sentences as u64);
        }
    }

    pub fn encode(
        &self,
        texts: &[&str],
        batch_size: usize,
    ) -> Result<(Vec<SentenceEncoding>, EncodeStats)> {
        let (out, stats) = self.run(texts, batch_size, false, None, None)?;
        Ok((
            out.into_iter()
                .map(|t| SentenceEncoding {
                    pooled: t.pooled,
                    n_tokens: t.n_tokens,
                    truncated: t.truncated,
                })
                .collect(),
            stats,
        ))
    }

    /// Encode sentences keeping every token's final hidden state and byte offsets (for span
    /// taggers), in the input order. Same tokenization, batching and single forward pass as
    /// [`Self::encode`], whose pooled vectors it returns bit for bit alongside the states.
    /// `extras` asks for more of the same single pass: with `extra = Some((a, b))`,
    /// [`TokenEncoding::extra`] holds the mean of each token's states after layers `a..=b` (one
    /// layer when `a == b`); with a `branch`, [`TokenEncoding::branch`] is filled. Both need
    /// the fast engine (the candle engine refuses them).
    pub fn encode_tokens(
        &self,
        texts: &[&str],
        batch_size: usize,
        extras: TokenExtras,
    ) -> Result<(Vec<TokenEncoding>, EncodeStats)> {
        let TokenExtras { extra, branch } = extras;
        if (extra.is_some() || branch.is_some()) && !matches!(self.backend, Backend::Fast(_)) {
            let who = if branch.is_some() {
                "the tuned loaded head's `first_layer`"
            } else {
                "`extra_layer` in the tagger head's header"
            };
            return Err(Error::Unsupported(format!(
                "a head reads the token states of a lower encoder layer ({who}), which only the \
                 fast engine keeps: use --engine fast"
            )));
        }
        self.run(texts, batch_size, true, extra, branch)
    }

    /// The one encoding loop behind [`Self::encode`] and [`Self::encode_tokens`].
    fn run(
        &self,
        texts: &[&str],
        batch_size: usize,
        want_states: bool,
        extra: Option<(usize, usize)>,
        branch: Option<Branch>,
    ) -> Result<(Vec<TokenEncoding>, EncodeStats)> {
        let batch_size = batch_size.max(1);
        let mut prof = self
            .profile
            .as_ref()
            .map(|p| p.lock().unwrap_or_else(|e| e.into_inner()));
        let t_tok = std::time::Instant::now();
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        if let Some(p) = prof.as_deref_mut() {
            p.tokenize += t_tok.elapsed();
        }
        let mut order: Vec<usize> = (0..texts.len()).collect();
        // Stable sort by length, ties by input position: the batching depends on nothing else.
        order.sort_by_key(|&i| (encodings[i].get_ids().len(), i));
        let mut out: Vec<Option<TokenEncoding>> = vec![None; texts.len()];
        let mut stats = EncodeStats {
            sentences: texts.len(),
            ..Default::default()
        };
        for chunk in order.chunks(batch_size) {
            self.tick(chunk.len());
            let max_len = chunk
                .iter()
                .map(|&i| encodings[i].get_ids().len())
                .max()
                .unwrap_or(0);
            let b = chunk.len();
            stats.batches += 1;
            if let Backend::Fast(fast) = &self.backend {
                let seqs: Vec<&[u32]> = chunk.iter().map(|&i| encodings[i].get_ids()).collect();
                let n: usize = seqs.iter().map(|s| s.len()).sum();
                stats.tokens += n;
                stats.padded_tokens += n;
                let keeps: Vec<(usize, usize)> = extra
                    .into_iter()
                    .chain(branch.map(|b| (b.layer(), b.layer())))
                    .collect();
                let (pooled, states, kept) = fast.forward_pooled_states_keep(
                    &seqs,
                    prof.as_deref_mut(),
                    want_states,
                    &keeps,
                )?;
                // Packed states: sentence after sentence.
                let mut off = 0;
                let per: Vec<&[f32]> = seqs
                    .iter()
                    .map(|s| {
                        if !want_states {
                            return &states[..0];
                        }
                        let r = &states[off * self.hidden..(off + s.len()) * self.hidden];
                        off += s.len();
                        r
                    })
                    .collect();
                self.collect(
                    chunk,
                    &encodings,
                    &pooled,
                    want_states.then_some(&per[..]),
                    &mut out,
                    &mut stats,
                );
                let mut kept = kept.into_iter();
                let lower = extra.and_then(|_| kept.next());
                let branched = branch.and_then(|_| kept.next());
                // A pooled branch: the second top runs on this batch's kept states now.
                let top_pooled = match (branch, &branched) {
                    (Some(Branch::Pooled(_, stack)), Some(b)) => {
                        let mut off = 0;
                        let rows: Vec<&[f32]> = seqs
                            .iter()
                            .map(|s| {
                                let r = &b[off..off + s.len() * self.hidden];
                                off += s.len() * self.hidden;
                                r
                            })
                            .collect();
                        Some(stack.forward_pooled(&rows, rows.len())?)
                    }
                    _ => None,
                };
                let mut off = 0;
                for (row, (&i, s)) in chunk.iter().zip(&seqs).enumerate() {
                    let n = s.len() * self.hidden;
                    if let Some(o) = out[i].as_mut() {
                        if let Some(l) = &lower {
                            o.extra = l[off..off + n].to_vec();
                        }
                        if let Some(p) = &top_pooled {
                            o.branch = p[row * self.hidden..(row + 1) * self.hidden].to_vec();
                        } else if let Some(b) = &branched {
                            o.branch = b[off..off + n].to_vec();
                        }
                    }
                    off += n;
                }
                continue;
            }
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
            let (pooled, states) =
                self.forward_pooled(&ids, &mask, b, max_len, prof.as_deref_mut(), want_states)?;
            // Padded states: row r holds max_len tokens, the first n real.
            let per: Vec<&[f32]> = chunk
                .iter()
                .enumerate()
                .map(|(row, &i)| {
                    if !want_states {
                        return &states[..0];
                    }
                    let n = encodings[i].get_ids().len();
                    let base = row * max_len * self.hidden;
                    &states[base..base + n * self.hidden]
                })
                .collect();
            self.collect(
                chunk,
                &encodings,
                &pooled,
                want_states.then_some(&per[..]),
                &mut out,
                &mut stats,
            );
        }
        Ok((
            out.into_iter()
                .map(|o| o.expect("every sentence is in exactly one batch"))
                .collect(),
            stats,
        ))
    }

    /// Put a batch's pooled vectors (and token states, when kept) at their input positions.
    fn collect(
        &self,
        chunk: &[usize],
        encodings: &[tokenizers::Encoding],
        pooled: &[f32],
        states: Option<&[&[f32]]>,
        out: &mut [Option<TokenEncoding>],
        stats: &mut EncodeStats,
    ) {
        for (row, &i) in chunk.iter().enumerate() {
            let e = &encodings[i];
            let truncated = !e.get_overflowing().is_empty();
            if truncated {
                stats.truncated += 1;
            }
            let (offsets, st) = match states {
                Some(s) => (e.get_offsets().to_vec(), s[row].to_vec()),
                None => (Vec::new(), Vec::new()),
            };
            out[i] = Some(TokenEncoding {
                pooled: pooled[row * self.hidden..(row + 1) * self.hidden].to_vec(),
                states: st,
                offsets,
                n_tokens: e.get_ids().len(),
                truncated,
                extra: Vec::new(),
                branch: Vec::new(),
            });
        }
    }

    /// Number of transformer layers of the model.
    pub fn layers(&self) -> usize {
        self.n_layers
    }

    /// Hidden states of each sentence's tokens after the first `n_layers` layers (fast engine
    /// only): one `n_tokens × hidden` vector per input, in input order. Batches are formed by
    /// length like [`Self::encode`]; the packed fast path makes the result independent of them.
    pub fn states_after(
        &self,
        texts: &[&str],
        n_layers: usize,
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>> {
        let Backend::Fast(fast) = &self.backend else {
            return Err(Error::Unsupported(
                "hidden states of inner layers need the fast engine (--engine fast)".into(),
            ));
        };
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| (encodings[i].get_ids().len(), i));
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            self.tick(chunk.len());
            let seqs: Vec<&[u32]> = chunk.iter().map(|&i| encodings[i].get_ids()).collect();
            let flat = fast.states_after(&seqs, n_layers)?;
            let mut off = 0;
            for (&i, s) in chunk.iter().zip(&seqs) {
                let n = s.len() * self.hidden;
                out[i] = flat[off..off + n].to_vec();
                off += n;
            }
        }
        Ok(out)
    }

    /// Final hidden states of each sentence's tokens (special tokens included), one
    /// `n_tokens × hidden` vector per input, each sentence run on its own. For tests and
    /// engine comparisons.
    pub fn token_states(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut out = Vec::with_capacity(texts.len());
        for e in &encodings {
            let ids = e.get_ids();
            let n = ids.len();
            if n == 0 {
                out.push(Vec::new());
                continue;
            }
            match &self.backend {
                Backend::Fast(f) => out.push(f.token_states(&[ids])?),
                Backend::Candle(model) => {
                    let ids_t = Tensor::from_slice(ids, (1, n), &self.device)?;
                    let mask_t = ids_t.ones_like()?;
                    let type_ids = ids_t.zeros_like()?;
                    let hs = model.forward(&ids_t, &type_ids, Some(&mask_t))?;
                    out.push(hs.flatten_all()?.to_vec1::<f32>()?);
                }
            }
        }
        Ok(out)
    }

    /// Run the model on one padded batch and mean-pool over the real tokens: `b * hidden` floats,
    /// plus the padded `b × t × hidden` states when `want_states`.
    fn forward_pooled(
        &self,
        ids: &[u32],
        mask: &[u32],
        b: usize,
        t: usize,
        prof: Option<&mut Profile>,
        want_states: bool,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        if b == 0 || t == 0 {
            return Ok((vec![0.0; b * self.hidden], Vec::new()));
        }
        let Backend::Candle(model) = &self.backend else {
            unreachable!("the fast engine does not pad");
        };
        let t0 = std::time::Instant::now();
        let ids_t = Tensor::from_slice(ids, (b, t), &self.device)?;
        let mask_t = Tensor::from_slice(mask, (b, t), &self.device)?;
        let type_ids = ids_t.zeros_like()?;
        let hidden = model.forward(&ids_t, &type_ids, Some(&mask_t))?; // (b, t, h)
        let t1 = std::time::Instant::now();
        let maskf = mask_t.to_dtype(DType::F32)?.unsqueeze(2)?; // (b, t, 1)
        let summed = hidden.broadcast_mul(&maskf)?.sum(1)?; // (b, h)
        let counts = maskf.sum(1)?; // (b, 1)
        let pooled = summed.broadcast_div(&counts)?;
        let v = pooled.flatten_all()?.to_vec1::<f32>()?;
        let states = if want_states {
            hidden.flatten_all()?.to_vec1::<f32>()?
        } else {
            Vec::new()
        };
        if let Some(p) = prof {
            p.forward += t1 - t0;
            p.pool += t1.elapsed();
            p.batches += 1;
            p.tokens += b * t;
        }
        Ok((v, states))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real encoder, when `models/fetch` has been run; tests that need it skip otherwise.
    pub(crate) fn test_encoder() -> Option<Encoder> {
        let dir = fetched_encoder_dir()?;
        Some(Encoder::load(&dir, Default::default()).expect("encoder loads"))
    }

    pub(super) fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (na * nb)
    }

    #[test]
    fn batch_size_does_not_change_outputs() {
        let Some(fast) = test_encoder() else { return };
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_ENCODER_DIR);
        let candle =
            Encoder::load(&dir, crate::encode::EncoderOptions::engine(Engine::Candle)).unwrap();
        for enc in [fast, candle] {
            batch_size_check(&enc);
        }
    }

    fn batch_size_check(enc: &Encoder) {
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
        if enc.engine() == Engine::Candle {
            assert!(s5.padded_tokens > s5.tokens, "a mixed batch needs padding");
        } else {
            assert_eq!(s5.padded_tokens, s5.tokens, "the fast engine never pads");
        }
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

#[cfg(test)]
mod engine_tests {
    use super::*;

    fn load(engine: Engine) -> Option<Encoder> {
        let dir = fetched_encoder_dir()?;
        Some(
            Encoder::load(&dir, crate::encode::EncoderOptions::engine(engine))
                .expect("encoder loads"),
        )
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    }

    /// Seed sentences plus odd inputs: empty, one word, a truncated 300+-token sentence.
    fn test_texts() -> Vec<String> {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        let mut texts: Vec<String> = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(&seeds)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "txt"))
        {
            let t = std::fs::read_to_string(f).unwrap();
            for s in crate::segment::split(&t) {
                texts.push(t[s.start..s.end].to_string());
            }
        }
        texts.push(String::new());
        texts.push("Yes".into());
        texts.push("Taliban ".repeat(320));
        texts.push(
            "A much longer sentence about humanitarian aid, famine, and the United Nations' \
             warnings about food insecurity in Afghanistan."
                .into(),
        );
        texts
    }

    #[test]
    fn fast_engine_equals_candle_reference() {
        let Some(reference) = load(Engine::Candle) else {
            return;
        };
        let fast = load(Engine::Fast).unwrap();
        let texts = test_texts();
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let (a, sa) = reference.encode(&refs, 16).unwrap();
        let (b, sb) = fast.encode(&refs, 16).unwrap();
        assert_eq!(sa.tokens, sb.tokens);
        assert_eq!(sa.truncated, 1);
        assert_eq!(sb.truncated, 1);
        let mut worst = 0.0f32;
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.n_tokens, y.n_tokens);
            assert_eq!(x.truncated, y.truncated);
            worst = worst.max(max_abs_diff(&x.pooled, &y.pooled));
        }
        eprintln!("pooled: {} sentences, max abs diff {worst:e}", texts.len());
        assert!(worst < 1e-4, "pooled vectors differ by {worst}");
        // Token states, a few sentences each run alone (including the odd ones).
        let pick: Vec<&str> = refs.iter().rev().take(6).copied().collect();
        let ta = reference.token_states(&pick).unwrap();
        let tb = fast.token_states(&pick).unwrap();
        let mut worst = 0.0f32;
        for (x, y) in ta.iter().zip(&tb) {
            worst = worst.max(max_abs_diff(x, y));
        }
        eprintln!("token states: max abs diff {worst:e}");
        assert!(worst < 1e-4, "token states differ by {worst}");
    }

    #[test]
    fn encode_tokens_matches_encode_and_engines_agree() {
        let Some(reference) = load(Engine::Candle) else {
            return;
        };
        let fast = load(Engine::Fast).unwrap();
        let texts = test_texts();
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let (cand, _) = reference
            .encode_tokens(&refs, 16, Default::default())
            .unwrap();
        let (fst, stats) = fast.encode_tokens(&refs, 16, Default::default()).unwrap();
        let (pooled, stats2) = fast.encode(&refs, 16).unwrap();
        assert_eq!(stats, stats2);
        let h = fast.hidden_size();
        let mut worst = 0.0f32;
        for (((c, f), p), text) in cand.iter().zip(&fst).zip(&pooled).zip(&refs) {
            // Pooled: bit-identical to `encode` (same pass).
            assert_eq!(f.pooled, p.pooled);
            assert_eq!(f.n_tokens, p.n_tokens);
            assert_eq!(f.states.len(), f.n_tokens * h);
            assert_eq!(f.offsets.len(), f.n_tokens);
            assert_eq!(c.offsets, f.offsets);
            worst = worst.max(max_abs_diff(&c.states, &f.states));
            // Mean of the states is the pooled vector.
            let mut mean = vec![0.0f32; h];
            for i in 0..f.n_tokens {
                for (m, v) in mean.iter_mut().zip(f.state(i)) {
                    *m += v / f.n_tokens as f32;
                }
            }
            assert!(max_abs_diff(&mean, &f.pooled) < 1e-4);
            // Special tokens are (0, 0); every other token slices its own characters.
            assert_eq!(f.offsets[0], (0, 0));
            assert_eq!(f.offsets[f.n_tokens - 1], (0, 0));
            for &(a, b) in &f.offsets[1..f.n_tokens - 1] {
                assert!(a < b && b <= text.len(), "{text:?} {a}..{b}");
                let piece = &text[a..b];
                assert!(
                    !piece.trim().is_empty() && piece.trim() == piece,
                    "{piece:?}"
                );
            }
        }
        eprintln!("encode_tokens states fast vs candle: max abs diff {worst:e}");
        assert!(worst < 1e-4, "token states differ by {worst}");
        // Offsets name the word pieces exactly.
        let (e, _) = fast
            .encode_tokens(&["Akhund claimed, unconvincingly."], 4, Default::default())
            .unwrap();
        let t = "Akhund claimed, unconvincingly.";
        let words: Vec<&str> = e[0].offsets[1..e[0].n_tokens - 1]
            .iter()
            .map(|&(a, b)| &t[a..b])
            .collect();
        assert_eq!(words.concat(), "Akhundclaimed,unconvincingly.");
        assert!(words.contains(&"claimed"), "{words:?}");
    }

    #[test]
    fn fast_engine_is_identical_at_any_thread_count() {
        let Some(fast) = load(Engine::Fast) else {
            return;
        };
        let texts = test_texts();
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let run = |n: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
                .install(|| fast.encode(&refs, 32).unwrap().0)
        };
        let one = run(1);
        let two = run(2);
        let three = run(3);
        for ((a, b), c) in one.iter().zip(&two).zip(&three) {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a.pooled), bits(&b.pooled));
            assert_eq!(bits(&a.pooled), bits(&c.pooled));
        }
    }

    #[test]
    fn int8_precision_is_close_to_fp32_and_thread_independent() {
        let Some(fp32) = load(Engine::Fast) else {
            return;
        };
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_ENCODER_DIR);
        let int8 = Encoder::load(
            &dir,
            crate::encode::EncoderOptions {
                engine: Engine::Fast,
                precision: Precision::Int8,
            },
        )
        .unwrap();
        assert_eq!(int8.precision(), Precision::Int8);
        assert_eq!(int8.variant(), "fast-int8");
        assert_eq!(fp32.variant(), "fast");
        let texts = test_texts();
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let (a, _) = fp32.encode(&refs, 32).unwrap();
        let run = |n: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
                .install(|| int8.encode(&refs, 32).unwrap().0)
        };
        let b = run(2);
        let mut worst = 1.0f32;
        let mut sum = 0.0f32;
        let mut n = 0;
        for (x, y) in a.iter().zip(&b) {
            if x.n_tokens == 0 {
                continue;
            }
            let c = super::tests::cosine(&x.pooled, &y.pooled);
            worst = worst.min(c);
            sum += c;
            n += 1;
        }
        eprintln!(
            "int8 vs fp32 pooled cosine: min {worst:.5}, mean {:.5}",
            sum / n as f32
        );
        assert!(worst >= 0.98, "int8 pooled vectors: min cosine {worst}");
        assert!(worst < 0.999_999, "int8 should differ from fp32 somewhat");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for other in [run(1), run(3)] {
            for (x, y) in b.iter().zip(&other) {
                assert_eq!(bits(&x.pooled), bits(&y.pooled));
            }
        }
    }

    #[test]
    fn int8_needs_the_fast_engine() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_ENCODER_DIR);
        let err = Encoder::load(
            &dir,
            crate::encode::EncoderOptions {
                engine: Engine::Candle,
                precision: Precision::Int8,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("fast engine"), "{err}");
    }
}
