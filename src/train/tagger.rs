//! Training per-token tagger heads ([`TaggerHead`]) on frozen encoder token states.
//!
//! * [`bio_tags`]: gold byte spans → one BIO tag per token, through the tokenizer's offsets.
//! * [`token_states_cached`]: every token's final hidden state for a list of texts, stored
//!   compactly (f16) on disk under a key made of the encoder's sha256, engine, length limit and
//!   the texts, so a second training or evaluation run encodes nothing.
//! * [`train_tagger`]: a linear or one-hidden-layer softmax head trained with AdamW on the
//!   (optionally class-weighted) token cross-entropy, seeded, in minibatches of tokens, keeping
//!   the epoch with the best development score ([`token_f1`]).
//!
//! ## From spans to tags (exact, word-aligned)
//! A token belongs to a span when their byte ranges overlap (`tok.start < span.end &&
//! tok.end > span.start`). Spans are then widened to whole **words** (the grouping of
//! [`crate::heads::tagger::words`]): if a span starts or ends inside a word (say gold `claim`
//! inside the token `claimed`, or mid-way through `un ##convincing ##ly`), the whole word is
//! tagged, because the decoder never starts or ends a span inside a word. The first token of the
//! span gets `B-X`, every later one `I-X`. Special tokens get no tag (`None`, not trained on).
//! Where spans overlap, the span listed first keeps the tokens it already holds; the later one
//! tags only the rest (callers list spans in priority order). Tokens cut off by truncation are
//! simply absent.

use std::path::Path;

use candle_core::{Device, Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use half::f16;
use rand::seq::SliceRandom;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::encode::{hex, Encoder};
use crate::heads::tagger::{
    split_bio, words, Scheme, TaggerHead, META_SCHEME, META_WINDOW, SCHEME_PER_ROLE,
};
use crate::{Error, Result};

use crate::heads::tagger::{per_role_code, per_role_digits};

/// The word-level tag sequence of one text: each word (grouped as
/// [`crate::heads::tagger::words`] does) takes the tag of its first token, as decoding reads it.
/// Words whose first token has no tag are skipped.
pub fn word_tags(text: &str, offsets: &[(usize, usize)], tags: &[Option<usize>]) -> Vec<usize> {
    words(text, offsets)
        .iter()
        .filter_map(|w| tags.get(w[0]).copied().flatten())
        .collect()
}

/// How [`transition_scores`] turns tag-bigram counts into additive Viterbi scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transitions {
    /// `ln P(cur | prev)`.
    Bigram,
    /// `ln P(cur | prev) − ln P(cur)`: what the previous label adds to the label's prior (the
    /// classifier's probabilities already hold the prior).
    Pmi,
}

/// Transition scores (`labels × labels`, row = previous label) estimated from gold word-tag
/// sequences with add-one smoothing; a sequence starts as if after `O` (as
/// [`crate::heads::tagger::viterbi`] decodes). Transitions BIO forbids are left to the decoder's
/// hard constraints.
pub fn transition_scores(labels: &[String], seqs: &[Vec<usize>], kind: Transitions) -> Vec<f32> {
    let l = labels.len();
    let o = labels
        .iter()
        .position(|x| split_bio(x).0 == 'O')
        .unwrap_or(0);
    let mut pair = vec![1.0f64; l * l];
    let mut uni = vec![1.0f64; l];
    for seq in seqs {
        let mut prev = o;
        for &c in seq {
            pair[prev * l + c] += 1.0;
            uni[c] += 1.0;
            prev = c;
        }
    }
    let total: f64 = uni.iter().sum();
    let mut out = vec![0.0f32; l * l];
    for p in 0..l {
        let row: f64 = pair[p * l..(p + 1) * l].iter().sum();
        for c in 0..l {
            let cond = (pair[p * l + c] / row).ln();
            out[p * l + c] = match kind {
                Transitions::Bigram => cond,
                Transitions::Pmi => cond - (uni[c] / total).ln(),
            } as f32;
        }
    }
    out
}

/// Token states of many texts, f16 in memory (half the size of f32; the heads' inputs are
/// LayerNorm outputs of magnitude < 20, well inside f16's range and precision for a classifier).
#[derive(Debug, Clone, Default)]
pub struct TokenStates {
    pub hidden: usize,
    /// Per text: byte offsets of its tokens (special tokens `(0, 0)`).
    pub offsets: Vec<Vec<(usize, usize)>>,
    /// Start of each text's rows in `states` (in tokens); one more entry than texts.
    pub row_start: Vec<usize>,
    /// All tokens' states, `Σ n_tokens × hidden`.
    pub states: Vec<f16>,
}

impl TokenStates {
    /// Number of texts.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }
    /// True when there are no texts.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
    /// The f32 states of text `i` (`n_tokens × hidden`).
    pub fn states_of(&self, i: usize) -> Vec<f32> {
        let (a, b) = (self.row_start[i], self.row_start[i + 1]);
        self.states[a * self.hidden..b * self.hidden]
            .iter()
            .map(|v| v.to_f32())
            .collect()
    }
    /// Number of tokens of text `i`.
    pub fn n_tokens(&self, i: usize) -> usize {
        self.row_start[i + 1] - self.row_start[i]
    }
    fn push(&mut self, offsets: Vec<(usize, usize)>, states: &[f32]) {
        if self.row_start.is_empty() {
            self.row_start.push(0);
        }
        let n = offsets.len();
        self.offsets.push(offsets);
        self.states.extend(states.iter().map(|&v| f16::from_f32(v)));
        let last = *self.row_start.last().expect("starts at 0");
        self.row_start.push(last + n);
    }
}

const STATES_MAGIC: &[u8; 8] = b"SLTOK01\0";

/// Cache key of the token states of `texts`. `variant` is the encoder's engine and precision
/// ([`Encoder::variant`]: `fast`, `fast-int8`, `candle`), so int8 states are never served
/// for fp32 or the other way round; for fp32 it is the engine name alone, as before.
fn token_states_key(
    weights_sha256: &str,
    max_tokens: usize,
    variant: &str,
    texts: &[&str],
) -> String {
    let mut h = Sha256::new();
    h.update(b"slant-token-states-v1\0");
    h.update(weights_sha256.as_bytes());
    h.update(max_tokens.to_le_bytes());
    h.update(variant.as_bytes());
    for t in texts {
        h.update((t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
    }
    hex(&h.finalize())
}

/// Token states of `texts`, read from or written to the cache folder (`cache`, usually
/// [`super::cache_dir`]). Texts are encoded in chunks of 1024 (length-sorted batches inside each
/// chunk) so memory holds f32 states for one chunk only.
pub fn token_states_cached(
    encoder: &Encoder,
    texts: &[&str],
    batch_size: usize,
    cache: Option<&Path>,
) -> Result<TokenStates> {
    let key = token_states_key(
        encoder.weights_sha256(),
        encoder.max_tokens(),
        &encoder.variant(),
        texts,
    );
    if let Some(dir) = cache {
        let path = dir.join(format!("{key}.tok"));
        if let Ok(bytes) = std::fs::read(&path) {
            if let Some(s) = read_states(&bytes, texts.len()) {
                return Ok(s);
            }
        }
    }
    let mut out = TokenStates {
        hidden: encoder.hidden_size(),
        ..Default::default()
    };
    out.row_start.push(0);
    for chunk in texts.chunks(1024) {
        let (enc, _) = encoder.encode_tokens(chunk, batch_size, Default::default())?;
        for e in enc {
            out.push(e.offsets, &e.states);
        }
    }
    if let Some(dir) = cache {
        store_states(dir, &key, &out)?;
    }
    Ok(out)
}

/// Write `states` to the cache file `{dir}/{key}.tok` (through a `.part` file renamed into
/// place, so a reader never sees a half-written file).
fn store_states(dir: &Path, key: &str, states: &TokenStates) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join(format!("{key}.tok"));
    let tmp = dir.join(format!("{key}.tok.part"));
    std::fs::write(&tmp, write_states(states)).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
}

/// Cache key of the states after layer `layer` (not the final one): the key of
/// [`token_states_key`] with the layer in the variant, so it never equals a final-layer key.
fn layer_states_key(
    weights_sha256: &str,
    max_tokens: usize,
    variant: &str,
    layer: usize,
    texts: &[&str],
) -> String {
    token_states_key(
        weights_sha256,
        max_tokens,
        &format!("{variant}/after-layer-{layer}"),
        texts,
    )
}

/// Token states of `texts` after the first `layer` encoder layers (fast engine; `layer` equal to
/// [`Encoder::layers`] is the final layer), cached like [`token_states_cached`] under a key
/// that holds the layer. `final_states` are the same texts' final states: their offsets are
/// reused (same tokenizer, same truncation) and token counts must agree.
pub fn layer_states_cached(
    encoder: &Encoder,
    texts: &[&str],
    layer: usize,
    batch_size: usize,
    cache: Option<&Path>,
    final_states: &TokenStates,
) -> Result<TokenStates> {
    if final_states.len() != texts.len() {
        return Err(Error::Internal(format!(
            "{} final states for {} texts",
            final_states.len(),
            texts.len()
        )));
    }
    let key = layer_states_key(
        encoder.weights_sha256(),
        encoder.max_tokens(),
        &encoder.variant(),
        layer,
        texts,
    );
    if let Some(dir) = cache {
        if let Ok(bytes) = std::fs::read(dir.join(format!("{key}.tok"))) {
            if let Some(s) = read_states(&bytes, texts.len()) {
                if s.row_start == final_states.row_start {
                    return Ok(s);
                }
            }
        }
    }
    let mut out = TokenStates {
        hidden: encoder.hidden_size(),
        ..Default::default()
    };
    out.row_start.push(0);
    let mut i = 0;
    for chunk in texts.chunks(1024) {
        for st in encoder.states_after(chunk, layer, batch_size)? {
            if st.len() != final_states.n_tokens(i) * out.hidden {
                return Err(Error::Internal(format!(
                    "text {i}: layer {layer} gave {} values for {} tokens",
                    st.len(),
                    final_states.n_tokens(i)
                )));
            }
            out.push(final_states.offsets[i].clone(), &st);
            i += 1;
        }
    }
    if let Some(dir) = cache {
        store_states(dir, &key, &out)?;
    }
    Ok(out)
}

/// The features of a tagger with extra layers (see
/// [`crate::heads::tagger::TaggerHead::extra_layers`]): each token's final state followed by the
/// mean of its states after layers `a..=b` (each layer cached by [`layer_states_cached`]; the
/// final layer is `final_states` itself). Width `2 × hidden`.
pub fn extra_layer_features(
    encoder: &Encoder,
    texts: &[&str],
    (a, b): (usize, usize),
    batch_size: usize,
    cache: Option<&Path>,
    final_states: &TokenStates,
) -> Result<TokenStates> {
    if a == 0 || a > b || b > encoder.layers() {
        return Err(Error::Mismatch(format!(
            "extra layers {a}-{b}: the encoder has layers 1..={}",
            encoder.layers()
        )));
    }
    let h = final_states.hidden;
    let mut sum = vec![0.0f32; final_states.states.len()];
    for l in a..=b {
        let add = |sum: &mut [f32], st: &[f16]| {
            for (s, v) in sum.iter_mut().zip(st) {
                *s += v.to_f32();
            }
        };
        if l == encoder.layers() {
            add(&mut sum, &final_states.states);
        } else {
            let st = layer_states_cached(encoder, texts, l, batch_size, cache, final_states)?;
            add(&mut sum, &st.states);
        }
    }
    let k = (b - a + 1) as f32;
    let mut out = TokenStates {
        hidden: 2 * h,
        offsets: final_states.offsets.clone(),
        row_start: final_states.row_start.clone(),
        states: Vec::with_capacity(2 * final_states.states.len()),
    };
    for (fin, ex) in final_states.states.chunks_exact(h).zip(sum.chunks_exact(h)) {
        out.states.extend_from_slice(fin);
        out.states.extend(
            ex.iter()
                .map(|&v| f16::from_f32(if k == 1.0 { v } else { v / k })),
        );
    }
    Ok(out)
}

/// Layout: magic, u64 texts, u64 hidden, per text u32 n and n (u32, u32) offsets, then the f16
/// states (little endian).
fn write_states(s: &TokenStates) -> Vec<u8> {
    let mut b = Vec::with_capacity(s.states.len() * 2 + 64);
    b.extend_from_slice(STATES_MAGIC);
    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
    b.extend_from_slice(&(s.hidden as u64).to_le_bytes());
    for o in &s.offsets {
        b.extend_from_slice(&(o.len() as u32).to_le_bytes());
        for &(x, y) in o {
            b.extend_from_slice(&(x as u32).to_le_bytes());
            b.extend_from_slice(&(y as u32).to_le_bytes());
        }
    }
    for v in &s.states {
        b.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    b
}

fn read_states(b: &[u8], expect_texts: usize) -> Option<TokenStates> {
    let u64_at =
        |i: usize| -> Option<u64> { Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?)) };
    let u32_at =
        |i: usize| -> Option<u32> { Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?)) };
    if b.get(..8)? != STATES_MAGIC {
        return None;
    }
    let n = u64_at(8)? as usize;
    let hidden = u64_at(16)? as usize;
    if n != expect_texts {
        return None;
    }
    let mut s = TokenStates {
        hidden,
        row_start: vec![0],
        ..Default::default()
    };
    let mut p = 24;
    let mut total = 0usize;
    for _ in 0..n {
        let k = u32_at(p)? as usize;
        p += 4;
        let mut o = Vec::with_capacity(k);
        for _ in 0..k {
            o.push((u32_at(p)? as usize, u32_at(p + 4)? as usize));
            p += 8;
        }
        total += k;
        s.offsets.push(o);
        s.row_start.push(total);
    }
    let rest = b.get(p..)?;
    if rest.len() != total * hidden * 2 {
        return None;
    }
    s.states = rest
        .chunks_exact(2)
        .map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    Some(s)
}

/// Hyper-parameters of [`train_tagger`].
#[derive(Debug, Clone, Serialize)]
pub struct TaggerOpts {
    /// Hidden units; 0 = linear softmax.
    pub hidden: usize,
    pub epochs: usize,
    /// Tokens per minibatch.
    pub batch_tokens: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Weight each class by `(count_O / count_class)^class_weight_power` (0 = unweighted).
    pub class_weight_power: f64,
    /// Stop when the development score has not improved for this many epochs.
    pub patience: usize,
}

impl Default for TaggerOpts {
    fn default() -> Self {
        Self {
            hidden: 256,
            epochs: 12,
            batch_tokens: 512,
            lr: 1e-3,
            weight_decay: 1e-2,
            seed: 13,
            class_weight_power: 0.0,
            patience: 3,
        }
    }
}

/// Labelled tokens: states plus one tag per token (`None` = not trained on).
#[derive(Debug, Clone, Copy)]
pub struct TaggedSet<'a> {
    pub states: &'a TokenStates,
    pub tags: &'a [Vec<Option<usize>>],
}

impl TaggedSet<'_> {
    /// (text, token, tag) of every tagged token.
    fn tokens(&self) -> Vec<(u32, u32, u32)> {
        let mut v = Vec::new();
        for (i, t) in self.tags.iter().enumerate() {
            for (j, tag) in t.iter().enumerate().take(self.states.n_tokens(i)) {
                if let Some(k) = tag {
                    v.push((i as u32, j as u32, *k as u32));
                }
            }
        }
        v
    }

    /// The inputs of tokens `toks`: each token's state, or with a context window `w` the states
    /// of tokens `j-w ..= j+w` of its text concatenated, zeros beyond the text's tokens (as
    /// [`crate::heads::tagger::window_row`] builds them at prediction time).
    fn rows(&self, toks: &[(u32, u32, u32)], window: usize) -> Vec<f32> {
        let h = self.states.hidden;
        let mut x = Vec::with_capacity(toks.len() * h * (2 * window + 1));
        for &(i, j, _) in toks {
            let (r0, n) = (
                self.states.row_start[i as usize],
                self.states.n_tokens(i as usize),
            );
            for k in 0..=2 * window {
                let jj = j as isize + k as isize - window as isize;
                if jj < 0 || jj as usize >= n {
                    x.extend(std::iter::repeat_n(0.0f32, h));
                } else {
                    let r = r0 + jj as usize;
                    x.extend(
                        self.states.states[r * h..(r + 1) * h]
                            .iter()
                            .map(|v| v.to_f32()),
                    );
                }
            }
        }
        x
    }
}

/// Token-level micro P/R/F1 over the non-`O` tags (a token counts as correct when its exact
/// BIO tag matches), the development score [`train_tagger`] selects epochs by.
pub fn token_f1(labels: &[String], gold: &[usize], pred: &[usize]) -> f64 {
    let o = labels.iter().position(|l| split_bio(l).0 == 'O');
    let (mut tp, mut fp, mut fn_) = (0f64, 0f64, 0f64);
    for (&g, &p) in gold.iter().zip(pred) {
        let (g_o, p_o) = (Some(g) == o, Some(p) == o);
        if g == p && !g_o {
            tp += 1.0;
        } else {
            if !p_o {
                fp += 1.0;
            }
            if !g_o {
                fn_ += 1.0;
            }
        }
    }
    if tp == 0.0 {
        0.0
    } else {
        2.0 * tp / (2.0 * tp + fp + fn_)
    }
}

/// What [`train_tagger`] did, for the model card.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TaggerReport {
    pub train_tokens: usize,
    pub dev_tokens: usize,
    pub class_weights: Vec<f32>,
    /// Development token F1 after each epoch.
    pub dev_f1: Vec<f64>,
    /// 1-based epoch kept.
    pub best_epoch: usize,
}

/// Train a tagger head; keeps the epoch with the best [`token_f1`] on `dev` (the last epoch
/// without one).
pub fn train_tagger(
    train: TaggedSet<'_>,
    dev: Option<TaggedSet<'_>>,
    labels: &[String],
    opts: &TaggerOpts,
) -> Result<(TaggerHead, TaggerReport)> {
    train_tagger_window(train, dev, labels, opts, 0)
}

/// [`train_tagger`] on a context window of `window` tokens either side of each token (see
/// [`TaggerHead::window`]); the head's metadata records the window when it is not 0 (window 0
/// trains exactly as [`train_tagger`]).
pub fn train_tagger_window(
    train: TaggedSet<'_>,
    dev: Option<TaggedSet<'_>>,
    labels: &[String],
    opts: &TaggerOpts,
    window: usize,
) -> Result<(TaggerHead, TaggerReport)> {
    train_tagger_scheme(train, dev, labels, opts, window, Scheme::Flat)
}

/// [`train_tagger_window`] under a labelling scheme. With [`Scheme::PerRole`], `labels` are
/// [`crate::heads::tagger::per_role_labels`] (groups of three), each token's tag is a
/// [`per_role_code`], the loss is the sum of the groups' cross-entropies (one softmax per
/// group), the dev score is [`token_f1`] over whole codes (a token is right when every group
/// is), and the head's metadata says `scheme = per_role`. Class weights are not supported
/// there (`class_weight_power` must be 0).
pub fn train_tagger_scheme(
    train: TaggedSet<'_>,
    dev: Option<TaggedSet<'_>>,
    labels: &[String],
    opts: &TaggerOpts,
    window: usize,
    scheme: Scheme,
) -> Result<(TaggerHead, TaggerReport)> {
    let toks = train.tokens();
    if toks.is_empty() {
        return Err(Error::Training("no tagged tokens to train on".into()));
    }
    let dim = train.states.hidden * (2 * window + 1);
    let l = labels.len();
    let per_role = scheme == Scheme::PerRole;
    let groups = l / 3;
    if per_role && (!l.is_multiple_of(3) || opts.class_weight_power != 0.0) {
        return Err(Error::Training(
            "per-role tagging needs groups of 3 labels and no class weights".into(),
        ));
    }
    let n_codes = if per_role {
        3usize.pow(groups as u32)
    } else {
        l
    };
    if let Some(&(_, _, k)) = toks.iter().find(|t| t.2 as usize >= n_codes) {
        return Err(Error::Training(format!(
            "tag {k} out of range for {l} labels"
        )));
    }
    let device = Device::Cpu;
    let mut counts = vec![0usize; l];
    for &(_, _, k) in &toks {
        if !per_role {
            counts[k as usize] += 1;
        }
    }
    let o = labels.iter().position(|s| s == "O").unwrap_or(0);
    let class_weights: Vec<f32> = counts
        .iter()
        .map(|&c| {
            if per_role {
                return 1.0;
            }
            ((counts[o].max(1) as f64 / c.max(1) as f64).powf(opts.class_weight_power)) as f32
        })
        .collect();
    let cw = Tensor::from_vec(class_weights.clone(), (1, l), &device)?;
    let mut rng = crate::stats::rng(opts.seed);
    let mlp = super::MlpVars::init(dim, opts.hidden, l, &mut rng, &device)?;
    let mut opt = AdamW::new(
        mlp.vars(),
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: opts.weight_decay,
            ..Default::default()
        },
    )?;
    let snapshot = || -> Result<TaggerHead> {
        let (w1, b1, w2, b2) = mlp.weights()?;
        Ok(TaggerHead {
            labels: labels.to_vec(),
            input: dim,
            hidden: opts.hidden,
            w1,
            b1,
            w2,
            b2,
            meta: {
                let mut m = std::collections::BTreeMap::new();
                if window != 0 {
                    m.insert(META_WINDOW.to_string(), window.to_string());
                }
                if per_role {
                    m.insert(META_SCHEME.to_string(), SCHEME_PER_ROLE.to_string());
                }
                m
            },
            w1_packed: Default::default(),
            decode: Default::default(),
        })
    };
    let dev_toks = dev.map(|d| (d, d.tokens()));
    let mut report = TaggerReport {
        train_tokens: toks.len(),
        dev_tokens: dev_toks.as_ref().map_or(0, |d| d.1.len()),
        class_weights,
        dev_f1: Vec::new(),
        best_epoch: 0,
    };
    let mut best: Option<(f64, TaggerHead)> = None;
    let mut since = 0;
    let mut order: Vec<usize> = (0..toks.len()).collect();
    for epoch in 0..opts.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(opts.batch_tokens.max(1)) {
            let batch: Vec<(u32, u32, u32)> = chunk.iter().map(|&i| toks[i]).collect();
            let x = Tensor::from_vec(train.rows(&batch, window), (batch.len(), dim), &device)?;
            let mut onehot = vec![0f32; batch.len() * l];
            for (r, &(_, _, k)) in batch.iter().enumerate() {
                if per_role {
                    for (g, d) in per_role_digits(k as usize, groups).into_iter().enumerate() {
                        onehot[r * l + 3 * g + d] = 1.0;
                    }
                } else {
                    onehot[r * l + k as usize] = 1.0;
                }
            }
            let y = Tensor::from_vec(onehot, (batch.len(), l), &device)?;
            let logp = if per_role {
                let z = mlp.forward(&x)?.reshape((batch.len(), groups, 3))?;
                candle_nn::ops::log_softmax(&z, D::Minus1)?.reshape((batch.len(), l))?
            } else {
                candle_nn::ops::log_softmax(&mlp.forward(&x)?, D::Minus1)?
            };
            let w = y.broadcast_mul(&cw)?; // (b, l): weight of the gold class, one-hot
                                           // Per role: the sum of the groups' cross-entropies, averaged over tokens.
            let denom = if per_role {
                batch.len() as f64
            } else {
                w.sum_all()?.to_scalar::<f32>()? as f64
            };
            let loss = ((logp * &w)?.sum_all()?.neg()? / denom)?;
            opt.backward_step(&loss)?;
        }
        let Some((d, dt)) = &dev_toks else {
            continue;
        };
        let mut pred = Vec::with_capacity(dt.len());
        for c in dt.chunks(4096) {
            let x = Tensor::from_vec(d.rows(c, window), (c.len(), dim), &device)?;
            if per_role {
                let am = mlp
                    .forward(&x)?
                    .reshape((c.len(), groups, 3))?
                    .argmax(D::Minus1)?
                    .to_vec2::<u32>()?;
                pred.extend(am.into_iter().map(|g| {
                    per_role_code(&g.into_iter().map(|v| v as usize).collect::<Vec<_>>())
                }));
            } else {
                let am = mlp.forward(&x)?.argmax(D::Minus1)?.to_vec1::<u32>()?;
                pred.extend(am.into_iter().map(|v| v as usize));
            }
        }
        let gold: Vec<usize> = dt.iter().map(|t| t.2 as usize).collect();
        let f1 = if per_role {
            // Code 0 = O in every group; token_f1 only needs to know which tag is O.
            let names: Vec<String> = (0..n_codes)
                .map(|k| if k == 0 { "O".into() } else { format!("B-{k}") })
                .collect();
            token_f1(&names, &gold, &pred)
        } else {
            token_f1(labels, &gold, &pred)
        };
        report.dev_f1.push(f1);
        if best.as_ref().is_none_or(|(b, _)| f1 > *b) {
            best = Some((f1, snapshot()?));
            report.best_epoch = epoch + 1;
            since = 0;
        } else {
            since += 1;
            if since >= opts.patience {
                break;
            }
        }
    }
    let head = match best {
        Some((_, h)) => h,
        None => {
            report.best_epoch = opts.epochs;
            snapshot()?
        }
    };
    Ok((head, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::tagger::{bio_labels, decode};
    use crate::heads::tagger::{bio_tags, concat_extra, GoldSpan};
    use rand::Rng;

    #[test]
    fn token_state_cache_keys_differ_by_precision_and_keep_the_fp32_key() {
        let texts = ["The Taliban said so.", "Another sentence."];
        let fp32 = token_states_key("abc", 256, "fast", &texts);
        assert_ne!(fp32, token_states_key("abc", 256, "fast-int8", &texts));
        assert_ne!(fp32, token_states_key("abc", 256, "candle", &texts));
        assert_ne!(fp32, token_states_key("abc", 128, "fast", &texts));
        // The fp32 key is the one written before the variant entered it (engine name alone), so
        // existing fp32 caches stay valid.
        let mut h = Sha256::new();
        h.update(b"slant-token-states-v1\0");
        h.update(b"abc");
        h.update(256usize.to_le_bytes());
        h.update(b"fast");
        for t in texts {
            h.update((t.len() as u64).to_le_bytes());
            h.update(t.as_bytes());
        }
        assert_eq!(fp32, hex(&h.finalize()));
    }

    fn span(label: &str, start: usize, end: usize) -> GoldSpan {
        GoldSpan {
            label: label.into(),
            start,
            end,
        }
    }

    const TEXT: &str = "Akhund claimed, unconvincingly.";
    // [CLS] akh ##und claimed , un ##convincing ##ly . [SEP]
    const OFF: [(usize, usize); 10] = [
        (0, 0),
        (0, 3),
        (3, 6),
        (7, 14),
        (14, 15),
        (16, 18),
        (18, 28),
        (28, 30),
        (30, 31),
        (0, 0),
    ];

    #[test]
    fn spans_become_word_aligned_bio_tags() {
        let labels = bio_labels(&["SRC", "CUE", "CONTENT"]);
        // "claim" starts mid-word "claimed" is whole; content starts mid-word ("convinc...").
        let spans = [
            span("SRC", 0, 6),
            span("CUE", 7, 12),
            span("CONTENT", 20, 31),
        ];
        let tags = bio_tags(TEXT, &OFF, &spans, &labels).unwrap();
        let names: Vec<&str> = tags
            .iter()
            .map(|t| t.map_or("-", |k| labels[k].as_str()))
            .collect();
        assert_eq!(
            names,
            [
                "-",
                "B-SRC",
                "I-SRC",
                "B-CUE",
                "O",
                "B-CONTENT",
                "I-CONTENT",
                "I-CONTENT",
                "I-CONTENT",
                "-"
            ]
        );
        // Decoding the gold tags gives back word-aligned spans.
        let probs: Vec<Vec<f32>> = tags
            .iter()
            .map(|t| {
                let mut v = vec![0.0; labels.len()];
                v[t.unwrap_or(0)] = 1.0;
                v
            })
            .collect();
        let back: Vec<(String, &str)> = decode(TEXT, &labels, &probs, &OFF)
            .into_iter()
            .map(|s| (s.label, &TEXT[s.start..s.end]))
            .collect();
        assert_eq!(
            back,
            [
                ("SRC".to_string(), "Akhund"),
                ("CUE".to_string(), "claimed"),
                ("CONTENT".to_string(), "unconvincingly.")
            ]
        );
        // Overlap: the first span keeps its tokens.
        let tags = bio_tags(
            TEXT,
            &OFF,
            &[span("CUE", 7, 14), span("CONTENT", 0, 31)],
            &labels,
        )
        .unwrap();
        assert_eq!(labels[tags[3].unwrap()], "B-CUE");
        assert_eq!(labels[tags[1].unwrap()], "B-CONTENT");
        assert_eq!(labels[tags[4].unwrap()], "I-CONTENT");
        assert!(bio_tags(TEXT, &OFF, &[span("NOPE", 0, 3)], &labels).is_err());
    }

    #[test]
    fn transitions_follow_tag_bigrams() {
        let labels = bio_labels(&["X"]); // O B-X I-X
        let seqs = vec![vec![1, 2, 2, 0], vec![0, 1, 0]];
        let t = transition_scores(&labels, &seqs, Transitions::Bigram);
        // Row O (the two starts count as after O): O->O 1+1, O->B 1+2, O->I 1+0 → P(B|O) = 3/6.
        assert!((t[1] - (0.5f32).ln()).abs() < 1e-6, "{t:?}");
        // Rows are distributions.
        for p in 0..3 {
            let s: f32 = t[p * 3..p * 3 + 3].iter().map(|v| v.exp()).sum();
            assert!((s - 1.0).abs() < 1e-5);
        }
        // Row B: B->I once, B->O once: equal.
        assert!((t[3 + 2] - t[3]).abs() < 1e-6);
        let pmi = transition_scores(&labels, &seqs, Transitions::Pmi);
        // 7 tags + 3 smoothing: P(I) = 3/10.
        assert!((pmi[3 + 2] - (t[3 + 2] - (0.3f32).ln())).abs() < 1e-6);
        // Word tags: the first token of each word, untagged special tokens skipped.
        let tags = [
            None,
            Some(1),
            Some(0),
            Some(2),
            Some(0),
            Some(2),
            Some(0),
            Some(0),
            Some(0),
            None,
        ];
        assert_eq!(word_tags(TEXT, &OFF, &tags), vec![1, 2, 0, 2, 0]);
    }

    #[test]
    fn window_rows_match_prediction_and_window_zero_is_unchanged() {
        let (ts, tt) = synthetic(40, 5);
        let (ds, dt) = synthetic(10, 6);
        let labels = bio_labels(&["X"]);
        let opts = TaggerOpts {
            hidden: 8,
            epochs: 3,
            batch_tokens: 32,
            lr: 1e-2,
            ..Default::default()
        };
        let train = TaggedSet {
            states: &ts,
            tags: &tt,
        };
        let dev = Some(TaggedSet {
            states: &ds,
            tags: &dt,
        });
        let (a, ra) = train_tagger(train, dev, &labels, &opts).unwrap();
        let (b, rb) = train_tagger_window(train, dev, &labels, &opts, 0).unwrap();
        assert_eq!(a, b);
        assert_eq!(ra.dev_f1, rb.dev_f1);
        let (w, rw) = train_tagger_window(train, dev, &labels, &opts, 2).unwrap();
        assert_eq!((w.input, w.window(), w.state_dim()), (40, 2, 8));
        // The dev F1 training measured equals the head's own predictions on the windowed rows.
        let (mut gold, mut pred) = (Vec::new(), Vec::new());
        for (i, tags) in dt.iter().enumerate() {
            let p = w.predict(&ds.states_of(i), ds.n_tokens(i));
            for (j, t) in tags.iter().enumerate() {
                if let Some(g) = t {
                    gold.push(*g);
                    pred.push(
                        (0..3)
                            .max_by(|&x, &y| p[j][x].total_cmp(&p[j][y]).then(y.cmp(&x)))
                            .unwrap(),
                    );
                }
            }
        }
        let best = rw.dev_f1[rw.best_epoch - 1];
        assert!(
            (token_f1(&labels, &gold, &pred) - best).abs() < 0.02,
            "{best}"
        );
    }

    #[test]
    fn token_f1_counts_non_o_tags() {
        let labels = bio_labels(&["X"]);
        // gold: O B I I ; pred: O B I O  -> tp 2, fn 1, fp 0.
        let f = token_f1(&labels, &[0, 1, 2, 2], &[0, 1, 2, 0]);
        assert!((f - 0.8).abs() < 1e-12, "{f}");
        assert_eq!(token_f1(&labels, &[0, 0], &[0, 0]), 0.0);
    }

    fn synthetic(n: usize, seed: u64) -> (TokenStates, Vec<Vec<Option<usize>>>) {
        // 3 labels; the tag of a token is the arg-max of its first 3 coordinates, plus noise
        // dims. A special token at position 0 of each text.
        let mut rng = crate::stats::rng(seed);
        let mut s = TokenStates {
            hidden: 8,
            row_start: vec![0],
            ..Default::default()
        };
        let mut tags = Vec::new();
        for _ in 0..n {
            let k = 6;
            let mut st = Vec::new();
            let mut tg = vec![None];
            st.extend(std::iter::repeat_n(0.0f32, 8));
            for _ in 1..k {
                let v: Vec<f32> = (0..8).map(|_| rng.gen_range(-1.0..1.0)).collect();
                let m = (0..3)
                    .max_by(|&a, &b| v[a].total_cmp(&v[b]))
                    .expect("three");
                tg.push(Some(m));
                st.extend(v);
            }
            s.push(vec![(0, 0); k], &st);
            tags.push(tg);
        }
        (s, tags)
    }

    #[test]
    fn tagger_learns_gradients_flow_and_is_seeded() {
        let labels = bio_labels(&["X"]);
        let (ts, tt) = synthetic(300, 1);
        let (ds, dt) = synthetic(60, 2);
        let opts = TaggerOpts {
            hidden: 16,
            epochs: 30,
            batch_tokens: 64,
            lr: 1e-2,
            patience: 30,
            ..Default::default()
        };
        let train = TaggedSet {
            states: &ts,
            tags: &tt,
        };
        let dev = TaggedSet {
            states: &ds,
            tags: &dt,
        };
        let (head, rep) = train_tagger(train, Some(dev), &labels, &opts).unwrap();
        let best = rep.dev_f1.iter().copied().fold(0.0, f64::max);
        assert!(best > 0.9, "dev token F1 {best} ({:?})", rep.dev_f1);
        assert!(rep.dev_f1[0] < best, "learning happened");
        assert_eq!(rep.dev_f1[rep.best_epoch - 1], best);
        // The kept head reproduces the best dev score.
        let mut gold = Vec::new();
        let mut pred = Vec::new();
        for (i, tags) in dt.iter().enumerate() {
            let p = head.predict(&ds.states_of(i), ds.n_tokens(i));
            for (j, t) in tags.iter().enumerate() {
                if let Some(g) = t {
                    gold.push(*g);
                    let am = (0..3).max_by(|&a, &b| p[j][a].total_cmp(&p[j][b])).unwrap();
                    pred.push(am);
                }
            }
        }
        assert!((token_f1(&labels, &gold, &pred) - best).abs() < 0.02);
        let (again, _) = train_tagger(train, Some(dev), &labels, &opts).unwrap();
        assert_eq!(again, head, "same seed, same weights");
        // Class weights: O is the most frequent class here? compute and check shape.
        let (_, rep_w) = train_tagger(
            train,
            None,
            &labels,
            &TaggerOpts {
                epochs: 1,
                class_weight_power: 1.0,
                ..opts.clone()
            },
        )
        .unwrap();
        assert_eq!(rep_w.class_weights.len(), 3);
        assert!((rep_w.class_weights[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn per_role_codes_roundtrip() {
        for code in 0..27 {
            assert_eq!(per_role_code(&per_role_digits(code, 3)), code);
        }
        assert_eq!(per_role_code(&[2, 0, 1]), 2 + 9);
        assert_eq!(per_role_digits(11, 3), [2, 0, 1]);
    }

    #[test]
    fn per_role_tagger_learns_each_group_and_marks_its_scheme() {
        use crate::heads::tagger::{per_role_labels, Scheme};
        // Two groups: group 0's tag is the arg-max of coordinates 0..3, group 1's of 3..6.
        let synth = |n: usize, seed: u64| {
            let mut rng = crate::stats::rng(seed);
            let mut s = TokenStates {
                hidden: 8,
                row_start: vec![0],
                ..Default::default()
            };
            let mut tags = Vec::new();
            for _ in 0..n {
                let mut st = vec![0.0f32; 8];
                let mut tg = vec![None];
                for _ in 1..6 {
                    let v: Vec<f32> = (0..8).map(|_| rng.gen_range(-1.0..1.0)).collect();
                    let am = |r: std::ops::Range<usize>| {
                        r.clone().max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap() - r.start
                    };
                    tg.push(Some(per_role_code(&[am(0..3), am(3..6)])));
                    st.extend(v);
                }
                s.push(vec![(0, 0); 6], &st);
                tags.push(tg);
            }
            (s, tags)
        };
        let labels = per_role_labels(&["X", "Y"]);
        let (ts, tt) = synth(300, 1);
        let (ds, dt) = synth(60, 2);
        let opts = TaggerOpts {
            hidden: 16,
            epochs: 30,
            batch_tokens: 64,
            lr: 1e-2,
            patience: 30,
            ..Default::default()
        };
        let (train, dev) = (
            TaggedSet {
                states: &ts,
                tags: &tt,
            },
            TaggedSet {
                states: &ds,
                tags: &dt,
            },
        );
        let (head, rep) =
            train_tagger_scheme(train, Some(dev), &labels, &opts, 0, Scheme::PerRole).unwrap();
        let best = rep.dev_f1.iter().copied().fold(0.0, f64::max);
        assert!(best > 0.85, "dev token F1 {best} ({:?})", rep.dev_f1);
        assert!(rep.dev_f1[0] < best, "learning happened");
        assert_eq!(head.scheme(), Scheme::PerRole);
        // One softmax per group; both groups right on most dev tokens.
        let (mut right, mut n) = (0, 0);
        for (i, tags) in dt.iter().enumerate() {
            let p = head.predict(&ds.states_of(i), ds.n_tokens(i));
            for (j, t) in tags.iter().enumerate() {
                assert!((p[j][..3].iter().sum::<f32>() - 1.0).abs() < 1e-5);
                assert!((p[j][3..].iter().sum::<f32>() - 1.0).abs() < 1e-5);
                if let Some(g) = t {
                    let am = |g: usize| {
                        (0..3)
                            .max_by(|&a, &b| p[j][3 * g + a].total_cmp(&p[j][3 * g + b]))
                            .unwrap()
                    };
                    right += usize::from(per_role_code(&[am(0), am(1)]) == *g);
                    n += 1;
                }
            }
        }
        assert!(right as f64 / n as f64 > 0.8, "{right} / {n}");
        // Class weights are not supported per role; a code beyond the groups is an error.
        let weighted = TaggerOpts {
            class_weight_power: 1.0,
            ..opts.clone()
        };
        assert!(train_tagger_scheme(train, None, &labels, &weighted, 0, Scheme::PerRole).is_err());
        let bad = vec![vec![None, Some(9)]];
        let (bs, _) = synth(1, 3);
        let bad_set = TaggedSet {
            states: &bs,
            tags: &bad,
        };
        assert!(train_tagger_scheme(bad_set, None, &labels, &opts, 0, Scheme::PerRole).is_err());
    }

    #[test]
    fn layer_state_keys_never_collide_with_final_or_other_layers() {
        let texts = ["The Taliban said so.", "Another sentence."];
        let fin = token_states_key("abc", 256, "fast", &texts);
        let l3 = layer_states_key("abc", 256, "fast", 3, &texts);
        assert_ne!(fin, l3);
        assert_ne!(l3, layer_states_key("abc", 256, "fast", 4, &texts));
        assert_ne!(l3, layer_states_key("abc", 256, "fast-int8", 3, &texts));
        assert_ne!(l3, layer_states_key("abc", 256, "fast", 3, &texts[..1]));
    }

    #[test]
    fn concat_extra_puts_final_then_the_mean_of_the_lower_layers() {
        // 2 tokens, hidden 2.
        let fin = [1.0, 2.0, 3.0, 4.0];
        let a = [10.0, 20.0, 30.0, 40.0];
        let b = [30.0, 40.0, 50.0, 60.0];
        assert_eq!(
            concat_extra(&fin, &[&a], 2),
            [1.0, 2.0, 10.0, 20.0, 3.0, 4.0, 30.0, 40.0]
        );
        assert_eq!(
            concat_extra(&fin, &[&a, &b], 2),
            [1.0, 2.0, 20.0, 30.0, 3.0, 4.0, 40.0, 50.0]
        );
    }

    #[test]
    fn extra_layer_features_are_final_then_inner_states_and_cached_apart() {
        let Some(dir) = crate::encode::fetched_encoder_dir() else {
            return;
        };
        let enc = Encoder::load(&dir, Default::default()).unwrap();
        let texts = [
            "Akhund claimed the Taliban had won.",
            "France 24 reports.",
            "According to Nishank Motwani, it is.",
        ];
        let tmp = tempfile::tempdir().unwrap();
        let fin = token_states_cached(&enc, &texts, 2, Some(tmp.path())).unwrap();
        let f = extra_layer_features(&enc, &texts, (3, 3), 2, Some(tmp.path()), &fin).unwrap();
        assert_eq!(f.hidden, 2 * fin.hidden);
        assert_eq!(f.row_start, fin.row_start);
        // Two files: the final states and layer 3's; a second call reads layer 3 back.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
        let again = extra_layer_features(&enc, &texts, (3, 3), 2, Some(tmp.path()), &fin).unwrap();
        assert_eq!(again.states, f.states);
        let inner = enc.states_after(&texts, 3, 8).unwrap();
        let h = fin.hidden;
        for (i, inn) in inner.iter().enumerate() {
            let got = f.states_of(i);
            let want = concat_extra(&fin.states_of(i), &[inn], h);
            assert_eq!(got.len(), want.len());
            let worst = got
                .iter()
                .zip(&want)
                .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
                .fold(0.0f32, f32::max);
            assert!(worst < 2e-3, "f16 rounding {worst}");
            // The inner half is not the final half.
            assert!(got[h..2 * h] != got[..h]);
        }
        // The mean of layers 5..6 uses the final states for layer 6.
        let m = extra_layer_features(&enc, &texts, (5, 6), 2, Some(tmp.path()), &fin).unwrap();
        let l5 = enc.states_after(&texts, 5, 8).unwrap();
        let want = concat_extra(&fin.states_of(0), &[&l5[0], &fin.states_of(0)], h);
        let worst = m
            .states_of(0)
            .iter()
            .zip(&want)
            .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
            .fold(0.0f32, f32::max);
        assert!(worst < 4e-3, "{worst}");
        assert!(extra_layer_features(&enc, &texts, (0, 2), 2, None, &fin).is_err());
        assert!(extra_layer_features(&enc, &texts, (3, 7), 2, None, &fin).is_err());
    }

    #[test]
    fn score_path_features_equal_training_features_fp32_and_int8() {
        use crate::encode::{Engine, Precision};
        let Some(dir) = crate::encode::fetched_encoder_dir() else {
            return;
        };
        let texts = [
            "Akhund claimed the Taliban had won.",
            "France 24 reports that the talks failed.",
            "According to Nishank Motwani, a fellow at the school, it is.",
            "Yes.",
        ];
        for precision in [Precision::Fp32, Precision::Int8] {
            let enc = Encoder::load(
                &dir,
                crate::encode::EncoderOptions {
                    engine: Engine::Fast,
                    precision,
                },
            )
            .unwrap();
            let (plain, _) = enc.encode_tokens(&texts, 2, Default::default()).unwrap();
            for layers in [(3, 3), (4, 6)] {
                // Training: cached final states + cached lower layers (f16).
                let tmp = tempfile::tempdir().unwrap();
                let fin = token_states_cached(&enc, &texts, 2, Some(tmp.path())).unwrap();
                let train =
                    extra_layer_features(&enc, &texts, layers, 2, Some(tmp.path()), &fin).unwrap();
                // Scoring: one pass keeps the lower layers (what `slant score` runs).
                let (scored, _) = enc
                    .encode_tokens(
                        &texts,
                        2,
                        crate::encode::TokenExtras {
                            extra: Some(layers),
                            branch: None,
                        },
                    )
                    .unwrap();
                for (i, (e, p)) in scored.iter().zip(&plain).enumerate() {
                    // The pass itself is unchanged: same pooled vectors and final states.
                    assert_eq!((&e.pooled, &e.states), (&p.pooled, &p.states));
                    let got = crate::attribution::token_features(e);
                    let want = train.states_of(i);
                    assert_eq!(got.len(), want.len());
                    let worst = got
                        .iter()
                        .zip(&want)
                        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
                        .fold(0.0f32, f32::max);
                    assert!(worst < 4e-3, "{precision:?} {layers:?}: {worst}");
                }
                if layers.0 == layers.1 {
                    // One layer: exactly the states after that layer.
                    let after = enc.states_after(&texts, layers.0, 8).unwrap();
                    for (e, a) in scored.iter().zip(&after) {
                        assert_eq!(&e.extra, a);
                    }
                }
            }
        }
        // The candle engine cannot keep inner layers: a clear error, not garbage.
        let candle = Encoder::load(
            &dir,
            crate::encode::EncoderOptions::engine(crate::encode::Engine::Candle),
        )
        .unwrap();
        let err = candle
            .encode_tokens(
                &texts,
                2,
                crate::encode::TokenExtras {
                    extra: Some((3, 3)),
                    branch: None,
                },
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("fast engine"), "{err}");
    }

    #[test]
    fn state_file_roundtrip_and_rejects_wrong_count() {
        let (s, _) = synthetic(5, 3);
        let b = write_states(&s);
        let back = read_states(&b, 5).unwrap();
        assert_eq!(back.states, s.states);
        assert_eq!(back.offsets, s.offsets);
        assert_eq!(back.row_start, s.row_start);
        assert!(read_states(&b, 4).is_none());
        assert!(read_states(&b[..b.len() - 1], 5).is_none());
    }

    #[test]
    fn cached_states_equal_fresh_ones() {
        let Some(dir) = crate::encode::fetched_encoder_dir() else {
            return;
        };
        let enc = Encoder::load(&dir, Default::default()).unwrap();
        let texts = ["France 24 reports.", "According to Nishank Motwani, it is."];
        let tmp = tempfile::tempdir().unwrap();
        let a = token_states_cached(&enc, &texts, 8, Some(tmp.path())).unwrap();
        let b = token_states_cached(&enc, &texts, 8, Some(tmp.path())).unwrap();
        assert_eq!(a.states, b.states);
        let (fresh, _) = enc.encode_tokens(&texts, 8, Default::default()).unwrap();
        for (i, f) in fresh.iter().enumerate() {
            assert_eq!(a.offsets[i], f.offsets);
            let got = a.states_of(i);
            let worst = got
                .iter()
                .zip(&f.states)
                .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
                .fold(0.0f32, f32::max);
            assert!(worst < 2e-3, "f16 rounding {worst}");
        }
    }
}
