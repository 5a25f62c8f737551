//! `slant train loaded-spans` and `slant eval loaded-spans`: the loaded-language span tagger.
//! Data, splits, training and scoring live in [`slant::train::loaded_spans`]; this file parses
//! options, prints, and writes the head and its model card.

use crate::cli::args::spans::*;
use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result};

use super::{load_encoder, spans_head_path};
use slant::data;
use slant::encode::sha256_file;
use slant::eval::version_info;
use slant::heads::tagger::{DecodeOpts, TaggerHead};
use slant::train::loaded_spans::{self as ls, SpansConfig, SpansDataset};

/// The library's dataset of `--dataset`.
fn dataset(s: SpansSet) -> SpansDataset {
    match s {
        SpansSet::Ptc => SpansDataset::Ptc,
        SpansSet::Babe => SpansDataset::Babe,
    }
}

pub fn eval_spans(a: EvalSpansArgs) -> Result<i32> {
    let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
    // Missing data is reported before the encoder is loaded.
    ls::held_out(&data_dir, dataset(a.dataset))?;
    let enc = load_encoder(&a.model)?;
    let path = spans_head_path(a.model.spans_head.as_ref())?;
    let head = TaggerHead::load(&path)?;
    let r = ls::evaluate(
        &enc,
        &head,
        &data_dir,
        dataset(a.dataset),
        a.model.batch_size,
    )?;
    crate::cli::print_report(a.format, &r, |r| r.table())
}

pub fn train_spans(a: TrainSpansArgs) -> Result<i32> {
    let t0 = Instant::now();
    let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
    let enc = load_encoder(&a.model)?;
    let cfg = a.hyper.config();
    let td = ls::training_data(&data_dir, &cfg)?;
    let (mut head, rep) = if a.select_threshold {
        let head = TaggerHead::load(&a.out)?;
        let rep: slant::train::tagger::TaggerReport = head
            .meta
            .get("train_report")
            .and_then(|r| serde_json::from_str(r).ok())
            .with_context(|| {
                format!(
                    "{}: no readable `train_report` in its header (not written by `slant train loaded-spans`)",
                    a.out.display()
                )
            })?;
        eprintln!(
            "slant train loaded-spans --select-threshold: {} dev texts",
            td.dev.len()
        );
        (head, rep)
    } else {
        eprintln!(
            "slant train loaded-spans: {} training texts, {} dev texts; encoding (cached) and training",
            td.train.len(),
            td.dev.len()
        );
        let (mut head, rep) = ls::train(&enc, &td, &cfg, a.model.batch_size)?;
        eprintln!(
            "dev token F1 per epoch {:?}; kept epoch {} ({:.1}s)",
            rep.dev_f1,
            rep.best_epoch,
            t0.elapsed().as_secs_f64()
        );
        let mut files = Vec::new();
        for f in &td.files {
            let sha = if f.is_file() {
                sha256_file(f)?
            } else {
                "(folder)".to_string()
            };
            files.push((f.display().to_string(), sha));
        }
        let meta: BTreeMap<String, String> = [
            (
                "head",
                "loaded-language span tagger (BIO over token states)".to_string(),
            ),
            ("encoder_sha256", enc.weights_sha256().to_string()),
            ("config", serde_json::to_string(&cfg)?),
            ("sources", serde_json::to_string(&td.sources)?),
            ("train_report", serde_json::to_string(&rep)?),
            ("data_files", serde_json::to_string(&files)?),
            ("slant_version", version_info().0),
            ("git_commit", version_info().1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        head.meta = meta;
        (head, rep)
    };
    let (choice, grid) = ls::select_decode(&enc, &head, &td.dev, a.model.batch_size)?;
    head.decode = choice;
    eprintln!("decoding chosen on PTC dev: {}", ls::decode_text(&choice));
    head.save(&a.out)?;
    let mut argmax = head.clone();
    argmax.decode = Default::default();
    let mut evals = Vec::new();
    for h in [&head, &argmax] {
        for d in [SpansDataset::Ptc, SpansDataset::Babe] {
            evals.push(ls::evaluate(&enc, h, &data_dir, d, a.model.batch_size)?);
        }
    }
    let sha = sha256_file(&a.out)?;
    std::fs::write(&a.card, card(&head, &sha, &td, &rep, &evals, &grid, &a))
        .with_context(|| format!("writing {}", a.card.display()))?;
    println!(
        "wrote {} (sha256 {}) and {}",
        a.out.display(),
        sha,
        a.card.display()
    );
    for e in &evals[..2] {
        print!("{}", e.table());
    }
    println!("total {:.1}s", t0.elapsed().as_secs_f64());
    Ok(0)
}

/// The dev row of `grid` with decoding `d`.
fn dev_row<'a>(grid: &'a [ls::DecodeCandidate], d: &DecodeOpts) -> Option<&'a ls::SystemScores> {
    grid.iter().find(|c| &c.decode == d).map(|c| &c.dev)
}

fn card(
    head: &TaggerHead,
    sha: &str,
    td: &ls::TrainingData,
    rep: &slant::train::tagger::TaggerReport,
    evals: &[ls::SpansReport],
    grid: &[ls::DecodeCandidate],
    a: &TrainSpansArgs,
) -> String {
    let o = &a.hyper;
    let mut s = String::new();
    s.push_str("# Model card: loaded-language span head (`models/loaded_spans.safetensors`)\n\n");
    s.push_str("Generated by `slant train loaded-spans`; do not edit by hand.\n\n## What it is\n");
    s.push_str(&format!(
        "A per-token tagger (labels `O`, `B-LOADED`, `I-LOADED`) on the final token states of the frozen \
         encoder (all-MiniLM-L6-v2, sha256 `{}`): {}, softmax. Tokens are grouped into words; a word's \
         label comes from its first piece; BIO over words gives byte spans, scored by the mean probability \
         of their words' labels (`src/heads/tagger.rs`). Decoding (chosen on PTC dev, stored in the \
         header): {}. In `slant score` it reads the same single encoder \
         pass as the sentence heads.\n\nHead file sha256: `{sha}`\n\n",
        enc_sha(head),
        if head.hidden > 0 {
            format!("one {}-unit ReLU layer", head.hidden)
        } else {
            "linear".to_string()
        },
        ls::decode_text(&head.decode)
    ));
    if a.hyper.no_babe {
        s.push_str(
            "Trained without BABE (`--no-babe`): the loaded-language sentence head reads this head's \
             token evidence (`slant train loaded --span-evidence`), so BABE stays unseen by both and \
             their BABE figures are zero-shot (the BABE span rows below included).\n\n",
        );
    }
    s.push_str("## Data and split\nTexts are cut into sentences by slant's splitter, gold spans clipped to sentences and \
        widened to whole words. Fixed split of PTC / SemEval-2023 **articles** by `sha256(\"slant-spans-split-v1\\0\" + id)`: \
        first 8 bytes big-endian mod 100, 0–19 test (held out), 20–29 dev (epoch selection), 30–99 train; BABE SG2 \
        sentences: the same hash of the sentence id (`sg2-<row>`) mod 5, fold 0 held out. \
        SemEval-2023 articles that are also in PTC are not used (their PTC annotation is).\n\n\
        | training source | texts | spans |\n|---|---|---|\n");
    for c in &td.sources {
        s.push_str(&format!("| {} | {} | {} |\n", c.name, c.texts, c.spans));
    }
    s.push_str("\nPTC and SemEval-2023 are the organisers' data (research use), BABE is AGPL-3.0: read by path, never committed.\n\n");
    for f in &td.files {
        s.push_str(&format!("- `{}`\n", f.display()));
    }
    s.push_str(&format!(
        "\n## Training\nAdamW (lr {}, weight decay {}), {} tokens per batch, at most {} epochs, patience {}, seed {}, \
         class weights (count_O / count_c)^{} = {:?}. {} training tokens, {} dev tokens. Dev token F1 per epoch: {:?}; \
         kept epoch {}.\n\n",
        o.lr,
        SpansConfig::default().tagger.weight_decay,
        SpansConfig::default().tagger.batch_tokens,
        o.epochs,
        SpansConfig::default().tagger.patience,
        o.seed,
        o.class_weight_power,
        rep.class_weights,
        rep.train_tokens,
        rep.dev_tokens,
        rep.dev_f1.iter().map(|v| (v * 1e4).round() / 1e4).collect::<Vec<_>>(),
        rep.best_epoch
    ));
    s.push_str(&format!(
        "## Decoding thresholds (chosen on PTC dev, {} articles)\n\nEvery pair of a minimum word \
         probability P(not O) (arg-max, {}) and a minimum span score (none, {}) is scored on the PTC dev \
         part; the best span-overlap F1 wins (ties: the simpler rule). Re-choose on an existing head \
         with `slant train loaded-spans --select-threshold` (tensors unchanged).\n\n\
         | PTC dev | token P | token R | token F1 | span P | span R | span F1 |\n|---|---|---|---|---|---|---|\n",
        td.dev.len(),
        ls::WORD_PROB_GRID.iter().flatten().map(|t| t.to_string()).collect::<Vec<_>>().join(", "),
        ls::SPAN_SCORE_GRID.iter().flatten().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
    ));
    for (name, d) in [
        ("arg-max, every span", DecodeOpts::default()),
        ("chosen", head.decode),
    ] {
        if let Some(m) = dev_row(grid, &d) {
            s.push_str(&format!(
                "| {name} ({}) | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
                ls::decode_text(&d),
                m.token.precision,
                m.token.recall,
                m.token_f1,
                m.span_overlap.precision,
                m.span_overlap.recall,
                m.span_f1
            ));
        }
    }
    s.push_str("\n## Metrics (held out)\n\nToken = words as `src/eval/spans.rs` cuts them; span overlap = a predicted span is \
        right when it shares a byte with a gold span (recall: gold spans touched). Baseline: every word of the Recasens \
        et al. (2013) bias lexicon is a span.\n\n| set | system | token P | token R | token F1 | span P | span R | span F1 | exact F1 |\n|---|---|---|---|---|---|---|---|---|\n");
    let half = evals.len() / 2;
    for (i, e) in evals.iter().enumerate() {
        let decoding = if i < half { "" } else { ", arg-max decoding" };
        let name = match e.dataset {
            SpansDataset::Ptc => format!(
                "PTC test ({} articles, {} gold spans)",
                e.texts, e.gold_spans
            ),
            SpansDataset::Babe => format!(
                "BABE fold 0 ({} sentences, {} gold spans){}",
                e.texts,
                e.gold_spans,
                if a.hyper.no_babe { ", zero-shot" } else { "" }
            ),
        };
        let sys = format!("span head{decoding}");
        let mut rows = vec![(sys.as_str(), &e.model)];
        if let Some(l) = e.lexicon_baseline.as_ref().filter(|_| i < half) {
            rows.push(("Recasens lexicon", l));
        }
        for (sys, m) in rows {
            s.push_str(&format!(
                "| {name} | {sys} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
                m.token.precision,
                m.token.recall,
                m.token_f1,
                m.span_overlap.precision,
                m.span_overlap.recall,
                m.span_f1,
                m.span_exact.f1
            ));
        }
    }
    s.push_str("\nPublished reference: SemEval-2020 Task 11 span identification (all 14 techniques, not Loaded_Language \
        alone, with the task's character-overlap F1) best systems ≈ 0.50 F1 on the official test set; not directly comparable.\n\n");
    s.push_str(&format!(
        "## Reproduce\n\n```\nmodels/fetch\ncargo build --release\ntarget/release/slant train loaded-spans --data DIR{}\ntarget/release/slant eval loaded-spans --data DIR --dataset ptc\ntarget/release/slant eval loaded-spans --data DIR --dataset babe\n```\n",
        o.flags()
    ));
    s
}

fn enc_sha(h: &TaggerHead) -> String {
    h.meta.get("encoder_sha256").cloned().unwrap_or_default()
}
