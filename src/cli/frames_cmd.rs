//! `slant train frames` and `slant eval frames`: the article-level frames head.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::args::{DataArgs, ModelArgs, ReportFormat};
use super::commands::{load_encoder, threads};
use crate::data::{self, frames::FramedArticle};
use crate::encode::{hex, sha256_file, Encoder};
use crate::eval::{version_info, DataFile};
use crate::heads::frames::{article_vector, FramesHead, FRAMES};
use crate::segment;
use crate::train::{self, frames as tf};

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

/// Article vectors of the SemEval articles (mean of their sentence features).
fn article_features(enc: &Encoder, arts: &[FramedArticle], batch: usize) -> Result<Vec<Vec<f32>>> {
    let t0 = Instant::now();
    let spans: Vec<Vec<segment::SentenceSpan>> =
        arts.iter().map(|a| segment::split(&a.text)).collect();
    let texts: Vec<&str> = arts
        .iter()
        .zip(&spans)
        .flat_map(|(a, ss)| ss.iter().map(move |s| &a.text[s.start..s.end]))
        .collect();
    let f = train::embed_cached(enc, &texts, batch, Some(&train::cache_dir()))?;
    let mut out = Vec::with_capacity(arts.len());
    let mut k = 0;
    for (a, ss) in arts.iter().zip(&spans) {
        let v = article_vector(f[k..k + ss.len()].iter().map(Vec::as_slice))
            .with_context(|| format!("article {} has no sentences", a.id))?;
        out.push(v);
        k += ss.len();
    }
    eprintln!(
        "  features: {} articles, {} sentences in {:.1}s",
        arts.len(),
        texts.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// The labels file plus one digest of all article texts (id order).
fn data_files(
    data_dir: &std::path::Path,
    labels: &std::path::Path,
    arts: &[FramedArticle],
) -> Result<Vec<DataFile>> {
    let mut h = Sha256::new();
    for a in arts {
        h.update(a.id.as_bytes());
        h.update(b"\0");
        h.update((a.text.len() as u64).to_le_bytes());
        h.update(a.text.as_bytes());
    }
    Ok(vec![
        DataFile::new(data_dir, labels)?,
        DataFile {
            path: format!(
                "{}/ ({} article files: sha256 over id, length and text in id order)",
                data::frames::ARTICLES,
                arts.len()
            ),
            sha256: hex(&h.finalize()),
        },
    ])
}

fn labels() -> Vec<String> {
    FRAMES.iter().map(|s| s.to_string()).collect()
}

#[derive(Debug, Serialize)]
struct FoldScore {
    fold: usize,
    n: u64,
    micro_f1: f64,
    macro_f1: f64,
}

#[derive(Debug, Serialize)]
struct FramesManifest {
    slant_version: String,
    git_commit: String,
    encoder_sha256: String,
    data_files: Vec<DataFile>,
    split: String,
    seed: u64,
    opts: tf::FramesOpts,
    threads: usize,
}

#[derive(Debug, Serialize)]
struct FramesReport {
    dataset: String,
    #[serde(flatten)]
    metrics: tf::MultiLabelMetrics,
    folds: Vec<FoldScore>,
    fold_micro_f1_mean: f64,
    fold_micro_f1_sd: f64,
    /// Micro-F1 of always predicting every frame seen in at least half the training articles
    /// (a majority baseline), pooled over the same folds.
    majority_baseline_micro_f1: f64,
    manifest: FramesManifest,
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn cv_report(
    enc: &Encoder,
    data_dir: &std::path::Path,
    k: usize,
    opts: &tf::FramesOpts,
    batch: usize,
) -> Result<FramesReport> {
    if k < 2 {
        bail!("--cv needs at least 2 folds");
    }
    let (arts, labels_path) = data::frames::semeval_frames(data_dir)?;
    let x = article_features(enc, &arts, batch)?;
    let y: Vec<Vec<bool>> = arts.iter().map(|a| a.labels.clone()).collect();
    let names = labels();
    let t0 = Instant::now();
    let (pred, _, fold) = tf::cross_validate(&x, &y, &names, k, opts)?;
    eprintln!("  {k}-fold CV in {:.1}s", t0.elapsed().as_secs_f64());
    let metrics = tf::MultiLabelMetrics::new(&pred, &y, &names);
    let mut folds = Vec::new();
    let mut base_pred = vec![Vec::new(); y.len()];
    for f in 0..k {
        let idx: Vec<usize> = (0..y.len()).filter(|&i| fold[i] == f).collect();
        let p: Vec<Vec<bool>> = idx.iter().map(|&i| pred[i].clone()).collect();
        let g: Vec<Vec<bool>> = idx.iter().map(|&i| y[i].clone()).collect();
        let m = tf::MultiLabelMetrics::new(&p, &g, &names);
        folds.push(FoldScore {
            fold: f,
            n: m.n,
            micro_f1: round6(m.micro_f1),
            macro_f1: round6(m.macro_f1),
        });
        let train: Vec<usize> = (0..y.len()).filter(|&i| fold[i] != f).collect();
        let majority: Vec<bool> = (0..names.len())
            .map(|j| 2 * train.iter().filter(|&&i| y[i][j]).count() >= train.len())
            .collect();
        for &i in &idx {
            base_pred[i] = majority.clone();
        }
    }
    let mean = folds.iter().map(|f| f.micro_f1).sum::<f64>() / k as f64;
    let sd = (folds
        .iter()
        .map(|f| (f.micro_f1 - mean).powi(2))
        .sum::<f64>()
        / (k as f64 - 1.0))
        .sqrt();
    let baseline = tf::MultiLabelMetrics::new(&base_pred, &y, &names).micro_f1;
    let (version, commit) = version_info();
    Ok(FramesReport {
        dataset: "SemEval-2023 Task 3 subtask 2 (English, 433 articles, 14 frames)".into(),
        metrics,
        folds,
        fold_micro_f1_mean: round6(mean),
        fold_micro_f1_sd: round6(sd),
        majority_baseline_micro_f1: round6(baseline),
        manifest: FramesManifest {
            slant_version: version,
            git_commit: commit,
            encoder_sha256: enc.weights_sha256().into(),
            data_files: data_files(data_dir, &labels_path, &arts)?,
            split: format!(
                "{k}-fold CV over articles (seeded shuffle, seed {}); in each fold the head is \
                 trained on the other folds, with each frame's threshold chosen by an inner \
                 {}-fold CV on those folds; metrics pooled over the out-of-fold predictions",
                opts.seed, opts.inner_folds
            ),
            seed: opts.seed,
            opts: opts.clone(),
            threads: threads(),
        },
    })
}

fn render_report(r: &FramesReport) -> String {
    let m = &r.metrics;
    let mut s = format!(
        "dataset  {}\nsplit    {}\nn {}  micro-P {:.4}  micro-R {:.4}  micro-F1 {:.4}  macro-F1 {:.4}\n\
         per-fold micro-F1 {:.4} ± {:.4} (sd); majority baseline micro-F1 {:.4}\n\n",
        r.dataset,
        r.manifest.split,
        m.n,
        m.micro_precision,
        m.micro_recall,
        m.micro_f1,
        m.macro_f1,
        r.fold_micro_f1_mean,
        r.fold_micro_f1_sd,
        r.majority_baseline_micro_f1
    );
    s.push_str(&format!(
        "{:<46} {:>7} {:>5} {:>5} {:>5} {:>9} {:>7} {:>7}\n",
        "frame", "support", "TP", "FP", "FN", "precision", "recall", "F1"
    ));
    for l in &m.per_label {
        s.push_str(&format!(
            "{:<46} {:>7} {:>5} {:>5} {:>5} {:>9.4} {:>7.4} {:>7.4}\n",
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
    s.push_str(&format!(
        "encoder {}  git {}\n",
        &r.manifest.encoder_sha256[..12],
        r.manifest.git_commit
    ));
    s
}

pub fn eval_frames(a: EvalFramesArgs) -> Result<i32> {
    let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
    let enc = load_encoder(&a.model)?;
    let r = cv_report(&enc, &data_dir, a.cv, &a.hyper.opts(), a.model.batch_size)?;
    let mut out = std::io::stdout().lock();
    match a.format {
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &r)?;
            out.write_all(b"\n")?;
        }
        ReportFormat::Table => out.write_all(render_report(&r).as_bytes())?,
    }
    out.flush()?;
    Ok(0)
}

pub fn train_frames(a: TrainFramesArgs) -> Result<i32> {
    let t0 = Instant::now();
    let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
    let enc = load_encoder(&a.model)?;
    let opts = a.hyper.opts();
    eprintln!("slant train frames: 5-fold CV, then the final head on all 433 articles");
    let report = cv_report(&enc, &data_dir, 5, &opts, a.model.batch_size)?;
    let (arts, _) = data::frames::semeval_frames(&data_dir)?;
    let x = article_features(&enc, &arts, a.model.batch_size)?;
    let y: Vec<Vec<bool>> = arts.iter().map(|a| a.labels.clone()).collect();
    let mut head = tf::fit(&x, &y, &labels(), &opts)?;
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

fn frames_card(head: &FramesHead, sha: &str, r: &FramesReport, a: &TrainFramesArgs) -> String {
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
