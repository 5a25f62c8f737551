//! Evaluation: confusion counts, P/R/F1 per class, macro-F1, and the run manifest that makes a
//! figure citable (encoder and head checksums, data files and their checksums, split, seed,
//! git commit).
//!
//! * [`ci`]: document-bootstrap confidence intervals of the metrics;
//! * [`loaded`]: the loaded-language head on a labelled set or in k-fold CV;
//! * [`labels`]: a user's own labelled files (sentence, span and attribution labels);
//! * [`frames`]: the frames head in k-fold CV on SemEval-2023 Task 3 subtask 2;
//! * [`outlets`]: outlet validity, per-outlet loaded share against human biased share;
//! * [`spans`]: exact / overlap / token P/R/F1 of labelled byte spans (span taggers);
//! * [`runs`]: `slant eval all`, every evaluation into `results.json`, `results.md` and
//!   `manifest.json`.

pub mod attribution;
pub mod ci;
pub mod frames;
pub mod labels;
pub mod lexicon;
pub mod loaded;
pub mod outlets;
pub mod runs;
pub mod tuned;

use std::path::Path;

use serde::Serialize;

use crate::encode::sha256_file;
use crate::Result;

use crate::metrics::{best_threshold, BinaryMetrics};

/// Calibrate logits `z` on labels `y`: the temperature `T` of [`crate::train::tune::fit_temperature`],
/// then the [`best_threshold`] of the probabilities `sigmoid(z / T)`. Returns `(T, threshold)`.
pub fn calibrate(z: &[f32], y: &[bool]) -> (f32, f32) {
    use crate::heads::math::sigmoid;
    use crate::train::tune::fit_temperature;
    let t = fit_temperature(z, y);
    let p: Vec<f32> = z.iter().map(|&v| sigmoid(v / t)).collect();
    (t, best_threshold(&p, y).0)
}

/// A data file used in a run, with its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataFile {
    /// Path relative to the data folder.
    pub path: String,
    pub sha256: String,
}

impl DataFile {
    /// Describe `path`, shown relative to `data_dir` when it is inside it.
    pub fn new(data_dir: &Path, path: &Path) -> Result<Self> {
        let shown = path
            .strip_prefix(data_dir)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        Ok(Self {
            path: shown,
            sha256: sha256_file(path)?,
        })
    }
}

/// The version of slant and the git commit it was built from (`unknown` outside a checkout).
pub fn version_info() -> (String, String) {
    (
        env!("CARGO_PKG_VERSION").to_string(),
        option_env!("SLANT_GIT_COMMIT")
            .unwrap_or("unknown")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_from_counts_match_hand_computation() {
        // tp=6 fp=2 fn=4 tn=8: P+=0.75 R+=0.6 F1+=0.6667; P-=8/12 R-=0.8 F1-=0.7273
        let m = BinaryMetrics::from_counts(6, 2, 4, 8);
        assert!((m.positive.precision - 0.75).abs() < 1e-12);
        assert!((m.positive.recall - 0.6).abs() < 1e-12);
        assert!((m.positive.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.negative.f1 - 2.0 * (8.0 / 12.0) * 0.8 / (8.0 / 12.0 + 0.8)).abs() < 1e-12);
        assert!((m.accuracy - 0.7).abs() < 1e-12);
        assert_eq!(m.positive.support, 10);
        assert_eq!(m.negative.support, 10);
    }

    #[test]
    fn pairs_and_counts_agree() {
        let pairs = [
            (true, true),
            (true, false),
            (false, true),
            (false, false),
            (true, true),
        ];
        assert_eq!(
            BinaryMetrics::from_pairs(pairs),
            BinaryMetrics::from_counts(2, 1, 1, 1)
        );
    }

    #[test]
    fn threshold_search_finds_the_separating_value() {
        let probs = [0.1, 0.2, 0.3, 0.7, 0.8, 0.35];
        let gold = [false, false, false, true, true, true];
        let (t, f1) = best_threshold(&probs, &gold);
        assert!((f1 - 1.0).abs() < 1e-12);
        assert!(t > 0.3 && t <= 0.35, "{t}");
    }
}
