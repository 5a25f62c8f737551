//! A sentence as HTML with its evidence marked: loaded spans, and each attribution's source,
//! cue (with its stance) and content, every mark with a text label beside its colour.
//!
//! Loaded spans carry offsets into the record's `text`; attribution spans carry offsets into
//! the article, whose whitespace the record's `text` collapses, so they are placed by finding
//! their (collapsed) text in the sentence nearest to where the article offset puts them.
//! Marks may overlap (a loaded word inside a quote): the text is cut at every mark boundary
//! and each piece carries the classes of all marks over it.

use maud::{html, Markup};

use crate::attribution::TextSpan;
use crate::pipeline::records::SentenceRecord;

/// What a mark shows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Loaded,
    Source,
    Cue(String),
    Content,
}

impl Kind {
    fn class(&self) -> &'static str {
        match self {
            Kind::Loaded => "m-loaded",
            Kind::Source => "m-source",
            Kind::Cue(_) => "m-cue",
            Kind::Content => "m-content",
        }
    }
    /// The text label written after the marked text.
    fn label(&self) -> String {
        match self {
            Kind::Loaded => "loaded".into(),
            Kind::Source => "source".into(),
            Kind::Cue(stance) => format!("cue: {stance}"),
            Kind::Content => "content".into(),
        }
    }
}

/// A mark: byte range `[start, end)` of the record's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where `span` (article offsets) lies in `r.text`: the part of the span inside the sentence,
/// collapsed like the record's text, found nearest to its article offset. `None` when it is
/// not in this sentence or cannot be found.
pub fn locate(r: &SentenceRecord, span: &TextSpan) -> Option<(usize, usize)> {
    let (lo, hi) = (span.start.max(r.start), span.end.min(r.end));
    if lo >= hi {
        return None;
    }
    let inside = span.text.get(lo - span.start..hi - span.start)?;
    let needle = collapse(inside);
    if needle.is_empty() {
        return None;
    }
    let expected = lo - r.start;
    r.text
        .match_indices(&needle)
        .map(|(at, _)| at)
        .min_by_key(|&at| at.abs_diff(expected))
        .map(|at| (at, at + needle.len()))
}

/// Every mark of a sentence, in text offsets, those that cannot be placed left out.
pub fn marks(r: &SentenceRecord) -> Vec<Mark> {
    let valid = |a: usize, b: usize| {
        a < b && b <= r.text.len() && r.text.is_char_boundary(a) && r.text.is_char_boundary(b)
    };
    let mut out = Vec::new();
    for s in &r.loaded_spans {
        if valid(s.text_start, s.text_end) {
            out.push(Mark {
                start: s.text_start,
                end: s.text_end,
                kind: Kind::Loaded,
            });
        }
    }
    for a in &r.attributions {
        let mut push = |span: &TextSpan, kind: Kind| {
            if let Some((s, e)) = locate(r, span).filter(|&(s, e)| valid(s, e)) {
                out.push(Mark {
                    start: s,
                    end: e,
                    kind,
                });
            }
        };
        if let Some(s) = &a.source {
            push(s, Kind::Source);
        }
        push(&a.cue, Kind::Cue(a.cue_stance.clone()));
        if let Some(c) = &a.content {
            push(c, Kind::Content);
        }
    }
    out.sort_by(|x, y| (x.start, x.end, &x.kind).cmp(&(y.start, y.end, &y.kind)));
    out.dedup();
    out
}

/// The sentence's text with its marks, as HTML (every piece of text escaped).
pub fn marked(r: &SentenceRecord) -> Markup {
    let marks = marks(r);
    let mut cuts: Vec<usize> = vec![0, r.text.len()];
    for m in &marks {
        cuts.push(m.start);
        cuts.push(m.end);
    }
    cuts.sort_unstable();
    cuts.dedup();
    html! {
        @for w in cuts.windows(2) {
            @let (a, b) = (w[0], w[1]);
            @let over: Vec<&Mark> = marks.iter().filter(|m| m.start <= a && b <= m.end).collect();
            @if over.is_empty() {
                (&r.text[a..b])
            } @else {
                @let class = over.iter().map(|m| m.kind.class()).collect::<Vec<_>>().join(" ");
                span class=(class) { (&r.text[a..b]) }
            }
            // Labels after the last piece of each mark that ends here (innermost first).
            @for m in marks.iter().filter(|m| m.end == b).rev() {
                sub class=(format!("tag {}", m.kind.class())) { (m.kind.label()) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::Attribution;
    use crate::pipeline::records::LoadedSpan;

    fn span(article: &str, needle: &str) -> TextSpan {
        let start = article.find(needle).unwrap();
        TextSpan {
            start,
            end: start + needle.len(),
            text: needle.into(),
        }
    }

    fn record(article: &str) -> SentenceRecord {
        SentenceRecord {
            text: collapse(article),
            start: 0,
            end: article.len(),
            ..Default::default()
        }
    }

    #[test]
    fn attribution_spans_are_found_in_collapsed_text() {
        let art = "The  minister   said   the plan was \"a disgrace\".";
        let mut r = record(art);
        r.attributions.push(Attribution {
            source: Some(span(art, "The  minister")),
            cue: span(art, "said"),
            content: Some(span(art, "the plan was \"a disgrace\"")),
            cue_lemma: "say".into(),
            cue_stance: "neutral".into(),
            kind: "direct".into(),
            linked_source: None,
            linked_from: None,
            speaker: None,
        });
        let m = marks(&r);
        let texts: Vec<(&str, &Kind)> = m
            .iter()
            .map(|m| (&r.text[m.start..m.end], &m.kind))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("The minister", &Kind::Source),
                ("said", &Kind::Cue("neutral".into())),
                ("the plan was \"a disgrace\"", &Kind::Content)
            ]
        );
        let html = marked(&r).into_string();
        assert!(
            html.contains(
                "<span class=\"m-cue\">said</span><sub class=\"tag m-cue\">cue: neutral</sub>"
            ),
            "{html}"
        );
        // Quotes in the text are escaped.
        assert!(html.contains("&quot;a disgrace&quot;"), "{html}");
    }

    #[test]
    fn overlapping_marks_nest_as_pieces_and_text_is_escaped() {
        let art = "He said <script>alert(1)</script> is vile.";
        let mut r = record(art);
        let vile = r.text.find("vile").unwrap();
        r.loaded_spans.push(LoadedSpan {
            start: vile,
            end: vile + 4,
            text: "vile".into(),
            score: 0.9,
            text_start: vile,
            text_end: vile + 4,
        });
        r.attributions.push(Attribution {
            source: Some(span(art, "He")),
            cue: span(art, "said"),
            content: Some(span(art, "<script>alert(1)</script> is vile")),
            cue_lemma: "say".into(),
            cue_stance: "neutral".into(),
            kind: "indirect".into(),
            linked_source: None,
            linked_from: None,
            speaker: None,
        });
        let html = marked(&r).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(
            html.contains("<span class=\"m-content m-loaded\">vile</span>"),
            "{html}"
        );
        // Both labels follow "vile": the loaded one first (innermost), then content.
        let at = html.find("vile</span>").unwrap();
        let rest = &html[at..];
        assert!(
            rest.find(">loaded<").unwrap() < rest.find(">content<").unwrap(),
            "{html}"
        );
    }

    #[test]
    fn spans_outside_the_sentence_or_invalid_are_left_out() {
        let mut r = record("Short one.");
        r.start = 100;
        r.end = 110;
        let far = TextSpan {
            start: 0,
            end: 5,
            text: "Other".into(),
        };
        assert_eq!(locate(&r, &far), None);
        r.loaded_spans.push(LoadedSpan {
            start: 0,
            end: 99,
            text: "x".into(),
            score: 0.5,
            text_start: 3,
            text_end: 99,
        });
        assert!(marks(&r).is_empty());
        assert_eq!(marked(&r).into_string(), "Short one.");
    }
}
