//! Bootstrap confidence intervals for evaluation metrics, resampling *documents*.
//!
//! Every metric slant reports (macro-F1, precision, boundary F1, exact-match rate, ECE, …) is a
//! function of additive statistics (confusion counts, calibration-bin sums). Each document
//! (an article when the dataset has article ids, else a sentence; a case for the splitter)
//! contributes one vector of such statistics. A resample draws `n` documents with replacement,
//! sums their vectors and recomputes the metrics; the interval is the 2.5th and 97.5th
//! percentiles over the resamples ([`crate::stats::percentile_sorted`]).
//!
//! The draws come from one seeded `ChaCha8Rng` and run sequentially, and the statistics are
//! counts (exact in `f64`) or sums taken in document order, so the intervals are bit-for-bit the
//! same for a given input and seed, whatever the thread count.
//!
//! Reference: B. Efron & R. Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13.

use std::collections::BTreeMap;

use rand::Rng;
use serde::Serialize;

use super::BinaryMetrics;
use crate::stats::{percentile_sorted, rng};

/// Default number of bootstrap resamples of `slant eval all`.
pub const DEFAULT_REPS: usize = 1000;
/// Default bootstrap seed of `slant eval all`.
pub const DEFAULT_SEED: u64 = 13;
/// Calibration bins of the expected calibration error.
pub const ECE_BINS: usize = 10;

/// A metric with its percentile-bootstrap 95% interval (`None` with fewer than 2 documents).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub ci: Option<[f64; 2]>,
}

/// Percentile bootstrap over documents.
///
/// `docs[i]` holds the additive statistics of document `i` (all vectors the same length);
/// `metrics` maps summed statistics to metric values (always the same number of them). Returns,
/// per metric, the 95% interval of the finite values over `reps` resamples, or `None` when there
/// are fewer than 2 documents, `reps == 0`, or no resample gives a finite value.
pub fn bootstrap_docs<F>(
    docs: &[Vec<f64>],
    metrics: F,
    reps: usize,
    seed: u64,
) -> Vec<Option<[f64; 2]>>
where
    F: Fn(&[f64]) -> Vec<f64>,
{
    let width = docs.first().map_or(0, Vec::len);
    let n_metrics = metrics(&vec![0.0; width]).len();
    if docs.len() < 2 || reps == 0 {
        return vec![None; n_metrics];
    }
    let mut rng = rng(seed);
    let mut draws: Vec<Vec<f64>> = vec![Vec::with_capacity(reps); n_metrics];
    let mut sum = vec![0.0; width];
    for _ in 0..reps {
        sum.iter_mut().for_each(|s| *s = 0.0);
        for _ in 0..docs.len() {
            let d = &docs[rng.gen_range(0..docs.len())];
            for (s, x) in sum.iter_mut().zip(d) {
                *s += x;
            }
        }
        for (j, v) in metrics(&sum).into_iter().enumerate() {
            draws[j].push(v);
        }
    }
    draws
        .into_iter()
        .map(|mut v| {
            v.retain(|x| x.is_finite());
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            Some([percentile_sorted(&v, 0.025), percentile_sorted(&v, 0.975)])
        })
        .collect()
}

/// Group item indices into documents: items with the same `Some(key)` form one document (in
/// order of first appearance), items with `None` are documents of their own.
pub fn documents(keys: &[Option<&str>]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut by_key: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        match k {
            Some(k) => {
                let slot = *by_key.entry(k).or_insert_with(|| {
                    out.push(Vec::new());
                    out.len() - 1
                });
                out[slot].push(i);
            }
            None => out.push(vec![i]),
        }
    }
    out
}

/// Names of the binary-classification metrics, in the order [`binary_metric_values`] gives them.
pub const BINARY_METRICS: [&str; 9] = [
    "macro_f1",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "negative_precision",
    "negative_recall",
    "negative_f1",
    "ece",
];

/// Width of the statistics vector of [`binary_doc_stats`]: tp, fp, fn, tn, then per calibration
/// bin the count, the sum of probabilities and the number of positives.
pub const BINARY_STATS: usize = 4 + 3 * ECE_BINS;

/// Additive statistics of one document's predictions (see [`BINARY_STATS`]).
pub fn binary_doc_stats(items: &[usize], prob: &[f32], pred: &[bool], gold: &[bool]) -> Vec<f64> {
    let mut s = vec![0.0; BINARY_STATS];
    for &i in items {
        let slot = match (pred[i], gold[i]) {
            (true, true) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (false, false) => 3,
        };
        s[slot] += 1.0;
        let p = (prob[i] as f64).clamp(0.0, 1.0);
        let b = ((p * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        s[4 + b] += 1.0;
        s[4 + ECE_BINS + b] += p;
        s[4 + 2 * ECE_BINS + b] += if gold[i] { 1.0 } else { 0.0 };
    }
    s
}

/// The metrics named in [`BINARY_METRICS`] from summed [`binary_doc_stats`].
pub fn binary_metric_values(s: &[f64]) -> Vec<f64> {
    let m = BinaryMetrics::from_counts(s[0] as u64, s[1] as u64, s[2] as u64, s[3] as u64);
    let n: f64 = s[..4].iter().sum();
    let ece = if n == 0.0 {
        0.0
    } else {
        (0..ECE_BINS)
            .filter(|&b| s[4 + b] > 0.0)
            .map(|b| (s[4 + 2 * ECE_BINS + b] - s[4 + ECE_BINS + b]).abs() / n)
            .sum()
    };
    vec![
        m.macro_f1,
        m.accuracy,
        m.positive.precision,
        m.positive.recall,
        m.positive.f1,
        m.negative.precision,
        m.negative.recall,
        m.negative.f1,
        ece,
    ]
}

/// Binary metrics with document-bootstrap intervals, keyed by [`BINARY_METRICS`] names.
/// `doc_keys[i]` is the document (article id) of item `i`, `None` when each item is its own.
pub fn binary_estimates(
    prob: &[f32],
    pred: &[bool],
    gold: &[bool],
    doc_keys: &[Option<&str>],
    reps: usize,
    seed: u64,
) -> (BTreeMap<String, Estimate>, usize) {
    let docs = documents(doc_keys);
    let stats: Vec<Vec<f64>> = docs
        .iter()
        .map(|d| binary_doc_stats(d, prob, pred, gold))
        .collect();
    let all: Vec<usize> = (0..gold.len()).collect();
    let point = binary_metric_values(&binary_doc_stats(&all, prob, pred, gold));
    let cis = bootstrap_docs(&stats, binary_metric_values, reps, seed);
    let map = BINARY_METRICS
        .iter()
        .zip(point.into_iter().zip(cis))
        .map(|(name, (value, ci))| (name.to_string(), Estimate { value, ci }))
        .collect();
    (map, docs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_group_by_key_in_first_appearance_order() {
        let keys = [Some("b"), None, Some("a"), Some("b"), None];
        assert_eq!(
            documents(&keys),
            vec![vec![0, 3], vec![1], vec![2], vec![4]]
        );
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_estimate() {
        // 100 documents, 30 "successes": the rate's interval must contain 0.3, be seeded, and
        // be roughly the binomial one (±1.96·sqrt(.3·.7/100) ≈ ±0.09).
        let docs: Vec<Vec<f64>> = (0..100)
            .map(|i| vec![if i % 10 < 3 { 1.0 } else { 0.0 }, 1.0])
            .collect();
        let rate = |s: &[f64]| vec![s[0] / s[1]];
        let a = bootstrap_docs(&docs, rate, 1000, 5);
        assert_eq!(a, bootstrap_docs(&docs, rate, 1000, 5));
        assert_ne!(a, bootstrap_docs(&docs, rate, 1000, 6));
        let [lo, hi] = a[0].unwrap();
        assert!(lo < 0.3 && 0.3 < hi, "{lo} {hi}");
        assert!(
            (0.19..0.24).contains(&lo) && (0.36..0.41).contains(&hi),
            "{lo} {hi}"
        );
        // Too few documents or no resamples: no interval.
        assert_eq!(bootstrap_docs(&docs[..1], rate, 1000, 5), vec![None]);
        assert_eq!(bootstrap_docs(&docs, rate, 0, 5), vec![None]);
    }

    #[test]
    fn binary_values_match_binary_metrics_and_stats_ece() {
        let prob = [0.9f32, 0.8, 0.3, 0.6, 0.1, 0.45];
        let gold = [true, false, true, true, false, false];
        let pred: Vec<bool> = prob.iter().map(|&p| p >= 0.5).collect();
        let all: Vec<usize> = (0..6).collect();
        let v = binary_metric_values(&binary_doc_stats(&all, &prob, &pred, &gold));
        let m = BinaryMetrics::from_pairs(pred.iter().copied().zip(gold.iter().copied()));
        assert_eq!(v[0], m.macro_f1);
        assert_eq!(v[4], m.positive.f1);
        let p64: Vec<f64> = prob.iter().map(|&p| p as f64).collect();
        assert!((v[8] - crate::stats::ece(&p64, &gold, ECE_BINS)).abs() < 1e-12);
    }

    #[test]
    fn clustered_documents_widen_the_interval() {
        // The same 200 predictions, as 200 single-sentence documents or as 20 articles of 10
        // sentences whose errors are clustered: the clustered interval must be wider.
        let n = 200;
        let gold: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
        let pred: Vec<bool> = (0..n)
            .map(|i| {
                if (i / 10) % 4 == 0 {
                    i % 2 == 1
                } else {
                    i % 2 == 0
                }
            })
            .collect();
        let prob: Vec<f32> = pred.iter().map(|&p| if p { 0.9 } else { 0.1 }).collect();
        let singles: Vec<Option<&str>> = vec![None; n];
        let names: Vec<String> = (0..n).map(|i| format!("a{}", i / 10)).collect();
        let articles: Vec<Option<&str>> = names.iter().map(|s| Some(s.as_str())).collect();
        let (s, ns) = binary_estimates(&prob, &pred, &gold, &singles, 500, 1);
        let (c, nc) = binary_estimates(&prob, &pred, &gold, &articles, 500, 1);
        assert_eq!((ns, nc), (200, 20));
        assert_eq!(s["accuracy"].value, c["accuracy"].value);
        let width = |e: &Estimate| e.ci.map(|[l, h]| h - l).unwrap();
        assert!(width(&c["accuracy"]) > 1.5 * width(&s["accuracy"]));
    }
}
