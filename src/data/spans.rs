//! Loaded-language **spans**: readers for the three span-labelled sets, and their fixed splits.
//!
//! * **PTC** (SemEval-2020 Task 11, QCRI, research use): `ptc_semeval2020_task11/datasets/
//!   train-articles/article<ID>.txt` and `train-task2-TC.labels` (`ID<TAB>technique<TAB>start<TAB>
//!   end`). Offsets count **characters** (Unicode scalar values, as Python indexes a `str`); they
//!   are converted to byte offsets exactly ([`char_to_byte`]).
//! * **SemEval-2023 Task 3** subtask 3, English (organisers' data, research use):
//!   `semeval2023_task3_en/data/en/train-articles-subtask-2/article<ID>.txt` with
//!   `train-labels-subtask-3-spans/article<ID>-labels-subtask-3.txt` (same TSV layout, character
//!   offsets). 351 of its 433 articles are PTC articles (lightly re-edited and re-annotated);
//!   [`semeval23_loaded`] returns all, and training uses only the ones PTC does not have.
//! * **BABE SG2** `biased_words` (AGPL-3.0): words the annotators marked, found in the sentence
//!   case-insensitively as whole words ([`find_words`]); every occurrence is a span.
//!
//! ## Splits (fixed, documented in README and the model card)
//! * PTC/SemEval articles: bucket = first 8 bytes of `sha256("slant-spans-split-v1\0" + id)` as a
//!   big-endian u64, mod 100. Buckets 0–19 are **test** (held out; never trained on, never used
//!   to pick epochs), 20–29 **dev** (epoch selection), 30–99 train. Articles, not sentences, are
//!   split, and the same id gets the same split in PTC and SemEval-2023.
//! * BABE sentences: fold = the same hash of the sentence id (`sg2-<row>`) mod 5; fold 0 is the
//!   held-out fold, folds 1–4 may be trained on.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The span type name of loaded language (the tagger's `B-LOADED` / `I-LOADED`).
pub const LOADED: &str = "LOADED";
/// PTC / SemEval-2020 technique name.
pub const PTC_LOADED: &str = "Loaded_Language";
/// PTC's name-calling technique (2020 name; 2023 calls it `Name_Calling-Labeling`).
pub const PTC_NAME_CALLING: &str = "Name_Calling,Labeling";

/// A text with gold loaded-language spans (byte offsets into `text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanDoc {
    pub id: String,
    pub text: String,
    /// `[start, end)` byte ranges, sorted.
    pub spans: Vec<(usize, usize)>,
}

/// Which part of a fixed split an item falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Train,
    Dev,
    Test,
}

fn bucket(id: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(b"slant-spans-split-v1\0");
    h.update(id.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The fixed split of a PTC / SemEval-2023 article id (see the module doc).
pub fn article_part(id: &str) -> Part {
    match bucket(id) % 100 {
        0..=19 => Part::Test,
        20..=29 => Part::Dev,
        _ => Part::Train,
    }
}

/// The BABE fold (0–4) of a sentence id; fold 0 is held out.
pub fn babe_fold(id: &str) -> usize {
    (bucket(id) % 5) as usize
}

/// Convert character offsets (Unicode scalar values) into byte offsets of `text`. Offset
/// `chars` (one past the last character) maps to `text.len()`; larger offsets are an error.
pub fn char_to_byte(text: &str, offsets: &[usize]) -> std::result::Result<Vec<usize>, usize> {
    let bytes: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()))
        .collect();
    offsets
        .iter()
        .map(|&c| bytes.get(c).copied().ok_or(c))
        .collect()
}

/// Read a technique TSV (`ID<TAB>technique<TAB>start<TAB>end`) keeping the techniques in `keep`:
/// (id, start char, end char) rows.
fn read_tsv(path: &Path, keep: &[&str]) -> Result<Vec<(String, usize, usize)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').map(str::trim).collect();
        let bad = || Error::bad_data(path, Some(i + 1), "expected ID, technique, start, end");
        if f.len() != 4 {
            return Err(bad());
        }
        if !keep.contains(&f[1]) {
            continue;
        }
        let (s, e): (usize, usize) = (
            f[2].parse().map_err(|_| bad())?,
            f[3].parse().map_err(|_| bad())?,
        );
        if s >= e {
            return Err(bad());
        }
        out.push((f[0].to_string(), s, e));
    }
    Ok(out)
}

fn attach(id: &str, text: String, rows: &[(usize, usize)], path: &Path) -> Result<SpanDoc> {
    let flat: Vec<usize> = rows.iter().flat_map(|&(s, e)| [s, e]).collect();
    let b = char_to_byte(&text, &flat).map_err(|c| {
        Error::bad_data(
            path,
            None,
            format!("article {id}: offset {c} is past the end of the text"),
        )
    })?;
    let mut spans: Vec<(usize, usize)> = b.chunks_exact(2).map(|c| (c[0], c[1])).collect();
    spans.sort_unstable();
    spans.dedup();
    Ok(SpanDoc {
        id: id.to_string(),
        text,
        spans,
    })
}

/// Relative path of PTC's technique labels.
pub const PTC_LABELS: &str = "ptc_semeval2020_task11/datasets/train-task2-TC.labels";
/// Relative path of PTC's articles.
pub const PTC_ARTICLES: &str = "ptc_semeval2020_task11/datasets/train-articles";
/// Relative path of SemEval-2023 subtask 3's span files.
pub const SEMEVAL23_SPANS: &str = "semeval2023_task3_en/data/en/train-labels-subtask-3-spans";

/// PTC's 371 training articles with their spans of the techniques `keep` (all articles, also
/// those without any), sorted by id; plus the files read.
pub fn ptc_loaded(data: &Path, keep: &[&str]) -> Result<(Vec<SpanDoc>, Vec<PathBuf>)> {
    let labels = data.join(PTC_LABELS);
    let dir = data.join(PTC_ARTICLES);
    if !labels.is_file() || !dir.is_dir() {
        return Err(Error::Missing(format!(
            "PTC (SemEval-2020 Task 11) not found at {} (check --data / SLANT_DATA)",
            labels.display()
        )));
    }
    let rows = read_tsv(&labels, keep)?;
    let mut ids: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("article")?
                .strip_suffix(".txt")
                .map(str::to_string)
        })
        .collect();
    ids.sort();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let path = dir.join(format!("article{id}.txt"));
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let mine: Vec<(usize, usize)> = rows
            .iter()
            .filter(|r| r.0 == id)
            .map(|r| (r.1, r.2))
            .collect();
        out.push(attach(&id, text, &mine, &labels)?);
    }
    Ok((out, vec![labels]))
}

/// SemEval-2023 Task 3 subtask 3 English training articles with their spans of `keep`, sorted
/// by id; plus the span folder.
pub fn semeval23_loaded(data: &Path, keep: &[&str]) -> Result<(Vec<SpanDoc>, Vec<PathBuf>)> {
    let spans = data.join(SEMEVAL23_SPANS);
    let dir = data.join(crate::data::frames::ARTICLES);
    if !spans.is_dir() || !dir.is_dir() {
        return Err(Error::Missing(format!(
            "SemEval-2023 Task 3 subtask 3 spans not found at {} (check --data / SLANT_DATA)",
            spans.display()
        )));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&spans)
        .map_err(|e| Error::io(&spans, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        let Some(id) = name
            .strip_prefix("article")
            .and_then(|n| n.strip_suffix("-labels-subtask-3.txt"))
        else {
            continue;
        };
        let id = id.to_string();
        let path = dir.join(format!("article{id}.txt"));
        if !path.is_file() {
            // A few span files have no article text in the snapshot: nothing to align them to.
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let rows: Vec<(usize, usize)> = read_tsv(&f, keep)?
            .into_iter()
            .map(|r| (r.1, r.2))
            .collect();
        out.push(attach(&id, text, &rows, &f)?);
    }
    Ok((out, vec![spans]))
}

/// Byte ranges of every case-insensitive, whole-word occurrence of each of `words` in `text`
/// (a phrase matches as a whole; "whole word" = no alphanumeric character just before or after),
/// sorted and de-duplicated. Matching folds ASCII case only.
pub fn find_words(text: &str, words: &[String]) -> Vec<(usize, usize)> {
    let alnum_before = |i: usize| {
        text[..i]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
    };
    let alnum_at = |i: usize| text[i..].chars().next().is_some_and(char::is_alphanumeric);
    let mut out = Vec::new();
    for w in words {
        let w = w.trim();
        if w.is_empty() {
            continue;
        }
        for (i, _) in text.char_indices() {
            let e = i + w.len();
            if e > text.len() || !text.is_char_boundary(e) {
                continue;
            }
            if text[i..e].eq_ignore_ascii_case(w) && !alnum_before(i) && !alnum_at(e) {
                out.push((i, e));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// BABE SG2 sentences as span documents (`biased_words` found by [`find_words`]; sentences
/// labelled unbiased usually have none), in file order; plus the file read.
pub fn babe_spans(data: &Path) -> Result<(Vec<SpanDoc>, PathBuf)> {
    let (rows, path) = crate::data::babe_sg2(data)?;
    let docs = rows
        .into_iter()
        .map(|r| SpanDoc {
            spans: find_words(&r.text, &r.biased_words),
            id: r.id,
            text: r.text,
        })
        .collect();
    Ok((docs, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_offsets_become_byte_offsets() {
        let t = "né “dead” x";
        // chars: n é ␠ “ d e a d ” ␠ x
        let b = char_to_byte(t, &[0, 3, 4, 8, 9, 11]).unwrap();
        assert_eq!(&t[b[1]..b[2]], "“");
        assert_eq!(&t[b[2]..b[3]], "dead");
        assert_eq!(&t[b[3]..b[4]], "”");
        assert_eq!(b[5], t.len());
        assert_eq!(char_to_byte(t, &[12]), Err(12));
    }

    #[test]
    fn words_are_found_whole_and_case_insensitively() {
        let t = "Radical claims: the radicalised Radical Left, radical.";
        let got: Vec<&str> = find_words(t, &["radical".into(), "radical left".into(), " ".into()])
            .into_iter()
            .map(|(a, b)| &t[a..b])
            .collect();
        assert_eq!(got, ["Radical", "Radical", "Radical Left", "radical"]);
        assert!(find_words("café", &["caf".into()]).is_empty());
    }

    #[test]
    fn splits_are_fixed_and_roughly_proportional() {
        let ids: Vec<String> = (0..2000).map(|i| format!("{}", 111111111 + i)).collect();
        let test = ids.iter().filter(|i| article_part(i) == Part::Test).count();
        let dev = ids.iter().filter(|i| article_part(i) == Part::Dev).count();
        assert!((320..480).contains(&test), "{test}");
        assert!((140..260).contains(&dev), "{dev}");
        assert_eq!(article_part("111111112"), article_part("111111112"));
        let f0 = ids.iter().filter(|i| babe_fold(i) == 0).count();
        assert!((320..480).contains(&f0), "{f0}");
    }

    #[test]
    fn real_ptc_spans_are_the_annotated_words() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
        if !data.join(PTC_LABELS).is_file() {
            eprintln!("skipping: PTC not in ../shared/data");
            return;
        }
        let (docs, _) = ptc_loaded(&data, &[PTC_LOADED]).unwrap();
        assert_eq!(docs.len(), 371);
        let d = docs.iter().find(|d| d.id == "111111112").unwrap();
        let got: Vec<&str> = d.spans.iter().map(|&(a, b)| &d.text[a..b]).collect();
        assert!(got.contains(&"a striking blow against freedom"), "{got:?}");
        let n: usize = docs.iter().map(|d| d.spans.len()).sum();
        assert!(n > 2000, "{n} Loaded_Language spans");
    }
}
