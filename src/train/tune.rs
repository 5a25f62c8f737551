//! Fine-tuning the top encoder layers together with a sentence head.
//!
//! The frozen bottom of the encoder runs once per sentence on the fast engine
//! ([`crate::encode::Encoder::states_after`]); the top `k` BERT layers are rebuilt here from
//! ordinary candle tensor ops (matmul, softmax from exp/sum, LayerNorm from mean/variance, erf
//! GELU, a hand-made seeded dropout), so every weight gets a gradient: candle-nn's fused
//! LayerNorm has no backward pass and its dropout does nothing. The pretrained weights of those
//! layers are the starting point; [`train_top`] trains them and a logistic head on the mean of
//! the top layer's token states with AdamW (lower learning rate for the layers than for the
//! head, linear warm-up and decay), seeded, early-stopped on a development split.
//!
//! [`TunedTop`] holds the result; `save` writes the layers as fp16 (a few MB) and the head as
//! f32 into one safetensors file.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::Rng;

use crate::heads::lora::serialize;
use crate::heads::lora::TLayer;
use crate::heads::lora::{FastTop, TunedTop, LAYER_TENSORS};
use crate::{Error, Result};

/// Hyper-parameters of [`train_top`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct TuneOpts {
    /// Number of top layers tuned.
    pub layers: usize,
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate of the layers.
    pub lr_layers: f64,
    /// Peak learning rate of the head.
    pub lr_head: f64,
    pub weight_decay: f64,
    /// Dropout on the attention output, the feed-forward output and the pooled vector.
    pub dropout: f32,
    pub seed: u64,
    /// Which implementation computes the forward and backward passes.
    pub engine: TuneEngine,
}

/// The implementation of [`train_top`]'s forward and backward passes: both train the same
/// model (with dropout 0 the same weights up to rounding; with dropout the masks are drawn
/// from the same seeded generator but over different layouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TuneEngine {
    /// Hand-written backward on packed tokens ([`super::fastgrad`]).
    #[default]
    Fast,
    /// candle tensor ops and candle autograd on padded batches (the reference).
    Candle,
}

impl Default for TuneOpts {
    fn default() -> Self {
        Self {
            layers: 2,
            epochs: 4,
            batch_size: 32,
            lr_layers: 5e-5,
            lr_head: 1e-3,
            weight_decay: 1e-2,
            dropout: 0.1,
            seed: 13,
            engine: TuneEngine::Fast,
        }
    }
}

/// A hand-made dropout: a seeded keep-mask scaled by `1/(1-p)`.
fn dropout(x: &Tensor, p: f32, rng: &mut impl Rng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let n = x.elem_count();
    let scale = 1.0 / (1.0 - p);
    let m: Vec<f32> = (0..n)
        .map(|_| if rng.gen::<f32>() < p { 0.0 } else { scale })
        .collect();
    let m = Tensor::from_vec(m, x.shape(), x.device())?;
    Ok((x * m)?)
}

/// LayerNorm over the last dimension from mean and variance (differentiable).
fn layer_norm(x: &Tensor, g: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let xn = xc.broadcast_div(&(var + eps)?.sqrt()?)?;
    Ok(xn.broadcast_mul(g)?.broadcast_add(b)?)
}

/// `x · wᵀ + b` for `x` of shape `[B, T, in]` and `w` of shape `[out, in]`.
fn dense(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_matmul(&w.t()?)?.broadcast_add(b)?)
}

impl TLayer {
    fn forward(
        &self,
        x: &Tensor,
        bias: &Tensor,
        heads: usize,
        eps: f64,
        drop: &mut Option<(f32, &mut rand_chacha::ChaCha8Rng)>,
    ) -> Result<Tensor> {
        let t: Vec<&Tensor> = self.t.iter().map(Var::as_tensor).collect();
        let (b, n, h) = x.dims3()?;
        let dh = h / heads;
        let split = |y: Tensor| -> Result<Tensor> {
            Ok(y.reshape((b, n, heads, dh))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = split(dense(x, t[0], t[1])?)?;
        let k = split(dense(x, t[2], t[3])?)?;
        let v = split(dense(x, t[4], t[5])?)?;
        let scores = (q.matmul(&k.t()?.contiguous()?)? / (dh as f64).sqrt())?;
        let scores = scores.broadcast_add(bias)?;
        let max = scores.max_keepdim(D::Minus1)?.detach();
        let e = scores.broadcast_sub(&max)?.exp()?;
        let probs = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
        let ctx = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, n, h))?;
        let mut a = dense(&ctx, t[6], t[7])?;
        if let Some((p, rng)) = drop.as_mut() {
            a = dropout(&a, *p, *rng)?;
        }
        let x1 = layer_norm(&(x + a)?, t[8], t[9], eps)?;
        let f = dense(&x1, t[10], t[11])?.gelu_erf()?;
        let mut f = dense(&f, t[12], t[13])?;
        if let Some((p, rng)) = drop.as_mut() {
            f = dropout(&f, *p, *rng)?;
        }
        layer_norm(&(x1 + f)?, t[14], t[15], eps)
    }
}

/// A padded batch: states `[B, T, H]`, mask `[B, T]` (1 real, 0 pad) and its attention bias.
pub struct Batch {
    pub x: Tensor,
    pub mask: Tensor,
    bias: Tensor,
}

impl Batch {
    /// Pad the token states of `rows` (each `n_tokens × hidden` floats).
    pub fn new(rows: &[&[f32]], hidden: usize) -> Result<Self> {
        let b = rows.len();
        let t = rows
            .iter()
            .map(|r| r.len() / hidden)
            .max()
            .unwrap_or(0)
            .max(1);
        let mut x = vec![0f32; b * t * hidden];
        let mut m = vec![0f32; b * t];
        for (i, r) in rows.iter().enumerate() {
            let n = r.len() / hidden;
            x[i * t * hidden..i * t * hidden + r.len()].copy_from_slice(r);
            for v in &mut m[i * t..i * t + n] {
                *v = 1.0;
            }
        }
        let dev = Device::Cpu;
        let mask = Tensor::from_vec(m, (b, t), &dev)?;
        // Padded keys get a large negative score: exp underflows to exactly 0.
        let bias = ((mask.clone() - 1.0)? * 1e9)?.reshape((b, 1, 1, t))?;
        Ok(Self {
            x: Tensor::from_vec(x, (b, t, hidden), &dev)?,
            mask,
            bias,
        })
    }
}

impl TunedTop {
    /// Number of tuned layers.
    pub fn k(&self) -> usize {
        self.layers.len()
    }

    /// Hidden size.
    pub fn hidden(&self) -> usize {
        self.head_w.as_tensor().dims1().unwrap_or(0)
    }

    pub(crate) fn vars_layers(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|l| l.t.iter().cloned())
            .collect()
    }

    /// Token states after the tuned layers, `[B, T, H]`.
    pub fn top_states(
        &self,
        batch: &Batch,
        mut drop: Option<(f32, &mut rand_chacha::ChaCha8Rng)>,
    ) -> Result<Tensor> {
        let mut x = batch.x.clone();
        for l in &self.layers {
            x = l.forward(&x, &batch.bias, self.heads, self.eps, &mut drop)?;
        }
        Ok(x)
    }

    pub(crate) fn logits_t(
        &self,
        batch: &Batch,
        mut drop: Option<(f32, &mut rand_chacha::ChaCha8Rng)>,
    ) -> Result<Tensor> {
        let x = self.top_states(batch, drop.as_mut().map(|(p, r)| (*p, &mut **r)))?;
        let m = batch.mask.unsqueeze(2)?;
        let sum = x.broadcast_mul(&m)?.sum(1)?;
        let mut pooled = sum.broadcast_div(&batch.mask.sum_keepdim(1)?)?;
        if let Some((p, rng)) = drop {
            pooled = dropout(&pooled, p, rng)?;
        }
        Ok(pooled
            .matmul(&self.head_w.as_tensor().unsqueeze(1)?)?
            .squeeze(1)?
            .broadcast_add(self.head_b.as_tensor())?)
    }

    /// Raw logits (no temperature) of sentences given by their bottom states, in input order.
    pub fn logits(&self, states: &[&[f32]], batch_size: usize) -> Result<Vec<f32>> {
        let h = self.hidden();
        let mut order: Vec<usize> = (0..states.len()).collect();
        order.sort_by_key(|&i| (states[i].len(), i));
        let mut out = vec![0f32; states.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            let rows: Vec<&[f32]> = chunk.iter().map(|&i| states[i]).collect();
            let z = self
                .logits_t(&Batch::new(&rows, h)?, None)?
                .to_vec1::<f32>()?;
            for (&i, v) in chunk.iter().zip(z) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// [`Self::logits`] computed by `engine` (the fast forward gives the same logits up to
    /// rounding, several times faster).
    pub fn logits_on(
        &self,
        states: &[&[f32]],
        batch_size: usize,
        engine: TuneEngine,
    ) -> Result<Vec<f32>> {
        match engine {
            TuneEngine::Candle => self.logits(states, batch_size),
            TuneEngine::Fast => {
                let h = self.hidden();
                if let Some(r) = states.iter().find(|r| r.is_empty() || r.len() % h != 0) {
                    return Err(Error::Training(format!(
                        "a sentence of {} floats is not a whole number (≥ 1) of {h}-wide token \
                         states",
                        r.len()
                    )));
                }
                Ok(sorted_logits(&self.to_fast()?, states, batch_size))
            }
        }
    }

    /// Calibrated probabilities: `sigmoid(logit / temperature)`.
    pub fn probs(&self, states: &[&[f32]], batch_size: usize) -> Result<Vec<f32>> {
        Ok(self
            .logits(states, batch_size)?
            .into_iter()
            .map(|z| sigmoid(z / self.temperature))
            .collect())
    }

    fn snapshot(&self) -> Result<Vec<Tensor>> {
        let mut v: Vec<Tensor> = self
            .vars_layers()
            .iter()
            .map(|v| v.as_tensor().copy())
            .collect::<candle_core::Result<_>>()?;
        v.push(self.head_w.as_tensor().copy()?);
        v.push(self.head_b.as_tensor().copy()?);
        Ok(v)
    }

    fn restore(&self, snap: &[Tensor]) -> Result<()> {
        let mut vars = self.vars_layers();
        vars.push(self.head_w.clone());
        vars.push(self.head_b.clone());
        for (v, t) in vars.iter().zip(snap) {
            v.set(t)?;
        }
        Ok(())
    }

    /// Save as safetensors: tuned layers fp16 under `encoder.layer.{l}.…`, head f32, and the
    /// metadata (first layer, threshold, temperature, plus `meta`).
    pub fn save(&self, path: &Path, meta: &HashMap<String, String>) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = Vec::new();
        for (j, l) in self.layers.iter().enumerate() {
            for (name, v) in LAYER_TENSORS.iter().zip(&l.t) {
                tensors.push((
                    format!("encoder.layer.{}.{name}", self.first_layer + j),
                    v.as_tensor().to_dtype(DType::F16)?,
                ));
            }
        }
        tensors.push(("head.weight".into(), self.head_w.as_tensor().clone()));
        tensors.push(("head.bias".into(), self.head_b.as_tensor().clone()));
        let mut m = meta.clone();
        m.insert("kind".into(), "tuned-top".into());
        m.insert("first_layer".into(), self.first_layer.to_string());
        m.insert("layers".into(), self.k().to_string());
        m.insert("heads".into(), self.heads.to_string());
        m.insert("eps".into(), format!("{:e}", self.eps));
        m.insert("threshold".into(), self.threshold.to_string());
        m.insert("temperature".into(), self.temperature.to_string());
        let bytes = serialize(&tensors, &m)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
    }

    /// Load a file written by [`Self::save`]; returns the model and its metadata.
    pub fn load(path: &Path) -> Result<(Self, HashMap<String, String>)> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        crate::encode::files::check_safetensors(path, &bytes)?;
        let (_, md) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error::bad_model(path, e))?;
        let meta: HashMap<String, String> = md.metadata().clone().unwrap_or_default();
        let bad = |what: &str| Error::bad_model(path, format!("bad or missing {what}"));
        if meta.get("kind").map(String::as_str) != Some("tuned-top") {
            return Err(bad("kind (expected tuned-top)"));
        }
        let num = |k: &str| -> Result<f64> {
            meta.get(k)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| bad(k))
        };
        let first_layer = num("first_layer")? as usize;
        let k = num("layers")? as usize;
        let st = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
        let get = |n: &str| -> Result<Tensor> {
            Ok(st.get(n).ok_or_else(|| bad(n))?.to_dtype(DType::F32)?)
        };
        let mut layers = Vec::new();
        for l in first_layer..first_layer + k {
            let mut t = Vec::new();
            for name in LAYER_TENSORS {
                t.push(Var::from_tensor(&get(&format!(
                    "encoder.layer.{l}.{name}"
                ))?)?);
            }
            layers.push(TLayer { t });
        }
        Ok((
            Self {
                first_layer,
                layers,
                head_w: Var::from_tensor(&get("head.weight")?)?,
                head_b: Var::from_tensor(&get("head.bias")?)?,
                heads: num("heads")? as usize,
                eps: num("eps")?,
                threshold: num("threshold")? as f32,
                temperature: num("temperature")? as f32,
            },
            meta,
        ))
    }

    /// Set every weight from `f` (same shapes as [`Self::to_fast`] gives).
    pub fn set_from_fast(&self, f: &FastTop) -> Result<()> {
        if f.layers.len() != self.layers.len() {
            return Err(Error::Internal(format!(
                "{} fast layers for {} tuned layers",
                f.layers.len(),
                self.layers.len()
            )));
        }
        for (l, fl) in self.layers.iter().zip(&f.layers) {
            for (v, w) in l.t.iter().zip(fl) {
                v.set(&Tensor::from_vec(
                    w.clone(),
                    v.as_tensor().shape(),
                    &Device::Cpu,
                )?)?;
            }
        }
        self.head_w.set(&Tensor::from_vec(
            f.head_w.clone(),
            f.head_w.len(),
            &Device::Cpu,
        )?)?;
        self.head_b
            .set(&Tensor::from_vec(vec![f.head_b], 1, &Device::Cpu)?)?;
        Ok(())
    }

    /// The candle engine's training pass on one batch: forward, mean cross-entropy, backward
    /// (gradients discarded). Returns the loss. For benchmarks against
    /// [`FastTop::loss_and_grads`].
    pub fn candle_loss_and_backward(
        &self,
        rows: &[&[f32]],
        y: &[bool],
        drop: Option<(f32, &mut rand_chacha::ChaCha8Rng)>,
    ) -> Result<f32> {
        let batch = Batch::new(rows, self.hidden())?;
        let yb: Vec<f32> = y.iter().map(|&v| v as u8 as f32).collect();
        let yb = Tensor::from_vec(yb, y.len(), &Device::Cpu)?;
        let z = self.logits_t(&batch, drop)?;
        let loss = super::bce_with_logits(&z, &yb)?;
        let _ = loss.backward()?;
        Ok(loss.to_scalar::<f32>()?)
    }
}

/// A seeded sample of at most `n` items, in their original order.
pub fn sample<T>(items: Vec<T>, n: usize, seed: u64) -> Vec<T> {
    if items.len() <= n {
        return items;
    }
    let mut idx: Vec<usize> = (0..items.len()).collect();
    idx.shuffle(&mut crate::stats::rng(seed));
    let mut keep = vec![false; items.len()];
    for &i in &idx[..n] {
        keep[i] = true;
    }
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(x, k)| k.then_some(x))
        .collect()
}

use crate::heads::math::sigmoid;

/// Train `model` (layers + head) on bottom states `x` with labels `y`; after each epoch the
/// development loss picks the best epoch (its weights are kept). Returns the per-epoch
/// development losses. `opts.engine` picks the implementation of the passes; the schedule,
/// batches and head initialisation are the same for both.
pub fn train_top(
    model: &TunedTop,
    x: &[&[f32]],
    y: &[bool],
    dev: Option<(&[&[f32]], &[bool])>,
    opts: &TuneOpts,
) -> Result<Vec<f32>> {
    if x.is_empty() || x.len() != y.len() {
        return Err(Error::Training(format!(
            "training needs as many labels as examples (got {} and {})",
            x.len(),
            y.len()
        )));
    }
    if let Some(r) = x
        .iter()
        .chain(dev.iter().flat_map(|d| d.0.iter()))
        .find(|r| r.is_empty() || r.len() % model.hidden() != 0)
    {
        return Err(Error::Training(format!(
            "a sentence of {} floats is not a whole number (≥ 1) of {}-wide token states",
            r.len(),
            model.hidden()
        )));
    }
    let h = model.hidden();
    let mut rng = crate::stats::rng(opts.seed);
    // Head initialisation: small uniform, seeded.
    let bound = (1.0 / h as f32).sqrt();
    let w: Vec<f32> = (0..h).map(|_| rng.gen_range(-bound..bound)).collect();
    model.head_w.set(&Tensor::from_vec(w, h, &Device::Cpu)?)?;
    model
        .head_b
        .set(&Tensor::zeros(1, DType::F32, &Device::Cpu)?)?;
    match opts.engine {
        TuneEngine::Candle => train_candle(model, x, y, dev, opts, rng),
        TuneEngine::Fast => train_fast(model, x, y, dev, opts, rng),
    }
}

/// The learning-rate schedule: linear warm-up over the first 10% of `total` steps, then linear
/// decay to 0.
pub(crate) fn lr_factor(step: usize, total: usize) -> f64 {
    let warm = (total / 10).max(1);
    if step < warm {
        (step + 1) as f64 / warm as f64
    } else {
        ((total - step) as f64 / (total - warm).max(1) as f64).max(0.0)
    }
}

/// One epoch's batches: shuffle, then sort windows of 50 batches by length (less padding),
/// then shuffle the batches.
pub(crate) fn epoch_batches(
    order: &mut [usize],
    x: &[&[f32]],
    bs: usize,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Vec<Vec<usize>> {
    order.shuffle(rng);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for win in order.chunks(bs * 50) {
        let mut w = win.to_vec();
        w.sort_by_key(|&i| x[i].len());
        batches.extend(w.chunks(bs).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    batches
}

fn train_candle(
    model: &TunedTop,
    x: &[&[f32]],
    y: &[bool],
    dev: Option<(&[&[f32]], &[bool])>,
    opts: &TuneOpts,
    mut rng: rand_chacha::ChaCha8Rng,
) -> Result<Vec<f32>> {
    let h = model.hidden();
    let mut opt_l = AdamW::new(
        model.vars_layers(),
        ParamsAdamW {
            lr: opts.lr_layers,
            weight_decay: opts.weight_decay,
            ..Default::default()
        },
    )?;
    let mut opt_h = AdamW::new(
        vec![model.head_w.clone(), model.head_b.clone()],
        ParamsAdamW {
            lr: opts.lr_head,
            weight_decay: opts.weight_decay,
            ..Default::default()
        },
    )?;
    let bs = opts.batch_size.max(1);
    let total = (x.len().div_ceil(bs) * opts.epochs).max(1);
    let mut step = 0usize;
    let mut best: Option<(f32, Vec<Tensor>)> = None;
    let mut losses = Vec::new();
    let mut order: Vec<usize> = (0..x.len()).collect();
    for _epoch in 0..opts.epochs {
        for b in &epoch_batches(&mut order, x, bs, &mut rng) {
            let f = lr_factor(step, total);
            opt_l.set_learning_rate(opts.lr_layers * f);
            opt_h.set_learning_rate(opts.lr_head * f);
            let rows: Vec<&[f32]> = b.iter().map(|&i| x[i]).collect();
            let batch = Batch::new(&rows, h)?;
            let yb: Vec<f32> = b.iter().map(|&i| y[i] as u8 as f32).collect();
            let yb = Tensor::from_vec(yb, b.len(), &Device::Cpu)?;
            let z = model.logits_t(&batch, Some((opts.dropout, &mut rng)))?;
            let loss = super::bce_with_logits(&z, &yb)?;
            let grads = loss.backward()?;
            opt_l.step(&grads)?;
            opt_h.step(&grads)?;
            step += 1;
        }
        if let Some((dx, dy)) = dev {
            let z = model.logits(dx, 64)?;
            let l = bce(&z, dy, 1.0);
            losses.push(l);
            if best.as_ref().is_none_or(|(b, _)| l < *b) {
                best = Some((l, model.snapshot()?));
            }
        }
    }
    if let Some((_, snap)) = best {
        model.restore(&snap)?;
    }
    Ok(losses)
}

/// [`train_candle`] with the passes of [`super::fastgrad`] and its AdamW (candle-nn's update
/// rule); the development logits come from the same fast forward. The weights are written back
/// into `model` at the end.
fn train_fast(
    model: &TunedTop,
    x: &[&[f32]],
    y: &[bool],
    dev: Option<(&[&[f32]], &[bool])>,
    opts: &TuneOpts,
    mut rng: rand_chacha::ChaCha8Rng,
) -> Result<Vec<f32>> {
    let mut m = model.to_fast()?;
    let mut opt_l = super::fastgrad::AdamW::new(opts.lr_layers, opts.weight_decay);
    let mut opt_h = super::fastgrad::AdamW::new(opts.lr_head, opts.weight_decay);
    let bs = opts.batch_size.max(1);
    let total = (x.len().div_ceil(bs) * opts.epochs).max(1);
    let mut step = 0usize;
    let mut best: Option<(f32, FastTop)> = None;
    let mut losses = Vec::new();
    let mut order: Vec<usize> = (0..x.len()).collect();
    for _epoch in 0..opts.epochs {
        for b in &epoch_batches(&mut order, x, bs, &mut rng) {
            let f = lr_factor(step, total);
            opt_l.lr = opts.lr_layers * f;
            opt_h.lr = opts.lr_head * f;
            let rows: Vec<&[f32]> = b.iter().map(|&i| x[i]).collect();
            let yb: Vec<bool> = b.iter().map(|&i| y[i]).collect();
            let (_, g) = m.loss_and_grads(&rows, &yb, Some((opts.dropout, &mut rng)));
            let mut params: Vec<&mut [f32]> = m
                .layers
                .iter_mut()
                .flat_map(|l| l.iter_mut().map(Vec::as_mut_slice))
                .collect();
            let grads: Vec<&[f32]> = g
                .layers
                .iter()
                .flat_map(|l| l.iter().map(Vec::as_slice))
                .collect();
            opt_l.step(&mut params, &grads);
            let hb = [g.head_b];
            opt_h.step(
                &mut [m.head_w.as_mut_slice(), std::slice::from_mut(&mut m.head_b)],
                &[g.head_w.as_slice(), &hb],
            );
            step += 1;
        }
        if let Some((dx, dy)) = dev {
            let z = sorted_logits(&m, dx, 64);
            let l = bce(&z, dy, 1.0);
            losses.push(l);
            if best.as_ref().is_none_or(|(b, _)| l < *b) {
                best = Some((l, m.clone()));
            }
        }
    }
    model.set_from_fast(best.as_ref().map_or(&m, |(_, b)| b))?;
    Ok(losses)
}

/// Fast-engine logits in input order, computed in batches of sentences sorted by length.
pub(crate) fn sorted_logits(m: &FastTop, states: &[&[f32]], batch_size: usize) -> Vec<f32> {
    let mut order: Vec<usize> = (0..states.len()).collect();
    order.sort_by_key(|&i| (states[i].len(), i));
    let sorted: Vec<&[f32]> = order.iter().map(|&i| states[i]).collect();
    let z = m.logits(&sorted, batch_size);
    let mut out = vec![0f32; states.len()];
    for (&i, v) in order.iter().zip(z) {
        out[i] = v;
    }
    out
}

/// Mean binary cross-entropy of logits `z / t`.
pub fn bce(z: &[f32], y: &[bool], t: f32) -> f32 {
    let s: f64 = z
        .iter()
        .zip(y)
        .map(|(&z, &y)| {
            let z = (z / t) as f64;
            let yv = y as u8 as f64;
            z.max(0.0) - z * yv + (1.0 + (-z.abs()).exp()).ln()
        })
        .sum();
    (s / z.len().max(1) as f64) as f32
}

/// Temperature minimising the cross-entropy of `z / t` on `y` (grid over log t, 0.25..4).
pub fn fit_temperature(z: &[f32], y: &[bool]) -> f32 {
    let mut best = (f32::INFINITY, 1.0f32);
    for i in 0..=160 {
        let t = (2f32).powf(-2.0 + 4.0 * i as f32 / 160.0);
        let l = bce(z, y, t);
        if l < best.0 {
            best = (l, t);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder() -> Option<crate::encode::Encoder> {
        let dir = crate::encode::fetched_encoder_dir()?;
        Some(crate::encode::Encoder::load(&dir, Default::default()).expect("encoder loads"))
    }

    fn seed_sentences() -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        let text = std::fs::read_to_string(dir.join("000_0ac7ef0ff899d3ba.txt")).unwrap();
        crate::segment::split(&text)
            .into_iter()
            .map(|s| s.text(&text).to_string())
            .take(12)
            .collect()
    }

    #[test]
    fn op_built_layers_reproduce_the_fast_engine_and_get_gradients() {
        let Some(enc) = encoder() else { return };
        let sents = seed_sentences();
        let texts: Vec<&str> = sents.iter().map(String::as_str).collect();
        let l = enc.layers();
        let full = enc.token_states(&texts).unwrap();
        for k in [1, 2] {
            let bottom = enc.states_after(&texts, l - k, 4).unwrap();
            let top = TunedTop::from_encoder(enc.dir(), l - k, k).unwrap();
            let rows: Vec<&[f32]> = bottom.iter().map(Vec::as_slice).collect();
            // Padded batch of unequal lengths: padding must not leak into real tokens.
            let batch = Batch::new(&rows, enc.hidden_size()).unwrap();
            let out = top.top_states(&batch, None).unwrap();
            let (_, t, h) = out.dims3().unwrap();
            let out = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let mut worst = 0f32;
            for (i, want) in full.iter().enumerate() {
                let n = want.len() / h;
                let got = &out[i * t * h..i * t * h + n * h];
                for (a, b) in got.iter().zip(want) {
                    worst = worst.max((a - b).abs());
                }
            }
            assert!(worst < 1e-4, "k={k}: max |diff| {worst}");
        }
        // Every tuned weight, LayerNorm included, gets a non-zero gradient.
        let bottom = enc.states_after(&texts, l - 1, 4).unwrap();
        let rows: Vec<&[f32]> = bottom.iter().map(Vec::as_slice).collect();
        let top = TunedTop::from_encoder(enc.dir(), l - 1, 1).unwrap();
        top.head_w
            .set(&Tensor::ones(enc.hidden_size(), DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        let batch = Batch::new(&rows, enc.hidden_size()).unwrap();
        let mut rng = crate::stats::rng(1);
        let z = top.logits_t(&batch, Some((0.1, &mut rng))).unwrap();
        let y: Vec<f32> = (0..rows.len()).map(|i| (i % 2) as f32).collect();
        let y = Tensor::from_vec(y, rows.len(), &Device::Cpu).unwrap();
        let loss = super::super::bce_with_logits(&z, &y).unwrap();
        let grads = loss.backward().unwrap();
        for (name, v) in LAYER_TENSORS.iter().zip(top.vars_layers()) {
            let g = grads.get(v.as_tensor()).expect("gradient exists");
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(norm > 0.0, "zero gradient for {name}");
        }
    }

    #[test]
    fn save_and_load_round_trip_in_fp16() {
        let Some(enc) = encoder() else { return };
        let mut top = TunedTop::from_encoder(enc.dir(), enc.layers() - 1, 1).unwrap();
        top.threshold = 0.42;
        top.temperature = 1.5;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.safetensors");
        let meta = HashMap::from([("seed".to_string(), "13".to_string())]);
        top.save(&p, &meta).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        top.save(&p, &meta).unwrap();
        assert_eq!(
            bytes,
            std::fs::read(&p).unwrap(),
            "byte-identical on re-save"
        );
        let (back, m) = TunedTop::load(&p).unwrap();
        assert_eq!(m["seed"], "13");
        assert_eq!((back.threshold, back.temperature), (0.42, 1.5));
        let (a, b) = (top.layer_weights().unwrap(), back.layer_weights().unwrap());
        for (x, y) in a[0].iter().zip(&b[0]) {
            for (u, v) in x.iter().zip(y) {
                assert!((u - v).abs() <= 1e-3 * u.abs().max(1e-2), "{u} vs {v}");
            }
        }
    }

    #[test]
    fn dropout_is_seeded_and_scales() {
        let x = Tensor::ones(1000, DType::F32, &Device::Cpu).unwrap();
        let a = dropout(&x, 0.1, &mut crate::stats::rng(1)).unwrap();
        let b = dropout(&x, 0.1, &mut crate::stats::rng(1)).unwrap();
        assert_eq!(a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
        let v = a.to_vec1::<f32>().unwrap();
        let zeros = v.iter().filter(|&&z| z == 0.0).count();
        assert!((60..140).contains(&zeros), "{zeros} dropped of 1000");
        assert!(v.iter().all(|&z| z == 0.0 || (z - 1.0 / 0.9).abs() < 1e-6));
    }

    #[test]
    fn temperature_fit_recovers_a_scale() {
        // Logits three times too confident: the fitted temperature is near 3.
        let mut rng = crate::stats::rng(5);
        let mut z = Vec::new();
        let mut y = Vec::new();
        for _ in 0..4000 {
            let t: f32 = rng.gen_range(-3.0..3.0);
            let p = sigmoid(t);
            y.push(rng.gen::<f32>() < p);
            z.push(3.0 * t);
        }
        let t = fit_temperature(&z, &y);
        assert!((2.5..3.6).contains(&t), "temperature {t}");
    }
}
