//! Cross-validation of the tuned-top loaded head ([`crate::train::tune`]): each fold fine-tunes
//! the top encoder layers and the head on the other folds, picks the epoch, the temperature and
//! the threshold on a stratified 10% of the training folds, and predicts the held-out fold.

use std::path::Path;

use super::calibrate;
use super::loaded::{
    ece_of, logits as loaded_logits, train_head, FoldResult, HeadTraining, LoadedOutcome,
    Predictions,
};
use super::BinaryMetrics;
use crate::heads::lora::{Lora, TunedTop};
use crate::heads::math::sigmoid;
use crate::heads::tuned::blend_logits;
use crate::train::lora::{train_lora, LoraOpts};
use crate::train::tune::{fit_temperature, train_top, TuneOpts};
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
    (m.temperature, m.threshold) = calibrate(&z, dev.1);
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

/// What one fold's fit gives: raw logits of the held-out sentences, and the temperature and
/// threshold chosen on the fold's development split.
pub struct FoldFit {
    pub logits: Vec<f32>,
    pub temperature: f32,
    pub threshold: f32,
}

/// Indices of one fold: training, development (a stratified 10% of the training folds) and
/// held-out test sentences.
pub struct FoldIdx {
    pub fold: usize,
    pub train: Vec<usize>,
    pub dev: Vec<usize>,
    pub test: Vec<usize>,
}

/// Stratified k-fold CV of any model: `fit` trains on a fold's indices and predicts its test
/// sentences. Folds and development splits are [`cross_validate_tuned`]'s.
pub fn cross_validate_fits(
    y: &[bool],
    k: usize,
    seed: u64,
    mut fit: impl FnMut(&FoldIdx) -> Result<FoldFit>,
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
        let (mut tr, mut dv) = (Vec::new(), Vec::new());
        for (j, &i) in train_idx.iter().enumerate() {
            if inner[j] == 0 {
                dv.push(i);
            } else {
                tr.push(i);
            }
        }
        let test_idx: Vec<usize> = (0..y.len()).filter(|&i| fold[i] == f).collect();
        let idx = FoldIdx {
            fold: f,
            train: tr,
            dev: dv,
            test: test_idx,
        };
        let m = fit(&idx)?;
        let test_idx = idx.test;
        let z = m.logits;
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
    cross_validate_fits(y, k, seed, |idx| {
        let (mut xtr, mut ytr) = pick(x, y, &idx.train);
        let (xdv, ydv) = pick(x, y, &idx.dev);
        if let Some((ex, ey)) = extra {
            xtr.extend(ex.iter().map(Vec::as_slice));
            ytr.extend(ey.iter().copied());
        }
        let opts_f = TuneOpts {
            seed: opts.seed.wrapping_add(idx.fold as u64),
            ..opts.clone()
        };
        let m = fit(model_dir, first_layer, (&xtr, &ytr), (&xdv, &ydv), &opts_f)?;
        let (xt, _) = pick(x, y, &idx.test);
        Ok(FoldFit {
            logits: m.logits_on(&xt, 64, opts.engine)?,
            temperature: m.temperature,
            threshold: m.threshold,
        })
    })
}

/// The rows and labels at `idx`.
fn pick<'a>(x: &'a [Vec<f32>], y: &[bool], idx: &[usize]) -> (Vec<&'a [f32]>, Vec<bool>) {
    (
        idx.iter().map(|&i| x[i].as_slice()).collect(),
        idx.iter().map(|&i| y[i]).collect(),
    )
}

/// Train LoRA adapters (and the head) from `start` on a fold's training split, choosing the
/// epoch, temperature and threshold on its development split.
pub fn fit_lora(
    start: &Lora,
    train: (&[&[f32]], &[bool]),
    dev: (&[&[f32]], &[bool]),
    opts: &LoraOpts,
) -> Result<(Lora, f32, f32)> {
    let mut m = start.clone();
    let losses = train_lora(&mut m, train.0, train.1, Some(dev), opts)?;
    let (temperature, threshold) = calibrate(&m.logits(dev.0, 64), dev.1);
    eprintln!(
        "    dev losses per epoch {:?}; temperature {temperature:.3}; threshold {threshold:.2}",
        losses
            .iter()
            .map(|l| (l * 1e4).round() / 1e4)
            .collect::<Vec<_>>(),
    );
    Ok((m, temperature, threshold))
}

/// [`fit_lora`] `soup` times (seeds `opts.seed + salt + 1000·j`) from the same `start`, then
/// their [`Lora::soup`], whose temperature and threshold are fitted on `dev` (one member when
/// `soup <= 1`).
pub fn fit_lora_soup(
    start: &Lora,
    train: (&[&[f32]], &[bool]),
    dev: (&[&[f32]], &[bool]),
    opts: &LoraOpts,
    salt: u64,
    soup: usize,
) -> Result<(Lora, f32, f32)> {
    let mut members = Vec::new();
    let mut last = None;
    for j in 0..soup.max(1) {
        let o = LoraOpts {
            seed: opts.seed.wrapping_add(salt).wrapping_add(1000 * j as u64),
            ..opts.clone()
        };
        let (m, t, th) = fit_lora(start, train, dev, &o)?;
        last = Some((t, th));
        members.push(m);
    }
    if members.len() == 1 {
        let (t, th) = last.expect("one member");
        return Ok((members.pop().expect("one member"), t, th));
    }
    let m = Lora::soup(&members)?;
    let z = m.logits(dev.0, 64);
    let (temperature, threshold) = calibrate(&z, dev.1);
    eprintln!(
        "    soup of {}: dev loss {:.4}; temperature {temperature:.3}; threshold {threshold:.2}",
        members.len(),
        crate::train::tune::bce(&z, dev.1, 1.0)
    );
    Ok((m, temperature, threshold))
}

/// Stratified k-fold CV of LoRA adapters on the top layers: every fold starts from `start`
/// (fresh adapters, or adapters pretrained on other data) and trains on its training split.
#[allow(clippy::too_many_arguments)]
pub fn cross_validate_lora(
    start: &Lora,
    x: &[Vec<f32>],
    y: &[bool],
    k: usize,
    seed: u64,
    opts: &LoraOpts,
    soup: usize,
    partner: Option<&FrozenPartner>,
) -> Result<TunedCv> {
    cross_validate_fits(y, k, seed, |idx| {
        let tr = pick(x, y, &idx.train);
        let dv = pick(x, y, &idx.dev);
        let (m, temperature, threshold) = fit_lora_soup(
            start,
            (&tr.0, &tr.1),
            (&dv.0, &dv.1),
            opts,
            idx.fold as u64,
            soup,
        )?;
        let (xt, _) = pick(x, y, &idx.test);
        let Some(fp) = partner else {
            return Ok(FoldFit {
                logits: m.logits(&xt, 64),
                temperature,
                threshold,
            });
        };
        // The frozen partner, trained on the same fold's training split (plus its extra data),
        // early-stopped and calibrated on the same development split.
        let rows = |ix: &[usize]| -> (Vec<Vec<f32>>, Vec<bool>) {
            (
                ix.iter().map(|&i| fp.x[i].clone()).collect(),
                ix.iter().map(|&i| y[i]).collect(),
            )
        };
        let (mut xtr, mut ytr) = rows(&idx.train);
        if let Some((ex, ey)) = fp.extra {
            xtr.extend(ex.iter().cloned());
            ytr.extend(ey.iter().copied());
        }
        let (xdv, ydv) = rows(&idx.dev);
        let head = train_head(
            &xtr,
            &ytr,
            Some((&xdv, &ydv)),
            fp.hidden,
            fp.seed,
            &fp.training,
        )?;
        let zm_dv = loaded_logits(&head, &xdv);
        let t_m = fit_temperature(&zm_dv, &ydv);
        let zb_dv = blend_logits(&m.logits(&dv.0, 64), temperature, &zm_dv, t_m);
        let (t_b, thr) = calibrate(&zb_dv, &ydv);
        let (xte, _) = rows(&idx.test);
        let zm_t = loaded_logits(&head, &xte);
        let zt_t = m.logits(&xt, 64);
        eprintln!("    blend with the frozen head: temperatures {temperature:.3} (tuned), {t_m:.3} (frozen), {t_b:.3} (blend); threshold {thr:.2}");
        Ok(FoldFit {
            logits: blend_logits(&zt_t, temperature, &zm_t, t_m),
            temperature: t_b,
            threshold: thr,
        })
    })
}

/// A frozen-encoder sentence head trained beside the tuned one in every fold and blended with
/// it ([`blend_logit`]): its features for every sentence, its extra training data, and how it
/// is trained.
pub struct FrozenPartner<'a> {
    pub x: &'a [Vec<f32>],
    pub extra: Option<(&'a [Vec<f32>], &'a [bool])>,
    pub hidden: usize,
    pub seed: u64,
    pub training: HeadTraining,
}
