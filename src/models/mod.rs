//! Finding and loading models: the encoder, and the heads a scoring run reads (loaded-language,
//! tuned, span, attribution and frames heads), each checked against the encoder it was trained
//! on. The CLI turns its options into [`ModelOptions`]; training and evaluation code use the
//! same loaders.

use std::path::{Path, PathBuf};

use crate::encode::{self, sha256_file, Encoder, Engine, Precision};
use crate::error::{Context, Error, Result};
use crate::heads::frames::{FramesHead, FRAMES_HEAD_FILE};
use crate::heads::loaded_spans::LOADED_SPANS_HEAD_FILE;
use crate::heads::tagger::TaggerHead;
use crate::heads::{MlpHead, SentenceFeatures, LOADED_HEAD_FILE};
use crate::pipeline::{EvidenceHead, Scorer};
use crate::vocab::FRAMES;

/// Which encoder and heads to load, and how to run them.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// Encoder folder (else `SLANT_MODEL`, else `models/encoder/all-MiniLM-L6-v2` of the checkout).
    pub model: Option<PathBuf>,
    /// Loaded-language head on the frozen encoder (else `models/loaded.safetensors`).
    pub head: Option<PathBuf>,
    /// Sentences per encoder batch.
    pub batch_size: usize,
    pub engine: Engine,
    pub precision: Precision,
    /// Loaded-language span head (else `models/loaded_spans.safetensors` when present).
    pub spans_head: Option<PathBuf>,
    pub no_spans: bool,
    pub no_attribution: bool,
    /// Use the tuned loaded-language head (`models/loaded_tuned.safetensors`).
    pub tuned: bool,
    /// A tuned loaded-language head file (implies `tuned`).
    pub tuned_head: Option<PathBuf>,
    /// Use heads trained on another encoder (a warning instead of an error).
    pub allow_other_encoder: bool,
}

/// Find `models/<name>` of the slant checkout: above the current directory or the executable.
pub fn find_models_file(name: &str) -> Option<PathBuf> {
    find_checkout_file(&Path::new("models").join(name))
}

/// Find `rel` (e.g. `eval/splitter/cases.jsonl`) of the slant checkout: above the current
/// directory or the executable.
pub fn find_checkout_file(rel: &Path) -> Option<PathBuf> {
    let mut starts = Vec::new();
    if let Ok(c) = std::env::current_dir() {
        starts.push(c);
    }
    if let Ok(e) = std::env::current_exe() {
        if let Some(p) = e.parent() {
            starts.push(p.to_path_buf());
        }
    }
    starts
        .iter()
        .flat_map(|s| s.ancestors())
        .map(|d| d.join(rel))
        .find(|p| p.is_file())
}

pub fn load_encoder(m: &ModelOptions) -> Result<Encoder> {
    let dir = encode::resolve_model_dir(m.model.as_deref())?;
    Encoder::load(
        &dir,
        crate::encode::EncoderOptions {
            engine: m.engine,
            precision: m.precision,
        },
    )
    .with_context(|| format!("loading the encoder from {}", dir.display()))
}

pub fn load_head(m: &ModelOptions) -> Result<(MlpHead, PathBuf)> {
    let path = match &m.head {
        Some(p) => p.clone(),
        None => find_models_file(LOADED_HEAD_FILE).with_context(|| {
            format!(
                "no loaded-language head: models/{LOADED_HEAD_FILE} was not found above the \
                 current directory; pass --head FILE or train one with `slant train loaded`"
            )
        })?,
    };
    let head = MlpHead::load(&path)?;
    Ok((head, path))
}

/// The span head a sentence head of kind `kind` reads evidence from (`--spans-head`, else
/// `models/loaded_spans.safetensors`), checked against the sha256 in the sentence head's
/// header: `(head, sha256, shown path)`; `None` for a mean-pooling head.
pub fn evidence_span_head(
    kind: &SentenceFeatures,
    m: &ModelOptions,
) -> Result<Option<(TaggerHead, String, String)>> {
    if kind.span_sha256().is_none() {
        return Ok(None);
    }
    let path = spans_head_path(m.spans_head.as_ref())
        .context("the loaded-language head reads span evidence")?;
    let sha = sha256_file(&path)?;
    kind.check_span_head(Some(&sha), &path.display().to_string())?;
    let head = TaggerHead::load(&path)?;
    Ok(Some((head, sha, path.display().to_string())))
}

pub fn load_scorer(m: &ModelOptions) -> Result<(Scorer, String)> {
    let encoder = load_encoder(m)?;
    let tuned = load_tuned_head(m, &encoder)?;
    // A tuned head that blends reads its partner (a frozen-encoder MLP head beside it) as the
    // MLP head; otherwise the MLP head is --head / models/loaded.safetensors.
    let (loaded, head_path) = match &tuned {
        Some((t, _, tpath)) if t.blend.is_some() => tuned_partner(t, tpath)?,
        _ => load_head(m)?,
    };
    let kind = SentenceFeatures::of(&loaded)
        .with_context(|| format!("loaded-language head {}", head_path.display()))?;
    // The encoder check first: a head of another encoder is named as such, not by its width.
    check_encoder(
        "loaded-language head",
        &head_path,
        loaded.meta.get("encoder_sha256"),
        &encoder,
        m.allow_other_encoder,
    )?;
    if loaded.input != kind.dim(encoder.hidden_size()) {
        return Err(Error::Mismatch(format!(
            "head {} expects {}-dimensional features but its features ({}) on this encoder have {}",
            head_path.display(),
            loaded.input,
            kind.name(),
            kind.dim(encoder.hidden_size())
        )));
    }
    let head_sha = match &tuned {
        Some((_, sha, _)) => sha.clone(),
        None => sha256_file(&head_path)?,
    };
    // The MLP head's span evidence is needed unless a tuned head alone gives the probability.
    let mlp_used = tuned.as_ref().is_none_or(|(t, _, _)| t.blend.is_some());
    let attribution = if m.no_attribution {
        None
    } else {
        load_attribution_head(&encoder, m.allow_other_encoder)?
    };
    if let Some(h) = &attribution {
        check_extra_layers(h, &encoder)?;
    }
    let spans = if m.no_spans {
        None
    } else {
        load_spans_head(&encoder, m.allow_other_encoder, m.spans_head.as_ref())?
    };
    // A head reading span evidence gets it from the span head of the same pass when that is
    // the head it was trained with (checked by sha256), else from its own copy (--no-spans).
    let frames = load_frames_head(&encoder, m.allow_other_encoder)?;
    let evidence = match evidence_span_head(&kind, m)
        .with_context(|| format!("loaded-language head {}", head_path.display()))?
    {
        // A tuned head alone gives the sentence probability: no evidence is needed.
        _ if !mlp_used => None,
        None => None,
        Some((head, _, _)) if spans.is_some() => {
            debug_assert_eq!(spans.as_ref(), Some(&head));
            Some(EvidenceHead::Spans)
        }
        Some((head, _, _)) => Some(EvidenceHead::Own(Box::new(head))),
    };
    Ok((
        Scorer {
            encoder,
            loaded,
            batch_size: m.batch_size.max(1),
            terms: None,
            frames,
            attribution,
            spans,
            evidence,
            tuned: tuned.map(|(t, _, _)| t),
        },
        head_sha,
    ))
}

/// A head whose header names another encoder (`want`: its `encoder_sha256`) is an
/// [`Error::WrongEncoder`] saying which encoder each is, and whether this encoder is a known
/// release at all (else its file is likely damaged or replaced); with `allow` (the
/// `--allow-other-encoder` override) it is a warning. A header without `encoder_sha256` names
/// no encoder and passes.
pub fn check_encoder(
    what: &str,
    path: &Path,
    want: Option<&String>,
    encoder: &Encoder,
    allow: bool,
) -> Result<()> {
    let Some(want) = want.filter(|w| *w != encoder.weights_sha256()) else {
        return Ok(());
    };
    let have = encoder.weights_sha256();
    let this = match encoder.known() {
        Some(k) => format!("this encoder is {} (sha256 {}…)", k.name, &have[..12]),
        None => format!(
            "this encoder's {} (sha256 {}…) is no encoder release slant knows: the file may be \
             damaged or replaced (`models/fetch` restores the default)",
            encoder.dir().join("model.safetensors").display(),
            &have[..12]
        ),
    };
    let msg = format!(
        "{what} {} was trained on encoder {}, but {this}",
        path.display(),
        encode::files::describe_sha(want),
    );
    if allow {
        eprintln!("warning: {msg}; --allow-other-encoder: its output may be meaningless");
        Ok(())
    } else {
        Err(Error::WrongEncoder(format!(
            "{msg}. Use the encoder it was trained on, train heads for this one (`slant train \
             …`), or pass --allow-other-encoder to run anyway (the output may be meaningless)"
        )))
    }
}

/// The frozen partner a blending tuned head names, beside it, checked by sha256.
pub fn tuned_partner(
    t: &crate::heads::tuned::TunedLoaded,
    tpath: &Path,
) -> Result<(MlpHead, PathBuf)> {
    let b = t
        .blend
        .as_ref()
        .context("the tuned head blends with no partner")?;
    let p = tpath
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(&b.partner_file);
    let sha = sha256_file(&p).with_context(|| {
        format!(
            "the tuned head {} blends with {}, which cannot be read; drop --tuned to \
             use the frozen head",
            tpath.display(),
            p.display()
        )
    })?;
    if sha != b.partner_sha256 {
        return Err(Error::Mismatch(format!(
            "{} is not the partner the tuned head {} was trained with (sha256 {}…, \
             expected {}…); retrain with `slant train loaded-tuned` or drop --tuned",
            p.display(),
            tpath.display(),
            &sha[..12],
            &b.partner_sha256[..12.min(b.partner_sha256.len())]
        )));
    }
    Ok((MlpHead::load(&p)?, p))
}

/// The tuned loaded-language head when asked for (`--tuned-head FILE`, or `--tuned`:
/// `models/loaded_tuned.safetensors`), its sha256 and path. It needs the fast engine, which keeps the
/// states of the layer below its tuned top during the single encoder pass.
pub fn load_tuned_head(
    m: &ModelOptions,
    encoder: &Encoder,
) -> Result<Option<(crate::heads::tuned::TunedLoaded, String, PathBuf)>> {
    if !m.tuned && m.tuned_head.is_none() {
        return Ok(None);
    }
    let path = match &m.tuned_head {
        Some(p) => p.clone(),
        None => find_models_file(crate::heads::tuned::TUNED_HEAD_FILE).with_context(|| {
            format!(
                "--tuned: models/{} was not found above the current directory; train one with \
                 `slant train loaded-tuned` or pass --tuned-head FILE",
                crate::heads::tuned::TUNED_HEAD_FILE
            )
        })?,
    };
    if encoder.engine() != crate::encode::Engine::Fast {
        return Err(Error::Mismatch(format!(
            "the tuned loaded-language head {} reruns the encoder's top layers on the states \
             the fast engine keeps: use --engine fast, or drop --tuned for the frozen head",
            path.display()
        )));
    }
    let t = crate::heads::tuned::TunedLoaded::load(&path, encoder.dir())?;
    if t.first_layer >= encoder.layers() {
        return Err(Error::Mismatch(format!(
            "tuned head {}: its top starts after layer {} but the encoder has {} layers",
            path.display(),
            t.first_layer,
            encoder.layers()
        )));
    }
    check_encoder(
        "tuned head",
        &path,
        t.meta.get("encoder_sha256"),
        encoder,
        m.allow_other_encoder,
    )?;
    let sha = sha256_file(&path)?;
    Ok(Some((t, sha, path)))
}

/// The committed frames head (`models/frames.safetensors`), if present. Its labels must be
/// slant's 14 frames.
pub fn load_frames_head(encoder: &Encoder, allow: bool) -> Result<Option<FramesHead>> {
    let Some(path) = find_models_file(FRAMES_HEAD_FILE) else {
        return Ok(None);
    };
    let head = FramesHead::load(&path)?;
    if head.labels != FRAMES {
        return Err(Error::Mismatch(format!(
            "{}: labels are not slant's 14 frames",
            path.display()
        )));
    }
    check_encoder(
        "frames head",
        &path,
        head.meta.get("encoder_sha256"),
        encoder,
        allow,
    )?;
    Ok(Some(head))
}

/// The committed attribution tagger (`models/attribution.safetensors`), if present; its labels
/// must be the attribution BIO labels.
pub fn load_attribution_head(encoder: &Encoder, allow: bool) -> Result<Option<TaggerHead>> {
    match find_models_file(crate::attribution::ATTRIBUTION_HEAD_FILE) {
        Some(path) => {
            // The labels of the head's own scheme (flat unless its header says per_role).
            let scheme = TaggerHead::load(&path)?.scheme();
            load_tagger(
                &path,
                &crate::attribution::labels_of(scheme),
                "attribution head",
                encoder,
                allow,
            )
            .map(Some)
        }
        None => Ok(None),
    }
}

/// A tagger that reads a lower encoder layer (`extra_layer` in its header) needs a layer the
/// encoder has and the fast engine, which keeps that layer's states during its single pass.
pub fn check_extra_layers(head: &TaggerHead, encoder: &Encoder) -> Result<()> {
    head.check_extra_layers(encoder.layers())?;
    if head.extra_layers().is_some() && encoder.engine() != crate::encode::Engine::Fast {
        return Err(Error::Mismatch(format!(
            "the attribution head reads the token states of encoder layer {} besides the final \
             ones, which only the fast engine keeps: use --engine fast (or --no-attribution)",
            head.meta
                .get(crate::heads::tagger::META_EXTRA_LAYER)
                .map_or("?", String::as_str)
        )));
    }
    Ok(())
}

/// The loaded-language span head: `explicit`, else `models/loaded_spans.safetensors` if present.
pub fn load_spans_head(
    encoder: &Encoder,
    allow: bool,
    explicit: Option<&PathBuf>,
) -> Result<Option<TaggerHead>> {
    let path = match explicit {
        Some(p) => p.clone(),
        None => match find_models_file(LOADED_SPANS_HEAD_FILE) {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    load_tagger(
        &path,
        &crate::heads::loaded_spans::labels(),
        "span head",
        encoder,
        allow,
    )
    .map(Some)
}

/// Load a token tagger, check its labels and the encoder it was trained on ([`check_encoder`]).
pub fn load_tagger(
    path: &Path,
    labels: &[String],
    what: &str,
    encoder: &Encoder,
    allow: bool,
) -> Result<TaggerHead> {
    let head = TaggerHead::load(path)?;
    if head.labels != labels {
        return Err(Error::Mismatch(format!(
            "{}: labels are not the {what}'s {labels:?}",
            path.display()
        )));
    }
    check_encoder(what, path, head.meta.get("encoder_sha256"), encoder, allow)?;
    Ok(head)
}

/// The span head at `explicit`, else `models/loaded_spans.safetensors` of the checkout.
pub fn spans_head_path(explicit: Option<&PathBuf>) -> Result<PathBuf> {
    match explicit {
        Some(p) => Ok(p.clone()),
        None => find_models_file(LOADED_SPANS_HEAD_FILE).with_context(|| {
            format!(
                "no span head: models/{LOADED_SPANS_HEAD_FILE} was not found above the current \
                 directory; pass --spans-head FILE or train one with `slant train loaded-spans`"
            )
        }),
    }
}
