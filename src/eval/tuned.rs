//! Cross-validation of the tuned-top loaded head ([`crate::train::tune`]): each fold fine-tunes
//! the top encoder layers and the head on the other folds, picks the epoch, the temperature and
//! the threshold on a stratified 10% of the training folds, and predicts the held-out fold.

use std::path::Path;

use super::best_threshold;
use super::loaded::{ece_of, FoldResult, LoadedOutcome, Predictions};
use super::BinaryMetrics;
use crate::train::tune::{fit_temperature, sigmoid, train_top, TuneOpts, TunedTop};
use crate::train::{self};
use crate::Result;

/// What a tuned CV found beyond [`LoadedOutcome`] (whose `ece` is after calibration).
#[derive(Debug, Clone, PartialEq)]
pub struct TunedCv {
    pub outcome: LoadedOutcome,
    /// ECE of the uncalibrated out-of-fold probabilities (temperature 1).
    pub ece_uncalibrated: f64,
    /// Uncalibrated out-of-fold probabilities.
    pub prob_uncalibrated: Vec<f32>,
    /// Per-fold temperatures.
    pub temperatures: Vec<f32>,
}

/// Train one tuned model on `train` (bottom states), choosing epoch, temperature and threshold
/// on `dev`.
pub fn fit(
    model_dir: &Path,
    first_layer: usize,
    train: (&[&[f32]], &[bool]),
    dev: (&[&[f32]], &[bool]),
    opts: &TuneOpts,
) -> Result<TunedTop> {
    let mut m = TunedTop::from_encoder(model_dir, first_layer, opts.layers)?;
    let losses = train_top(&m, train.0, train.1, Some(dev), opts)?;
    let z = m.logits_on(dev.0, 64, opts.engine)?;
    m.temperature = fit_temperature(&z, dev.1);
    let p: Vec<f32> = z.iter().map(|&v| sigmoid(v / m.temperature)).collect();
    m.threshold = best_threshold(&p, dev.1).0;
    eprintln!(
        "    dev losses per epoch {:?}; temperature {:.3}; threshold {:.2}",
        losses
            .iter()
            .map(|l| (l * 1e4).round() / 1e4)
            .collect::<Vec<_>>(),
        m.temperature,
        m.threshold
    );
    Ok(m)
}

#[allow(clippy::too_many_arguments)]
/// Stratified k-fold CV of the tuned head on bottom states `x` (after layer `first_layer`),
/// plus `extra` training data in every fold when given.
pub fn cross_validate_tuned(
    model_dir: &Path,
    first_layer: usize,
    x: &[Vec<f32>],
    y: &[bool],
    extra: Option<(&[Vec<f32>], &[bool])>,
    k: usize,
    seed: u64,
    opts: &TuneOpts,
) -> Result<TunedCv> {
    if k < 2 {
        return Err(crate::Error::Input("--cv needs at least 2 folds".into()));
    }
    let fold = train::stratified_folds(y, k, seed);
    let mut pred = vec![false; y.len()];
    let mut p_all = vec![0f32; y.len()];
    let mut p_raw = vec![0f32; y.len()];
    let mut folds = Vec::new();
    let mut temps = Vec::new();
    for f in 0..k {
        let t0 = std::time::Instant::now();
        let train_idx: Vec<usize> = (0..y.len()).filter(|&i| fold[i] != f).collect();
        let ytr_all: Vec<bool> = train_idx.iter().map(|&i| y[i]).collect();
        let inner = train::stratified_folds(&ytr_all, 10, seed.wrapping_add(f as u64 + 1));
        let (mut xtr, mut ytr, mut xdv, mut ydv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (j, &i) in train_idx.iter().enumerate() {
            if inner[j] == 0 {
                xdv.push(x[i].as_slice());
                ydv.push(y[i]);
            } else {
                xtr.push(x[i].as_slice());
                ytr.push(y[i]);
            }
        }
        if let Some((ex, ey)) = extra {
            xtr.extend(ex.iter().map(Vec::as_slice));
            ytr.extend(ey.iter().copied());
        }
        let opts_f = TuneOpts {
            seed: opts.seed.wrapping_add(f as u64),
            ..opts.clone()
        };
        let m = fit(model_dir, first_layer, (&xtr, &ytr), (&xdv, &ydv), &opts_f)?;
        let test_idx: Vec<usize> = (0..y.len()).filter(|&i| fold[i] == f).collect();
        let xt: Vec<&[f32]> = test_idx.iter().map(|&i| x[i].as_slice()).collect();
        let z = m.logits_on(&xt, 64, opts.engine)?;
        for (j, &i) in test_idx.iter().enumerate() {
            p_raw[i] = sigmoid(z[j]);
            p_all[i] = sigmoid(z[j] / m.temperature);
            pred[i] = p_all[i] >= m.threshold;
        }
        let mm = BinaryMetrics::from_pairs(test_idx.iter().map(|&i| (pred[i], y[i])));
        eprintln!(
            "  fold {f}: n {} threshold {:.2} macro-F1 {:.4} ({:.0}s)",
            mm.n,
            m.threshold,
            mm.macro_f1,
            t0.elapsed().as_secs_f64()
        );
        temps.push(m.temperature);
        folds.push(FoldResult {
            fold: f,
            n: mm.n,
            threshold: m.threshold,
            macro_f1: (mm.macro_f1 * 1e6).round() / 1e6,
        });
    }
    let mean = folds.iter().map(|f| f.macro_f1).sum::<f64>() / k as f64;
    let sd = (folds
        .iter()
        .map(|f| (f.macro_f1 - mean).powi(2))
        .sum::<f64>()
        / (k as f64 - 1.0))
        .sqrt();
    Ok(TunedCv {
        outcome: LoadedOutcome {
            threshold: None,
            metrics: BinaryMetrics::from_pairs(pred.iter().copied().zip(y.iter().copied())),
            ece: ece_of(&p_all, y),
            ece_uncalibrated: Some(ece_of(&p_raw, y)),
            temperatures: temps.clone(),
            folds,
            fold_macro_f1_mean: Some(mean),
            fold_macro_f1_sd: Some(sd),
            predictions: Predictions {
                prob: p_all,
                pred,
                gold: y.to_vec(),
            },
        },
        ece_uncalibrated: ece_of(&p_raw, y),
        prob_uncalibrated: p_raw,
        temperatures: temps,
    })
}
