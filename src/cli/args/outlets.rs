//! Arguments of the `outlets` subcommands.

use super::{DataArgs, ModelArgs, ReportFormat};
use clap::Args;
use slant::eval::outlets;

#[derive(Debug, Args)]
pub struct EvalOutletsArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Outlets with fewer labelled sentences than this are listed but left out of the
    /// correlation.
    #[arg(long, default_value_t = outlets::DEFAULT_MIN_N, value_name = "N")]
    pub min_n: usize,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub model: ModelArgs,
}
