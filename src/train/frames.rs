//! Training and cross-validating the multi-label frames head ([`FramesHead`]).
//!
//! * [`train_multi`]: standardise the inputs (training-set mean and sd), then train one logistic
//!   output per label, or a shared ReLU hidden layer with one output per label, with AdamW on
//!   the mean binary cross-entropy over all labels, for a fixed number of epochs (no early
//!   stopping: with a few hundred articles every example is needed for training).
//! * [`fit`]: [`train_multi`] on all given examples, with each label's threshold chosen to
//!   maximise that label's F1 on out-of-fold probabilities of an inner k-fold cross-validation.
//! * [`cross_validate`]: outer k-fold CV of [`fit`], giving out-of-fold predictions.
//! * [`MultiLabelMetrics`]: micro- and macro-F1 with per-label counts.

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::heads::frames::FramesHead;
use crate::{Error, Result};

/// Hyper-parameters of the frames head.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FramesOpts {
    /// Hidden units; 0 = one logistic regression per frame.
    pub hidden: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Folds of the inner CV that picks the thresholds.
    pub inner_folds: usize,
}

impl Default for FramesOpts {
    fn default() -> Self {
        Self {
            hidden: 0,
            epochs: 30,
            batch_size: 32,
            lr: 1e-3,
            weight_decay: 1e-2,
            seed: 13,
            inner_folds: 5,
        }
    }
}

/// Seeded k-fold assignment (`fold[i]` in `0..k`, sizes within one of each other).
pub fn kfold(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut crate::stats::rng(seed));
    let mut fold = vec![0; n];
    for (j, &i) in idx.iter().enumerate() {
        fold[i] = j % k.max(1);
    }
    fold
}

/// Train on `x` (one row per example) with `y` (one flag per label per example).
pub fn train_multi(
    x: &[Vec<f32>],
    y: &[Vec<bool>],
    labels: &[String],
    opts: &FramesOpts,
) -> Result<FramesHead> {
    if x.is_empty() || x.len() != y.len() {
        return Err(Error::Training(format!(
            "training needs as many label rows as examples (got {} and {})",
            x.len(),
            y.len()
        )));
    }
    let dim = x[0].len();
    let l = labels.len();
    let n = x.len() as f64;
    let mut mean = vec![0f64; dim];
    for r in x {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += *v as f64 / n;
        }
    }
    let mut var = vec![0f64; dim];
    for r in x {
        for ((s, v), m) in var.iter_mut().zip(r).zip(&mean) {
            *s += (*v as f64 - m).powi(2) / n;
        }
    }
    let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let scale: Vec<f32> = var
        .iter()
        .map(|&v| (1.0 / v.sqrt().max(1e-6)) as f32)
        .collect();
    let z: Vec<f32> = x
        .iter()
        .flat_map(|r| {
            r.iter()
                .zip(&mean)
                .zip(&scale)
                .map(|((v, m), s)| (v - m) * s)
        })
        .collect();
    let yf: Vec<f32> = y
        .iter()
        .flat_map(|r| r.iter().map(|&b| b as u8 as f32))
        .collect();
    let dev = Device::Cpu;
    let xt = Tensor::from_vec(z, (x.len(), dim), &dev)?;
    let yt = Tensor::from_vec(yf, (x.len(), l), &dev)?;
    let mut rng = crate::stats::rng(opts.seed);
    let mlp = super::MlpVars::init(dim, opts.hidden, l, &mut rng, &dev)?;
    let mut opt = AdamW::new(
        mlp.vars(),
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: opts.weight_decay,
            ..Default::default()
        },
    )?;
    let mut order: Vec<u32> = (0..x.len() as u32).collect();
    for _ in 0..opts.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(opts.batch_size.max(1)) {
            let idx = Tensor::from_vec(chunk.to_vec(), chunk.len(), &dev)?;
            let xb = xt.index_select(&idx, 0)?;
            let yb = yt.index_select(&idx, 0)?;
            let loss = super::bce_with_logits(&mlp.forward(&xb)?, &yb)?;
            opt.backward_step(&loss)?;
        }
    }
    let (w1, b1, w2, b2) = mlp.weights()?;
    Ok(FramesHead {
        input: dim,
        hidden: opts.hidden,
        labels: labels.to_vec(),
        mean,
        scale,
        w1,
        b1,
        w2,
        b2,
        thresholds: vec![0.5; l],
        meta: Default::default(),
    })
}

/// The threshold in 0.05, 0.10, …, 0.95 that maximises F1 of one label (ties: the lowest).
pub fn best_f1_threshold(p: &[f32], gold: &[bool]) -> f32 {
    let mut best = (0.5f32, -1.0f64);
    for i in 1..20 {
        let t = i as f32 * 0.05;
        let c = Counts::from_pairs(p.iter().zip(gold).map(|(&p, &g)| (p >= t, g)));
        let f1 = c.scores().f1;
        if f1 > best.1 + 1e-12 {
            best = (t, f1);
        }
    }
    best.0
}

/// [`train_multi`] on all examples, with per-label thresholds from an inner CV.
pub fn fit(
    x: &[Vec<f32>],
    y: &[Vec<bool>],
    labels: &[String],
    opts: &FramesOpts,
) -> Result<FramesHead> {
    let k = opts.inner_folds.max(2);
    let fold = kfold(x.len(), k, opts.seed.wrapping_add(1000));
    let mut oof = vec![vec![0f32; labels.len()]; x.len()];
    for f in 0..k {
        let tr: Vec<usize> = (0..x.len()).filter(|&i| fold[i] != f).collect();
        let xs: Vec<Vec<f32>> = tr.iter().map(|&i| x[i].clone()).collect();
        let ys: Vec<Vec<bool>> = tr.iter().map(|&i| y[i].clone()).collect();
        let h = train_multi(&xs, &ys, labels, opts)?;
        for i in (0..x.len()).filter(|&i| fold[i] == f) {
            oof[i] = h.probs(&x[i]);
        }
    }
    let mut head = train_multi(x, y, labels, opts)?;
    head.thresholds = (0..labels.len())
        .map(|j| {
            let p: Vec<f32> = oof.iter().map(|r| r[j]).collect();
            let g: Vec<bool> = y.iter().map(|r| r[j]).collect();
            best_f1_threshold(&p, &g)
        })
        .collect();
    Ok(head)
}

/// Out-of-fold predicted flags and probabilities per example, and each example's fold.
pub type CvOutput = (Vec<Vec<bool>>, Vec<Vec<f32>>, Vec<usize>);

/// Outer k-fold CV of [`fit`]: out-of-fold predicted flags and probabilities per example.
pub fn cross_validate(
    x: &[Vec<f32>],
    y: &[Vec<bool>],
    labels: &[String],
    k: usize,
    opts: &FramesOpts,
) -> Result<CvOutput> {
    let fold = kfold(x.len(), k, opts.seed);
    let mut pred = vec![Vec::new(); x.len()];
    let mut prob = vec![Vec::new(); x.len()];
    for f in 0..k {
        let tr: Vec<usize> = (0..x.len()).filter(|&i| fold[i] != f).collect();
        let xs: Vec<Vec<f32>> = tr.iter().map(|&i| x[i].clone()).collect();
        let ys: Vec<Vec<bool>> = tr.iter().map(|&i| y[i].clone()).collect();
        let h = fit(&xs, &ys, labels, opts)?;
        for i in (0..x.len()).filter(|&i| fold[i] == f) {
            let p = h.probs(&x[i]);
            pred[i] = p.iter().zip(&h.thresholds).map(|(p, t)| p >= t).collect();
            prob[i] = p;
        }
    }
    Ok((pred, prob, fold))
}

/// Confusion counts of one label (or pooled over labels).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

/// Precision, recall, F1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Counts {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (bool, bool)>) -> Self {
        let mut c = Counts::default();
        for (p, g) in pairs {
            match (p, g) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, true) => c.fn_ += 1,
                _ => {}
            }
        }
        c
    }
    /// P/R/F1; 0 where undefined.
    pub fn scores(&self) -> Prf {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let p = ratio(self.tp, self.tp + self.fp);
        let r = ratio(self.tp, self.tp + self.fn_);
        Prf {
            precision: p,
            recall: r,
            f1: if p + r == 0.0 {
                0.0
            } else {
                2.0 * p * r / (p + r)
            },
        }
    }
}

/// One label's row of [`MultiLabelMetrics`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelMetrics {
    pub label: String,
    /// Gold positives.
    pub support: u64,
    #[serde(flatten)]
    pub counts: Counts,
    #[serde(flatten)]
    pub scores: Prf,
}

/// Micro-F1 (counts pooled over labels), macro-F1 (mean of per-label F1), per-label rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MultiLabelMetrics {
    pub n: u64,
    pub micro_precision: f64,
    pub micro_recall: f64,
    pub micro_f1: f64,
    pub macro_f1: f64,
    pub per_label: Vec<LabelMetrics>,
}

impl MultiLabelMetrics {
    pub fn new(pred: &[Vec<bool>], gold: &[Vec<bool>], labels: &[String]) -> Self {
        let per_label: Vec<LabelMetrics> = labels
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let c = Counts::from_pairs(pred.iter().zip(gold).map(|(p, g)| (p[j], g[j])));
                LabelMetrics {
                    label: name.clone(),
                    support: gold.iter().filter(|g| g[j]).count() as u64,
                    counts: c,
                    scores: c.scores(),
                }
            })
            .collect();
        let pooled = per_label.iter().fold(Counts::default(), |a, m| Counts {
            tp: a.tp + m.counts.tp,
            fp: a.fp + m.counts.fp,
            fn_: a.fn_ + m.counts.fn_,
        });
        let micro = pooled.scores();
        let macro_f1 = if per_label.is_empty() {
            0.0
        } else {
            per_label.iter().map(|m| m.scores.f1).sum::<f64>() / per_label.len() as f64
        };
        Self {
            n: gold.len() as u64,
            micro_precision: micro.precision,
            micro_recall: micro.recall,
            micro_f1: micro.f1,
            macro_f1,
            per_label,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn micro_and_macro_by_hand() {
        // Label A: pred [1,1,0], gold [1,0,1] → tp 1, fp 1, fn 1: P = R = F1 = 0.5.
        // Label B: pred [0,1,1], gold [0,1,1] → tp 2: F1 = 1.
        // Micro: tp 3, fp 1, fn 1 → P = R = 0.75, F1 = 0.75; macro = (0.5 + 1)/2 = 0.75.
        let pred = vec![vec![true, false], vec![true, true], vec![false, true]];
        let gold = vec![vec![true, false], vec![false, true], vec![true, true]];
        let m = MultiLabelMetrics::new(&pred, &gold, &["A".into(), "B".into()]);
        assert!((m.micro_f1 - 0.75).abs() < 1e-12);
        assert!((m.macro_f1 - 0.75).abs() < 1e-12);
        assert_eq!(
            m.per_label[0].counts,
            Counts {
                tp: 1,
                fp: 1,
                fn_: 1
            }
        );
        assert_eq!(m.per_label[1].support, 2);
        // Now make B all wrong (pred [1,0,0]): B has tp 0, fp 1, fn 2 (F1 0); micro tp 1, fp 2,
        // fn 3 → P = 1/3, R = 1/4, F1 = 2/7; macro (0.5 + 0)/2 = 0.25.
        let pred = vec![vec![true, true], vec![true, false], vec![false, false]];
        let m = MultiLabelMetrics::new(&pred, &gold, &["A".into(), "B".into()]);
        assert!((m.micro_f1 - 2.0 / 7.0).abs() < 1e-12, "{}", m.micro_f1);
        assert!((m.macro_f1 - 0.25).abs() < 1e-12);
    }

    #[test]
    fn threshold_maximises_f1() {
        let p = [0.9, 0.8, 0.3, 0.2, 0.1];
        let g = [true, true, true, false, false];
        // t ≤ 0.30 catches all three positives before any negative (F1 = 1); the lowest such
        // grid point above 0.20 is 0.25.
        assert!((best_f1_threshold(&p, &g) - 0.25).abs() < 1e-6);
    }

    #[test]
    fn learns_separable_labels_and_is_seeded() {
        // Label 0 = x0 > 0, label 1 = x1 > 0: a logistic head must learn both.
        let mut rng = crate::stats::rng(5);
        let x: Vec<Vec<f32>> = (0..200)
            .map(|_| vec![rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0), 0.3])
            .collect();
        let y: Vec<Vec<bool>> = x.iter().map(|r| vec![r[0] > 0.0, r[1] > 0.0]).collect();
        let labels = vec!["a".to_string(), "b".to_string()];
        let opts = FramesOpts {
            epochs: 40,
            lr: 1e-2,
            ..FramesOpts::default()
        };
        let (pred, _, fold) = cross_validate(&x, &y, &labels, 4, &opts).unwrap();
        assert_eq!(fold.iter().filter(|&&f| f == 0).count(), 50);
        let m = MultiLabelMetrics::new(&pred, &y, &labels);
        assert!(m.micro_f1 > 0.9, "micro-F1 {}", m.micro_f1);
        let h1 = fit(&x, &y, &labels, &opts).unwrap();
        assert_eq!(h1, fit(&x, &y, &labels, &opts).unwrap());
        let mlp = fit(&x, &y, &labels, &FramesOpts { hidden: 8, ..opts }).unwrap();
        assert_eq!(mlp.w1.len(), 8 * 3);
    }
}
