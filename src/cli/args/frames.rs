//! Arguments of the `frames` subcommands.

use super::{DataArgs, ModelArgs, ReportFormat};
use clap::Args;
use slant::train::frames as tf;
use std::path::PathBuf;

/// Hyper-parameters of the frames head (shared by train and eval).
#[derive(Debug, Args)]
pub struct FramesHyper {
    /// Hidden units (0 = one logistic regression per frame).
    #[arg(long, default_value_t = tf::FramesOpts::default().hidden)]
    pub hidden: usize,
    /// Training epochs (fixed; no early stopping).
    #[arg(long, default_value_t = tf::FramesOpts::default().epochs)]
    pub epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = tf::FramesOpts::default().lr)]
    pub lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = tf::FramesOpts::default().weight_decay)]
    pub weight_decay: f64,
    /// Seed of the folds, shuffling and initialisation.
    #[arg(long, default_value_t = 13)]
    pub seed: u64,
}

impl FramesHyper {
    pub fn opts(&self) -> tf::FramesOpts {
        tf::FramesOpts {
            hidden: self.hidden,
            epochs: self.epochs,
            lr: self.lr,
            weight_decay: self.weight_decay,
            seed: self.seed,
            ..tf::FramesOpts::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct TrainFramesArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Where to write the head.
    #[arg(long, default_value = "models/frames.safetensors", value_name = "FILE")]
    pub out: PathBuf,
    /// Where to write the model card.
    #[arg(long, default_value = "models/FRAMES_CARD.md", value_name = "FILE")]
    pub card: PathBuf,
    #[command(flatten)]
    pub hyper: FramesHyper,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct EvalFramesArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Folds of the cross-validation.
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub cv: usize,
    #[command(flatten)]
    pub hyper: FramesHyper,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub model: ModelArgs,
}
