//! The tuned loaded-language head: low-rank adapters on the encoder's top layers
//! ([`super::lora`]; trained by `crate::train::lora`) plus a logistic head on the mean-pooled
//! output.
//!
//! The file stores only the adapters (fp16) and the head (f32); the pretrained top layers come
//! from the encoder's own `model.safetensors` at load time, and the adapters are merged into them
//! once (`W + s·B·A`). At scoring time the encoder's single pass keeps each token's state after
//! layer `first_layer` ([`crate::encode::TokenEncoding::branch`]) and this head runs its merged
//! copy of the top layers on those states: the other heads keep reading the frozen encoder's
//! final states.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::file::HeadFile;
use super::lora::{serialize, FastTop, Lora, TunedTop, LAYER_TENSORS, TARGETS};
use crate::encode::fast::LayerStack;
use crate::encode::Branch;
use crate::heads::math::sigmoid;
use crate::{Error, Result};

/// The committed tuned head's file name under `models/`.
pub const TUNED_HEAD_FILE: &str = "loaded_tuned.safetensors";

/// The `format` of a tuned loaded head's header.
pub const FORMAT: &str = "slant-loaded-lora-v1";

/// A loaded tuned head, adapters merged.
#[derive(Debug, Clone)]
pub struct TunedLoaded {
    /// Number of frozen encoder layers below the tuned top (its input is the state after them).
    pub first_layer: usize,
    /// The top layers with the adapters merged in, and the logistic head.
    pub top: FastTop,
    /// `top`'s layers packed for the fast engine's inference kernels (what scoring runs).
    runner: LayerStack,
    /// Temperature dividing the logit (calibration).
    pub temperature: f32,
    /// Decision threshold on the calibrated probability.
    pub threshold: f32,
    /// The blend with a frozen-encoder partner head, when the head was trained with one; then
    /// `threshold` applies to the blend's probability.
    pub blend: Option<Blend>,
    /// The rest of the header (provenance: data, seed, options).
    pub meta: BTreeMap<String, String>,
}

/// How a tuned head blends with its partner, a frozen-encoder [`super::MlpHead`] in its own
/// file: probability `σ(blend_logit(z_t, temperature_t, z_m, partner_temperature) / temperature)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Blend {
    /// The partner's file name, looked up beside the tuned head.
    pub partner_file: String,
    /// The partner file's sha256 (checked at load).
    pub partner_sha256: String,
    pub partner_temperature: f32,
    /// Temperature of the blended logit.
    pub temperature: f32,
}

impl Blend {
    fn write(&self, m: &mut HashMap<String, String>) {
        m.insert("blend_partner".into(), self.partner_file.clone());
        m.insert("blend_partner_sha256".into(), self.partner_sha256.clone());
        m.insert(
            "blend_partner_temperature".into(),
            self.partner_temperature.to_string(),
        );
        m.insert("blend_temperature".into(), self.temperature.to_string());
    }

    fn read(f: &HeadFile) -> Result<Option<Self>> {
        let Some(file) = f.meta_opt("blend_partner") else {
            return Ok(None);
        };
        Ok(Some(Self {
            partner_file: file.to_string(),
            partner_sha256: f.meta("blend_partner_sha256")?.to_string(),
            partner_temperature: f.meta_parse("blend_partner_temperature")?,
            temperature: f.meta_parse("blend_temperature")?,
        }))
    }
}

/// The blend of the tuned head with a frozen-encoder partner head: the mean of their
/// temperature-scaled logits, `(z_t / t_t + z_m / t_m) / 2` (the blend has its own temperature
/// and threshold on top).
pub fn blend_logit(z_t: f32, t_t: f32, z_m: f32, t_m: f32) -> f32 {
    0.5 * (z_t / t_t + z_m / t_m)
}

/// [`blend_logit`] over two logit vectors of the same sentences.
pub fn blend_logits(z_t: &[f32], t_t: f32, z_m: &[f32], t_m: f32) -> Vec<f32> {
    z_t.iter()
        .zip(z_m)
        .map(|(&a, &m)| blend_logit(a, t_t, m, t_m))
        .collect()
}

/// Name of an adapter tensor in the file.
fn name(layer: usize, target: usize, which: &str) -> String {
    let t = LAYER_TENSORS[TARGETS[target]].trim_end_matches(".weight");
    format!("lora.{layer}.{t}.{which}")
}

impl TunedLoaded {
    /// Write `lora` (adapters in fp16, head in f32) with its calibration to `path`. `meta` is
    /// provenance copied into the header.
    pub fn save(
        lora: &Lora,
        first_layer: usize,
        temperature: f32,
        threshold: f32,
        blend: Option<&Blend>,
        meta: &HashMap<String, String>,
        path: &Path,
    ) -> Result<()> {
        let mut m = meta.clone();
        if let Some(b) = blend {
            b.write(&mut m);
        }
        Self::save_as(
            lora,
            first_layer,
            temperature,
            threshold,
            &m,
            path,
            DType::F16,
        )
    }

    /// [`Self::save`] with the adapters in `dtype` (F32 for a training cache that must restore
    /// them exactly).
    pub fn save_as(
        lora: &Lora,
        first_layer: usize,
        temperature: f32,
        threshold: f32,
        meta: &HashMap<String, String>,
        path: &Path,
        dtype: DType,
    ) -> Result<()> {
        let dev = Device::Cpu;
        let r = lora.rank;
        let mut tensors: Vec<(String, Tensor)> = Vec::new();
        for l in 0..lora.a.len() {
            for j in 0..TARGETS.len() {
                let inp = lora.a[l][j].len() / r;
                let out = lora.b[l][j].len() / r;
                let a = Tensor::from_vec(lora.a[l][j].clone(), (r, inp), &dev)?;
                let b = Tensor::from_vec(lora.b[l][j].clone(), (out, r), &dev)?;
                tensors.push((name(first_layer + l, j, "a"), a.to_dtype(dtype)?));
                tensors.push((name(first_layer + l, j, "b"), b.to_dtype(dtype)?));
            }
        }
        let h = lora.base.head_w.len();
        tensors.push((
            "head.weight".into(),
            Tensor::from_vec(lora.base.head_w.clone(), h, &dev)?,
        ));
        tensors.push((
            "head.bias".into(),
            Tensor::from_vec(vec![lora.base.head_b], 1, &dev)?,
        ));
        let mut m = meta.clone();
        m.insert("format".into(), FORMAT.into());
        m.insert("first_layer".into(), first_layer.to_string());
        m.insert("layers".into(), lora.a.len().to_string());
        m.insert("rank".into(), r.to_string());
        m.insert("alpha".into(), lora.alpha.to_string());
        m.insert("temperature".into(), temperature.to_string());
        m.insert("threshold".into(), threshold.to_string());
        let bytes = serialize(&tensors, &m)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
    }

    /// Read the adapters at `path` and merge them into the top layers of the encoder in
    /// `encoder_dir` (whose `model.safetensors` supplies the pretrained weights).
    pub fn load(path: &Path, encoder_dir: &Path) -> Result<Self> {
        let (lora, first_layer, temperature, threshold, mut meta) =
            Self::load_lora(path, encoder_dir)?;
        let blend = Blend::read(&HeadFile::open(path)?)?;
        meta.retain(|k, _| !k.starts_with("blend_"));
        let top = lora.merged();
        let runner =
            LayerStack::from_tensors(&top.layers, top.hidden, top.heads, top.inter, top.eps)?;
        Ok(Self {
            first_layer,
            top,
            runner,
            temperature,
            threshold,
            blend,
            meta,
        })
    }

    /// The `trained_on` note of the tuned head file at `path` (`None` when it is not one).
    pub fn trained_on(path: &Path) -> Option<String> {
        let f = HeadFile::open(path).ok()?;
        f.require_format(FORMAT, "tuned loaded-language head")
            .ok()?;
        f.meta_opt("trained_on").map(str::to_string)
    }

    /// Final probabilities from the tuned logits `z_t` and, when blending, the partner's
    /// logits `z_m` (same order; required iff [`Self::blend`] is set).
    pub fn combine(&self, z_t: &[f32], z_m: Option<&[f32]>) -> Result<Vec<f32>> {
        match (&self.blend, z_m) {
            (None, _) => Ok(z_t.iter().map(|&z| sigmoid(z / self.temperature)).collect()),
            (Some(b), Some(zm)) if zm.len() == z_t.len() => {
                Ok(
                    blend_logits(z_t, self.temperature, zm, b.partner_temperature)
                        .into_iter()
                        .map(|z| sigmoid(z / b.temperature))
                        .collect(),
                )
            }
            (Some(_), _) => Err(Error::Mismatch(
                "the tuned head blends with a partner head whose logits are missing".into(),
            )),
        }
    }

    /// The adapters at `path` on the encoder's pretrained top layers, unmerged (to train on):
    /// the model, its first layer, temperature, threshold and provenance.
    #[allow(clippy::type_complexity)]
    pub fn load_lora(
        path: &Path,
        encoder_dir: &Path,
    ) -> Result<(Lora, usize, f32, f32, BTreeMap<String, String>)> {
        let f = HeadFile::open(path)?;
        f.require_format(FORMAT, "tuned loaded-language head")?;
        let first_layer: usize = f.meta_parse("first_layer")?;
        let k: usize = f.meta_parse("layers")?;
        let rank: usize = f.meta_parse("rank")?;
        let alpha: f32 = f.meta_parse("alpha")?;
        let temperature: f32 = f.meta_parse("temperature")?;
        let threshold: f32 = f.meta_parse("threshold")?;
        if rank == 0 || k == 0 {
            return Err(f.error("rank and layers must be at least 1"));
        }
        let base = TunedTop::from_encoder(encoder_dir, first_layer, k)
            .map_err(|e| f.error(format!("its encoder's top layers: {e}")))?
            .to_fast()?;
        let (h, inter) = (base.hidden, base.inter);
        let mut lora = Lora::new(base, rank, alpha, 0)?;
        for l in 0..k {
            for (j, &t) in TARGETS.iter().enumerate() {
                let (out, inp) = match t {
                    10 => (inter, h),
                    12 => (h, inter),
                    _ => (h, h),
                };
                lora.a[l][j] = f.tensor_f16_or_f32(&name(first_layer + l, j, "a"), &[rank, inp])?;
                lora.b[l][j] = f.tensor_f16_or_f32(&name(first_layer + l, j, "b"), &[out, rank])?;
            }
        }
        lora.base.head_w = f.tensor_f32("head.weight", &[h])?;
        lora.base.head_b = f.tensor_f32("head.bias", &[1])?[0];
        Ok((
            lora,
            first_layer,
            temperature,
            threshold,
            f.provenance(&[
                "format",
                "first_layer",
                "layers",
                "rank",
                "alpha",
                "temperature",
                "threshold",
            ]),
        ))
    }

    /// Raw logits of sentences given by their token states after layer `first_layer` (each
    /// `n_tokens × hidden`, at least one token), in input order: the merged top layers run
    /// through the fast engine's inference kernels, 64 sentences at a time.
    pub fn logits(&self, states: &[&[f32]]) -> Result<Vec<f32>> {
        let pooled = self.runner.forward_pooled(states, 64)?;
        Ok(self.logits_of_pooled(pooled.chunks_exact(self.top.hidden)))
    }

    /// What the encoder's single pass runs for this head ([`Branch::Pooled`]): the merged top
    /// on the states after `first_layer`, pooled. Its output goes to [`Self::logits_of_pooled`].
    pub fn branch(&self) -> Branch<'_> {
        Branch::Pooled(self.first_layer, &self.runner)
    }

    /// Raw logits of the head on the merged top's mean-pooled outputs (`hidden` floats each).
    pub fn logits_of_pooled<'a>(&self, pooled: impl IntoIterator<Item = &'a [f32]>) -> Vec<f32> {
        pooled.into_iter().map(|p| self.top.head_logit(p)).collect()
    }

    /// Calibrated probabilities `σ(z / T)` of the tuned head alone, in input order.
    pub fn probs(&self, states: &[&[f32]]) -> Result<Vec<f32>> {
        Ok(self
            .logits(states)?
            .into_iter()
            .map(|z| sigmoid(z / self.temperature))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_merges_the_adapters() {
        let Some(dir) = crate::encode::fetched_encoder_dir() else {
            return;
        };
        let base = TunedTop::from_encoder(&dir, 4, 2)
            .unwrap()
            .to_fast()
            .unwrap();
        let mut lora = Lora::new(base, 4, 8.0, 3).unwrap();
        let mut rng = crate::stats::rng(5);
        use rand::Rng;
        for v in lora.b.iter_mut().flat_map(|l| l.iter_mut().flatten()) {
            *v = rng.gen_range(-0.05..0.05);
        }
        lora.base.head_b = 0.25;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("t.safetensors");
        let meta = HashMap::from([
            ("seed".to_string(), "3".to_string()),
            ("trained_on".to_string(), "BABE SG2 minus 10%".to_string()),
        ]);
        TunedLoaded::save(&lora, 4, 1.5, 0.4, None, &meta, &p).unwrap();
        let t = TunedLoaded::load(&p, &dir).unwrap();
        assert_eq!((t.first_layer, t.temperature, t.threshold), (4, 1.5, 0.4));
        assert_eq!(t.meta.get("seed").map(String::as_str), Some("3"));
        // The merged weights equal the trained ones up to fp16 rounding of the adapters.
        let want = lora.merged();
        let mut worst = 0f32;
        for (a, b) in want
            .layers
            .iter()
            .flatten()
            .zip(t.top.layers.iter().flatten())
        {
            for (x, y) in a.iter().zip(b) {
                worst = worst.max((x - y).abs());
            }
        }
        assert!(worst < 1e-3, "merged weights differ by {worst}");
        assert!(worst > 0.0 || lora.b.iter().flatten().flatten().all(|v| *v == 0.0));
        assert_eq!(t.top.head_b, 0.25);
        assert!(t.blend.is_none());
        // With a blend: its parameters round-trip and combine() uses them.
        let b = Blend {
            partner_file: "p.safetensors".into(),
            partner_sha256: "ab".into(),
            partner_temperature: 2.0,
            temperature: 0.5,
        };
        TunedLoaded::save(&lora, 4, 1.5, 0.4, Some(&b), &meta, &p).unwrap();
        let tb = TunedLoaded::load(&p, &dir).unwrap();
        assert_eq!(tb.blend.as_ref(), Some(&b));
        assert!(!tb.meta.contains_key("blend_partner"));
        let got = tb.combine(&[3.0], Some(&[-4.0])).unwrap()[0];
        let want_p = sigmoid((3.0 / 1.5 + -4.0 / 2.0) / 2.0 / 0.5);
        assert!((got - want_p).abs() < 1e-6);
        assert!(tb.combine(&[3.0], None).is_err());
        assert!((t.combine(&[3.0], None).unwrap()[0] - sigmoid(2.0)).abs() < 1e-6);
        // Logits on random states agree closely.
        let states: Vec<Vec<f32>> = (3..6)
            .map(|n| (0..n * 384).map(|_| rng.gen_range(-1.0..1.0)).collect())
            .collect();
        let refs: Vec<&[f32]> = states.iter().map(Vec::as_slice).collect();
        let z0 = crate::train::tune::sorted_logits(&want, &refs, 8);
        let z1 = t.logits(&refs).unwrap();
        for (a, b) in z0.iter().zip(&z1) {
            assert!((a - b).abs() < 1e-2, "{a} vs {b}");
        }
        // Another head kind is refused by name.
        let bad = tmp.path().join("x.safetensors");
        crate::heads::write_f32_safetensors(&bad, &[("w", vec![1], &[0.0])], HashMap::new())
            .unwrap();
        assert_eq!(
            TunedLoaded::trained_on(&p).as_deref(),
            Some("BABE SG2 minus 10%")
        );
        assert_eq!(TunedLoaded::trained_on(&bad), None);
        let e = TunedLoaded::load(&bad, &dir).unwrap_err().to_string();
        assert!(e.contains("tuned loaded-language head"), "{e}");
    }

    /// The scoring path's layer stack, given the encoder's own (unmerged) top layers and the
    /// states after the lower ones, gives the encoder's pooled vectors bit for bit, and agrees
    /// with the training forward (fastgrad).
    #[test]
    fn layer_stack_equals_the_encoders_own_top() {
        let Some(dir) = crate::encode::fetched_encoder_dir() else {
            return;
        };
        let enc = crate::encode::Encoder::load(&dir, Default::default()).unwrap();
        let texts = [
            "The regime's brutal crackdown drew outrage.",
            "Officials said talks would resume on Monday, according to a statement.",
            "Short.",
            "Critics claimed the so-called reforms were a sham designed to fool donors.",
        ];
        let mut top = TunedTop::from_encoder(&dir, 3, 3)
            .unwrap()
            .to_fast()
            .unwrap();
        // A head that reads every dimension (a fresh one is zero).
        top.head_w = (0..top.hidden)
            .map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5)
            .collect();
        let stack =
            LayerStack::from_tensors(&top.layers, top.hidden, top.heads, top.inter, top.eps)
                .unwrap();
        let states = enc.states_after(&texts, 3, 2).unwrap();
        let refs: Vec<&[f32]> = states.iter().map(Vec::as_slice).collect();
        let (want, _) = enc.encode(&texts, 2).unwrap();
        for batch in [1, 3, 64] {
            let got = stack.forward_pooled(&refs, batch).unwrap();
            for (g, w) in got.chunks_exact(top.hidden).zip(&want) {
                assert_eq!(g, w.pooled.as_slice(), "batch {batch}");
            }
        }
        // Two layers only: a different result (the test can tell stacks apart).
        let two =
            LayerStack::from_tensors(&top.layers[..2], top.hidden, top.heads, top.inter, top.eps)
                .unwrap()
                .forward_pooled(&refs, 64)
                .unwrap();
        assert_ne!(&two[..top.hidden], want[0].pooled.as_slice());
        // The training forward of the same layers agrees closely (other kernels).
        let z_train = top.logits(&refs, 8);
        let pooled = stack.forward_pooled(&refs, 64).unwrap();
        for (p, z) in pooled.chunks_exact(top.hidden).zip(&z_train) {
            let zs = top.head_logit(p);
            assert!((zs - z).abs() < 1e-4, "{zs} vs {z}");
        }
        // Run inside the encoder's pass (Branch::Pooled), it gives the same vectors.
        let (inside, _) = enc
            .encode_tokens(
                &texts,
                2,
                crate::encode::TokenExtras {
                    extra: None,
                    branch: Some(Branch::Pooled(3, &stack)),
                },
            )
            .unwrap();
        for (g, w) in inside.iter().zip(&want) {
            assert_eq!(g.branch, w.pooled);
        }
        // Malformed input is an error, not a panic.
        assert!(stack.forward_pooled(&[&[0.0; 5]], 1).is_err());
        assert!(stack.forward_pooled(&[&[]], 1).is_err());
        assert!(LayerStack::from_tensors(&[vec![vec![0.0; 3]]], 384, 12, 1536, 1e-12).is_err());
    }

    /// The scorer's input to the tuned head (states kept during the single pass) equals what
    /// training reads (`states_after`), and the pooled vectors, final states and the attribution
    /// head's extra layer are unchanged by keeping it.
    #[test]
    fn branch_states_equal_training_states() {
        let Some(dir) = crate::encode::fetched_encoder_dir() else {
            return;
        };
        let enc = crate::encode::Encoder::load(&dir, Default::default()).unwrap();
        let texts = [
            "The regime's brutal crackdown drew outrage.",
            "Officials said talks would resume on Monday.",
            "Short.",
        ];
        let want = enc.states_after(&texts, 3, 2).unwrap();
        let (plain, _) = enc
            .encode_tokens(
                &texts,
                2,
                crate::encode::TokenExtras {
                    extra: Some((4, 4)),
                    branch: None,
                },
            )
            .unwrap();
        let (got, _) = enc
            .encode_tokens(
                &texts,
                2,
                crate::encode::TokenExtras {
                    extra: Some((4, 4)),
                    branch: Some(Branch::States(3)),
                },
            )
            .unwrap();
        for ((g, w), p) in got.iter().zip(&want).zip(&plain) {
            assert_eq!(&g.branch, w);
            assert_eq!(g.pooled, p.pooled);
            assert_eq!(g.states, p.states);
            assert_eq!(g.extra, p.extra);
            assert!(p.branch.is_empty());
        }
        // A different layer gives different states (the test can tell layers apart).
        let other = enc.states_after(&texts, 4, 2).unwrap();
        assert_ne!(got[0].branch, other[0]);
    }
}
