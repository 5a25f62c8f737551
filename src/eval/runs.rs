//! Research evaluation runs (`slant eval all`): every evaluation the data present allows, written
//! to a run directory as
//!
//! * `results.json`: metrics only, each with a document-bootstrap 95% CI ([`super::ci`]); no
//!   timings, no absolute paths, floats rounded to 6 decimals, keys sorted. For a given build,
//!   data and options it is byte-identical on every rerun, whatever the thread count;
//! * `results.md`: a Markdown table per head, every figure beside the published reference on the
//!   same data, and the exact command;
//! * `manifest.json`: slant version and git commit, encoder and head sha256, data files with
//!   sha256 (paths relative to `--data`), split definitions, seeds, thread count and wall times.
//!
//! An evaluation is a value implementing [`Evaluation`]; [`plan`] lists today's (the splitter,
//! the loaded-language head on anno-lexical test, BABE zero-shot and BABE k-fold CV, a user's
//! `--labels` files, the frames head in k-fold CV on SemEval-2023 Task 3, and outlet validity on
//! BABE SG2 and MBIC). Heads added later (loaded spans, attribution) plug in as further
//! [`Evaluation`]s and a line in [`plan`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use super::ci::{self, binary_estimates, Estimate};
use super::labels::{self, Labels};
use super::loaded::{self, CvOpts, LoadedOutcome};
use super::{frames, outlets};
use super::{version_info, DataFile};
use crate::data::{self, LabelledSentence};
use crate::encode::{sha256_file, Encoder};
use crate::heads::tagger::TaggerHead;
use crate::heads::{MlpHead, SentenceFeatures};
use crate::segment::eval as seg_eval;
use crate::{Error, Result};

/// Schema tag of `results.json`.
pub const RESULTS_SCHEMA: &str = "slant-eval-results/1";

/// Options of a run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The data folder (`--data`), if any.
    pub data: Option<PathBuf>,
    /// The user's labelled files (`--labels`).
    pub labels: Vec<PathBuf>,
    /// The splitter cases file and how to show its path.
    pub cases: PathBuf,
    pub cases_shown: String,
    /// Bootstrap resamples and seed.
    pub reps: usize,
    pub seed: u64,
    /// Cross-validation folds, seed and hidden units.
    pub cv: CvOpts,
    /// Outlets with fewer labelled sentences are left out of the outlet-validity ρ.
    pub outlets_min_n: usize,
    /// Encoder batch size.
    pub batch_size: usize,
    /// The command as shown in `results.md` and the manifest (`DIR` in place of the data path).
    pub command: String,
    /// Saved `slant eval loaded --format json` reports shown as further rows of the loaded
    /// table (`--attach FILE`): runs too slow to repeat in every `eval all`.
    pub attach: Vec<PathBuf>,
}

/// The encoder and the loaded head, or why they are unavailable (evaluations needing them are
/// then skipped with that reason).
pub struct Models {
    pub encoder: std::result::Result<Encoder, String>,
    /// The head, its sha256 and its shown path.
    pub head: std::result::Result<(MlpHead, String, String), String>,
    /// The loaded-language span head, its sha256 and its shown path.
    pub spans: std::result::Result<(TaggerHead, String, String), String>,
    /// The attribution tagger, its sha256 and its shown path.
    pub attribution: std::result::Result<(TaggerHead, String, String), String>,
}

/// What an evaluation needs: the run options and the models.
pub struct Context<'a> {
    pub cfg: &'a RunConfig,
    pub models: &'a Models,
}

impl Context<'_> {
    fn encoder(&self) -> std::result::Result<&Encoder, String> {
        self.models.encoder.as_ref().map_err(Clone::clone)
    }

    fn head(&self) -> std::result::Result<&(MlpHead, String, String), String> {
        self.models.head.as_ref().map_err(Clone::clone)
    }

    /// The span head a sentence head of kind `kind` reads, checked by sha256; `Ok(None)` for
    /// mean pooling, `Err(why)` when the right span head is missing.
    fn evidence_head(
        &self,
        kind: &SentenceFeatures,
    ) -> std::result::Result<Option<(&TaggerHead, &str, &str)>, String> {
        if kind.span_sha256().is_none() {
            return Ok(None);
        }
        let (h, sha, shown) = self.models.spans.as_ref().map_err(|e| {
            format!("the loaded head reads span evidence, but there is no span head: {e}")
        })?;
        kind.check_span_head(Some(sha), shown)
            .map_err(|e| e.to_string())?;
        Ok(Some((h, sha.as_str(), shown.as_str())))
    }

    fn data(&self) -> std::result::Result<&Path, String> {
        self.cfg
            .data
            .as_deref()
            .ok_or_else(|| "no data folder (pass --data DIR or set SLANT_DATA)".to_string())
    }
}

/// A row of a Markdown table in `results.md`; rows with the same title and header share a table.
#[derive(Debug, Clone, PartialEq)]
pub struct MdRow {
    pub title: String,
    pub header: Vec<String>,
    pub cells: Vec<String>,
    /// Lines written under the table.
    pub notes: Vec<String>,
}

/// A finished evaluation.
#[derive(Debug, Clone)]
pub struct Done {
    /// Its entry in `results.json` (metrics only).
    pub results: Value,
    /// Its entry in `manifest.json` (split, data files, seeds; no timings).
    pub manifest: Value,
    pub md: MdRow,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone)]
pub enum Outcome {
    Done(Box<Done>),
    /// Not run, and why (a missing data file, no encoder, …).
    Skipped(String),
}

/// One evaluation of a run.
pub trait Evaluation {
    /// Stable name, the key in `results.json` (e.g. `loaded/babe-sg2-cv5`).
    fn name(&self) -> String;
    /// Run it. Missing inputs give [`Outcome::Skipped`]; broken inputs are errors.
    fn run(&self, ctx: &Context) -> Result<Outcome>;
}

/// A path for reports: relative paths as given, absolute ones relative to the current directory
/// when inside it, else the file name only (reports never hold absolute paths).
pub fn shown_path(p: &Path) -> String {
    let shown = if p.is_relative() {
        p.to_path_buf()
    } else if let Some(rel) = std::env::current_dir()
        .ok()
        .and_then(|c| p.strip_prefix(c).ok().map(Path::to_path_buf))
    {
        rel
    } else {
        PathBuf::from(p.file_name().unwrap_or_default())
    };
    shown.to_string_lossy().replace('\\', "/")
}

fn estimates_json(m: &BTreeMap<String, Estimate>) -> Value {
    to_json(m)
}

fn fmt_est(e: &Estimate) -> String {
    match e.ci {
        Some([lo, hi]) => format!("{:.3} [{lo:.3}, {hi:.3}]", e.value),
        None => format!("{:.3}", e.value),
    }
}

// ---------------------------------------------------------------------------------------------
// The splitter

/// The sentence splitter on a cases file (`eval/splitter/cases.jsonl`).
pub struct SplitterEval;

/// Names of the splitter metrics.
pub const SPLITTER_METRICS: [&str; 4] = [
    "exact_match",
    "boundary_precision",
    "boundary_recall",
    "boundary_f1",
];

fn splitter_values(s: &[f64]) -> Vec<f64> {
    // s = [exact, tp, fp, fn, cases]
    let ratio = |n: f64, d: f64| if d == 0.0 { 1.0 } else { n / d };
    let p = ratio(s[1], s[1] + s[2]);
    let r = ratio(s[1], s[1] + s[3]);
    let f1 = if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    };
    vec![if s[4] == 0.0 { f64::NAN } else { s[0] / s[4] }, p, r, f1]
}

/// The splitter's results with case-bootstrap CIs: the JSON of `slant eval splitter` and the
/// `splitter` entry of `results.json`.
pub fn splitter_results(cases: &[seg_eval::SplitterCase], reps: usize, seed: u64) -> Value {
    let report = seg_eval::evaluate(cases);
    let stats: Vec<Vec<f64>> = cases
        .iter()
        .map(|c| {
            let r = seg_eval::evaluate(std::slice::from_ref(c));
            vec![
                r.exact as f64,
                r.boundary_tp as f64,
                r.boundary_fp as f64,
                r.boundary_fn as f64,
                1.0,
            ]
        })
        .collect();
    let point = [report.precision, report.recall, report.f1];
    let exact = if cases.is_empty() {
        0.0
    } else {
        report.exact as f64 / cases.len() as f64
    };
    let cis = ci::bootstrap_docs(&stats, splitter_values, reps, seed);
    let metrics: BTreeMap<String, Estimate> = SPLITTER_METRICS
        .iter()
        .zip(std::iter::once(exact).chain(point).zip(cis))
        .map(|(n, (value, ci))| (n.to_string(), Estimate { value, ci }))
        .collect();
    let failures: Vec<Value> = cases
        .iter()
        .filter(|c| report.failures.contains(&c.id))
        .map(|c| {
            let got: Vec<&str> = crate::segment::split(&c.text)
                .iter()
                .map(|s| s.text(&c.text))
                .collect();
            json!({"id": c.id, "category": c.category, "expected": c.sentences, "got": got})
        })
        .collect();
    let per_category: BTreeMap<&String, Value> = report
        .per_category
        .iter()
        .map(|(k, (e, n))| (k, json!({"exact": e, "cases": n})))
        .collect();
    json!({
        "status": "ok",
        "unit": "case",
        "cases": report.cases,
        "counts": {
            "exact": report.exact,
            "boundary_tp": report.boundary_tp,
            "boundary_fp": report.boundary_fp,
            "boundary_fn": report.boundary_fn,
        },
        "metrics": estimates_json(&metrics),
        "per_category": per_category,
        "failures": failures,
    })
}

impl Evaluation for SplitterEval {
    fn name(&self) -> String {
        "splitter".into()
    }

    fn run(&self, ctx: &Context) -> Result<Outcome> {
        let cfg = ctx.cfg;
        if !cfg.cases.is_file() {
            return Ok(Outcome::Skipped(format!(
                "splitter cases file {} not found",
                cfg.cases_shown
            )));
        }
        let cases = seg_eval::load_cases(&cfg.cases)?;
        let results = splitter_results(&cases, cfg.reps, cfg.seed);
        let m = |k: &str| -> Estimate {
            let v = &results["metrics"][k];
            Estimate {
                value: v["value"].as_f64().unwrap_or(f64::NAN),
                ci: v["ci"]
                    .as_array()
                    .map(|a| [a[0].as_f64().unwrap_or(0.0), a[1].as_f64().unwrap_or(0.0)]),
            }
        };
        let exact = m("exact_match");
        let failures: Vec<&str> = results["failures"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f["id"].as_str()).collect())
            .unwrap_or_default();
        let md = MdRow {
            title: "Sentence splitter".into(),
            header: [
                "evaluation",
                "cases",
                "exact match",
                "boundary P",
                "boundary R",
                "boundary F1",
                "published reference",
            ]
            .map(String::from)
            .to_vec(),
            cells: vec![
                format!("splitter on `{}`", cfg.cases_shown),
                results["cases"].to_string(),
                format!(
                    "{}/{} = {}",
                    results["counts"]["exact"],
                    results["cases"],
                    fmt_est(&exact)
                ),
                fmt_est(&m("boundary_precision")),
                fmt_est(&m("boundary_recall")),
                fmt_est(&m("boundary_f1")),
                "pySBD: 47/48 on its own golden rules, a different set (not comparable)".into(),
            ],
            notes: vec![
                "Boundaries are sentence-end byte offsets (the end of the text excluded), summed over \
                 cases; intervals resample cases."
                    .into(),
                format!(
                    "Failures ({}): {}.",
                    failures.len(),
                    if failures.is_empty() {
                        "none".to_string()
                    } else {
                        failures.join(", ")
                    }
                ),
            ],
        };
        Ok(Outcome::Done(Box::new(Done {
            results,
            manifest: json!({
                "split": "every case of the file",
                "files": [{"path": cfg.cases_shown, "sha256": sha256_file(&cfg.cases)?}],
                "bootstrap_seed": cfg.seed,
                "command": "slant eval splitter",
            }),
            md,
        })))
    }
}

// ---------------------------------------------------------------------------------------------
// The loaded-language sentence head

/// Where the sentences of a loaded-head evaluation come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SentenceSet {
    /// anno-lexical `test` split.
    AnnoLexicalTest,
    /// All of BABE SG2.
    BabeSg2,
    /// A user's labelled file.
    File(PathBuf),
}

/// The loaded-language sentence head, either the committed head on a set, or k-fold CV on the
/// set (training a head per fold, optionally with anno-lexical train added).
pub struct LoadedEval {
    pub name: String,
    pub set: SentenceSet,
    /// `Some` for cross-validation: with anno-lexical train added when the flag is true.
    pub cv: Option<bool>,
}

/// Title of the loaded-head table of `results.md`.
/// The value of a `Result` whose error says why an evaluation cannot run here, or return
/// `Outcome::Skipped` with that reason.
macro_rules! or_skip {
    ($e:expr) => {
        match $e {
            Ok(x) => x,
            Err(why) => return Ok(Outcome::Skipped(why.to_string())),
        }
    };
}

const LOADED_TITLE: &str = "Loaded-language sentence head";

/// Columns of the loaded-language table, shared by computed and attached rows.
const LOADED_HEADER: [&str; 11] = [
    "evaluation",
    "split",
    "n (documents)",
    "macro-F1",
    "loaded P",
    "loaded R",
    "loaded F1",
    "accuracy",
    "ECE",
    "published reference (macro-F1, same data)",
    "single command",
];

/// Published references on the same data (macro-F1).
pub const BABE_REFERENCES: &str = "0.804 (Spinde et al. 2021, BERT + distant supervision); \
    0.814 (DA-RoBERTa, Krieger et al. 2022); both 5-fold CV on BABE SG2";

struct Loaded {
    rows: Vec<LabelledSentence>,
    files: Vec<DataFile>,
    dataset: String,
    unit: &'static str,
}

impl LoadedEval {
    fn load(&self, ctx: &Context) -> Result<std::result::Result<Loaded, String>> {
        let missing = |what: &str, rel: String| {
            Ok(Err(format!(
                "{what} not found at {rel} (relative to --data)"
            )))
        };
        match &self.set {
            SentenceSet::AnnoLexicalTest | SentenceSet::BabeSg2 => {
                let dir = match ctx.data() {
                    Ok(d) => d,
                    Err(e) => return Ok(Err(e)),
                };
                let (rows, path, dataset, unit) = if self.set == SentenceSet::BabeSg2 {
                    let p = data::babe_sg2_path(dir);
                    if !p.is_file() {
                        return missing("BABE SG2", shown_rel(dir, &p));
                    }
                    let (r, p) = data::babe_sg2(dir)?;
                    (r, p, "babe", "article (news_link)")
                } else {
                    let p = data::anno_lexical_path(dir, "test");
                    if !p.is_file() {
                        return missing("anno-lexical test", shown_rel(dir, &p));
                    }
                    let (r, p) = data::anno_lexical(dir, "test")?;
                    (r, p, "anno-lexical", "sentence")
                };
                Ok(Ok(Loaded {
                    rows,
                    files: vec![DataFile::new(dir, &path)?],
                    dataset: dataset.into(),
                    unit,
                }))
            }
            SentenceSet::File(path) => {
                let shown = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                let rows = match labels::load(path)? {
                    Labels::Sentences(v) => v,
                    other => {
                        return Ok(Err(format!(
                            "{shown}: {} {} records parsed and validated; {} evaluation runs once the {} head exists",
                            other.len(),
                            other.kind(),
                            other.kind(),
                            if other.kind() == "spans" { "loaded-span" } else { "attribution" }
                        )))
                    }
                };
                let unit = if rows.iter().any(|r| r.article.is_some()) {
                    "article (`article` field)"
                } else {
                    "sentence"
                };
                Ok(Ok(Loaded {
                    rows,
                    files: vec![DataFile {
                        path: shown,
                        sha256: sha256_file(path)?,
                    }],
                    dataset: "labels".into(),
                    unit,
                }))
            }
        }
    }

    fn split(&self, cfg: &RunConfig, dataset: &str) -> String {
        match (&self.set, self.cv) {
            (_, Some(extra)) => loaded::cv_split(
                &cfg.cv,
                if dataset == "babe" {
                    "BABE SG2"
                } else {
                    dataset
                },
                extra.then_some("anno-lexical train"),
            ),
            (SentenceSet::AnnoLexicalTest, None) => "anno-lexical test split".into(),
            (SentenceSet::BabeSg2, None) => {
                "all of BABE SG2 (zero-shot: the head never saw BABE)".into()
            }
            (SentenceSet::File(p), None) => format!(
                "every sentence of {}",
                p.file_name().unwrap_or_default().to_string_lossy()
            ),
        }
    }

    fn single_command(&self, cfg: &RunConfig) -> String {
        match (&self.set, self.cv) {
            (SentenceSet::AnnoLexicalTest, _) => "slant eval loaded --dataset anno-lexical".into(),
            (SentenceSet::BabeSg2, None) => "slant eval loaded --dataset babe".into(),
            (SentenceSet::BabeSg2, Some(extra)) => format!(
                "slant eval loaded --dataset babe --cv {}{}",
                cfg.cv.k,
                if extra { "" } else { " --no-anno-lexical" }
            ),
            (SentenceSet::File(p), _) => format!(
                "slant eval loaded --labels {}",
                p.file_name().unwrap_or_default().to_string_lossy()
            ),
        }
    }

    fn reference(&self) -> String {
        match (&self.set, self.cv) {
            (SentenceSet::BabeSg2, Some(_)) => BABE_REFERENCES.into(),
            (SentenceSet::BabeSg2, None) => format!(
                "{BABE_REFERENCES}; those models were trained on BABE, this head never saw it"
            ),
            (SentenceSet::AnnoLexicalTest, _) => "none reproduced here".into(),
            (SentenceSet::File(_), _) => "n/a (your data)".into(),
        }
    }
}

fn shown_rel(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

impl Evaluation for LoadedEval {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn run(&self, ctx: &Context) -> Result<Outcome> {
        let cfg = ctx.cfg;
        let enc = or_skip!(ctx.encoder());
        let set = or_skip!(self.load(ctx)?);
        let mut files = set.files;
        // Features: those the committed head reads. CV trains heads of the same kind, with
        // span evidence only from a span head that never saw BABE (else mean pooling).
        let kind = match (self.cv, ctx.head()) {
            (None, Ok((h, _, _))) => match SentenceFeatures::of(h) {
                Ok(k) => k,
                Err(e) => return Ok(Outcome::Skipped(e.to_string())),
            },
            (None, Err(why)) => return Ok(Outcome::Skipped(why)),
            (Some(_), Ok((h, _, _))) => match SentenceFeatures::of(h) {
                Ok(k)
                    if ctx.evidence_head(&k).is_ok_and(|s| {
                        s.is_some_and(|(t, _, _)| !crate::train::loaded_spans::saw_babe(t))
                    }) =>
                {
                    k
                }
                _ => SentenceFeatures::Mean,
            },
            (Some(_), Err(_)) => SentenceFeatures::Mean,
        };
        let span = match ctx.evidence_head(&kind) {
            Ok(s) => s,
            Err(why) => return Ok(Outcome::Skipped(why)),
        };
        let x = loaded::head_features(enc, &set.rows, cfg.batch_size, &self.name, &kind, span)?;
        let y = loaded::labels(&set.rows);
        let (outcome, head_sha): (LoadedOutcome, Option<String>) = match self.cv {
            None => {
                let (head, sha, _) = or_skip!(ctx.head());
                (loaded::evaluate_head(head, &x, &y), Some(sha.clone()))
            }
            Some(with_anno) => {
                let extra = if with_anno {
                    let dir = ctx.data().map_err(Error::Missing)?;
                    let p = data::anno_lexical_path(dir, "train");
                    if !p.is_file() {
                        return Ok(Outcome::Skipped(format!(
                            "anno-lexical train not found at {} (relative to --data)",
                            shown_rel(dir, &p)
                        )));
                    }
                    let (tr, p) = data::anno_lexical(dir, "train")?;
                    files.push(DataFile::new(dir, &p)?);
                    let xt = loaded::head_features(
                        enc,
                        &tr,
                        cfg.batch_size,
                        "anno-lexical train",
                        &kind,
                        span,
                    )?;
                    Some((xt, loaded::labels(&tr)))
                } else {
                    None
                };
                let extra_ref = extra.as_ref().map(|(a, b)| (a.as_slice(), b.as_slice()));
                (loaded::cross_validate(&x, &y, extra_ref, &cfg.cv)?, None)
            }
        };
        let keys: Vec<Option<&str>> = set.rows.iter().map(|r| r.article.as_deref()).collect();
        let p = &outcome.predictions;
        let (est, docs) = binary_estimates(&p.prob, &p.pred, &p.gold, &keys, cfg.reps, cfg.seed);
        let m = &outcome.metrics;
        let mut split = self.split(cfg, &set.dataset);
        let mut command = self.single_command(cfg);
        if let (Some(_), Some(sha)) = (self.cv, kind.span_sha256()) {
            split.push_str(&format!(
                "; plus span-head token evidence (max, mean P(not O); head sha256 {sha})"
            ));
            command.push_str(" --span-evidence models/loaded_spans.safetensors");
        }
        let mut results = json!({
            "status": "ok",
            "dataset": set.dataset,
            "split": split,
            "unit": set.unit,
            "documents": docs,
            "n": m.n,
            "counts": {"tp": m.tp, "fp": m.fp, "fn": m.fn_, "tn": m.tn},
            "threshold": outcome.threshold,
            "metrics": estimates_json(&est),
        });
        if !outcome.folds.is_empty() {
            results["folds"] = to_json(&outcome.folds);
            results["fold_macro_f1_mean"] = json!(outcome.fold_macro_f1_mean);
            results["fold_macro_f1_sd"] = json!(outcome.fold_macro_f1_sd);
        }
        if let Some(u) = outcome.ece_uncalibrated {
            results["ece_uncalibrated"] = json!(u);
            results["temperatures"] = to_json(&outcome.temperatures);
        }
        let rel = loaded::reliability(&p.prob, &p.gold);
        results["reliability"] = to_json(&rel);
        let mut notes = Vec::new();
        if let Some(u) = outcome.ece_uncalibrated {
            notes.push(format!(
                "`{}`: ECE {:.3} before temperature scaling (per-fold temperatures {}); \
                 reliability (bin: n, mean P → observed share): {}.",
                self.name,
                u,
                outcome
                    .temperatures
                    .iter()
                    .map(|t| format!("{t:.2}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                rel.iter()
                    .map(|b| format!(
                        "[{:.2}, {:.2}): {}, {:.2} → {:.2}",
                        b.lo, b.hi, b.n, b.mean_prob, b.positive_rate
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        if let (Some(mean), Some(sd)) = (outcome.fold_macro_f1_mean, outcome.fold_macro_f1_sd) {
            notes.push(format!(
                "`{}`: per-fold macro-F1 {} (mean {mean:.3} ± {sd:.3} sd); the interval resamples \
                 the pooled out-of-fold predictions and leaves out training variance.",
                self.name,
                outcome
                    .folds
                    .iter()
                    .map(|f| format!("{:.3}", f.macro_f1))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let md = MdRow {
            title: LOADED_TITLE.into(),
            header: LOADED_HEADER.map(String::from).to_vec(),
            cells: vec![
                format!("`{}`", self.name),
                split.clone(),
                format!(
                    "{} ({} {}s)",
                    m.n,
                    docs,
                    set.unit.split(' ').next().unwrap_or("")
                ),
                fmt_est(&est["macro_f1"]),
                fmt_est(&est["precision"]),
                fmt_est(&est["recall"]),
                fmt_est(&est["f1"]),
                fmt_est(&est["accuracy"]),
                fmt_est(&est["ece"]),
                self.reference(),
                format!("`{command}`"),
            ],
            notes,
        };
        let mut manifest = json!({
            "split": split,
            "files": files,
            "unit": set.unit,
            "bootstrap_seed": cfg.seed,
            "command": command,
        });
        if let Some(sha) = head_sha {
            manifest["head_sha256"] = json!(sha);
        } else {
            manifest["cv"] = to_json(cfg.cv);
            manifest["train_opts"] = to_json(loaded::train_opts(cfg.cv.hidden, cfg.cv.seed));
        }
        Ok(Outcome::Done(Box::new(Done {
            results,
            manifest,
            md,
        })))
    }
}

/// A saved `slant eval loaded --format json` report shown as a row of the loaded table.
pub struct AttachedEval {
    pub path: PathBuf,
}

impl Evaluation for AttachedEval {
    fn name(&self) -> String {
        format!(
            "loaded/attached/{}",
            self.path.file_stem().unwrap_or_default().to_string_lossy()
        )
    }

    fn run(&self, _ctx: &Context) -> Result<Outcome> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| Error::bad_data(&self.path, None, e))?;
        let need = |k: &str| -> Result<&Value> {
            v.get(k).ok_or_else(|| {
                Error::bad_data(
                    &self.path,
                    None,
                    format!("not a `slant eval loaded --format json` report (no `{k}`)"),
                )
            })
        };
        let f = |x: &Value| x.as_f64().map_or("n/a".to_string(), |x| format!("{x:.3}"));
        let split = need("split")?.as_str().unwrap_or("").to_string();
        let command = need("command")?.as_str().unwrap_or("").to_string();
        let pos = need("positive")?;
        let dataset = need("dataset")?.as_str().unwrap_or("").to_string();
        let mut notes = Vec::new();
        if let Some(folds) = v.get("folds").and_then(Value::as_array) {
            notes.push(format!(
                "`{}` (attached): per-fold macro-F1 {} (mean {} ± {} sd){}.",
                self.name(),
                folds
                    .iter()
                    .map(|x| f(&x["macro_f1"]))
                    .collect::<Vec<_>>()
                    .join(", "),
                f(&v["fold_macro_f1_mean"]),
                f(&v["fold_macro_f1_sd"]),
                v.get("ece_uncalibrated").map_or(String::new(), |u| format!(
                    "; ECE before temperature scaling {}",
                    f(u)
                ))
            ));
        }
        let reference = if dataset == "babe" && v.get("folds").is_some() {
            BABE_REFERENCES.to_string()
        } else {
            "see the BABE rows above".to_string()
        };
        let md = MdRow {
            title: LOADED_TITLE.into(),
            header: LOADED_HEADER.map(String::from).to_vec(),
            cells: vec![
                format!("`{}` (attached)", self.name()),
                split.clone(),
                format!("{} (sentences)", need("n")?),
                f(need("macro_f1")?),
                f(&pos["precision"]),
                f(&pos["recall"]),
                f(&pos["f1"]),
                f(need("accuracy")?),
                f(need("ece")?),
                reference,
                format!("`{command}`"),
            ],
            notes,
        };
        let mut results = json!({"status": "ok", "attached": true});
        for k in [
            "dataset",
            "split",
            "n",
            "macro_f1",
            "accuracy",
            "ece",
            "ece_uncalibrated",
            "positive",
            "negative",
            "folds",
            "fold_macro_f1_mean",
            "fold_macro_f1_sd",
            "reliability",
            "command",
        ] {
            if let Some(x) = v.get(k) {
                results[k] = x.clone();
            }
        }
        let manifest = json!({
            "split": split,
            "command": command,
            "attached_file": shown_path(&self.path),
            "files": v["manifest"]["data_files"].clone(),
            "git_commit": v["manifest"]["git_commit"].clone(),
        });
        Ok(Outcome::Done(Box::new(Done {
            results,
            manifest,
            md,
        })))
    }
}

// ---------------------------------------------------------------------------------------------
// The frames head

/// The frames head in `k`-fold CV on SemEval-2023 Task 3 subtask 2 English train (seed
/// `--cv-seed`; the head's own defaults otherwise, as `slant eval frames --cv K`).
pub struct FramesEval {
    pub k: usize,
}

/// What the frames figures of a CV on `n` training articles can and cannot be compared with.
pub fn frames_reference(n: u64) -> String {
    format!(
        "SemEval-2023 Task 3 subtask 2 English (Piskorski et al. 2023) ranks systems by micro-F1 \
         on the held-out test set; this is CV on the {n} training articles, so not directly \
         comparable. Issue target: micro-F1 ≥ 0.55"
    )
}

impl Evaluation for FramesEval {
    fn name(&self) -> String {
        format!("frames/semeval2023-cv{}", self.k)
    }

    fn run(&self, ctx: &Context) -> Result<Outcome> {
        let cfg = ctx.cfg;
        let enc = or_skip!(ctx.encoder());
        let dir = or_skip!(ctx.data());
        let labels_path = dir.join(data::frames::LABELS);
        if !labels_path.is_file() || !dir.join(data::frames::ARTICLES).is_dir() {
            return Ok(Outcome::Skipped(format!(
                "SemEval-2023 Task 3 subtask 2 not found at {} and {}/ (relative to --data)",
                data::frames::LABELS,
                data::frames::ARTICLES
            )));
        }
        let opts = crate::train::frames::FramesOpts {
            seed: cfg.cv.seed,
            ..Default::default()
        };
        let cv = frames::cross_validate(enc, dir, self.k, &opts, cfg.batch_size)?;
        let r = &cv.report;
        let (pooled, per) = frames::frames_estimates(&cv.pred, &cv.gold, cfg.reps, cfg.seed);
        let per_frame: Vec<Value> = r
            .metrics
            .per_label
            .iter()
            .zip(&per)
            .map(|(l, e)| {
                json!({
                    "frame": l.label,
                    "support": l.support,
                    "tp": l.counts.tp,
                    "fp": l.counts.fp,
                    "fn": l.counts.fn_,
                    "precision": l.scores.precision,
                    "recall": l.scores.recall,
                    "f1": to_json(e),
                })
            })
            .collect();
        let pooled_counts = r.metrics.per_label.iter().fold([0u64; 3], |a, l| {
            [a[0] + l.counts.tp, a[1] + l.counts.fp, a[2] + l.counts.fn_]
        });
        let results = json!({
            "status": "ok",
            "dataset": r.dataset,
            "split": r.manifest.split,
            "unit": "article",
            "documents": r.metrics.n,
            "n": r.metrics.n,
            "counts": {"tp": pooled_counts[0], "fp": pooled_counts[1], "fn": pooled_counts[2]},
            "metrics": estimates_json(&pooled),
            "per_frame": per_frame,
            "folds": to_json(&r.folds),
            "fold_micro_f1_mean": r.fold_micro_f1_mean,
            "fold_micro_f1_sd": r.fold_micro_f1_sd,
            "majority_baseline_micro_f1": r.majority_baseline_micro_f1,
        });
        let command = format!(
            "slant eval frames --cv {}{}",
            self.k,
            if opts.seed == 13 {
                String::new()
            } else {
                format!(" --seed {}", opts.seed)
            }
        );
        let mut per_sorted: Vec<(&str, f64)> = r
            .metrics
            .per_label
            .iter()
            .map(|l| (l.label.as_str(), l.scores.f1))
            .collect();
        per_sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let md = MdRow {
            title: "Frames head (article-level, multi-label, 14 frames)".into(),
            header: [
                "evaluation",
                "split",
                "n (articles)",
                "micro-F1",
                "macro-F1",
                "micro P",
                "micro R",
                "majority baseline micro-F1",
                "published reference",
                "single command",
            ]
            .map(String::from)
            .to_vec(),
            cells: vec![
                format!("`{}`", self.name()),
                r.manifest.split.clone(),
                r.metrics.n.to_string(),
                fmt_est(&pooled["micro_f1"]),
                fmt_est(&pooled["macro_f1"]),
                fmt_est(&pooled["micro_precision"]),
                fmt_est(&pooled["micro_recall"]),
                format!("{:.3}", r.majority_baseline_micro_f1),
                frames_reference(r.metrics.n),
                format!("`{command}`"),
            ],
            notes: vec![
                format!(
                    "`{}`: per-fold micro-F1 {} (mean {:.3} ± {:.3} sd); intervals resample \
                     articles of the pooled out-of-fold predictions and leave out training \
                     variance.",
                    self.name(),
                    r.folds
                        .iter()
                        .map(|f| format!("{:.3}", f.micro_f1))
                        .collect::<Vec<_>>()
                        .join(", "),
                    r.fold_micro_f1_mean,
                    r.fold_micro_f1_sd
                ),
                format!(
                    "Per-frame F1 (support), best first: {}. Per-frame counts, P, R and F1 \
                     intervals are in `results.json`.",
                    per_sorted
                        .iter()
                        .map(|(f, f1)| {
                            let sup = r
                                .metrics
                                .per_label
                                .iter()
                                .find(|l| l.label == *f)
                                .map_or(0, |l| l.support);
                            format!("{f} {f1:.3} ({sup})")
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ],
        };
        Ok(Outcome::Done(Box::new(Done {
            results,
            manifest: json!({
                "split": r.manifest.split,
                "files": to_json(&r.manifest.data_files),
                "unit": "article",
                "bootstrap_seed": cfg.seed,
                "train_opts": to_json(&opts),
                "command": command,
            }),
            md,
        })))
    }
}

// ---------------------------------------------------------------------------------------------
// Outlet validity

/// Outlet validity of the loaded head: per-outlet loaded share against human biased share on
/// BABE SG2 and MBIC, Spearman ρ over outlets ([`outlets`]).
pub struct OutletsEval;

impl Evaluation for OutletsEval {
    fn name(&self) -> String {
        "outlets/babe-mbic".into()
    }

    fn run(&self, ctx: &Context) -> Result<Outcome> {
        let cfg = ctx.cfg;
        let enc = or_skip!(ctx.encoder());
        let dir = or_skip!(ctx.data());
        for (what, p) in [
            ("BABE SG2", data::babe_sg2_path(dir)),
            ("MBIC", data::mbic_path(dir)),
        ] {
            if !p.is_file() {
                return Ok(Outcome::Skipped(format!(
                    "{what} not found at {} (relative to --data)",
                    shown_rel(dir, &p)
                )));
            }
        }
        let (head, head_sha, _) = or_skip!(ctx.head());
        let min_n = cfg.outlets_min_n;
        let kind = match SentenceFeatures::of(head) {
            Ok(k) => k,
            Err(e) => return Ok(Outcome::Skipped(e.to_string())),
        };
        let span = match ctx.evidence_head(&kind) {
            Ok(s) => s,
            Err(why) => return Ok(Outcome::Skipped(why)),
        };
        let feats = |rows: &[LabelledSentence], what: &str| {
            loaded::head_features(enc, rows, cfg.batch_size, what, &kind, span)
        };
        let scored = outlets::score(head, dir, &feats)?;
        let rows = scored.sets();
        let report = scored.report(min_n, enc.weights_sha256(), head_sha);
        let cis: Vec<Option<[f64; 2]>> = rows
            .iter()
            .map(|r| outlets::spearman_ci(r, scored.threshold, min_n, cfg.reps, cfg.seed))
            .collect();
        let est = |s: &outlets::SetResult, ci: Option<[f64; 2]>| -> Option<Estimate> {
            s.spearman.map(|value| Estimate { value, ci })
        };
        let sets: Vec<Value> = report
            .sets
            .iter()
            .zip(&cis)
            .map(|(s, ci)| {
                json!({
                    "set": s.set,
                    "sentences": s.sentences,
                    "outlets_in_correlation": s.outlets_in_correlation,
                    "spearman": to_json(est(s, *ci)),
                    "spearman_mean_loaded": s.spearman_mean_loaded,
                    "outlets": to_json(&s.outlets),
                })
            })
            .collect();
        let headline = est(&report.sets[0], cis[0]);
        let mut metrics = BTreeMap::new();
        if let Some(e) = headline {
            metrics.insert("spearman".to_string(), e);
        }
        let ci_method = format!(
            "intervals keep the outlets with n ≥ {min_n} fixed and resample articles (`news_link`) \
             within each outlet; the outlets themselves are not resampled: with {} outlets a \
             resample repeats points and ties ranks, and a percentile interval over so few \
             points says little",
            report.sets[0].outlets_in_correlation
        );
        let results = json!({
            "status": "ok",
            "unit": "article within outlet",
            "min_n": min_n,
            "threshold": scored.threshold,
            "metrics": estimates_json(&metrics),
            "ci_method": ci_method,
            "note": report.note,
            "sets": sets,
        });
        let fmt_rho = |s: &outlets::SetResult, ci: Option<[f64; 2]>| {
            est(s, ci).map_or("n/a (fewer than 3 outlets)".to_string(), |e| fmt_est(&e))
        };
        let command = if min_n == outlets::DEFAULT_MIN_N {
            "slant eval outlets".to_string()
        } else {
            format!("slant eval outlets --min-n {min_n}")
        };
        let md = MdRow {
            title: "Outlet validity (loaded head, zero-shot)".into(),
            header: [
                "evaluation",
                "set",
                "sentences",
                "outlets (n ≥ min)",
                "Spearman ρ (loaded share vs human biased share)",
                "ρ with mean P(loaded)",
                "target",
                "single command",
            ]
            .map(String::from)
            .to_vec(),
            cells: vec![
                format!("`{}`", self.name()),
                report.sets[0].set.clone(),
                report.sets[0].sentences.to_string(),
                format!("{} (min {min_n})", report.sets[0].outlets_in_correlation),
                fmt_rho(&report.sets[0], cis[0]),
                report.sets[0]
                    .spearman_mean_loaded
                    .map_or("n/a".into(), |r| format!("{r:.3}")),
                "ρ ≥ 0.9 (issue target; no published reference on these outlets)".into(),
                format!("`{command}`"),
            ],
            notes: report.sets[1..]
                .iter()
                .zip(&cis[1..])
                .map(|(s, ci)| {
                    format!(
                        "{}: {} sentences, {} outlets with n ≥ {min_n}, ρ {}",
                        s.set,
                        s.sentences,
                        s.outlets_in_correlation,
                        fmt_rho(s, *ci)
                    )
                })
                .chain([
                    format!("Outlet ρ {ci_method}."),
                    format!("Note: {}", report.note),
                ])
                .collect(),
        };
        Ok(Outcome::Done(Box::new(Done {
            results,
            manifest: json!({
                "split": "every labelled sentence of BABE SG2 and MBIC (zero-shot: the head never saw them)",
                "files": to_json(&scored.data_files),
                "unit": "article within outlet",
                "bootstrap_seed": cfg.seed,
                "head_sha256": head_sha,
                "command": command,
            }),
            md,
        })))
    }
}

// ---------------------------------------------------------------------------------------------
// Loaded-language spans

/// The span head on a held-out span set ([`crate::train::loaded_spans`]): token and
/// span-overlap P/R/F1 with document-bootstrap intervals, beside the Recasens lexicon baseline.
pub struct LoadedSpansEval {
    pub dataset: crate::train::loaded_spans::SpansDataset,
}

impl Evaluation for LoadedSpansEval {
    fn name(&self) -> String {
        use crate::train::loaded_spans::SpansDataset;
        match self.dataset {
            SpansDataset::Ptc => "loaded-spans/ptc-test".into(),
            SpansDataset::Babe => "loaded-spans/babe-sg2-fold0".into(),
        }
    }

    fn run(&self, ctx: &Context) -> Result<Outcome> {
        use crate::train::loaded_spans::{self as ls, SpansDataset};
        let cfg = ctx.cfg;
        let enc = or_skip!(ctx.encoder());
        let (head, head_sha, head_path) = or_skip!(ctx.models.spans.as_ref());
        let dir = or_skip!(ctx.data());
        let (docs, files) =
            match ls::held_out(dir, self.dataset) {
                Ok(x) => x,
                Err(Error::Missing(_)) => return Ok(Outcome::Skipped(match self.dataset {
                    SpansDataset::Ptc => format!(
                        "PTC not found at {} and {}/ (relative to --data)",
                        crate::data::spans::PTC_LABELS,
                        crate::data::spans::PTC_ARTICLES
                    ),
                    SpansDataset::Babe => {
                        "BABE SG2 not found at babe/data/final_labels_SG2.csv (relative to --data)"
                            .to_string()
                    }
                })),
                Err(e) => return Err(e),
            };
        let pred = ls::predict(enc, head, &docs, cfg.batch_size)?;
        let pred: Vec<Vec<(usize, usize)>> = pred
            .iter()
            .map(|v| v.iter().map(|t| (t.start, t.end)).collect())
            .collect();
        let stats: Vec<Vec<f64>> = docs
            .iter()
            .zip(&pred)
            .map(|(d, p)| ls::doc_stats(d, p))
            .collect();
        let mut sum = vec![0.0; 8];
        for d in &stats {
            for (a, b) in sum.iter_mut().zip(d) {
                *a += b;
            }
        }
        let values = ls::span_metric_values(&sum);
        let cis = ci::bootstrap_docs(&stats, ls::span_metric_values, cfg.reps, cfg.seed);
        let est: BTreeMap<String, Estimate> = ls::SPAN_METRICS
            .iter()
            .zip(values.iter().zip(cis))
            .map(|(k, (&value, ci))| (k.to_string(), Estimate { value, ci }))
            .collect();
        let lex_path = dir.join(ls::RECASENS_LEXICON);
        let lexicon = if lex_path.is_file() {
            let lex = ls::read_lexicon(&lex_path)?;
            let p: Vec<Vec<(usize, usize)>> = docs
                .iter()
                .map(|d| ls::lexicon_spans(&d.text, &lex))
                .collect();
            Some(ls::score_docs(&docs, &p))
        } else {
            None
        };
        let mut data_files = Vec::new();
        for f in files.iter().chain(lex_path.is_file().then_some(&lex_path)) {
            if f.is_file() {
                data_files.push(DataFile::new(dir, f)?);
            }
        }
        let (split, unit, set) = match self.dataset {
            SpansDataset::Ptc => (
                "PTC train-articles, test part of the fixed article split (sha256 bucket 0-19 of 100; never trained on)",
                "article",
                "ptc",
            ),
            SpansDataset::Babe => (
                "BABE SG2 held-out fold 0 of 5 (sha256 of the sentence id mod 5; never trained on)",
                "sentence",
                "babe",
            ),
        };
        let gold: usize = docs.iter().map(|d| d.spans.len()).sum();
        let n_pred: usize = pred.iter().map(Vec::len).sum();
        let results = json!({
            "status": "ok",
            "dataset": set,
            "split": split,
            "unit": unit,
            "documents": docs.len(),
            "gold_spans": gold,
            "predicted_spans": n_pred,
            "counts": {
                "token": {"tp": sum[0], "predicted": sum[2], "gold": sum[3]},
                "span_overlap": {"tp": sum[4], "gold_found": sum[5], "predicted": sum[6], "gold": sum[7]},
            },
            "metrics": estimates_json(&est),
            "lexicon_baseline": lexicon.as_ref().map(to_json),
        });
        let command = format!("slant eval loaded-spans --data DIR --dataset {set}");
        let reference = match self.dataset {
            SpansDataset::Ptc => "SemEval-2020 Task 11 span identification, all 14 techniques, official test set, character-overlap F1: best systems ≈ 0.50 (Da San Martino et al. 2020); Loaded_Language only here, not comparable",
            SpansDataset::Babe => "none reproduced here (BABE's biased_words are usually used for word-level analysis, not a benchmark)",
        };
        let lex_cell = lexicon.as_ref().map_or("n/a".to_string(), |l| {
            format!("token F1 {:.3}, span F1 {:.3}", l.token_f1, l.span_f1)
        });
        let md = MdRow {
            title: "Loaded-language span head (which words are loaded)".into(),
            header: [
                "evaluation",
                "split",
                "n (documents)",
                "gold spans",
                "token P",
                "token R",
                "token F1",
                "span P",
                "span R",
                "span-overlap F1",
                "Recasens lexicon baseline",
                "published reference",
                "single command",
            ]
            .map(String::from)
            .to_vec(),
            cells: vec![
                format!("`{}`", self.name()),
                split.to_string(),
                format!("{} ({unit}s)", docs.len()),
                gold.to_string(),
                fmt_est(&est["token_precision"]),
                fmt_est(&est["token_recall"]),
                fmt_est(&est["token_f1"]),
                fmt_est(&est["span_precision"]),
                fmt_est(&est["span_recall"]),
                fmt_est(&est["span_f1"]),
                lex_cell,
                reference.to_string(),
                format!("`{command}`"),
            ],
            notes: vec![
                "Token = words and punctuation marks as `src/eval/spans.rs` cuts them, labelled when they overlap a span; span overlap = a predicted span is right when it shares a byte with a gold span (recall: gold spans touched). The head was trained by `slant train loaded-spans` on the train parts only (see `models/LOADED_SPANS_CARD.md`).".to_string(),
            ],
        };
        Ok(Outcome::Done(Box::new(Done {
            results,
            manifest: json!({
                "split": split,
                "files": to_json(&data_files),
                "unit": unit,
                "bootstrap_seed": cfg.seed,
                "spans_head": {"path": head_path, "sha256": head_sha},
                "command": command,
            }),
            md,
        })))
    }
}

// ---------------------------------------------------------------------------------------------
// Attribution spans on PolNeAR test

/// The attribution tagger on PolNeAR's own test split: exact, overlap and token F1 of SOURCE,
/// CUE and CONTENT spans, with intervals resampling articles.
pub struct AttributionEval;

/// The roles of the attribution tagger, in report order, with their labels.
const ATTRIBUTION_ROLES: [(&str, &str); 3] =
    [("source", "SOURCE"), ("cue", "CUE"), ("content", "CONTENT")];

/// Per-article counts of one role: exact (tp, tp_gold, predicted, gold), overlap (same), token
/// (same): 12 numbers.
fn role_counts(s: &crate::metrics::spans::SpanScores, label: &str) -> Vec<f64> {
    let r = s.0.get(label).copied().unwrap_or_default();
    [r.exact, r.overlap, r.token]
        .iter()
        .flat_map(|p| [p.tp, p.tp_gold, p.predicted, p.gold].map(|x| x as f64))
        .collect()
}

/// Exact, overlap and token F1 of every role from summed [`role_counts`] (3 × 12 numbers).
fn attribution_f1s(sum: &[f64]) -> Vec<f64> {
    sum.chunks(4)
        .map(|c| {
            let p = if c[2] > 0.0 { c[0] / c[2] } else { 0.0 };
            let r = if c[3] > 0.0 { c[1] / c[3] } else { 0.0 };
            if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            }
        })
        .collect()
}

impl Evaluation for AttributionEval {
    fn name(&self) -> String {
        "attribution/polnear-test".into()
    }

    fn run(&self, ctx: &Context) -> Result<Outcome> {
        use crate::eval::attribution as ea;
        use crate::metrics::spans::{score, LabeledSpan};
        let cfg = ctx.cfg;
        let enc = or_skip!(ctx.encoder());
        let (head, head_sha, head_path) = or_skip!(ctx.models.attribution.as_ref());
        let dir = or_skip!(ctx.data());
        let meta = dir.join("polnear/data/metadata.tsv");
        if !meta.is_file() || !dir.join("polnear/data/test").is_dir() {
            return Ok(Outcome::Skipped(
                "PolNeAR not found at polnear/data/{metadata.tsv,test/} (relative to --data)"
                    .into(),
            ));
        }
        let prepared = ea::prepare_for_head(enc, head, dir, "test", cfg.batch_size)?;
        let preds = ea::predict(head, &prepared);
        let mut stats: Vec<Vec<f64>> = Vec::with_capacity(preds.len());
        for (a, pred) in prepared.articles.iter().zip(&preds) {
            let pred: Vec<LabeledSpan> = pred
                .iter()
                .map(|(_, t)| LabeledSpan::new(&t.label, t.start, t.end))
                .collect();
            let s = score(&a.text, &crate::attribution::article_gold(a), &pred);
            stats.push(
                ATTRIBUTION_ROLES
                    .iter()
                    .flat_map(|(_, l)| role_counts(&s, l))
                    .collect(),
            );
        }
        let mut sum = vec![0.0; 36];
        for d in &stats {
            for (a, b) in sum.iter_mut().zip(d) {
                *a += b;
            }
        }
        let values = attribution_f1s(&sum);
        let cis = ci::bootstrap_docs(&stats, attribution_f1s, cfg.reps, cfg.seed);
        let mut est: BTreeMap<String, BTreeMap<String, Estimate>> = BTreeMap::new();
        let mut counts = serde_json::Map::new();
        for (ri, (role, _)) in ATTRIBUTION_ROLES.iter().enumerate() {
            let m = est.entry(role.to_string()).or_default();
            for (mi, metric) in ["exact_f1", "overlap_f1", "token_f1"].iter().enumerate() {
                let k = ri * 3 + mi;
                m.insert(
                    metric.to_string(),
                    Estimate {
                        value: values[k],
                        ci: cis[k],
                    },
                );
            }
            let c = &sum[ri * 12..ri * 12 + 12];
            counts.insert(
                role.to_string(),
                json!({
                    "exact": {"tp": c[0], "predicted": c[2], "gold": c[3]},
                    "overlap": {"tp": c[4], "gold_found": c[5], "predicted": c[6], "gold": c[7]},
                    "token": {"tp": c[8], "predicted": c[10], "gold": c[11]},
                }),
            );
        }
        let split =
            "PolNeAR's own test split (84 articles; one .ann per article, the first by name)";
        let command = "slant eval attribution --data DIR --dataset polnear";
        let results = json!({
            "status": "ok",
            "dataset": "polnear",
            "split": split,
            "unit": "article",
            "documents": prepared.articles.len(),
            "sentences": prepared.states.len(),
            "metrics": to_json(&est),
            "counts": Value::Object(counts),
            "targets_exact_f1": {"source": 0.85, "cue": 0.88, "content": 0.65},
        });
        let md = MdRow {
            title: "Attribution tagger (SOURCE / CUE / CONTENT spans)".into(),
            header: [
                "evaluation",
                "split",
                "n (articles)",
                "source exact F1",
                "cue exact F1",
                "content exact F1",
                "source / cue / content overlap F1",
                "source / cue / content token F1",
                "targets (exact F1)",
                "published reference",
                "single command",
            ]
            .map(String::from)
            .to_vec(),
            cells: vec![
                format!("`{}`", self.name()),
                split.to_string(),
                prepared.articles.len().to_string(),
                fmt_est(&est["source"]["exact_f1"]),
                fmt_est(&est["cue"]["exact_f1"]),
                fmt_est(&est["content"]["exact_f1"]),
                ATTRIBUTION_ROLES
                    .iter()
                    .map(|(r, _)| format!("{:.3}", est[*r]["overlap_f1"].value))
                    .collect::<Vec<_>>()
                    .join(" / "),
                ATTRIBUTION_ROLES
                    .iter()
                    .map(|(r, _)| format!("{:.3}", est[*r]["token_f1"].value))
                    .collect::<Vec<_>>()
                    .join(" / "),
                "0.85 / 0.88 / 0.65 (issue)".into(),
                "BBC citron on PARC 3.0 (another corpus): exact F1 0.82 / 0.82 / 0.59, overlap 0.83; not comparable".into(),
                format!("`{command}`"),
            ],
            notes: vec![
                "Exact = same start and end byte; overlap = a predicted span shares at least one byte with a gold span of the same role (as in PARC 3.0 / citron); token = words and punctuation marks. Scored on whole articles, after the tagger's cross-sentence content joining; intervals resample articles. The head was trained by `slant train attribution` on PolNeAR train, epoch chosen on dev (`models/ATTRIBUTION_CARD.md`).".to_string(),
            ],
        };
        Ok(Outcome::Done(Box::new(Done {
            results,
            manifest: json!({
                "split": split,
                "files": to_json(&[DataFile::new(dir, &meta)?]),
                "unit": "article",
                "bootstrap_seed": cfg.seed,
                "attribution_head": {"path": head_path, "sha256": head_sha},
                "command": command,
            }),
            md,
        })))
    }
}

// ---------------------------------------------------------------------------------------------
// The run

/// Today's evaluations, in report order.
pub fn plan(cfg: &RunConfig) -> Vec<Box<dyn Evaluation>> {
    let k = cfg.cv.k;
    let mut v: Vec<Box<dyn Evaluation>> = vec![
        Box::new(SplitterEval),
        Box::new(LoadedEval {
            name: "loaded/anno-lexical-test".into(),
            set: SentenceSet::AnnoLexicalTest,
            cv: None,
        }),
        Box::new(LoadedEval {
            name: "loaded/babe-sg2-zero-shot".into(),
            set: SentenceSet::BabeSg2,
            cv: None,
        }),
        Box::new(LoadedEval {
            name: format!("loaded/babe-sg2-cv{k}"),
            set: SentenceSet::BabeSg2,
            cv: Some(true),
        }),
        Box::new(LoadedEval {
            name: format!("loaded/babe-sg2-cv{k}-babe-only"),
            set: SentenceSet::BabeSg2,
            cv: Some(false),
        }),
    ];
    for p in &cfg.attach {
        v.push(Box::new(AttachedEval { path: p.clone() }));
    }
    for p in &cfg.labels {
        v.push(Box::new(LoadedEval {
            name: format!(
                "loaded/labels/{}",
                p.file_name().unwrap_or_default().to_string_lossy()
            ),
            set: SentenceSet::File(p.clone()),
            cv: None,
        }));
    }
    v.push(Box::new(FramesEval { k }));
    v.push(Box::new(OutletsEval));
    v.push(Box::new(LoadedSpansEval {
        dataset: crate::train::loaded_spans::SpansDataset::Ptc,
    }));
    v.push(Box::new(LoadedSpansEval {
        dataset: crate::train::loaded_spans::SpansDataset::Babe,
    }));
    v.push(Box::new(AttributionEval));
    v
}

/// What a run wrote.
#[derive(Debug, Clone)]
pub struct RunFiles {
    pub results_json: String,
    pub results_md: String,
    pub manifest_json: String,
    /// (name, reason) of each skipped evaluation.
    pub skipped: Vec<(String, String)>,
}

/// Round every non-integer number to 6 decimals (objects are already key-sorted `BTreeMap`s).
pub fn round_floats(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(0.0);
            let r = (x * 1e6).round() / 1e6;
            *v = serde_json::Number::from_f64(if r == 0.0 { 0.0 } else { r })
                .map_or(Value::Null, Value::Number);
        }
        Value::Array(a) => a.iter_mut().for_each(round_floats),
        Value::Object(o) => o.values_mut().for_each(round_floats),
        _ => {}
    }
}

fn pretty(mut v: Value) -> String {
    round_floats(&mut v);
    serde_json::to_string_pretty(&v).expect("a JSON value serializes") + "\n"
}

/// JSON of plain data (structs of numbers, strings and vectors cannot fail to serialize).
fn to_json<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("plain data serializes")
}

/// Run every evaluation of [`plan`] and render the three files (nothing is written here).
pub fn run(cfg: &RunConfig, models: &Models, threads: usize) -> Result<RunFiles> {
    let t0 = Instant::now();
    let ctx = Context { cfg, models };
    let mut results = BTreeMap::new();
    let mut manifests = BTreeMap::new();
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for e in plan(cfg) {
        let name = e.name();
        eprintln!("slant eval all: {name}");
        let t = Instant::now();
        let outcome = e.run(&ctx)?;
        let wall = (t.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        match outcome {
            Outcome::Done(d) => {
                let mut man = d.manifest;
                man["status"] = json!("ok");
                man["wall_s"] = json!(wall);
                results.insert(name.clone(), d.results);
                manifests.insert(name.clone(), man);
                rows.push((name, d.md));
            }
            Outcome::Skipped(why) => {
                eprintln!("  skipped: {why}");
                results.insert(name.clone(), json!({"status": "skipped", "reason": why}));
                manifests.insert(
                    name.clone(),
                    json!({"status": "skipped", "reason": why, "wall_s": wall}),
                );
                skipped.push((name, why));
            }
        }
    }
    let bootstrap = json!({
        "reps": cfg.reps,
        "seed": cfg.seed,
        "level": 0.95,
        "method": "percentile bootstrap resampling documents (articles where the data has article ids, else sentences; splitter cases)",
    });
    let results_json = pretty(json!({
        "schema": RESULTS_SCHEMA,
        "bootstrap": bootstrap,
        "evaluations": results,
    }));

    let (version, commit) = version_info();
    let encoder = models
        .encoder
        .as_ref()
        .ok()
        .map(|e| json!({"path": shown_path(e.dir()), "sha256": e.weights_sha256()}));
    let head = models
        .head
        .as_ref()
        .ok()
        .map(|(h, sha, path)| json!({"path": path, "sha256": sha, "threshold": h.threshold}));
    let mut data_files: BTreeMap<String, String> = BTreeMap::new();
    for m in manifests.values() {
        for f in m["files"].as_array().into_iter().flatten() {
            if let (Some(p), Some(s)) = (f["path"].as_str(), f["sha256"].as_str()) {
                data_files.insert(p.to_string(), s.to_string());
            }
        }
    }
    let total = (t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let manifest_json = pretty(json!({
        "slant_version": version,
        "git_commit": commit,
        "command": cfg.command,
        "encoder": encoder,
        "loaded_head": head,
        "files": data_files.iter().map(|(p, s)| json!({"path": p, "sha256": s})).collect::<Vec<_>>(),
        "files_note": "paths of data files are relative to --data DIR; labelled files are named by file name; splitter cases relative to the checkout",
        "bootstrap": bootstrap,
        "cv": cfg.cv,
        "threads": threads,
        "evaluations": manifests,
        "total_wall_s": total,
    }));

    let results_md = render_md(cfg, models, &rows, &skipped, &data_files);
    Ok(RunFiles {
        results_json,
        results_md,
        manifest_json,
        skipped,
    })
}

fn render_md(
    cfg: &RunConfig,
    models: &Models,
    rows: &[(String, MdRow)],
    skipped: &[(String, String)],
    files: &BTreeMap<String, String>,
) -> String {
    let (version, commit) = version_info();
    let mut s = String::new();
    s += "# slant evaluation results\n\n";
    s += "Generated by `slant eval all`; do not edit by hand. Command:\n\n";
    s += &format!("```sh\n{}\n```\n\n", cfg.command);
    s += "where `DIR` is a folder laid out like the shared data folder (`--data DIR` or `SLANT_DATA`).\n\n";
    s += &format!("slant {version}, git `{commit}`");
    if let Ok(e) = &models.encoder {
        s += &format!(", encoder sha256 `{}`", e.weights_sha256());
    }
    if let Ok((_, sha, path)) = &models.head {
        s += &format!(", loaded head `{path}` sha256 `{sha}`");
    }
    s += ".\n\n";
    s += &format!(
        "Every figure is followed by its 95% percentile-bootstrap interval `[lo, hi]` over documents \
         ({} resamples, seed {}): articles where the data has article ids (BABE's `news_link`), \
         else sentences; cases for the splitter. Thread count does not change any figure.\n",
        cfg.reps, cfg.seed
    );
    let mut i = 0;
    while i < rows.len() {
        let first = &rows[i].1;
        let group: Vec<&MdRow> = rows[i..]
            .iter()
            .map(|(_, r)| r)
            .take_while(|r| r.title == first.title && r.header == first.header)
            .collect();
        i += group.len();
        s += &format!("\n## {}\n\n", first.title);
        s += &format!("| {} |\n", first.header.join(" | "));
        s += &format!("|{}\n", "---|".repeat(first.header.len()));
        for r in &group {
            let cells: Vec<String> = r.cells.iter().map(|c| c.replace('|', "\\|")).collect();
            s += &format!("| {} |\n", cells.join(" | "));
        }
        let notes: Vec<&String> = group.iter().flat_map(|r| &r.notes).collect();
        if !notes.is_empty() {
            s += "\n";
            for n in notes {
                s += &format!("- {n}\n");
            }
        }
        if first.title == LOADED_TITLE {
            s += "\nPositive class = loaded/biased; P/R/F1 are the positive class's, macro-F1 \
                  averages both classes; ECE = expected calibration error (15 equal-width bins). \
                  CV rows are temperature-scaled per fold (temperature fitted on the fold's \
                  development 10%, part of the training folds); the notes give the ECE before \
                  scaling. Rows marked *attached* are saved `slant eval loaded --format json` \
                  reports (`--attach`): point estimates without intervals.\n";
        }
    }
    if !skipped.is_empty() {
        s += "\n## Skipped\n\n";
        for (n, why) in skipped {
            s += &format!("- `{n}`: {why}\n");
        }
    }
    if !files.is_empty() {
        s += "\n## Files\n\n";
        for (p, sha) in files {
            s += &format!("- `{p}` sha256 `{sha}`\n");
        }
    }
    s
}

/// Write the three files of a run into `out` (created if needed).
pub fn write(out: &Path, files: &RunFiles) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    for (name, body) in [
        ("results.json", &files.results_json),
        ("results.md", &files.results_md),
        ("manifest.json", &files.manifest_json),
    ] {
        let p = out.join(name);
        std::fs::write(&p, body).map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_keeps_integers_and_rounds_floats() {
        let mut v = json!({"b": [0.1234567891, 3, -0.0000001], "a": {"x": 2.0, "y": 0.55f32}});
        round_floats(&mut v);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"a":{"x":2.0,"y":0.55},"b":[0.123457,3,0.0]}"#
        );
    }

    #[test]
    fn shown_paths_are_never_absolute() {
        assert_eq!(shown_path(Path::new("eval/x.jsonl")), "eval/x.jsonl");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(shown_path(&cwd.join("a/b.jsonl")), "a/b.jsonl");
        assert_eq!(
            shown_path(Path::new("/nonexistent-root/q/c.jsonl")),
            "c.jsonl"
        );
    }

    #[test]
    fn splitter_results_carry_cis_and_failures() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/splitter/cases.jsonl");
        let cases = seg_eval::load_cases(&path).unwrap();
        let r = splitter_results(&cases, 200, 1);
        let report = seg_eval::evaluate(&cases);
        assert_eq!(r["cases"], json!(cases.len()));
        assert_eq!(r["counts"]["exact"], json!(report.exact));
        let f1 = &r["metrics"]["boundary_f1"];
        assert_eq!(f1["value"].as_f64().unwrap(), report.f1);
        let ci = f1["ci"].as_array().unwrap();
        assert!(ci[0].as_f64().unwrap() <= report.f1 && report.f1 <= ci[1].as_f64().unwrap());
        assert_eq!(
            r["failures"].as_array().unwrap().len(),
            report.failures.len()
        );
        assert_eq!(r, splitter_results(&cases, 200, 1));
    }

    #[test]
    fn run_without_data_or_models_skips_with_reasons() {
        let cfg = RunConfig {
            data: None,
            labels: vec![],
            cases: Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/splitter/cases.jsonl"),
            cases_shown: "eval/splitter/cases.jsonl".into(),
            reps: 50,
            seed: 1,
            cv: CvOpts {
                k: 5,
                seed: 13,
                hidden: 0,
            },
            outlets_min_n: 30,
            batch_size: 8,
            command: "slant eval all --out x".into(),
            attach: vec![],
        };
        let models = Models {
            encoder: Err("no encoder".into()),
            head: Err("no head".into()),
            spans: Err("no span head".into()),
            attribution: Err("no attribution head".into()),
        };
        let a = run(&cfg, &models, 1).unwrap();
        assert_eq!(a.results_json, run(&cfg, &models, 2).unwrap().results_json);
        let v: Value = serde_json::from_str(&a.results_json).unwrap();
        assert_eq!(v["evaluations"]["splitter"]["status"], "ok");
        assert_eq!(
            v["evaluations"]["loaded/babe-sg2-cv5"]["reason"],
            "no encoder"
        );
        assert_eq!(a.skipped.len(), 9);
        assert_eq!(
            v["evaluations"]["frames/semeval2023-cv5"]["reason"],
            "no encoder"
        );
        assert_eq!(
            v["evaluations"]["outlets/babe-mbic"]["reason"],
            "no encoder"
        );
        assert!(a
            .results_md
            .contains("| splitter on `eval/splitter/cases.jsonl` |"));
        assert!(a.results_md.contains("pySBD: 47/48"));
        assert!(a
            .results_md
            .contains("- `loaded/anno-lexical-test`: no encoder"));
    }
}
