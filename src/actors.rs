//! Actor labelling: the main actors of a corpus and the words each outlet uses to name them.
//!
//! No named-entity model is involved; the rules are simple, documented and testable:
//!
//! * **Mentions.** A *name* is a maximal run of capitalised words (`Taliban`, `United Nations`,
//!   `Mohammad Hassan Akhund`; `of`, `al`, `bin` may join two capitalised words). A leading `The`
//!   and titles (`President`, `Prime Minister`, …) are dropped. Every word of a name that is not
//!   a title also counts as a mention of itself, so `Taliban Prime Minister Mohammad Hassan
//!   Akhund` mentions `taliban`, `mohammad hassan akhund`, `mohammad`, `hassan` and `akhund`.
//!   A hyphenated word counts by its first part (`Taliban-led` → `taliban`). Keys are
//!   lower-cased, possessives stripped (`Afghanistan's` → `afghanistan`). A one-word name that
//!   opens a sentence and is a common sentence opener (`This`, `Some`, `However`, …) is skipped.
//! * **Main actors** are the names that stand on their own (a one-word name, or a whole
//!   multi-word name) in the most articles of the corpus (ties: more mentions, then
//!   alphabetical). A word seen only inside longer names (`United` of `United Nations`) never
//!   becomes a main actor, but a word that also stands alone (`Taliban`) gets the mentions
//!   inside longer names too.
//! * **Labels.** Two kinds, counted per source:
//!   1. *compounds*: a name followed (after an optional possessive) by up to three lower-case
//!      words ending in a label noun (`government`, `regime`, `group`, `organisation`, …), e.g.
//!      `Taliban government`, `Taliban-led Afghanistan government`, `Taliban's all-male
//!      government`. The label is the whole phrase, lower-cased; it is credited to every actor
//!      word in the name.
//!   2. *descriptions*: `the` + up to three lower-case words ending in a label noun, not
//!      preceded by a name (`the terrorist organisation`, `the regime`, `the group`). It is
//!      credited to the most recently mentioned main actor in the same or the previous
//!      sentence (a crude coreference rule: the nearest candidate wins). A description with no
//!      actor in reach is not counted.
//!
//! The rules miss pronouns and descriptions without `the`, and the nearest-candidate rule can
//! credit a description to the wrong actor when two are close; read counts as indicative.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

use crate::segment::SentenceSpan;

/// Nouns that make a phrase a label of a group, a state or a government.
pub const LABEL_NOUNS: &[&str] = &[
    "administration",
    "authorities",
    "authority",
    "cabinet",
    "emirate",
    "extremists",
    "fighters",
    "government",
    "group",
    "insurgency",
    "insurgents",
    "islamists",
    "leaders",
    "leadership",
    "militants",
    "militia",
    "movement",
    "officials",
    "organisation",
    "organization",
    "outfit",
    "regime",
    "rulers",
    "state",
    "terrorists",
];

/// Titles dropped from names (they describe a person, not who they are).
pub(crate) const TITLES: &[&str] = &[
    "acting",
    "ambassador",
    "chancellor",
    "chief",
    "deputy",
    "director",
    "dr",
    "foreign",
    "general",
    "gov",
    "governor",
    "minister",
    "mr",
    "mrs",
    "ms",
    "premier",
    "president",
    "prime",
    "prince",
    "secretary",
    "sen",
    "senator",
    "spokesman",
    "spokesperson",
    "spokeswoman",
    "state",
    "supreme",
    "leader",
];

/// Capitalised words that open sentences without naming anyone.
pub(crate) const OPENERS: &[&str] = &[
    "a",
    "according",
    "after",
    "against",
    "all",
    "also",
    "although",
    "an",
    "and",
    "any",
    "as",
    "at",
    "before",
    "but",
    "by",
    "despite",
    "during",
    "each",
    "even",
    "for",
    "from",
    "he",
    "her",
    "his",
    "however",
    "i",
    "if",
    "in",
    "it",
    "its",
    "many",
    "meanwhile",
    "more",
    "most",
    "no",
    "not",
    "now",
    "on",
    "one",
    "only",
    "our",
    "over",
    "she",
    "since",
    "so",
    "some",
    "such",
    "that",
    "the",
    "their",
    "there",
    "these",
    "they",
    "this",
    "those",
    "though",
    "to",
    "under",
    "unlike",
    "we",
    "what",
    "when",
    "where",
    "while",
    "who",
    "with",
    "without",
    "yet",
    "you",
];

/// Actor statistics of one article, or (summed) of a source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActorCounts {
    /// Mentions per actor key.
    pub mentions: BTreeMap<String, u64>,
    /// Articles mentioning each key (1 per key for a single article).
    pub articles: BTreeMap<String, u64>,
    /// Compound labels: actor key → label → count.
    pub labels: BTreeMap<String, BTreeMap<String, u64>>,
    /// Descriptions waiting for the main actors to be known: label → candidate keys (most recent
    /// first, as seen in the same or previous sentence) → count. In JSON: label → list of
    /// `{"candidates": [...], "count": n}` (JSON object keys must be strings).
    #[serde(with = "description_lists")]
    pub descriptions: BTreeMap<String, BTreeMap<Vec<String>, u64>>,
}

/// Serde form of [`ActorCounts::descriptions`]: the inner maps (keyed by lists) as lists.
mod description_lists {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Descriptions = BTreeMap<String, BTreeMap<Vec<String>, u64>>;

    #[derive(Serialize, Deserialize)]
    struct Entry {
        candidates: Vec<String>,
        count: u64,
    }

    pub fn serialize<S: Serializer>(d: &Descriptions, s: S) -> Result<S::Ok, S::Error> {
        let v: BTreeMap<&String, Vec<Entry>> = d
            .iter()
            .map(|(label, m)| {
                (
                    label,
                    m.iter()
                        .map(|(c, n)| Entry {
                            candidates: c.clone(),
                            count: *n,
                        })
                        .collect(),
                )
            })
            .collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Descriptions, D::Error> {
        let v: BTreeMap<String, Vec<Entry>> = BTreeMap::deserialize(d)?;
        Ok(v.into_iter()
            .map(|(label, es)| {
                let mut m = BTreeMap::new();
                for e in es {
                    *m.entry(e.candidates).or_default() += e.count;
                }
                (label, m)
            })
            .collect())
    }
}

impl ActorCounts {
    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.mentions.is_empty()
    }
}

impl AddAssign for ActorCounts {
    fn add_assign(&mut self, rhs: Self) {
        for (k, v) in rhs.mentions {
            *self.mentions.entry(k).or_default() += v;
        }
        for (k, v) in rhs.articles {
            *self.articles.entry(k).or_default() += v;
        }
        for (k, m) in rhs.labels {
            let e = self.labels.entry(k).or_default();
            for (l, c) in m {
                *e.entry(l).or_default() += c;
            }
        }
        for (k, m) in rhs.descriptions {
            let e = self.descriptions.entry(k).or_default();
            for (l, c) in m {
                *e.entry(l).or_default() += c;
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Word<'a> {
    text: &'a str,
    cap: bool,
}

fn words(s: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    let is_word = |c: char| c.is_alphanumeric() || c == '-' || c == '\'' || c == '’' || c == '.';
    for (i, c) in s.char_indices() {
        match (start, is_word(c)) {
            (None, true) => start = Some(i),
            (Some(b), false) => {
                push_word(&s[b..i], &mut out);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(b) = start {
        push_word(&s[b..], &mut out);
    }
    out
}

fn push_word<'a>(w: &'a str, out: &mut Vec<Word<'a>>) {
    // Trailing dots end sentences or abbreviations; keep "U.S." style words, drop a lone period.
    let w = w.trim_start_matches(['-', '\'', '’', '.']);
    let w = if w.matches('.').count() == 1 {
        w.trim_end_matches('.')
    } else {
        w
    };
    if w.is_empty() {
        return;
    }
    let cap = w.chars().next().is_some_and(char::is_uppercase);
    out.push(Word { text: w, cap });
}

/// Lower-case key of a word or name: possessive stripped, curly apostrophes straightened.
pub fn key(s: &str) -> String {
    let s = s.replace('’', "'");
    let s = s
        .strip_suffix("'s")
        .or_else(|| s.strip_suffix('\''))
        .unwrap_or(&s);
    s.to_lowercase()
}

fn is_label_noun(w: &str) -> bool {
    LABEL_NOUNS.contains(&key(w).as_str())
}

fn possessive(w: &str) -> bool {
    let w = w.replace('’', "'");
    w.ends_with("'s") || w.ends_with("s'")
}

/// Count mentions and labels in one article.
pub fn extract(text: &str, spans: &[SentenceSpan]) -> ActorCounts {
    let mut c = ActorCounts::default();
    // Candidate keys of the previous sentence, most recent first.
    let mut prev: Vec<String> = Vec::new();
    for s in spans {
        let ws = words(&text[s.start..s.end]);
        let mut recent: Vec<String> = Vec::new(); // this sentence, in order of appearance
        let mut i = 0;
        while i < ws.len() {
            if !ws[i].cap {
                // A description: "the (w){0,3} LABEL", not preceded by a name.
                if key(ws[i].text) == "the" && (i == 0 || !ws[i - 1].cap) {
                    if let Some(label) = description(&ws[i + 1..]) {
                        let mut cands: Vec<String> = recent.iter().rev().cloned().collect();
                        cands.extend(prev.iter().cloned());
                        let mut seen = std::collections::BTreeSet::new();
                        cands.retain(|k| seen.insert(k.clone()));
                        if !cands.is_empty() {
                            *c.descriptions
                                .entry(format!("the {label}"))
                                .or_default()
                                .entry(cands)
                                .or_default() += 1;
                        }
                    }
                }
                i += 1;
                continue;
            }
            // A run of capitalised words, joined by "of", "al", "bin".
            let mut j = i + 1;
            while j < ws.len() {
                if ws[j].cap {
                    j += 1;
                } else if matches!(key(ws[j].text).as_str(), "of" | "al" | "bin")
                    && j + 1 < ws.len()
                    && ws[j + 1].cap
                    && !possessive(ws[j - 1].text)
                {
                    j += 2;
                } else {
                    break;
                }
            }
            let run = &ws[i..j];
            let sentence_start = i == 0;
            // Titles split a run into names: "Taliban Prime Minister Mohammad Hassan Akhund" is
            // "Taliban" and "Mohammad Hassan Akhund".
            let mut names: Vec<Vec<&Word>> = vec![Vec::new()];
            for (n, w) in run.iter().enumerate() {
                let k = key(w.text);
                let dropped = (n == 0 && k == "the")
                    || (n == 0 && sentence_start && OPENERS.contains(&k.as_str()));
                if TITLES.contains(&k.as_str()) {
                    names.push(Vec::new());
                } else if !dropped {
                    names.last_mut().expect("non-empty").push(w);
                }
            }
            let mut keys: Vec<String> = Vec::new();
            for name in names.iter().filter(|n| !n.is_empty()) {
                let mut parts: Vec<String> = Vec::new();
                for w in name {
                    let first = w.text.split('-').next().unwrap_or(w.text);
                    let k = key(first);
                    if k.len() > 1
                        && !OPENERS.contains(&k.as_str())
                        && !matches!(k.as_str(), "of" | "al" | "bin")
                    {
                        parts.push(k);
                    }
                }
                // Only a name standing on its own (a whole multi-word name, or a one-word
                // name) makes an article count towards the main actors; the words inside a
                // longer name add mentions only.
                let standalone = if name.len() > 1 {
                    let full = name
                        .iter()
                        .map(|w| key(w.text))
                        .collect::<Vec<_>>()
                        .join(" ");
                    parts.push(full.clone());
                    Some(full)
                } else {
                    parts.first().cloned()
                };
                for k in parts {
                    if !keys.contains(&k) {
                        *c.mentions.entry(k.clone()).or_default() += 1;
                        recent.push(k.clone());
                        keys.push(k);
                    }
                }
                if let Some(k) = standalone {
                    c.articles.insert(k, 1);
                }
            }
            // A compound label: name ('s)? (w){0,3} LABEL.
            if !keys.is_empty() && j < ws.len() {
                if let Some(tail) = description(&ws[j..]) {
                    let skip = usize::from(key(run[0].text) == "the");
                    let head = run[skip..]
                        .iter()
                        .map(|w| w.text.replace('’', "'"))
                        .collect::<Vec<_>>()
                        .join(" ")
                        .to_lowercase();
                    let label = format!("{head} {tail}");
                    let single: Vec<&String> = keys.iter().filter(|k| !k.contains(' ')).collect();
                    for k in single {
                        *c.labels
                            .entry(k.clone())
                            .or_default()
                            .entry(label.clone())
                            .or_default() += 1;
                    }
                }
            }
            i = j;
        }
        prev = recent.into_iter().rev().collect();
    }
    c
}

/// Words that end a label phrase: a label is `(modifier){0,3} LABEL-NOUN`, nothing else.
const FUNCTION_WORDS: &[&str] = &[
    "a", "an", "and", "as", "at", "be", "but", "by", "for", "from", "has", "have", "her", "his",
    "in", "is", "its", "not", "of", "on", "or", "that", "the", "their", "these", "this", "those",
    "to", "was", "were", "which", "who", "with",
];

/// `(w){0,3} LABEL` at the start of `ws`, all lower-case content words: the phrase,
/// lower-cased, possessive stripped.
fn description(ws: &[Word]) -> Option<String> {
    for n in 0..ws.len().min(4) {
        if ws[n].cap || FUNCTION_WORDS.contains(&key(ws[n].text).as_str()) {
            return None;
        }
        if is_label_noun(ws[n].text) {
            let mut words: Vec<String> = ws[..n]
                .iter()
                .map(|w| w.text.replace('’', "'").to_lowercase())
                .collect();
            words.push(key(ws[n].text));
            return Some(words.join(" "));
        }
    }
    None
}

/// How one source names one actor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceLabels {
    pub source: String,
    pub mentions: u64,
    /// Labels with counts, most frequent first (ties alphabetical).
    pub labels: Vec<LabelCount>,
}

/// A label and how often a source used it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelCount {
    pub label: String,
    pub count: u64,
}

/// One main actor and how every source labels it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActorReport {
    /// The lower-cased key (e.g. `taliban`).
    pub actor: String,
    /// Articles of the corpus that mention it.
    pub articles: u64,
    pub mentions: u64,
    pub by_source: Vec<SourceLabels>,
}

/// Default number of main actors reported.
pub const DEFAULT_MAIN_ACTORS: usize = 5;

/// The `n` main actors of a corpus (per-source counts given) and their labels per source.
pub fn report(per_source: &BTreeMap<String, ActorCounts>, n: usize) -> Vec<ActorReport> {
    let mut total = ActorCounts::default();
    for c in per_source.values() {
        total += ActorCounts {
            mentions: c.mentions.clone(),
            articles: c.articles.clone(),
            ..Default::default()
        };
    }
    let mut keys: Vec<(&String, u64, u64)> = total
        .articles
        .iter()
        .map(|(k, a)| (k, *a, total.mentions.get(k).copied().unwrap_or(0)))
        .collect();
    keys.sort_by(|x, y| y.1.cmp(&x.1).then(y.2.cmp(&x.2)).then(x.0.cmp(y.0)));
    let main: Vec<String> = keys.iter().take(n).map(|k| k.0.clone()).collect();
    main.iter()
        .map(|actor| {
            let by_source = per_source
                .iter()
                .map(|(source, c)| {
                    let mut labels: BTreeMap<String, u64> =
                        c.labels.get(actor).cloned().unwrap_or_default();
                    for (label, cands) in &c.descriptions {
                        for (order, count) in cands {
                            // Credit the nearest candidate that is a main actor.
                            if order.iter().find(|k| main.contains(k)) == Some(actor) {
                                *labels.entry(label.clone()).or_default() += count;
                            }
                        }
                    }
                    let mut labels: Vec<LabelCount> = labels
                        .into_iter()
                        .map(|(label, count)| LabelCount { label, count })
                        .collect();
                    labels.sort_by(|a, b| b.count.cmp(&a.count).then(a.label.cmp(&b.label)));
                    SourceLabels {
                        source: source.clone(),
                        mentions: c.mentions.get(actor).copied().unwrap_or(0),
                        labels,
                    }
                })
                .collect();
            ActorReport {
                actor: actor.clone(),
                articles: total.articles.get(actor).copied().unwrap_or(0),
                mentions: total.mentions.get(actor).copied().unwrap_or(0),
                by_source,
            }
        })
        .collect()
}

/// A compact human rendering: per actor, each source's top labels.
pub fn render(reports: &[ActorReport], top: usize) -> String {
    let mut s = String::new();
    if reports.is_empty() {
        return s;
    }
    s.push_str("\nHow each source labels the main actors (label phrases with counts; see the README for the rules):\n");
    for r in reports {
        s.push_str(&format!(
            "  {} ({} articles, {} mentions)\n",
            r.actor, r.articles, r.mentions
        ));
        for src in &r.by_source {
            let labels: Vec<String> = src
                .labels
                .iter()
                .take(top)
                .map(|l| format!("{} ({})", l.label, l.count))
                .collect();
            s.push_str(&format!(
                "    {}: {} mentions; {}\n",
                src.source,
                src.mentions,
                if labels.is_empty() {
                    "no label phrases".to_string()
                } else {
                    labels.join(", ")
                }
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment;

    fn counts(text: &str) -> ActorCounts {
        extract(text, &segment::split(text))
    }

    #[test]
    fn names_titles_and_possessives() {
        let c = counts(
            "Taliban Prime Minister Mohammad Hassan Akhund said the time has come. \
             Afghanistan’s economy shrank.",
        );
        for k in ["taliban", "mohammad hassan akhund", "akhund", "afghanistan"] {
            assert_eq!(c.mentions.get(k), Some(&1), "{k}: {:?}", c.mentions);
        }
        assert!(!c.mentions.contains_key("prime"));
        assert!(!c.mentions.contains_key("minister"));
    }

    #[test]
    fn compound_and_description_labels() {
        let text = "The Taliban called for recognition of the terrorist organisation as a \
                    legitimate government. The Taliban-led Afghanistan government declined. \
                    The Taliban’s all-male government was drawn from the leadership. \
                    Nothing happened. This is a test of the regime.";
        let c = counts(text);
        let t = &c.labels["taliban"];
        assert_eq!(
            t.get("taliban-led afghanistan government"),
            Some(&1),
            "{t:?}"
        );
        assert_eq!(t.get("taliban's all-male government"), Some(&1), "{t:?}");
        assert_eq!(
            c.labels["afghanistan"].get("taliban-led afghanistan government"),
            Some(&1)
        );
        let per: BTreeMap<String, ActorCounts> = [("x".to_string(), c)].into_iter().collect();
        let r = report(&per, 2);
        assert_eq!(r[0].actor, "taliban");
        let labels: BTreeMap<&str, u64> = r[0].by_source[0]
            .labels
            .iter()
            .map(|l| (l.label.as_str(), l.count))
            .collect();
        // "the terrorist organisation" follows "Taliban" in the same sentence.
        assert_eq!(
            labels.get("the terrorist organisation"),
            Some(&1),
            "{labels:?}"
        );
        // "the leadership" follows the Taliban's government in the same sentence.
        assert_eq!(labels.get("the leadership"), Some(&1), "{labels:?}");
        // "the regime" is one sentence after a sentence with no actor: not credited.
        assert_eq!(labels.get("the regime"), None, "{labels:?}");
    }

    #[test]
    fn sentence_openers_are_not_actors() {
        let c = counts("However, the vote failed. Some said no. This matters.");
        assert!(c.mentions.is_empty(), "{:?}", c.mentions);
    }

    #[test]
    fn merge_is_order_free() {
        let a = counts("The Taliban regime spoke. The group said more.");
        let b = counts("Pakistan and the Taliban met. The regime agreed.");
        let mut ab = a.clone();
        ab += b.clone();
        let mut ba = b;
        ba += a;
        assert_eq!(ab, ba);
        assert_eq!(ab.articles["taliban"], 2);
    }
}
