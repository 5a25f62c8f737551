//! `slant eval outlets`: does slant rank outlets the way human annotators do? The evaluation
//! lives in the library ([`slant::eval::outlets`]); this file resolves files and prints.

use crate::cli::args::outlets::*;
use std::io::Write;

use anyhow::Result;

use super::{find_models_file, load_encoder};
use crate::cli::args::ReportFormat;
use slant::data;
use slant::encode::sha256_file;
use slant::eval::outlets;
use slant::heads::{MlpHead, LOADED_HEAD_FILE};

pub fn eval_outlets(a: EvalOutletsArgs) -> Result<i32> {
    let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
    let enc = load_encoder(&a.model)?;
    let head_path = match &a.model.head {
        Some(p) => p.clone(),
        None => find_models_file(LOADED_HEAD_FILE)
            .ok_or_else(|| anyhow::anyhow!("no models/{LOADED_HEAD_FILE}; pass --head FILE"))?,
    };
    let head = MlpHead::load(&head_path)?;
    let feats = |rows: &[slant::data::LabelledSentence], what: &str| {
        super::sentence_head_features(&enc, &head, &a.model, rows, what)
            .map_err(|e| slant::Error::Input(format!("{e:#}")))
    };
    let scored = outlets::score(&head, &data_dir, &feats)?;
    let report = scored.report(a.min_n, enc.weights_sha256(), &sha256_file(&head_path)?);
    let mut out = std::io::stdout().lock();
    match a.format {
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            out.write_all(b"\n")?;
        }
        ReportFormat::Table => out.write_all(report.table().as_bytes())?,
    }
    out.flush()?;
    Ok(0)
}
