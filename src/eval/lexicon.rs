//! Lexicon-only baselines for the loaded-language sentence task, read by path from the data
//! folder (nothing of the lexicons is committed):
//!
//! * `recasens_lexicons_wnc_sample/src/lexicons/*.txt` (MIT repo): the Recasens et al. 2013
//!   bias lexicon, strong/weak subjectives (Riloff & Wiebe 2003), hedges, factives, assertives,
//!   implicatives, report verbs, Liu's positive/negative opinion words;
//! * `lexicons_from_pypi/textblob/en-sentiment.xml` (MIT): adjective subjectivity;
//! * `lexicons_from_pypi/vader/vader_lexicon.txt` (MIT): valence.
//!
//! [`Lexicons::rule`] is a rule ("the sentence has a word of the Recasens bias lexicon"); [`Lexicons::features`] gives counts and scores for a logistic regression
//! (cross-validated like the encoder heads).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Word lists of the Recasens repository used as features, in feature order.
pub const LISTS: [&str; 10] = [
    "npov_lexicon",
    "strong_subjectives_riloff2003",
    "weak_subjectives_riloff2003",
    "hedges_hyland2005",
    "factives_hooper1975",
    "assertives_hooper1975",
    "implicatives_karttunen1971",
    "report_verbs",
    "positive_liu2005",
    "negative_liu2005",
];

/// The lexicons.
#[derive(Debug, Clone)]
pub struct Lexicons {
    lists: Vec<HashSet<String>>,
    /// TextBlob subjectivity per word form (mean over senses).
    subjectivity: HashMap<String, f32>,
    /// VADER valence per token.
    valence: HashMap<String, f32>,
    /// The files read, relative to the data folder.
    pub files: Vec<PathBuf>,
}

/// Relative paths of the lexicon files inside the data folder.
pub fn paths() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = LISTS
        .iter()
        .map(|n| PathBuf::from(format!("recasens_lexicons_wnc_sample/src/lexicons/{n}.txt")))
        .collect();
    v.push("lexicons_from_pypi/textblob/en-sentiment.xml".into());
    v.push("lexicons_from_pypi/vader/vader_lexicon.txt".into());
    v
}

fn read(data: &Path, rel: &Path) -> Result<String> {
    let p = data.join(rel);
    // Liu's lists hold a few Latin-1 bytes: read leniently.
    std::fs::read(&p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| {
            Error::Missing(format!(
                "lexicon {} not readable ({e}); pass --data DIR with the shared data layout",
                rel.display()
            ))
        })
}

/// Lower-cased word tokens (letters, digits, inner apostrophes and hyphens).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-' || c == '’'))
        .map(|w| w.trim_matches(|c: char| c == '\'' || c == '-' || c == '’'))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase().replace('’', "'"))
        .collect()
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let i = line.find(&key)? + key.len();
    let rest = &line[i..];
    Some(&rest[..rest.find('"')?])
}

impl Lexicons {
    /// Read every lexicon from `data` (the shared data folder).
    pub fn load(data: &Path) -> Result<Self> {
        let all = paths();
        let mut lists = Vec::new();
        for rel in &all[..LISTS.len()] {
            let text = read(data, rel)?;
            lists.push(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
                    .map(str::to_lowercase)
                    .collect(),
            );
        }
        let mut subj: HashMap<String, (f32, u32)> = HashMap::new();
        for line in read(data, &all[LISTS.len()])?.lines() {
            if let (Some(form), Some(s)) = (attr(line, "form"), attr(line, "subjectivity")) {
                if let Ok(s) = s.parse::<f32>() {
                    let e = subj.entry(form.to_lowercase()).or_insert((0.0, 0));
                    e.0 += s;
                    e.1 += 1;
                }
            }
        }
        let mut valence = HashMap::new();
        for line in read(data, &all[LISTS.len() + 1])?.lines() {
            let mut it = line.split('\t');
            if let (Some(w), Some(v)) = (it.next(), it.next()) {
                if let Ok(v) = v.parse::<f32>() {
                    valence.insert(w.to_lowercase(), v);
                }
            }
        }
        if lists.iter().any(HashSet::is_empty) || subj.is_empty() || valence.is_empty() {
            return Err(Error::Input("a lexicon file is empty".into()));
        }
        Ok(Self {
            lists,
            subjectivity: subj
                .into_iter()
                .map(|(k, (s, n))| (k, s / n as f32))
                .collect(),
            valence,
            files: all,
        })
    }

    /// The rule baseline: the sentence has a word of the Recasens et al. 2013 bias lexicon.
    /// (Adding the strong subjectives makes the rule fire on 98% of BABE SG2: macro-F1 0.355.)
    pub fn rule(&self, text: &str) -> bool {
        words(text).iter().any(|w| self.lists[0].contains(w))
    }

    /// Names of [`Self::features`], in order.
    pub fn feature_names() -> Vec<String> {
        let mut v: Vec<String> = LISTS.iter().map(|n| format!("log1p_count_{n}")).collect();
        v.extend(
            [
                "textblob_subjectivity_sum",
                "textblob_subjectivity_max",
                "vader_abs_valence_sum",
                "vader_abs_valence_max",
                "log1p_words",
            ]
            .map(String::from),
        );
        v
    }

    /// Features of one sentence: log(1 + count) per word list, TextBlob subjectivity sum and
    /// max, VADER |valence| sum and max (divided by 4), log(1 + words).
    pub fn features(&self, text: &str) -> Vec<f32> {
        let w = words(text);
        let mut f: Vec<f32> = self
            .lists
            .iter()
            .map(|l| (w.iter().filter(|x| l.contains(*x)).count() as f32).ln_1p())
            .collect();
        let subj: Vec<f32> = w
            .iter()
            .filter_map(|x| self.subjectivity.get(x).copied())
            .collect();
        let val: Vec<f32> = w
            .iter()
            .filter_map(|x| self.valence.get(x).map(|v| v.abs() / 4.0))
            .collect();
        f.push(subj.iter().sum());
        f.push(subj.iter().copied().fold(0.0, f32::max));
        f.push(val.iter().sum());
        f.push(val.iter().copied().fold(0.0, f32::max));
        f.push((w.len() as f32).ln_1p());
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_and_trimmed() {
        assert_eq!(
            words("The 'radical' left-wing mob’s rant -- absurd!"),
            ["the", "radical", "left-wing", "mob's", "rant", "absurd"]
        );
    }

    #[test]
    fn lexicons_load_and_fire_on_loaded_words() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
        let dir = std::env::var_os("SLANT_DATA")
            .map(PathBuf::from)
            .unwrap_or(dir);
        if !dir.join("recasens_lexicons_wnc_sample").is_dir() {
            eprintln!("skipping: lexicons not found under the data folder");
            return;
        }
        let lx = Lexicons::load(&dir).unwrap();
        assert!(!lx.rule("The meeting is on Tuesday at 10."));
        assert!(lx.rule("Critics called the abortion law draconian."));
        let a = lx.features("The senator's outrageous, disgraceful lies stunned everyone.");
        let b = lx.features("The meeting is on Tuesday at 10.");
        assert_eq!(a.len(), Lexicons::feature_names().len());
        assert!(a[12] > b[12], "VADER |valence| sum: {} vs {}", a[12], b[12]);
    }
}
