//! `slant train frames` and `slant eval frames`: the article-level frames head. The CV report
//! lives in the library ([`crate::eval::frames`]); this file parses options, prints, and writes
//! the head and its model card.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use super::args::{DataArgs, ModelArgs, ReportFormat};
use super::commands::load_encoder;
use crate::data;
use crate::encode::sha256_file;
use crate::eval::frames as ef;
use crate::eval::version_info;
use crate::heads::frames::FramesHead;
use crate::train::frames as tf;

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
    fn opts(&self) -> tf::FramesOpts {
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

pub fn eval_frames(a: EvalFramesArgs) -> Result<i32> {
    let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
    let enc = load_encoder(&a.model)?;
    let r = ef::cross_validate(&enc, &data_dir, a.cv, &a.hyper.opts(), a.model.batch_size)?.report;
    super::print_report(a.format, &r, |r| r.table())
}

pub fn train_frames(a: TrainFramesArgs) -> Result<i32> {
    let t0 = Instant::now();
    let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
    let enc = load_encoder(&a.model)?;
    let opts = a.hyper.opts();
    eprintln!("slant train frames: 5-fold CV, then the final head on all 433 articles");
    let report = ef::cross_validate(&enc, &data_dir, 5, &opts, a.model.batch_size)?.report;
    let (arts, _) = data::frames::semeval_frames(&data_dir)?;
    let x = ef::article_features(&enc, &arts, a.model.batch_size)?;
    let y: Vec<Vec<bool>> = arts.iter().map(|a| a.labels.clone()).collect();
    let mut head = tf::fit(&x, &y, &ef::labels(), &opts)?;
    let meta: BTreeMap<String, String> = [
        ("head", "frames article head (SemEval-2023 Task 3 subtask 2)".to_string()),
        (
            "features",
            "mean over the article's sentences of the L2-normalised mean-pooled sentence vectors, standardised".into(),
        ),
        ("encoder_sha256", enc.weights_sha256().to_string()),
        (
            "trained_on",
            "SemEval-2023 Task 3 subtask 2 English train (433 articles; organisers' data, research use)".into(),
        ),
        ("thresholds_chosen_by", format!("inner {}-fold CV, max F1 per frame", opts.inner_folds)),
        ("train_opts", serde_json::to_string(&opts)?),
        ("data_files", serde_json::to_string(&report.manifest.data_files)?),
        ("cv5_micro_f1", format!("{:.4}", report.metrics.micro_f1)),
        ("cv5_macro_f1", format!("{:.4}", report.metrics.macro_f1)),
        ("slant_version", version_info().0),
        ("git_commit", version_info().1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    head.meta = meta;
    head.save(&a.out)?;
    let sha = sha256_file(&a.out)?;
    std::fs::write(&a.card, frames_card(&head, &sha, &report, &a))
        .with_context(|| format!("writing {}", a.card.display()))?;
    println!(
        "wrote {} (sha256 {}) and {}\n5-fold CV micro-F1 {:.4}, macro-F1 {:.4} (majority baseline micro-F1 {:.4})\ntotal {:.1}s",
        a.out.display(),
        sha,
        a.card.display(),
        report.metrics.micro_f1,
        report.metrics.macro_f1,
        report.majority_baseline_micro_f1,
        t0.elapsed().as_secs_f64()
    );
    Ok(0)
}

fn frames_card(head: &FramesHead, sha: &str, r: &ef::FramesReport, a: &TrainFramesArgs) -> String {
    let o = &r.manifest.opts;
    let mut s = String::new();
    s.push_str("# Model card: frames head (`models/frames.safetensors`)\n\n");
    s.push_str("Generated by `slant train frames`; do not edit by hand.\n\n## What it is\n");
    s.push_str(&format!(
        "A multi-label classifier of whole news articles into the 14 frames of SemEval-2023 Task 3 \
         subtask 2 (after the Media Frames Corpus). Input: the mean over the article's sentences \
         (split by slant's splitter) of the L2-normalised mean-pooled vectors of the frozen encoder \
         (all-MiniLM-L6-v2, sha256 `{}`), standardised with the training mean and sd. Model: {}. \
         Output: P(frame) for each frame; each frame has its own threshold, chosen to maximise \
         that frame's F1 on the out-of-fold probabilities of an inner {}-fold CV.\n\n",
        r.manifest.encoder_sha256,
        if head.hidden > 0 {
            format!("a shared {}-unit ReLU layer with one sigmoid output per frame", head.hidden)
        } else {
            "one logistic regression per frame".to_string()
        },
        o.inner_folds
    ));
    s.push_str(&format!("Head file sha256: `{sha}`\n\n"));
    s.push_str("## Data\nSemEval-2023 Task 3 subtask 2, English training set: 433 articles (mostly opinion pieces; \
        the task's own genre labels: 382 opinion, 41 reporting, 10 satire), 1–9 frames each. Organisers' data, \
        research use, no licence stated: read by path, never committed. Only weights derived from it are committed.\n\n");
    for f in &r.manifest.data_files {
        s.push_str(&format!("- `{}` sha256 `{}`\n", f.path, f.sha256));
    }
    s.push_str(&format!(
        "\n## Training\nAdamW (lr {}, weight decay {}), batch {}, {} epochs, seed {}. Hidden units {}.\n\n",
        o.lr, o.weight_decay, o.batch_size, o.epochs, o.seed, o.hidden
    ));
    s.push_str("## Metrics (5-fold CV over articles, pooled out-of-fold predictions)\n\n");
    s.push_str(&format!(
        "micro-F1 **{:.4}** (P {:.4}, R {:.4}), macro-F1 **{:.4}**; per-fold micro-F1 {:.4} ± {:.4} (sd). \
         Majority baseline (predict every frame present in at least half the training articles) micro-F1 {:.4}.\n\n",
        r.metrics.micro_f1,
        r.metrics.micro_precision,
        r.metrics.micro_recall,
        r.metrics.macro_f1,
        r.fold_micro_f1_mean,
        r.fold_micro_f1_sd,
        r.majority_baseline_micro_f1
    ));
    s.push_str(
        "| frame | support | TP | FP | FN | P | R | F1 |\n|---|---|---|---|---|---|---|---|\n",
    );
    for l in &r.metrics.per_label {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} |\n",
            l.label,
            l.support,
            l.counts.tp,
            l.counts.fp,
            l.counts.fn_,
            l.scores.precision,
            l.scores.recall,
            l.scores.f1
        ));
    }
    s.push_str("\n## Limits\nThe SemEval articles are mostly opinion pieces on a few 2020–2022 stories (immigration, \
        Ukraine, COVID-19, climate, the 2020 US election); frames of other stories and of straight reporting are \
        out of domain. Rare frames (Public_opinion, Economic, Capacity_and_resources, Cultural_identity; \
        23–31 articles) are learnt poorly. In `slant score` the probabilities describe an article; a source's \
        frame distribution is the mean over its articles.\n\n");
    s.push_str(&format!(
        "## Reproduce\n\n```\nmodels/fetch\ncargo build --release\ntarget/release/slant train frames --data DIR --hidden {} --epochs {} --lr {} --weight-decay {} --seed {}\n```\n",
        a.hyper.hidden, a.hyper.epochs, a.hyper.lr, a.hyper.weight_decay, a.hyper.seed
    ));
    s
}
