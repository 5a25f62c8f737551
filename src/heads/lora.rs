//! What the tuned loaded-language head ([`super::tuned`]) needs to score: the top encoder
//! layers and logistic head as plain vectors ([`FastTop`]), their low-rank adapters and the
//! merge `W + s·B·A` ([`Lora`]), the names of a BERT layer's tensors, and reading those layers
//! from an encoder's checkpoint ([`TunedTop::from_encoder`]). Training (the passes, the
//! optimiser, the loops) lives in `crate::train::{fastgrad, tune, lora}`, which add their own
//! `impl` blocks to these types.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;

use crate::encode::f32mm::{matmul_bias, Kernel, PackedW};
use crate::{Error, Result};

/// The names of one BERT layer's tensors, relative to `encoder.layer.{l}.`.
pub const LAYER_TENSORS: [&str; 16] = [
    "attention.self.query.weight",
    "attention.self.query.bias",
    "attention.self.key.weight",
    "attention.self.key.bias",
    "attention.self.value.weight",
    "attention.self.value.bias",
    "attention.output.dense.weight",
    "attention.output.dense.bias",
    "attention.output.LayerNorm.weight",
    "attention.output.LayerNorm.bias",
    "intermediate.dense.weight",
    "intermediate.dense.bias",
    "output.dense.weight",
    "output.dense.bias",
    "output.LayerNorm.weight",
    "output.LayerNorm.bias",
];

/// Indices, in [`LAYER_TENSORS`], of the weight matrices that get adapters.
pub const TARGETS: [usize; 6] = [0, 2, 4, 6, 10, 12];

/// Top layers and head as plain f32 vectors; layer tensors in
/// [`LAYER_TENSORS`] order, weights `[out × in]` as in the checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct FastTop {
    pub hidden: usize,
    pub inter: usize,
    pub heads: usize,
    pub eps: f32,
    pub layers: Vec<Vec<Vec<f32>>>,
    pub head_w: Vec<f32>,
    pub head_b: f32,
}

impl FastTop {
    /// Number of tuned layers.
    pub fn k(&self) -> usize {
        self.layers.len()
    }

    /// The logistic head's raw logit on one mean-pooled vector.
    pub fn head_logit(&self, pooled: &[f32]) -> f32 {
        pooled
            .iter()
            .zip(&self.head_w)
            .map(|(a, b)| a * b)
            .sum::<f32>()
            + self.head_b
    }
}

pub(crate) fn mm(x: &[f32], m: usize, w: &PackedW, bias: Option<&[f32]>) -> Vec<f32> {
    let n = w.n();
    let zeros;
    let b = match bias {
        Some(b) => b,
        None => {
            zeros = vec![0f32; n];
            &zeros
        }
    };
    let mut out = vec![0f32; m * n];
    matmul_bias(Kernel::detect(), x, m, w, b, &mut out);
    out
}

/// Frozen top layers, their adapters and a logistic head.
#[derive(Debug, Clone, PartialEq)]
pub struct Lora {
    /// The pretrained layers (never changed) and the head (trained).
    pub base: FastTop,
    pub rank: usize,
    pub alpha: f32,
    /// `a[layer][target]`: `[rank × in]`, row-major.
    pub a: Vec<Vec<Vec<f32>>>,
    /// `b[layer][target]`: `[out × rank]`, row-major.
    pub b: Vec<Vec<Vec<f32>>>,
}

impl Lora {
    /// Adapters of rank `rank` on every layer of `base`, initialised from `seed`; the head is
    /// re-initialised (small uniform, as `train::tune::train_top`).
    pub fn new(mut base: FastTop, rank: usize, alpha: f32, seed: u64) -> Result<Self> {
        if rank == 0 {
            return Err(Error::Input("LoRA rank must be at least 1".into()));
        }
        let mut rng = crate::stats::rng(seed);
        let h = base.hidden;
        let bound = (1.0 / h as f32).sqrt();
        base.head_w = (0..h).map(|_| rng.gen_range(-bound..bound)).collect();
        base.head_b = 0.0;
        let mut a = Vec::new();
        let mut b = Vec::new();
        for _ in 0..base.k() {
            let (mut la, mut lb) = (Vec::new(), Vec::new());
            for t in TARGETS {
                let (out, inp) = dims(&base, t);
                let bound = 1.0 / (inp as f32).sqrt();
                la.push(
                    (0..rank * inp)
                        .map(|_| rng.gen_range(-bound..bound))
                        .collect(),
                );
                lb.push(vec![0f32; out * rank]);
            }
            a.push(la);
            b.push(lb);
        }
        Ok(Self {
            base,
            rank,
            alpha,
            a,
            b,
        })
    }

    /// The uniform "soup" of `models` (same base layers, same rank and scale): one model whose
    /// merged weights are the mean of theirs, `W + (1/N)·Σ s·Bⱼ·Aⱼ`, and whose head is the mean
    /// of their heads. Its adapters are theirs side by side (rank `N·r`, `B` scaled by `1/N`),
    /// so it merges into the same layers and costs the same at inference as one of them.
    pub fn soup(models: &[Lora]) -> Result<Lora> {
        let first = models
            .first()
            .ok_or_else(|| Error::Input("a soup needs at least one model".into()))?;
        if models.iter().any(|m| {
            m.rank != first.rank || m.scale() != first.scale() || m.base.layers != first.base.layers
        }) {
            return Err(Error::Input(
                "soup members must share base layers, rank and scale".into(),
            ));
        }
        let n = models.len();
        let r = first.rank;
        let nf = n as f32;
        let mut out = first.clone();
        out.rank = n * r;
        out.alpha = first.scale() * (n * r) as f32;
        for l in 0..first.a.len() {
            for j in 0..TARGETS.len() {
                // A: the members' rows stacked; B: their columns side by side, scaled by 1/N.
                out.a[l][j] = models
                    .iter()
                    .flat_map(|m| m.a[l][j].iter().copied())
                    .collect();
                let rows = first.b[l][j].len() / r;
                let mut b = Vec::with_capacity(rows * n * r);
                for o in 0..rows {
                    for m in models {
                        b.extend(m.b[l][j][o * r..(o + 1) * r].iter().map(|v| v / nf));
                    }
                }
                out.b[l][j] = b;
            }
        }
        out.base.head_w = (0..first.base.head_w.len())
            .map(|i| models.iter().map(|m| m.base.head_w[i]).sum::<f32>() / nf)
            .collect();
        out.base.head_b = models.iter().map(|m| m.base.head_b).sum::<f32>() / nf;
        Ok(out)
    }

    /// The scale `s = alpha / rank`.
    pub fn scale(&self) -> f32 {
        self.alpha / self.rank as f32
    }

    /// Number of trained parameters in the adapters (the head not counted).
    pub fn adapter_params(&self) -> usize {
        self.a
            .iter()
            .chain(&self.b)
            .flat_map(|l| l.iter().map(Vec::len))
            .sum()
    }

    /// `s·B·A` of layer `l`, target `j` (`[out × in]`).
    fn delta(&self, l: usize, j: usize) -> Vec<f32> {
        let (out, inp) = dims(&self.base, TARGETS[j]);
        let r = self.rank;
        // `mm(x, m, pack(M, k, n))` is `x · M` for `M` `[k × n]`.
        let mut d = mm(
            &self.b[l][j],
            out,
            &PackedW::pack(&self.a[l][j], r, inp),
            None,
        );
        let s = self.scale();
        d.iter_mut().for_each(|v| *v *= s);
        d
    }

    /// The layers with the adapters merged in (`W + s·B·A`) and the head: what inference runs.
    pub fn merged(&self) -> FastTop {
        let mut m = self.base.clone();
        for l in 0..m.k() {
            for (j, &t) in TARGETS.iter().enumerate() {
                let d = self.delta(l, j);
                m.layers[l][t].iter_mut().zip(&d).for_each(|(w, d)| *w += d);
            }
        }
        m
    }
}

/// `(out, in)` of layer tensor `t`.
pub(crate) fn dims(m: &FastTop, t: usize) -> (usize, usize) {
    match t {
        0 | 2 | 4 | 6 => (m.hidden, m.hidden),
        10 => (m.inter, m.hidden),
        12 => (m.hidden, m.inter),
        _ => unreachable!("tensor {t} is not an adapter target"),
    }
}

/// One BERT layer as trainable variables (weights `[out × in]` as in the checkpoint).
#[derive(Debug, Clone)]
pub(crate) struct TLayer {
    pub(crate) t: Vec<Var>,
}

/// Top encoder layers plus a logistic head on their mean-pooled output.
#[derive(Debug, Clone)]
pub struct TunedTop {
    /// Index of the first tuned layer (the frozen bottom has this many layers).
    pub first_layer: usize,
    pub(crate) layers: Vec<TLayer>,
    pub(crate) head_w: Var,
    pub(crate) head_b: Var,
    pub(crate) heads: usize,
    pub(crate) eps: f64,
    /// Decision threshold on the probability.
    pub threshold: f32,
    /// Temperature dividing the logit before the sigmoid (calibration; 1 = none).
    pub temperature: f32,
}

impl TunedTop {
    /// The pretrained layers `first_layer..first_layer + k` of `model.safetensors` in `dir`,
    /// with a zero head.
    pub fn from_encoder(dir: &Path, first_layer: usize, k: usize) -> Result<Self> {
        let cfg = crate::encode::config::EncoderConfig::read(&dir.join("config.json"))?;
        let (heads, eps, hidden) = (cfg.num_attention_heads, cfg.layer_norm_eps, cfg.hidden_size);
        let path = dir.join("model.safetensors");
        let st = candle_core::safetensors::load(&path, &Device::Cpu)?;
        let prefix = if st.contains_key("embeddings.word_embeddings.weight") {
            ""
        } else {
            "bert."
        };
        let mut layers = Vec::new();
        for l in first_layer..first_layer + k {
            let mut t = Vec::new();
            for name in LAYER_TENSORS {
                let full = format!("{prefix}encoder.layer.{l}.{name}");
                let x = st
                    .get(&full)
                    .ok_or_else(|| Error::bad_model(&path, format!("no tensor {full}")))?;
                t.push(Var::from_tensor(&x.to_dtype(DType::F32)?)?);
            }
            layers.push(TLayer { t });
        }
        Ok(Self {
            first_layer,
            layers,
            head_w: Var::from_tensor(&Tensor::zeros(hidden, DType::F32, &Device::Cpu)?)?,
            head_b: Var::from_tensor(&Tensor::zeros(1, DType::F32, &Device::Cpu)?)?,
            heads,
            eps,
            threshold: 0.5,
            temperature: 1.0,
        })
    }

    /// The tuned layers' weights as f32, per layer in [`LAYER_TENSORS`] order (for the fast
    /// engine).
    pub fn layer_weights(&self) -> Result<Vec<Vec<Vec<f32>>>> {
        self.layers
            .iter()
            .map(|l| {
                l.t.iter()
                    .map(|v| Ok(v.as_tensor().flatten_all()?.to_vec1::<f32>()?))
                    .collect()
            })
            .collect()
    }

    /// The head: weights and bias.
    pub fn head(&self) -> Result<(Vec<f32>, f32)> {
        Ok((
            self.head_w.as_tensor().to_vec1::<f32>()?,
            self.head_b.as_tensor().to_vec1::<f32>()?[0],
        ))
    }

    /// The same layers and head as plain vectors, for the fast engine.
    pub fn to_fast(&self) -> Result<FastTop> {
        let layers = self.layer_weights()?;
        let (head_w, head_b) = self.head()?;
        let inter = layers.first().map_or(0, |l| l[11].len());
        Ok(FastTop {
            hidden: head_w.len(),
            inter,
            heads: self.heads,
            eps: self.eps as f32,
            layers,
            head_w,
            head_b,
        })
    }
}

pub(crate) fn serialize(
    tensors: &[(String, Tensor)],
    meta: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    use safetensors::tensor::Dtype;
    let raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| -> Result<_> {
            let (dt, bytes) = match t.dtype() {
                DType::F16 => (
                    Dtype::F16,
                    t.flatten_all()?
                        .to_vec1::<half::f16>()?
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect(),
                ),
                _ => (
                    Dtype::F32,
                    t.flatten_all()?
                        .to_vec1::<f32>()?
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect(),
                ),
            };
            Ok((n.clone(), dt, t.dims().to_vec(), bytes))
        })
        .collect::<Result<_>>()?;
    // Written by hand (the safetensors layout: u64 header length, JSON header, data) so that
    // the header's keys are sorted and the file is byte-identical for identical weights.
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".into(),
        serde_json::to_value(meta.iter().collect::<std::collections::BTreeMap<_, _>>())
            .map_err(|e| Error::Internal(e.to_string()))?,
    );
    let mut sorted: Vec<&(String, Dtype, Vec<usize>, Vec<u8>)> = raw.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut off = 0usize;
    for (n, dt, shape, b) in &sorted {
        header.insert(
            n.clone(),
            serde_json::json!({
                "dtype": if *dt == Dtype::F16 { "F16" } else { "F32" },
                "shape": shape,
                "data_offsets": [off, off + b.len()],
            }),
        );
        off += b.len();
    }
    let mut h = serde_json::to_vec(&header).map_err(|e| Error::Internal(e.to_string()))?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + off);
    out.extend((h.len() as u64).to_le_bytes());
    out.extend(h);
    for (_, _, _, b) in sorted {
        out.extend(b);
    }
    Ok(out)
}
