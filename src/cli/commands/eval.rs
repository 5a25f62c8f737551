//! `slant eval loaded`, `slant eval splitter` and `slant eval all`. The evaluation logic lives in
//! the library ([`slant::eval`]); this file resolves files and prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::{find_checkout_file, load_encoder, load_head, threads};
use crate::cli::args::*;
use slant::data;
use slant::encode::sha256_file;
use slant::eval::labels::{self, Labels};
use slant::eval::loaded::{self, CvOpts, EvalManifest, EvalReport};
use slant::eval::runs::{self, shown_path, Models, RunConfig};
use slant::eval::{version_info, DataFile};
use slant::segment::eval as seg_eval;

/// Dispatch `slant eval ...`.
pub fn run(cmd: EvalCommand) -> Result<i32> {
    match cmd {
        EvalCommand::Loaded(a) => eval_loaded(a),
        EvalCommand::Splitter(a) => eval_splitter(a),
        EvalCommand::All(a) => eval_all(a),
        EvalCommand::Frames(a) => super::frames::eval_frames(a),
        EvalCommand::Outlets(a) => super::outlets::eval_outlets(a),
        EvalCommand::Attribution(a) => super::attribution::eval_attribution(a),
        EvalCommand::LoadedSpans(a) => super::spans::eval_spans(a),
    }
}

const CASES_FILE: &str = "eval/splitter/cases.jsonl";

/// The splitter case file: `--cases`, else `eval/splitter/cases.jsonl` of the checkout. Returns
/// the path and how reports show it.
fn resolve_cases(explicit: Option<&Path>) -> Result<(PathBuf, String)> {
    match explicit {
        Some(p) => Ok((p.to_path_buf(), shown_path(p))),
        None => find_checkout_file(Path::new(CASES_FILE))
            .map(|p| (p, CASES_FILE.to_string()))
            .with_context(|| {
                format!(
                    "{CASES_FILE} was not found above the current directory or the executable; \
                     pass --cases FILE"
                )
            }),
    }
}

fn eval_splitter(a: EvalSplitterArgs) -> Result<i32> {
    let (path, _) = resolve_cases(a.cases.as_deref())?;
    let cases = seg_eval::load_cases(&path)?;
    let mut v = runs::splitter_results(&cases, a.reps, a.seed);
    runs::round_floats(&mut v);
    let mut out = std::io::stdout().lock();
    match a.format {
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &v)?;
            out.write_all(b"\n")?;
        }
        ReportFormat::Table => {
            let c = &v["counts"];
            let est = |k: &str| {
                let m = &v["metrics"][k];
                let ci = m["ci"]
                    .as_array()
                    .map(|a| {
                        format!(
                            " [{:.3}, {:.3}]",
                            a[0].as_f64().unwrap_or(0.0),
                            a[1].as_f64().unwrap_or(0.0)
                        )
                    })
                    .unwrap_or_default();
                format!("{:.3}{ci}", m["value"].as_f64().unwrap_or(f64::NAN))
            };
            writeln!(out, "cases      {}", path.display())?;
            writeln!(
                out,
                "exact      {}/{} = {}",
                c["exact"],
                v["cases"],
                est("exact_match")
            )?;
            writeln!(
                out,
                "boundaries P {}  R {}  F1 {}  (tp {}, fp {}, fn {})",
                est("boundary_precision"),
                est("boundary_recall"),
                est("boundary_f1"),
                c["boundary_tp"],
                c["boundary_fp"],
                c["boundary_fn"]
            )?;
            writeln!(
                out,
                "95% intervals: bootstrap over cases ({} resamples, seed {})",
                a.reps, a.seed
            )?;
            writeln!(out, "{:<14} {:>5} {:>5}", "category", "exact", "cases")?;
            for (cat, x) in v["per_category"].as_object().into_iter().flatten() {
                writeln!(out, "{:<14} {:>5} {:>5}", cat, x["exact"], x["cases"])?;
            }
            for f in v["failures"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "FAIL {} ({})\n  expected {}\n  got      {}",
                    f["id"].as_str().unwrap_or(""),
                    f["category"].as_str().unwrap_or(""),
                    f["expected"],
                    f["got"]
                )?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

fn dataset_name(d: LoadedDataset) -> &'static str {
    match d {
        LoadedDataset::Babe => "babe",
        LoadedDataset::AnnoLexical => "anno-lexical",
    }
}

fn eval_loaded(a: EvalLoadedArgs) -> Result<i32> {
    let training = loaded::HeadTraining {
        ensemble: a.ensemble.max(1),
        weight_decay: a.weight_decay,
        repeat: a.babe_repeat.max(1),
    };
    let experiment = a.pooling != slant::heads::Pooling::Mean
        || a.span_evidence.is_some()
        || a.append_lexicon
        || a.span_hidden.is_some()
        || training != loaded::HeadTraining::default();
    // With --tune-blend-frozen the frozen partner reads --span-evidence (and --pooling,
    // --ensemble, --weight-decay).
    let partner_ok = a.tune.tune_blend_frozen
        && a.tune.tune_lora > 0
        && !a.append_lexicon
        && a.span_hidden.is_none()
        && a.babe_repeat <= 1;
    if experiment && (a.cv.is_none() || a.lexicon || (a.tune.tune_layers > 0 && !partner_ok)) {
        bail!(
            "--pooling and --span-evidence (like --append-lexicon, --ensemble, --weight-decay \
             and --babe-repeat) change the heads trained in --cv \
             (frozen encoder, no --lexicon, no --tune-layers except the partner of \
             --tune-blend-frozen); a fixed head reads the features its header names"
        );
    }
    let enc_needed = || load_encoder(&a.model);
    let bs = a.model.batch_size;
    let (version, commit) = version_info();
    let manifest = |enc_sha: &str, head_sha, files, split: &str| EvalManifest {
        slant_version: version.clone(),
        git_commit: commit.clone(),
        encoder_sha256: enc_sha.to_string(),
        head_sha256: head_sha,
        data_files: files,
        split: split.to_string(),
        seed: a.seed,
        threads: threads(),
    };
    let report = if let Some(path) = &a.labels {
        if a.cv.is_some() {
            bail!(
                "--cv is for --dataset babe; a --labels file is evaluated with the committed head"
            );
        }
        let rows = match labels::load(path)? {
            Labels::Sentences(rows) => rows,
            other => bail!(
                "{}: {} {} records are valid, but `eval loaded` scores sentence labels \
                 ({{\"id\",\"text\",\"label\":0|1}}); {} evaluation runs once the {} head exists",
                path.display(),
                other.len(),
                other.kind(),
                other.kind(),
                if other.kind() == "spans" {
                    "loaded-span"
                } else {
                    "attribution"
                }
            ),
        };
        let enc = enc_needed()?;
        let (outcome, head_path) =
            super::scorer_head_outcome(&enc, &a.model, &rows, "labelled file")?;
        let split = format!("every sentence of {}", path.display());
        let file = DataFile {
            path: path.to_string_lossy().replace('\\', "/"),
            sha256: sha256_file(path)?,
        };
        let m = manifest(
            enc.weights_sha256(),
            Some(sha256_file(&head_path)?),
            vec![file],
            &split,
        );
        EvalReport::new("labels", &split, outcome, m)
    } else {
        let ds = a.dataset.context("pass --dataset or --labels")?;
        let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
        match (ds, a.cv) {
            (ds, cv) if a.lexicon => lexicon_baseline(&a, ds, cv, &data_dir, &manifest)?,
            (LoadedDataset::AnnoLexical, Some(_)) => {
                bail!("--cv is for --dataset babe; anno-lexical has a fixed train/dev/test split")
            }
            (ds, None) => {
                let enc = enc_needed()?;
                let (rows, path, split) = match ds {
                    LoadedDataset::AnnoLexical => {
                        let (r, p) = data::anno_lexical(&data_dir, "test")?;
                        (r, p, "anno-lexical test split".to_string())
                    }
                    LoadedDataset::Babe => {
                        let (r, p) = data::babe_sg2(&data_dir)?;
                        (
                            r,
                            p,
                            "all of BABE SG2 (zero-shot: the head never saw BABE)".to_string(),
                        )
                    }
                };
                let (outcome, head_path) =
                    super::scorer_head_outcome(&enc, &a.model, &rows, "evaluation set")?;
                // A tuned head trained with --with-babe has seen BABE: not zero-shot.
                let split = match slant::heads::tuned::TunedLoaded::trained_on(&head_path) {
                    Some(t) if ds == LoadedDataset::Babe && t.contains("BABE SG2 minus") => {
                        "all of BABE SG2 (NOT zero-shot: this tuned head was trained on 90% of \
                         BABE SG2)"
                            .to_string()
                    }
                    _ => split,
                };
                let m = manifest(
                    enc.weights_sha256(),
                    Some(sha256_file(&head_path)?),
                    vec![DataFile::new(&data_dir, &path)?],
                    &split,
                );
                EvalReport::new(dataset_name(ds), &split, outcome, m)
            }
            (LoadedDataset::Babe, Some(k)) if a.tune.tune_layers > 0 => {
                if k < 2 {
                    bail!("--cv needs at least 2 folds");
                }
                let enc = enc_needed()?;
                tuned_cv(&a, &enc, &data_dir, k, &manifest)?
            }
            (LoadedDataset::Babe, Some(k)) => {
                if k < 2 {
                    bail!("--cv needs at least 2 folds");
                }
                let enc = enc_needed()?;
                let (rows, path) = data::babe_sg2(&data_dir)?;
                let ev_head = match &a.span_evidence {
                    Some(p) => Some((slant::heads::tagger::TaggerHead::load(p)?, sha256_file(p)?)),
                    None => None,
                };
                if let Some((h, _)) = &ev_head {
                    if slant::train::loaded_spans::saw_babe(h) {
                        eprintln!(
                            "warning: the --span-evidence head was trained on BABE folds; its \
                             evidence leaks into this CV (train one with --no-babe)"
                        );
                    }
                }
                let ev = ev_head.as_ref().map(|(h, s)| (h, s.as_str()));
                let lex = if a.append_lexicon {
                    Some(slant::eval::lexicon::Lexicons::load(&data_dir)?)
                } else {
                    None
                };
                let hid_head = match &a.span_hidden {
                    Some(p) => Some((slant::heads::tagger::TaggerHead::load(p)?, sha256_file(p)?)),
                    None => None,
                };
                let with_lex = |mut x: Vec<Vec<f32>>,
                                rows: &[slant::data::LabelledSentence]|
                 -> Result<Vec<Vec<f32>>> {
                    if let Some(l) = &lex {
                        for (f, r) in x.iter_mut().zip(rows) {
                            f.extend(l.features(&r.text));
                        }
                    }
                    if let Some((h, sha)) = &hid_head {
                        let hx =
                            loaded::span_hidden_features(&enc, rows, bs, "span hidden", h, sha)?;
                        for (f, e) in x.iter_mut().zip(hx) {
                            f.extend(e);
                        }
                    }
                    Ok(x)
                };
                let x = with_lex(
                    loaded::token_features(&enc, &rows, bs, "BABE SG2", a.pooling, ev)?,
                    &rows,
                )?;
                let y = loaded::labels(&rows);
                let mut files = vec![DataFile::new(&data_dir, &path)?];
                let extra = if a.no_anno_lexical {
                    None
                } else {
                    let (tr, p) = data::anno_lexical(&data_dir, "train")?;
                    files.push(DataFile::new(&data_dir, &p)?);
                    Some((
                        with_lex(
                            loaded::token_features(
                                &enc,
                                &tr,
                                bs,
                                "anno-lexical train",
                                a.pooling,
                                ev,
                            )?,
                            &tr,
                        )?,
                        loaded::labels(&tr),
                    ))
                };
                let opts = CvOpts {
                    k,
                    seed: a.seed,
                    hidden: a.hidden,
                };
                let extra_ref = extra.as_ref().map(|(x, y)| (x.as_slice(), y.as_slice()));
                let outcome = loaded::cross_validate_with(&x, &y, extra_ref, &opts, &training)?;
                let mut split = loaded::cv_split(
                    &opts,
                    "BABE SG2",
                    (!a.no_anno_lexical).then_some("anno-lexical train"),
                );
                if a.pooling != slant::heads::Pooling::Mean {
                    split.push_str(&format!("; features: {} pooling", a.pooling.name()));
                }
                if let Some((_, sha)) = &ev_head {
                    split.push_str(&format!(
                        "; plus span-head token evidence (max, mean P(not O); head sha256 {sha})"
                    ));
                }
                if a.append_lexicon {
                    split.push_str("; plus the 15 lexicon features");
                }
                if let Some((_, sha)) = &hid_head {
                    split.push_str(&format!(
                        "; plus the max of the span head's hidden activations (head sha256 {sha})"
                    ));
                }
                if training != loaded::HeadTraining::default() {
                    split.push_str(&format!(
                        "; heads: ensemble of {}, weight decay {}, BABE rows x{}",
                        training.ensemble, training.weight_decay, training.repeat
                    ));
                }
                let m = manifest(enc.weights_sha256(), None, files, &split);
                EvalReport::new("babe", &split, outcome, m)
            }
        }
    };
    let mut report = report;
    report.command = Some(shown_args());
    if let Some(p) = &a.predictions {
        write_predictions(p, &report, a.cv, a.seed)?;
        eprintln!("predictions written to {}", p.display());
    }
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

/// `--predictions FILE`: one CSV row per evaluated sentence (out-of-fold with `--cv k`, whose
/// fold assignment is recomputed from the gold labels and seed exactly as the CV drew it).
fn write_predictions(path: &Path, report: &EvalReport, cv: Option<usize>, seed: u64) -> Result<()> {
    let p = &report.predictions;
    let folds = cv
        .filter(|_| !report.folds.is_empty())
        .map(|k| slant::train::stratified_folds(&p.gold, k, seed));
    let mut s = String::from("index,fold,gold,prob,pred,threshold\n");
    for i in 0..p.prob.len() {
        let (fold, thr) = match &folds {
            Some(f) => (
                f[i].to_string(),
                report
                    .folds
                    .iter()
                    .find(|r| r.fold == f[i])
                    .map(|r| r.threshold),
            ),
            None => (String::new(), report.threshold),
        };
        s += &format!(
            "{i},{fold},{},{},{},{}\n",
            p.gold[i] as u8,
            p.prob[i],
            p.pred[i] as u8,
            thr.map_or(String::new(), |t| t.to_string())
        );
    }
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The command line of a run as reports show it: `DIR` for the data folder, file names for
/// labelled files, relative paths as given.
fn shown_command(a: &EvalAllArgs, cases_shown: &str) -> String {
    let mut c = String::from("slant eval all");
    if a.data.data.is_some() {
        c += " --data DIR";
    }
    c += &format!(" --out {}", shown_path(&a.out));
    if let Some(p) = &a.results_md {
        c += &format!(" --results-md {}", shown_path(p));
    }
    for l in &a.labels {
        c += &format!(" --labels {}", shown_path(l));
    }
    for l in &a.attach {
        c += &format!(" --attach {}", shown_path(l));
    }
    if a.cases.is_some() {
        c += &format!(" --cases {cases_shown}");
    }
    if a.reps != slant::eval::ci::DEFAULT_REPS {
        c += &format!(" --reps {}", a.reps);
    }
    if a.seed != slant::eval::ci::DEFAULT_SEED {
        c += &format!(" --seed {}", a.seed);
    }
    if a.cv != 5 {
        c += &format!(" --cv {}", a.cv);
    }
    if a.cv_seed != 13 {
        c += &format!(" --cv-seed {}", a.cv_seed);
    }
    if a.hidden != 256 {
        c += &format!(" --hidden {}", a.hidden);
    }
    if a.outlets_min_n != slant::eval::outlets::DEFAULT_MIN_N {
        c += &format!(" --outlets-min-n {}", a.outlets_min_n);
    }
    c
}

fn eval_all(a: EvalAllArgs) -> Result<i32> {
    let t0 = Instant::now();
    if a.cv < 2 {
        bail!("--cv needs at least 2 folds");
    }
    let (cases, cases_shown) = match resolve_cases(a.cases.as_deref()) {
        Ok(c) => c,
        Err(_) => (PathBuf::from(CASES_FILE), CASES_FILE.to_string()),
    };
    let data = match &a.data.data {
        Some(d) if !d.is_dir() => bail!("data folder {} does not exist", d.display()),
        d => d.clone(),
    };
    for l in &a.labels {
        // Fail early, before any encoding, on a malformed labelled file.
        labels::load(l)?;
    }
    let encoder = load_encoder(&a.model).map_err(|e| format!("no encoder: {e:#}"));
    let head = load_head(&a.model)
        .and_then(|(h, p)| Ok((h, sha256_file(&p)?, shown_path(&p))))
        .map_err(|e| format!("no loaded head: {e:#}"));
    let cfg = RunConfig {
        data,
        labels: a.labels.clone(),
        cases,
        command: shown_command(&a, &cases_shown),
        cases_shown,
        reps: a.reps,
        seed: a.seed,
        cv: CvOpts {
            k: a.cv,
            seed: a.cv_seed,
            hidden: a.hidden,
        },
        outlets_min_n: a.outlets_min_n,
        batch_size: a.model.batch_size.max(1),
        attach: a.attach.clone(),
    };
    let spans = super::spans_head_path(a.model.spans_head.as_ref())
        .and_then(|p| {
            Ok((
                slant::heads::tagger::TaggerHead::load(&p)?,
                sha256_file(&p)?,
                shown_path(&p),
            ))
        })
        .map_err(|e| format!("no span head: {e:#}"));
    let attribution = super::attribution::resolve_head(None)
        .and_then(|p| {
            Ok((
                slant::heads::tagger::TaggerHead::load(&p)?,
                sha256_file(&p)?,
                shown_path(&p),
            ))
        })
        .map_err(|e| format!("no attribution head: {e:#}"));
    let models = Models {
        encoder,
        head,
        spans,
        attribution,
    };
    let files = runs::run(&cfg, &models, threads())?;
    runs::write(&a.out, &files)?;
    if let Some(md) = &a.results_md {
        if let Some(dir) = md.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(md, &files.results_md)
            .with_context(|| format!("writing {}", md.display()))?;
    }
    eprintln!(
        "wrote {}/{{results.json,results.md,manifest.json}}{} ({} skipped) in {:.1}s",
        a.out.display(),
        a.results_md
            .as_ref()
            .map_or(String::new(), |p| format!(" and {}", p.display())),
        files.skipped.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(0)
}

/// Builds the manifest of `eval loaded`: encoder sha256, head sha256, data files, split.
type ManifestFn<'a> = dyn Fn(&str, Option<String>, Vec<DataFile>, &str) -> EvalManifest + 'a;

/// `slant eval loaded --dataset babe --cv K --tune-layers L`.
fn tuned_cv(
    a: &EvalLoadedArgs,
    enc: &slant::encode::Encoder,
    data_dir: &Path,
    k: usize,
    manifest: &ManifestFn<'_>,
) -> Result<EvalReport> {
    let tl = a.tune.tune_layers;
    if tl > enc.layers() {
        bail!(
            "--tune-layers {tl}: the encoder has {} layers",
            enc.layers()
        );
    }
    if a.tune.tune_lora == 0
        && (a.tune.tune_soup > 1 || a.tune.tune_blend_frozen || a.tune.tune_pretrain_anno > 0)
    {
        bail!("--tune-soup, --tune-blend-frozen and --tune-pretrain-anno need --tune-lora R");
    }
    let first = enc.layers() - tl;
    let bs = a.model.batch_size;
    let (rows, path) = data::babe_sg2(data_dir)?;
    let mut files = vec![DataFile::new(data_dir, &path)?];
    let t0 = Instant::now();
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let x = enc.states_after(&texts, first, bs)?;
    eprintln!(
        "  states after layer {first} of BABE SG2: {} sentences in {:.1}s",
        rows.len(),
        t0.elapsed().as_secs_f64()
    );
    let y = loaded::labels(&rows);
    let extra = if a.tune.tune_anno_sample > 0 && !a.no_anno_lexical {
        let (tr, p) = data::anno_lexical(data_dir, "train")?;
        files.push(DataFile::new(data_dir, &p)?);
        let sample = slant::train::tune::sample(tr, a.tune.tune_anno_sample, a.seed);
        let texts: Vec<&str> = sample.iter().map(|r| r.text.as_str()).collect();
        Some((
            enc.states_after(&texts, first, bs)?,
            loaded::labels(&sample),
        ))
    } else {
        None
    };
    if a.tune.tune_lora > 0 {
        if extra.is_some() {
            bail!("--tune-anno-sample mixes anno-lexical into full-weight tuning; with --tune-lora use --tune-pretrain-anno");
        }
        let lopts = a.tune.lora_opts(a.seed);
        let (rank, alpha) = (a.tune.tune_lora, a.tune.lora_alpha());
        let mut pre = String::new();
        let start = if a.tune.tune_pretrain_anno > 0 {
            let (tr, p) = data::anno_lexical(data_dir, "train")?;
            files.push(DataFile::new(data_dir, &p)?);
            let sample = slant::train::tune::sample(tr, a.tune.tune_pretrain_anno, a.seed);
            pre = format!(
                ", starting from adapters and head trained one epoch on a seeded sample of {} \
                 anno-lexical train sentences",
                sample.len()
            );
            slant::train::lora::pretrained(enc, first, tl, rank, alpha, &sample, &lopts, bs)?
        } else {
            let base =
                slant::heads::lora::TunedTop::from_encoder(enc.dir(), first, tl)?.to_fast()?;
            slant::heads::lora::Lora::new(base, rank, alpha, a.seed)?
        };
        let partner_data = if a.tune.tune_blend_frozen {
            let ev_head = match &a.span_evidence {
                Some(p) => Some((slant::heads::tagger::TaggerHead::load(p)?, sha256_file(p)?)),
                None => None,
            };
            let ev = ev_head.as_ref().map(|(h, s)| (h, s.as_str()));
            let fx = loaded::token_features(enc, &rows, bs, "BABE SG2", a.pooling, ev)?;
            let fextra = if a.no_anno_lexical {
                None
            } else {
                let (tr, p) = data::anno_lexical(data_dir, "train")?;
                let f = DataFile::new(data_dir, &p)?;
                if !files.contains(&f) {
                    files.push(f);
                }
                Some((
                    loaded::token_features(enc, &tr, bs, "anno-lexical train", a.pooling, ev)?,
                    loaded::labels(&tr),
                ))
            };
            Some((fx, fextra, ev_head.map(|(_, s)| s)))
        } else {
            None
        };
        let partner =
            partner_data
                .as_ref()
                .map(|(fx, fextra, _)| slant::eval::tuned::FrozenPartner {
                    x: fx,
                    extra: fextra.as_ref().map(|(x, y)| (x.as_slice(), y.as_slice())),
                    hidden: a.hidden,
                    seed: a.seed,
                    training: loaded::HeadTraining {
                        ensemble: a.ensemble.max(1),
                        weight_decay: a.weight_decay,
                        repeat: 1,
                    },
                });
        let cv = slant::eval::tuned::cross_validate_lora(
            &start,
            &x,
            &y,
            k,
            a.seed,
            &lopts,
            a.tune.tune_soup,
            partner.as_ref(),
        )?;
        let split = format!(
            "stratified {k}-fold CV on BABE SG2 (seed {}); each fold trains rank-{} LoRA adapters \
             (alpha {}, {} parameters) on the top {tl} encoder layers and a logistic head on the \
             other folds{pre}{}; epoch (by {}), temperature and threshold chosen on a \
             stratified 10% of the training folds; metrics pooled over folds",
            a.seed,
            a.tune.tune_lora,
            a.tune.lora_alpha(),
            start.adapter_params(),
            if a.tune.tune_soup > 1 {
                format!(
                    "; a uniform soup of {} adapter sets trained with different seeds",
                    a.tune.tune_soup
                )
            } else {
                String::new()
            } + &match &partner_data {
                None => String::new(),
                Some((_, fextra, ev)) =>
                    format!(
                    "; blended (mean of temperature-scaled logits) with a frozen-encoder MLP head \
                     trained in the same fold{}{}",
                    if fextra.is_some() { " plus anno-lexical train" } else { "" },
                    ev.as_ref().map_or(String::new(), |s| format!(
                        " on mean pooling plus span-head token evidence (head sha256 {s})"
                    ))
                ),
            },
            if lopts.select_by_f1 {
                "macro-F1"
            } else {
                "loss"
            },
        );
        eprintln!(
            "  ECE (15 bins) uncalibrated {:.4}, after temperature scaling {:.4}; temperatures {:?}",
            cv.ece_uncalibrated, cv.outcome.ece, cv.temperatures
        );
        let m = manifest(enc.weights_sha256(), None, files, &split);
        return Ok(EvalReport::new("babe", &split, cv.outcome, m));
    }
    let opts = a.tune.opts(a.seed);
    let extra_ref = extra.as_ref().map(|(x, y)| (x.as_slice(), y.as_slice()));
    let cv = slant::eval::tuned::cross_validate_tuned(
        enc.dir(),
        first,
        &x,
        &y,
        extra_ref,
        k,
        a.seed,
        &opts,
    )?;
    let split = format!(
        "stratified {k}-fold CV on BABE SG2 (seed {}); each fold fine-tunes the top {tl} encoder \
         layers and a logistic head on the other folds{}; epoch, temperature and threshold \
         chosen on a stratified 10% of the training folds; metrics pooled over folds",
        a.seed,
        if extra.is_some() {
            format!(
                " plus a seeded sample of {} anno-lexical train sentences",
                a.tune.tune_anno_sample
            )
        } else {
            String::new()
        }
    );
    eprintln!(
        "  ECE (15 bins) uncalibrated {:.4}, after temperature scaling {:.4}; temperatures {:?}",
        cv.ece_uncalibrated, cv.outcome.ece, cv.temperatures
    );
    let m = manifest(enc.weights_sha256(), None, files, &split);
    Ok(EvalReport::new("babe", &split, cv.outcome, m))
}

/// `slant eval loaded --lexicon`: the rule on a set, or a logistic regression on lexicon
/// features in CV on BABE.
fn lexicon_baseline(
    a: &EvalLoadedArgs,
    ds: LoadedDataset,
    cv: Option<usize>,
    data_dir: &Path,
    manifest: &ManifestFn<'_>,
) -> Result<EvalReport> {
    use slant::eval::lexicon::Lexicons;
    let lx = Lexicons::load(data_dir)?;
    let mut files = Vec::new();
    for rel in &lx.files {
        files.push(DataFile::new(data_dir, &data_dir.join(rel))?);
    }
    let (rows, path) = match ds {
        LoadedDataset::Babe => data::babe_sg2(data_dir)?,
        LoadedDataset::AnnoLexical => data::anno_lexical(data_dir, "test")?,
    };
    files.push(DataFile::new(data_dir, &path)?);
    let y = loaded::labels(&rows);
    let (outcome, split) = match cv {
        None => {
            let p: Vec<f32> = rows
                .iter()
                .map(|r| if lx.rule(&r.text) { 1.0 } else { 0.0 })
                .collect();
            let pred: Vec<bool> = p.iter().map(|&v| v >= 0.5).collect();
            let outcome = loaded::LoadedOutcome {
                threshold: Some(0.5),
                metrics: loaded::metrics_at(&p, &y, 0.5),
                ece: loaded::ece_of(&p, &y),
                ece_uncalibrated: None,
                temperatures: Vec::new(),
                folds: Vec::new(),
                fold_macro_f1_mean: None,
                fold_macro_f1_sd: None,
                predictions: loaded::Predictions {
                    prob: p,
                    pred,
                    gold: y.clone(),
                },
            };
            (
                outcome,
                format!(
                    "every sentence of {}; rule: loaded iff a word of the Recasens et al. 2013 \
                     bias lexicon (654 words); no training",
                    if ds == LoadedDataset::Babe {
                        "BABE SG2"
                    } else {
                        "the anno-lexical test split"
                    }
                ),
            )
        }
        Some(k) => {
            if ds != LoadedDataset::Babe {
                bail!("--cv is for --dataset babe");
            }
            let x: Vec<Vec<f32>> = rows.iter().map(|r| lx.features(&r.text)).collect();
            let extra = if a.no_anno_lexical {
                None
            } else {
                let (tr, p) = data::anno_lexical(data_dir, "train")?;
                files.push(DataFile::new(data_dir, &p)?);
                let xt: Vec<Vec<f32>> = tr.iter().map(|r| lx.features(&r.text)).collect();
                Some((xt, loaded::labels(&tr)))
            };
            let opts = CvOpts {
                k,
                seed: a.seed,
                hidden: 0,
            };
            let extra_ref = extra.as_ref().map(|(x, y)| (x.as_slice(), y.as_slice()));
            let outcome = loaded::cross_validate(&x, &y, extra_ref, &opts)?;
            let split = format!(
                "{}; logistic regression on {} lexicon features ({})",
                loaded::cv_split(
                    &opts,
                    "BABE SG2",
                    (!a.no_anno_lexical).then_some("anno-lexical train")
                ),
                Lexicons::feature_names().len(),
                Lexicons::feature_names().join(", ")
            );
            (outcome, split)
        }
    };
    let m = manifest("none (lexicon baseline)", None, files, &split);
    Ok(EvalReport::new(dataset_name(ds), &split, outcome, m))
}

/// This process's command line as reports show it: `slant`, then the arguments with the data
/// folder shown as `DIR` and no output format.
fn shown_args() -> String {
    let mut v = vec!["slant".to_string()];
    let mut args = std::env::args().skip(1);
    while let Some(x) = args.next() {
        if x == "--data" {
            args.next();
            v.push("--data DIR".into());
        } else if x.starts_with("--data=") {
            v.push("--data DIR".into());
        } else if x == "--format" {
            args.next();
        } else if !x.starts_with("--format=") {
            v.push(x);
        }
    }
    v.join(" ")
}
