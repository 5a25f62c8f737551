//! Readers for the labelled data sets slant trains and evaluates on.
//!
//! `--data DIR` (default: the `SLANT_DATA` environment variable) names a folder laid out like the
//! project's shared data folder, e.g. `DIR/babe/data/final_labels_SG2.csv` and
//! `DIR/anno_lexical/annomatic-dataset/data/training/anno-lexical-train.jsonl`.

use std::path::{Path, PathBuf};

pub mod frames;
pub mod polnear;
pub mod spans;

use crate::{Error, Result};

/// One sentence with a binary loaded/biased label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledSentence {
    pub id: String,
    pub text: String,
    pub label: bool,
    pub outlet: Option<String>,
    /// The article the sentence comes from, when the dataset says (BABE: `news_link`). Used as
    /// the resampling unit of evaluation bootstraps; `None` makes the sentence its own unit.
    pub article: Option<String>,
    /// Words marked as biased by annotators (BABE only).
    pub biased_words: Vec<String>,
}

/// Relative path of an anno-lexical split inside the data folder.
pub fn anno_lexical_path(data: &Path, split: &str) -> PathBuf {
    data.join(format!(
        "anno_lexical/annomatic-dataset/data/training/anno-lexical-{split}.jsonl"
    ))
}

/// Relative path of BABE SG2 inside the data folder.
pub fn babe_sg2_path(data: &Path) -> PathBuf {
    data.join("babe/data/final_labels_SG2.csv")
}

/// Resolve the data folder: `--data`, else `SLANT_DATA`. Errors say how to set it.
pub fn resolve_data_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    let dir =
        match explicit {
            Some(p) => p.to_path_buf(),
            None => match std::env::var("SLANT_DATA") {
                Ok(s) if !s.is_empty() => PathBuf::from(s),
                _ => return Err(Error::Missing(
                    "no data folder: pass --data DIR or set SLANT_DATA (a folder laid out like \
                     the shared data folder, e.g. DIR/babe/data/final_labels_SG2.csv)"
                        .into(),
                )),
            },
        };
    if !dir.is_dir() {
        return Err(Error::Missing(format!(
            "data folder {} does not exist",
            dir.display()
        )));
    }
    Ok(dir)
}

fn need(path: &Path, what: &str) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(Error::Missing(format!(
            "{what} not found at {} (check --data / SLANT_DATA)",
            path.display()
        )))
    }
}

/// anno-lexical (MIT; LLM-annotated lexical bias): `split` is train, dev or test.
pub fn anno_lexical(data: &Path, split: &str) -> Result<(Vec<LabelledSentence>, PathBuf)> {
    let path = anno_lexical_path(data, split);
    need(&path, &format!("anno-lexical {split}"))?;
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| Error::bad_data(&path, Some(i + 1), e))?;
        let t = v["text"].as_str().unwrap_or_default().to_string();
        let label = match v["label"].as_i64() {
            Some(1) => true,
            Some(0) => false,
            _ => return Err(Error::bad_data(&path, Some(i + 1), "label must be 0 or 1")),
        };
        let id = v["sentence_id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{split}-{}", i + 1));
        out.push(LabelledSentence {
            id,
            text: t,
            label,
            outlet: v["source_name"].as_str().map(str::to_string),
            article: None,
            biased_words: Vec::new(),
        });
    }
    Ok((out, path))
}

/// BABE SG2 (AGPL-3.0; expert labels): `;`-separated CSV with a BOM. Rows labelled
/// "No agreement" are left out (there is one), as in the published evaluations.
pub fn babe_sg2(data: &Path) -> Result<(Vec<LabelledSentence>, PathBuf)> {
    let path = babe_sg2_path(data);
    need(&path, "BABE SG2")?;
    babe_csv(&path)
}

/// Read a BABE-format CSV (`text;news_link;outlet;topic;type;label_bias;label_opinion;biased_words`).
pub fn babe_csv(path: &Path) -> Result<(Vec<LabelledSentence>, PathBuf)> {
    let out = labelled_csv(path, b';', "sg2")?;
    Ok((out, path.to_path_buf()))
}

/// Relative path of MBIC (the CSV export of `final_labels_MBIC.xlsx`) inside the data folder.
pub fn mbic_path(data: &Path) -> PathBuf {
    data.join("babe/data/final_labels_MBIC.csv")
}

/// MBIC (AGPL-3.0 with BABE; crowd labels): comma-separated CSV with `text`, `outlet`,
/// `label_bias` and `biased_words`. "No agreement" rows are left out.
pub fn mbic(data: &Path) -> Result<(Vec<LabelledSentence>, PathBuf)> {
    let path = mbic_path(data);
    need(&path, "MBIC")?;
    let out = labelled_csv(&path, b',', "mbic")?;
    Ok((out, path))
}

/// The BABE/MBIC layout, whatever the delimiter: columns `text`, `outlet`, `label_bias`
/// ("Biased" / "Non-biased"; other values such as "No agreement" are left out) and
/// `biased_words`, an optional `news_link`, and an optional UTF-8 BOM. Sentence ids are
/// `{prefix}-{row}`, the row counted as in a spreadsheet (header = row 1).
fn labelled_csv(path: &Path, delimiter: u8, prefix: &str) -> Result<Vec<LabelledSentence>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(bytes);
    let headers = rdr
        .headers()
        .map_err(|e| Error::bad_data(path, None, e))?
        .clone();
    let col = |name: &str| -> Result<usize> {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::bad_data(path, None, format!("no `{name}` column")))
    };
    let (ti, oi, li, wi) = (
        col("text")?,
        col("outlet")?,
        col("label_bias")?,
        col("biased_words")?,
    );
    let link = headers.iter().position(|h| h == "news_link");
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| Error::bad_data(path, None, format!("row {}: {e}", i + 2)))?;
        let label = match rec.get(li).unwrap_or("") {
            "Biased" => true,
            "Non-biased" => false,
            _ => continue,
        };
        out.push(LabelledSentence {
            id: format!("{prefix}-{}", i + 2),
            text: rec.get(ti).unwrap_or("").to_string(),
            label,
            outlet: rec.get(oi).map(str::to_string).filter(|s| !s.is_empty()),
            article: link
                .and_then(|a| rec.get(a))
                .map(str::to_string)
                .filter(|s| !s.is_empty()),
            biased_words: parse_word_list(rec.get(wi).unwrap_or("")),
        });
    }
    Ok(out)
}

/// Parse BABE's Python-style list of words: `['bizarre', 'characteristically']`.
pub fn parse_word_list(s: &str) -> Vec<String> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            None if c == '\'' || c == '"' => quote = Some(c),
            None => {}
            Some(q) if c == q => {
                let w = cur.trim().to_string();
                if !w.is_empty() {
                    out.push(w);
                }
                cur.clear();
                quote = None;
            }
            Some(_) => cur.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_lists_parse_python_syntax() {
        assert_eq!(
            parse_word_list("['bizarre', 'characteristically']"),
            vec!["bizarre", "characteristically"]
        );
        assert_eq!(parse_word_list("[]"), Vec::<String>::new());
        assert_eq!(
            parse_word_list("[\"don't\", 'so-called']"),
            vec!["don't", "so-called"]
        );
    }

    #[test]
    fn babe_csv_reads_labels_and_skips_no_agreement() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.csv");
        std::fs::write(
            &p,
            "\u{feff}text;news_link;outlet;topic;type;label_bias;label_opinion;biased_words\n\
             \"A \"\"quoted\"\" claim.\";u;Fox News;t;right;Biased;x;['claim']\n\
             Plain fact.;u;Reuters;t;center;Non-biased;x;[]\n\
             Unclear.;u;Reuters;t;center;No agreement;x;[]\n",
        )
        .unwrap();
        let (rows, _) = babe_csv(&p).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].text, "A \"quoted\" claim.");
        assert!(rows[0].label && !rows[1].label);
        assert_eq!(rows[0].outlet.as_deref(), Some("Fox News"));
        assert_eq!(rows[0].biased_words, vec!["claim"]);
        assert_eq!(rows[0].article.as_deref(), Some("u"));
    }
}
