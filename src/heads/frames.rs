//! The frames head: a multi-label classifier of whole articles into the 14 frames of SemEval-2023
//! Task 3 subtask 2 (Piskorski et al. 2023, after the Media Frames Corpus of Card et al. 2015).
//!
//! Input: the article vector, the mean of the article's sentence features (each the L2-normalised
//! mean-pooled encoder vector, [`super::sentence_features`]), see [`article_vector`]. The head
//! standardises it (per-dimension `mean` and `scale` from the training set), then applies either
//! one logistic output per frame (`hidden == 0`) or a shared ReLU hidden layer with one output
//! per frame. Each frame has its own decision threshold (chosen by inner cross-validation).
//!
//! Stored as safetensors (`mean`, `scale`, `w2`, `b2`, and with a hidden layer `w1`, `b1`) with
//! the labels, thresholds and provenance in the header.

use super::file::HeadWriter;
use super::math::{dot, sigmoid};
use std::collections::BTreeMap;
use std::path::Path;

use crate::Result;

/// Name of the committed frames head, relative to the models folder.
pub const FRAMES_HEAD_FILE: &str = "frames.safetensors";

/// Mean of the sentence features of one article (`None` for an article without sentences).
pub fn article_vector<'a>(sentences: impl IntoIterator<Item = &'a [f32]>) -> Option<Vec<f32>> {
    let mut sum: Option<Vec<f64>> = None;
    let mut n = 0usize;
    for s in sentences {
        let acc = sum.get_or_insert_with(|| vec![0.0; s.len()]);
        for (a, x) in acc.iter_mut().zip(s) {
            *a += *x as f64;
        }
        n += 1;
    }
    sum.map(|v| v.into_iter().map(|x| (x / n as f64) as f32).collect())
}

/// Multi-label head: standardisation, optional hidden layer, one sigmoid output per label.
#[derive(Debug, Clone, PartialEq)]
pub struct FramesHead {
    pub input: usize,
    pub hidden: usize,
    pub labels: Vec<String>,
    /// Per-dimension mean subtracted from the input.
    pub mean: Vec<f32>,
    /// Per-dimension factor applied after subtracting the mean (1/sd).
    pub scale: Vec<f32>,
    /// `hidden x input` (empty without a hidden layer).
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    /// `labels x (hidden or input)`.
    pub w2: Vec<f32>,
    pub b2: Vec<f32>,
    /// Decision threshold per label.
    pub thresholds: Vec<f32>,
    pub meta: BTreeMap<String, String>,
}

impl FramesHead {
    /// The standardised input.
    pub fn standardise(&self, x: &[f32]) -> Vec<f32> {
        x.iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .map(|((v, m), s)| (v - m) * s)
            .collect()
    }

    /// One probability per label.
    pub fn probs(&self, x: &[f32]) -> Vec<f32> {
        let z = self.standardise(x);
        let h: Vec<f32> = if self.hidden == 0 {
            z
        } else {
            (0..self.hidden)
                .map(|j| {
                    (dot(&self.w1[j * self.input..(j + 1) * self.input], &z) + self.b1[j]).max(0.0)
                })
                .collect()
        };
        let width = h.len();
        (0..self.labels.len())
            .map(|k| sigmoid(dot(&self.w2[k * width..(k + 1) * width], &h) + self.b2[k]))
            .collect()
    }

    /// Save as safetensors with labels, thresholds and `meta` in the header.
    pub fn save(&self, path: &Path) -> Result<()> {
        let width = if self.hidden == 0 {
            self.input
        } else {
            self.hidden
        };
        let l = self.labels.len();
        let mut w = HeadWriter::new("slant-frames-head-v1", &self.meta, self.input, self.hidden);
        w.meta_json("labels", &self.labels)?
            .meta_json("thresholds", &self.thresholds)?
            .tensor("mean", vec![self.input], &self.mean)
            .tensor("scale", vec![self.input], &self.scale)
            .tensor("w2", vec![l, width], &self.w2)
            .tensor("b2", vec![l], &self.b2)
            .hidden_layer(self.input, self.hidden, &self.w1, &self.b1);
        w.write(path)
    }

    /// Load a head written by [`FramesHead::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let file = super::HeadFile::open(path)?;
        file.require_format("slant-frames-head-v1", "frames head")?;
        let input: usize = file.meta_parse("input")?;
        let hidden: usize = file.meta_parse("hidden")?;
        let labels: Vec<String> = file.meta_json("labels")?;
        let thresholds: Vec<f32> = file.meta_json("thresholds")?;
        let l = labels.len();
        if thresholds.len() != l {
            return Err(file.error(format!("{} thresholds for {l} labels", thresholds.len())));
        }
        let width = if hidden == 0 { input } else { hidden };
        let (w1, b1) = if hidden > 0 {
            (
                file.tensor_f32("w1", &[hidden, input])?,
                file.tensor_f32("b1", &[hidden])?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Self {
            input,
            hidden,
            mean: file.tensor_f32("mean", &[input])?,
            scale: file.tensor_f32("scale", &[input])?,
            w1,
            b1,
            w2: file.tensor_f32("w2", &[l, width])?,
            b2: file.tensor_f32("b2", &[l])?,
            thresholds,
            meta: file.provenance(&["format", "input", "hidden", "labels", "thresholds"]),
            labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::FRAMES;

    fn head(hidden: usize) -> FramesHead {
        FramesHead {
            input: 2,
            hidden,
            labels: vec!["A".into(), "B".into()],
            mean: vec![1.0, 0.0],
            scale: vec![2.0, 1.0],
            w1: if hidden > 0 {
                vec![1.0, 0.0, 0.0, -1.0]
            } else {
                vec![]
            },
            b1: if hidden > 0 { vec![0.0, 0.5] } else { vec![] },
            w2: vec![1.0, 0.0, 0.0, 2.0],
            b2: vec![0.0, -1.0],
            thresholds: vec![0.3, 0.6],
            meta: [("seed".to_string(), "13".to_string())]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn probs_by_hand_and_roundtrip() {
        // Standardised input of [2, 1]: [(2-1)*2, (1-0)*1] = [2, 1].
        let lr = head(0);
        let p = lr.probs(&[2.0, 1.0]);
        assert!((p[0] - sigmoid(2.0)).abs() < 1e-7);
        assert!((p[1] - sigmoid(2.0 - 1.0)).abs() < 1e-7);
        // Hidden: h = relu([2, -1 + 0.5]) = [2, 0] → logits [2, -1].
        let mlp = head(2);
        let p = mlp.probs(&[2.0, 1.0]);
        assert!((p[0] - sigmoid(2.0)).abs() < 1e-7);
        assert!((p[1] - sigmoid(-1.0)).abs() < 1e-7);
        let dir = tempfile::tempdir().unwrap();
        for h in [lr, mlp] {
            let path = dir.path().join(format!("f{}.safetensors", h.hidden));
            h.save(&path).unwrap();
            assert_eq!(FramesHead::load(&path).unwrap(), h);
        }
    }

    #[test]
    fn article_vector_is_the_mean() {
        let a = [1.0f32, 0.0];
        let b = [0.0f32, 1.0];
        assert_eq!(article_vector([&a[..], &b[..]]).unwrap(), vec![0.5f32, 0.5]);
        assert_eq!(article_vector(std::iter::empty::<&[f32]>()), None);
    }

    #[test]
    fn loaded_head_file_is_not_a_frames_head() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.safetensors");
        std::fs::write(&p, b"nope").unwrap();
        assert!(FramesHead::load(&p).is_err());
    }

    #[test]
    fn frames_are_sorted_and_fourteen() {
        assert!(FRAMES.windows(2).all(|w| w[0] < w[1]));
    }
}
