//! Arguments of the `attribution` subcommands.

use super::{DataArgs, ModelArgs, ReportFormat};
use clap::{Args, ValueEnum};
use slant::eval::attribution as ea;
use slant::heads::tagger::Scheme;
use slant::train::tagger::TaggerOpts;
use std::path::PathBuf;

/// Attribution-labelled corpora.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AttributionDataset {
    /// PolNeAR (Newell et al. 2018): its own train / dev / test split.
    Polnear,
}

#[derive(Debug, Args)]
pub struct TrainAttributionArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Where to write the head.
    #[arg(
        long,
        default_value = "models/attribution.safetensors",
        value_name = "FILE"
    )]
    pub out: PathBuf,
    /// Where to write the model card.
    #[arg(
        long,
        default_value = "models/ATTRIBUTION_CARD.md",
        value_name = "FILE"
    )]
    pub card: PathBuf,
    /// Hidden units (0 = linear softmax over the token state).
    #[arg(long, default_value_t = TaggerOpts::default().hidden)]
    pub hidden: usize,
    /// Maximum epochs (the epoch with the best dev token F1 is kept).
    #[arg(long, default_value_t = TaggerOpts::default().epochs)]
    pub epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = TaggerOpts::default().lr)]
    pub lr: f64,
    /// Class weights (count_O / count_class)^P; 0 = unweighted.
    #[arg(long, default_value_t = TaggerOpts::default().class_weight_power)]
    pub class_weight_power: f64,
    /// Seed of shuffling and initialisation.
    #[arg(long, default_value_t = TaggerOpts::default().seed)]
    pub seed: u64,
    /// Context window: the head reads the token states at offsets -W..=+W (zeros beyond the
    /// sentence) concatenated; 0 = each token's own state (1 was chosen on PolNeAR dev).
    #[arg(long, default_value_t = 1, value_name = "W")]
    pub window: usize,
    /// How spans are decoded from the token probabilities (stored in the head).
    #[arg(long, value_enum, default_value_t = DecodingArg::Viterbi)]
    pub decoding: DecodingArg,
    /// Label scheme: `flat` (one BIO sequence, nested attributions flattened) or `per-role`
    /// (one BIO sequence per role, so a CONTENT can hold another attribution's SOURCE and CUE).
    #[arg(long, value_enum, default_value_t = SchemeArg::Flat)]
    pub scheme: SchemeArg,
    /// Also read a lower encoder layer: each token's features are its final state followed by
    /// its state after layer L (or, as `A-B`, the mean of its states after layers A..=B);
    /// recorded in the head as `extra_layer`. Fast engine only.
    #[arg(long, value_name = "L|A-B", value_parser = parse_extra_layer_arg)]
    pub extra_layer: Option<(usize, usize)>,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn parse_extra_layer_arg(v: &str) -> std::result::Result<(usize, usize), String> {
    slant::heads::tagger::parse_extra_layers(v)
        .ok_or_else(|| format!("{v:?}: expected a layer L >= 1 or a range A-B (1 <= A <= B)"))
}

/// `--extra-layer` as written in the header and on the command line.
pub fn extra_layer_name((a, b): (usize, usize)) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

/// `--scheme` of `slant train attribution` (and of `slant eval attribution --oracle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// One softmax over O / B-X / I-X of the three roles.
    Flat,
    /// Three independent O / B / I softmaxes, one per role.
    PerRole,
}

impl SchemeArg {
    pub fn scheme(self) -> Scheme {
        match self {
            Self::Flat => Scheme::Flat,
            Self::PerRole => Scheme::PerRole,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Flat => "flat",
            Self::PerRole => "per-role",
        }
    }
}

/// `--oracle` of `slant eval attribution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OracleArg {
    /// Gold tags decoded per sentence, no post-processing.
    Decoded,
    /// Gold tags decoded and post-processed as predictions are (cross-sentence joins, rules).
    Rules,
}

/// `--decoding` of `slant train attribution` and `slant eval attribution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecodingArg {
    /// Each word's own arg-max label; an `I-` without its `B-` opens a span.
    Argmax,
    /// Viterbi: the most probable label sequence that is valid BIO (no `I-X` after `O` or
    /// after another role).
    Viterbi,
    /// Viterbi plus ln P(label | previous label), estimated from PolNeAR train.
    ViterbiBigram,
    /// Viterbi plus ln P(label | previous label) - ln P(label), from PolNeAR train.
    ViterbiPmi,
}

impl DecodingArg {
    pub fn mode(self) -> ea::DecodingMode {
        match self {
            Self::Argmax => ea::DecodingMode::Argmax,
            Self::Viterbi => ea::DecodingMode::Viterbi,
            Self::ViterbiBigram => ea::DecodingMode::ViterbiBigram,
            Self::ViterbiPmi => ea::DecodingMode::ViterbiPmi,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Argmax => "argmax",
            Self::Viterbi => "viterbi",
            Self::ViterbiBigram => "viterbi-bigram",
            Self::ViterbiPmi => "viterbi-pmi",
        }
    }
    pub fn learned(self) -> bool {
        matches!(self, Self::ViterbiBigram | Self::ViterbiPmi)
    }
}

#[derive(Debug, Args)]
pub struct EvalAttributionArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value_t = AttributionDataset::Polnear)]
    pub dataset: AttributionDataset,
    /// Split to score (`test` for reported figures; `dev` was used for epoch selection).
    #[arg(long, default_value = "test", value_parser = ["train", "dev", "test"])]
    pub split: String,
    /// Attribution head [default: models/attribution.safetensors of the checkout].
    #[arg(long, value_name = "FILE")]
    pub attribution_head: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Decode with this mode instead of the one stored in the head (to compare decodings on
    /// dev; the learned modes read PolNeAR train for their transition scores).
    #[arg(long, value_enum)]
    pub decoding: Option<DecodingArg>,
    /// Diagnostic: score the ceiling of the label scheme instead of a head: the gold spans
    /// projected onto the per-sentence training tags of `--scheme`, decoded (Viterbi) and
    /// post-processed as predictions are. Needs no head.
    #[arg(long, value_enum, hide = true)]
    pub oracle: Option<OracleArg>,
    /// Label scheme of `--oracle`.
    #[arg(long, value_enum, default_value_t = SchemeArg::Flat, hide = true)]
    pub scheme: SchemeArg,
    /// For a tagger trained elsewhere: write DIR/{train,dev,test}.jsonl (per sentence, in
    /// slant's order: article, sentence, the encoder's input ids, the flat training tag of
    /// each id or -1), DIR/labels.json and DIR/README.txt, and score nothing. Tokenizes only.
    #[arg(long, value_name = "DIR", hide = true, conflicts_with_all = ["oracle", "probs"])]
    pub export_tokens: Option<PathBuf>,
    /// Score per-token probabilities computed elsewhere instead of the head's: FILE (JSONL)
    /// has one row {"probs": [[p per label] per input id]} per sentence of --split, in the
    /// order of --export-tokens; the head (its labels and decoding) decodes them.
    #[arg(long, value_name = "FILE", hide = true, conflicts_with = "oracle")]
    pub probs: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}
