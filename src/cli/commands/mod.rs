//! The subcommands: one file per subcommand family; `run` dispatches a parsed command line.

mod attribution;
mod dataset;
mod eval;
mod frames;
mod outlets;
mod report;
mod spans;
mod tuned;

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::cli::args::*;
use slant::data;
use slant::encode::{sha256_file, Encoder};
use slant::eval::loaded::{ece_of, labels, metrics_at, probs, train_opts};
use slant::eval::{version_info, DataFile};
use slant::heads::tagger::TaggerHead;
use slant::heads::{MlpHead, SentenceFeatures};
use slant::metrics::{best_threshold, BinaryMetrics};
use slant::pipeline::Scorer;
use slant::train::tune::fit_temperature;
use slant::train::{self, TrainOpts};
use slant::{models, segment};

/// Dispatch a parsed command line.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Score(a) => dataset::score(a),
        Command::Profile(a) if a.format == AnalysisFormat::Html => report::profile_html(&a),
        Command::Profile(a) => dataset::profile(a),
        Command::Compare(a) if a.format == AnalysisFormat::Html => report::compare_html(a),
        Command::Compare(a) => dataset::compare(a),
        Command::Report(a) => report::report(a),
        Command::Merge(a) => dataset::merge(a),
        Command::Split(a) => split(a),
        Command::Train(TrainCommand::Loaded(a)) => train_loaded(a),
        Command::Eval(c) => eval::run(c),
        Command::Train(TrainCommand::Frames(a)) => frames::train_frames(a),
        Command::Train(TrainCommand::Attribution(a)) => attribution::train_attribution(a),
        Command::Train(TrainCommand::LoadedSpans(a)) => spans::train_spans(a),
        Command::Train(TrainCommand::LoadedTuned(a)) => tuned::train_tuned(a),
    }
}

pub(super) fn threads() -> usize {
    rayon::current_num_threads()
}

/// The library's model options, from the command line's.
fn opts(m: &ModelArgs) -> models::ModelOptions {
    m.into()
}

pub(super) fn find_models_file(name: &str) -> Option<PathBuf> {
    models::find_models_file(name)
}

pub(super) fn find_checkout_file(rel: &Path) -> Option<PathBuf> {
    models::find_checkout_file(rel)
}

/// The encoder of an evaluation or training run, with a progress line on stderr (sentences
/// encoded, sentences/s; drawn only when stderr is a terminal).
pub(super) fn load_encoder(m: &ModelArgs) -> Result<Encoder> {
    let mut enc = models::load_encoder(&opts(m))?;
    let pb =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if !pb.is_hidden() {
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos} sentences encoded, {per_sec} [{elapsed_precise}]",
            )
            .expect("valid template"),
        );
        enc.set_progress(Some(std::sync::Arc::new(move |n| pb.inc(n))));
    }
    Ok(enc)
}

pub(super) fn load_head(m: &ModelArgs) -> Result<(MlpHead, PathBuf)> {
    Ok(models::load_head(&opts(m))?)
}

/// The features the sentence head `head` reads for `rows` (mean pooling, or mean pooling plus
/// the evidence of its span head, found as in [`evidence_span_head`]).
pub(super) fn sentence_head_features(
    enc: &Encoder,
    head: &MlpHead,
    m: &ModelArgs,
    rows: &[slant::data::LabelledSentence],
    what: &str,
) -> Result<Vec<Vec<f32>>> {
    let kind = SentenceFeatures::of(head)?;
    let span = models::evidence_span_head(&kind, &opts(m))?;
    Ok(slant::eval::loaded::head_features(
        enc,
        rows,
        m.batch_size,
        what,
        &kind,
        span.as_ref().map(|(h, s, p)| (h, s.as_str(), p.as_str())),
    )?)
}

/// The outcome of the loaded-language head `slant score` uses on `rows`: the tuned head (blended
/// with its partner when it has one) when present, else the frozen head; and that head's path.
pub(super) fn scorer_head_outcome(
    enc: &Encoder,
    m: &ModelArgs,
    rows: &[slant::data::LabelledSentence],
    what: &str,
) -> Result<(slant::eval::loaded::LoadedOutcome, PathBuf)> {
    let y = slant::eval::loaded::labels(rows);
    let Some((t, _, tpath)) = models::load_tuned_head(&opts(m), enc)? else {
        let (head, head_path) = load_head(m)?;
        let x = sentence_head_features(enc, &head, m, rows, what)?;
        return Ok((slant::eval::loaded::evaluate_head(&head, &x, &y), head_path));
    };
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let states = enc.states_after(&texts, t.first_layer, m.batch_size)?;
    let refs: Vec<&[f32]> = states.iter().map(Vec::as_slice).collect();
    let zt = t.logits(&refs)?;
    let zm = match &t.blend {
        None => None,
        Some(_) => {
            let (partner, _) = models::tuned_partner(&t, &tpath)?;
            let x = sentence_head_features(enc, &partner, m, rows, what)?;
            Some(slant::eval::loaded::logits(&partner, &x))
        }
    };
    let p = t.combine(&zt, zm.as_deref())?;
    Ok((
        slant::eval::loaded::evaluate_probs(p, &y, t.threshold),
        tpath,
    ))
}

pub(super) fn spans_head_path(explicit: Option<&PathBuf>) -> Result<PathBuf> {
    Ok(models::spans_head_path(explicit)?)
}

pub(super) fn load_scorer(m: &ModelArgs) -> Result<(Scorer, String)> {
    Ok(models::load_scorer(&opts(m))?)
}

fn split(a: SplitArgs) -> Result<i32> {
    let mut bytes = Vec::new();
    if a.input.as_os_str() == "-" {
        if std::io::stdin().is_terminal() {
            eprintln!("slant split: reading text from stdin (Ctrl-D to end)");
        }
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes =
            std::fs::read(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: invalid UTF-8 at byte offset {}",
            a.input.display(),
            e.valid_up_to()
        )
    })?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for s in segment::split(text) {
        let t = segment::display_text(&text[s.start..s.end]);
        match a.format {
            SplitFormat::Text => writeln!(out, "{t}")?,
            SplitFormat::Jsonl => {
                serde_json::to_writer(
                    &mut out,
                    &json!({"start": s.start, "end": s.end, "text": t}),
                )?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

// ---------------------------------------------------------------------------------------------
// train / eval

fn train_loaded(a: TrainLoadedArgs) -> Result<i32> {
    let t0 = Instant::now();
    let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
    let enc = load_encoder(&a.model)?;
    let (tr, tr_path) = data::anno_lexical(&data_dir, "train")?;
    let (dv, dv_path) = data::anno_lexical(&data_dir, "dev")?;
    let (te, te_path) = data::anno_lexical(&data_dir, "test")?;
    let (babe, babe_path) = data::babe_sg2(&data_dir)?;
    eprintln!(
        "slant train loaded: encoding (cached under {})",
        train::cache_dir().display()
    );
    let bs = a.model.batch_size;
    let span = match &a.span_evidence {
        None => None,
        Some(p) => {
            let head = TaggerHead::load(p)?;
            if head.labels != slant::heads::loaded_spans::labels() {
                bail!("{}: not a loaded-language span head", p.display());
            }
            Some((head, sha256_file(p)?, p.display().to_string()))
        }
    };
    let kind = match &span {
        None => SentenceFeatures::Mean,
        Some((_, sha, _)) => SentenceFeatures::MeanSpanEvidence {
            span_sha256: sha.clone(),
        },
    };
    let span_ref = span.as_ref().map(|(h, s, p)| (h, s.as_str(), p.as_str()));
    let f = |rows: &[slant::data::LabelledSentence], what: &str| {
        slant::eval::loaded::head_features(&enc, rows, bs, what, &kind, span_ref)
    };
    let (xtr, xdv, xte, xbabe) = (
        f(&tr, "anno-lexical train")?,
        f(&dv, "anno-lexical dev")?,
        f(&te, "anno-lexical test")?,
        f(&babe, "BABE SG2")?,
    );
    let (ytr, ydv, yte, ybabe) = (labels(&tr), labels(&dv), labels(&te), labels(&babe));
    let training = slant::eval::loaded::HeadTraining {
        ensemble: a.ensemble.max(1),
        weight_decay: a.weight_decay,
        repeat: 1,
    };
    let opts = TrainOpts {
        weight_decay: a.weight_decay,
        ..train_opts(a.hidden, a.seed)
    };
    let t1 = Instant::now();
    let mut head = slant::eval::loaded::train_head(
        &xtr,
        &ytr,
        Some((&xdv, &ydv)),
        a.hidden,
        a.seed,
        &training,
    )?;
    eprintln!("  trained in {:.1}s", t1.elapsed().as_secs_f64());
    // Threshold on the raw dev probabilities; then one temperature fitted on dev (NLL), with the
    // threshold mapped through the same monotone map, so every decision stays as it was.
    let (thr_raw, _) = best_threshold(&probs(&head, &xdv), &ydv);
    let ece_raw_test = ece_of(&probs(&head, &xte), &yte);
    let ece_raw_babe = ece_of(&probs(&head, &xbabe), &ybabe);
    let temp = fit_temperature(&loaded_logits(&head, &xdv), &ydv);
    head.temperature = temp;
    head.threshold = calibrated_threshold(thr_raw, temp);
    let thr = head.threshold;
    let pdv = probs(&head, &xdv);
    let m_dev = metrics_at(&pdv, &ydv, thr);
    let pte = probs(&head, &xte);
    let m_test = metrics_at(&pte, &yte, thr);
    let pb = probs(&head, &xbabe);
    let m_babe = metrics_at(&pb, &ybabe, thr);
    let cal = Calibration {
        temperature: temp,
        threshold_raw: thr_raw,
        ece_test: (ece_raw_test, ece_of(&pte, &yte)),
        ece_babe: (ece_raw_babe, ece_of(&pb, &ybabe)),
    };
    let files = [
        DataFile::new(&data_dir, &tr_path)?,
        DataFile::new(&data_dir, &dv_path)?,
        DataFile::new(&data_dir, &te_path)?,
        DataFile::new(&data_dir, &babe_path)?,
    ];
    let mut meta: BTreeMap<String, String> = [
        ("head", "loaded-language sentence head".to_string()),
        ("encoder_sha256", enc.weights_sha256().to_string()),
        ("trained_on", "anno-lexical train (MIT)".into()),
        (
            "threshold_chosen_on",
            "anno-lexical dev (max macro-F1 of the uncalibrated probabilities, mapped through the temperature)".into(),
        ),
        (
            "temperature_fitted_on",
            "anno-lexical dev (min NLL over 2^-2..2^2)".into(),
        ),
        ("train_opts", serde_json::to_string(&opts)?),
        ("ensemble", training.ensemble.to_string()),
        ("data_files", serde_json::to_string(&files)?),
        ("dev_macro_f1", format!("{:.4}", m_dev.macro_f1)),
        ("test_macro_f1", format!("{:.4}", m_test.macro_f1)),
        ("babe_zero_shot_macro_f1", format!("{:.4}", m_babe.macro_f1)),
        ("slant_version", version_info().0),
        ("git_commit", version_info().1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    kind.write(&mut meta);
    head.meta = meta;
    head.save(&a.out)?;
    let head_sha = sha256_file(&a.out)?;
    let card = model_card(
        &head, &head_sha, &enc, &opts, &files, &m_dev, &m_test, &m_babe, &cal, &a, &kind,
    );
    std::fs::write(&a.card, card).with_context(|| format!("writing {}", a.card.display()))?;
    println!(
        "wrote {} (sha256 {}) and {}\nthreshold {:.2} (chosen on anno-lexical dev)\n\
         anno-lexical dev  macro-F1 {:.4}\nanno-lexical test macro-F1 {:.4}\n\
         BABE SG2 zero-shot macro-F1 {:.4}\ntemperature {} (fitted on anno-lexical dev): \
         ECE anno-lexical test {:.4} -> {:.4}, BABE SG2 zero-shot {:.4} -> {:.4}\ntotal {:.1}s",
        a.out.display(),
        head_sha,
        a.card.display(),
        thr,
        m_dev.macro_f1,
        m_test.macro_f1,
        m_babe.macro_f1,
        temp,
        cal.ece_test.0,
        cal.ece_test.1,
        cal.ece_babe.0,
        cal.ece_babe.1,
        t0.elapsed().as_secs_f64()
    );
    Ok(0)
}

/// Temperature scaling of the shipped sentence head, for its card.
struct Calibration {
    temperature: f32,
    /// The threshold chosen on the uncalibrated dev probabilities.
    threshold_raw: f32,
    /// ECE (before, after) on anno-lexical test and on BABE SG2.
    ece_test: (f64, f64),
    ece_babe: (f64, f64),
}

/// The head's logits (temperature 1).
fn loaded_logits(head: &MlpHead, x: &[Vec<f32>]) -> Vec<f32> {
    slant::eval::loaded::logits(head, x)
}

/// The threshold on `sigmoid(z / t)` that makes the same decisions as `thr` on `sigmoid(z)`.
fn calibrated_threshold(thr: f32, t: f32) -> f32 {
    let thr = thr.clamp(1e-6, 1.0 - 1e-6) as f64;
    let z = (thr / (1.0 - thr)).ln();
    (1.0 / (1.0 + (-z / t as f64).exp())) as f32
}

#[allow(clippy::too_many_arguments)]
fn model_card(
    head: &MlpHead,
    head_sha: &str,
    enc: &Encoder,
    opts: &TrainOpts,
    files: &[DataFile],
    dev: &BinaryMetrics,
    test: &BinaryMetrics,
    babe: &BinaryMetrics,
    cal: &Calibration,
    a: &TrainLoadedArgs,
    kind: &SentenceFeatures,
) -> String {
    let row = |name: &str, m: &BinaryMetrics| {
        format!(
            "| {name} | {} | {} | {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
            m.n,
            m.tp,
            m.fp,
            m.fn_,
            m.tn,
            m.positive.precision,
            m.positive.recall,
            m.positive.f1,
            m.macro_f1
        )
    };
    let mut s = String::new();
    s.push_str("# Model card: loaded-language sentence head (`models/loaded.safetensors`)\n\n");
    s.push_str("Generated by `slant train loaded`; do not edit by hand.\n\n");
    s.push_str("## What it is\n");
    let evidence = match kind.span_sha256() {
        None => String::new(),
        Some(sha) => format!(
            ", followed by two span-evidence features read from the token states of the same \
             encoder pass: the max and the mean, over the sentence's word-piece tokens, of P(not `O`) \
             of the span head with sha256 `{sha}` (header `features` = `{}`; `slant score` refuses \
             another span head)",
            kind.name()
        ),
    };
    s.push_str(&format!(
        "A {} on the L2-normalised mean-pooled final hidden states of the frozen encoder \
         (all-MiniLM-L6-v2, `model.safetensors` sha256 `{}`){evidence}. Output: P(sentence uses loaded / \
         lexically biased language), temperature-scaled (T = {}, fitted on anno-lexical dev). \
         Decision threshold {:.4} (= {:.2} on the uncalibrated probability, chosen on anno-lexical dev to \
         maximise macro-F1; the temperature changes no decision).\n\n",
        if head.hidden > 0 {
            format!("one-hidden-layer perceptron ({} ReLU units)", head.hidden)
        } else {
            "logistic regression".to_string()
        },
        enc.weights_sha256(),
        cal.temperature,
        head.threshold,
        cal.threshold_raw
    ));
    s.push_str(&format!("Head file sha256: `{head_sha}`\n\n"));
    s.push_str("## Data\n");
    s.push_str("- Train: anno-lexical train (33,831 sentences; LLM-annotated lexical bias; MIT licence, Media Bias Group).\n");
    s.push_str("- Model selection (early stopping), threshold and temperature: anno-lexical dev (7,249); no BABE sentence is used to fit anything.\n");
    s.push_str("- Test: anno-lexical test (7,250) and, as zero-shot transfer, all of BABE SG2 (3,673 expert-labelled sentences, AGPL-3.0; read by path, never committed).\n\n");
    s.push_str("Data files (paths relative to `--data`):\n\n");
    for f in files {
        s.push_str(&format!("- `{}` sha256 `{}`\n", f.path, f.sha256));
    }
    s.push_str(&format!(
        "\n## Training\nAdamW (lr {}, weight decay {}), batch {}, at most {} epochs, early stopping \
         on dev loss (patience {}), seed {}{}. Features are cached by encoder checksum and text.\n\n",
        opts.lr,
        opts.weight_decay,
        opts.batch_size,
        opts.epochs,
        opts.patience,
        opts.seed,
        if a.ensemble > 1 {
            format!(
                "; a seed ensemble: {} heads (seeds {}..={}) each early-stopped on dev, their logits \
                 averaged (stored as one head of {} hidden units)",
                a.ensemble,
                opts.seed,
                opts.seed + a.ensemble as u64 - 1,
                head.hidden
            )
        } else {
            String::new()
        }
    ));
    s.push_str("## Metrics (positive class = loaded)\n\n");
    s.push_str("| set | n | TP | FP | FN | TN | P | R | F1 | macro-F1 |\n|---|---|---|---|---|---|---|---|---|---|\n");
    s.push_str(&row("anno-lexical dev", dev));
    s.push_str(&row("anno-lexical test", test));
    s.push_str(&row("BABE SG2 (zero-shot)", babe));
    s.push_str(&format!(
        "\nExpected calibration error ({} equal-width bins), before -> after temperature scaling \
         (T = {}, fitted on anno-lexical dev by minimum log-loss over 2^-2..2^2): anno-lexical test \
         {:.4} -> {:.4}; BABE SG2 zero-shot {:.4} -> {:.4}.\n\n",
        slant::eval::loaded::ECE_BINS,
        cal.temperature,
        cal.ece_test.0,
        cal.ece_test.1,
        cal.ece_babe.0,
        cal.ece_babe.1
    ));
    s.push_str("## Reproduce\n\n```\nmodels/fetch\ncargo build --release\n");
    s.push_str(&format!(
        "target/release/slant train loaded --data DIR --hidden {} --seed {}{}{}{}\n```\n",
        a.hidden,
        a.seed,
        if kind.span_sha256().is_some() {
            " --span-evidence models/loaded_spans.safetensors"
        } else {
            ""
        },
        if a.ensemble > 1 {
            format!(" --ensemble {}", a.ensemble)
        } else {
            String::new()
        },
        if a.weight_decay != TrainOpts::default().weight_decay {
            format!(" --weight-decay {}", a.weight_decay)
        } else {
            String::new()
        }
    ));
    s.push_str(
        "\nwhere DIR is laid out like the shared data folder. Reproduced on the same machine type and \
         thread count, the head is byte-identical (seeded shuffling and initialisation).\n",
    );
    if kind.span_sha256().is_some() {
        s.push_str(
            "\nThe span head comes first: `target/release/slant train loaded-spans --data DIR --no-babe` \
             (see `models/LOADED_SPANS_CARD.md`; it never sees BABE, so the BABE figures above stay \
             zero-shot). The same features in BABE SG2 5-fold CV (each fold's head trained on the \
             other folds plus anno-lexical train): `target/release/slant eval loaded --data DIR \
             --dataset babe --cv 5 --span-evidence models/loaded_spans.safetensors`.\n",
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrated_threshold_keeps_every_decision() {
        let sig = |z: f32| 1.0 / (1.0 + (-z).exp());
        for &(thr, t) in &[(0.49f32, 1.3f32), (0.3, 0.7), (0.5, 2.0), (0.8, 1.0)] {
            let c = calibrated_threshold(thr, t);
            for i in -400..=400 {
                let z = i as f32 / 50.0;
                // Leave out logits within rounding of the boundary.
                if (sig(z) - thr).abs() < 1e-5 {
                    continue;
                }
                assert_eq!(sig(z) >= thr, sig(z / t) >= c, "thr {thr} t {t} z {z}");
            }
        }
        assert!((calibrated_threshold(0.5, 3.0) - 0.5).abs() < 1e-7);
    }
}
