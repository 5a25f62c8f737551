//! A generic per-token tagger head: BIO labels over the encoder's final token states.
//!
//! The head reads each token's final hidden state ([`crate::encode::TokenEncoding::states`]) and
//! applies either a linear layer (`hidden == 0`) or a ReLU hidden layer, then a softmax over
//! its labels (`O`, `B-X`, `I-X`, ...). It knows nothing about what the labels mean: the
//! attribution tagger (SOURCE / CUE / CONTENT) and a loaded-language span tagger are both
//! instances of it.
//!
//! Decoding ([`decode`]) goes from per-token probabilities to byte-offset spans:
//!
//! 1. Tokens are grouped into **words**: a token continues the previous token's word when the two
//!    touch (`prev.end == start`) and the characters on both sides of the join are alphanumeric
//!    (so word pieces `un ##convincing ##ly` form one word, while `claimed` and the following
//!    `,` are two). Special tokens (offsets `(0, 0)`) belong to no word.
//! 2. A word takes the arg-max label of its **first** token (the usual convention for BERT
//!    taggers, and the one [`crate::train::tagger::bio_tags`] trains with).
//! 3. BIO over words: `B-X` opens a span; `I-X` continues an open `X` span and otherwise
//!    **opens** one (repairing an `I-` without its `B-`); `O`, or a label of another type, closes
//!    it. A span therefore always starts at a word's first byte and ends at a word's last byte.
//! 4. A span's score is the mean, over its words, of the probability of the label the word got.
//!
//! A head may carry **decoding thresholds** ([`DecodeOpts`], chosen on development data and
//! stored in its header as `decode_min_word_prob` / `decode_min_span_score`): with a minimum
//! word probability, step 2 changes: a word is tagged (with the likelier of its non-`O` labels)
//! when P(not `O`) of its first token reaches the minimum, else `O`, and the probability step 4
//! averages is that P(not `O`); with a minimum span score, spans scoring below it are dropped.
//! A head without the keys decodes by arg-max as above.
//!
//! A head whose header says `scheme = per_role` ([`Scheme::PerRole`]) has labels in groups of
//! three (`O-X`, `B-X`, `I-X`), one softmax per group, and is decoded group by group, so its
//! spans of different types may overlap ([`TaggerHead::decode_probs`]); heads without the key
//! are flat and decode as described above.
//!
//! Stored as safetensors (`w2`, `b2`, and with a hidden layer `w1`, `b1`) with the labels and
//! provenance in the header (`format = slant-tagger-head-v1`).

use super::file::HeadWriter;
use super::math::dot8 as dot;
use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::encode::f32mm::{self, PackCache, PackedW};
use crate::{Error, Result};

/// A span found by a tagger: byte offsets into the text the tokens' offsets refer to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagSpan {
    /// The span type (the label without its `B-`/`I-` prefix, e.g. `CUE`).
    pub label: String,
    pub start: usize,
    pub end: usize,
    /// Mean probability of the labels its words got.
    pub score: f32,
}

/// Decoding thresholds of a tagger (see the module doc); `None` = the arg-max rule / keep all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DecodeOpts {
    /// A word is tagged when P(not `O`) of its first token is at least this.
    pub min_word_prob: Option<f32>,
    /// Spans scoring below this are dropped.
    pub min_span_score: Option<f32>,
}

/// Header keys of [`DecodeOpts`].
const MIN_WORD_PROB_KEY: &str = "decode_min_word_prob";
const MIN_SPAN_SCORE_KEY: &str = "decode_min_span_score";

/// Per-token softmax classifier over BIO labels.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggerHead {
    /// Label names in output order; `labels[0]` is conventionally `O`.
    pub labels: Vec<String>,
    pub input: usize,
    /// Hidden units; 0 = linear.
    pub hidden: usize,
    /// `hidden × input` (empty when linear).
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    /// `labels × (hidden or input)`.
    pub w2: Vec<f32>,
    pub b2: Vec<f32>,
    /// Provenance stored in the header (encoder sha256, data, seed, metrics).
    pub meta: BTreeMap<String, String>,
    /// `w1` transposed and packed for the fp32 matmul kernels, made on the first
    /// [`TaggerHead::predict`] (do not change `w1` in place after that).
    pub(crate) w1_packed: PackCache,
    /// Decoding thresholds (stored in the header; default: arg-max, keep every span).
    pub decode: DecodeOpts,
}

/// The label type of a BIO label: `B-CUE` → (`B`, `CUE`), `O` → (`O`, ``).
pub fn split_bio(label: &str) -> (char, &str) {
    match label.split_once('-') {
        Some((p, t)) if p == "B" || p == "I" => (p.chars().next().unwrap_or('O'), t),
        _ => ('O', ""),
    }
}

/// BIO labels for span types, in the head's order: `O`, then `B-t`, `I-t` for each type.
pub fn bio_labels(types: &[&str]) -> Vec<String> {
    let mut v = vec!["O".to_string()];
    for t in types {
        v.push(format!("B-{t}"));
        v.push(format!("I-{t}"));
    }
    v
}

/// Index of the `O` label of a span head (0 when it has none).
pub fn outside_label(head: &TaggerHead) -> usize {
    head.labels.iter().position(|l| l == "O").unwrap_or(0)
}

impl TaggerHead {
    /// Logits of one token state.
    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        let h: Vec<f32> = if self.hidden == 0 {
            x.to_vec()
        } else {
            (0..self.hidden)
                .map(|j| {
                    (dot(&self.w1[j * self.input..(j + 1) * self.input], x) + self.b1[j]).max(0.0)
                })
                .collect()
        };
        let w = h.len();
        (0..self.labels.len())
            .map(|k| dot(&self.w2[k * w..(k + 1) * w], &h) + self.b2[k])
            .collect()
    }

    /// The context window `w` (metadata key [`META_WINDOW`], default 0): the head reads the
    /// states of tokens `t-w ..= t+w`, concatenated (zeros beyond the sequence), so `input` is
    /// `(2w + 1) ×` the encoder's hidden size.
    pub fn window(&self) -> usize {
        self.meta
            .get(META_WINDOW)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The lower layers the head reads besides the final one (metadata key
    /// [`META_EXTRA_LAYER`]): `Some((a, b))` when each token's features are its final state
    /// followed by the mean of its states after layers `a..=b` (`a == b`: one layer), so
    /// [`Self::state_dim`] is twice the encoder's hidden size; `None` for final states only. An
    /// unreadable value is an error when the head is used (see [`Self::check_extra_layers`]).
    pub fn extra_layers(&self) -> Option<(usize, usize)> {
        self.meta
            .get(META_EXTRA_LAYER)
            .and_then(|v| parse_extra_layers(v))
    }

    /// An error when the header's [`META_EXTRA_LAYER`] is present but not `L` or `A-B`, or names
    /// a layer beyond `n_layers`.
    pub fn check_extra_layers(&self, n_layers: usize) -> Result<()> {
        let Some(v) = self.meta.get(META_EXTRA_LAYER) else {
            return Ok(());
        };
        match parse_extra_layers(v) {
            Some((_, b)) if b <= n_layers => Ok(()),
            _ => Err(Error::Mismatch(format!(
                "tagger head: {META_EXTRA_LAYER} = {v:?} is not a layer (or range A-B) of the \
                 encoder's {n_layers}"
            ))),
        }
    }

    /// Width of one token state the head expects (`input / (2 × window + 1)`).
    pub fn state_dim(&self) -> usize {
        self.input / (2 * self.window() + 1)
    }

    /// How [`TaggerHead::tag`] decodes (metadata keys [`META_DECODING`] and
    /// [`META_TRANSITIONS`]); a head without them decodes by arg-max.
    pub fn decoding(&self) -> Decoding {
        match self.meta.get(META_DECODING).map(String::as_str) {
            Some(DECODING_VITERBI) => Decoding::Viterbi(
                self.meta
                    .get(META_TRANSITIONS)
                    .and_then(|t| serde_json::from_str::<Vec<f32>>(t).ok())
                    .filter(|t| t.len() == self.labels.len() * self.labels.len()),
            ),
            _ => Decoding::Argmax,
        }
    }

    /// Per-token label probabilities (`n_tokens` rows of `labels.len()`), from
    /// `n_tokens × state_dim` states (`state_dim == input` unless the head has a window).
    pub fn predict(&self, states: &[f32], n_tokens: usize) -> Vec<Vec<f32>> {
        let w = self.window();
        let d = self.state_dim();
        assert_eq!(
            states.len(),
            n_tokens * d,
            "states must be n_tokens × state_dim"
        );
        // The head's input rows: the states themselves, or each token's window of states.
        let windowed;
        let x: &[f32] = if w == 0 {
            states
        } else {
            let mut rows = vec![0.0f32; n_tokens * self.input];
            for (t, row) in rows.chunks_exact_mut(self.input.max(1)).enumerate() {
                window_row(states, d, n_tokens, t, w, row);
            }
            windowed = rows;
            &windowed
        };
        let per_role = self.scheme() == Scheme::PerRole;
        let norm = |z: &[f32]| {
            if per_role {
                softmax_groups(z, 3)
            } else {
                softmax(z)
            }
        };
        if self.hidden == 0 || n_tokens == 0 {
            return x
                .chunks_exact(self.input.max(1))
                .take(n_tokens)
                .map(|x| norm(&self.logits(x)))
                .collect();
        }
        // The hidden layer for all tokens at once through the encoder's matmul kernels (a
        // per-token dot product loop made the taggers a fifth of `slant score`).
        let (input, hidden) = (self.input, self.hidden);
        let packed = self.w1_packed.get_or_pack(|| {
            let mut w_t = vec![0.0f32; input * hidden];
            for j in 0..hidden {
                for i in 0..input {
                    w_t[i * hidden + j] = self.w1[j * input + i];
                }
            }
            PackedW::pack(&w_t, input, hidden)
        });
        let mut h = vec![0.0f32; n_tokens * hidden];
        f32mm::matmul_bias(
            f32mm::Kernel::detect(),
            x,
            n_tokens,
            packed,
            &self.b1,
            &mut h,
        );
        h.chunks_exact_mut(hidden)
            .map(|row| {
                for v in row.iter_mut() {
                    *v = v.max(0.0);
                }
                let z: Vec<f32> = (0..self.labels.len())
                    .map(|k| dot(&self.w2[k * hidden..(k + 1) * hidden], row) + self.b2[k])
                    .collect();
                norm(&z)
            })
            .collect()
    }

    /// Save as safetensors with labels and `meta` in the header.
    pub fn save(&self, path: &Path) -> Result<()> {
        let width = if self.hidden == 0 {
            self.input
        } else {
            self.hidden
        };
        let l = self.labels.len();
        let mut w = HeadWriter::new("slant-tagger-head-v1", &self.meta, self.input, self.hidden);
        w.meta_json("labels", &self.labels)?;
        if let Some(t) = self.decode.min_word_prob {
            w.meta(MIN_WORD_PROB_KEY, t);
        }
        if let Some(t) = self.decode.min_span_score {
            w.meta(MIN_SPAN_SCORE_KEY, t);
        }
        w.tensor("w2", vec![l, width], &self.w2)
            .tensor("b2", vec![l], &self.b2)
            .hidden_layer(self.input, self.hidden, &self.w1, &self.b1);
        w.write(path)
    }

    /// Load a head written by [`TaggerHead::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let file = super::HeadFile::open(path)?;
        file.require_format("slant-tagger-head-v1", "tagger head")?;
        let input: usize = file.meta_parse("input")?;
        let hidden: usize = file.meta_parse("hidden")?;
        let labels: Vec<String> = file.meta_json("labels")?;
        let l = labels.len();
        let width = if hidden == 0 { input } else { hidden };
        let (w1, b1) = if hidden > 0 {
            (
                file.tensor_f32("w1", &[hidden, input])?,
                file.tensor_f32("b1", &[hidden])?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let w2 = file.tensor_f32("w2", &[l, width])?;
        let b2 = file.tensor_f32("b2", &[l])?;
        let opt = |k: &str| -> Result<Option<f32>> {
            file.meta_opt(k)
                .map(|v| {
                    v.parse::<f32>()
                        .ok()
                        .filter(|t| (0.0..=1.0).contains(t))
                        .ok_or_else(|| {
                            file.error(format!("bad `{k}` {v:?} (want a number in 0..=1)"))
                        })
                })
                .transpose()
        };
        let decode = DecodeOpts {
            min_word_prob: opt(MIN_WORD_PROB_KEY)?,
            min_span_score: opt(MIN_SPAN_SCORE_KEY)?,
        };
        let meta = file.provenance(&[
            "format",
            "input",
            "hidden",
            "labels",
            MIN_WORD_PROB_KEY,
            MIN_SPAN_SCORE_KEY,
        ]);
        Ok(Self {
            labels,
            input,
            hidden,
            w1,
            b1,
            w2,
            b2,
            meta,
            w1_packed: PackCache::default(),
            decode,
        })
    }

    /// Predict and decode one sentence: spans as byte offsets into `text` (the text the offsets
    /// refer to).
    pub fn tag(
        &self,
        text: &str,
        states: &[f32],
        offsets: &[(usize, usize)],
        n_tokens: usize,
    ) -> Vec<TagSpan> {
        let probs = self.predict(states, n_tokens);
        self.decode_probs(text, &probs, offsets)
    }

    /// The labelling scheme (metadata key [`META_SCHEME`]): [`Scheme::Flat`] unless the header
    /// says `per_role`.
    pub fn scheme(&self) -> Scheme {
        match self.meta.get(META_SCHEME).map(String::as_str) {
            Some(SCHEME_PER_ROLE) if self.labels.len().is_multiple_of(3) => Scheme::PerRole,
            _ => Scheme::Flat,
        }
    }

    /// Decode per-token probabilities (as [`TaggerHead::predict`] gives them) into spans, as
    /// [`TaggerHead::tag`] does. A [`Scheme::PerRole`] head decodes each role's `O` / `B` / `I`
    /// group on its own (Viterbi under BIO constraints or arg-max, as the head's
    /// [`TaggerHead::decoding`] says; transition scores are not used), so spans of different
    /// roles may overlap or nest; they are returned sorted by start, longer first, then role.
    pub fn decode_probs(
        &self,
        text: &str,
        probs: &[Vec<f32>],
        offsets: &[(usize, usize)],
    ) -> Vec<TagSpan> {
        if self.scheme() == Scheme::PerRole {
            let mut out: Vec<TagSpan> = Vec::new();
            for (g, labels) in self.labels.chunks_exact(3).enumerate() {
                let p: Vec<Vec<f32>> = probs.iter().map(|r| r[3 * g..3 * g + 3].to_vec()).collect();
                let mut spans = match self.decoding() {
                    Decoding::Argmax => decode_with(text, labels, &p, offsets, &self.decode),
                    Decoding::Viterbi(_) => decode_viterbi(text, labels, &p, offsets, None),
                };
                if let Some(m) = self.decode.min_span_score {
                    spans.retain(|s| s.score >= m);
                }
                out.extend(spans);
            }
            // Stable: equal ranges keep the role order.
            out.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
            return out;
        }
        match self.decoding() {
            Decoding::Argmax => decode_with(text, &self.labels, probs, offsets, &self.decode),
            // Viterbi picks whole label paths, so a per-word probability floor does not apply;
            // a minimum span score still does.
            Decoding::Viterbi(t) => {
                let mut spans = decode_viterbi(text, &self.labels, probs, offsets, t.as_deref());
                if let Some(m) = self.decode.min_span_score {
                    spans.retain(|s| s.score >= m);
                }
                spans
            }
        }
    }
}

impl TaggerHead {
    /// The hidden layer's ReLU activations of every token (`n_tokens × hidden`, row-major; the
    /// rows [`TaggerHead::predict`] feeds its output layer), for heads with a hidden layer and
    /// no window; `None` otherwise.
    pub fn hidden_activations(&self, states: &[f32], n_tokens: usize) -> Option<Vec<f32>> {
        if self.hidden == 0 || self.window() != 0 {
            return None;
        }
        assert_eq!(
            states.len(),
            n_tokens * self.input,
            "states must be n_tokens × input"
        );
        let mut h = vec![0.0f32; n_tokens * self.hidden];
        for (t, row) in h.chunks_exact_mut(self.hidden).enumerate() {
            let x = &states[t * self.input..(t + 1) * self.input];
            for (j, v) in row.iter_mut().enumerate() {
                *v = (dot(&self.w1[j * self.input..(j + 1) * self.input], x) + self.b1[j]).max(0.0);
            }
        }
        Some(h)
    }
}

/// Metadata key: the context window (see [`TaggerHead::window`]); absent = 0.
pub const META_WINDOW: &str = "window";
/// Metadata key: lower encoder layers whose token states follow the final ones in each token's
/// features (see [`TaggerHead::extra_layers`]): `L` (the states after layer `L`) or `A-B` (the
/// mean of the states after layers `A..=B`); absent = final-layer states only.
pub const META_EXTRA_LAYER: &str = "extra_layer";

/// Parse a [`META_EXTRA_LAYER`] value (`L` or `A-B`, `1 <= A <= B`) into `(A, B)`.
pub fn parse_extra_layers(v: &str) -> Option<(usize, usize)> {
    let (a, b) = match v.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let l = v.trim().parse().ok()?;
            (l, l)
        }
    };
    (a >= 1 && a <= b).then_some((a, b))
}

/// Metadata key: `argmax` (also when absent) or `viterbi` (see [`Decoding`]).
pub const META_DECODING: &str = "decoding";
/// Metadata key: JSON array of `labels × labels` additive transition scores (row = previous
/// label) used by Viterbi decoding; absent = hard constraints only.
pub const META_TRANSITIONS: &str = "transitions";
/// Value of [`META_DECODING`] for Viterbi decoding.
pub const DECODING_VITERBI: &str = "viterbi";
/// Metadata key: the labelling scheme, `flat` (also when absent) or `per_role` (see [`Scheme`]).
pub const META_SCHEME: &str = "scheme";
/// Value of [`META_SCHEME`] for [`Scheme::PerRole`].
pub const SCHEME_PER_ROLE: &str = "per_role";

/// How a head's labels are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// One softmax over all labels (`O`, `B-X`, `I-X`, ...): one label per token, spans never
    /// overlap.
    Flat,
    /// Independent groups of three labels (`O-X`, `B-X`, `I-X`; [`per_role_labels`]), one
    /// softmax and one BIO sequence per group, so a token may be in spans of several types (a
    /// CONTENT that contains another attribution's SOURCE and CUE).
    PerRole,
}

/// Labels of a [`Scheme::PerRole`] head: `O-t`, `B-t`, `I-t` for each type.
pub fn per_role_labels(types: &[&str]) -> Vec<String> {
    types
        .iter()
        .flat_map(|t| [format!("O-{t}"), format!("B-{t}"), format!("I-{t}")])
        .collect()
}

/// Softmax over consecutive groups of `k` values.
pub fn softmax_groups(z: &[f32], k: usize) -> Vec<f32> {
    z.chunks(k.max(1)).flat_map(softmax).collect()
}

/// How a head turns per-token probabilities into spans.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoding {
    /// Each word takes its own arg-max label; an orphan `I-X` opens a span ([`decode`]).
    Argmax,
    /// The best label sequence over the words under BIO constraints, optionally with transition
    /// scores ([`decode_viterbi`]).
    Viterbi(Option<Vec<f32>>),
}

/// Fill `out` (`(2w + 1) × d`) with the states of tokens `t-w ..= t+w` of a sequence of `n`
/// states of width `d`, zeros where the offset falls outside the sequence. Training
/// ([`crate::train::tagger`]) and [`TaggerHead::predict`] build their inputs with it.
pub fn window_row(states: &[f32], d: usize, n: usize, t: usize, w: usize, out: &mut [f32]) {
    debug_assert_eq!(out.len(), (2 * w + 1) * d);
    for (k, slot) in out.chunks_exact_mut(d).enumerate() {
        let j = t as isize + k as isize - w as isize;
        if j < 0 || j as usize >= n {
            slot.fill(0.0);
        } else {
            let j = j as usize;
            slot.copy_from_slice(&states[j * d..(j + 1) * d]);
        }
    }
}

/// May label `cur` follow label `prev` in a BIO sequence? `I-X` only after `B-X` or `I-X`
/// (a sentence starts as if after `O`).
pub fn bio_allowed(labels: &[String], prev: Option<usize>, cur: usize) -> bool {
    let (p, ty) = split_bio(&labels[cur]);
    if p != 'I' {
        return true;
    }
    prev.is_some_and(|q| {
        let (pq, tq) = split_bio(&labels[q]);
        pq != 'O' && tq == ty
    })
}

/// Numerically stable softmax.
pub fn softmax(z: &[f32]) -> Vec<f32> {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Group tokens into words (see the module doc): each word is the list of its token indices.
/// Special tokens (empty offsets) are left out.
pub fn words(text: &str, offsets: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let bytes = text.as_bytes();
    let alnum_before = |i: usize| {
        text[..i]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
    };
    let alnum_at = |i: usize| text[i..].chars().next().is_some_and(char::is_alphanumeric);
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut prev_end: Option<usize> = None;
    for (i, &(a, b)) in offsets.iter().enumerate() {
        if a >= b || b > bytes.len() {
            prev_end = None;
            continue;
        }
        let joins = prev_end == Some(a) && alnum_before(a) && alnum_at(a);
        match out.last_mut() {
            Some(w) if joins => w.push(i),
            _ => out.push(vec![i]),
        }
        prev_end = Some(b);
    }
    out
}

/// Decode per-token probabilities into spans by arg-max (see the module doc for the rules).
pub fn decode(
    text: &str,
    labels: &[String],
    probs: &[Vec<f32>],
    offsets: &[(usize, usize)],
) -> Vec<TagSpan> {
    decode_with(text, labels, probs, offsets, &DecodeOpts::default())
}

/// Index and value of the largest entry (ties: the lowest index).
fn arg_max(p: impl Iterator<Item = (usize, f32)>) -> Option<(usize, f32)> {
    p.max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
}

/// Decode per-token probabilities into spans with thresholds `opts` (see the module doc).
pub fn decode_with(
    text: &str,
    labels: &[String],
    probs: &[Vec<f32>],
    offsets: &[(usize, usize)],
    opts: &DecodeOpts,
) -> Vec<TagSpan> {
    let n = probs.len().min(offsets.len());
    let o = labels.iter().position(|l| split_bio(l).0 == 'O');
    let word_tags: Vec<(usize, usize, usize, f32)> = words(text, &offsets[..n])
        .into_iter()
        .map(|w| {
            let p = &probs[w[0]];
            let (k, pk) = match (opts.min_word_prob, o) {
                (Some(t), Some(o)) => {
                    let loaded = 1.0 - p[o];
                    match arg_max(p.iter().copied().enumerate().filter(|&(k, _)| k != o)) {
                        Some((k, _)) if loaded >= t => (k, loaded),
                        _ => (o, p[o]),
                    }
                }
                _ => arg_max(p.iter().copied().enumerate()).expect("at least one label"),
            };
            (offsets[w[0]].0, offsets[*w.last().unwrap()].1, k, pk)
        })
        .collect();
    let mut spans = decode_words(labels, &word_tags);
    if let Some(m) = opts.min_span_score {
        spans.retain(|s| s.score >= m);
    }
    spans
}

/// Viterbi decoding: like [`decode`] (a word is read at its first token), but the words' labels
/// are the sequence maximising `Σ ln p(label) + transitions[prev][label]` among the sequences
/// [`bio_allowed`] admits (no `I-X` after `O` or after another type), instead of each word's own
/// arg-max. `transitions` is `labels × labels`, row = previous label; `None` = 0 everywhere (hard
/// constraints only). Ties go to the lower label index.
pub fn decode_viterbi(
    text: &str,
    labels: &[String],
    probs: &[Vec<f32>],
    offsets: &[(usize, usize)],
    transitions: Option<&[f32]>,
) -> Vec<TagSpan> {
    let n = probs.len().min(offsets.len());
    let ws = words(text, &offsets[..n]);
    let emit: Vec<&[f32]> = ws.iter().map(|w| probs[w[0]].as_slice()).collect();
    let path = viterbi(labels, &emit, transitions);
    let word_tags: Vec<(usize, usize, usize, f32)> = ws
        .iter()
        .zip(&path)
        .zip(&emit)
        .map(|((w, &k), p)| (offsets[w[0]].0, offsets[*w.last().unwrap()].1, k, p[k]))
        .collect();
    decode_words(labels, &word_tags)
}

/// The best allowed label path over rows of probabilities (see [`decode_viterbi`]).
pub fn viterbi(labels: &[String], probs: &[&[f32]], transitions: Option<&[f32]>) -> Vec<usize> {
    let l = labels.len();
    let ln = |p: f32| (p.max(1e-12) as f64).ln();
    let tr = |a: usize, b: usize| transitions.map_or(0.0, |t| t[a * l + b] as f64);
    let o = labels.iter().position(|x| split_bio(x).0 == 'O');
    let mut score: Vec<f64> = Vec::with_capacity(l);
    let mut back: Vec<Vec<usize>> = Vec::with_capacity(probs.len());
    for (i, p) in probs.iter().enumerate() {
        let mut next = vec![f64::NEG_INFINITY; l];
        let mut from = vec![0usize; l];
        for (c, slot) in next.iter_mut().enumerate() {
            if i == 0 {
                if bio_allowed(labels, None, c) {
                    *slot = ln(p[c]) + o.map_or(0.0, |o| tr(o, c));
                }
                continue;
            }
            for (q, &s) in score.iter().enumerate() {
                if s == f64::NEG_INFINITY || !bio_allowed(labels, Some(q), c) {
                    continue;
                }
                let v = s + tr(q, c) + ln(p[c]);
                if v > *slot {
                    *slot = v;
                    from[c] = q;
                }
            }
        }
        score = next;
        back.push(from);
    }
    let Some(mut k) = (0..score.len()).fold(None, |best: Option<usize>, c| match best {
        Some(b) if score[b] >= score[c] => Some(b),
        _ if score[c] > f64::NEG_INFINITY => Some(c),
        b => b,
    }) else {
        return Vec::new();
    };
    let mut path = vec![0; probs.len()];
    for i in (0..probs.len()).rev() {
        path[i] = k;
        k = back[i][k];
    }
    path
}

/// BIO decoding over words `(start, end, label index, probability)`.
pub fn decode_words(labels: &[String], words: &[(usize, usize, usize, f32)]) -> Vec<TagSpan> {
    let mut out: Vec<TagSpan> = Vec::new();
    // Open span: (type, start, end, sum of probabilities, words).
    let mut open: Option<(String, usize, usize, f32, usize)> = None;
    let close = |open: &mut Option<(String, usize, usize, f32, usize)>, out: &mut Vec<TagSpan>| {
        if let Some((label, start, end, s, n)) = open.take() {
            out.push(TagSpan {
                label,
                start,
                end,
                score: s / n as f32,
            });
        }
    };
    for &(a, b, k, p) in words {
        let (prefix, ty) = split_bio(&labels[k]);
        match prefix {
            'I' if open.as_ref().is_some_and(|o| o.0 == ty) => {
                let o = open.as_mut().expect("checked");
                o.2 = b;
                o.3 += p;
                o.4 += 1;
            }
            'B' | 'I' => {
                close(&mut open, &mut out);
                open = Some((ty.to_string(), a, b, p, 1));
            }
            _ => close(&mut open, &mut out),
        }
    }
    close(&mut open, &mut out);
    out
}

// Shared with training (train::tagger) and attribution decoding.

/// One gold span: type (without B-/I-) and byte offsets into the encoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldSpan {
    pub label: String,
    pub start: usize,
    pub end: usize,
}

/// Per-token tags (indices into `labels`) for one encoded text; `None` for special tokens.
/// `labels` must contain `B-X` and `I-X` for every span type `X` used (else an error).
pub fn bio_tags(
    text: &str,
    offsets: &[(usize, usize)],
    spans: &[GoldSpan],
    labels: &[String],
) -> Result<Vec<Option<usize>>> {
    let idx = |name: &str| {
        labels
            .iter()
            .position(|l| l == name)
            .ok_or_else(|| Error::Input(format!("label {name} is not one of {labels:?}")))
    };
    let o = idx("O")?;
    let mut tags: Vec<Option<usize>> = offsets.iter().map(|&(a, b)| (a < b).then_some(o)).collect();
    let mut taken = vec![false; offsets.len()];
    let ws = words(text, offsets);
    for s in spans {
        let (b_tag, i_tag) = (
            idx(&format!("B-{}", s.label))?,
            idx(&format!("I-{}", s.label))?,
        );
        let mut first = true;
        for w in &ws {
            let hits = w.iter().any(|&t| {
                let (a, b) = offsets[t];
                a < s.end && b > s.start
            });
            if !hits {
                continue;
            }
            for &t in w {
                if taken[t] {
                    continue;
                }
                taken[t] = true;
                tags[t] = Some(if first { b_tag } else { i_tag });
                first = false;
            }
        }
    }
    Ok(tags)
}

/// The f32 features of one sentence as a head with extra layers `(a, b)` reads them at
/// prediction time: per token, `final` then the mean of `lower` (the states after layers
/// `a..=b`, each `n_tokens × hidden`; the final layer may be one of them). Training rounds both
/// halves to f16 ([`extra_layer_features`]); this keeps f32.
pub fn concat_extra(final_states: &[f32], lower: &[&[f32]], hidden: usize) -> Vec<f32> {
    let n = final_states.len() / hidden.max(1);
    let k = lower.len().max(1) as f32;
    let mut out = Vec::with_capacity(2 * final_states.len());
    for t in 0..n {
        out.extend_from_slice(&final_states[t * hidden..(t + 1) * hidden]);
        for j in 0..hidden {
            let s: f32 = lower.iter().map(|l| l[t * hidden + j]).sum();
            out.push(if lower.len() == 1 { s } else { s / k });
        }
    }
    out
}

/// The tag of a token under [`Scheme::PerRole`]: the groups' tags (0 = `O`, 1 = `B`, 2 = `I`)
/// as the digits of one base-3 number, group 0 lowest.
pub fn per_role_code(group_tags: &[usize]) -> usize {
    group_tags.iter().rev().fold(0, |acc, &t| acc * 3 + t)
}

/// The group tags of a [`per_role_code`] for `groups` groups.
pub fn per_role_digits(code: usize, groups: usize) -> Vec<usize> {
    (0..groups)
        .map(|g| (code / 3usize.pow(g as u32)) % 3)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A head without a hidden layer: `w2` (labels × input) and zero biases, empty metadata.
    fn linear_head(labels: Vec<String>, input: usize, w2: Vec<f32>) -> TaggerHead {
        let b2 = vec![0.0; labels.len()];
        TaggerHead {
            labels,
            input,
            hidden: 0,
            w1: vec![],
            b1: vec![],
            w2,
            b2,
            meta: BTreeMap::new(),
            w1_packed: Default::default(),
            decode: Default::default(),
        }
    }

    /// An MLP head whose every weight comes from `val` (w1 from 0, b1 from 3, w2 from 11, b2
    /// from 5), empty metadata.
    fn synthetic_mlp(
        input: usize,
        hidden: usize,
        labels: Vec<String>,
        val: impl Fn(usize) -> f32,
    ) -> TaggerHead {
        TaggerHead {
            input,
            hidden,
            w1: (0..hidden * input).map(&val).collect(),
            b1: (0..hidden).map(|i| val(i + 3)).collect(),
            w2: (0..labels.len() * hidden).map(|i| val(i + 11)).collect(),
            b2: (0..labels.len()).map(|i| val(i + 5)).collect(),
            labels,
            meta: Default::default(),
            w1_packed: Default::default(),
            decode: DecodeOpts::default(),
        }
    }

    #[test]
    fn dot_matches_a_plain_sum() {
        for n in [0, 1, 7, 8, 9, 384, 389] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 13 % 17) as f32 - 8.0) / 5.0).collect();
            let want: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (*x as f64) * (*y as f64))
                .sum();
            assert!((dot(&a, &b) as f64 - want).abs() < 1e-4, "n = {n}");
        }
    }

    fn labels() -> Vec<String> {
        bio_labels(&["SRC", "CUE"])
    }

    fn one_hot(k: usize) -> Vec<f32> {
        let mut v = vec![0.0; 5];
        v[k] = 1.0;
        v
    }

    #[test]
    fn bio_labels_and_split() {
        assert_eq!(labels(), ["O", "B-SRC", "I-SRC", "B-CUE", "I-CUE"]);
        assert_eq!(split_bio("B-CUE"), ('B', "CUE"));
        assert_eq!(split_bio("I-A-B"), ('I', "A-B"));
        assert_eq!(split_bio("O"), ('O', ""));
    }

    #[test]
    fn words_join_word_pieces_not_punctuation() {
        let t = "Akhund claimed, unconvincingly.";
        // [CLS] akh ##und claimed , un ##convincing ##ly . [SEP]
        let off = [
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
        let w = words(t, &off);
        assert_eq!(
            w,
            vec![vec![1, 2], vec![3], vec![4], vec![5, 6, 7], vec![8]]
        );
    }

    #[test]
    fn decode_repairs_orphan_i_and_never_splits_a_word() {
        let t = "Akhund claimed, unconvincingly.";
        let off = [
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
        // akh: I-SRC (orphan, repaired to a span start); ##und: O (ignored: the word's first
        // piece decides); claimed: B-CUE; ",": O; un: I-CUE (orphan after O → new span);
        // ##convincing: B-SRC (ignored); ##ly: O; ".": I-CUE continues.
        let probs = vec![
            one_hot(0),
            one_hot(2),
            one_hot(0),
            one_hot(3),
            one_hot(0),
            one_hot(4),
            one_hot(1),
            one_hot(0),
            one_hot(4),
            one_hot(0),
        ];
        let spans = decode(t, &labels(), &probs, &off);
        let got: Vec<(&str, &str)> = spans
            .iter()
            .map(|s| (s.label.as_str(), &t[s.start..s.end]))
            .collect();
        assert_eq!(
            got,
            vec![
                ("SRC", "Akhund"),
                ("CUE", "claimed"),
                ("CUE", "unconvincingly.")
            ]
        );
        assert!(spans.iter().all(|s| (s.score - 1.0).abs() < 1e-6));
    }

    #[test]
    fn decode_switches_type_and_scores_mean_probability() {
        let l = labels();
        let w = [
            (0, 2, 1, 0.8),  // B-SRC
            (3, 5, 2, 0.6),  // I-SRC
            (6, 8, 4, 0.9),  // I-CUE after SRC: new CUE span
            (9, 10, 3, 0.5), // B-CUE: new span even though CUE is open
        ];
        let s = decode_words(&l, &w);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].start, s[0].end), (0, 5));
        assert!((s[0].score - 0.7).abs() < 1e-6);
        assert_eq!((s[1].label.as_str(), s[1].start, s[1].end), ("CUE", 6, 8));
        assert_eq!((s[2].start, s[2].end), (9, 10));
    }

    fn row(p: &[f32]) -> Vec<f32> {
        let mut v = vec![0.0; 5];
        v.copy_from_slice(p);
        v
    }

    #[test]
    fn viterbi_obeys_bio_constraints_where_argmax_does_not() {
        let l = labels(); // O B-SRC I-SRC B-CUE I-CUE
                          // Word 0: I-SRC most likely, B-SRC close; word 1: I-SRC; word 2: I-CUE after SRC, with
                          // O second.
        let p = [
            row(&[0.1, 0.35, 0.45, 0.05, 0.05]),
            row(&[0.1, 0.1, 0.7, 0.05, 0.05]),
            row(&[0.4, 0.0, 0.0, 0.05, 0.55]),
        ];
        let rows: Vec<&[f32]> = p.iter().map(|r| r.as_slice()).collect();
        // Arg-max: I-SRC I-SRC I-CUE (two orphans); Viterbi: B-SRC I-SRC then O (B-CUE is less
        // likely than O, I-CUE is not allowed after I-SRC).
        assert_eq!(viterbi(&l, &rows, None), vec![1, 2, 0]);
        for path in [
            viterbi(&l, &rows, None),
            viterbi(&l, &rows, Some(&[0.5; 25])),
        ] {
            assert!(bio_allowed(&l, None, path[0]));
            assert!(path.windows(2).all(|w| bio_allowed(&l, Some(w[0]), w[1])));
        }
        // Transition scores can change the path: a large bonus for SRC -> B-CUE.
        let mut t = vec![0.0f32; 25];
        t[2 * 5 + 3] = 5.0;
        assert_eq!(viterbi(&l, &rows, Some(&t)), vec![1, 2, 3]);
        assert!(viterbi(&l, &[], None).is_empty());
        assert!(bio_allowed(&l, Some(1), 2) && bio_allowed(&l, Some(2), 2));
        assert!(!bio_allowed(&l, Some(0), 2) && !bio_allowed(&l, Some(3), 2));
        assert!(!bio_allowed(&l, None, 4) && bio_allowed(&l, Some(0), 3));
    }

    #[test]
    fn decoding_comes_from_metadata_and_defaults_to_argmax() {
        let t = "Akhund claimed, unconvincingly.";
        let off = [(0, 0), (0, 3), (3, 6), (7, 14), (14, 15), (30, 31), (0, 0)];
        let mut head = linear_head(labels(), 2, vec![0.0; 10]);
        assert_eq!(head.decoding(), Decoding::Argmax);
        assert_eq!((head.window(), head.state_dim()), (0, 2));
        // Orphan I-CUE on "claimed" after a SRC word: arg-max opens a span, Viterbi cannot.
        let probs = vec![
            one_hot(0),
            row(&[0.0, 0.9, 0.1, 0.0, 0.0]),
            one_hot(0),
            row(&[0.3, 0.0, 0.0, 0.1, 0.6]),
            one_hot(0),
            one_hot(0),
            one_hot(0),
        ];
        let spans = |d: &Decoding| -> Vec<(String, usize, usize)> {
            let s = match d {
                Decoding::Argmax => decode(t, &head.labels, &probs, &off),
                Decoding::Viterbi(tr) => {
                    decode_viterbi(t, &head.labels, &probs, &off, tr.as_deref())
                }
            };
            s.into_iter().map(|s| (s.label, s.start, s.end)).collect()
        };
        assert_eq!(
            spans(&head.decoding()),
            vec![("SRC".into(), 0, 6), ("CUE".into(), 7, 14)]
        );
        head.meta
            .insert(META_DECODING.into(), DECODING_VITERBI.into());
        assert_eq!(head.decoding(), Decoding::Viterbi(None));
        assert_eq!(spans(&head.decoding()), vec![("SRC".into(), 0, 6)]);
        head.meta.insert(
            META_TRANSITIONS.into(),
            serde_json::to_string(&[0.25f32; 25]).unwrap(),
        );
        assert_eq!(head.decoding(), Decoding::Viterbi(Some(vec![0.25; 25])));
        // A transition matrix of the wrong shape is ignored.
        head.meta.insert(META_TRANSITIONS.into(), "[1.0]".into());
        assert_eq!(head.decoding(), Decoding::Viterbi(None));
    }

    #[test]
    fn extra_layer_key_is_parsed_and_checked() {
        assert_eq!(parse_extra_layers("3"), Some((3, 3)));
        assert_eq!(parse_extra_layers("4-6"), Some((4, 6)));
        for bad in ["0", "5-4", "x", "", "2-", "-1"] {
            assert_eq!(parse_extra_layers(bad), None, "{bad}");
        }
        let mut head = linear_head(bio_labels(&["X"]), 4, vec![0.0; 12]);
        assert_eq!(head.extra_layers(), None);
        assert!(head.check_extra_layers(6).is_ok());
        head.meta.insert(META_EXTRA_LAYER.into(), "4-6".into());
        assert_eq!(head.extra_layers(), Some((4, 6)));
        assert!(head.check_extra_layers(6).is_ok());
        assert!(head.check_extra_layers(5).is_err());
        head.meta.insert(META_EXTRA_LAYER.into(), "three".into());
        assert_eq!(head.extra_layers(), None);
        assert!(head.check_extra_layers(6).is_err());
    }

    #[test]
    fn window_rows_are_zero_padded_and_predict_reads_them() {
        // 3 tokens of width 2; window 1.
        let states = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [9.0f32; 6];
        window_row(&states, 2, 3, 0, 1, &mut out);
        assert_eq!(out, [0.0, 0.0, 1.0, 2.0, 3.0, 4.0]);
        window_row(&states, 2, 3, 2, 1, &mut out);
        assert_eq!(out, [3.0, 4.0, 5.0, 6.0, 0.0, 0.0]);
        // A linear head on window 1 whose label 1 reads the previous token's first coordinate.
        let mut w2 = vec![0.0; 2 * 6];
        w2[6] = 1.0;
        let head = TaggerHead {
            labels: vec!["O".into(), "B-X".into()],
            input: 6,
            hidden: 0,
            w1: vec![],
            b1: vec![],
            w2,
            b2: vec![0.0; 2],
            meta: [(META_WINDOW.to_string(), "1".to_string())]
                .into_iter()
                .collect(),
            w1_packed: Default::default(),
            decode: Default::default(),
        };
        assert_eq!((head.window(), head.state_dim()), (1, 2));
        let p = head.predict(&states, 3);
        let want = |z: f32| z.exp() / (1.0 + z.exp());
        for (t, z) in [(0, 0.0), (1, 1.0), (2, 3.0)] {
            assert!((p[t][1] - want(z)).abs() < 1e-6, "token {t}");
        }
    }

    #[test]
    fn batched_predict_matches_per_token_logits() {
        // predict() runs the hidden layer as one matmul; logits() is the per-token definition.
        let (input, hidden, labels) = (37, 19, bio_labels(&["A", "B"]));
        let val = |i: usize| ((i * 7919) % 1000) as f32 / 500.0 - 1.0;
        let head = synthetic_mlp(input, hidden, labels, val);
        let n = 53;
        let states: Vec<f32> = (0..n * input).map(|i| val(i + 101)).collect();
        let got = head.predict(&states, n);
        for (t, row) in got.iter().enumerate() {
            let want = softmax(&head.logits(&states[t * input..(t + 1) * input]));
            for (a, b) in row.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "token {t}: {a} vs {b}");
            }
        }
        // A second call reuses the packed weights and gives the same bits.
        assert_eq!(head.predict(&states, n), got);
        // With a context window the matmul reads each token's window row.
        let mut win = head.clone();
        win.input = 3 * 11;
        win.w1 = (0..hidden * win.input).map(val).collect();
        win.meta.insert(META_WINDOW.into(), "1".into());
        let states: Vec<f32> = (0..n * 11).map(|i| val(i + 7)).collect();
        let got = win.predict(&states, n);
        let mut row = vec![0.0f32; win.input];
        for (t, p) in got.iter().enumerate() {
            window_row(&states, 11, n, t, 1, &mut row);
            let want = softmax(&win.logits(&row));
            for (a, b) in p.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "window, token {t}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn predict_softmax_and_roundtrip() {
        let head = TaggerHead {
            labels: bio_labels(&["X"]),
            input: 2,
            hidden: 2,
            w1: vec![1.0, 0.0, 0.0, 1.0],
            b1: vec![0.0, 0.0],
            w2: vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0],
            b2: vec![0.0, 0.0, 0.0],
            meta: [("seed".to_string(), "3".to_string())]
                .into_iter()
                .collect(),
            w1_packed: Default::default(),
            decode: DecodeOpts::default(),
        };
        let p = head.predict(&[2.0, 0.0, -1.0, -1.0], 2);
        // Token 0: hidden [2, 0] → logits [0, 2, 0]; token 1: relu → [0,0] → uniform.
        let e2 = 2f32.exp();
        assert!((p[0][1] - e2 / (e2 + 2.0)).abs() < 1e-6);
        assert!(p[1].iter().all(|v| (v - 1.0 / 3.0).abs() < 1e-6));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        head.save(&path).unwrap();
        assert_eq!(TaggerHead::load(&path).unwrap(), head);
        let linear = TaggerHead {
            hidden: 0,
            w1: vec![],
            b1: vec![],
            ..head.clone()
        };
        linear.save(&path).unwrap();
        assert_eq!(TaggerHead::load(&path).unwrap(), linear);
        // Decoding thresholds travel in the header; a head without them decodes by arg-max.
        let plain = std::fs::read(&path).unwrap();
        let tuned = TaggerHead {
            decode: DecodeOpts {
                min_word_prob: Some(0.7),
                min_span_score: Some(0.85),
            },
            ..linear.clone()
        };
        tuned.save(&path).unwrap();
        let back = TaggerHead::load(&path).unwrap();
        assert_eq!(back, tuned);
        assert!(!back.meta.contains_key(MIN_WORD_PROB_KEY));
        // Only the header differs: the tensor bytes are the same.
        let with = std::fs::read(&path).unwrap();
        let body = |b: &[u8]| {
            let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
            b[8 + n..].to_vec()
        };
        assert_eq!(body(&plain), body(&with));
        assert_ne!(plain, with);
    }

    #[test]
    fn decode_probs_gives_the_spans_of_tag() {
        let (input, hidden, labels) = (5, 4, bio_labels(&["X"]));
        let val = |i: usize| ((i * 7919) % 1000) as f32 / 250.0 - 2.0;
        let mut head = synthetic_mlp(input, hidden, labels, val);
        let text = "aa bb cc dd ee ff";
        let off = [
            (0, 0),
            (0, 2),
            (3, 5),
            (6, 8),
            (9, 11),
            (12, 14),
            (15, 17),
            (0, 0),
        ];
        let n = off.len();
        let states: Vec<f32> = (0..n * input).map(|i| val(i + 101)).collect();
        let mut seen = 0;
        for decode in [
            DecodeOpts::default(),
            DecodeOpts {
                min_word_prob: Some(0.3),
                min_span_score: Some(0.2),
            },
        ] {
            head.decode = decode;
            let want = head.tag(text, &states, &off, n);
            let probs = head.predict(&states, n);
            assert_eq!(head.decode_probs(text, &probs, &off), want);
            seen += want.len();
        }
        assert!(seen > 0, "the example should tag something");
        // The hidden activations are the rows predict() feeds its output layer.
        let act = head.hidden_activations(&states, n).unwrap();
        let probs = head.predict(&states, n);
        for (row, p) in act.chunks_exact(hidden).zip(&probs) {
            let z: Vec<f32> = (0..head.labels.len())
                .map(|k| dot(&head.w2[k * hidden..(k + 1) * hidden], row) + head.b2[k])
                .collect();
            for (a, b) in softmax(&z).iter().zip(p) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
        let linear = TaggerHead {
            hidden: 0,
            ..head.clone()
        };
        assert!(linear.hidden_activations(&states, n).is_none());
    }

    #[test]
    fn thresholds_drop_unsure_words_and_weak_spans() {
        let l = bio_labels(&["X"]);
        let t = "aa bb cc dd";
        let off = [(0, 2), (3, 5), (6, 8), (9, 11)];
        // aa: B 0.5 > O 0.4 (arg-max tags it, P(not O) = 0.6); bb: O 0.45 but B+I = 0.55;
        // cc: I 0.9; dd: O.
        let probs = vec![
            vec![0.4, 0.5, 0.1],
            vec![0.45, 0.3, 0.25],
            vec![0.05, 0.05, 0.9],
            vec![0.9, 0.05, 0.05],
        ];
        let got = |o: DecodeOpts| -> Vec<(usize, usize, f32)> {
            decode_with(t, &l, &probs, &off, &o)
                .iter()
                .map(|s| (s.start, s.end, s.score))
                .collect()
        };
        // Arg-max: "aa" alone (bb is O), then "cc" (orphan I opens a span).
        let a = got(DecodeOpts::default());
        assert_eq!(
            a.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
            [(0, 2), (6, 8)]
        );
        // P(not O) >= 0.5: bb joins (B-X is its likelier non-O label → a new span after aa).
        let w = got(DecodeOpts {
            min_word_prob: Some(0.5),
            min_span_score: None,
        });
        assert_eq!(
            w.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
            [(0, 2), (3, 8)]
        );
        assert!((w[1].2 - (0.55 + 0.95) / 2.0).abs() < 1e-6);
        // P(not O) >= 0.7: only cc; a minimum span score of 0.7 then keeps it (0.95).
        let s = got(DecodeOpts {
            min_word_prob: Some(0.7),
            min_span_score: Some(0.7),
        });
        assert_eq!(s.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(), [(6, 8)]);
        // A minimum span score alone drops the arg-max "aa" span (score 0.5).
        let m = got(DecodeOpts {
            min_word_prob: None,
            min_span_score: Some(0.6),
        });
        assert_eq!(m.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(), [(6, 8)]);
    }

    #[test]
    fn per_role_heads_softmax_per_group_and_decode_nested_spans() {
        let labels = per_role_labels(&["SRC", "CUE", "CONTENT"]);
        assert_eq!(labels[..3], ["O-SRC", "B-SRC", "I-SRC"]);
        let mut head = linear_head(labels.clone(), 1, (0..9).map(|k| k as f32 / 4.0).collect());
        // Without the key a head is flat: one softmax over the nine outputs.
        assert_eq!(head.scheme(), Scheme::Flat);
        let flat = head.predict(&[1.0], 1);
        assert!((flat[0].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        head.meta.insert(META_SCHEME.into(), SCHEME_PER_ROLE.into());
        head.meta
            .insert(META_DECODING.into(), DECODING_VITERBI.into());
        assert_eq!(head.scheme(), Scheme::PerRole);
        let p = head.predict(&[1.0], 1);
        for g in 0..3 {
            assert!((p[0][3 * g..3 * g + 3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        assert_eq!(p[0][..3], softmax(&[0.0, 0.25, 0.5])[..]);
        // "Obama said Trump claimed it": the outer CONTENT holds the inner SOURCE and CUE.
        let t = "Obama said Trump claimed it";
        let off = [
            (0, 0),
            (0, 5),
            (6, 10),
            (11, 16),
            (17, 24),
            (25, 27),
            (0, 0),
        ];
        // Per token: (SRC tag, CUE tag, CONTENT tag), 0 = O, 1 = B, 2 = I.
        let tags = [
            (0, 0, 0),
            (1, 0, 0),
            (0, 1, 0),
            (1, 0, 1),
            (0, 1, 2),
            (0, 0, 2),
            (0, 0, 0),
        ];
        let probs: Vec<Vec<f32>> = tags
            .iter()
            .map(|&(a, b, c)| {
                let mut v = vec![0.05f32; 9];
                for (g, d) in [a, b, c].into_iter().enumerate() {
                    v[3 * g + d] = 0.9;
                }
                v
            })
            .collect();
        let got: Vec<(String, &str)> = head
            .decode_probs(t, &probs, &off)
            .into_iter()
            .map(|s| (s.label, &t[s.start..s.end]))
            .collect();
        let want = [
            ("SRC", "Obama"),
            ("CUE", "said"),
            ("CONTENT", "Trump claimed it"),
            ("SRC", "Trump"),
            ("CUE", "claimed"),
        ];
        assert_eq!(
            got,
            want.map(|(l, x)| (l.to_string(), x)).to_vec(),
            "sorted by start, longer first"
        );
        // A flat head decodes all labels as one sequence, as before the scheme existed.
        head.meta.remove(META_SCHEME);
        assert_eq!(
            head.decode_probs(t, &probs, &off),
            decode_viterbi(t, &labels, &probs, &off, None)
        );
    }

    #[test]
    fn outside_label_is_the_o_index_or_zero() {
        let mut head = linear_head(
            vec!["B-X".into(), "I-X".into(), "O".into()],
            1,
            vec![0.0; 3],
        );
        assert_eq!(outside_label(&head), 2);
        head.labels = vec!["B-X".into(), "I-X".into(), "O-X".into()];
        assert_eq!(outside_label(&head), 0);
    }

    #[test]
    fn loading_another_head_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.safetensors");
        std::fs::write(&p, b"garbage").unwrap();
        assert!(TaggerHead::load(&p)
            .unwrap_err()
            .to_string()
            .contains("x.safetensors"));
    }
}
