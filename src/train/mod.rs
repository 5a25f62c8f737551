//! Training heads on frozen encoder features.
//!
//! * [`embed_cached`]: sentence features for a list of texts, cached on disk under a key made of
//!   the encoder's sha256 and the texts, so train/eval runs re-encode nothing they saw before.
//! * [`train_mlp`]: a one-hidden-layer perceptron (ReLU) or logistic regression trained with
//!   AdamW on binary cross-entropy (candle autograd), seeded shuffling and initialisation, and
//!   early stopping on a development split.
//! * [`stratified_folds`]: seeded stratified k-fold assignment for cross-validation.
//! * [`tagger`]: span taggers on token states (spans → BIO tags, a token-state cache,
//!   [`tagger::train_tagger`]).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::encode::{hex, Encoder};
use crate::heads::{sentence_features, MlpHead};
pub mod fastgrad;
pub mod frames;
pub mod loaded_spans;
pub mod lora;
pub mod tagger;
pub mod tune;

use crate::{Error, Result};

/// Hyper-parameters of [`train_mlp`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainOpts {
    /// Hidden units; 0 trains a logistic regression.
    pub hidden: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Stop when the development loss has not improved for this many epochs.
    pub patience: usize,
}

impl Default for TrainOpts {
    fn default() -> Self {
        Self {
            hidden: 256,
            epochs: 40,
            batch_size: 128,
            lr: 1e-3,
            weight_decay: 1e-2,
            seed: 13,
            patience: 5,
        }
    }
}

/// Where feature caches live: `SLANT_CACHE_DIR`, else `.cache/` in the current directory.
pub fn cache_dir() -> PathBuf {
    match std::env::var("SLANT_CACHE_DIR") {
        Ok(s) if !s.is_empty() => PathBuf::from(s),
        _ => PathBuf::from(".cache"),
    }
    .join("features")
}

/// Features ([`sentence_features`]) for `texts`, read from or written to the cache.
pub fn embed_cached(
    encoder: &Encoder,
    texts: &[&str],
    batch_size: usize,
    cache: Option<&Path>,
) -> Result<Vec<Vec<f32>>> {
    let mut h = Sha256::new();
    h.update(b"slant-features-v1\0mean_pool_l2\0");
    h.update(encoder.weights_sha256().as_bytes());
    h.update(encoder.max_tokens().to_le_bytes());
    // The engines agree to ~1e-6, not bit for bit: keep their caches apart so a cached run
    // reproduces byte for byte what an uncached run with the same engine computes.
    h.update(encoder.variant().as_bytes());
    for t in texts {
        h.update((t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
    }
    let key = hex(&h.finalize());
    let dim = encoder.hidden_size();
    if let Some(dir) = cache {
        let path = dir.join(format!("{key}.f32"));
        if let Ok(bytes) = std::fs::read(&path) {
            if bytes.len() == texts.len() * dim * 4 {
                let flat: Vec<f32> = bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                return Ok(flat.chunks(dim).map(<[f32]>::to_vec).collect());
            }
        }
    }
    let (enc, _) = encoder.encode(texts, batch_size)?;
    let feats: Vec<Vec<f32>> = enc.iter().map(|e| sentence_features(&e.pooled)).collect();
    if let Some(dir) = cache {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(format!("{key}.f32"));
        let tmp = dir.join(format!("{key}.f32.part"));
        let bytes: Vec<u8> = feats
            .iter()
            .flat_map(|v| v.iter().flat_map(|x| x.to_le_bytes()))
            .collect();
        std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    }
    Ok(feats)
}

/// Seeded stratified k-fold assignment: `fold[i]` in `0..k`, each class spread evenly.
pub fn stratified_folds(labels: &[bool], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = crate::stats::rng(seed);
    let mut fold = vec![0usize; labels.len()];
    // One running counter across both classes keeps fold sizes within one of each other.
    let mut next = 0usize;
    for class in [true, false] {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        idx.shuffle(&mut rng);
        for &i in &idx {
            fold[i] = next % k;
            next += 1;
        }
    }
    fold
}

fn to_tensor(x: &[&[f32]], dim: usize, dev: &Device) -> Result<Tensor> {
    let flat: Vec<f32> = x.iter().flat_map(|r| r.iter().copied()).collect();
    Ok(Tensor::from_vec(flat, (x.len(), dim), dev)?)
}

/// A copy of the weights: (w1, b1, w2, b2).
type Weights = (Vec<f32>, Vec<f32>, Vec<f32>, f32);

struct Params {
    w1: Option<Var>,
    b1: Option<Var>,
    w2: Var,
    b2: Var,
}

impl Params {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = match (&self.w1, &self.b1) {
            (Some(w1), Some(b1)) => x.matmul(&w1.as_tensor().t()?)?.broadcast_add(b1)?.relu()?,
            _ => x.clone(),
        };
        Ok(h.matmul(&self.w2.as_tensor().unsqueeze(1)?)?
            .squeeze(1)?
            .broadcast_add(&self.b2)?)
    }

    fn vars(&self) -> Vec<Var> {
        let mut v = vec![self.w2.clone(), self.b2.clone()];
        if let (Some(w1), Some(b1)) = (&self.w1, &self.b1) {
            v.push(w1.clone());
            v.push(b1.clone());
        }
        v
    }

    fn snapshot(&self) -> Result<Weights> {
        let w1 = match &self.w1 {
            Some(w) => w.as_tensor().flatten_all()?.to_vec1::<f32>()?,
            None => Vec::new(),
        };
        let b1 = match &self.b1 {
            Some(b) => b.as_tensor().to_vec1::<f32>()?,
            None => Vec::new(),
        };
        let w2 = self.w2.as_tensor().to_vec1::<f32>()?;
        let b2 = self.b2.as_tensor().to_vec1::<f32>()?[0];
        Ok((w1, b1, w2, b2))
    }
}

/// Mean binary cross-entropy with logits, numerically stable.
pub(crate) fn bce_with_logits(logits: &Tensor, y: &Tensor) -> Result<Tensor> {
    // max(z,0) - z*y + log(1 + exp(-|z|))
    let relu = logits.relu()?;
    let zy = (logits * y)?;
    let soft = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok(((relu - zy)? + soft)?.mean_all()?)
}

/// `(w1, b1, w2, b2)` of a trained perceptron, flattened row-major.
pub(crate) type MlpWeights = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// Trainable weights of a one-hidden-layer perceptron with `out` logits (logistic/softmax
/// regression when `hidden == 0`), laid out as the heads store them: `w1` is `hidden × dim`,
/// `w2` is `out × width`. Shared by the multi-output trainers (frames, taggers).
pub(crate) struct MlpVars {
    hidden: Option<(Var, Var)>,
    w2: Var,
    b2: Var,
}

impl MlpVars {
    /// Uniform(±1/√fan_in) weights drawn from `rng` (hidden layer first), zero biases.
    pub(crate) fn init(
        dim: usize,
        hidden: usize,
        out: usize,
        rng: &mut impl Rng,
        device: &Device,
    ) -> Result<Self> {
        let mut uniform = |n: usize, fan_in: usize| -> Vec<f32> {
            let b = (1.0 / fan_in as f32).sqrt();
            (0..n).map(|_| rng.gen_range(-b..b)).collect()
        };
        let width = if hidden > 0 { hidden } else { dim };
        let hidden = if hidden > 0 {
            Some((
                Var::from_tensor(&Tensor::from_vec(
                    uniform(hidden * dim, dim),
                    (hidden, dim),
                    device,
                )?)?,
                Var::from_tensor(&Tensor::zeros(hidden, DType::F32, device)?)?,
            ))
        } else {
            None
        };
        let w2 = Var::from_tensor(&Tensor::from_vec(
            uniform(out * width, width),
            (out, width),
            device,
        )?)?;
        let b2 = Var::from_tensor(&Tensor::zeros(out, DType::F32, device)?)?;
        Ok(Self { hidden, w2, b2 })
    }

    /// The variables for the optimiser.
    pub(crate) fn vars(&self) -> Vec<Var> {
        let mut v = vec![self.w2.clone(), self.b2.clone()];
        if let Some((w1, b1)) = &self.hidden {
            v.push(w1.clone());
            v.push(b1.clone());
        }
        v
    }

    /// Logits for a `n × dim` batch: `n × out`.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = match &self.hidden {
            Some((w1, b1)) => x
                .matmul(&w1.as_tensor().t()?)?
                .broadcast_add(b1.as_tensor())?
                .relu()?,
            None => x.clone(),
        };
        Ok(h.matmul(&self.w2.as_tensor().t()?)?
            .broadcast_add(self.b2.as_tensor())?)
    }

    /// `(w1, b1, w2, b2)` flattened, row-major; `w1`/`b1` empty without a hidden layer.
    pub(crate) fn weights(&self) -> Result<MlpWeights> {
        let flat = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };
        let (w1, b1) = match &self.hidden {
            Some((w1, b1)) => (flat(w1.as_tensor())?, flat(b1.as_tensor())?),
            None => (Vec::new(), Vec::new()),
        };
        Ok((
            w1,
            b1,
            flat(self.w2.as_tensor())?,
            flat(self.b2.as_tensor())?,
        ))
    }
}

/// Train a head on features `x` with labels `y`; early-stops on `dev` when given (else trains
/// all epochs). The threshold is left at 0.5: callers choose it on a development split.
pub fn train_mlp(
    x: &[Vec<f32>],
    y: &[bool],
    dev: Option<(&[Vec<f32>], &[bool])>,
    opts: &TrainOpts,
) -> Result<MlpHead> {
    if x.is_empty() || x.len() != y.len() {
        return Err(Error::Training(format!(
            "training needs as many labels as examples (got {} and {})",
            x.len(),
            y.len()
        )));
    }
    let dim = x[0].len();
    let device = Device::Cpu;
    let mut rng = crate::stats::rng(opts.seed);
    let mut uniform = |n: usize, fan_in: usize| -> Vec<f32> {
        let bound = (1.0 / fan_in as f32).sqrt();
        (0..n).map(|_| rng.gen_range(-bound..bound)).collect()
    };
    let (w1, b1, w2_len) = if opts.hidden > 0 {
        let w1 = Var::from_tensor(&Tensor::from_vec(
            uniform(opts.hidden * dim, dim),
            (opts.hidden, dim),
            &device,
        )?)?;
        let b1 = Var::from_tensor(&Tensor::zeros(opts.hidden, DType::F32, &device)?)?;
        (Some(w1), Some(b1), opts.hidden)
    } else {
        (None, None, dim)
    };
    let w2 = Var::from_tensor(&Tensor::from_vec(uniform(w2_len, w2_len), w2_len, &device)?)?;
    let b2 = Var::from_tensor(&Tensor::zeros(1, DType::F32, &device)?)?;
    let params = Params { w1, b1, w2, b2 };
    let mut opt = AdamW::new(
        params.vars(),
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: opts.weight_decay,
            ..Default::default()
        },
    )?;
    let dev_t = match dev {
        Some((dx, dy)) if !dx.is_empty() => {
            let rows: Vec<&[f32]> = dx.iter().map(Vec::as_slice).collect();
            let yt: Vec<f32> = dy.iter().map(|&b| b as u8 as f32).collect();
            Some((
                to_tensor(&rows, dim, &device)?,
                Tensor::from_vec(yt, dy.len(), &device)?,
            ))
        }
        _ => None,
    };
    let mut order: Vec<usize> = (0..x.len()).collect();
    let mut best: Option<(f32, Weights)> = None;
    let mut since_best = 0;
    for _epoch in 0..opts.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(opts.batch_size.max(1)) {
            let rows: Vec<&[f32]> = chunk.iter().map(|&i| x[i].as_slice()).collect();
            let xb = to_tensor(&rows, dim, &device)?;
            let yb: Vec<f32> = chunk.iter().map(|&i| y[i] as u8 as f32).collect();
            let yb = Tensor::from_vec(yb, chunk.len(), &device)?;
            let loss = bce_with_logits(&params.forward(&xb)?, &yb)?;
            opt.backward_step(&loss)?;
        }
        if let Some((dx, dy)) = &dev_t {
            let loss = bce_with_logits(&params.forward(dx)?, dy)?.to_scalar::<f32>()?;
            if best.as_ref().is_none_or(|(b, _)| loss < *b) {
                best = Some((loss, params.snapshot()?));
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= opts.patience {
                    break;
                }
            }
        }
    }
    let (w1, b1, w2, b2) = match best {
        Some((_, s)) => s,
        None => params.snapshot()?,
    };
    Ok(MlpHead {
        input: dim,
        hidden: opts.hidden,
        w1,
        b1,
        w2,
        b2,
        threshold: 0.5,
        temperature: 1.0,
        meta: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified_and_seeded() {
        let labels: Vec<bool> = (0..100).map(|i| i % 3 == 0).collect();
        let f = stratified_folds(&labels, 5, 1);
        assert_eq!(f, stratified_folds(&labels, 5, 1));
        assert_ne!(f, stratified_folds(&labels, 5, 2));
        for k in 0..5 {
            let pos = (0..100).filter(|&i| f[i] == k && labels[i]).count();
            let all = (0..100).filter(|&i| f[i] == k).count();
            assert!((6..=7).contains(&pos), "fold {k}: {pos} positives");
            assert_eq!(all, 20);
        }
    }

    #[test]
    fn mlp_learns_a_nonlinear_rule_and_gradients_flow() {
        // XOR-like data: a logistic regression cannot fit it, the MLP must.
        let mut rng = crate::stats::rng(3);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..400 {
            let a: f32 = rng.gen_range(-1.0..1.0);
            let b: f32 = rng.gen_range(-1.0..1.0);
            x.push(vec![a, b]);
            y.push((a > 0.0) != (b > 0.0));
        }
        let opts = TrainOpts {
            hidden: 16,
            epochs: 200,
            batch_size: 32,
            lr: 1e-2,
            weight_decay: 0.0,
            seed: 1,
            patience: 200,
        };
        let head = train_mlp(&x, &y, None, &opts).unwrap();
        let acc = x
            .iter()
            .zip(&y)
            .filter(|(xi, &yi)| (head.prob(xi) >= 0.5) == yi)
            .count() as f64
            / x.len() as f64;
        assert!(acc > 0.9, "MLP accuracy on XOR {acc}");
        let logistic = train_mlp(
            &x,
            &y,
            None,
            &TrainOpts {
                hidden: 0,
                ..opts.clone()
            },
        )
        .unwrap();
        let acc_lr = x
            .iter()
            .zip(&y)
            .filter(|(xi, &yi)| (logistic.prob(xi) >= 0.5) == yi)
            .count() as f64
            / x.len() as f64;
        assert!(
            acc_lr < 0.75,
            "logistic regression cannot fit XOR: {acc_lr}"
        );
        // Same seed, same weights.
        assert_eq!(train_mlp(&x, &y, None, &opts).unwrap(), head);
    }
}
