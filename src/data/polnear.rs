//! PolNeAR (Newell, Margolin & Ruths, LREC 2018): 1,008 US political news articles (2016) with
//! attribution relations annotated as SOURCE / CUE / CONTENT spans. Layout under the data folder:
//!
//! * `polnear/data/{train,dev,test}/text/<article>.txt`;
//! * `polnear/data/{train,dev,test}/attributions/<article>_<annotator>.ann` (BRAT standoff:
//!   `T` lines `Tn<TAB>Type start end[;start end...]<TAB>text` with **character** offsets, and
//!   `E` lines `En<TAB>Attribution:Tk Source:Ti Cue:Tj Content:Tl` linking them).
//!
//! Choices (documented, deterministic):
//! * **One annotation per article.** Some articles were annotated by several annotators
//!   (several `.ann` files); we keep the file whose name sorts first (byte order), so every run
//!   reads the same gold.
//! * **Discontinuous spans** (`a b;c d`, e.g. a content interrupted by a parenthetical) are
//!   read as their covering range `[a, d)`.
//! * Offsets are converted from characters to **bytes** of the UTF-8 text, as everywhere in
//!   slant.
//! * Only `Source`, `Cue` and `Content` entities are read; `Attribution` anchors, `Discuss` and
//!   `Discard` entities are skipped. Relations (`E` lines) group the three into attributions.
//!
//! The corpus states no licence (texts are copyrighted news): it is read by path and never
//! committed; only weights derived from it are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The three span roles.
pub const ROLES: [&str; 3] = ["SOURCE", "CUE", "CONTENT"];

/// One annotated span (byte offsets into the article text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpan {
    /// `SOURCE`, `CUE` or `CONTENT`.
    pub role: &'static str,
    pub start: usize,
    pub end: usize,
}

/// One attribution relation: indices into [`PolnearArticle::spans`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Relation {
    pub source: Option<usize>,
    pub cue: Option<usize>,
    pub content: Option<usize>,
}

/// One article with its gold spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolnearArticle {
    /// File stem of the text.
    pub id: String,
    pub text: String,
    /// Spans sorted by (start, end, role).
    pub spans: Vec<RoleSpan>,
    pub relations: Vec<Relation>,
    /// The `.ann` file read.
    pub ann: PathBuf,
}

/// Folder of one split.
pub fn split_dir(data: &Path, split: &str) -> PathBuf {
    data.join("polnear").join("data").join(split)
}

/// Character offset → byte offset table of `text` (one entry per char, plus the end).
fn char_to_byte(text: &str) -> Vec<usize> {
    let mut v: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
    v.push(text.len());
    v
}

/// Parse one `.ann` file against its text.
pub fn parse_ann(text: &str, ann: &str, origin: &Path) -> Result<(Vec<RoleSpan>, Vec<Relation>)> {
    let c2b = char_to_byte(text);
    let mut ents: BTreeMap<String, RoleSpan> = BTreeMap::new();
    let mut rels_raw: Vec<Vec<(String, String)>> = Vec::new();
    for (ln, line) in ann.lines().enumerate() {
        let bad = |m: &str| Error::bad_data(origin, Some(ln + 1), m);
        let mut parts = line.split('\t');
        let id = parts.next().unwrap_or("");
        let body = parts.next().unwrap_or("");
        // Annotation lines start with `T<n>` / `E<n>` and a tab; a span text that contains a
        // newline continues on lines of its own, which are skipped.
        let numbered = id.len() > 1 && id[1..].bytes().all(|b| b.is_ascii_digit());
        if !numbered {
            continue;
        }
        if id.starts_with('T') {
            let (ty, ranges) = body.split_once(' ').ok_or_else(|| bad("no offsets"))?;
            let role = match ty {
                "Source" => "SOURCE",
                "Cue" => "CUE",
                "Content" => "CONTENT",
                _ => continue,
            };
            let mut lo = usize::MAX;
            let mut hi = 0;
            for r in ranges.split(';') {
                let (a, b) = r.trim().split_once(' ').ok_or_else(|| bad("bad range"))?;
                let a: usize = a.parse().map_err(|_| bad("bad offset"))?;
                let b: usize = b.parse().map_err(|_| bad("bad offset"))?;
                if a > b || b >= c2b.len() {
                    return Err(bad("offset outside the text"));
                }
                lo = lo.min(a);
                hi = hi.max(b);
            }
            ents.insert(
                id.to_string(),
                RoleSpan {
                    role,
                    start: c2b[lo],
                    end: c2b[hi],
                },
            );
        } else if id.starts_with('E') {
            rels_raw.push(
                body.split_whitespace()
                    .filter_map(|kv| kv.split_once(':'))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
    }
    let mut keys: Vec<(RoleSpan, String)> = ents.into_iter().map(|(k, v)| (v, k)).collect();
    keys.sort_by(|a, b| {
        (a.0.start, a.0.end, a.0.role, &a.1).cmp(&(b.0.start, b.0.end, b.0.role, &b.1))
    });
    let index: BTreeMap<String, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, (_, k))| (k.clone(), i))
        .collect();
    let spans: Vec<RoleSpan> = keys.into_iter().map(|(s, _)| s).collect();
    let mut rels = Vec::new();
    for r in rels_raw {
        let mut rel = Relation::default();
        for (k, v) in r {
            let i = index.get(&v).copied();
            match k.as_str() {
                "Source" => rel.source = i,
                "Cue" => rel.cue = i,
                "Content" => rel.content = i,
                _ => {}
            }
        }
        if rel != Relation::default() {
            rels.push(rel);
        }
    }
    Ok((spans, rels))
}

/// Read one split (`train`, `dev` or `test`), articles sorted by id. Articles without any
/// `.ann` file are skipped.
pub fn read_split(data: &Path, split: &str) -> Result<Vec<PolnearArticle>> {
    let dir = split_dir(data, split);
    let text_dir = dir.join("text");
    let ann_dir = dir.join("attributions");
    if !text_dir.is_dir() || !ann_dir.is_dir() {
        return Err(Error::Missing(format!(
            "PolNeAR {split} split not found at {} (check --data / SLANT_DATA)",
            dir.display()
        )));
    }
    let mut anns: Vec<PathBuf> = std::fs::read_dir(&ann_dir)
        .map_err(|e| Error::io(&ann_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ann"))
        .collect();
    anns.sort();
    // article id → first .ann (sorted by file name).
    let mut chosen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for p in anns {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let Some((article, _annotator)) = stem.rsplit_once('_') else {
            continue;
        };
        chosen.entry(article.to_string()).or_insert(p);
    }
    let mut out = Vec::with_capacity(chosen.len());
    for (id, ann) in chosen {
        let tp = text_dir.join(format!("{id}.txt"));
        if !tp.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&tp).map_err(|e| Error::io(&tp, e))?;
        let a = std::fs::read_to_string(&ann).map_err(|e| Error::io(&ann, e))?;
        let (spans, relations) = parse_ann(&text, &a, &ann)?;
        out.push(PolnearArticle {
            id,
            text,
            spans,
            relations,
            ann,
        });
    }
    if out.is_empty() {
        return Err(Error::Missing(format!(
            "no annotated PolNeAR articles in {}",
            dir.display()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_brat_with_char_offsets_and_discontinuous_spans() {
        // "é" is two bytes: character offsets after it shift by one byte.
        let text = "José said “it is fine (really) now”.";
        let ann =
            "T1\tSource 0 4\tJosé\nT2\tCue 5 9\tsaid\nT3\tContent 11 21;30 34\tit is fine now\n\
                   T4\tAttribution 5 9\tsaid\nE1\tAttribution:T4 Content:T3 Cue:T2 Source:T1\n\
                   T5\tDiscuss 0 4\tJosé\nThe rest of a span text after a newline\n";
        let (spans, rels) = parse_ann(text, ann, Path::new("x.ann")).unwrap();
        let got: Vec<(&str, &str)> = spans
            .iter()
            .map(|s| (s.role, &text[s.start..s.end]))
            .collect();
        assert_eq!(
            got,
            [
                ("SOURCE", "José"),
                ("CUE", "said"),
                ("CONTENT", "it is fine (really) now")
            ]
        );
        assert_eq!(
            rels,
            [Relation {
                source: Some(0),
                cue: Some(1),
                content: Some(2)
            }]
        );
        let err = parse_ann(text, "T1\tCue 5 900\tx\n", Path::new("x.ann")).unwrap_err();
        assert!(err.to_string().contains("x.ann:1"), "{err}");
    }

    #[test]
    fn reads_the_shared_test_split_when_present() {
        let data = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
        let data = std::env::var("SLANT_DATA")
            .map(PathBuf::from)
            .unwrap_or(data);
        if !split_dir(&data, "test").is_dir() {
            eprintln!("skipping: PolNeAR not found under the data folder");
            return;
        }
        let arts = read_split(&data, "test").unwrap();
        assert_eq!(arts.len(), 84);
        let cues: usize = arts
            .iter()
            .map(|a| a.spans.iter().filter(|s| s.role == "CUE").count())
            .sum();
        assert!(cues > 1000, "{cues} cues");
        // Every span lies on char boundaries of its text.
        for a in &arts {
            for s in &a.spans {
                assert!(a.text.is_char_boundary(s.start) && a.text.is_char_boundary(s.end));
            }
        }
    }
}
