//! `slant train attribution` and `slant eval attribution`: the SOURCE / CUE / CONTENT tagger on
//! PolNeAR. The logic lives in the library ([`slant::eval::attribution`]); this file parses
//! options, prints, and writes the head and its model card.

use crate::cli::args::attribution::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use super::{find_models_file, load_encoder};
use slant::attribution::ATTRIBUTION_HEAD_FILE;
use slant::data;
use slant::encode::sha256_file;
use slant::eval::attribution as ea;
use slant::eval::version_info;
use slant::heads::tagger::{Scheme, TaggerHead};
use slant::train::tagger::TaggerOpts;

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
        return crate::cli::print_report(a.format, &r, |r| r.table());
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
    crate::cli::print_report(a.format, &r, |r| r.table())
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
        let flat = slant::attribution::labels_of(Scheme::Flat);
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
    rep: &slant::train::tagger::TaggerReport,
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
