//! Attributions: who is cited (SOURCE), with which verb (CUE), saying what (CONTENT).
//!
//! * A [`TaggerHead`] over the encoder's token states tags SOURCE / CUE / CONTENT spans in each
//!   sentence (BIO labels [`labels`]); it reads the same single encoder pass as the sentence
//!   heads ([`crate::encode::Encoder::encode_tokens`]).
//! * [`tag_article`]: per-sentence spans → article byte offsets, with contents that cross a
//!   sentence boundary joined (see "Cross-sentence content" below).
//! * [`pair`]: spans of one sentence → [`Attribution`] records, the cue as the anchor.
//! * [`cues`]: cue lemmas and their stance (neutral / loaded ...).
//! * [`speakers`]: grouping speaker names ("Akhund" = "Mohammad Hassan Akhund").
//!
//! ## Cross-sentence content
//! News contents often run over several sentences (a quote of three sentences after one "he
//! said"). The tagger works per sentence (the encoder's unit everywhere in slant). Training: a
//! gold span that crosses sentence boundaries is cut at them and each piece is trained as a span
//! of its sentence (so the second sentence of a long quote is learnt as CONTENT from its first
//! word). Decoding: a CONTENT span that ends at the last word of a sentence and a CONTENT span
//! that starts at the first word of the next sentence are joined into one span, which is how a
//! multi-sentence gold content can be matched exactly. In sentence records, an attribution whose
//! content continues into the next sentence points to the joined span.
//!
//! ## Nested attributions
//! PolNeAR nests attributions ("X said that Y claimed Z"); one BIO sequence cannot hold both
//! levels. Training keeps, where gold spans overlap, CUE first, then SOURCE, then CONTENT, so the
//! inner attribution is learnt and the outer content is cut around it. A per-role tagger
//! ([`Scheme::PerRole`], [`labels_per_role`]) has one BIO sequence per role, so the outer
//! CONTENT keeps the inner SOURCE and CUE ([`sentence_tags`]; of two nested contents, the outer);
//! [`merge_nested`], [`join_sentences`] and [`pair`] handle its overlapping spans. On PolNeAR
//! dev it scored below the flat tagger, which is the committed one (see
//! `models/ATTRIBUTION_CARD.md`, also for the ceiling of each scheme:
//! [`crate::eval::attribution::oracle_scores`]).

pub mod cues;
pub mod speakers;

use std::collections::BTreeMap;
use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

use crate::data::polnear::{PolnearArticle, ROLES};
use crate::encode::TokenEncoding;
use crate::heads::tagger::{bio_labels, per_role_labels, Scheme, TagSpan, TaggerHead};
use crate::heads::tagger::{bio_tags, per_role_code, GoldSpan};
use crate::metrics::spans::LabeledSpan;
use crate::segment::SentenceSpan;

/// Name of the committed attribution tagger, relative to the models folder.
pub const ATTRIBUTION_HEAD_FILE: &str = "attribution.safetensors";

/// The tagger's labels: `O`, `B-SOURCE`, `I-SOURCE`, `B-CUE`, `I-CUE`, `B-CONTENT`, `I-CONTENT`.
pub fn labels() -> Vec<String> {
    bio_labels(&ROLES)
}

/// The labels of a per-role tagger ([`Scheme::PerRole`]): `O-SOURCE`, `B-SOURCE`, `I-SOURCE`,
/// then the same for CUE and CONTENT.
pub fn labels_per_role() -> Vec<String> {
    per_role_labels(&ROLES)
}

/// The labels of an attribution tagger of `scheme`.
pub fn labels_of(scheme: Scheme) -> Vec<String> {
    match scheme {
        Scheme::Flat => labels(),
        Scheme::PerRole => labels_per_role(),
    }
}

/// Per-token training tags of one sentence (`gold` from [`sentence_gold`], sentence-relative)
/// under `scheme`: flat, indices into [`labels`] (overlapping spans flattened in `gold`'s
/// order: CUE, SOURCE, CONTENT); per role, a [`per_role_code`] of each role's own BIO tag, so
/// a CONTENT keeps the SOURCE and CUE nested in it. Within one role the span listed first
/// keeps a token (of two nested CONTENT spans, the one starting first: the outer).
pub fn sentence_tags(
    text: &str,
    offsets: &[(usize, usize)],
    gold: &[GoldSpan],
    scheme: Scheme,
) -> crate::Result<Vec<Option<usize>>> {
    match scheme {
        Scheme::Flat => bio_tags(text, offsets, gold, &labels()),
        Scheme::PerRole => {
            let per: Vec<Vec<Option<usize>>> = ROLES
                .iter()
                .map(|r| {
                    let g: Vec<GoldSpan> = gold.iter().filter(|s| s.label == *r).cloned().collect();
                    bio_tags(text, offsets, &g, &bio_labels(&[r]))
                })
                .collect::<crate::Result<_>>()?;
            Ok((0..offsets.len())
                .map(|t| {
                    let d: Option<Vec<usize>> = per.iter().map(|p| p[t]).collect();
                    d.map(|d| per_role_code(&d))
                })
                .collect())
        }
    }
}

fn priority(role: &str) -> usize {
    match role {
        "CUE" => 0,
        "SOURCE" => 1,
        _ => 2,
    }
}

/// Gold spans of one sentence, sentence-relative, in training priority order (CUE, SOURCE,
/// CONTENT; see the module doc). Spans are cut at the sentence's bounds; pieces without an
/// alphanumeric character are dropped.
pub fn sentence_gold(article: &PolnearArticle, s: &SentenceSpan) -> Vec<GoldSpan> {
    let mut out: Vec<GoldSpan> = article
        .spans
        .iter()
        .filter(|g| g.start < s.end && g.end > s.start)
        .map(|g| GoldSpan {
            label: g.role.to_string(),
            start: g.start.max(s.start) - s.start,
            end: g.end.min(s.end) - s.start,
        })
        .filter(|g| {
            article.text[s.start + g.start..s.start + g.end]
                .chars()
                .any(char::is_alphanumeric)
        })
        .collect();
    out.sort_by_key(|g| (priority(&g.label), g.start, g.end));
    out
}

/// Gold spans of a whole article as labelled spans (for [`crate::eval::spans::score`]).
pub fn article_gold(article: &PolnearArticle) -> Vec<LabeledSpan> {
    article
        .spans
        .iter()
        .map(|s| LabeledSpan::new(s.role, s.start, s.end))
        .collect()
}

/// Spans of one article: each sentence's tagged spans in article offsets, fragments merged
/// ([`merge_fragments`]), CONTENT joined across sentence boundaries (module doc) unless the
/// later sentence opens a new quotation, a quotation split by its attribution over two
/// sentences covered as one CONTENT (`split_quote_head`), and SOURCE / CONTENT spans dropped
/// when no sentence they touch has a CUE (they belong to no attribution). `tagged[i]` are the
/// sentence-relative spans of `sentences[i]`. Returned in order; `sentence` is the index of the sentence a span starts in.
pub fn join_sentences(
    text: &str,
    sentences: &[SentenceSpan],
    tagged: &[Vec<TagSpan>],
) -> Vec<(usize, TagSpan)> {
    let mut out: Vec<(usize, TagSpan)> = Vec::new();
    for (i, (s, spans)) in sentences.iter().zip(tagged).enumerate() {
        let spans = merge_nested(&text[s.start..s.end], spans);
        for (k, t) in spans.iter().enumerate() {
            let mut t = t.clone();
            t.start += s.start;
            t.end += s.start;
            // A sentence opening a quotation with a cue of its own starts a new content.
            let new_quote =
                text[t.start..].starts_with(['“', '"']) && spans.iter().any(|x| x.label == "CUE");
            if k == 0 && t.label == "CONTENT" && i > 0 && !new_quote {
                let lead_ok = !text[s.start..t.start].chars().any(char::is_alphanumeric);
                let prev = &sentences[i - 1];
                // The last CONTENT so far (the last span, unless a nested SOURCE / CUE of a
                // per-role tagger follows it; a flat span after it has a letter and fails
                // `tail_ok` anyway).
                let last_content = out.iter().rposition(|(_, x)| x.label == "CONTENT");
                if let Some((_, last)) = last_content.map(|c| &mut out[c]) {
                    let tail_ok = last.label == "CONTENT"
                        && last.end > prev.start
                        && last.end <= prev.end
                        && !text[last.end..prev.end].chars().any(char::is_alphanumeric);
                    if lead_ok && tail_ok {
                        let (n_a, n_b) = ((last.end - last.start) as f32, (t.end - t.start) as f32);
                        last.score = (last.score * n_a + t.score * n_b) / (n_a + n_b);
                        last.end = t.end;
                        continue;
                    }
                }
            }
            if k == 0 && t.label == "CONTENT" && i > 0 && text[t.start..].starts_with(['“', '"'])
            {
                if let Some(c) = split_quote_head(text, &sentences[i - 1], &out, s, &t, &spans) {
                    out[c].1.end = t.end;
                    continue;
                }
            }
            out.push((i, t));
        }
    }
    // A SOURCE or CONTENT with no CUE in any sentence it touches belongs to no attribution.
    let cue_in: Vec<bool> = (0..sentences.len())
        .map(|i| out.iter().any(|(j, t)| *j == i && t.label == "CUE"))
        .collect();
    out.retain(|(i, t)| {
        t.label == "CUE"
            || sentences
                .iter()
                .enumerate()
                .skip(*i)
                .take_while(|(_, s)| s.start < t.end)
                .any(|(j, _)| cue_in[j])
    });
    out
}

/// A quotation split by its attribution over two sentences (`“X,” she said. “Y.”`): PolNeAR
/// annotates one discontinuous CONTENT, scored by its covering range. `out` holds the spans so
/// far (article offsets); `t` is the first span of sentence `s` (a CONTENT opening with a
/// quote mark) and `spans` all of that sentence's (sentence-relative). When the previous
/// sentence ends with a CONTENT that closes a quotation followed only by SOURCE / CUE spans
/// (at least one CUE) and punctuation, and sentence `s` has no CUE of its own, the index of
/// that CONTENT in `out` is returned (it is to be grown over `t`).
fn split_quote_head(
    text: &str,
    prev: &SentenceSpan,
    out: &[(usize, TagSpan)],
    s: &SentenceSpan,
    t: &TagSpan,
    spans: &[TagSpan],
) -> Option<usize> {
    if spans.iter().any(|x| x.label == "CUE")
        || text[s.start..t.start].chars().any(char::is_alphanumeric)
    {
        return None;
    }
    let tail: Vec<usize> = (0..out.len())
        .rev()
        .take_while(|&j| out[j].1.start >= prev.start && out[j].1.label != "CONTENT")
        .collect();
    let c = out.len().checked_sub(tail.len() + 1)?;
    let (content, last) = (&out[c].1, &out.last()?.1);
    let closes = text[content.start..content.end]
        .trim_end()
        .ends_with(['”', '"']);
    let ok = content.label == "CONTENT"
        && content.start >= prev.start
        && closes
        && tail.iter().any(|&j| out[j].1.label == "CUE")
        && !text[last.end..prev.end].chars().any(char::is_alphanumeric);
    ok.then_some(c)
}

/// [`merge_fragments`] for spans that may overlap (a per-role tagger's: a CONTENT holding
/// another attribution's SOURCE and CUE). Without overlaps this is [`merge_fragments`]. Else
/// the CONTENT spans overlapping a SOURCE or CUE are set aside, the rest (minus any span
/// overlapping one kept before it) goes through [`merge_fragments`], the set-aside contents
/// end before a trailing `.` `,` `;` `:` as there, and all are returned sorted by start,
/// longer first.
pub fn merge_nested(text: &str, spans: &[TagSpan]) -> Vec<TagSpan> {
    let overlaps = |a: &TagSpan, b: &TagSpan| a.start < b.end && b.start < a.end;
    let any = spans
        .iter()
        .enumerate()
        .any(|(i, a)| spans[i + 1..].iter().any(|b| overlaps(a, b)));
    if !any {
        return merge_fragments(text, spans);
    }
    let (mut outer, mut flat) = (Vec::new(), Vec::new());
    for t in spans {
        let holds =
            t.label == "CONTENT" && spans.iter().any(|u| u.label != "CONTENT" && overlaps(t, u));
        if holds {
            outer.push(t.clone());
        } else if !flat.iter().any(|u: &TagSpan| overlaps(u, t)) {
            flat.push(t.clone());
        }
    }
    let mut out = merge_fragments(text, &flat);
    trim_content_ends(text, &mut outer);
    out.extend(outer);
    out.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    out
}

/// Join fragments within one sentence (sentence-relative spans in order): two CONTENT spans
/// with no other span between them become one (the tagger often drops a word or two inside a
/// long content; an attribution nested inside a content keeps its SOURCE/CUE between the
/// fragments and so is not joined), and two SOURCE or two CUE spans separated only by spaces and
/// punctuation become one. SOURCE / CUE spans of punctuation alone are dropped first; after the
/// edge rules (`extend_contents`, `extend_names`) cues take the auxiliaries and adverbs
/// before them ([`CUE_PREFIXES`]: "has learned") and sources their determiner or title
/// ([`SOURCE_PREFIXES`]: "the campaign", "Mr. Obama"), as PolNeAR's spans do; contents end
/// before a final period or comma (`trim_content_ends`).
pub fn merge_fragments(text: &str, spans: &[TagSpan]) -> Vec<TagSpan> {
    let mut out: Vec<TagSpan> = Vec::new();
    for t in spans {
        // A SOURCE or CUE of punctuation alone ("," "-") is noise.
        if t.label != "CONTENT" && !text[t.start..t.end].chars().any(char::is_alphanumeric) {
            continue;
        }
        if let Some(last) = out.last_mut() {
            let gap = &text[last.end.min(t.start)..t.start];
            let joins = last.label == t.label
                && (t.label == "CONTENT" || !gap.chars().any(char::is_alphanumeric));
            if joins {
                let (n_a, n_b) = ((last.end - last.start) as f32, (t.end - t.start) as f32);
                last.score = (last.score * n_a + t.score * n_b) / (n_a + n_b);
                last.end = t.end;
                continue;
            }
        }
        out.push(t.clone());
    }
    // "according" → "according to".
    for k in 0..out.len() {
        let next_start = out.get(k + 1).map_or(text.len(), |n| n.start);
        let t = &mut out[k];
        if t.label != "CUE" {
            continue;
        }
        let rest = &text[t.end..next_start.max(t.end)];
        let word = &text[t.start..t.end];
        if word.eq_ignore_ascii_case("according") {
            let trimmed = rest.trim_start();
            if trimmed
                .get(..2)
                .is_some_and(|w| w.eq_ignore_ascii_case("to"))
            {
                t.end += rest.len() - trimmed.len() + 2;
            }
        }
    }
    add_according_to(text, &mut out);
    extend_contents(text, &mut out);
    extend_names(text, &mut out);
    extend_left(text, &mut out, "CUE", CUE_PREFIXES);
    extend_left(text, &mut out, "SOURCE", SOURCE_PREFIXES);
    trim_content_ends(text, &mut out);
    according_to_content(text, &mut out);
    out
}

/// A sentence that opens with "According to SOURCE," and has no other span (no CONTENT, no
/// other cue): its CONTENT is the clause after the source, up to the sentence's end (without a
/// final `.` `,` `;` `:`), as PolNeAR annotates it ("According to X, the Taliban had three
/// goals" → "the Taliban had three goals"). An apposition right after the source that opens
/// with "a" / "an" and is closed by a comma ("Nishank Motwani, a fellow in ... School, the
/// Taliban ...") belongs to the SOURCE, as in PolNeAR's source spans, and the content starts
/// after it. The tagger often finds the cue (or [`add_according_to`] adds it) and the source
/// but tags the clause `O`. The added span has score 0.
///
/// When the tagger did tag a CONTENT but started it inside such an apposition (the SOURCE
/// "Nishank Motwani, a fellow ... at Harvard", the CONTENT "Kennedy School, the Taliban ..."),
/// the apposition up to its closing comma joins the SOURCE and the CONTENT starts after it
/// (its end is kept).
fn according_to_content(text: &str, spans: &mut Vec<TagSpan>) {
    let (cue, source, content) = match &spans[..] {
        [c, s] => (c, s, None),
        [c, s, t] if t.label == "CONTENT" => (c, s, Some(t)),
        _ => return,
    };
    let opens = !text[..cue.start].chars().any(char::is_alphanumeric);
    if cue.label != "CUE"
        || source.label != "SOURCE"
        || !text[cue.start..cue.end].eq_ignore_ascii_case("according to")
        || !opens
        || !text[cue.end..source.start].trim().is_empty()
    {
        return;
    }
    // With a CONTENT, the apposition may already have begun inside the SOURCE: read it from
    // the SOURCE's first comma.
    let mut src_end = match content {
        Some(_) => text[source.start..source.end]
            .find(',')
            .map_or(source.end, |c| source.start + c),
        None => source.end,
    };
    loop {
        let Some(rest) = text[src_end..].strip_prefix(',') else {
            return;
        };
        let seg = rest.trim_start();
        let seg_start = text.len() - seg.len();
        let apposition = seg.starts_with("a ") || seg.starts_with("an ");
        match seg.find(',') {
            Some(c) if apposition => src_end = seg_start + seg[..c].trim_end().len(),
            _ => break,
        }
        if text[src_end..].starts_with(' ') {
            return;
        }
    }
    let start = text.len() - text[src_end + 1..].trim_start().len();
    if let Some(t) = content {
        // Only a CONTENT that starts inside the apposition (after the SOURCE, before the
        // clause) moves, and the SOURCE only grows.
        if src_end <= source.end || t.start < source.end || t.start >= start || t.end <= start {
            return;
        }
        spans[1].end = src_end;
        spans[2].start = start;
        return;
    }
    let kept = text[start..]
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '.' | ',' | ';' | ':'));
    if !kept.chars().any(char::is_alphanumeric) {
        return;
    }
    spans[1].end = src_end;
    spans.push(TagSpan {
        label: "CONTENT".into(),
        start,
        end: start + kept.len(),
        score: 0.0,
    });
}

/// "according to" outside every tagged span becomes a CUE: in PolNeAR train, 398 of the 429
/// occurrences of "according to" lie in a gold cue (387 of them exactly "according to"), but the
/// tagger sometimes leaves the phrase out while it finds the source after it. The added span has
/// score 0 (it comes from this rule, not the tagger). `spans` are in order and stay so.
fn add_according_to(text: &str, spans: &mut Vec<TagSpan>) {
    const PHRASE: &str = "according to";
    let lower = text.to_ascii_lowercase();
    let word_edge = |i: usize| {
        !text[..i]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
            && !text[i + PHRASE.len()..]
                .chars()
                .next()
                .is_some_and(char::is_alphanumeric)
    };
    for (i, _) in lower.match_indices(PHRASE) {
        let (a, b) = (i, i + PHRASE.len());
        if !word_edge(i) || spans.iter().any(|t| t.start < b && t.end > a) {
            continue;
        }
        let at = spans.partition_point(|t| t.start < a);
        spans.insert(
            at,
            TagSpan {
                label: "CUE".into(),
                start: a,
                end: b,
                score: 0.0,
            },
        );
    }
}

/// A CONTENT span ends before a trailing `.`, `,`, `;`, `:` and spaces (PolNeAR's contents
/// leave the sentence's final period out, while a closing quote and what it encloses stay:
/// `“… no.”` is kept whole). The tagger, read by Viterbi, often takes the period in.
fn trim_content_ends(text: &str, spans: &mut [TagSpan]) {
    for t in spans.iter_mut().filter(|t| t.label == "CONTENT") {
        let kept = text[t.start..t.end]
            .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '.' | ',' | ';' | ':'));
        if kept.chars().any(char::is_alphanumeric) {
            t.end = t.start + kept.len();
        }
    }
}

/// Words a CUE span is grown over to its left (`extend_left`): auxiliaries and the adverbs
/// PolNeAR's annotators include in a cue ("has learned", "also said", "is saying").
pub const CUE_PREFIXES: &[&str] = &[
    "has", "have", "had", "is", "are", "was", "were", "also", "now", "then", "even", "once",
];

/// Words a SOURCE span is grown over to its left (`extend_left`): determiners and titles,
/// which PolNeAR's source spans include ("the Trump campaign", "Mr. Obama").
pub const SOURCE_PREFIXES: &[&str] = &[
    "the", "a", "an", "one", "mr.", "mrs.", "ms.", "dr.", "mr", "mrs", "ms", "dr",
];

/// Grow each `label` span over the words of `prefixes` (case-insensitive) right before it,
/// separated by single spaces, up to the previous span.
fn extend_left(text: &str, spans: &mut [TagSpan], label: &str, prefixes: &[&str]) {
    for k in 0..spans.len() {
        if spans[k].label != label {
            continue;
        }
        let lo = if k == 0 { 0 } else { spans[k - 1].end };
        if lo > spans[k].start {
            continue;
        }
        loop {
            let before = &text[lo..spans[k].start];
            let Some(stripped) = before.strip_suffix(' ') else {
                break;
            };
            let w_start = stripped.rfind(' ').map_or(0, |i| i + 1);
            let w = &stripped[w_start..];
            if !prefixes.contains(&w.to_lowercase().as_str()) {
                break;
            }
            spans[k].start = lo + w_start;
        }
    }
}

/// Grow each SOURCE span over the capitalised words right before and after it (up to the
/// neighbouring spans), so a name the tagger cut ("Nishank" of "Nishank Motwani") is whole.
/// Words in [`crate::actors`]'s sentence-opener list ("According", "The", "However") stop it.
fn extend_names(text: &str, spans: &mut [TagSpan]) {
    let is_name = |w: &str| {
        w.chars().next().is_some_and(char::is_uppercase)
            && !crate::actors::OPENERS.contains(&w.to_lowercase().as_str())
    };
    for k in 0..spans.len() {
        if spans[k].label != "SOURCE" {
            continue;
        }
        let lo = if k == 0 { 0 } else { spans[k - 1].end };
        let hi = spans.get(k + 1).map_or(text.len(), |n| n.start);
        if lo > spans[k].start || spans[k].end > hi {
            continue;
        }
        // Left: "Word Word [span" with single spaces.
        loop {
            let before = &text[lo..spans[k].start];
            let Some(stripped) = before.strip_suffix(' ') else {
                break;
            };
            let w_start = stripped.rfind(' ').map_or(0, |i| i + 1);
            let w = &stripped[w_start..];
            if w.is_empty() || !w.chars().all(char::is_alphabetic) || !is_name(w) {
                break;
            }
            spans[k].start = lo + w_start;
        }
        // Right: "span] Word Word".
        loop {
            let after = &text[spans[k].end..hi];
            let Some(rest) = after.strip_prefix(' ') else {
                break;
            };
            let w_len = rest
                .find(|c: char| !c.is_alphabetic())
                .unwrap_or(rest.len());
            let w = &rest[..w_len];
            if w.is_empty() || !is_name(w) {
                break;
            }
            spans[k].end += 1 + w_len;
        }
    }
}

/// Words of a gap (alphanumeric runs).
fn gap_words(s: &str) -> usize {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .count()
}

/// Grow each CONTENT span over a gap of at most [`MAX_EDGE_WORDS`] words up to the neighbouring
/// span or the sentence's edge (the tagger often misses a content's first or last word):
/// leading spaces are skipped, and at the end, trailing spaces and `.`, `,`, `;`, `:` are left
/// out (closing quotes are kept).
fn extend_contents(text: &str, spans: &mut [TagSpan]) {
    for k in 0..spans.len() {
        if spans[k].label != "CONTENT" {
            continue;
        }
        let lo = if k == 0 { 0 } else { spans[k - 1].end };
        let hi = spans.get(k + 1).map_or(text.len(), |n| n.start);
        let (start, end) = (spans[k].start, spans[k].end);
        if lo <= start {
            let gap = &text[lo..start];
            let n = gap_words(gap);
            if n > 0 && n <= MAX_EDGE_WORDS {
                let lead = gap.len() - gap.trim_start().len();
                let first = gap
                    .char_indices()
                    .find(|(_, c)| c.is_alphanumeric())
                    .map_or(lead, |(i, _)| i);
                spans[k].start = lo + first;
            }
        }
        if end <= hi {
            let gap = &text[end..hi];
            let n = gap_words(gap);
            if n > 0 && n <= MAX_EDGE_WORDS {
                let kept = gap.trim_end_matches(|c: char| {
                    c.is_whitespace() || matches!(c, '.' | ',' | ';' | ':')
                });
                spans[k].end = end + kept.len();
            }
        }
    }
}

/// Most words a CONTENT span is grown by at either edge (`extend_contents`).
pub const MAX_EDGE_WORDS: usize = 2;

/// Tag every sentence of an article (`enc[i]` is the token encoding of `sentences[i]`) and join
/// cross-sentence contents.
pub fn tag_article(
    head: &TaggerHead,
    text: &str,
    sentences: &[SentenceSpan],
    enc: &[TokenEncoding],
) -> Vec<(usize, TagSpan)> {
    let tagged: Vec<Vec<TagSpan>> = sentences
        .iter()
        .zip(enc)
        .map(|(s, e)| {
            let text = &text[s.start..s.end];
            match head.extra_layers() {
                None => head.tag(text, &e.states, &e.offsets, e.n_tokens),
                Some(_) => head.tag(text, &token_features(e), &e.offsets, e.n_tokens),
            }
        })
        .collect();
    join_sentences(text, sentences, &tagged)
}

/// The features a tagger with extra layers reads for one sentence
/// ([`crate::heads::tagger::TaggerHead::extra_layers`]): per token its final state, then
/// [`TokenEncoding::extra`] (from [`crate::encode::Encoder::encode_tokens`] with `extra`); training
/// builds the same features ([`crate::train::tagger::extra_layer_features`]).
pub fn token_features(e: &TokenEncoding) -> Vec<f32> {
    let hidden = e.states.len() / e.n_tokens.max(1);
    crate::heads::tagger::concat_extra(&e.states, &[&e.extra], hidden)
}

/// A span in an article: byte offsets and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextSpan {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

impl TextSpan {
    fn of(text: &str, start: usize, end: usize) -> Self {
        Self {
            start,
            end,
            text: crate::segment::display_text(&text[start..end]),
        }
    }
}

/// One attribution of a sentence record (byte offsets into the article).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// Who is cited; absent when the sentence names no source for this cue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<TextSpan>,
    pub cue: TextSpan,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<TextSpan>,
    /// Lemma of the cue's reporting verb (see [`cues`]).
    pub cue_lemma: String,
    /// `neutral`, `loaded` (evaluative verbs), `belief`, or `other` (see [`cues`]).
    pub cue_stance: String,
    /// `direct` (quoted content), `indirect`, `mixed` (partly quoted), `according_to`.
    pub kind: String,
    /// When `source` is absent or names nobody (a pronoun: "he said"): the nearest preceding
    /// named speaker of the article within a few sentences, if there is one (`linked_from`
    /// says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_source: Option<TextSpan>,
    /// `"previous_sentence"` when `linked_source` was taken from an earlier sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_from: Option<String>,
    /// Speaker group key (normalised name) of the source or linked source, for profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
}

const QUOTES: [char; 6] = ['"', '“', '”', '«', '»', '„'];

/// The kind of an attribution from its cue and content.
pub fn kind(cue_text: &str, content: Option<&str>) -> &'static str {
    let c = cue_text.trim().to_lowercase();
    if c.starts_with("according") {
        return "according_to";
    }
    let Some(content) = content else {
        return "indirect";
    };
    let t = content.trim();
    let quote_chars = t.chars().filter(|c| QUOTES.contains(c)).count();
    let starts = t.starts_with(QUOTES);
    let ends = t
        .trim_end_matches(['.', ',', ';', ':', '!', '?'])
        .ends_with(QUOTES)
        || t.ends_with(QUOTES);
    if starts && ends {
        "direct"
    } else if quote_chars > 0 {
        "mixed"
    } else {
        "indirect"
    }
}

/// Pair the spans of one sentence into attributions: every CUE is an anchor; it takes the
/// nearest SOURCE of the sentence (distance between the spans' closest ends; ties: the one
/// before the cue) and the nearest CONTENT (same rule). A source or content may serve several
/// cues ("X said and added"). Spans are in article offsets; the output is in cue order.
pub fn pair(text: &str, spans: &[TagSpan]) -> Vec<Attribution> {
    let dist = |a: &TagSpan, b: &TagSpan| -> (usize, bool) {
        if a.end <= b.start {
            (b.start - a.end, false)
        } else if b.end <= a.start {
            (a.start - b.end, true)
        } else {
            (0, false)
        }
    };
    // A span holding the cue (a CONTENT of an outer attribution, from a per-role tagger) is
    // not this cue's.
    let nearest = |cue: &TagSpan, role: &str| -> Option<&TagSpan> {
        spans
            .iter()
            .filter(|s| s.label == role && !(s.start <= cue.start && s.end >= cue.end))
            .min_by_key(|s| {
                let (d, after) = dist(s, cue);
                (d, after, s.start)
            })
    };
    let mut out = Vec::new();
    for cue in spans.iter().filter(|s| s.label == "CUE") {
        let source = nearest(cue, "SOURCE").map(|s| TextSpan::of(text, s.start, s.end));
        let content = nearest(cue, "CONTENT").map(|s| TextSpan::of(text, s.start, s.end));
        let cue_text = &text[cue.start..cue.end];
        let lemma = cues::lemma(cue_text);
        let speaker = source.as_ref().map(|s| speakers::key(&s.text));
        out.push(Attribution {
            cue_stance: cues::stance(&lemma).to_string(),
            kind: kind(cue_text, content.as_ref().map(|c| c.text.as_str())).to_string(),
            cue_lemma: lemma,
            cue: TextSpan::of(text, cue.start, cue.end),
            source,
            content,
            linked_source: None,
            linked_from: None,
            speaker: speaker.filter(|k| !k.is_empty()),
        });
    }
    out
}

/// Attributions per sentence of an article, with source-less (or pronoun-source) cues linked to the nearest
/// preceding named speaker (a SOURCE span that looks like a name: [`speakers::is_named`]) in
/// an earlier sentence of the article, when there is one within `window` sentences.
pub fn article_attributions(
    text: &str,
    n_sentences: usize,
    spans: &[(usize, TagSpan)],
    window: usize,
) -> Vec<Vec<Attribution>> {
    let mut per: Vec<Vec<TagSpan>> = vec![Vec::new(); n_sentences];
    for (i, s) in spans {
        per[*i].push(s.clone());
    }
    let mut out: Vec<Vec<Attribution>> = Vec::with_capacity(n_sentences);
    let mut last_named: Option<(usize, TextSpan)> = None;
    for (i, ss) in per.iter().enumerate() {
        let mut atts = pair(text, ss);
        for a in &mut atts {
            let unnamed = a
                .source
                .as_ref()
                .is_none_or(|s| !speakers::is_named(&s.text));
            if unnamed {
                if let Some((j, sp)) = &last_named {
                    if i > *j && i - j <= window {
                        a.linked_source = Some(sp.clone());
                        a.linked_from = Some("previous_sentence".into());
                        a.speaker = Some(speakers::key(&sp.text)).filter(|k| !k.is_empty());
                    }
                }
            }
        }
        for s in ss.iter().filter(|s| s.label == "SOURCE") {
            let t = &text[s.start..s.end];
            if speakers::is_named(t) {
                last_named = Some((i, TextSpan::of(text, s.start, s.end)));
            }
        }
        out.push(atts);
    }
    out
}

/// Is a sentence an unattributed assertion: no attribution of its own and no part of it inside
/// a tagged CONTENT span (a sentence of a multi-sentence quote is attributed).
pub fn unattributed(
    attributions: &[Attribution],
    sentence: &SentenceSpan,
    spans: &[(usize, TagSpan)],
) -> bool {
    attributions.is_empty()
        && !spans
            .iter()
            .any(|(_, s)| s.label == "CONTENT" && s.start < sentence.end && s.end > sentence.start)
}

#[cfg(test)]
pub(crate) mod fuzz_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(label: &str, start: usize, end: usize) -> TagSpan {
        TagSpan {
            label: label.into(),
            start,
            end,
            score: 1.0,
        }
    }

    fn at(text: &str, needle: &str, label: &str) -> TagSpan {
        let s = text.find(needle).expect(needle);
        ts(label, s, s + needle.len())
    }

    #[test]
    fn pairs_cue_with_nearest_source_and_content() {
        let t =
            "Akhund claimed the Taliban did not want endorsement, while France 24 reports a delay.";
        let spans = vec![
            at(t, "Akhund", "SOURCE"),
            at(t, "claimed", "CUE"),
            at(t, "the Taliban did not want endorsement", "CONTENT"),
            at(t, "France 24", "SOURCE"),
            at(t, "reports", "CUE"),
            at(t, "a delay", "CONTENT"),
        ];
        let a = pair(t, &spans);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].source.as_ref().unwrap().text, "Akhund");
        assert_eq!(a[0].cue_lemma, "claim");
        assert_eq!(a[0].cue_stance, "loaded");
        assert_eq!(a[0].kind, "indirect");
        assert_eq!(a[1].source.as_ref().unwrap().text, "France 24");
        assert_eq!(a[1].cue_lemma, "report");
        assert_eq!(a[1].cue_stance, "neutral");
        assert_eq!(a[1].content.as_ref().unwrap().text, "a delay");
    }

    #[test]
    fn according_to_source_comma_takes_the_clause_as_content() {
        let t = "According to Nishank Motwani, a fellow in the Edward S. Mason program at Harvard \
                 Kennedy School, the Taliban had three goals in mind.";
        assert_eq!(
            merged(t, &[("According to", "CUE"), ("Nishank Motwani", "SOURCE")]),
            [
                "CUE:According to",
                "SOURCE:Nishank Motwani, a fellow in the Edward S. Mason program at Harvard \
                 Kennedy School",
                "CONTENT:the Taliban had three goals in mind"
            ]
        );
        // The tagger's CONTENT starts inside the apposition: the apposition joins the SOURCE.
        assert_eq!(
            merged(
                t,
                &[
                    ("According to", "CUE"),
                    (
                        "Nishank Motwani, a fellow in the Edward S. Mason program at Harvard",
                        "SOURCE"
                    ),
                    (
                        "Kennedy School, the Taliban had three goals in mind",
                        "CONTENT"
                    )
                ]
            ),
            [
                "CUE:According to",
                "SOURCE:Nishank Motwani, a fellow in the Edward S. Mason program at Harvard \
                 Kennedy School",
                "CONTENT:the Taliban had three goals in mind"
            ]
        );
        // A CONTENT that already starts after the apposition is left alone.
        let right = [
            ("According to", "CUE"),
            ("Nishank Motwani", "SOURCE"),
            ("the Taliban had three goals in mind", "CONTENT"),
        ];
        assert_eq!(
            merged(t, &right),
            [
                "CUE:According to",
                "SOURCE:Nishank Motwani",
                "CONTENT:the Taliban had three goals in mind"
            ]
        );
        let t = "According to polls, Trump leads.";
        assert_eq!(
            merged(t, &[("polls", "SOURCE")]),
            ["CUE:According to", "SOURCE:polls", "CONTENT:Trump leads"]
        );
        // Another span in the sentence, no comma after the source, or the phrase not opening
        // the sentence: left alone.
        let t = "According to polls, Trump said he leads.";
        assert_eq!(
            merged(t, &[("polls", "SOURCE"), ("said", "CUE")]).len(),
            3,
            "no content added"
        );
        let t = "According to polls Trump leads.";
        assert_eq!(merged(t, &[("polls", "SOURCE")]).len(), 2);
        let t = "Trump leads according to polls, by far.";
        assert_eq!(merged(t, &[("polls", "SOURCE")]).len(), 2);
    }

    #[test]
    fn nested_spans_keep_the_outer_content_and_pair_inner_cues_with_their_own() {
        let t = "Obama said that Trump claimed it.";
        let spans = vec![
            at(t, "Obama", "SOURCE"),
            at(t, "said", "CUE"),
            at(t, "that Trump claimed it.", "CONTENT"),
            at(t, "Trump", "SOURCE"),
            at(t, "claimed", "CUE"),
        ];
        let m = merge_nested(t, &spans);
        let got: Vec<String> = m
            .iter()
            .map(|s| format!("{}:{}", s.label, &t[s.start..s.end]))
            .collect();
        assert_eq!(
            got,
            [
                "SOURCE:Obama",
                "CUE:said",
                "CONTENT:that Trump claimed it",
                "SOURCE:Trump",
                "CUE:claimed"
            ]
        );
        // Without overlaps merge_nested is merge_fragments.
        let flat = vec![
            at(t, "Obama", "SOURCE"),
            at(t, "said", "CUE"),
            at(t, "it", "CONTENT"),
        ];
        assert_eq!(merge_nested(t, &flat), merge_fragments(t, &flat));
        // The inner cue does not take the content that holds it.
        let a = pair(t, &m);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].content.as_ref().unwrap().text, "that Trump claimed it");
        assert_eq!(a[1].source.as_ref().unwrap().text, "Trump");
        assert!(a[1].content.is_none());
        // Joined over sentences: the outer content of the first sentence continues into the
        // second even though a nested cue follows it.
        let t2 = "Obama said that Trump claimed it. And more.";
        let ss = [
            SentenceSpan { start: 0, end: 33 },
            SentenceSpan { start: 34, end: 43 },
        ];
        let j = join_sentences(t2, &ss, &[m.clone(), vec![ts("CONTENT", 0, 8)]]);
        assert!(j.iter().any(|(_, s)| s.label == "CONTENT"
            && &t2[s.start..s.end] == "that Trump claimed it. And more"));
    }

    #[test]
    fn per_role_sentence_tags_nest_and_flat_ones_flatten() {
        let t = "Obama said that Trump claimed it.";
        let off = [
            (0, 5),
            (6, 10),
            (11, 15),
            (16, 21),
            (22, 29),
            (30, 32),
            (32, 33),
        ];
        let g = |label: &str, needle: &str| {
            let s = t.find(needle).unwrap();
            GoldSpan {
                label: label.into(),
                start: s,
                end: s + needle.len(),
            }
        };
        let mut gold = vec![
            g("CONTENT", "that Trump claimed it"),
            g("CONTENT", "it"),
            g("SOURCE", "Trump"),
            g("CUE", "claimed"),
        ];
        gold.sort_by_key(|x| (priority(&x.label), x.start, x.end));
        let flat = sentence_tags(t, &off, &gold, Scheme::Flat).unwrap();
        let l = labels();
        let names: Vec<&str> = flat.iter().map(|k| l[k.unwrap()].as_str()).collect();
        assert_eq!(
            names,
            ["O", "O", "B-CONTENT", "B-SOURCE", "B-CUE", "I-CONTENT", "O"]
        );
        let per = sentence_tags(t, &off, &gold, Scheme::PerRole).unwrap();
        let digits: Vec<Vec<usize>> = per
            .iter()
            .map(|k| crate::heads::tagger::per_role_digits(k.unwrap(), 3))
            .collect();
        // (SOURCE, CUE, CONTENT): the content runs through Trump and claimed.
        assert_eq!(
            digits,
            [
                [0, 0, 0],
                [0, 0, 0],
                [0, 0, 1],
                [1, 0, 2],
                [0, 1, 2],
                [0, 0, 2],
                [0, 0, 0]
            ]
        );
        assert_eq!(labels_of(Scheme::PerRole)[3], "O-CUE");
    }

    fn merged(t: &str, spans: &[(&str, &str)]) -> Vec<String> {
        let spans: Vec<TagSpan> = spans.iter().map(|(n, l)| at(t, n, l)).collect();
        merge_fragments(t, &spans)
            .iter()
            .map(|s| format!("{}:{}", s.label, &t[s.start..s.end]))
            .collect()
    }

    #[test]
    fn cues_take_auxiliaries_and_sources_their_determiner_or_title() {
        let t = "The campaign has also learned that Mr. Obama was told.";
        assert_eq!(
            merged(t, &[("campaign", "SOURCE"), ("learned", "CUE")]),
            ["SOURCE:The campaign", "CUE:has also learned"]
        );
        let t = "Mr. Obama said it.";
        assert_eq!(
            merged(t, &[("Obama", "SOURCE"), ("said", "CUE")]),
            ["SOURCE:Mr. Obama", "CUE:said"]
        );
        // Not past the previous span, and not over other words.
        let t = "Aides of Trump have said so, allies think.";
        assert_eq!(
            merged(
                t,
                &[
                    ("Aides of Trump", "SOURCE"),
                    ("said", "CUE"),
                    ("think", "CUE")
                ]
            ),
            ["SOURCE:Aides of Trump", "CUE:have said", "CUE:think"]
        );
    }

    #[test]
    fn according_to_outside_the_tagged_spans_is_a_cue() {
        let t = "According to Nishank Motwani, the Taliban had goals, accordingly.";
        assert_eq!(
            merged(t, &[("Motwani", "SOURCE")]),
            [
                "CUE:According to",
                "SOURCE:Nishank Motwani",
                // according_to_content
                "CONTENT:the Taliban had goals, accordingly"
            ]
        );
        // Not inside a tagged span, not twice, not in another word.
        let t = "The poll shows that he leads, according to the poll.";
        assert_eq!(
            merged(t, &[("he leads, according to the poll", "CONTENT")]),
            ["CONTENT:he leads, according to the poll"]
        );
        assert_eq!(merged(t, &[("according", "CUE")]), ["CUE:according to"]);
        assert_eq!(merged("Disaccording tone.", &[]), Vec::<String>::new());
    }

    #[test]
    fn contents_end_before_a_final_period_but_keep_a_closing_quote() {
        let t = "Smith said the plan is dead. Jones said: “It is not.”";
        assert_eq!(
            merged(
                t,
                &[
                    ("Smith", "SOURCE"),
                    ("said", "CUE"),
                    ("the plan is dead.", "CONTENT")
                ]
            ),
            ["SOURCE:Smith", "CUE:said", "CONTENT:the plan is dead"]
        );
        assert_eq!(
            merged(t, &[("“It is not.”", "CONTENT")]),
            ["CONTENT:“It is not.”"]
        );
        // Punctuation alone is left as it is (dropped or joined elsewhere).
        assert_eq!(merged(t, &[(".", "CONTENT")]), ["CONTENT:."]);
    }

    #[test]
    fn punctuation_only_sources_and_cues_are_dropped() {
        let t = "Smith , said so.";
        let spans = vec![
            at(t, "Smith", "SOURCE"),
            at(t, ",", "SOURCE"),
            at(t, "said", "CUE"),
            at(t, ".", "CUE"),
        ];
        let m = merge_fragments(t, &spans);
        let got: Vec<&str> = m.iter().map(|s| &t[s.start..s.end]).collect();
        assert_eq!(got, ["Smith", "said"]);
    }

    fn sentences_of(t: &str, starts: &[&str]) -> Vec<SentenceSpan> {
        let mut b: Vec<usize> = starts.iter().map(|s| t.find(s).expect(s)).collect();
        b.push(t.len() + 1);
        b.windows(2)
            .map(|w| SentenceSpan {
                start: w[0],
                end: w[1] - 1,
            })
            .collect()
    }

    fn rel(t: &str, s: &SentenceSpan, needle: &str, label: &str) -> TagSpan {
        let mut x = at(&t[s.start..s.end], needle, label);
        x.score = 1.0;
        x
    }

    #[test]
    fn a_new_quotation_is_not_joined_to_the_previous_content() {
        let t = "She said the vote was close. “We won,” she added.";
        let ss = sentences_of(t, &["She said", "“We won"]);
        let tagged = vec![
            vec![
                rel(t, &ss[0], "She", "SOURCE"),
                rel(t, &ss[0], "said", "CUE"),
                rel(t, &ss[0], "the vote was close", "CONTENT"),
            ],
            vec![
                rel(t, &ss[1], "“We won,”", "CONTENT"),
                rel(t, &ss[1], "she", "SOURCE"),
                rel(t, &ss[1], "added", "CUE"),
            ],
        ];
        let j = join_sentences(t, &ss, &tagged);
        let contents: Vec<&str> = j
            .iter()
            .filter(|(_, s)| s.label == "CONTENT")
            .map(|(_, s)| &t[s.start..s.end])
            .collect();
        assert_eq!(contents, ["the vote was close", "“We won,”"]);
    }

    #[test]
    fn a_quotation_split_by_its_attribution_is_one_content() {
        let t = "“Here he is,” she said. “Donald is here.” Then he spoke.";
        let ss = sentences_of(t, &["“Here", "“Donald", "Then"]);
        let tagged = vec![
            vec![
                rel(t, &ss[0], "“Here he is,”", "CONTENT"),
                rel(t, &ss[0], "she", "SOURCE"),
                rel(t, &ss[0], "said", "CUE"),
            ],
            vec![rel(t, &ss[1], "“Donald is here.”", "CONTENT")],
            vec![],
        ];
        let j = join_sentences(t, &ss, &tagged);
        let got: Vec<String> = j
            .iter()
            .map(|(_, s)| format!("{}:{}", s.label, &t[s.start..s.end]))
            .collect();
        assert_eq!(
            got,
            [
                "CONTENT:“Here he is,” she said. “Donald is here.”",
                "SOURCE:she",
                "CUE:said"
            ]
        );
        // The second quotation has its own cue: two contents.
        let t = "“Here he is,” she said. “Donald is here,” she added.";
        let ss = sentences_of(t, &["“Here", "“Donald"]);
        let tagged = vec![
            tagged[0].clone(),
            vec![
                rel(t, &ss[1], "“Donald is here,”", "CONTENT"),
                rel(t, &ss[1], "she", "SOURCE"),
                rel(t, &ss[1], "added", "CUE"),
            ],
        ];
        let j = join_sentences(t, &ss, &tagged);
        assert_eq!(j.iter().filter(|(_, s)| s.label == "CONTENT").count(), 2);
    }

    #[test]
    fn kinds() {
        assert_eq!(kind("said", Some("“We will not.”")), "direct");
        assert_eq!(kind("said", Some("“We will not”.")), "direct");
        assert_eq!(kind("said", Some("they would “never” go")), "mixed");
        assert_eq!(kind("said", Some("they would go")), "indirect");
        assert_eq!(kind("According to", Some("x")), "according_to");
    }

    #[test]
    fn content_is_joined_across_a_sentence_boundary() {
        let t = "He said: “We stay. We fight.” Then he left.";
        let b1 = t.find(" We fight").unwrap();
        let b2 = t.find(" Then").unwrap();
        let s1 = SentenceSpan { start: 0, end: b1 };
        let s2 = SentenceSpan {
            start: b1 + 1,
            end: b2,
        };
        let s3 = SentenceSpan {
            start: b2 + 1,
            end: t.len(),
        };
        assert_eq!(&t[s2.start..s2.end], "We fight.”");
        let q = t.find('“').unwrap();
        let tagged = vec![
            vec![ts("SOURCE", 0, 2), ts("CUE", 3, 7), ts("CONTENT", q, b1)],
            vec![ts("CONTENT", 0, b2 - b1 - 1)],
            vec![],
        ];
        let j = join_sentences(t, &[s1, s2, s3], &tagged);
        assert_eq!(j.len(), 3);
        assert_eq!(&t[j[2].1.start..j[2].1.end], "“We stay. We fight.”");
        let atts = article_attributions(t, 3, &j, 3);
        assert!(!unattributed(&atts[1], &s2, &j), "inside a quote");
        assert!(unattributed(&atts[2], &s3, &j));
        assert_eq!(atts[0][0].kind, "direct");
    }

    #[test]
    fn sourceless_cue_links_to_previous_named_speaker() {
        let t = "Mohammad Hassan Akhund said the cabinet is ready. He added that aid must come.";
        let split = t.find(" He").unwrap() + 1;
        let s1 = SentenceSpan {
            start: 0,
            end: split - 1,
        };
        let s2 = SentenceSpan {
            start: split,
            end: t.len(),
        };
        let spans = vec![
            (0, at(t, "Mohammad Hassan Akhund", "SOURCE")),
            (0, at(t, "said", "CUE")),
            (1, at(t, "added", "CUE")),
            (1, at(t, "aid must come", "CONTENT")),
        ];
        let atts = article_attributions(t, 2, &spans, 3);
        let _ = (s1, s2);
        let a = &atts[1][0];
        assert!(a.source.is_none());
        assert_eq!(
            a.linked_source.as_ref().unwrap().text,
            "Mohammad Hassan Akhund"
        );
        assert_eq!(a.linked_from.as_deref(), Some("previous_sentence"));
        assert_eq!(a.speaker.as_deref(), Some("mohammad hassan akhund"));
    }
}

/// Default number of sentences back that a source-less cue looks for a named speaker.
pub const LINK_WINDOW: usize = 3;

/// Attribution counts of an article or a source; they add up with `+=`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttributionCounts {
    /// Sentences scored with the attribution head.
    pub sentences: u64,
    /// Sentences with at least one attribution.
    pub attributed_sentences: u64,
    /// Sentences flagged `unattributed`.
    pub unattributed_sentences: u64,
    /// Attributions (one per cue).
    pub cues: u64,
    /// Attributions per cue stance.
    pub stances: BTreeMap<String, u64>,
    /// Attributions per cue lemma.
    pub cue_lemmas: BTreeMap<String, u64>,
    /// Attributions per speaker key (named sources and linked sources only).
    pub speakers: BTreeMap<String, u64>,
}

impl AttributionCounts {
    /// True when nothing was counted (no attribution head).
    pub fn is_empty(&self) -> bool {
        self.sentences == 0
    }
    /// Count one sentence.
    pub fn add_sentence(&mut self, atts: &[Attribution], unattributed: bool) {
        self.sentences += 1;
        self.attributed_sentences += (!atts.is_empty()) as u64;
        self.unattributed_sentences += unattributed as u64;
        for a in atts {
            self.cues += 1;
            *self.stances.entry(a.cue_stance.clone()).or_default() += 1;
            *self.cue_lemmas.entry(a.cue_lemma.clone()).or_default() += 1;
            if let Some(k) = &a.speaker {
                *self.speakers.entry(k.clone()).or_default() += 1;
            }
        }
    }
}

impl AddAssign<&AttributionCounts> for AttributionCounts {
    fn add_assign(&mut self, o: &AttributionCounts) {
        self.sentences += o.sentences;
        self.attributed_sentences += o.attributed_sentences;
        self.unattributed_sentences += o.unattributed_sentences;
        self.cues += o.cues;
        for (dst, src) in [
            (&mut self.stances, &o.stances),
            (&mut self.cue_lemmas, &o.cue_lemmas),
            (&mut self.speakers, &o.speakers),
        ] {
            for (k, v) in src {
                *dst.entry(k.clone()).or_default() += v;
            }
        }
    }
}

/// A cue lemma and how often a source used it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CueCount {
    pub lemma: String,
    pub stance: String,
    pub count: u64,
}

/// A speaker group and its share of voice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerShare {
    /// Group key (lower-cased normalised name, [`speakers::key`]).
    pub speaker: String,
    /// Attributions credited to the speaker.
    pub attributions: u64,
    /// attributions / attributions with a named speaker, in this source.
    pub share_of_voice: f64,
}

/// The attribution part of a source profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionProfile {
    pub sentences: u64,
    pub attributed_sentences: u64,
    /// attributed_sentences / sentences.
    pub attribution_rate: f64,
    pub cues: u64,
    /// Cues with stance `loaded` / cues.
    pub loaded_cue_share: f64,
    /// Cues per stance.
    pub stances: BTreeMap<String, u64>,
    /// The most used cue lemmas (count desc, then lemma).
    pub top_cues: Vec<CueCount>,
    /// Who gets quoted: speaker groups ([`speakers::group`]) by attributions (desc, then name).
    pub speakers: Vec<SpeakerShare>,
    pub unattributed_sentences: u64,
    /// unattributed_sentences / sentences: assertions in the outlet's own voice.
    pub unattributed_share: f64,
    /// 95% intervals of `attribution_rate`, `loaded_cue_share` and `unattributed_share`,
    /// `[lo, hi]`, computed like the source's `loaded_share_ci` (its `ci_method`: a bootstrap
    /// over articles, or Wilson over sentences/cues for sources with few articles). Filled by
    /// the source profile; `[0, 1]` where nothing was counted.
    #[serde(default = "unit_interval")]
    pub attribution_rate_ci: [f64; 2],
    #[serde(default = "unit_interval")]
    pub loaded_cue_share_ci: [f64; 2],
    #[serde(default = "unit_interval")]
    pub unattributed_share_ci: [f64; 2],
}

fn unit_interval() -> [f64; 2] {
    [0.0, 1.0]
}

/// How each ratio of an attribution profile is counted: numerator and denominator of one
/// article's (or a source's) counts.
pub type RatioParts = fn(&AttributionCounts) -> (u64, u64);

/// The three ratios of a profile, by name, with how they are counted: share of sentences with
/// an attribution, share of loaded cue verbs among cues, share of unattributed assertions.
/// Profiles (intervals) and comparisons (differences) both count them this way.
pub const RATIOS: [(&str, RatioParts); 3] = [
    ("attribution_rate", |c| {
        (c.attributed_sentences, c.sentences)
    }),
    ("loaded_cue_share", |c| {
        (c.stances.get("loaded").copied().unwrap_or(0), c.cues)
    }),
    ("unattributed_share", |c| {
        (c.unattributed_sentences, c.sentences)
    }),
];

/// Cue lemmas and speakers listed per profile.
pub const TOP_N: usize = 10;

fn ratio6(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        ((a as f64 / b as f64) * 1e6).round() / 1e6
    }
}

impl AttributionProfile {
    /// The profile of summed counts (`None` when no sentence was scored with the head).
    pub fn new(c: &AttributionCounts) -> Option<Self> {
        if c.is_empty() {
            return None;
        }
        let mut top: Vec<(&String, &u64)> = c.cue_lemmas.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let grouped = speakers::group(&c.speakers);
        let named: u64 = grouped.values().sum();
        let mut sp: Vec<(String, u64)> = grouped.into_iter().collect();
        sp.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(Self {
            sentences: c.sentences,
            attributed_sentences: c.attributed_sentences,
            attribution_rate: ratio6(c.attributed_sentences, c.sentences),
            cues: c.cues,
            loaded_cue_share: ratio6(c.stances.get("loaded").copied().unwrap_or(0), c.cues),
            stances: c.stances.clone(),
            top_cues: top
                .into_iter()
                .take(TOP_N)
                .map(|(l, n)| CueCount {
                    lemma: l.clone(),
                    stance: cues::stance(l).to_string(),
                    count: *n,
                })
                .collect(),
            speakers: sp
                .into_iter()
                .take(TOP_N)
                .map(|(k, n)| SpeakerShare {
                    speaker: k,
                    attributions: n,
                    share_of_voice: ratio6(n, named),
                })
                .collect(),
            unattributed_sentences: c.unattributed_sentences,
            unattributed_share: ratio6(c.unattributed_sentences, c.sentences),
            attribution_rate_ci: unit_interval(),
            loaded_cue_share_ci: unit_interval(),
            unattributed_share_ci: unit_interval(),
        })
    }

    /// The interval of ratio `name` of [`RATIOS`] (mutable, for the profile to fill in).
    pub fn ci_mut(&mut self, name: &str) -> Option<&mut [f64; 2]> {
        match name {
            "attribution_rate" => Some(&mut self.attribution_rate_ci),
            "loaded_cue_share" => Some(&mut self.loaded_cue_share_ci),
            "unattributed_share" => Some(&mut self.unattributed_share_ci),
            _ => None,
        }
    }
}
