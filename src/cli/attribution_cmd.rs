//! `slant train attribution` and `slant eval attribution`: the SOURCE / CUE / CONTENT tagger on
//! PolNeAR. The logic lives in the library ([`crate::eval::attribution`]); this file parses
//! options, prints, and writes the head and its model card.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use super::args::{DataArgs, ModelArgs, ReportFormat};
use super::commands::{find_models_file, load_encoder};
use crate::attribution::ATTRIBUTION_HEAD_FILE;
use crate::data;
use crate::encode::sha256_file;
use crate::eval::attribution as ea;
use crate::eval::version_info;
use crate::heads::tagger::{Scheme, TaggerHead};
use crate::train::tagger::TaggerOpts;

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

fn parse_extra_layer_arg(v: &str) -> std::result::Result<(usize, usize), String> {
    crate::heads::tagger::parse_extra_layers(v)
        .ok_or_else(|| format!("{v:?}: expected a layer L >= 1 or a range A-B (1 <= A <= B)"))
}

/// `--extra-layer` as written in the header and on the command line.
fn extra_layer_name((a, b): (usize, usize)) -> String {
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
    fn scheme(self) -> Scheme {
        match self {
            Self::Flat => Scheme::Flat,
            Self::PerRole => Scheme::PerRole,
        }
    }
    fn name(self) -> &'static str {
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
    fn mode(self) -> ea::DecodingMode {
        match self {
            Self::Argmax => ea::DecodingMode::Argmax,
            Self::Viterbi => ea::DecodingMode::Viterbi,
            Self::ViterbiBigram => ea::DecodingMode::ViterbiBigram,
            Self::ViterbiPmi => ea::DecodingMode::ViterbiPmi,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::Argmax => "argmax",
            Self::Viterbi => "viterbi",
            Self::ViterbiBigram => "viterbi-bigram",
            Self::ViterbiPmi => "viterbi-pmi",
        }
    }
    fn learned(self) -> bool {
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

/// The attribution head: an explicit path, else `models/attribution.safetensors`.
pub(super) fn resolve_head(explicit: Option<&std::path::Path>) -> Result<PathBuf> {
    match explicit {
        Some(p) => Ok(p.to_path_buf()),
        None => find_models_file(ATTRIBUTION_HEAD_FILE).with_context(|| {
            format!(
                "no attribution head: models/{ATTRIBUTION_HEAD_FILE} was not found above the \
                 current directory; pass --attribution-head FILE or train one with `slant train \
                 attribution`"
            )
        }),
    }
}

pub fn eval_attribution(a: EvalAttributionArgs) -> Result<i32> {
    let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
    if let Some(out) = &a.export_tokens {
        return export_tokens(&a, &data_dir, out);
    }
    if let Some(o) = a.oracle {
        let enc = load_encoder(&a.model)?;
        let scheme = a.scheme.scheme();
        // Offsets and tags only: the oracle needs no token states.
        let (p, _) = ea::prepare_ids(&enc, &data_dir, &a.split, scheme)?;
        let rules = match o {
            OracleArg::Decoded => ea::OracleRules::Decoded,
            OracleArg::Rules => ea::OracleRules::Rules,
        };
        let s = ea::oracle_scores(&ea::oracle_head(scheme), &p, rules);
        let r = ea::report_of(&enc, None, &data_dir, &a.split, &p, &s);
        eprintln!(
            "oracle: gold spans as {} training tags, Viterbi, {}",
            a.scheme.name(),
            match o {
                OracleArg::Decoded => "no post-processing",
                OracleArg::Rules => "post-processed as predictions",
            }
        );
        return super::print_report(a.format, &r, |r| r.table());
    }
    let path = resolve_head(a.attribution_head.as_deref())?;
    let mut head = TaggerHead::load(&path)?;
    let enc = load_encoder(&a.model)?;
    if let Some(d) = a.decoding {
        let tr = if d.learned() {
            Some(ea::prepare(&enc, &data_dir, "train", a.model.batch_size)?)
        } else {
            None
        };
        ea::set_decoding(&mut head, d.mode(), tr.as_ref())?;
    }
    let head_sha = Some(sha256_file(&path)?);
    let r = match &a.probs {
        Some(file) => {
            let (p, _) = ea::prepare_ids(&enc, &data_dir, &a.split, head.scheme())?;
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let shown = file.display().to_string();
            let probs = ea::read_probs(&text, &shown, &p, head.labels.len())?;
            let s = ea::score_articles(&p, &ea::predict_probs(&head, &p, &probs));
            let mut r = ea::report_of(&enc, head_sha, &data_dir, &a.split, &p, &s);
            r.manifest.predictions = Some(ea::PredictionsFile {
                path: shown,
                sha256: sha256_file(file)?,
            });
            r
        }
        None => ea::evaluate(
            &enc,
            &head,
            head_sha,
            &data_dir,
            &a.split,
            a.model.batch_size,
        )?,
    };
    super::print_report(a.format, &r, |r| r.table())
}

/// `slant eval attribution --export-tokens DIR`.
fn export_tokens(
    a: &EvalAttributionArgs,
    data_dir: &std::path::Path,
    out: &std::path::Path,
) -> Result<i32> {
    if a.scheme != SchemeArg::Flat {
        anyhow::bail!("--export-tokens writes the flat scheme's tags (leave out --scheme)");
    }
    let t0 = Instant::now();
    let enc = load_encoder(&a.model)?;
    // The labels must be the shipped head's, in its order, when there is one to compare.
    if let Ok(path) = resolve_head(a.attribution_head.as_deref()) {
        let head = TaggerHead::load(&path)?;
        let flat = crate::attribution::labels_of(Scheme::Flat);
        if head.scheme() == Scheme::Flat && head.labels != flat {
            anyhow::bail!(
                "{} has labels {:?}, not the flat scheme's {:?}",
                path.display(),
                head.labels,
                flat
            );
        }
    }
    let e = ea::export_tokens(&enc, data_dir, out)?;
    for (split, n, t) in &e.splits {
        eprintln!("{split}: {n} sentences, {t} input ids");
    }
    println!(
        "wrote {}/{{train,dev,test}}.jsonl, labels.json ({} labels) and README.txt in {:.1}s",
        out.display(),
        e.labels.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(0)
}

pub fn train_attribution(a: TrainAttributionArgs) -> Result<i32> {
    let t0 = Instant::now();
    let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
    let enc = load_encoder(&a.model)?;
    let opts = TaggerOpts {
        hidden: a.hidden,
        epochs: a.epochs,
        lr: a.lr,
        class_weight_power: a.class_weight_power,
        seed: a.seed,
        ..TaggerOpts::default()
    };
    eprintln!("slant train attribution: encoding PolNeAR train + dev (cached), then training");
    if let Some((_, b)) = a.extra_layer {
        anyhow::ensure!(
            b <= enc.layers(),
            "--extra-layer: the encoder has layers 1..={}",
            enc.layers()
        );
    }
    let (mut head, report, tr, dv) = ea::train_features(
        &enc,
        &data_dir,
        &opts,
        a.window,
        a.model.batch_size,
        a.scheme.scheme(),
        a.extra_layer,
    )?;
    ea::set_decoding(&mut head, a.decoding.mode(), Some(&tr))?;
    eprintln!(
        "dev token F1 per epoch {:?}; kept epoch {} ({:.1}s)",
        report.dev_f1,
        report.best_epoch,
        t0.elapsed().as_secs_f64()
    );
    let dev_scores = ea::score_prepared(&head, &dv);
    let dev = ea::report_of(&enc, None, &data_dir, "dev", &dv, &dev_scores);
    let te = ea::prepare_for_head(&enc, &head, &data_dir, "test", a.model.batch_size)?;
    let test_scores = ea::score_prepared(&head, &te);
    let test = ea::report_of(&enc, None, &data_dir, "test", &te, &test_scores);
    let mut meta: BTreeMap<String, String> = [
        ("head", "attribution tagger: SOURCE / CUE / CONTENT BIO tags per token".to_string()),
        (
            "features",
            match a.extra_layer {
                None => "final-layer token states of the encoder (one pass per sentence)".into(),
                Some(l) => format!(
                    "final-layer token states followed by the token states after layer {} of the \
                     encoder (one pass per sentence)",
                    extra_layer_name(l)
                ),
            },
        ),
        ("encoder_sha256", enc.weights_sha256().to_string()),
        ("engine", enc.engine().name().to_string()),
        (
            "trained_on",
            format!(
                "PolNeAR train ({} articles, {} sentences); epoch chosen on PolNeAR dev ({} articles)",
                tr.articles.len(),
                tr.states.len(),
                dv.articles.len()
            ),
        ),
        ("train_opts", serde_json::to_string(&opts)?),
        ("train_report", serde_json::to_string(&report)?),
        ("test_exact_f1_source", format!("{:.4}", test.source.exact_f1)),
        ("test_exact_f1_cue", format!("{:.4}", test.cue.exact_f1)),
        ("test_exact_f1_content", format!("{:.4}", test.content.exact_f1)),
        ("slant_version", version_info().0),
        ("git_commit", version_info().1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // Window and decoding (set above) stay in the header.
    meta.append(&mut head.meta);
    head.meta = meta;
    head.save(&a.out)?;
    let sha = sha256_file(&a.out)?;
    std::fs::write(
        &a.card,
        card(
            &sha,
            &opts,
            &report,
            &dev,
            &test,
            (tr.articles.len(), tr.states.len()),
            &a,
        ),
    )
    .with_context(|| format!("writing {}", a.card.display()))?;
    println!(
        "wrote {} (sha256 {}) and {}\n\ndev:\n{}\ntest:\n{}\ntotal {:.1}s",
        a.out.display(),
        sha,
        a.card.display(),
        dev.table(),
        test.table(),
        t0.elapsed().as_secs_f64()
    );
    Ok(0)
}

fn role_rows(r: &ea::AttributionReport) -> String {
    let mut s = String::from(
        "| role | exact P | exact R | exact F1 | TP / pred / gold | overlap F1 | token F1 |\n|---|---|---|---|---|---|---|\n",
    );
    for (name, x) in [
        ("source", &r.source),
        ("cue", &r.cue),
        ("content", &r.content),
    ] {
        s.push_str(&format!(
            "| {name} | {:.4} | {:.4} | **{:.4}** | {} / {} / {} | {:.4} | {:.4} |\n",
            x.exact.precision,
            x.exact.recall,
            x.exact_f1,
            x.exact.tp,
            x.exact.predicted,
            x.exact.gold,
            x.overlap_f1,
            x.token_f1
        ));
    }
    s
}

fn card(
    sha: &str,
    o: &TaggerOpts,
    rep: &crate::train::tagger::TaggerReport,
    dev: &ea::AttributionReport,
    test: &ea::AttributionReport,
    train_counts: (usize, usize),
    a: &TrainAttributionArgs,
) -> String {
    let mut s = String::new();
    s.push_str("# Model card: attribution tagger (`models/attribution.safetensors`)\n\n");
    s.push_str("Generated by `slant train attribution`; do not edit by hand.\n\n## What it is\n");
    s.push_str(&format!(
        "A per-token tagger ({}) on the {} of the \
         frozen encoder (all-MiniLM-L6-v2, sha256 `{}`, {} engine), run per sentence (slant's splitter). Input: {}. \
         Model: {}. Decoding (`--decoding {}`): a word is read at its first word piece; {}; CONTENT spans \
         that end a sentence and open the next are joined (see `src/attribution/mod.rs`).\n\nHead file sha256: `{sha}`\n\n",
        match a.scheme {
            SchemeArg::Flat => "BIO over SOURCE, CUE, CONTENT: 7 labels, one softmax",
            SchemeArg::PerRole =>
                "`--scheme per-role`: O / B / I for each of SOURCE, CUE, CONTENT, one softmax and one Viterbi per role, \
                 so spans of different roles may nest",
        },
        match a.extra_layer {
            None => "final-layer token states".to_string(),
            Some((l, m)) if l == m => format!(
                "final-layer token states followed by the token states after layer {l} (`--extra-layer {l}`, \
                 `extra_layer` in the header; the same encoder pass gives both)"
            ),
            Some(l) => format!(
                "final-layer token states followed by the mean of the token states after layers {} \
                 (`--extra-layer {0}`, `extra_layer` in the header; the same encoder pass gives both)",
                extra_layer_name(l)
            ),
        },
        test.manifest.encoder_sha256,
        test.manifest.engine,
        if a.window == 0 {
            "each token's own state".to_string()
        } else {
            format!(
                "the states of the tokens at offsets -{w}..=+{w} around each token, concatenated (zeros beyond the \
                 sentence; `window` = {w} in the header)",
                w = a.window
            )
        },
        if o.hidden > 0 {
            format!("one {}-unit ReLU layer, softmax over the labels", o.hidden)
        } else {
            "linear softmax".into()
        },
        a.decoding.name(),
        match a.decoding {
            DecodingArg::Argmax => "each word takes its arg-max label and an `I-` without `B-` opens a span",
            DecodingArg::Viterbi => "the words' labels are the most probable sequence that is valid BIO (Viterbi; no `I-X` after `O` or another role)",
            DecodingArg::ViterbiBigram => "Viterbi over valid BIO sequences plus ln P(label | previous label) from PolNeAR train (stored as `transitions`)",
            DecodingArg::ViterbiPmi => "Viterbi over valid BIO sequences plus ln P(label | previous) - ln P(label) from PolNeAR train (stored as `transitions`)",
        }
    ));
    s.push_str(&format!(
        "## Data\nPolNeAR (Newell, Margolin & Ruths, LREC 2018), its own split: train {} articles / {} sentences \
         for training, dev {} articles for epoch selection, test {} articles / {} sentences for the figures below. \
         Where an article has several annotators' `.ann` files, the one whose file name sorts first is used. \
         Discontinuous spans are read as their covering range. Gold spans crossing a sentence boundary are cut \
         there for training. Nested attributions: {}. The corpus states no licence (copyrighted news): read by \
         path, never committed.\n\n",
        train_counts.0,
        train_counts.1,
        dev.manifest.articles,
        test.manifest.articles,
        test.manifest.sentences,
        match a.scheme {
            SchemeArg::Flat => "where gold spans overlap, CUE, then SOURCE, then CONTENT keeps the token",
            SchemeArg::PerRole => "each role has its own tags, so a CONTENT keeps the SOURCE and CUE nested in it; of two \
                 nested CONTENT spans the outer keeps the tokens",
        },
    ));
    for f in &test.manifest.data_files {
        s.push_str(&format!("- `{}` sha256 `{}`\n", f.path, f.sha256));
    }
    s.push_str(&format!(
        "\n## Training\nAdamW (lr {}, weight decay {}), minibatches of {} tokens, at most {} epochs (patience {}), \
         seed {}, class-weight power {}. {} training tokens, {} dev tokens. Dev token F1 per epoch: {:?}; kept \
         epoch {}.\n\n",
        o.lr,
        o.weight_decay,
        o.batch_tokens,
        o.epochs,
        o.patience,
        o.seed,
        o.class_weight_power,
        rep.train_tokens,
        rep.dev_tokens,
        rep.dev_f1.iter().map(|f| (f * 1e4).round() / 1e4).collect::<Vec<_>>(),
        rep.best_epoch
    ));
    s.push_str("## Metrics\n\nExact: same role, same start and end byte. Overlap: same role, at least one shared byte \
        (precision over predictions, recall over gold). Token: words inside spans of the role.\n\n");
    s.push_str(&format!(
        "### PolNeAR test ({} articles)\n\n",
        test.manifest.articles
    ));
    s.push_str(&role_rows(test));
    s.push_str(&format!(
        "\n### PolNeAR dev ({} articles; used for epoch selection)\n\n",
        dev.manifest.articles
    ));
    s.push_str(&role_rows(dev));
    s.push_str("\nTargets (test, exact F1): source >= 0.85, cue >= 0.88, content >= 0.65. For reference, the BBC \
        citron tagger reports 0.82 / 0.82 / 0.59 on PARC 3.0 (a different corpus).\n\n");
    s.push_str("## Limits\nFrozen encoder (no fine-tuning), one sentence at a time: contents that run over several \
        sentences are recovered only by joining adjacent CONTENT spans; nested attributions are flattened. \
        PolNeAR is 2016 US political news from seven outlets; other genres and non-US English are out of \
        domain.\n\n");
    s.push_str(&format!(
        "## Reproduce\n\n```\nmodels/fetch\ncargo build --release\ntarget/release/slant train attribution --data DIR --hidden {} --epochs {} --lr {} --class-weight-power {} --seed {} --window {} --decoding {} --scheme {}{}\ntarget/release/slant eval attribution --data DIR --dataset polnear --format json\n```\n",
        a.hidden, a.epochs, a.lr, a.class_weight_power, a.seed, a.window, a.decoding.name(), a.scheme.name(),
        a.extra_layer.map(|l| format!(" --extra-layer {}", extra_layer_name(l))).unwrap_or_default()
    ));
    s
}
