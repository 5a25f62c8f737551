//! The frames head in k-fold cross-validation on SemEval-2023 Task 3 subtask 2 (English): the
//! report of `slant eval frames` and `slant train frames`, and the `frames/semeval2023-cvK`
//! evaluation of `slant eval all` ([`super::runs`]).
//!
//! Each article vector is the mean of its sentence features ([`article_vector`]); the outer CV
//! trains a head per fold with [`tf::fit`] (thresholds from an inner CV) and pools the
//! out-of-fold predictions. [`frames_estimates`] adds percentile-bootstrap intervals resampling
//! articles.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ci::{self, Estimate};
use super::{version_info, DataFile};
use crate::data::{self, frames::FramedArticle};
use crate::encode::{hex, Encoder};
use crate::heads::frames::article_vector;
use crate::segment;
use crate::train::{self, frames as tf};
use crate::vocab::FRAMES;
use crate::{Error, Result};

/// The data set as reports name it, with its number of articles.
pub fn dataset(n: usize) -> String {
    format!("SemEval-2023 Task 3 subtask 2 (English, {n} articles, 14 frames)")
}

/// Article vectors of the SemEval articles (mean of their sentence features).
pub fn article_features(
    enc: &Encoder,
    arts: &[FramedArticle],
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    let t0 = Instant::now();
    let spans: Vec<Vec<segment::SentenceSpan>> =
        arts.iter().map(|a| segment::split(&a.text)).collect();
    let texts: Vec<&str> = arts
        .iter()
        .zip(&spans)
        .flat_map(|(a, ss)| ss.iter().map(move |s| &a.text[s.start..s.end]))
        .collect();
    let f = train::embed_cached(enc, &texts, batch, Some(&train::cache_dir()))?;
    let mut out = Vec::with_capacity(arts.len());
    let mut k = 0;
    for (a, ss) in arts.iter().zip(&spans) {
        let v = article_vector(f[k..k + ss.len()].iter().map(Vec::as_slice))
            .ok_or_else(|| Error::Input(format!("article {} has no sentences", a.id)))?;
        out.push(v);
        k += ss.len();
    }
    eprintln!(
        "  features: {} articles, {} sentences in {:.1}s",
        arts.len(),
        texts.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// The labels file plus one digest of all article texts (id order).
pub fn data_files(data_dir: &Path, labels: &Path, arts: &[FramedArticle]) -> Result<Vec<DataFile>> {
    let mut h = Sha256::new();
    for a in arts {
        h.update(a.id.as_bytes());
        h.update(b"\0");
        h.update((a.text.len() as u64).to_le_bytes());
        h.update(a.text.as_bytes());
    }
    Ok(vec![
        DataFile::new(data_dir, labels)?,
        DataFile {
            path: format!(
                "{}/ ({} article files: sha256 over id, length and text in id order)",
                data::frames::ARTICLES,
                arts.len()
            ),
            sha256: hex(&h.finalize()),
        },
    ])
}

/// The 14 frame names, in head order.
pub fn labels() -> Vec<String> {
    FRAMES.iter().map(|s| s.to_string()).collect()
}

/// Micro- and macro-F1 of one fold.
#[derive(Debug, Clone, Serialize)]
pub struct FoldScore {
    pub fold: usize,
    pub n: u64,
    pub micro_f1: f64,
    pub macro_f1: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FramesManifest {
    pub slant_version: String,
    pub git_commit: String,
    pub encoder_sha256: String,
    pub data_files: Vec<DataFile>,
    pub split: String,
    pub seed: u64,
    pub opts: tf::FramesOpts,
    pub threads: usize,
}

/// The JSON of `slant eval frames`.
#[derive(Debug, Clone, Serialize)]
pub struct FramesReport {
    pub dataset: String,
    #[serde(flatten)]
    pub metrics: tf::MultiLabelMetrics,
    pub folds: Vec<FoldScore>,
    pub fold_micro_f1_mean: f64,
    pub fold_micro_f1_sd: f64,
    /// Micro-F1 of always predicting every frame seen in at least half the training articles
    /// (a majority baseline), pooled over the same folds.
    pub majority_baseline_micro_f1: f64,
    pub manifest: FramesManifest,
}

/// A cross-validation: the report and the pooled out-of-fold predictions with the gold labels
/// (one row per article, id order; one flag per frame).
#[derive(Debug, Clone)]
pub struct FramesCv {
    pub report: FramesReport,
    pub pred: Vec<Vec<bool>>,
    pub gold: Vec<Vec<bool>>,
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The split definition of a `k`-fold CV.
pub fn split(k: usize, opts: &tf::FramesOpts) -> String {
    format!(
        "{k}-fold CV over articles (seeded shuffle, seed {}); in each fold the head is \
         trained on the other folds, with each frame's threshold chosen by an inner \
         {}-fold CV on those folds; metrics pooled over the out-of-fold predictions",
        opts.seed, opts.inner_folds
    )
}

/// `k`-fold CV of the frames head on the SemEval articles under `data_dir`.
pub fn cross_validate(
    enc: &Encoder,
    data_dir: &Path,
    k: usize,
    opts: &tf::FramesOpts,
    batch: usize,
) -> Result<FramesCv> {
    if k < 2 {
        return Err(Error::Input("--cv needs at least 2 folds".into()));
    }
    let (arts, labels_path) = data::frames::semeval_frames(data_dir)?;
    let x = article_features(enc, &arts, batch)?;
    let y: Vec<Vec<bool>> = arts.iter().map(|a| a.labels.clone()).collect();
    let names = labels();
    let t0 = Instant::now();
    let (pred, _, fold) = tf::cross_validate(&x, &y, &names, k, opts)?;
    eprintln!("  {k}-fold CV in {:.1}s", t0.elapsed().as_secs_f64());
    let metrics = tf::MultiLabelMetrics::new(&pred, &y, &names);
    let mut folds = Vec::new();
    let mut base_pred = vec![Vec::new(); y.len()];
    for f in 0..k {
        let idx: Vec<usize> = (0..y.len()).filter(|&i| fold[i] == f).collect();
        let p: Vec<Vec<bool>> = idx.iter().map(|&i| pred[i].clone()).collect();
        let g: Vec<Vec<bool>> = idx.iter().map(|&i| y[i].clone()).collect();
        let m = tf::MultiLabelMetrics::new(&p, &g, &names);
        folds.push(FoldScore {
            fold: f,
            n: m.n,
            micro_f1: round6(m.micro_f1),
            macro_f1: round6(m.macro_f1),
        });
        let train: Vec<usize> = (0..y.len()).filter(|&i| fold[i] != f).collect();
        let majority: Vec<bool> = (0..names.len())
            .map(|j| 2 * train.iter().filter(|&&i| y[i][j]).count() >= train.len())
            .collect();
        for &i in &idx {
            base_pred[i] = majority.clone();
        }
    }
    let mean = folds.iter().map(|f| f.micro_f1).sum::<f64>() / k as f64;
    let sd = (folds
        .iter()
        .map(|f| (f.micro_f1 - mean).powi(2))
        .sum::<f64>()
        / (k as f64 - 1.0))
        .sqrt();
    let baseline = tf::MultiLabelMetrics::new(&base_pred, &y, &names).micro_f1;
    let (version, commit) = version_info();
    let report = FramesReport {
        dataset: dataset(arts.len()),
        metrics,
        folds,
        fold_micro_f1_mean: round6(mean),
        fold_micro_f1_sd: round6(sd),
        majority_baseline_micro_f1: round6(baseline),
        manifest: FramesManifest {
            slant_version: version,
            git_commit: commit,
            encoder_sha256: enc.weights_sha256().into(),
            data_files: data_files(data_dir, &labels_path, &arts)?,
            split: split(k, opts),
            seed: opts.seed,
            opts: opts.clone(),
            threads: rayon::current_num_threads(),
        },
    };
    Ok(FramesCv {
        report,
        pred,
        gold: y,
    })
}

/// Names of the pooled metrics of [`frames_estimates`], in order.
pub const FRAMES_METRICS: [&str; 4] = ["micro_f1", "macro_f1", "micro_precision", "micro_recall"];

/// Micro-/macro-F1 and micro P/R from summed per-label (tp, fp, fn) triples, then each label's F1.
fn multilabel_values(s: &[f64]) -> Vec<f64> {
    let prf = |tp: f64, fp: f64, fn_: f64| {
        let ratio = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
        let (p, r) = (ratio(tp, tp + fp), ratio(tp, tp + fn_));
        let f1 = if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        };
        (p, r, f1)
    };
    let labels = s.len() / 3;
    let per: Vec<f64> = (0..labels)
        .map(|j| prf(s[3 * j], s[3 * j + 1], s[3 * j + 2]).2)
        .collect();
    let sum = |o: usize| (0..labels).map(|j| s[3 * j + o]).sum::<f64>();
    let (p, r, f1) = prf(sum(0), sum(1), sum(2));
    let macro_f1 = if labels == 0 {
        0.0
    } else {
        per.iter().sum::<f64>() / labels as f64
    };
    let mut v = vec![f1, macro_f1, p, r];
    v.extend(per);
    v
}

/// Pooled metrics ([`FRAMES_METRICS`]) and each label's F1, with 95% percentile-bootstrap
/// intervals resampling articles (`reps` resamples from `seed`). Returns the pooled estimates
/// and the per-label F1 estimates (label order).
pub fn frames_estimates(
    pred: &[Vec<bool>],
    gold: &[Vec<bool>],
    reps: usize,
    seed: u64,
) -> (BTreeMap<String, Estimate>, Vec<Estimate>) {
    let labels = gold.first().map_or(0, Vec::len);
    let docs: Vec<Vec<f64>> = pred
        .iter()
        .zip(gold)
        .map(|(p, g)| {
            (0..labels)
                .flat_map(|j| {
                    [
                        (p[j] && g[j]) as u8 as f64,
                        (p[j] && !g[j]) as u8 as f64,
                        (!p[j] && g[j]) as u8 as f64,
                    ]
                })
                .collect()
        })
        .collect();
    let mut total = vec![0.0; 3 * labels];
    for d in &docs {
        for (t, x) in total.iter_mut().zip(d) {
            *t += x;
        }
    }
    let point = multilabel_values(&total);
    let cis = ci::bootstrap_docs(&docs, multilabel_values, reps, seed);
    let est: Vec<Estimate> = point
        .into_iter()
        .zip(cis)
        .map(|(value, ci)| Estimate { value, ci })
        .collect();
    let pooled = FRAMES_METRICS
        .iter()
        .zip(&est)
        .map(|(n, e)| (n.to_string(), *e))
        .collect();
    (pooled, est[FRAMES_METRICS.len()..].to_vec())
}

impl FramesReport {
    /// The human table of `slant eval frames`.
    pub fn table(&self) -> String {
        let m = &self.metrics;
        let mut s = format!(
            "dataset  {}\nsplit    {}\nn {}  micro-P {:.4}  micro-R {:.4}  micro-F1 {:.4}  macro-F1 {:.4}\n\
             per-fold micro-F1 {:.4} ± {:.4} (sd); majority baseline micro-F1 {:.4}\n\n",
            self.dataset,
            self.manifest.split,
            m.n,
            m.micro_precision,
            m.micro_recall,
            m.micro_f1,
            m.macro_f1,
            self.fold_micro_f1_mean,
            self.fold_micro_f1_sd,
            self.majority_baseline_micro_f1
        );
        s.push_str(&format!(
            "{:<46} {:>7} {:>5} {:>5} {:>5} {:>9} {:>7} {:>7}\n",
            "frame", "support", "TP", "FP", "FN", "precision", "recall", "F1"
        ));
        for l in &m.per_label {
            s.push_str(&format!(
                "{:<46} {:>7} {:>5} {:>5} {:>5} {:>9.4} {:>7.4} {:>7.4}\n",
                l.label,
                l.support,
                l.counts.tp,
                l.counts.fp,
                l.counts.fn_,
                l.scores.precision,
                l.scores.recall,
                l.scores.f1
            ));
        }
        s.push_str(&format!(
            "encoder {}  git {}\n",
            &self.manifest.encoder_sha256[..12],
            self.manifest.git_commit
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_match_the_pooled_metrics() {
        // Same data as train::frames' hand computation: micro-F1 0.75, macro-F1 0.75.
        let pred = vec![vec![true, false], vec![true, true], vec![false, true]];
        let gold = vec![vec![true, false], vec![false, true], vec![true, true]];
        let (pooled, per) = frames_estimates(&pred, &gold, 200, 3);
        let m = tf::MultiLabelMetrics::new(&pred, &gold, &["A".into(), "B".into()]);
        assert!((pooled["micro_f1"].value - m.micro_f1).abs() < 1e-12);
        assert!((pooled["macro_f1"].value - m.macro_f1).abs() < 1e-12);
        assert!((pooled["micro_precision"].value - m.micro_precision).abs() < 1e-12);
        assert!((per[0].value - 0.5).abs() < 1e-12 && (per[1].value - 1.0).abs() < 1e-12);
        let ci = pooled["micro_f1"].ci.unwrap();
        assert!(ci[0] <= 0.75 && 0.75 <= ci[1]);
        assert_eq!(
            frames_estimates(&pred, &gold, 200, 3),
            (pooled, per),
            "seeded"
        );
    }
}
