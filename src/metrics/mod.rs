//! Metrics shared by training, evaluation and the pipeline: binary classification counts with
//! P/R/F1 ([`BinaryMetrics`]), the macro-F1 threshold ([`best_threshold`]), and span matching
//! ([`spans`]). A leaf: it imports nothing of slant.

pub mod spans;

use serde::Serialize;

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// Binary classification counts and scores. The positive class is "loaded/biased".
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BinaryMetrics {
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub tn: u64,
    pub n: u64,
    pub accuracy: f64,
    pub positive: ClassScores,
    pub negative: ClassScores,
    pub macro_f1: f64,
}

fn prf(tp: u64, fp: u64, fn_: u64) -> ClassScores {
    let p = if tp + fp == 0 {
        0.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let r = if tp + fn_ == 0 {
        0.0
    } else {
        tp as f64 / (tp + fn_) as f64
    };
    let f1 = if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    };
    ClassScores {
        precision: p,
        recall: r,
        f1,
        support: tp + fn_,
    }
}

impl BinaryMetrics {
    /// Metrics from (predicted, gold) pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (bool, bool)>) -> Self {
        let (mut tp, mut fp, mut fn_, mut tn) = (0, 0, 0, 0);
        for (pred, gold) in pairs {
            match (pred, gold) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                (false, false) => tn += 1,
            }
        }
        Self::from_counts(tp, fp, fn_, tn)
    }

    /// Metrics from confusion counts.
    pub fn from_counts(tp: u64, fp: u64, fn_: u64, tn: u64) -> Self {
        let positive = prf(tp, fp, fn_);
        let negative = prf(tn, fn_, fp);
        let n = tp + fp + fn_ + tn;
        Self {
            tp,
            fp,
            fn_,
            tn,
            n,
            accuracy: if n == 0 {
                0.0
            } else {
                (tp + tn) as f64 / n as f64
            },
            positive,
            negative,
            macro_f1: (positive.f1 + negative.f1) / 2.0,
        }
    }
}

/// Pick the probability threshold (0.05..=0.95 in steps of 0.01) that maximises macro-F1.
/// Ties go to the threshold closest to 0.5.
pub fn best_threshold(probs: &[f32], gold: &[bool]) -> (f32, f64) {
    let mut best = (0.5f32, -1.0f64);
    for step in 5..=95 {
        let t = step as f32 / 100.0;
        let m = BinaryMetrics::from_pairs(probs.iter().zip(gold).map(|(&p, &g)| (p >= t, g)));
        let better = m.macro_f1 > best.1 + 1e-12
            || ((m.macro_f1 - best.1).abs() <= 1e-12 && (t - 0.5).abs() < (best.0 - 0.5).abs());
        if better {
            best = (t, m.macro_f1);
        }
    }
    best
}
