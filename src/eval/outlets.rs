//! Outlet validity: does slant rank outlets the way human annotators do? The report of
//! `slant eval outlets` and the `outlets/babe-mbic` evaluation of `slant eval all`.
//!
//! BABE SG2 (expert labels) and MBIC (crowd labels, 1,697 of its 1,700 sentences are also in SG2)
//! carry the outlet of every sentence. Each sentence is scored by the loaded-language head, and
//! per outlet slant's loaded share (sentences at or above the head's threshold) is set against the
//! human biased share. The figure is the Spearman correlation over outlets with at least `min_n`
//! labelled sentences. The head was trained on anno-lexical only and never saw BABE or MBIC.
//!
//! [`spearman_ci`] gives a 95% interval that keeps the outlets fixed and resamples articles within
//! each outlet (a stratified cluster bootstrap): it says how much ρ depends on which articles the
//! dataset authors sampled. Resampling the outlets themselves is not done: with 9 outlets a
//! resample repeats points, which ties ranks, and the percentile interval of a rank correlation
//! over so few points says little.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rand::Rng;
use serde::Serialize;

use super::{version_info, DataFile};
use crate::data::{self, LabelledSentence};

use crate::heads::MlpHead;
use crate::stats::{self, percentile_sorted};
use crate::Result;

/// Default `min_n`: outlets with fewer labelled sentences are listed but left out of ρ.
pub const DEFAULT_MIN_N: usize = 30;

/// The note of every outlets report.
pub const NOTE: &str = "the loaded-language head was trained on anno-lexical only (LLM labels); \
    it never saw BABE or MBIC, so this is zero-shot. Outlet shares depend on which sentences the \
    dataset authors sampled per outlet, not on the outlets' whole output.";

/// Names of the three sets, in report order (the first is the headline `spearman`).
pub const SET_NAMES: [&str; 3] = [
    "pooled: BABE SG2 (expert labels) + MBIC sentences not in SG2 (crowd labels)",
    "BABE SG2 (expert labels)",
    "MBIC (crowd labels)",
];

/// Outlet names of BABE ("Fox News") and MBIC ("fox-news") on one key: lower-case letters and
/// digits only ("foxnews").
pub fn outlet_key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct OutletRow {
    pub outlet: String,
    pub n: u64,
    pub human_biased: u64,
    pub human_biased_share: f64,
    pub slant_loaded: u64,
    pub slant_loaded_share: f64,
    pub slant_mean_loaded: f64,
    pub in_correlation: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SetResult {
    pub set: String,
    pub sentences: u64,
    /// Spearman ρ between slant_loaded_share and human_biased_share over outlets with
    /// n ≥ min_n (`null` with fewer than 3 outlets).
    pub spearman: Option<f64>,
    /// The same with slant_mean_loaded.
    pub spearman_mean_loaded: Option<f64>,
    pub outlets_in_correlation: usize,
    pub outlets: Vec<OutletRow>,
}

/// The JSON of `slant eval outlets`.
#[derive(Debug, Clone, Serialize)]
pub struct OutletsReport {
    /// ρ of the pooled set (SG2 plus the MBIC sentences that are not in SG2).
    pub spearman: Option<f64>,
    pub min_n: usize,
    pub note: String,
    pub sets: Vec<SetResult>,
    pub manifest: Manifest,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub slant_version: String,
    pub git_commit: String,
    pub encoder_sha256: String,
    pub head_sha256: String,
    pub threshold: f32,
    pub data_files: Vec<DataFile>,
    pub threads: usize,
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Per-outlet shares and ρ of one set of scored sentences.
pub fn evaluate_set(
    name: &str,
    rows: &[(&LabelledSentence, f32)],
    thr: f32,
    min_n: usize,
) -> SetResult {
    // outlet key → (display name, n, biased, loaded, prob sum)
    let mut acc: BTreeMap<String, (String, u64, u64, u64, f64)> = BTreeMap::new();
    for (s, p) in rows {
        let Some(o) = s.outlet.as_deref() else {
            continue;
        };
        let e = acc
            .entry(outlet_key(o))
            .or_insert_with(|| (o.to_string(), 0, 0, 0, 0.0));
        e.1 += 1;
        e.2 += s.label as u64;
        e.3 += (*p >= thr) as u64;
        e.4 += *p as f64;
    }
    let outlets: Vec<OutletRow> = acc
        .into_values()
        .map(|(outlet, n, b, l, ps)| OutletRow {
            outlet,
            n,
            human_biased: b,
            human_biased_share: round6(b as f64 / n as f64),
            slant_loaded: l,
            slant_loaded_share: round6(l as f64 / n as f64),
            slant_mean_loaded: round6(ps / n as f64),
            in_correlation: n as usize >= min_n,
        })
        .collect();
    let used: Vec<&OutletRow> = outlets.iter().filter(|o| o.in_correlation).collect();
    let human: Vec<f64> = used.iter().map(|o| o.human_biased_share).collect();
    let share: Vec<f64> = used.iter().map(|o| o.slant_loaded_share).collect();
    let mean: Vec<f64> = used.iter().map(|o| o.slant_mean_loaded).collect();
    SetResult {
        set: name.to_string(),
        sentences: rows.len() as u64,
        spearman: stats::spearman(&share, &human).map(round6),
        spearman_mean_loaded: stats::spearman(&mean, &human).map(round6),
        outlets_in_correlation: used.len(),
        outlets,
    }
}

/// 95% percentile-bootstrap interval of the set's ρ (loaded share vs human biased share): the
/// outlets with at least `min_n` sentences stay fixed, and each resample draws, within each
/// outlet, as many articles as it has, with replacement (sentences without an article are their
/// own article). `None` with fewer than 3 such outlets, `reps == 0`, or no finite ρ.
pub fn spearman_ci(
    rows: &[(&LabelledSentence, f32)],
    thr: f32,
    min_n: usize,
    reps: usize,
    seed: u64,
) -> Option<[f64; 2]> {
    // outlet key → article → [n, biased, loaded]
    let mut by_outlet: BTreeMap<String, BTreeMap<String, [f64; 3]>> = BTreeMap::new();
    for (i, (s, p)) in rows.iter().enumerate() {
        let Some(o) = s.outlet.as_deref() else {
            continue;
        };
        let art = match &s.article {
            Some(a) => format!("a:{a}"),
            None => format!("s:{i}"),
        };
        let e = by_outlet
            .entry(outlet_key(o))
            .or_default()
            .entry(art)
            .or_default();
        e[0] += 1.0;
        e[1] += s.label as u8 as f64;
        e[2] += (*p >= thr) as u8 as f64;
    }
    let outlets: Vec<Vec<[f64; 3]>> = by_outlet
        .into_values()
        .map(|arts| arts.into_values().collect::<Vec<_>>())
        .filter(|arts| arts.iter().map(|a| a[0]).sum::<f64>() >= min_n as f64)
        .collect();
    if outlets.len() < 3 || reps == 0 {
        return None;
    }
    let mut rng = stats::rng(seed);
    let mut draws = Vec::with_capacity(reps);
    let (mut human, mut share) = (vec![0.0; outlets.len()], vec![0.0; outlets.len()]);
    for _ in 0..reps {
        for (k, arts) in outlets.iter().enumerate() {
            let mut sum = [0.0; 3];
            for _ in 0..arts.len() {
                let a = &arts[rng.gen_range(0..arts.len())];
                for (s, x) in sum.iter_mut().zip(a) {
                    *s += x;
                }
            }
            human[k] = round6(sum[1] / sum[0]);
            share[k] = round6(sum[2] / sum[0]);
        }
        if let Some(r) = stats::spearman(&share, &human).filter(|r| r.is_finite()) {
            draws.push(r);
        }
    }
    if draws.is_empty() {
        return None;
    }
    draws.sort_by(f64::total_cmp);
    Some([
        percentile_sorted(&draws, 0.025),
        percentile_sorted(&draws, 0.975),
    ])
}

/// BABE SG2 and MBIC scored by the loaded head.
pub struct Scored {
    pub sg2: Vec<LabelledSentence>,
    pub p_sg2: Vec<f32>,
    pub mbic: Vec<LabelledSentence>,
    pub p_mbic: Vec<f32>,
    pub threshold: f32,
    pub data_files: Vec<DataFile>,
}

/// The features a head reads for a set of sentences (named by the second argument).
pub type FeaturesFn<'a> = dyn Fn(&[LabelledSentence], &str) -> Result<Vec<Vec<f32>>> + 'a;

/// Read BABE SG2 and MBIC from `data_dir` and score every sentence with `head`, on the features
/// `features` gives (see [`crate::eval::loaded::head_features`]).
pub fn score(head: &MlpHead, data_dir: &Path, features: &FeaturesFn) -> Result<Scored> {
    let (sg2, sg2_path) = data::babe_sg2(data_dir)?;
    let (mbic, mbic_path) = data::mbic(data_dir)?;
    let probs = |v: &[LabelledSentence], what: &str| -> Result<Vec<f32>> {
        let f = features(v, what)?;
        Ok(f.iter().map(|x| head.prob(x)).collect())
    };
    Ok(Scored {
        p_sg2: probs(&sg2, "BABE SG2")?,
        p_mbic: probs(&mbic, "MBIC")?,
        sg2,
        mbic,
        threshold: head.threshold,
        data_files: vec![
            DataFile::new(data_dir, &sg2_path)?,
            DataFile::new(data_dir, &mbic_path)?,
        ],
    })
}

impl Scored {
    /// The scored sentences of the three sets of [`SET_NAMES`]: pooled (SG2 plus the MBIC
    /// sentences whose whitespace-normalised text is not in SG2), SG2, MBIC.
    pub fn sets(&self) -> [Vec<(&LabelledSentence, f32)>; 3] {
        let sg2: Vec<(&LabelledSentence, f32)> =
            self.sg2.iter().zip(self.p_sg2.iter().copied()).collect();
        let mbic: Vec<(&LabelledSentence, f32)> =
            self.mbic.iter().zip(self.p_mbic.iter().copied()).collect();
        let norm = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        let in_sg2: BTreeSet<String> = self.sg2.iter().map(|s| norm(&s.text)).collect();
        let mut pooled = sg2.clone();
        pooled.extend(
            mbic.iter()
                .filter(|(s, _)| !in_sg2.contains(&norm(&s.text)))
                .cloned(),
        );
        [pooled, sg2, mbic]
    }

    /// The report of `slant eval outlets`.
    pub fn report(&self, min_n: usize, encoder_sha256: &str, head_sha256: &str) -> OutletsReport {
        let sets: Vec<SetResult> = SET_NAMES
            .iter()
            .zip(self.sets())
            .map(|(name, rows)| evaluate_set(name, &rows, self.threshold, min_n))
            .collect();
        let (version, commit) = version_info();
        OutletsReport {
            spearman: sets[0].spearman,
            min_n,
            note: NOTE.into(),
            sets,
            manifest: Manifest {
                slant_version: version,
                git_commit: commit,
                encoder_sha256: encoder_sha256.into(),
                head_sha256: head_sha256.into(),
                threshold: self.threshold,
                data_files: self.data_files.clone(),
                threads: rayon::current_num_threads(),
            },
        }
    }
}

impl OutletsReport {
    /// The human table of `slant eval outlets`.
    pub fn table(&self) -> String {
        let fmt = |r: Option<f64>| r.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        let mut out = String::new();
        for s in &self.sets {
            out += &format!(
                "{} ({} sentences)\nSpearman rho (loaded share vs human biased share, {} outlets with n >= {}): {}; with mean P(loaded): {}\n",
                s.set,
                s.sentences,
                s.outlets_in_correlation,
                self.min_n,
                fmt(s.spearman),
                fmt(s.spearman_mean_loaded)
            );
            out += &format!(
                "  {:<16} {:>5} {:>12} {:>13} {:>12}\n",
                "outlet", "n", "human biased", "slant loaded", "mean P"
            );
            let mut rows: Vec<&OutletRow> = s.outlets.iter().collect();
            rows.sort_by(|x, y| {
                y.human_biased_share
                    .total_cmp(&x.human_biased_share)
                    .then_with(|| x.outlet.cmp(&y.outlet))
            });
            for o in rows {
                out += &format!(
                    "  {:<16} {:>5} {:>12.3} {:>13.3} {:>12.3}{}\n",
                    o.outlet,
                    o.n,
                    o.human_biased_share,
                    o.slant_loaded_share,
                    o.slant_mean_loaded,
                    if o.in_correlation {
                        ""
                    } else {
                        "  (too few, left out)"
                    }
                );
            }
            out += "\n";
        }
        out += &format!("Note: {}\n", self.note);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlet_names_of_both_sets_meet() {
        assert_eq!(outlet_key("Fox News"), outlet_key("fox-news"));
        assert_eq!(outlet_key("USA Today"), "usatoday");
        assert_eq!(outlet_key("HuffPost"), outlet_key("huffpost"));
    }

    fn s(o: &str, label: bool, article: &str) -> LabelledSentence {
        LabelledSentence {
            id: String::new(),
            text: String::new(),
            label,
            outlet: Some(o.into()),
            article: Some(article.into()),
            biased_words: vec![],
        }
    }

    #[test]
    fn per_outlet_shares_and_rho_by_hand() {
        // Human biased shares: A 1/2, B 2/2, C 0/2, D 1/1 (D too small with min_n 2).
        // slant (threshold 0.5): A 1/2, B 1/2, C 0/2 → loaded shares 0.5, 0.5, 0 vs human
        // 0.5, 1, 0: ranks [2.5, 2.5, 1] vs [2, 3, 1] → ρ = 1.5/√(1.5·2) = 0.866025.
        let v = [
            s("A", true, "a1"),
            s("A", false, "a2"),
            s("B", true, "b1"),
            s("B", true, "b2"),
            s("C", false, "c1"),
            s("C", false, "c2"),
            s("D", true, "d1"),
        ];
        let p = [0.9, 0.1, 0.6, 0.4, 0.2, 0.3, 0.9];
        let rows: Vec<(&LabelledSentence, f32)> = v.iter().zip(p).collect();
        let r = evaluate_set("t", &rows, 0.5, 2);
        assert_eq!(r.outlets.len(), 4);
        assert_eq!(r.outlets_in_correlation, 3);
        assert!(!r.outlets[3].in_correlation);
        assert_eq!(r.outlets[1].human_biased_share, 1.0);
        assert_eq!(r.outlets[1].slant_loaded_share, 0.5);
        assert!((r.spearman.unwrap() - 0.866025).abs() < 1e-6);
        let ci = spearman_ci(&rows, 0.5, 2, 300, 7).unwrap();
        assert!((-1.0..=1.0).contains(&ci[0]) && ci[0] <= ci[1] && ci[1] <= 1.0);
        assert_eq!(spearman_ci(&rows, 0.5, 2, 300, 7), Some(ci), "seeded");
        // Fewer than 3 outlets with min_n 3: no interval.
        assert_eq!(spearman_ci(&rows, 0.5, 3, 300, 7), None);
    }

    #[test]
    fn interval_is_a_point_when_articles_agree() {
        // Every article of an outlet has the same shares: every resample gives the same ρ.
        let mut v = Vec::new();
        for (o, lab) in [
            ("A", [true, true]),
            ("B", [true, false]),
            ("C", [false, false]),
        ] {
            for a in 0..3 {
                v.push(s(o, lab[0], &format!("{o}{a}")));
                v.push(s(o, lab[1], &format!("{o}{a}")));
            }
        }
        let p: Vec<f32> = v.iter().map(|x| if x.label { 0.9 } else { 0.1 }).collect();
        let rows: Vec<(&LabelledSentence, f32)> = v.iter().zip(p).collect();
        assert_eq!(spearman_ci(&rows, 0.5, 2, 100, 1), Some([1.0, 1.0]));
    }
}
