//! A user's own labelled file, for `slant eval loaded --labels FILE` and `slant eval all
//! --labels FILE`.
//!
//! Three kinds of records are understood. JSONL (`.jsonl`, `.ndjson`, `.json`: one object per
//! line; blank lines are skipped) holds any one kind per file; CSV/TSV (`.csv`, `.tsv`, with a
//! header) holds sentence labels only.
//!
//! * **Sentence labels** (evaluated by the loaded-language sentence head):
//!   `{"id": "s1", "text": "…", "label": 0 | 1, "source": "outlet" (optional), "article": "a7"
//!   (optional)}`. `label` 1 means the sentence uses loaded language. `article` groups sentences
//!   of one article for the bootstrap (without it each sentence is its own unit). CSV columns:
//!   `id,text,label` plus optional `source,article`.
//! * **Span labels**: `{"id", "text", "spans": [{"start", "end", "label"}]}`. `start`/`end` are
//!   character offsets (Unicode scalar values, end exclusive) into `text`; `label` names the span
//!   kind, e.g. `"loaded"`.
//! * **Attribution spans**: `{"id", "text", "attributions": [{"source": [s, e] | null, "cue":
//!   [s, e], "content": [s, e]}]}`, character offsets as above: who is quoted, the reporting verb
//!   or phrase ("said", "according to"), and what is attributed. `source` is `null` when no
//!   source is named ("it is claimed that …").
//!
//! Every record is validated: unique non-empty `id`, non-empty `text`, `label` exactly 0 or 1,
//! offsets within the text with `start < end`. Errors name the file and line (or CSV row).
//! Span and attribution files are parsed and validated today; they are evaluated once the
//! loaded-span and attribution heads exist.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value};

use crate::data::LabelledSentence;
use crate::{Error, Result};

/// One labelled span: character offsets `[start, end)` and a label such as `loaded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanLabel {
    pub start: usize,
    pub end: usize,
    pub label: String,
}

/// A text with labelled spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanRecord {
    pub id: String,
    pub text: String,
    pub spans: Vec<SpanLabel>,
}

/// One attribution: character ranges `[start, end)` of the source (if named), cue and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    pub source: Option<(usize, usize)>,
    pub cue: (usize, usize),
    pub content: (usize, usize),
}

/// A text with its attributions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributionRecord {
    pub id: String,
    pub text: String,
    pub attributions: Vec<Attribution>,
}

/// The records of a labelled file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Labels {
    Sentences(Vec<LabelledSentence>),
    Spans(Vec<SpanRecord>),
    Attributions(Vec<AttributionRecord>),
}

impl Labels {
    /// `sentences`, `spans` or `attributions`.
    pub fn kind(&self) -> &'static str {
        match self {
            Labels::Sentences(_) => "sentences",
            Labels::Spans(_) => "spans",
            Labels::Attributions(_) => "attributions",
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        match self {
            Labels::Sentences(v) => v.len(),
            Labels::Spans(v) => v.len(),
            Labels::Attributions(v) => v.len(),
        }
    }

    /// True when the file holds no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Read and validate a labelled file (see the module docs for the formats).
pub fn load(path: &Path) -> Result<Labels> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let labels = match ext.as_str() {
        "jsonl" | "ndjson" | "json" => {
            let raw = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            parse_jsonl(&raw, &path.display().to_string())?
        }
        "csv" | "tsv" => {
            let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let delim = if ext == "tsv" { b'\t' } else { b',' };
            Labels::Sentences(parse_csv(&raw, delim, &path.display().to_string())?)
        }
        _ => {
            return Err(Error::Input(format!(
                "{}: labelled files must be .jsonl, .ndjson, .json, .csv or .tsv",
                path.display()
            )))
        }
    };
    if labels.is_empty() {
        return Err(Error::bad_data(path, None, "no labelled records"));
    }
    Ok(labels)
}

/// A bad record at `(file name, line)`.
fn err(at: (&str, usize), msg: impl std::fmt::Display) -> Error {
    Error::bad_data(at.0, Some(at.1), msg)
}

/// Parse JSONL label records; `name` is used in error messages (`name:line: …`).
pub fn parse_jsonl(raw: &str, name: &str) -> Result<Labels> {
    let mut kind: Option<&'static str> = None;
    let mut ids = BTreeSet::new();
    let (mut sents, mut spans, mut attrs) = (Vec::new(), Vec::new(), Vec::new());
    for (n, line) in raw.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = (name, n + 1);
        let v: Value =
            serde_json::from_str(line).map_err(|e| err(at, format!("invalid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| err(at, "each line must be a JSON object"))?;
        let this = if obj.contains_key("label") {
            "sentences"
        } else if obj.contains_key("spans") {
            "spans"
        } else if obj.contains_key("attributions") {
            "attributions"
        } else {
            return Err(err(
                at,
                "a record needs `label` (sentence labels), `spans` or `attributions`",
            ));
        };
        match kind {
            None => kind = Some(this),
            Some(k) if k != this => {
                return Err(err(at,
                    format!("this record holds {this} but the file's first record holds {k}; use one kind per file"),
                ))
            }
            _ => {}
        }
        let id = string_field(obj, "id", at)?;
        if !ids.insert(id.clone()) {
            return Err(err(at, format!("duplicate id {id:?}")));
        }
        let text = string_field(obj, "text", at)?;
        let chars = text.chars().count();
        match this {
            "sentences" => {
                let label = match obj.get("label") {
                    Some(Value::Number(x)) if x.as_u64() == Some(0) => false,
                    Some(Value::Number(x)) if x.as_u64() == Some(1) => true,
                    other => {
                        return Err(err(
                            at,
                            format!("record {id:?}: `label` must be 0 or 1, got {}", show(other)),
                        ))
                    }
                };
                sents.push(LabelledSentence {
                    id,
                    text,
                    label,
                    outlet: optional_string(obj, "source", at)?,
                    article: optional_string(obj, "article", at)?,
                    biased_words: Vec::new(),
                });
            }
            "spans" => {
                let list = obj["spans"]
                    .as_array()
                    .ok_or_else(|| err(at, format!("record {id:?}: `spans` must be an array")))?;
                let mut out = Vec::new();
                for (j, s) in list.iter().enumerate() {
                    let what = format!("record {id:?}: spans[{j}]");
                    let o = s
                        .as_object()
                        .ok_or_else(|| err(at, format!("{what} must be an object")))?;
                    let start = offset(o.get("start"), at, &format!("{what}.start"))?;
                    let end = offset(o.get("end"), at, &format!("{what}.end"))?;
                    check_range(start, end, chars, at, &what)?;
                    let label = match o.get("label") {
                        Some(Value::String(l)) if !l.trim().is_empty() => l.clone(),
                        other => {
                            return Err(err(
                                at,
                                format!(
                                    "{what}.label must be a non-empty string, got {}",
                                    show(other)
                                ),
                            ))
                        }
                    };
                    out.push(SpanLabel { start, end, label });
                }
                spans.push(SpanRecord {
                    id,
                    text,
                    spans: out,
                });
            }
            _ => {
                let list = obj["attributions"].as_array().ok_or_else(|| {
                    err(
                        at,
                        format!("record {id:?}: `attributions` must be an array"),
                    )
                })?;
                let mut out = Vec::new();
                for (j, a) in list.iter().enumerate() {
                    let what = format!("record {id:?}: attributions[{j}]");
                    let o = a
                        .as_object()
                        .ok_or_else(|| err(at, format!("{what} must be an object")))?;
                    let source = match o.get("source") {
                        None | Some(Value::Null) => None,
                        v => Some(pair(v, chars, at, &format!("{what}.source"))?),
                    };
                    let cue = pair(o.get("cue"), chars, at, &format!("{what}.cue"))?;
                    let content = pair(o.get("content"), chars, at, &format!("{what}.content"))?;
                    out.push(Attribution {
                        source,
                        cue,
                        content,
                    });
                }
                attrs.push(AttributionRecord {
                    id,
                    text,
                    attributions: out,
                });
            }
        }
    }
    Ok(match kind {
        Some("spans") => Labels::Spans(spans),
        Some("attributions") => Labels::Attributions(attrs),
        _ => Labels::Sentences(sents),
    })
}

/// Parse CSV/TSV sentence labels (header `id,text,label` plus optional `source,article`).
pub fn parse_csv(raw: &[u8], delimiter: u8, name: &str) -> Result<Vec<LabelledSentence>> {
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(raw);
    let headers = rdr.headers().map_err(|e| err((name, 1), e))?.clone();
    let col = |c: &str| headers.iter().position(|h| h.trim() == c);
    let need = |c: &str| {
        col(c).ok_or_else(|| {
            err(
                (name, 1),
                format!(
                    "no `{c}` column (sentence labels need id,text,label; optional source,article)"
                ),
            )
        })
    };
    let (ii, ti, li) = (need("id")?, need("text")?, need("label")?);
    let (si, ai) = (col("source"), col("article"));
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            err((name, line), e)
        })?;
        let at = (name, rec.position().map_or(0, |p| p.line() as usize));
        let get = |i: usize| rec.get(i).unwrap_or("").to_string();
        let id = get(ii);
        if id.trim().is_empty() {
            return Err(err(at, "`id` is empty"));
        }
        if !ids.insert(id.clone()) {
            return Err(err(at, format!("duplicate id {id:?}")));
        }
        let text = get(ti);
        if text.trim().is_empty() {
            return Err(err(at, format!("record {id:?}: `text` is empty")));
        }
        let label = match get(li).trim() {
            "0" => false,
            "1" => true,
            other => {
                return Err(err(
                    at,
                    format!("record {id:?}: `label` must be 0 or 1, got {other:?}"),
                ))
            }
        };
        let opt = |i: Option<usize>| i.map(get).filter(|s| !s.is_empty());
        out.push(LabelledSentence {
            id,
            text,
            label,
            outlet: opt(si),
            article: opt(ai),
            biased_words: Vec::new(),
        });
    }
    Ok(out)
}

fn show(v: Option<&Value>) -> String {
    v.map_or("nothing".to_string(), Value::to_string)
}

fn string_field(obj: &Map<String, Value>, key: &str, at: (&str, usize)) -> Result<String> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        other => Err(err(
            at,
            format!("`{key}` must be a non-empty string, got {}", show(other)),
        )),
    }
}

fn optional_string(
    obj: &Map<String, Value>,
    key: &str,
    at: (&str, usize),
) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
        Some(other) => Err(err(at, format!("`{key}` must be a string, got {other}"))),
    }
}

fn offset(v: Option<&Value>, at: (&str, usize), what: &str) -> Result<usize> {
    v.and_then(Value::as_u64)
        .map(|x| x as usize)
        .ok_or_else(|| {
            err(
                at,
                format!("{what} must be a non-negative integer, got {}", show(v)),
            )
        })
}

fn check_range(
    start: usize,
    end: usize,
    chars: usize,
    at: (&str, usize),
    what: &str,
) -> Result<()> {
    if start >= end || end > chars {
        return Err(err(
            at,
            format!(
                "{what}: [{start}, {end}) is not a non-empty range inside the text ({chars} characters)"
            ),
        ));
    }
    Ok(())
}

fn pair(v: Option<&Value>, chars: usize, at: (&str, usize), what: &str) -> Result<(usize, usize)> {
    let arr = v
        .and_then(Value::as_array)
        .filter(|a| a.len() == 2)
        .ok_or_else(|| err(at, format!("{what} must be [start, end], got {}", show(v))))?;
    let start = offset(arr.first(), at, &format!("{what}[0]"))?;
    let end = offset(arr.get(1), at, &format!("{what}[1]"))?;
    check_range(start, end, chars, at, what)?;
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(r: Result<Labels>) -> String {
        match r {
            Err(e @ Error::BadData { .. }) => e.to_string(),
            other => panic!("expected a data error, got {other:?}"),
        }
    }

    #[test]
    fn sentence_labels_parse_with_optional_fields() {
        let raw = "{\"id\":\"a\",\"text\":\"A radical plan.\",\"label\":1,\"source\":\"X\",\"article\":\"x1\"}\n\n\
                   {\"id\":\"b\",\"text\":\"The plan passed.\",\"label\":0}\n";
        let Labels::Sentences(v) = parse_jsonl(raw, "f.jsonl").unwrap() else {
            panic!("not sentences")
        };
        assert_eq!(v.len(), 2);
        assert!(v[0].label && !v[1].label);
        assert_eq!(v[0].outlet.as_deref(), Some("X"));
        assert_eq!(v[0].article.as_deref(), Some("x1"));
        assert_eq!(v[1].article, None);
    }

    #[test]
    fn sentence_label_errors_name_the_line() {
        let ok = "{\"id\":\"a\",\"text\":\"t\",\"label\":1}\n";
        for (bad, want) in [
            (
                "{\"id\":\"b\",\"text\":\"t\",\"label\":2}",
                "f.jsonl:2: record \"b\": `label` must be 0 or 1",
            ),
            (
                "{\"id\":\"a\",\"text\":\"t\",\"label\":0}",
                "f.jsonl:2: duplicate id \"a\"",
            ),
            (
                "{\"id\":\"b\",\"label\":0}",
                "f.jsonl:2: `text` must be a non-empty string",
            ),
            (
                "{\"id\":\"b\",\"text\":\"t\"}",
                "f.jsonl:2: a record needs `label`",
            ),
            ("not json", "f.jsonl:2: invalid JSON"),
            (
                "{\"id\":\"b\",\"text\":\"t\",\"spans\":[]}",
                "f.jsonl:2: this record holds spans",
            ),
        ] {
            let m = msg(parse_jsonl(&format!("{ok}{bad}\n"), "f.jsonl"));
            assert!(m.starts_with(want), "{m:?} does not start with {want:?}");
        }
    }

    #[test]
    fn spans_use_character_offsets_and_are_checked() {
        // "Café" is 4 characters but 5 bytes: [5, 11) is "ruined" in characters.
        let raw = "{\"id\":\"s\",\"text\":\"Café ruined.\",\"spans\":[{\"start\":5,\"end\":11,\"label\":\"loaded\"}]}\n";
        let Labels::Spans(v) = parse_jsonl(raw, "s.jsonl").unwrap() else {
            panic!("not spans")
        };
        let s = &v[0].spans[0];
        let got: String = v[0]
            .text
            .chars()
            .skip(s.start)
            .take(s.end - s.start)
            .collect();
        assert_eq!(got, "ruined");
        for (bad, want) in [
            (
                "\"start\":5,\"end\":13,\"label\":\"loaded\"",
                "not a non-empty range inside the text (12 characters)",
            ),
            (
                "\"start\":5,\"end\":5,\"label\":\"loaded\"",
                "not a non-empty range",
            ),
            (
                "\"start\":-1,\"end\":5,\"label\":\"loaded\"",
                "spans[0].start must be a non-negative integer",
            ),
            (
                "\"start\":0,\"end\":5,\"label\":\"\"",
                "spans[0].label must be a non-empty string",
            ),
        ] {
            let line = format!("{{\"id\":\"s\",\"text\":\"Café ruined.\",\"spans\":[{{{bad}}}]}}");
            let m = msg(parse_jsonl(&line, "s.jsonl"));
            assert!(m.starts_with("s.jsonl:1: record \"s\""), "{m}");
            assert!(m.contains(want), "{m:?} lacks {want:?}");
        }
    }

    #[test]
    fn attributions_parse_and_are_checked() {
        let text = "Officials said the plan failed.";
        let raw = format!(
            "{{\"id\":\"a\",\"text\":\"{text}\",\"attributions\":[{{\"source\":[0,9],\"cue\":[10,14],\"content\":[15,30]}}]}}\n\
             {{\"id\":\"b\",\"text\":\"{text}\",\"attributions\":[{{\"source\":null,\"cue\":[10,14],\"content\":[15,30]}}]}}\n"
        );
        let Labels::Attributions(v) = parse_jsonl(&raw, "a.jsonl").unwrap() else {
            panic!("not attributions")
        };
        assert_eq!(v[0].attributions[0].source, Some((0, 9)));
        assert_eq!(v[1].attributions[0].source, None);
        assert_eq!(&text[15..30], "the plan failed");
        let bad = format!(
            "{{\"id\":\"a\",\"text\":\"{text}\",\"attributions\":[{{\"source\":[0,9],\"content\":[15,30]}}]}}"
        );
        let m = msg(parse_jsonl(&bad, "a.jsonl"));
        assert!(
            m.starts_with("a.jsonl:1: record \"a\": attributions[0].cue must be [start, end]"),
            "{m}"
        );
        let bad = bad
            .replace("\"content\"", "\"cue\":[10,14],\"content\"")
            .replace("[15,30]", "[15,99]");
        assert!(msg(parse_jsonl(&bad, "a.jsonl")).contains("attributions[0].content: [15, 99)"));
    }

    #[test]
    fn csv_sentence_labels() {
        let raw =
            b"id,text,label,source\na,\"A radical, reckless plan.\",1,X\nb,The plan passed.,0,\n";
        let v = parse_csv(raw, b',', "f.csv").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].text, "A radical, reckless plan.");
        assert_eq!(
            (v[0].outlet.as_deref(), v[1].outlet.as_deref()),
            (Some("X"), None)
        );
        let e = parse_csv(b"id,text,label\na,t,1\nb,t,yes\n", b',', "f.csv").unwrap_err();
        assert!(
            e.to_string()
                .contains("f.csv:3: record \"b\": `label` must be 0 or 1"),
            "{e}"
        );
        let e = parse_csv(b"id,text\na,t\n", b',', "f.csv").unwrap_err();
        assert!(e.to_string().contains("f.csv:1: no `label` column"), "{e}");
    }
}
