//! Arguments of the `spans` subcommands.

use super::{DataArgs, ModelArgs, ReportFormat};
use clap::{Args, ValueEnum};
use slant::train::loaded_spans::SpansConfig;
use std::path::PathBuf;

/// Data and hyper-parameters of a span head (shared by train and eval --zero-shot).
#[derive(Debug, Args)]
pub struct SpansHyper {
    /// Leave BABE out of training (zero-shot on BABE).
    #[arg(long)]
    pub no_babe: bool,
    /// Leave the SemEval-2023 Task 3 articles out of training.
    #[arg(long)]
    pub no_semeval23: bool,
    /// Also train on Name_Calling spans (as loaded language).
    #[arg(long)]
    pub name_calling: bool,
    /// Hidden units of the tagger (0 = linear softmax).
    #[arg(long, default_value_t = SpansConfig::default().tagger.hidden)]
    pub hidden: usize,
    /// Maximum epochs (the epoch with the best PTC-dev token F1 is kept).
    #[arg(long, default_value_t = SpansConfig::default().tagger.epochs)]
    pub epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = SpansConfig::default().tagger.lr)]
    pub lr: f64,
    /// Class weight (count_O / count_class)^P; 0 = unweighted.
    #[arg(long, default_value_t = SpansConfig::default().tagger.class_weight_power)]
    pub class_weight_power: f64,
    /// Seed of shuffling and initialisation.
    #[arg(long, default_value_t = SpansConfig::default().tagger.seed)]
    pub seed: u64,
}

impl SpansHyper {
    pub fn config(&self) -> SpansConfig {
        let mut c = SpansConfig {
            babe: !self.no_babe,
            semeval23: !self.no_semeval23,
            name_calling: self.name_calling,
            ..SpansConfig::default()
        };
        c.tagger.hidden = self.hidden;
        c.tagger.epochs = self.epochs;
        c.tagger.lr = self.lr;
        c.tagger.class_weight_power = self.class_weight_power;
        c.tagger.seed = self.seed;
        c
    }

    pub fn flags(&self) -> String {
        let mut s = String::new();
        for (on, f) in [
            (self.no_babe, " --no-babe"),
            (self.no_semeval23, " --no-semeval23"),
            (self.name_calling, " --name-calling"),
        ] {
            if on {
                s.push_str(f);
            }
        }
        s.push_str(&format!(
            " --hidden {} --epochs {} --lr {} --class-weight-power {} --seed {}",
            self.hidden, self.epochs, self.lr, self.class_weight_power, self.seed
        ));
        s
    }
}

#[derive(Debug, Args)]
pub struct TrainSpansArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Where to write the head.
    #[arg(
        long,
        default_value = "models/loaded_spans.safetensors",
        value_name = "FILE"
    )]
    pub out: PathBuf,
    /// Where to write the model card.
    #[arg(
        long,
        default_value = "models/LOADED_SPANS_CARD.md",
        value_name = "FILE"
    )]
    pub card: PathBuf,
    #[command(flatten)]
    pub hyper: SpansHyper,
    /// Do not train: load the head at --out, choose its decoding thresholds on PTC dev, and
    /// re-save it (tensors byte-identical, header updated) with its card.
    #[arg(long)]
    pub select_threshold: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Held-out span sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpansSet {
    /// PTC Loaded_Language, test part of the fixed article split.
    Ptc,
    /// BABE SG2 biased_words, held-out fold 0.
    Babe,
}

#[derive(Debug, Args)]
pub struct EvalSpansArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum)]
    pub dataset: SpansSet,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub model: ModelArgs,
}
