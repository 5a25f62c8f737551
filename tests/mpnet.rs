//! all-mpnet-base-v2 in slant's fast engine against the upstream implementation: pooled vectors
//! of known sentences (`tests/fixtures/mpnet_reference.json`, made once with Hugging Face
//! transformers' `MPNetModel` by `scripts/mpnet_reference.py`) must agree within 1e-4 in fp32.
//!
//! Needs the accurate encoder (`models/fetch --accurate`, 404 MB); without it the tests say so
//! and skip.

use std::path::{Path, PathBuf};

use slant::encode::{Encoder, EncoderOptions, Engine, Precision};

fn model_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/encoder/all-mpnet-base-v2");
    if dir.join("model.safetensors").is_file() {
        Some(dir)
    } else {
        eprintln!("skipped: no accurate encoder (run models/fetch --accurate)");
        None
    }
}

struct Reference {
    texts: Vec<String>,
    tokens: Vec<usize>,
    vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mpnet_reference.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let rows = v["sentences"].as_array().unwrap();
    Reference {
        texts: rows
            .iter()
            .map(|r| r["text"].as_str().unwrap().to_string())
            .collect(),
        tokens: rows
            .iter()
            .map(|r| r["tokens"].as_u64().unwrap() as usize)
            .collect(),
        vectors: rows
            .iter()
            .map(|r| {
                r["vector"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect(),
    }
}

/// `v` scaled to unit length (the reference is sentence-transformers' output, normalised; slant's
/// pooled vector is the plain mean, normalised by the heads that read it).
fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// The reference sentences encoded by slant at `precision` in batches of `batch`, beside the
/// reference; `None` (after a skip message) without the accurate encoder.
fn encoded(precision: Precision, batch: usize) -> Option<(Reference, Vec<Vec<f32>>)> {
    let dir = model_dir()?;
    let enc = Encoder::load(
        &dir,
        EncoderOptions {
            engine: Engine::Fast,
            precision,
        },
    )
    .unwrap();
    assert_eq!(enc.hidden_size(), 768);
    assert_eq!(enc.layers(), 12);
    let r = reference();
    let texts: Vec<&str> = r.texts.iter().map(String::as_str).collect();
    let (out, _) = enc.encode(&texts, batch).unwrap();
    for (i, e) in out.iter().enumerate() {
        assert_eq!(e.n_tokens, r.tokens[i], "token count of {:?}", r.texts[i]);
        assert_eq!(e.pooled.len(), r.vectors[i].len());
    }
    Some((r, out.iter().map(|e| unit(&e.pooled)).collect()))
}

/// Largest absolute difference between slant's pooled vectors and the reference's.
fn worst_difference(precision: Precision, batch: usize) -> Option<f32> {
    let (r, got) = encoded(precision, batch)?;
    let mut worst = 0.0f32;
    for ((v, want), n) in got.iter().zip(&r.vectors).zip(&r.tokens) {
        let d = v
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("  {n:>3} tokens: max abs difference {d:e}");
        worst = worst.max(d);
    }
    Some(worst)
}

#[test]
fn fp32_pooled_vectors_match_the_upstream_implementation() {
    for batch in [1, 8] {
        let Some(worst) = worst_difference(Precision::Fp32, batch) else {
            return;
        };
        eprintln!("mpnet fp32, batch {batch}: max abs difference to transformers {worst:e}");
        assert!(worst < 1e-4, "batch {batch}: max abs difference {worst}");
    }
}

#[test]
fn int8_pooled_vectors_stay_close_to_the_upstream_implementation() {
    let Some((r, got)) = encoded(Precision::Int8, 8) else {
        return;
    };
    for (i, (v, want)) in got.iter().zip(&r.vectors).enumerate() {
        let cos: f32 = v.iter().zip(want).map(|(a, b)| a * b).sum();
        eprintln!(
            "mpnet int8: cosine to transformers {cos:.5} ({:?})",
            r.texts[i]
        );
        assert!(cos > 0.98, "{:?}: cosine {cos}", r.texts[i]);
    }
}

#[test]
fn the_candle_engine_refuses_mpnet_with_a_clear_error() {
    let Some(dir) = model_dir() else {
        return;
    };
    let err = Encoder::load(&dir, EncoderOptions::engine(Engine::Candle)).unwrap_err();
    assert!(err.to_string().contains("--engine fast"), "{err}");
}
