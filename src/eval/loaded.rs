//! Evaluation of the loaded-language sentence head, shared by `slant eval loaded` and
//! `slant eval all`: a fixed head on a labelled set ([`evaluate_head`]) or stratified k-fold
//! cross-validation that trains one head per fold ([`cross_validate`]).

use std::time::Instant;

use serde::Serialize;

use super::{BinaryMetrics, DataFile};
use crate::data::LabelledSentence;
use crate::encode::Encoder;
use crate::heads::math::sigmoid;
use crate::heads::tagger::{outside_label, TaggerHead};
use crate::heads::{span_evidence, MlpHead, Pooling, SentenceFeatures};
use crate::train::{self, TrainOpts};
use crate::{stats, Result};
use sha2::{Digest, Sha256};

/// Cached encoder features of `rows` (see [`train::embed_cached`]); prints the time on stderr.
pub fn features(
    enc: &Encoder,
    rows: &[LabelledSentence],
    batch: usize,
    what: &str,
) -> Result<Vec<Vec<f32>>> {
    let t0 = Instant::now();
    let cache = train::cache_dir();
    let texts: Vec<&str> = rows.iter().map(|s| s.text.as_str()).collect();
    let f = train::embed_cached(enc, &texts, batch, Some(&cache))?;
    eprintln!(
        "  features of {what}: {} sentences in {:.1}s",
        rows.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(f)
}

/// Features of `rows` pooled as `pooling`, optionally followed by a span head's token evidence
/// (the max and the mean over the sentence's word-piece tokens of P(not `O`)). Mean pooling
/// without evidence is [`features`]; otherwise the encoder runs once with token states, and the
/// mean/max vectors and the evidence are cached (keyed by the encoder, the texts and, for the
/// evidence, the span head's sha256).
pub fn token_features(
    enc: &Encoder,
    rows: &[LabelledSentence],
    batch: usize,
    what: &str,
    pooling: Pooling,
    evidence: Option<(&TaggerHead, &str)>,
) -> Result<Vec<Vec<f32>>> {
    if pooling == Pooling::Mean && evidence.is_none() {
        return features(enc, rows, batch, what);
    }
    let t0 = Instant::now();
    let texts: Vec<&str> = rows.iter().map(|s| s.text.as_str()).collect();
    let dir = train::cache_dir();
    let key = |tag: &str, extra: &str| {
        let mut h = Sha256::new();
        h.update(tag.as_bytes());
        h.update(enc.weights_sha256().as_bytes());
        h.update(enc.max_tokens().to_le_bytes());
        h.update(enc.variant().as_bytes());
        h.update(extra.as_bytes());
        for t in &texts {
            h.update((t.len() as u64).to_le_bytes());
            h.update(t.as_bytes());
        }
        dir.join(format!("{}.f32", crate::encode::hex(&h.finalize())))
    };
    let dim = enc.hidden_size();
    let mm_path = key("slant-features-v1\0mean_max_l2\0", "");
    let ev_path = evidence.map(|(_, sha)| key("slant-span-evidence-v1\0", sha));
    let read = |p: &std::path::Path, w: usize| -> Option<Vec<Vec<f32>>> {
        let b = std::fs::read(p).ok()?;
        (b.len() == texts.len() * w * 4).then(|| {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<f32>>()
                .chunks(w)
                .map(<[f32]>::to_vec)
                .collect()
        })
    };
    let mut mm = read(&mm_path, 2 * dim);
    let mut ev = ev_path.as_ref().and_then(|p| read(p, 2));
    if mm.is_none() || (evidence.is_some() && ev.is_none()) {
        let (mut m_out, mut e_out) = (Vec::new(), Vec::new());
        for chunk in texts.chunks(1024) {
            let (encs, _) = enc.encode_tokens(chunk, batch, Default::default())?;
            for e in &encs {
                let n = e.n_tokens.min(e.offsets.len());
                let states = &e.states[..n * dim];
                m_out.push(Pooling::MeanMax.features(&e.pooled, states));
                if let Some((head, _)) = evidence {
                    let probs = head.predict(&e.states[..n * head.state_dim()], n);
                    e_out
                        .push(span_evidence(&probs, &e.offsets[..n], outside_label(head)).to_vec());
                }
            }
        }
        std::fs::create_dir_all(&dir).map_err(|e| crate::Error::io(&dir, e))?;
        let write = |p: &std::path::Path, v: &[Vec<f32>]| -> Result<()> {
            let bytes: Vec<u8> = v.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
            let tmp = p.with_extension("f32.part");
            std::fs::write(&tmp, bytes).map_err(|e| crate::Error::io(&tmp, e))?;
            std::fs::rename(&tmp, p).map_err(|e| crate::Error::io(p, e))
        };
        write(&mm_path, &m_out)?;
        if let Some(p) = &ev_path {
            write(p, &e_out)?;
        }
        mm = Some(m_out);
        ev = evidence.map(|_| e_out);
    }
    let mm = mm.expect("computed above");
    let out = (0..texts.len())
        .map(|i| {
            let mut f = match pooling {
                Pooling::Mean => mm[i][..dim].to_vec(),
                Pooling::MeanMax => mm[i].clone(),
            };
            if let Some(ev) = &ev {
                f.extend_from_slice(&ev[i]);
            }
            f
        })
        .collect();
    eprintln!(
        "  features ({}{}) of {what}: {} sentences in {:.1}s",
        pooling.name(),
        if evidence.is_some() {
            " + span evidence"
        } else {
            ""
        },
        rows.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// Experiment features: the L2-normalised element-wise max, over each sentence's word-piece
/// tokens, of a span head's hidden-layer activations ([`TaggerHead::hidden_activations`]),
/// cached by encoder, texts and the span head's sha256.
pub fn span_hidden_features(
    enc: &Encoder,
    rows: &[LabelledSentence],
    batch: usize,
    what: &str,
    head: &TaggerHead,
    sha: &str,
) -> Result<Vec<Vec<f32>>> {
    let t0 = Instant::now();
    let texts: Vec<&str> = rows.iter().map(|s| s.text.as_str()).collect();
    let dir = train::cache_dir();
    let mut h = Sha256::new();
    h.update(b"slant-span-hidden-max-v1\0");
    h.update(enc.weights_sha256().as_bytes());
    h.update(enc.max_tokens().to_le_bytes());
    h.update(enc.variant().as_bytes());
    h.update(sha.as_bytes());
    for t in &texts {
        h.update((t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
    }
    let path = dir.join(format!("{}.f32", crate::encode::hex(&h.finalize())));
    let w = head.hidden;
    if w == 0 {
        return Err(crate::Error::Mismatch(
            "--span-hidden needs a span head with a hidden layer".into(),
        ));
    }
    if let Ok(b) = std::fs::read(&path) {
        if b.len() == texts.len() * w * 4 {
            let flat: Vec<f32> = b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            return Ok(flat.chunks(w).map(<[f32]>::to_vec).collect());
        }
    }
    let dim = enc.hidden_size();
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(1024) {
        let (encs, _) = enc.encode_tokens(chunk, batch, Default::default())?;
        for e in &encs {
            let n = e.n_tokens.min(e.offsets.len());
            let act = head
                .hidden_activations(&e.states[..n * dim], n)
                .ok_or_else(|| {
                    crate::Error::Mismatch("span head without a plain hidden layer".into())
                })?;
            let mut mx = vec![0.0f32; w];
            for (row, &(a, b)) in act.chunks_exact(w).zip(&e.offsets[..n]) {
                if a < b {
                    for (m, v) in mx.iter_mut().zip(row) {
                        *m = m.max(*v);
                    }
                }
            }
            out.push(crate::heads::sentence_features(&mx));
        }
    }
    std::fs::create_dir_all(&dir).map_err(|e| crate::Error::io(&dir, e))?;
    let bytes: Vec<u8> = out.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    let tmp = path.with_extension("f32.part");
    std::fs::write(&tmp, bytes).map_err(|e| crate::Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| crate::Error::io(&path, e))?;
    eprintln!(
        "  span-head hidden max features of {what}: {} sentences in {:.1}s",
        rows.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// The features a sentence head of kind `kind` reads for `rows` (cached): mean pooling, or mean
/// pooling plus the token evidence of `span_head` (which must be the head `kind` names: its
/// sha256 is checked; `span_head` is `(head, sha256, where it came from)`).
pub fn head_features(
    enc: &Encoder,
    rows: &[LabelledSentence],
    batch: usize,
    what: &str,
    kind: &SentenceFeatures,
    span_head: Option<(&TaggerHead, &str, &str)>,
) -> Result<Vec<Vec<f32>>> {
    match kind {
        SentenceFeatures::Mean => features(enc, rows, batch, what),
        SentenceFeatures::MeanSpanEvidence { span_sha256 } => {
            kind.check_span_head(
                span_head.map(|(_, sha, _)| sha),
                span_head.map_or("no span head", |(_, _, w)| w),
            )?;
            let (head, _, _) = span_head.expect("checked above");
            token_features(
                enc,
                rows,
                batch,
                what,
                Pooling::Mean,
                Some((head, span_sha256)),
            )
        }
    }
}

/// Gold labels of `rows`.
pub fn labels(rows: &[LabelledSentence]) -> Vec<bool> {
    rows.iter().map(|s| s.label).collect()
}

/// The head's probabilities, in input order (parallel, deterministic).
pub fn probs(head: &MlpHead, x: &[Vec<f32>]) -> Vec<f32> {
    use rayon::prelude::*;
    x.par_iter().map(|r| head.prob(r)).collect()
}

/// The head's logits, in input order (parallel, deterministic).
pub fn logits(head: &MlpHead, x: &[Vec<f32>]) -> Vec<f32> {
    use rayon::prelude::*;
    x.par_iter().map(|r| head.logit(r)).collect()
}

/// One bin of a reliability table.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ReliabilityBin {
    pub lo: f64,
    pub hi: f64,
    pub n: u64,
    /// Mean predicted probability in the bin.
    pub mean_prob: f64,
    /// Observed share of positives in the bin.
    pub positive_rate: f64,
}

/// Reliability table with [`ECE_BINS`] equal-width bins (empty bins left out).
pub fn reliability(p: &[f32], gold: &[bool]) -> Vec<ReliabilityBin> {
    let b = ECE_BINS;
    let mut n = vec![0u64; b];
    let mut sp = vec![0f64; b];
    let mut sy = vec![0f64; b];
    for (&p, &g) in p.iter().zip(gold) {
        let p = (p as f64).clamp(0.0, 1.0);
        let i = ((p * b as f64) as usize).min(b - 1);
        n[i] += 1;
        sp[i] += p;
        sy[i] += g as u8 as f64;
    }
    (0..b)
        .filter(|&i| n[i] > 0)
        .map(|i| ReliabilityBin {
            lo: i as f64 / b as f64,
            hi: (i + 1) as f64 / b as f64,
            n: n[i],
            mean_prob: sp[i] / n[i] as f64,
            positive_rate: sy[i] / n[i] as f64,
        })
        .collect()
}

/// Metrics of thresholding `p` at `t`.
pub fn metrics_at(p: &[f32], gold: &[bool], t: f32) -> BinaryMetrics {
    BinaryMetrics::from_pairs(p.iter().zip(gold).map(|(&p, &g)| (p >= t, g)))
}

/// Bins of [`ece_of`] (equal width).
pub const ECE_BINS: usize = 15;

/// Expected calibration error with [`ECE_BINS`] equal-width bins.
pub fn ece_of(p: &[f32], gold: &[bool]) -> f64 {
    let p64: Vec<f64> = p.iter().map(|&x| x as f64).collect();
    stats::ece(&p64, gold, ECE_BINS)
}

/// Training options of the loaded head with `hidden` units and `seed`.
pub fn train_opts(hidden: usize, seed: u64) -> TrainOpts {
    TrainOpts {
        hidden,
        seed,
        ..TrainOpts::default()
    }
}

/// Per-item predictions of an evaluation (CV: out-of-fold).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Predictions {
    pub prob: Vec<f32>,
    pub pred: Vec<bool>,
    pub gold: Vec<bool>,
}

/// One fold of a cross-validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldResult {
    pub fold: usize,
    pub n: u64,
    pub threshold: f32,
    pub macro_f1: f64,
}

/// What an evaluation of the loaded head found.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedOutcome {
    /// The head's threshold (`None` for CV: one per fold).
    pub threshold: Option<f32>,
    pub metrics: BinaryMetrics,
    pub ece: f64,
    /// ECE before temperature scaling, where the probabilities were calibrated.
    pub ece_uncalibrated: Option<f64>,
    /// Temperatures fitted on the training side (one per fold in CV).
    pub temperatures: Vec<f32>,
    pub folds: Vec<FoldResult>,
    pub fold_macro_f1_mean: Option<f64>,
    pub fold_macro_f1_sd: Option<f64>,
    pub predictions: Predictions,
}

/// A fixed head on features `x` with gold labels `y`.
pub fn evaluate_head(head: &MlpHead, x: &[Vec<f32>], y: &[bool]) -> LoadedOutcome {
    evaluate_probs(probs(head, x), y, head.threshold)
}

/// The outcome of fixed probabilities `p` decided at `threshold`.
pub fn evaluate_probs(p: Vec<f32>, y: &[bool], threshold: f32) -> LoadedOutcome {
    let pred: Vec<bool> = p.iter().map(|&v| v >= threshold).collect();
    LoadedOutcome {
        threshold: Some(threshold),
        metrics: metrics_at(&p, y, threshold),
        ece: ece_of(&p, y),
        ece_uncalibrated: None,
        temperatures: Vec::new(),
        folds: Vec::new(),
        fold_macro_f1_mean: None,
        fold_macro_f1_sd: None,
        predictions: Predictions {
            prob: p,
            pred,
            gold: y.to_vec(),
        },
    }
}

/// Options of [`cross_validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CvOpts {
    /// Number of folds (at least 2).
    pub k: usize,
    /// Seed of the folds and of training.
    pub seed: u64,
    /// Hidden units of the heads.
    pub hidden: usize,
}

/// Description of the CV protocol, as written in reports.
pub fn cv_split(opts: &CvOpts, dataset: &str, with_extra: Option<&str>) -> String {
    format!(
        "stratified {}-fold CV on {dataset} (seed {}); each fold trained on the other folds{}; \
         threshold and epoch chosen on a stratified 10% of the training folds; metrics pooled over folds",
        opts.k,
        opts.seed,
        with_extra.map_or(String::new(), |e| format!(" plus {e}"))
    )
}

/// Stratified k-fold CV: each fold's head is trained on the other folds (plus `extra`
/// training data when given); inside the training folds a seeded stratified 10% picks the
/// epoch (early stopping) and the threshold. Metrics are pooled over the out-of-fold
/// predictions. Per-fold lines go to stderr.
pub fn cross_validate(
    x: &[Vec<f32>],
    y: &[bool],
    extra: Option<(&[Vec<f32>], &[bool])>,
    opts: &CvOpts,
) -> Result<LoadedOutcome> {
    cross_validate_with(x, y, extra, opts, &HeadTraining::default())
}

/// How a sentence head is trained beyond [`TrainOpts`]' defaults (`slant train loaded` and the
/// `--cv` experiments): a seed ensemble, weight decay, and how often each BABE training row is
/// repeated against the extra (anno-lexical) data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeadTraining {
    /// Heads trained with seeds `seed, seed + 1, ...`, averaged into one ([`MlpHead::average`]).
    pub ensemble: usize,
    pub weight_decay: f64,
    /// Each in-domain training row appears this many times (1 = as is).
    pub repeat: usize,
}

impl Default for HeadTraining {
    fn default() -> Self {
        Self {
            ensemble: 1,
            weight_decay: TrainOpts::default().weight_decay,
            repeat: 1,
        }
    }
}

/// Train a sentence head (a seed ensemble when `t.ensemble > 1`, early-stopping each member on
/// `dev`); threshold and temperature are left to the caller.
pub fn train_head(
    x: &[Vec<f32>],
    y: &[bool],
    dev: Option<(&[Vec<f32>], &[bool])>,
    hidden: usize,
    seed: u64,
    t: &HeadTraining,
) -> Result<MlpHead> {
    let heads = (0..t.ensemble.max(1) as u64)
        .map(|i| {
            let opts = TrainOpts {
                weight_decay: t.weight_decay,
                ..train_opts(hidden, seed.wrapping_add(i))
            };
            train::train_mlp(x, y, dev, &opts)
        })
        .collect::<Result<Vec<_>>>()?;
    if heads.len() == 1 {
        return Ok(heads.into_iter().next().expect("one head"));
    }
    MlpHead::average(&heads)
}

/// [`cross_validate`] with the heads trained as `t` says.
pub fn cross_validate_with(
    x: &[Vec<f32>],
    y: &[bool],
    extra: Option<(&[Vec<f32>], &[bool])>,
    opts: &CvOpts,
    t: &HeadTraining,
) -> Result<LoadedOutcome> {
    let k = opts.k;
    if k < 2 {
        return Err(crate::Error::Input("--cv needs at least 2 folds".into()));
    }
    let fold = train::stratified_folds(y, k, opts.seed);
    let mut pred = vec![false; y.len()];
    let mut p_all = vec![0f32; y.len()];
    let mut p_raw = vec![0f32; y.len()];
    let mut temps = Vec::new();
    let mut folds = Vec::new();
    for f in 0..k {
        let train_idx: Vec<usize> = (0..y.len()).filter(|&i| fold[i] != f).collect();
        let ytr_all: Vec<bool> = train_idx.iter().map(|&i| y[i]).collect();
        let inner = train::stratified_folds(&ytr_all, 10, opts.seed.wrapping_add(f as u64 + 1));
        let (mut xtr, mut ytr, mut xdv, mut ydv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (j, &i) in train_idx.iter().enumerate() {
            if inner[j] == 0 {
                xdv.push(x[i].clone());
                ydv.push(y[i]);
            } else {
                xtr.push(x[i].clone());
                ytr.push(y[i]);
            }
        }
        if t.repeat > 1 {
            let n = xtr.len();
            for _ in 1..t.repeat {
                xtr.extend_from_within(..n);
                ytr.extend_from_within(..n);
            }
        }
        if let Some((ex, ey)) = extra {
            xtr.extend(ex.iter().cloned());
            ytr.extend(ey.iter().copied());
        }
        let head = train_head(&xtr, &ytr, Some((&xdv, &ydv)), opts.hidden, opts.seed, t)?;
        // Temperature scaling fitted on the development part of the training folds; the
        // threshold is chosen on the calibrated development probabilities.
        let (temp, thr) = super::calibrate(&logits(&head, &xdv), &ydv);
        let test_idx: Vec<usize> = (0..y.len()).filter(|&i| fold[i] == f).collect();
        let xt: Vec<Vec<f32>> = test_idx.iter().map(|&i| x[i].clone()).collect();
        let zt = logits(&head, &xt);
        for (j, &i) in test_idx.iter().enumerate() {
            p_raw[i] = sigmoid(zt[j]);
            p_all[i] = sigmoid(zt[j] / temp);
            pred[i] = p_all[i] >= thr;
        }
        temps.push(temp);
        let m = BinaryMetrics::from_pairs(test_idx.iter().map(|&i| (pred[i], y[i])));
        eprintln!(
            "  fold {f}: n {} threshold {thr:.2} macro-F1 {:.4}",
            m.n, m.macro_f1
        );
        folds.push(FoldResult {
            fold: f,
            n: m.n,
            threshold: thr,
            macro_f1: (m.macro_f1 * 1e6).round() / 1e6,
        });
    }
    let mean = folds.iter().map(|f| f.macro_f1).sum::<f64>() / k as f64;
    let sd = (folds
        .iter()
        .map(|f| (f.macro_f1 - mean).powi(2))
        .sum::<f64>()
        / (k as f64 - 1.0))
        .sqrt();
    Ok(LoadedOutcome {
        threshold: None,
        metrics: BinaryMetrics::from_pairs(pred.iter().copied().zip(y.iter().copied())),
        ece: ece_of(&p_all, y),
        ece_uncalibrated: Some(ece_of(&p_raw, y)),
        temperatures: temps,
        folds,
        fold_macro_f1_mean: Some(mean),
        fold_macro_f1_sd: Some(sd),
        predictions: Predictions {
            prob: p_all,
            pred,
            gold: y.to_vec(),
        },
    })
}

/// Manifest of `slant eval loaded`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalManifest {
    pub slant_version: String,
    pub git_commit: String,
    pub encoder_sha256: String,
    pub head_sha256: Option<String>,
    pub data_files: Vec<DataFile>,
    pub split: String,
    pub seed: u64,
    pub threads: usize,
}

/// The JSON report of `slant eval loaded --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub dataset: String,
    pub split: String,
    pub threshold: Option<f32>,
    #[serde(flatten)]
    pub metrics: BinaryMetrics,
    pub ece: f64,
    /// ECE before temperature scaling, where probabilities were calibrated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ece_uncalibrated: Option<f64>,
    /// Temperatures fitted on the training side (one per fold in CV).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub temperatures: Vec<f32>,
    /// Reliability table of the (calibrated) probabilities, 15 equal-width bins.
    pub reliability: Vec<ReliabilityBin>,
    /// The command that gave this report (`DIR` for the data folder).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub folds: Vec<FoldResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fold_macro_f1_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fold_macro_f1_sd: Option<f64>,
    pub manifest: EvalManifest,
    /// Per-sentence probabilities, decisions and gold labels (for `--predictions`).
    #[serde(skip)]
    pub predictions: Predictions,
}

impl EvalReport {
    /// Report of `outcome` on `dataset` / `split`.
    pub fn new(dataset: &str, split: &str, outcome: LoadedOutcome, manifest: EvalManifest) -> Self {
        Self {
            dataset: dataset.into(),
            split: split.into(),
            threshold: outcome.threshold,
            metrics: outcome.metrics,
            ece: outcome.ece,
            ece_uncalibrated: outcome.ece_uncalibrated,
            temperatures: outcome.temperatures.clone(),
            reliability: reliability(&outcome.predictions.prob, &outcome.predictions.gold),
            command: None,
            folds: outcome.folds,
            fold_macro_f1_mean: outcome.fold_macro_f1_mean,
            fold_macro_f1_sd: outcome.fold_macro_f1_sd,
            manifest,
            predictions: outcome.predictions,
        }
    }

    /// The human table of `slant eval loaded`.
    pub fn table(&self) -> String {
        let m = &self.metrics;
        let mut s = format!("dataset  {}\nsplit    {}\n", self.dataset, self.split);
        if let Some(t) = self.threshold {
            s += &format!("threshold {t:.2}\n");
        }
        s += &format!(
            "n {}  TP {}  FP {}  FN {}  TN {}\n",
            m.n, m.tp, m.fp, m.fn_, m.tn
        );
        s += &format!(
            "{:<12} {:>9} {:>9} {:>9} {:>8}\n",
            "class", "precision", "recall", "F1", "support"
        );
        for (name, c) in [("loaded", &m.positive), ("not loaded", &m.negative)] {
            s += &format!(
                "{:<12} {:>9.4} {:>9.4} {:>9.4} {:>8}\n",
                name, c.precision, c.recall, c.f1, c.support
            );
        }
        s += &format!(
            "macro-F1 {:.4}  accuracy {:.4}  ECE {:.4}\n",
            m.macro_f1, m.accuracy, self.ece
        );
        if let Some(u) = self.ece_uncalibrated {
            s += &format!("ECE before temperature scaling {u:.4}\n");
        }
        if let (Some(mean), Some(sd)) = (self.fold_macro_f1_mean, self.fold_macro_f1_sd) {
            s += &format!("per-fold macro-F1 {mean:.4} ± {sd:.4} (sd)\n");
        }
        s += &format!(
            "encoder {}  git {}\n",
            &self.manifest.encoder_sha256[..12.min(self.manifest.encoder_sha256.len())],
            self.manifest.git_commit
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two clusters in 4 dimensions, labelled by cluster.
    fn blobs(n: usize) -> (Vec<Vec<f32>>, Vec<bool>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let pos = i % 3 == 0;
            let s = if pos { 1.0 } else { -1.0 };
            let j = (i % 7) as f32 / 10.0;
            x.push(vec![s + j, s - j, j, -j]);
            y.push(pos);
        }
        (x, y)
    }

    #[test]
    fn cross_validation_is_seeded_and_pooled() {
        let (x, y) = blobs(60);
        let opts = CvOpts {
            k: 3,
            seed: 7,
            hidden: 0,
        };
        let a = cross_validate(&x, &y, None, &opts).unwrap();
        assert_eq!(a, cross_validate(&x, &y, None, &opts).unwrap());
        assert_eq!(a.metrics.n, 60);
        assert_eq!(a.folds.len(), 3);
        assert_eq!(a.folds.iter().map(|f| f.n).sum::<u64>(), 60);
        assert_eq!(a.predictions.gold, y);
        // Pooled metrics are those of the out-of-fold predictions; the fold mean is the mean.
        let p = &a.predictions;
        assert_eq!(
            a.metrics,
            BinaryMetrics::from_pairs(p.pred.iter().copied().zip(y.iter().copied()))
        );
        let mean = a.folds.iter().map(|f| f.macro_f1).sum::<f64>() / 3.0;
        assert!((a.fold_macro_f1_mean.unwrap() - mean).abs() < 1e-12);
        assert_ne!(
            a,
            cross_validate(&x, &y, None, &CvOpts { seed: 8, ..opts }).unwrap()
        );
        assert!(cross_validate(&x, &y, None, &CvOpts { k: 1, ..opts }).is_err());
    }

    #[test]
    fn fixed_head_predictions_follow_its_threshold() {
        let (x, y) = blobs(30);
        let mut head = train::train_mlp(&x, &y, None, &train_opts(0, 1)).unwrap();
        head.threshold = 0.999;
        let o = evaluate_head(&head, &x, &y);
        assert_eq!(o.threshold, Some(0.999));
        assert_eq!(o.metrics, metrics_at(&o.predictions.prob, &y, 0.999));
        assert!(o
            .predictions
            .pred
            .iter()
            .zip(&o.predictions.prob)
            .all(|(&d, &p)| d == (p >= 0.999)));
    }
}
