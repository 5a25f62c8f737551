//! A fast fp32 BERT encoder for CPUs ("--engine fast", the default).
//!
//! Same weights and the same arithmetic as candle's `BertModel` (the reference, `--engine
//! candle`), organised for a small CPU:
//!
//! * **No padding work.** The tokens of all sentences of a batch are packed into one
//!   `[total_tokens × hidden]` matrix. The linear layers run on that matrix; attention runs per
//!   sentence over its own tokens only, so there is no mask and no wasted row.
//! * **Big matmuls through our own kernels** ([`super::f32mm`]: AVX-512, AVX2+FMA or portable,
//!   chosen at run time) with weights transposed and packed once at load time; Q, K and V are one
//!   fused `[hidden → 3·hidden]` matmul. Each output starts from its bias, so bias costs no pass.
//! * **Fused element-wise passes**: GELU (erf form, as BERT's `"gelu"`) right after the FFN's first
//!   matmul; residual add + LayerNorm in one pass per row.
//! * **Buffers reused** across layers and batches (one workspace behind a mutex).
//!
//! Determinism: every matmul output is one in-order FMA chain over the reduction dimension, and
//! work is split across threads by output rows only, so every output element is summed in the
//! same order at any thread count and with any of the kernels. Attention, GELU and LayerNorm
//! are computed per row / per sentence with a fixed order. Results are therefore bit-identical for any
//! `--threads` (tested).
//!
//! Portability: explicit intrinsics live in [`super::f32mm`] and, for attention with a head size
//! of 32, in an AVX-512 kernel here (both behind run-time feature detection, with a portable
//! fallback; the attention kernel is tested bit-identical to the fallback); the fallback
//! attention and the element-wise loops are plain Rust written so the compiler vectorises them,
//! compiled for AVX-512, AVX2+FMA and generic (`multiversion!`).

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use safetensors::SafeTensors;

use super::config::EncoderConfig;
use super::f32mm::{matmul_bias, Kernel, PackedW};
use crate::{Error, Result};

/// Hyper-parameters read from `config.json`.
#[derive(Debug, Clone, Copy)]
struct Dims {
    hidden: usize,
    heads: usize,
    inter: usize,
    layers: usize,
    max_pos: usize,
    eps: f32,
}

/// MPNet's bidirectional relative position bias (T5-style buckets): one `buckets × heads` table,
/// shared by every layer, whose entry for the bucket of `key − query` is added to that head's
/// attention score. BERT has none.
#[derive(Debug, Clone)]
struct RelBias {
    /// `buckets × heads`, row-major (the checkpoint's `encoder.relative_attention_bias.weight`).
    table: Vec<f32>,
    buckets: usize,
    max_distance: usize,
    /// The bucket of every relative position `-max_pos..=max_pos` (index `rel + max_pos`),
    /// computed once at load so attention only looks it up.
    by_rel: Vec<u16>,
    max_pos: usize,
}

impl RelBias {
    fn new(table: Vec<f32>, buckets: usize, max_distance: usize, max_pos: usize) -> Self {
        let mut b = Self {
            table,
            buckets,
            max_distance,
            by_rel: Vec::new(),
            max_pos,
        };
        let m = max_pos as i64;
        b.by_rel = (-m..=m).map(|rel| b.bucket(rel) as u16).collect();
        b
    }

    /// The bucket of relative position `rel = key − query`, as upstream MPNet's
    /// `relative_position_bucket` computes it (half the buckets for each sign; exact below
    /// a quarter of them, logarithmic up to `max_distance`; f32 arithmetic in the same order).
    fn bucket(&self, rel: i64) -> usize {
        let half = (self.buckets / 2) as i64;
        let n = -rel;
        let mut ret = if n < 0 { half } else { 0 };
        let n = n.abs();
        let max_exact = half / 2;
        if n < max_exact {
            ret += n;
        } else {
            let f = ((n as f32 / max_exact as f32).ln()
                / (self.max_distance as f64 / max_exact as f64).ln() as f32)
                * (half - max_exact) as f32;
            ret += (max_exact + f as i64).min(half - 1);
        }
        ret as usize
    }

    /// The buckets of query `i`'s keys `0..n`: a window of [`Self::by_rel`].
    fn row(&self, i: usize, n: usize) -> &[u16] {
        &self.by_rel[self.max_pos - i..self.max_pos - i + n]
    }
}

#[derive(Debug, Clone)]
struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

/// A linear layer `y = x·Wᵀ + b` with `W` stored transposed (`[in × out]`) and packed in
/// column panels for [`super::f32mm`].
#[derive(Debug, Clone)]
struct Linear {
    w: PackedW,
    bias: Vec<f32>,
}

#[derive(Debug, Clone)]
struct Layer {
    qkv: Linear,
    attn_out: Linear,
    ln1: LayerNorm,
    ff1: Linear,
    ff2: Linear,
    ln2: LayerNorm,
}

/// The buffers one layer pass works in, over `total` packed tokens: `x` (`total × hidden`, the
/// states, updated in place), `qkv` (`× 3·hidden`), `ctx` and `tmp` (`× hidden`), `ff`
/// (`× intermediate`).
struct LayerBufs<'a> {
    x: &'a mut [f32],
    qkv: &'a mut [f32],
    ctx: &'a mut [f32],
    tmp: &'a mut [f32],
    ff: &'a mut [f32],
}

/// Runs one of a layer's linear maps: `(which, fp32 map, input, rows, output)` with `which` 0
/// qkv, 1 attention output, 2 FFN up, 3 FFN down.
type LinFn<'a> = dyn Fn(usize, &Linear, &[f32], usize, &mut [f32]) + 'a;

/// Which [`Profile`] slot a stage's time goes to.
type Slot = fn(&mut Profile) -> &mut Duration;

impl Layer {
    /// One transformer layer over the packed tokens of sentences of lengths `lens`, in place on
    /// `b.x`. `lap(slot)` is called after each stage (profiling).
    fn forward(
        &self,
        d: &Dims,
        lens: &[usize],
        b: &mut LayerBufs,
        lin: &LinFn,
        bias: Option<&RelBias>,
        lap: &mut dyn FnMut(Slot),
    ) {
        let (h, total) = (d.hidden, lens.iter().sum::<usize>());
        lin(0, &self.qkv, b.x, total, b.qkv);
        lap(|p| &mut p.qkv);
        attention(b.qkv, b.ctx, lens, d.heads, h, bias);
        lap(|p| &mut p.attention);
        lin(1, &self.attn_out, b.ctx, total, b.tmp);
        lap(|p| &mut p.attn_out);
        b.x.par_chunks_mut(h)
            .zip(b.tmp.par_chunks(h))
            .for_each(|(r, add)| layer_norm_row(r, Some(add), &self.ln1, d.eps));
        lap(|p| &mut p.ln);
        lin(2, &self.ff1, b.x, total, b.ff);
        lap(|p| &mut p.ff1_gelu);
        b.ff.par_chunks_mut(d.inter).for_each(gelu_in_place);
        lap(|p| &mut p.gelu);
        lin(3, &self.ff2, b.ff, total, b.tmp);
        lap(|p| &mut p.ff2);
        b.x.par_chunks_mut(h)
            .zip(b.tmp.par_chunks(h))
            .for_each(|(r, add)| layer_norm_row(r, Some(add), &self.ln2, d.eps));
        lap(|p| &mut p.ln);
    }
}

/// Transformer layers run on given token states with the fast engine's kernels: the tuned
/// loaded head's merged top layers ([`crate::heads::tuned`]) run here at scoring time, on the
/// states the encoder's single pass kept after its lower layers.
#[derive(Debug, Clone)]
pub struct LayerStack {
    d: Dims,
    layers: Vec<Layer>,
    kernel: Kernel,
}

impl LayerStack {
    /// Layers from their tensors in checkpoint layout (`[out × in]` weights), each layer's 16
    /// tensors in [`crate::train::tune::LAYER_TENSORS`] order.
    pub fn from_tensors(
        layers: &[Vec<Vec<f32>>],
        hidden: usize,
        heads: usize,
        inter: usize,
        eps: f32,
    ) -> Result<Self> {
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(Error::Mismatch(format!(
                "hidden size {hidden} is not a multiple of the {heads} heads"
            )));
        }
        let (h, i) = (hidden, inter);
        let shapes = [
            h * h,
            h,
            h * h,
            h,
            h * h,
            h,
            h * h,
            h,
            h,
            h,
            i * h,
            i,
            h * i,
            h,
            h,
            h,
        ];
        let built = layers
            .iter()
            .enumerate()
            .map(|(l, w)| {
                if w.len() != shapes.len() || w.iter().zip(&shapes).any(|(t, &n)| t.len() != n) {
                    return Err(Error::Mismatch(format!(
                        "layer {l}: tensors do not match hidden {h} and intermediate {i}"
                    )));
                }
                let mut wqkv = Vec::with_capacity(3 * h * h);
                let mut bqkv = Vec::with_capacity(3 * h);
                for j in 0..3 {
                    wqkv.extend_from_slice(&w[2 * j]);
                    bqkv.extend_from_slice(&w[2 * j + 1]);
                }
                let lin = |wt: &[f32], b: &[f32], out: usize, inp: usize| Linear {
                    w: PackedW::pack_rows(wt, out, inp),
                    bias: b.to_vec(),
                };
                let ln = |g: &[f32], b: &[f32]| LayerNorm {
                    gamma: g.to_vec(),
                    beta: b.to_vec(),
                };
                Ok(Layer {
                    qkv: Linear {
                        w: PackedW::pack_rows(&wqkv, 3 * h, h),
                        bias: bqkv,
                    },
                    attn_out: lin(&w[6], &w[7], h, h),
                    ln1: ln(&w[8], &w[9]),
                    ff1: lin(&w[10], &w[11], i, h),
                    ff2: lin(&w[12], &w[13], h, i),
                    ln2: ln(&w[14], &w[15]),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            d: Dims {
                hidden,
                heads,
                inter,
                layers: built.len(),
                max_pos: usize::MAX,
                eps,
            },
            layers: built,
            kernel: Kernel::detect(),
        })
    }

    /// Hidden size.
    pub fn hidden(&self) -> usize {
        self.d.hidden
    }

    /// Mean over its tokens of each sentence's final states: `states` holds each sentence's
    /// input token states (`n_tokens × hidden`, at least one token); the result is
    /// `states.len() × hidden` floats, in input order. Sentences run `batch` at a time.
    pub fn forward_pooled(&self, states: &[&[f32]], batch: usize) -> Result<Vec<f32>> {
        let (d, h) = (self.d, self.d.hidden);
        if let Some(s) = states.iter().find(|s| s.is_empty() || s.len() % h != 0) {
            return Err(Error::Input(format!(
                "a sentence of {} floats is not a whole number (>= 1) of {h}-wide token states",
                s.len()
            )));
        }
        let mut out = vec![0f32; states.len() * h];
        let lin = |_: usize, fp: &Linear, x: &[f32], m: usize, o: &mut [f32]| {
            matmul_bias(self.kernel, x, m, &fp.w, &fp.bias, o)
        };
        for (chunk, o) in states
            .chunks(batch.max(1))
            .zip(out.chunks_mut(batch.max(1) * h))
        {
            let lens: Vec<usize> = chunk.iter().map(|s| s.len() / h).collect();
            let total: usize = lens.iter().sum();
            let mut x = chunk.concat();
            let (mut qkv, mut ctx) = (vec![0f32; total * 3 * h], vec![0f32; total * h]);
            let (mut tmp, mut ff) = (vec![0f32; total * h], vec![0f32; total * d.inter]);
            let mut b = LayerBufs {
                x: &mut x,
                qkv: &mut qkv,
                ctx: &mut ctx,
                tmp: &mut tmp,
                ff: &mut ff,
            };
            for layer in &self.layers {
                layer.forward(&d, &lens, &mut b, &lin, None, &mut |_| {});
            }
            mean_pool(&x, &lens, h, o);
        }
        Ok(out)
    }
}

/// Time spent per stage, summed over batches (filled when profiling is on).
#[derive(Debug, Default, Clone)]
pub struct Profile {
    pub batches: usize,
    pub tokens: usize,
    pub tokenize: Duration,
    pub embed: Duration,
    pub qkv: Duration,
    pub attention: Duration,
    pub attn_out: Duration,
    pub ln: Duration,
    pub ff1_gelu: Duration,
    pub gelu: Duration,
    pub ff2: Duration,
    pub pool: Duration,
    /// Whole forward passes (candle engine: only this, tokenize and pool are known).
    pub forward: Duration,
}

impl Profile {
    /// A breakdown, one stage per line, with shares of the total.
    pub fn render(&self, engine: &str) -> String {
        let total = self.tokenize + self.forward + self.pool;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let pct = |d: Duration| 100.0 * d.as_secs_f64() / total.as_secs_f64().max(1e-12);
        let mut s = format!(
            "slant profile ({engine} engine): {} batches, {} tokens, {:.1} ms total\n",
            self.batches,
            self.tokens,
            ms(total)
        );
        let mut line = |name: &str, d: Duration| {
            s.push_str(&format!(
                "  {name:<28} {:>10.1} ms {:>5.1}%\n",
                ms(d),
                pct(d)
            ));
        };
        line("tokenize", self.tokenize);
        line("forward (all layers)", self.forward);
        if engine == "fast" {
            line("  embeddings + LayerNorm", self.embed);
            line("  QKV matmul (fused)", self.qkv);
            line("  attention (scores/softmax/ctx)", self.attention);
            line("  attention output matmul", self.attn_out);
            line("  residual + LayerNorm (x2)", self.ln);
            line("  FFN up matmul + bias", self.ff1_gelu);
            line("  GELU", self.gelu);
            line("  FFN down matmul", self.ff2);
        }
        line("mean pooling", self.pool);
        s
    }
}

/// Reusable buffers for one forward pass.
#[derive(Debug, Default)]
struct Workspace {
    x: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
    ff: Vec<f32>,
}

/// The fast encoder: weights as plain `Vec<f32>`.
#[derive(Debug)]
pub struct FastBert {
    d: Dims,
    word: Vec<f32>,
    pos: Vec<f32>,
    type0: Vec<f32>,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
    ws: Mutex<Workspace>,
    /// int8 copies of each layer's four linear maps (`--precision int8`), in the order qkv,
    /// attention output, FFN up, FFN down; `None` runs fp32.
    int8: Option<Vec<[super::int8::QLinear; 4]>>,
    /// The fp32 matmul kernel (widest this CPU supports; all give the same bits).
    kernel: Kernel,
    /// MPNet: the relative position bias of every layer's attention; BERT: `None`.
    rel_bias: Option<RelBias>,
    /// Position id of a sentence's first token: 0 for BERT, 2 for MPNet (RoBERTa-style ids
    /// that start after the padding id 1).
    pos_offset: usize,
}

impl FastBert {
    /// Load `model.safetensors` of a BERT folder; `config` is its `config.json`.
    pub fn load(weights: &Path, config: &EncoderConfig) -> Result<Self> {
        let file = std::fs::File::open(weights).map_err(|e| Error::io(weights, e))?;
        // SAFETY: mapped read-only and only read while loading.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(weights, e))?;
        Self::from_bytes(&map, weights, config, false)
    }

    /// Load from the bytes of a `model.safetensors` (`weights` names it in errors). With
    /// `int8`, the linear maps are quantised straight from the checkpoint's `[out × in]` rows
    /// (see [`super::int8`]) and no fp32 copy of them is built; otherwise they are packed for
    /// [`super::f32mm`]. Layers are converted in parallel (rayon).
    pub fn from_bytes(
        bytes: &[u8],
        weights: &Path,
        config: &EncoderConfig,
        int8: bool,
    ) -> Result<Self> {
        let mpnet = match config.model_type.as_str() {
            "bert" => false,
            "mpnet" => true,
            other => {
                return Err(Error::Unsupported(format!(
                    "the fast engine runs BERT and MPNet encoders (model_type \"bert\" or \
                     \"mpnet\"); this one is {other:?}"
                )))
            }
        };
        let act = &config.hidden_act;
        if act != "gelu" {
            return Err(Error::Unsupported(format!(
                "the fast engine supports hidden_act \"gelu\" only (this model: {act:?}); use \
                 --engine candle"
            )));
        }
        let pet = &config.position_embedding_type;
        if pet != "absolute" {
            return Err(Error::Unsupported(format!(
                "the fast engine supports absolute position embeddings only ({pet:?}); use \
                 --engine candle"
            )));
        }
        let d = Dims {
            hidden: config.hidden_size,
            heads: config.num_attention_heads,
            inter: config.intermediate_size,
            layers: config.num_hidden_layers,
            max_pos: config.max_position_embeddings,
            eps: config.layer_norm_eps as f32,
        };
        let st = SafeTensors::deserialize(bytes).map_err(|e| Error::bad_model(weights, e))?;
        // Plain BERT checkpoints name tensors "embeddings.…"; pre-training ones "bert.embeddings.…".
        let prefix = if st.tensor("embeddings.word_embeddings.weight").is_ok() {
            ""
        } else {
            "bert."
        };
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let full = format!("{prefix}{name}");
            let t = st
                .tensor(&full)
                .map_err(|e| Error::bad_model(weights, format!("{full}: {e}")))?;
            if t.dtype() != safetensors::Dtype::F32 || t.shape() != shape {
                return Err(Error::bad_model(
                    weights,
                    format!(
                        "{full}: expected f32 {shape:?}, found {:?} {:?}",
                        t.dtype(),
                        t.shape()
                    ),
                ));
            }
            Ok(t.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let ln = |name: &str| -> Result<LayerNorm> {
            Ok(LayerNorm {
                gamma: get(&format!("{name}.weight"), &[d.hidden])?,
                beta: get(&format!("{name}.bias"), &[d.hidden])?,
            })
        };
        // Q, K and V (or one map) as one `[out_total × in]` row-major matrix and its bias.
        let rows =
            |names: &[String], n_in: usize, n_out_each: usize| -> Result<(Vec<f32>, Vec<f32>)> {
                let mut w = Vec::with_capacity(n_in * n_out_each * names.len());
                let mut bias = Vec::with_capacity(n_out_each * names.len());
                for name in names {
                    w.extend(get(&format!("{name}.weight"), &[n_out_each, n_in])?);
                    bias.extend(get(&format!("{name}.bias"), &[n_out_each])?);
                }
                Ok((w, bias))
            };
        type Q = super::int8::QLinear;
        let linear =
            |names: &[String], n_in: usize, n_out_each: usize| -> Result<(Linear, Option<Q>)> {
                let (w, bias) = rows(names, n_in, n_out_each)?;
                let n_out = n_out_each * names.len();
                Ok(if int8 {
                    let q = Q::from_rows(&w, &bias, n_in, n_out);
                    let empty = Linear {
                        w: PackedW::pack(&[], 0, 0),
                        bias,
                    };
                    (empty, Some(q))
                } else {
                    let packed = PackedW::pack_rows(&w, n_out, n_in);
                    (Linear { w: packed, bias }, None)
                })
            };
        let vocab = st
            .tensor(&format!("{prefix}embeddings.word_embeddings.weight"))
            .map_err(|e| Error::bad_model(weights, e))?
            .shape()[0];
        let word = get("embeddings.word_embeddings.weight", &[vocab, d.hidden])?;
        let pos = get(
            "embeddings.position_embeddings.weight",
            &[d.max_pos, d.hidden],
        )?;
        // MPNet has no token types: adding zeros keeps BERT's one embedding sum for both.
        let type0 = if mpnet {
            vec![0.0; d.hidden]
        } else {
            let types = st
                .tensor(&format!("{prefix}embeddings.token_type_embeddings.weight"))
                .map_err(|e| Error::bad_model(weights, e))?
                .shape()[0];
            get(
                "embeddings.token_type_embeddings.weight",
                &[types, d.hidden],
            )?[..d.hidden]
                .to_vec()
        };
        let rel_bias = if mpnet {
            let buckets = config.relative_attention_num_buckets;
            Some(RelBias::new(
                get(
                    "encoder.relative_attention_bias.weight",
                    &[buckets, d.heads],
                )?,
                buckets,
                128,
                d.max_pos,
            ))
        } else {
            None
        };
        // MPNet's tensor names inside a layer; the layer's shape is BERT's.
        let names = if mpnet {
            [
                "attention.attn.q",
                "attention.attn.k",
                "attention.attn.v",
                "attention.attn.o",
                "attention.LayerNorm",
            ]
        } else {
            [
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "attention.output.LayerNorm",
            ]
        };
        let emb_ln = ln("embeddings.LayerNorm")?;
        let built: Vec<(Layer, Option<[Q; 4]>)> = (0..d.layers)
            .into_par_iter()
            .map(|l| -> Result<_> {
                let p = format!("encoder.layer.{l}");
                let s = |x: &str| format!("{p}.{x}");
                let (qkv, q0) =
                    linear(&[s(names[0]), s(names[1]), s(names[2])], d.hidden, d.hidden)?;
                let (attn_out, q1) = linear(&[s(names[3])], d.hidden, d.hidden)?;
                let (ff1, q2) = linear(&[s("intermediate.dense")], d.hidden, d.inter)?;
                let (ff2, q3) = linear(&[s("output.dense")], d.inter, d.hidden)?;
                let q = match (q0, q1, q2, q3) {
                    (Some(a), Some(b), Some(c), Some(e)) => Some([a, b, c, e]),
                    _ => None,
                };
                let layer = Layer {
                    qkv,
                    attn_out,
                    ln1: ln(&s(names[4]))?,
                    ff1,
                    ff2,
                    ln2: ln(&s("output.LayerNorm"))?,
                };
                Ok((layer, q))
            })
            .collect::<Result<_>>()?;
        let mut layers = Vec::with_capacity(d.layers);
        let mut q8 = Vec::with_capacity(d.layers);
        for (layer, q) in built {
            layers.push(layer);
            q8.extend(q);
        }
        let int8 = int8.then_some(q8);
        Ok(Self {
            d,
            word,
            pos,
            type0,
            emb_ln,
            layers,
            ws: Mutex::new(Workspace::default()),
            int8,
            kernel: Kernel::detect(),
            rel_bias,
            pos_offset: if mpnet { 2 } else { 0 },
        })
    }

    /// Switch the six layers' linear maps to int8 (weights per output channel, activations per
    /// row; see [`super::int8`]). Embeddings, attention, LayerNorm and GELU stay fp32.
    pub fn quantize_int8(&mut self) {
        use super::int8::QLinear;
        if self.int8.is_some() {
            return;
        }
        let q = |l: &Linear| QLinear::from_transposed(&l.w.unpack(), &l.bias, l.w.k(), l.w.n());
        self.int8 = Some(
            self.layers
                .iter()
                .map(|l| [q(&l.qkv), q(&l.attn_out), q(&l.ff1), q(&l.ff2)])
                .collect(),
        );
        // The fp32 copies are no longer used: free them (about 85 MB).
        for l in &mut self.layers {
            for lin in [&mut l.qkv, &mut l.attn_out, &mut l.ff1, &mut l.ff2] {
                lin.w = PackedW::pack(&[], 0, 0);
            }
        }
    }

    /// True when the linear maps run in int8.
    pub fn is_int8(&self) -> bool {
        self.int8.is_some()
    }

    /// One of a layer's linear maps (`which`: 0 qkv, 1 attention output, 2 FFN up, 3 FFN down),
    /// fp32 or int8.
    fn lin(&self, l: usize, which: usize, fp: &Linear, x: &[f32], m: usize, out: &mut [f32]) {
        match &self.int8 {
            Some(q) => q[l][which].forward(x, m, out),
            None => matmul_bias(self.kernel, x, m, &fp.w, &fp.bias, out),
        }
    }

    /// Hidden size.
    pub fn hidden(&self) -> usize {
        self.d.hidden
    }

    /// Final hidden states of every token, packed: sentence after sentence, `hidden` floats per
    /// token (`Σ lens × hidden`).
    pub fn token_states(&self, seqs: &[&[u32]]) -> Result<Vec<f32>> {
        self.states_after(seqs, self.d.layers)
    }

    /// Number of transformer layers.
    pub fn layers(&self) -> usize {
        self.d.layers
    }

    /// Hidden states of every token after the first `n_layers` layers (0: the embeddings),
    /// packed like [`Self::token_states`]. Tuned top layers start from these.
    pub fn states_after(&self, seqs: &[&[u32]], n_layers: usize) -> Result<Vec<f32>> {
        let mut ws = self.ws.lock().unwrap_or_else(|e| e.into_inner());
        self.forward_upto(seqs, &mut ws, None, n_layers.min(self.d.layers))?;
        let total: usize = seqs.iter().map(|s| s.len()).sum();
        Ok(ws.x[..total * self.d.hidden].to_vec())
    }

    /// Mean of the final hidden states of each sentence: `seqs.len() × hidden` floats (zeros for
    /// an empty sentence).
    pub fn forward_pooled(&self, seqs: &[&[u32]], prof: Option<&mut Profile>) -> Result<Vec<f32>> {
        Ok(self.forward_pooled_states(seqs, prof, false)?.0)
    }

    /// [`Self::forward_pooled`] plus, when `states` is true, a copy of every token's final
    /// hidden state, packed as in [`Self::token_states`] (one forward pass serves both; the
    /// pooled vectors are bit-identical to `forward_pooled`'s).
    pub fn forward_pooled_states(
        &self,
        seqs: &[&[u32]],
        prof: Option<&mut Profile>,
        states: bool,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let (pooled, st, _) = self.forward_pooled_states_extra(seqs, prof, states, None)?;
        Ok((pooled, st))
    }

    /// [`Self::forward_pooled_states`] that also keeps, when `extra = Some((a, b))`, the mean
    /// of every token's states after layers `a..=b` (`1 <= a <= b <=` [`Self::layers`]; one
    /// layer when `a == b`), packed like the final states: the same single pass, the lower
    /// layers' states are added up as it goes by them. Pooled vectors and final states are
    /// bit-identical to [`Self::forward_pooled_states`]'s.
    pub fn forward_pooled_states_extra(
        &self,
        seqs: &[&[u32]],
        prof: Option<&mut Profile>,
        states: bool,
        extra: Option<(usize, usize)>,
    ) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let keeps: Vec<(usize, usize)> = extra.into_iter().collect();
        let (pooled, st, mut kept) = self.forward_pooled_states_keep(seqs, prof, states, &keeps)?;
        Ok((pooled, st, kept.pop().unwrap_or_default()))
    }

    /// [`Self::forward_pooled_states_extra`] for any number of kept layer ranges: for each
    /// `(a, b)` of `keeps`, the mean of every token's states after layers `a..=b`, packed like
    /// the final states, all from the same single pass.
    #[allow(clippy::type_complexity)]
    pub fn forward_pooled_states_keep(
        &self,
        seqs: &[&[u32]],
        prof: Option<&mut Profile>,
        states: bool,
        keeps: &[(usize, usize)],
    ) -> Result<(Vec<f32>, Vec<f32>, Vec<Vec<f32>>)> {
        let h = self.d.hidden;
        for &(a, b) in keeps {
            if a == 0 || a > b || b > self.d.layers {
                return Err(Error::Mismatch(format!(
                    "extra layers {a}-{b}: the encoder has layers 1..={}",
                    self.d.layers
                )));
            }
        }
        let mut ws = self.ws.lock().unwrap_or_else(|e| e.into_inner());
        let mut prof = prof;
        let mut accs: Vec<Vec<f32>> = vec![Vec::new(); keeps.len()];
        {
            let mut k: Vec<((usize, usize), &mut Vec<f32>)> =
                keeps.iter().copied().zip(accs.iter_mut()).collect();
            self.forward_keep(seqs, &mut ws, prof.as_deref_mut(), self.d.layers, &mut k)?;
        }
        for (&(a, b), acc) in keeps.iter().zip(accs.iter_mut()) {
            if b > a {
                let k = (b - a + 1) as f32;
                for v in acc.iter_mut() {
                    *v /= k;
                }
            }
        }
        let t0 = Instant::now();
        let mut out = vec![0.0f32; seqs.len() * h];
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        let off = mean_pool(&ws.x, &lens, h, &mut out);
        let token_states = if states {
            ws.x[..off * h].to_vec()
        } else {
            Vec::new()
        };
        if let Some(p) = prof {
            p.pool += t0.elapsed();
        }
        Ok((out, token_states, accs))
    }

    fn forward_upto(
        &self,
        seqs: &[&[u32]],
        ws: &mut Workspace,
        prof: Option<&mut Profile>,
        n_layers: usize,
    ) -> Result<()> {
        self.forward_keep(seqs, ws, prof, n_layers, &mut [])
    }

    /// [`Self::forward_upto`] that, for each `((a, b), acc)` of `keep`, adds the states after
    /// each of layers `a..=b` (1-based) into `acc` (resized to the packed states' length, zeroed).
    fn forward_keep(
        &self,
        seqs: &[&[u32]],
        ws: &mut Workspace,
        mut prof: Option<&mut Profile>,
        n_layers: usize,
        keep: &mut [((usize, usize), &mut Vec<f32>)],
    ) -> Result<()> {
        let d = self.d;
        let h = d.hidden;
        let total: usize = seqs.iter().map(|s| s.len()).sum();
        let vocab = self.word.len() / h;
        for s in seqs {
            if s.len() + self.pos_offset > d.max_pos {
                return Err(Error::Input(format!(
                    "sentence of {} tokens exceeds the model's {} positions",
                    s.len(),
                    d.max_pos - self.pos_offset
                )));
            }
            if let Some(&bad) = s.iter().find(|&&id| id as usize >= vocab) {
                return Err(Error::Input(format!(
                    "token id {bad} outside the vocabulary"
                )));
            }
        }
        let fw0 = Instant::now();
        let mut mark = Instant::now();
        let mut lap = |slot: fn(&mut Profile) -> &mut Duration, prof: &mut Option<&mut Profile>| {
            if let Some(p) = prof.as_deref_mut() {
                let now = Instant::now();
                *slot(p) += now - mark;
                mark = now;
            }
        };
        ws.x.resize(total * h, 0.0);
        ws.qkv.resize(total * 3 * h, 0.0);
        ws.ctx.resize(total * h, 0.0);
        ws.tmp.resize(total * h, 0.0);
        ws.ff.resize(total * d.inter, 0.0);
        let x = &mut ws.x[..total * h];
        let qkv = &mut ws.qkv[..total * 3 * h];
        let ctx = &mut ws.ctx[..total * h];
        let tmp = &mut ws.tmp[..total * h];
        let ff = &mut ws.ff[..total * d.inter];

        // Embeddings: word + position + token type 0, then LayerNorm.
        let mut row = 0;
        for s in seqs {
            for (p, &id) in s.iter().enumerate() {
                let dst = &mut x[row * h..(row + 1) * h];
                let w = &self.word[id as usize * h..(id as usize + 1) * h];
                let p = p + self.pos_offset;
                let ps = &self.pos[p * h..(p + 1) * h];
                for k in 0..h {
                    dst[k] = (w[k] + self.type0[k]) + ps[k];
                }
                row += 1;
            }
        }
        x.par_chunks_mut(h)
            .for_each(|r| layer_norm_row(r, None, &self.emb_ln, d.eps));
        lap(|p| &mut p.embed, &mut prof);

        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        for (_, acc) in keep.iter_mut() {
            acc.clear();
            acc.resize(total * h, 0.0);
        }
        for (li, layer) in self.layers[..n_layers].iter().enumerate() {
            let mut bufs = LayerBufs {
                x: &mut *x,
                qkv: &mut *qkv,
                ctx: &mut *ctx,
                tmp: &mut *tmp,
                ff: &mut *ff,
            };
            let lin = |which: usize, fp: &Linear, inp: &[f32], m: usize, out: &mut [f32]| {
                self.lin(li, which, fp, inp, m, out)
            };
            layer.forward(
                &d,
                &lens,
                &mut bufs,
                &lin,
                self.rel_bias.as_ref(),
                &mut |slot| lap(slot, &mut prof),
            );
            for ((a, b), acc) in keep.iter_mut() {
                if (*a..=*b).contains(&(li + 1)) {
                    for (s, &v) in acc.iter_mut().zip(x.iter()) {
                        *s += v;
                    }
                }
            }
        }
        if let Some(p) = prof {
            p.forward += fw0.elapsed();
            p.batches += 1;
            p.tokens += total;
        }
        Ok(())
    }
}

#[inline(always)]
fn sum(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let r = ca.remainder();
    for x in ca {
        for i in 0..8 {
            acc[i] += x[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for x in r {
        s += x;
    }
    s
}

/// Mean over each sentence's rows of the packed states `x` (`lens[i]` rows of `h` floats each,
/// sentence after sentence) into `out` (`lens.len() × h`, zeroed; an empty sentence stays
/// zero). Returns the number of rows read.
fn mean_pool(x: &[f32], lens: &[usize], h: usize, out: &mut [f32]) -> usize {
    let mut off = 0;
    for (&n, o) in lens.iter().zip(out.chunks_exact_mut(h)) {
        if n > 0 {
            for row in x[off * h..(off + n) * h].chunks_exact(h) {
                for (a, &v) in o.iter_mut().zip(row) {
                    *a += v;
                }
            }
            let inv = n as f32;
            for a in o.iter_mut() {
                *a /= inv;
            }
        }
        off += n;
    }
    off
}

/// Self-attention of every sentence over its own tokens; `qkv` rows are `[q | k | v]`.
fn attention(
    qkv: &[f32],
    ctx: &mut [f32],
    lens: &[usize],
    heads: usize,
    h: usize,
    bias: Option<&RelBias>,
) {
    // Split the packed rows per sentence so sentences run in parallel with disjoint outputs.
    let mut parts: Vec<(&[f32], &mut [f32])> = Vec::with_capacity(lens.len());
    let (mut q_rest, mut c_rest) = (qkv, ctx);
    for &n in lens {
        let (q, qr) = q_rest.split_at(n * 3 * h);
        let (c, cr) = std::mem::take(&mut c_rest).split_at_mut(n * h);
        parts.push((q, c));
        q_rest = qr;
        c_rest = cr;
    }
    #[cfg(target_arch = "x86_64")]
    if bias.is_none() && h / heads == avx512_attention::HD && avx512_attention::available() {
        parts.into_par_iter().for_each(|(q, c)| {
            // SAFETY: `available()` checked the CPU features the function is compiled for.
            unsafe { avx512_attention::sentence_attention(q, c, heads, h) }
        });
        return;
    }
    parts
        .into_par_iter()
        .for_each(|(q, c)| sentence_attention(q, c, heads, h, bias));
}

/// Attention of one sentence with explicit AVX-512 intrinsics, for a head size of 32 (the
/// encoder's). It does exactly the operations of the portable [`sentence_attention`] in the same
/// order (every score and every context value one sequential sum, separate multiply and add, no
/// FMA; the softmax calls the same `max_of` / `exp` / `sum`), so its output is bit-identical; it
/// only keeps more work in registers: four query rows at a time, scores 16 keys wide over a
/// transposed K, context 32 dimensions wide straight from the V columns of `q`.
#[cfg(target_arch = "x86_64")]
mod avx512_attention {
    use super::max_of;
    use std::arch::x86_64::*;

    /// Head size this kernel handles.
    pub(super) const HD: usize = 32;
    /// Query rows per step.
    const R: usize = 4;

    /// Softmax of the first `n` of the `np` (a multiple of 16) values at `p`, with the same
    /// result bits as `max_of`, `exp` and `sum` of the portable kernel: the maximum does not
    /// depend on the order, [`exp16`] is `exp` lane by lane, and the sum uses `sum`'s eight lanes
    /// and final order. Columns `n..np` are overwritten with values that are never read.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn softmax_row(p: *mut f32, n: usize, np: usize) {
        unsafe {
            let mut m = _mm512_set1_ps(f32::NEG_INFINITY);
            let mut j = 0;
            while j + 16 <= n {
                m = _mm512_max_ps(m, _mm512_loadu_ps(p.add(j)));
                j += 16;
            }
            if j < n {
                let k = ((1u32 << (n - j)) - 1) as __mmask16;
                m = _mm512_mask_max_ps(m, k, m, _mm512_loadu_ps(p.add(j)));
            }
            let mut lanes = [0.0f32; 16];
            _mm512_storeu_ps(lanes.as_mut_ptr(), m);
            let max = max_of(&lanes);
            let vmax = _mm512_set1_ps(max);
            for jb in (0..np).step_by(16) {
                let x = _mm512_sub_ps(_mm512_loadu_ps(p.add(jb)), vmax);
                _mm512_storeu_ps(p.add(jb), exp16(x));
            }
            let full = n / 8 * 8;
            let mut acc = _mm256_setzero_ps();
            for jb in (0..full).step_by(8) {
                acc = _mm256_add_ps(acc, _mm256_loadu_ps(p.add(jb)));
            }
            let mut a = [0.0f32; 8];
            _mm256_storeu_ps(a.as_mut_ptr(), acc);
            let mut total = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
            for jj in full..n {
                total += *p.add(jj);
            }
            let vt = _mm512_set1_ps(total);
            for jb in (0..np).step_by(16) {
                _mm512_storeu_ps(p.add(jb), _mm512_div_ps(_mm512_loadu_ps(p.add(jb)), vt));
            }
        }
    }

    /// [`super::exp`] on 16 lanes: the same operations in the same order (no FMA).
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn exp16(x: __m512) -> __m512 {
        let c = _mm512_set1_ps;
        const MAGIC: f32 = 12_582_912.0;
        let x = _mm512_min_ps(_mm512_max_ps(x, c(-87.0)), c(88.0));
        let t = _mm512_add_ps(_mm512_mul_ps(x, c(std::f32::consts::LOG2_E)), c(MAGIC));
        let n = _mm512_sub_ps(t, c(MAGIC));
        let r = _mm512_sub_ps(
            _mm512_sub_ps(x, _mm512_mul_ps(n, c(0.693_359_4))),
            _mm512_mul_ps(n, c(-2.121_944_4e-4)),
        );
        let mut y = c(1.987_569_1e-4);
        y = _mm512_add_ps(_mm512_mul_ps(y, r), c(1.398_2e-3));
        y = _mm512_add_ps(_mm512_mul_ps(y, r), c(8.333_452e-3));
        y = _mm512_add_ps(_mm512_mul_ps(y, r), c(4.166_579_6e-2));
        y = _mm512_add_ps(_mm512_mul_ps(y, r), c(0.166_666_65));
        y = _mm512_add_ps(_mm512_mul_ps(y, r), c(0.5));
        let y = _mm512_add_ps(
            _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(y, r), r), r),
            c(1.0),
        );
        let ni = _mm512_sub_epi32(
            _mm512_castps_si512(t),
            _mm512_set1_epi32(MAGIC.to_bits() as i32),
        );
        let pow2 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
            ni,
            _mm512_set1_epi32(127),
        )));
        _mm512_mul_ps(y, pow2)
    }

    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }

    /// # Safety
    /// The CPU must support AVX-512F (see [`available`]).
    // Register arrays are indexed by query row on purpose (fully unrolled, kept in registers).
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn sentence_attention(q: &[f32], c: &mut [f32], heads: usize, h: usize) {
        let s3 = 3 * h;
        let n = q.len() / s3;
        assert!(h == heads * HD && q.len() == n * s3 && c.len() == n * h);
        if n == 0 {
            return;
        }
        // Keys padded to whole blocks of 16 (zero columns; their scores are never read).
        let np = n.div_ceil(16) * 16;
        let vscale = _mm512_set1_ps((HD as f32).sqrt());
        let mut kt = vec![0.0f32; HD * np];
        let mut p = vec![0.0f32; R * np];
        let qp = q.as_ptr();
        let cp = c.as_mut_ptr();
        // SAFETY (all pointer arithmetic below): rows are < n, columns within a row stay below
        // `3h` (q) or `h` (c) because `qo + HD <= h`; K-transposed reads stay below `HD * np`
        // and score rows below `R * np` since every key block ends at or before `np`.
        unsafe {
            for head in 0..heads {
                let qo = head * HD;
                let ko = h + qo;
                let vo = 2 * h + qo;
                for j in 0..n {
                    for dd in 0..HD {
                        *kt.get_unchecked_mut(dd * np + j) = *q.get_unchecked(j * s3 + ko + dd);
                    }
                }
                let ktp = kt.as_ptr();
                let mut i = 0;
                while i < n {
                    let rows = (n - i).min(R);
                    // Missing rows of the last step repeat the last row; their results are dropped.
                    let qr: [*const f32; R] =
                        std::array::from_fn(|r| qp.add((i + r.min(rows - 1)) * s3 + qo));
                    let pp = p.as_mut_ptr();
                    let mut jb = 0;
                    while jb + 32 <= np {
                        let mut a = [[_mm512_setzero_ps(); 2]; R];
                        for dd in 0..HD {
                            let k0 = _mm512_loadu_ps(ktp.add(dd * np + jb));
                            let k1 = _mm512_loadu_ps(ktp.add(dd * np + jb + 16));
                            for r in 0..R {
                                let b = _mm512_set1_ps(*qr[r].add(dd));
                                a[r][0] = _mm512_add_ps(a[r][0], _mm512_mul_ps(b, k0));
                                a[r][1] = _mm512_add_ps(a[r][1], _mm512_mul_ps(b, k1));
                            }
                        }
                        for (r, ar) in a.iter().enumerate() {
                            _mm512_storeu_ps(pp.add(r * np + jb), _mm512_div_ps(ar[0], vscale));
                            _mm512_storeu_ps(
                                pp.add(r * np + jb + 16),
                                _mm512_div_ps(ar[1], vscale),
                            );
                        }
                        jb += 32;
                    }
                    if jb < np {
                        let mut a = [_mm512_setzero_ps(); R];
                        for dd in 0..HD {
                            let k0 = _mm512_loadu_ps(ktp.add(dd * np + jb));
                            for r in 0..R {
                                let b = _mm512_set1_ps(*qr[r].add(dd));
                                a[r] = _mm512_add_ps(a[r], _mm512_mul_ps(b, k0));
                            }
                        }
                        for (r, ar) in a.iter().enumerate() {
                            _mm512_storeu_ps(pp.add(r * np + jb), _mm512_div_ps(*ar, vscale));
                        }
                    }
                    for r in 0..rows {
                        softmax_row(pp.add(r * np), n, np);
                    }
                    let pp = p.as_ptr();
                    let mut a = [[_mm512_setzero_ps(); 2]; R];
                    for j in 0..n {
                        let vp = qp.add(j * s3 + vo);
                        let v0 = _mm512_loadu_ps(vp);
                        let v1 = _mm512_loadu_ps(vp.add(16));
                        for r in 0..R {
                            let b = _mm512_set1_ps(*pp.add(r * np + j));
                            a[r][0] = _mm512_add_ps(a[r][0], _mm512_mul_ps(b, v0));
                            a[r][1] = _mm512_add_ps(a[r][1], _mm512_mul_ps(b, v1));
                        }
                    }
                    for (r, ar) in a.iter().enumerate().take(rows) {
                        let o = cp.add((i + r) * h + qo);
                        _mm512_storeu_ps(o, ar[0]);
                        _mm512_storeu_ps(o.add(16), ar[1]);
                    }
                    i += rows;
                }
            }
        }
    }
}

/// Run `f` compiled for AVX2+FMA when the CPU has them, else for the baseline target. Both
/// builds do the same operations in the same order (Rust never contracts `a*b+c` into an FMA on
/// its own), so the results are bit-identical; only the vector width changes.
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn generic($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    generic($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                {
                    // SAFETY: the CPU supports these features (checked just above), the only
                    // requirement of a `#[target_feature]` function.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports AVX2 and FMA (checked just above), the only
                    // requirement of a `#[target_feature]` function.
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

multiversion! {
    /// Attention of one sentence (`q`: its `n` rows of `[q | k | v]`, `c`: its `n × h` context
    /// rows), all heads. Inner loops work on blocks of 8 floats held in registers; every output
    /// is a plain sequential sum, so the result does not depend on the vector width.
    fn sentence_attention(
        q: &[f32],
        c: &mut [f32],
        heads: usize,
        h: usize,
        bias: Option<&RelBias>,
    ) {
        const W: usize = 8;
        const G: usize = 4;
        let hd = h / heads;
        let n = q.len() / (3 * h);
        // Keys padded to whole groups of G·W (zero columns; their scores are never read), so
        // every score is computed in a group of G·W independent chains.
        let np = n.div_ceil(G * W) * (G * W);
        let scale = (hd as f32).sqrt();
        // K of one head transposed (hd × np, zero-padded columns), V (n × hd), two score rows.
        let mut kt = vec![0.0f32; hd * np];
        let mut v = vec![0.0f32; n * hd];
        let mut p = vec![0.0f32; 2 * np];
        for head in 0..heads {
            let qo = head * hd;
            let ko = h + head * hd;
            let vo = 2 * h + head * hd;
            for j in 0..n {
                let row = &q[j * 3 * h..(j + 1) * 3 * h];
                for dd in 0..hd {
                    kt[dd * np + j] = row[ko + dd];
                }
                v[j * hd..(j + 1) * hd].copy_from_slice(&row[vo..vo + hd]);
            }
            // Two query rows at a time: they share every K and V load, and 2·G independent add
            // chains keep the adders busy (one chain is latency-bound). Each score and each
            // context value is still one sequential sum (over the head dimension, over the
            // keys), so the bits do not depend on this grouping. An odd last row runs with a
            // zero partner whose results are dropped.
            let mut i = 0;
            while i < n {
                let pair = i + 1 < n;
                let q0 = &q[i * 3 * h + qo..i * 3 * h + qo + hd];
                let q1 = if pair {
                    &q[(i + 1) * 3 * h + qo..(i + 1) * 3 * h + qo + hd]
                } else {
                    q0
                };
                for jb in (0..np).step_by(G * W) {
                    let mut acc = [[[0.0f32; W]; G]; 2];
                    for dd in 0..hd {
                        let (a0, a1) = (q0[dd], q1[dd]);
                        let base = dd * np + jb;
                        for g in 0..G {
                            let k: &[f32; W] =
                                kt[base + g * W..base + (g + 1) * W].try_into().unwrap();
                            for l in 0..W {
                                acc[0][g][l] += a0 * k[l];
                                acc[1][g][l] += a1 * k[l];
                            }
                        }
                    }
                    for (r, ar) in acc.iter().enumerate() {
                        for (g, a) in ar.iter().enumerate() {
                            let o = r * np + jb + g * W;
                            p[o..o + W].copy_from_slice(a);
                        }
                    }
                }
                for r in 0..2 {
                    let p = &mut p[r * np..r * np + n];
                    for pj in p.iter_mut() {
                        *pj /= scale;
                    }
                    if let Some(b) = bias {
                        if i + r < n {
                            for (pj, &k) in p.iter_mut().zip(b.row(i + r, n)) {
                                *pj += b.table[k as usize * heads + head];
                            }
                        }
                    }
                    let max = max_of(p);
                    for pj in p.iter_mut() {
                        *pj = exp(*pj - max);
                    }
                    let total = sum(p);
                    for pj in p.iter_mut() {
                        *pj /= total;
                    }
                }
                let rows = if pair { 2 } else { 1 };
                if hd.is_multiple_of(G * W) {
                    // Context, G blocks of W dimensions for both rows at once.
                    for db in (0..hd).step_by(G * W) {
                        let mut acc = [[[0.0f32; W]; G]; 2];
                        for j in 0..n {
                            let (p0, p1) = (p[j], p[np + j]);
                            let base = j * hd + db;
                            for g in 0..G {
                                let vv: &[f32; W] =
                                    v[base + g * W..base + (g + 1) * W].try_into().unwrap();
                                for l in 0..W {
                                    acc[0][g][l] += p0 * vv[l];
                                    acc[1][g][l] += p1 * vv[l];
                                }
                            }
                        }
                        for (r, ar) in acc.iter().enumerate().take(rows) {
                            let row = (i + r) * h + qo + db;
                            for (g, a) in ar.iter().enumerate() {
                                c[row + g * W..row + (g + 1) * W].copy_from_slice(a);
                            }
                        }
                    }
                } else {
                    for r in 0..rows {
                        let pr = &p[r * np..r * np + n];
                        let out = &mut c[(i + r) * h + qo..(i + r) * h + qo + hd];
                        out.fill(0.0);
                        for (j, &pj) in pr.iter().enumerate() {
                            for (o, &vv) in out.iter_mut().zip(&v[j * hd..(j + 1) * hd]) {
                                *o += pj * vv;
                            }
                        }
                    }
                }
                i += rows;
            }
        }
    }
}

/// Largest element (8 lanes, vectorises; NaN-free input).
#[inline(always)]
fn max_of(a: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = a.chunks_exact(8);
    let rem = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for &v in acc.iter().chain(rem) {
        m = if v > m { v } else { m };
    }
    m
}

/// `exp(x)` for f32 (Cephes' polynomial, about 1 ulp on the range used here), branch-free so it
/// vectorises. Inputs below -87 give ~0, as `f32::exp` does up to denormals.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // n = round(x / ln 2) with the 1.5·2^23 trick (vectorises without SSE4.1's roundps).
    const MAGIC: f32 = 12_582_912.0;
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut y = 1.987_569_1e-4_f32;
    y = y * r + 1.398_2e-3;
    y = y * r + 8.333_452e-3;
    y = y * r + 4.166_579_6e-2;
    y = y * r + 0.166_666_65;
    y = y * r + 0.5;
    let y = y * r * r + r + 1.0;
    // 2^n from the bits: `t`'s mantissa holds n (two's complement) above MAGIC's, so this is
    // integer arithmetic only (an `as i32` cast would saturate and block vectorisation).
    let ni = t.to_bits().wrapping_sub(MAGIC.to_bits());
    let pow2 = f32::from_bits(ni.wrapping_add(127) << 23);
    y * pow2
}

multiversion! {
    /// `row = LayerNorm(row + add)` (two-pass mean / variance over the row).
    fn layer_norm_row(row: &mut [f32], add: Option<&[f32]>, ln: &LayerNorm, eps: f32) {
        if let Some(add) = add {
            for (r, &a) in row.iter_mut().zip(add) {
                *r += a;
            }
        }
        let n = row.len() as f32;
        let mean = sum(row) / n;
        let mut acc = [0.0f32; 8];
        let chunks = row.chunks_exact(8);
        let rem = chunks.remainder();
        for c in chunks {
            for i in 0..8 {
                let v = c[i] - mean;
                acc[i] += v * v;
            }
        }
        let mut ss = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for &v in rem {
            ss += (v - mean) * (v - mean);
        }
        let inv = 1.0 / (ss / n + eps).sqrt();
        for ((r, &g), &b) in row.iter_mut().zip(&ln.gamma).zip(&ln.beta) {
            *r = (*r - mean) * inv * g + b;
        }
    }
}

/// `erf(x)` for f32: the rational approximation used by Eigen / XLA (max error a few ulp in
/// f32), branch-free so it vectorises.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024_e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_600_1e-3;
    p = p * x2 + -1.609_603_3e-2;
    let p = p * x;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329_2e-3;
    q = q * x2 + -1.426_474e-2;
    p / q
}

multiversion! {
    /// BERT's GELU: `x/2 · (1 + erf(x/√2))`.
    fn gelu_in_place(row: &mut [f32]) {
        for v in row.iter_mut() {
            let x = *v;
            *v = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 16-lane exp of the AVX-512 attention gives `exp`'s bits, clamped ends included.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_exp_is_bit_identical_to_exp() {
        if !avx512_attention::available() {
            eprintln!("skipping: CPU without AVX-512F");
            return;
        }
        use std::arch::x86_64::*;
        let mut xs: Vec<f32> = (0..200_000).map(|i| -100.0 + i as f32 * 0.000_95).collect();
        xs.extend([
            0.0,
            -0.0,
            -87.0,
            88.0,
            -1e30,
            1e30,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
        ]);
        xs.resize(xs.len().div_ceil(16) * 16, 0.5);
        for ch in xs.chunks_exact(16) {
            let mut got = [0.0f32; 16];
            // SAFETY: AVX-512F checked above; loads and stores of 16 floats in bounds.
            unsafe {
                _mm512_storeu_ps(
                    got.as_mut_ptr(),
                    avx512_attention::exp16(_mm512_loadu_ps(ch.as_ptr())),
                )
            };
            for (x, g) in ch.iter().zip(got) {
                assert_eq!(exp(*x).to_bits(), g.to_bits(), "x = {x}");
            }
        }
    }

    /// The AVX-512 attention kernel gives the same bits as the portable one, for sentence
    /// lengths around every block edge (1..=70 tokens: partial query steps, 16-key tails).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_attention_is_bit_identical_to_the_portable_one() {
        if !avx512_attention::available() {
            eprintln!("skipping: CPU without AVX-512F");
            return;
        }
        let (heads, h) = (3, 3 * avx512_attention::HD);
        // Deterministic pseudo-random inputs (xorshift), values in about [-4, 4).
        let mut state = 0x9e37_79b9_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 8) as f32 / (1u32 << 21) as f32 - 4.0
        };
        for n in 1..=70 {
            let q: Vec<f32> = (0..n * 3 * h).map(|_| next()).collect();
            let mut want = vec![f32::NAN; n * h];
            let mut got = vec![f32::NAN; n * h];
            sentence_attention(&q, &mut want, heads, h, None);
            // SAFETY: AVX-512F checked above.
            unsafe { avx512_attention::sentence_attention(&q, &mut got, heads, h) };
            let w: Vec<u32> = want.iter().map(|x| x.to_bits()).collect();
            let g: Vec<u32> = got.iter().map(|x| x.to_bits()).collect();
            assert_eq!(w, g, "n = {n}");
        }
    }

    #[test]
    fn int8_quantised_at_load_equals_quantised_after_an_fp32_load() {
        let Some(dir) = super::super::fetched_encoder_dir() else {
            return;
        };
        let weights = dir.join("model.safetensors");
        let cfg = EncoderConfig::read(&dir.join("config.json")).unwrap();
        let bytes = std::fs::read(&weights).unwrap();
        let direct = FastBert::from_bytes(&bytes, &weights, &cfg, true).unwrap();
        let mut after = FastBert::load(&weights, &cfg).unwrap();
        after.quantize_int8();
        assert!(direct.is_int8() && after.is_int8());
        // Token ids of two short sentences (CLS ... SEP), any valid ids will do.
        let a: Vec<u32> = vec![101, 7592, 2088, 2003, 1037, 3231, 1012, 102];
        let b: Vec<u32> = vec![101, 2023, 2003, 2178, 102];
        let seqs: Vec<&[u32]> = vec![&a, &b];
        let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(direct.token_states(&seqs).unwrap()),
            bits(after.token_states(&seqs).unwrap())
        );
    }

    #[test]
    fn exp_matches_std() {
        let mut worst = 0.0f32;
        let mut x = -80.0f32;
        while x <= 0.0 {
            let (got, want) = (exp(x), x.exp());
            worst = worst.max((got - want).abs() / want.max(f32::MIN_POSITIVE));
            x += 0.001_3;
        }
        assert!(worst < 4e-7, "relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) < 1e-37);
    }

    #[test]
    fn erf_matches_a_reference() {
        // Reference values of erf (f64, from a table / high-precision evaluation).
        let cases = [
            (0.0, 0.0),
            (0.1, 0.112_462_916_018_284_9),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (1.5, 0.966_105_146_475_310_7),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
            (5.0, 1.0),
        ];
        for (x, want) in cases {
            for sign in [1.0f64, -1.0] {
                let got = erf((sign * x) as f32) as f64;
                assert!((got - sign * want).abs() < 1e-6, "erf({x}) = {got}");
            }
        }
    }
}
