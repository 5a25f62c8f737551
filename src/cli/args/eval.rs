//! Arguments of `slant eval splitter` and `slant eval all`.

use std::path::PathBuf;

use clap::Args;

use super::{DataArgs, ModelArgs, ReportFormat};

#[derive(Debug, Args)]
pub struct EvalSplitterArgs {
    /// Case file (JSONL: id, category, text, sentences) [default: eval/splitter/cases.jsonl of
    /// the slant checkout, found above the current directory or the executable]
    #[arg(long, value_name = "FILE")]
    pub cases: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Bootstrap resamples (cases) of the 95% intervals.
    #[arg(long, default_value_t = slant::eval::ci::DEFAULT_REPS, value_name = "N")]
    pub reps: usize,
    /// Bootstrap seed.
    #[arg(long, default_value_t = slant::eval::ci::DEFAULT_SEED, value_name = "N")]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct EvalAllArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Run directory to write results.json, results.md and manifest.json into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Also copy results.md to FILE (e.g. eval/RESULTS.md).
    #[arg(long, value_name = "FILE")]
    pub results_md: Option<PathBuf>,
    /// A labelled file of your own to evaluate as well (JSONL/CSV; formats in docs/cli.md). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub labels: Vec<PathBuf>,
    /// A saved `slant eval loaded --format json` report to show as a further row of the
    /// loaded-head table (for runs too slow to repeat every time, e.g. --tune-layers). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Splitter case file [default: eval/splitter/cases.jsonl of the checkout].
    #[arg(long, value_name = "FILE")]
    pub cases: Option<PathBuf>,
    /// Bootstrap resamples of the 95% intervals.
    #[arg(long, default_value_t = slant::eval::ci::DEFAULT_REPS, value_name = "N")]
    pub reps: usize,
    /// Bootstrap seed.
    #[arg(long, default_value_t = slant::eval::ci::DEFAULT_SEED, value_name = "N")]
    pub seed: u64,
    /// Folds of the BABE cross-validation.
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub cv: usize,
    /// Seed of the CV folds and of training.
    #[arg(long, default_value_t = 13, value_name = "N")]
    pub cv_seed: u64,
    /// Hidden units of the loaded heads trained in CV (the frames CV uses the frames head's own
    /// defaults).
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    /// Outlets with fewer labelled sentences are left out of the outlet-validity correlation.
    #[arg(long, default_value_t = slant::eval::outlets::DEFAULT_MIN_N, value_name = "N")]
    pub outlets_min_n: usize,
    #[command(flatten)]
    pub model: ModelArgs,
}
