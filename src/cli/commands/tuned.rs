//! `slant train loaded-tuned`: the tuned loaded-language head (LoRA adapters on the encoder's
//! top layers, [`slant::train::lora`]; file format in [`slant::heads::tuned`]).

use crate::cli::args::tuned::*;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::load_encoder;
use slant::data::{self, LabelledSentence};
use slant::encode::{sha256_file, Encoder};
use slant::eval::loaded::{ece_of, labels, metrics_at};
use slant::eval::{calibrate, version_info, DataFile};
use slant::heads::lora::Lora;
use slant::heads::math::sigmoid;
use slant::heads::tuned::TunedLoaded;
use slant::train::lora::{pretrained, LoraOpts};

/// Figures of one evaluation, for the card and stderr.
struct Fig {
    name: String,
    n: usize,
    macro_f1: f64,
    f1_pos: f64,
    ece: f64,
}

fn fig(name: &str, p: &[f32], y: &[bool], t: f32) -> Fig {
    let m = metrics_at(p, y, t);
    Fig {
        name: name.into(),
        n: y.len(),
        macro_f1: m.macro_f1,
        f1_pos: m.positive.f1,
        ece: ece_of(p, y),
    }
}

/// Bottom states (after `first` layers) of `rows`.
fn states(
    enc: &Encoder,
    rows: &[LabelledSentence],
    first: usize,
    bs: usize,
) -> Result<Vec<Vec<f32>>> {
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    Ok(enc.states_after(&texts, first, bs)?)
}

fn refs(x: &[Vec<f32>]) -> Vec<&[f32]> {
    x.iter().map(Vec::as_slice).collect()
}

/// What the partner and the tuned model are calibrated on, and the evaluation sets.
struct Split<'a> {
    /// Development states (tuned input) and labels.
    x_dev: Vec<&'a [f32]>,
    y_dev: Vec<bool>,
    /// The partner's features of the same development sentences.
    f_dev: Vec<Vec<f32>>,
}

pub fn train_tuned(a: TrainTunedArgs) -> Result<i32> {
    let t0 = Instant::now();
    let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
    let enc = load_encoder(&a.model)?;
    if enc.engine() != slant::encode::Engine::Fast {
        bail!("slant train loaded-tuned needs the fast engine (--engine fast)");
    }
    if a.layers == 0 || a.layers > enc.layers() {
        bail!(
            "--layers {}: the encoder has {} layers",
            a.layers,
            enc.layers()
        );
    }
    let first = enc.layers() - a.layers;
    let bs = a.model.batch_size;
    let alpha = a.alpha.unwrap_or(2.0 * a.rank as f32);
    let opts = LoraOpts {
        epochs: a.epochs,
        lr: a.lr,
        lr_head: a.lr_head,
        seed: a.seed,
        ..LoraOpts::default()
    };
    let (tr, tr_p) = data::anno_lexical(&data_dir, "train")?;
    let (dv, dv_p) = data::anno_lexical(&data_dir, "dev")?;
    let (te, te_p) = data::anno_lexical(&data_dir, "test")?;
    let (babe, babe_p) = data::babe_sg2(&data_dir)?;
    let files: Vec<DataFile> = [&tr_p, &dv_p, &te_p, &babe_p]
        .iter()
        .map(|p| DataFile::new(&data_dir, p))
        .collect::<slant::Result<_>>()?;

    // The span head whose evidence the partner reads (never trained on BABE).
    let span_path = match &a.span_evidence {
        Some(p) => p.clone(),
        None => super::find_models_file(
            slant::heads::loaded_spans::LOADED_SPANS_HEAD_FILE,
        )
        .context("no span head for the partner's evidence (models/loaded_spans.safetensors); pass --span-evidence or --no-blend")?,
    };
    let span = slant::heads::tagger::TaggerHead::load(&span_path)?;
    if slant::train::loaded_spans::saw_babe(&span) {
        bail!(
            "{}: this span head was trained on BABE; the partner needs one trained with --no-babe",
            span_path.display()
        );
    }
    let span_sha = sha256_file(&span_path)?;
    let ev = Some((&span, span_sha.as_str()));
    let feats = |rows: &[LabelledSentence], what: &str| -> Result<Vec<Vec<f32>>> {
        Ok(slant::eval::loaded::token_features(
            &enc,
            rows,
            bs,
            what,
            slant::heads::Pooling::Mean,
            ev,
        )?)
    };

    // 1. One epoch on anno-lexical train (cached).
    eprintln!(
        "slant train loaded-tuned: one epoch on anno-lexical train ({} sentences)",
        tr.len()
    );
    let start = pretrained(&enc, first, a.layers, a.rank, alpha, &tr, &opts, bs)?;
    let x_dv = states(&enc, &dv, first, bs)?;
    let x_te = states(&enc, &te, first, bs)?;
    let x_babe = states(&enc, &babe, first, bs)?;
    let (y_dv, y_te, y_babe) = (labels(&dv), labels(&te), labels(&babe));

    // 2. The model and the partner's training data.
    let fold = slant::train::stratified_folds(&y_babe, 10, a.seed);
    let (m, split, partner_train, trained_on) = if a.with_babe {
        // BABE SG2: a seeded stratified 10% picks epoch, temperatures and threshold.
        let (mut xtr, mut ytr, mut xdv, mut ydv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, &f) in fold.iter().enumerate() {
            if f == 0 {
                xdv.push(x_babe[i].as_slice());
                ydv.push(y_babe[i]);
            } else {
                xtr.push(x_babe[i].as_slice());
                ytr.push(y_babe[i]);
            }
        }
        eprintln!(
            "  training on {} BABE sentences ({} for development), soup of {}",
            xtr.len(),
            xdv.len(),
            a.soup
        );
        let (m, _, _) = slant::eval::tuned::fit_lora_soup(
            &start,
            (&xtr, &ytr),
            (&xdv, &ydv),
            &opts,
            0,
            a.soup,
        )?;
        let fb = feats(&babe, "BABE SG2")?;
        let (mut ftr, mut fytr, mut fdv) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &f) in fold.iter().enumerate() {
            if f == 0 {
                fdv.push(fb[i].clone());
            } else {
                ftr.push(fb[i].clone());
                fytr.push(y_babe[i]);
            }
        }
        ftr.extend(feats(&tr, "anno-lexical train")?);
        fytr.extend(labels(&tr));
        (
            m,
            Split {
                x_dev: xdv,
                y_dev: ydv,
                f_dev: fdv,
            },
            Some((ftr, fytr)),
            "one epoch on anno-lexical train, then BABE SG2 minus a stratified 10% development \
             split (soup of adapter sets); calibrated on that 10%",
        )
    } else {
        // Licence-clean (anno-lexical, MIT, only): the one-epoch model, calibrated on
        // anno-lexical dev; the partner is the committed frozen head.
        (
            start.clone(),
            Split {
                x_dev: refs(&x_dv),
                y_dev: y_dv.clone(),
                f_dev: feats(&dv, "anno-lexical dev")?,
            },
            None,
            "one epoch on anno-lexical train (BABE unseen); calibrated on anno-lexical dev",
        )
    };
    let zt_dev = m.logits(&split.x_dev, 64);
    let (temperature, threshold_t) = calibrate(&zt_dev, &split.y_dev);

    // 3. The partner and the blend.
    let mut partner_figs = Vec::new();
    let (blend, threshold, partner) = if a.no_blend {
        (None, threshold_t, None)
    } else {
        let mut head = match partner_train {
            Some((ftr, fytr)) => {
                let mut h = slant::eval::loaded::train_head(
                    &ftr,
                    &fytr,
                    Some((&split.f_dev, &split.y_dev)),
                    256,
                    a.seed,
                    &slant::eval::loaded::HeadTraining::default(),
                )?;
                slant::heads::SentenceFeatures::MeanSpanEvidence {
                    span_sha256: span_sha.clone(),
                }
                .write(&mut h.meta);
                h.meta
                    .insert("encoder_sha256".into(), enc.weights_sha256().to_string());
                h.meta.insert(
                    "trained_on".into(),
                    "BABE SG2 minus a stratified 10% development split, plus anno-lexical train \
                     (the partner of the tuned head)"
                        .into(),
                );
                h.meta.insert("seed".into(), a.seed.to_string());
                h
            }
            None => {
                let p = a
                    .partner
                    .clone()
                    .or_else(|| super::find_models_file(slant::heads::LOADED_HEAD_FILE));
                let p = p.context("no frozen head to blend with (models/loaded.safetensors)")?;
                let h = slant::heads::MlpHead::load(&p)?;
                let kind = slant::heads::SentenceFeatures::of(&h)?;
                if kind.span_sha256() != Some(span_sha.as_str()) {
                    bail!(
                        "{}: the partner must read the evidence of {} (its header names {:?})",
                        p.display(),
                        span_path.display(),
                        kind.span_sha256()
                    );
                }
                h
            }
        };
        let zm = slant::eval::loaded::logits(&head, &split.f_dev);
        let (t_m, thr_m) = calibrate(&zm, &split.y_dev);
        if head
            .meta
            .get("trained_on")
            .is_some_and(|t| t.contains("partner"))
        {
            head.temperature = t_m;
            head.threshold = thr_m;
        }
        let zb = slant::heads::tuned::blend_logits(&zt_dev, temperature, &zm, t_m);
        let (t_b, thr) = calibrate(&zb, &split.y_dev);
        // The partner lives beside the tuned head: a trained one is written there; the
        // committed frozen head is named as it is.
        let partner_path = if a.with_babe {
            head.save(&a.blend_out)?;
            a.blend_out.clone()
        } else {
            a.partner
                .clone()
                .or_else(|| super::find_models_file(slant::heads::LOADED_HEAD_FILE))
                .expect("found above")
        };
        let pte = slant::eval::loaded::probs(&head, &feats(&te, "anno-lexical test")?);
        partner_figs.push(fig(
            "partner alone: anno-lexical test",
            &pte,
            &y_te,
            head.threshold,
        ));
        (
            Some(slant::heads::tuned::Blend {
                partner_file: partner_path
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                partner_sha256: sha256_file(&partner_path)?,
                partner_temperature: t_m,
                temperature: t_b,
            }),
            thr,
            Some(head),
        )
    };

    let mut meta: HashMap<String, String> = HashMap::new();
    meta.insert("encoder_sha256".into(), enc.weights_sha256().to_string());
    meta.insert("trained_on".into(), trained_on.into());
    meta.insert("seed".into(), a.seed.to_string());
    meta.insert(
        "options".into(),
        serde_json::to_string(&opts).context("options")?,
    );
    meta.insert(
        "data".into(),
        serde_json::to_string(&files).context("data files")?,
    );
    meta.insert("slant_version".into(), version_info().0);
    TunedLoaded::save(
        &m,
        first,
        temperature,
        threshold,
        blend.as_ref(),
        &meta,
        &a.out,
    )?;

    // 4. The files as shipped (fp16 adapters), read back and evaluated.
    let shipped = TunedLoaded::load(&a.out, enc.dir())?;
    let pp = |x: &[&[f32]], rows: &[LabelledSentence], what: &str| -> Result<Vec<f32>> {
        let zt = shipped.logits(x)?;
        let zm = match &partner {
            Some(h) => Some(slant::eval::loaded::logits(h, &feats(rows, what)?)),
            None => None,
        };
        Ok(shipped.combine(&zt, zm.as_deref())?)
    };
    let what = if blend.is_some() {
        "blend"
    } else {
        "tuned head"
    };
    let mut figs = vec![fig(
        &format!("{what}: anno-lexical test"),
        &pp(&refs(&x_te), &te, "anno-lexical test")?,
        &y_te,
        threshold,
    )];
    if a.with_babe {
        let dev_rows: Vec<LabelledSentence> = fold
            .iter()
            .zip(&babe)
            .filter(|(f, _)| **f == 0)
            .map(|(_, r)| r.clone())
            .collect();
        figs.push(fig(
            &format!("{what}: BABE SG2 development 10% (chose epoch, temperatures, threshold; not held out)"),
            &pp(&split.x_dev, &dev_rows, "BABE SG2 dev")?,
            &split.y_dev,
            threshold,
        ));
    } else {
        figs.push(fig(
            &format!("{what}: BABE SG2, all (zero-shot: BABE unseen)"),
            &pp(&refs(&x_babe), &babe, "BABE SG2")?,
            &y_babe,
            threshold,
        ));
        figs.push(fig(
            "tuned head alone: BABE SG2, all (zero-shot)",
            &m.logits(&refs(&x_babe), 64)
                .iter()
                .map(|&z| sigmoid(z / temperature))
                .collect::<Vec<_>>(),
            &y_babe,
            threshold_t,
        ));
    }
    figs.extend(partner_figs);
    let sha = sha256_file(&a.out)?;
    for f in &figs {
        eprintln!(
            "  {}: n {} macro-F1 {:.4} F1(loaded) {:.4} ECE {:.4}",
            f.name, f.n, f.macro_f1, f.f1_pos, f.ece
        );
    }
    write_card(&a, &shipped, &m, &figs, &files, &sha, trained_on)?;
    eprintln!(
        "wrote {} ({} bytes, sha256 {}) and {} in {:.0}s",
        a.out.display(),
        std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0),
        &sha[..12],
        a.card.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(0)
}

fn write_card(
    a: &TrainTunedArgs,
    t: &TunedLoaded,
    m: &Lora,
    figs: &[Fig],
    files: &[DataFile],
    sha: &str,
    trained_on: &str,
) -> Result<()> {
    let mut s = String::new();
    s += "# Tuned loaded-language head (`models/loaded_tuned.safetensors`)\n\n";
    s += "Written by `slant train loaded-tuned`; regenerate with\n\n";
    s += &format!(
        "    slant train loaded-tuned --data DIR --seed {} --layers {} --rank {}{}\n\n",
        a.seed,
        a.layers,
        a.rank,
        if a.with_babe {
            format!(" --with-babe --soup {} --epochs {}", a.soup, a.epochs)
        } else {
            String::new()
        }
    );
    s += &format!(
        "**What it is.** Rank-{} LoRA adapters (alpha {}, {} parameters, stored fp16) on the six \
         weight matrices (query, key, value, attention output, feed-forward in and out) of the \
         top {} layers of all-MiniLM-L6-v2, and a logistic head on the mean-pooled output of \
         those layers. The pretrained weights, biases and LayerNorms are not changed: they are \
         read from the encoder at load time and the adapters are merged into them. At scoring \
         time the single encoder pass keeps each token's state after layer {}, and this head \
         reruns the top {} layers with the merged weights on those states (the other heads read \
         the frozen encoder). Tuned logit temperature {:.4}.",
        m.rank,
        m.alpha,
        m.adapter_params(),
        a.layers,
        t.first_layer,
        a.layers,
        t.temperature,
    );
    match &t.blend {
        Some(b) => {
            s += &format!(
                " It is **blended** with the frozen-encoder head `models/{}` (sha256 `{}`; mean \
                 pooling plus span evidence): probability = sigmoid(((z_tuned / {:.4}) + \
                 (z_frozen / {:.4})) / 2 / {:.4}); loaded when >= {:.4}.",
                b.partner_file,
                b.partner_sha256,
                t.temperature,
                b.partner_temperature,
                b.temperature,
                t.threshold
            )
        }
        None => s += &format!(" Loaded when sigmoid(z / T) >= {:.4}.", t.threshold),
    }
    s += &format!(" File sha256 `{sha}`.\n\n**Trained on**: {trained_on}.\n\n");
    s += "**Training** (seeded, CPU, `src/train/lora.rs`): fresh adapters (peft's \
          initialisation: A uniform in ±1/√in, B = 0) and head; one epoch on all of \
          anno-lexical train (LLM-annotated sentences, MIT), AdamW (weight decay 0.01), learning \
          rates with 10% warm-up and linear decay, batches of 32, dropout 0.1, gradient norm \
          clipped at 1 (cached under the feature cache). Temperatures are fitted and the \
          threshold chosen on the development sentences named above.\n\n";
    s += if a.with_babe {
        "**Data** (sha256):\n\n"
    } else {
        "**Data** (sha256; BABE SG2 is read only for the zero-shot figure):\n\n"
    };
    for f in files {
        s += &format!("- `{}` `{}`\n", f.path, f.sha256);
    }
    s += "\n**Figures of the shipped files** (fp16 adapters, read back):\n\n";
    s += "| set | n | macro-F1 | F1 (loaded) | ECE |\n|---|---|---|---|---|\n";
    for f in figs {
        s += &format!(
            "| {} | {} | {:.3} | {:.3} | {:.3} |\n",
            f.name, f.n, f.macro_f1, f.f1_pos, f.ece
        );
    }
    s += "\n**BABE cross-validation of the recipe** (each fold trains on the other folds only): \
          `slant eval loaded --data DIR --dataset babe --cv 5 --tune-layers 3 --tune-lora 16 \
          --tune-pretrain-anno 40000 --tune-soup 3 --tune-blend-frozen --span-evidence \
          models/loaded_spans.safetensors`; the figure is in `eval/RESULTS.md` and the README.\n";
    write(&a.card, &s)
}

fn write(path: &Path, s: &str) -> Result<()> {
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}
