//! `slant eval outlets`: does slant rank outlets the way human annotators do?
//!
//! BABE SG2 (expert labels) and MBIC (crowd labels, 1,697 of its 1,700 sentences are also in SG2)
//! carry the outlet of every sentence. Each sentence is scored by the loaded-language head, and
//! per outlet slant's loaded share (sentences at or above the head's threshold) is set against the
//! human biased share. The figure is the Spearman correlation over outlets with at least
//! `--min-n` labelled sentences. The head was trained on anno-lexical only and never saw BABE or
//! MBIC.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::args::{DataArgs, ModelArgs, ReportFormat};
use super::commands::{find_models_file, load_encoder, threads};
use crate::data::{self, LabelledSentence};
use crate::encode::sha256_file;
use crate::eval::{version_info, DataFile};
use crate::heads::{MlpHead, LOADED_HEAD_FILE};
use crate::{stats, train};

#[derive(Debug, Args)]
pub struct EvalOutletsArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Outlets with fewer labelled sentences than this are listed but left out of the
    /// correlation.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub min_n: usize,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Outlet names of BABE ("Fox News") and MBIC ("fox-news") on one key: lower-case letters and
/// digits only ("foxnews").
pub fn outlet_key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[derive(Debug, Clone, Serialize)]
struct OutletRow {
    outlet: String,
    n: u64,
    human_biased: u64,
    human_biased_share: f64,
    slant_loaded: u64,
    slant_loaded_share: f64,
    slant_mean_loaded: f64,
    in_correlation: bool,
}

#[derive(Debug, Serialize)]
struct SetResult {
    set: String,
    sentences: u64,
    /// Spearman ρ between slant_loaded_share and human_biased_share over outlets with
    /// n ≥ min_n (`null` with fewer than 3 outlets).
    spearman: Option<f64>,
    /// The same with slant_mean_loaded.
    spearman_mean_loaded: Option<f64>,
    outlets_in_correlation: usize,
    outlets: Vec<OutletRow>,
}

#[derive(Debug, Serialize)]
struct OutletsReport {
    /// ρ of the pooled set (SG2 plus the MBIC sentences that are not in SG2).
    spearman: Option<f64>,
    min_n: usize,
    note: String,
    sets: Vec<SetResult>,
    manifest: Manifest,
}

#[derive(Debug, Serialize)]
struct Manifest {
    slant_version: String,
    git_commit: String,
    encoder_sha256: String,
    head_sha256: String,
    threshold: f32,
    data_files: Vec<DataFile>,
    threads: usize,
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn evaluate(name: &str, rows: &[(&LabelledSentence, f32)], thr: f32, min_n: usize) -> SetResult {
    // outlet key → (display name, n, biased, loaded, prob sum)
    let mut acc: BTreeMap<String, (String, u64, u64, u64, f64)> = BTreeMap::new();
    for (s, p) in rows {
        let Some(o) = s.outlet.as_deref() else {
            continue;
        };
        let e = acc
            .entry(outlet_key(o))
            .or_insert_with(|| (o.to_string(), 0, 0, 0, 0.0));
        e.1 += 1;
        e.2 += s.label as u64;
        e.3 += (*p >= thr) as u64;
        e.4 += *p as f64;
    }
    let outlets: Vec<OutletRow> = acc
        .into_values()
        .map(|(outlet, n, b, l, ps)| OutletRow {
            outlet,
            n,
            human_biased: b,
            human_biased_share: round6(b as f64 / n as f64),
            slant_loaded: l,
            slant_loaded_share: round6(l as f64 / n as f64),
            slant_mean_loaded: round6(ps / n as f64),
            in_correlation: n as usize >= min_n,
        })
        .collect();
    let used: Vec<&OutletRow> = outlets.iter().filter(|o| o.in_correlation).collect();
    let human: Vec<f64> = used.iter().map(|o| o.human_biased_share).collect();
    let share: Vec<f64> = used.iter().map(|o| o.slant_loaded_share).collect();
    let mean: Vec<f64> = used.iter().map(|o| o.slant_mean_loaded).collect();
    SetResult {
        set: name.to_string(),
        sentences: rows.len() as u64,
        spearman: stats::spearman(&share, &human).map(round6),
        spearman_mean_loaded: stats::spearman(&mean, &human).map(round6),
        outlets_in_correlation: used.len(),
        outlets,
    }
}

pub fn eval_outlets(a: EvalOutletsArgs) -> Result<i32> {
    let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
    let enc = load_encoder(&a.model)?;
    let head_path = match &a.model.head {
        Some(p) => p.clone(),
        None => find_models_file(LOADED_HEAD_FILE)
            .ok_or_else(|| anyhow::anyhow!("no models/{LOADED_HEAD_FILE}; pass --head FILE"))?,
    };
    let head = MlpHead::load(&head_path)?;
    let (sg2, sg2_path) = data::babe_sg2(&data_dir)?;
    let (mbic, mbic_path) = data::mbic(&data_dir)?;
    let cache = train::cache_dir();
    let bs = a.model.batch_size;
    let score = |v: &[LabelledSentence]| -> Result<Vec<f32>> {
        let texts: Vec<&str> = v.iter().map(|s| s.text.as_str()).collect();
        let f = train::embed_cached(&enc, &texts, bs, Some(&cache))?;
        Ok(f.iter().map(|x| head.prob(x)).collect())
    };
    let p_sg2 = score(&sg2)?;
    let p_mbic = score(&mbic)?;
    let thr = head.threshold;
    let sg2_rows: Vec<(&LabelledSentence, f32)> = sg2.iter().zip(p_sg2.iter().copied()).collect();
    let mbic_rows: Vec<(&LabelledSentence, f32)> =
        mbic.iter().zip(p_mbic.iter().copied()).collect();
    let norm = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let in_sg2: std::collections::BTreeSet<String> = sg2.iter().map(|s| norm(&s.text)).collect();
    let mut pooled = sg2_rows.clone();
    pooled.extend(
        mbic_rows
            .iter()
            .filter(|(s, _)| !in_sg2.contains(&norm(&s.text)))
            .cloned(),
    );
    let sets = vec![
        evaluate(
            "pooled: BABE SG2 (expert labels) + MBIC sentences not in SG2 (crowd labels)",
            &pooled,
            thr,
            a.min_n,
        ),
        evaluate("BABE SG2 (expert labels)", &sg2_rows, thr, a.min_n),
        evaluate("MBIC (crowd labels)", &mbic_rows, thr, a.min_n),
    ];
    let (version, commit) = version_info();
    let report = OutletsReport {
        spearman: sets[0].spearman,
        min_n: a.min_n,
        note: "the loaded-language head was trained on anno-lexical only (LLM labels); it never \
               saw BABE or MBIC, so this is zero-shot. Outlet shares depend on which sentences \
               the dataset authors sampled per outlet, not on the outlets' whole output."
            .into(),
        sets,
        manifest: Manifest {
            slant_version: version,
            git_commit: commit,
            encoder_sha256: enc.weights_sha256().into(),
            head_sha256: sha256_file(&head_path)?,
            threshold: thr,
            data_files: vec![
                DataFile::new(&data_dir, &sg2_path)?,
                DataFile::new(&data_dir, &mbic_path)?,
            ],
            threads: threads(),
        },
    };
    let mut out = std::io::stdout().lock();
    match a.format {
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            out.write_all(b"\n")?;
        }
        ReportFormat::Table => {
            let fmt = |r: Option<f64>| r.map_or("n/a".to_string(), |v| format!("{v:.3}"));
            for s in &report.sets {
                writeln!(
                    out,
                    "{} ({} sentences)\nSpearman rho (loaded share vs human biased share, {} outlets with n >= {}): {}; with mean P(loaded): {}",
                    s.set,
                    s.sentences,
                    s.outlets_in_correlation,
                    a.min_n,
                    fmt(s.spearman),
                    fmt(s.spearman_mean_loaded)
                )?;
                writeln!(
                    out,
                    "  {:<16} {:>5} {:>12} {:>13} {:>12}",
                    "outlet", "n", "human biased", "slant loaded", "mean P"
                )?;
                let mut rows: Vec<&OutletRow> = s.outlets.iter().collect();
                rows.sort_by(|x, y| {
                    y.human_biased_share
                        .total_cmp(&x.human_biased_share)
                        .then_with(|| x.outlet.cmp(&y.outlet))
                });
                for o in rows {
                    writeln!(
                        out,
                        "  {:<16} {:>5} {:>12.3} {:>13.3} {:>12.3}{}",
                        o.outlet,
                        o.n,
                        o.human_biased_share,
                        o.slant_loaded_share,
                        o.slant_mean_loaded,
                        if o.in_correlation {
                            ""
                        } else {
                            "  (too few, left out)"
                        }
                    )?;
                }
                writeln!(out)?;
            }
            writeln!(out, "Note: {}", report.note)?;
        }
    }
    out.flush()?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlet_names_of_both_sets_meet() {
        assert_eq!(outlet_key("Fox News"), outlet_key("fox-news"));
        assert_eq!(outlet_key("USA Today"), "usatoday");
        assert_eq!(outlet_key("HuffPost"), outlet_key("huffpost"));
    }

    #[test]
    fn per_outlet_shares_and_rho_by_hand() {
        let s = |o: &str, label: bool| LabelledSentence {
            id: String::new(),
            text: String::new(),
            label,
            outlet: Some(o.into()),
            article: None,
            biased_words: vec![],
        };
        // Human biased shares: A 1/2, B 2/2, C 0/2, D 1/1 (D too small with min_n 2).
        // slant (threshold 0.5): A 1/2, B 1/2, C 0/2 → loaded shares 0.5, 0.5, 0 vs human
        // 0.5, 1, 0: ranks [2.5, 2.5, 1] vs [2, 3, 1] → ρ = 1.5/√(1.5·2) = 0.866025.
        let v = [
            s("A", true),
            s("A", false),
            s("B", true),
            s("B", true),
            s("C", false),
            s("C", false),
            s("D", true),
        ];
        let p = [0.9, 0.1, 0.6, 0.4, 0.2, 0.3, 0.9];
        let rows: Vec<(&LabelledSentence, f32)> = v.iter().zip(p).collect();
        let r = evaluate("t", &rows, 0.5, 2);
        assert_eq!(r.outlets.len(), 4);
        assert_eq!(r.outlets_in_correlation, 3);
        assert!(!r.outlets[3].in_correlation);
        assert_eq!(r.outlets[1].human_biased_share, 1.0);
        assert_eq!(r.outlets[1].slant_loaded_share, 0.5);
        assert!((r.spearman.unwrap() - 0.866025).abs() < 1e-6);
    }
}
