//! Arguments of the `tuned` subcommands.

use super::{DataArgs, ModelArgs};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct TrainTunedArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Where to write the head.
    #[arg(
        long,
        default_value = "models/loaded_tuned.safetensors",
        value_name = "FILE"
    )]
    pub out: PathBuf,
    /// Where to write the model card.
    #[arg(
        long,
        default_value = "models/LOADED_TUNED_CARD.md",
        value_name = "FILE"
    )]
    pub card: PathBuf,
    /// Seed of the adapters' initialisation, shuffling, dropout and the BABE development split.
    #[arg(long, default_value_t = 13)]
    pub seed: u64,
    /// Top encoder layers that get adapters (the layers below stay shared with the other heads).
    #[arg(long, default_value_t = 3, value_name = "K")]
    pub layers: usize,
    /// LoRA rank.
    #[arg(long, default_value_t = 16, value_name = "R")]
    pub rank: usize,
    /// LoRA scale numerator (adapters are multiplied by ALPHA / R) [default: 2·R].
    #[arg(long, value_name = "ALPHA")]
    pub alpha: Option<f32>,
    /// Epochs on BABE (the epoch with the lowest development loss is kept).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub epochs: usize,
    /// Peak learning rate of the adapters.
    #[arg(long, default_value_t = 5e-4, value_name = "LR")]
    pub lr: f64,
    /// Peak learning rate of the logistic head.
    #[arg(long, default_value_t = 1e-3, value_name = "LR")]
    pub lr_head: f64,
    /// Adapter sets trained with different seeds from the same start and averaged (a uniform
    /// soup: the mean of their merged weights; same inference cost as one).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub soup: usize,
    /// Do not blend with a frozen-encoder partner head.
    #[arg(long)]
    pub no_blend: bool,
    /// After the anno-lexical epoch, train on BABE SG2 (minus a 10% development split) as the
    /// CV recipe does, and train the partner there too. BABE is AGPL-3.0: a head trained on it
    /// is for your own use; the committed head is trained without it (anno-lexical, MIT).
    #[arg(long)]
    pub with_babe: bool,
    /// The frozen head to blend with when not --with-babe [default: models/loaded.safetensors].
    #[arg(long, value_name = "FILE")]
    pub partner: Option<PathBuf>,
    /// Span head whose token evidence the partner reads (one trained without BABE)
    /// [default: models/loaded_spans.safetensors of the checkout].
    #[arg(long, value_name = "FILE")]
    pub span_evidence: Option<PathBuf>,
    /// Where to write the partner head (the tuned head's header names its file and sha256; it
    /// is looked up beside the tuned head).
    #[arg(
        long,
        default_value = "models/loaded_blend.safetensors",
        value_name = "FILE"
    )]
    pub blend_out: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
}
