//! Speakers: who gets quoted, grouped by normalised name.
//!
//! Rules (no named-entity model; same word conventions as [`crate::actors`]):
//!
//! * **Key of a source span** ([`key`]): its words, possessives stripped; the name is the run of
//!   capitalised words (digits may continue a run: `France 24`) after the last title word
//!   (`President`, `Prime Minister`, `spokesman`, … from [`crate::actors`]'s list), else the
//!   last run of capitalised words in the span. A leading `The` is dropped. Lower-cased. So
//!   `Taliban Prime Minister Mohammad Hassan Akhund` and `Mohammad Hassan Akhund` both give
//!   `mohammad hassan akhund`; `Akhund` gives `akhund`. With an apposition the first
//!   comma-separated part that names somebody is used (`Faran Jeffrey, deputy director … of the
//!   South Asia desk` gives `faran jeffrey`). A span without a capitalised word other
//!   than a sentence opener or pronoun (`he`, `officials`, `They`) has no key (empty): it is not
//!   a named speaker.
//! * **Grouping** ([`group`]): within the counts of one source (a profile), a key that is the
//!   trailing words of exactly one longer key (`akhund` of `mohammad hassan akhund`) is merged
//!   into it, because the text makes clear they are the same person (the short form is the
//!   usual second reference). When two longer keys end the same way (`biden` of `joe biden` and
//!   `hunter biden`), the short key stays on its own.

use std::collections::BTreeMap;

use crate::actors::{OPENERS, TITLES};

const PRONOUNS: &[&str] = &[
    "he",
    "she",
    "they",
    "it",
    "we",
    "i",
    "you",
    "his",
    "her",
    "their",
    "him",
    "them",
    "who",
    "one",
    "some",
    "others",
    "many",
    "officials",
    "sources",
    "critics",
    "experts",
    "analysts",
];

fn clean(w: &str) -> String {
    let w = w.replace('’', "'");
    let w = w
        .strip_suffix("'s")
        .or_else(|| w.strip_suffix('\''))
        .unwrap_or(&w);
    w.trim_matches(|c: char| !c.is_alphanumeric()).to_string()
}

fn capitalised(w: &str) -> bool {
    w.chars().next().is_some_and(char::is_uppercase)
}

/// The group key of a source span (see the module doc); empty when it names nobody.
///
/// A span with an apposition (`Faran Jeffrey, deputy director and head of the South Asia desk`,
/// `Mohammad Hassan Akhund, the Taliban's prime minister`) is keyed by its first comma-separated
/// part that names somebody, so the organisation inside the apposition is not taken for the
/// speaker.
pub fn key(source: &str) -> String {
    source
        .split(',')
        .map(part_key)
        .find(|k| !k.is_empty())
        .unwrap_or_default()
}

/// [`key`] of one comma-free part.
fn part_key(source: &str) -> String {
    let words: Vec<String> = source
        .split_whitespace()
        .map(clean)
        .filter(|w| !w.is_empty())
        .collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let start = lower
        .iter()
        .rposition(|w| TITLES.contains(&w.as_str()))
        .map_or(0, |i| i + 1);
    // Runs of capitalised words (digits continue a run) after `start`.
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    for i in start..words.len() {
        let w = &words[i];
        let l = lower[i].as_str();
        let is_name = capitalised(w) && !PRONOUNS.contains(&l) && l != "the";
        let cont = !cur.is_empty() && w.chars().all(|c| c.is_ascii_digit());
        if is_name || cont {
            cur.push(i);
        } else if !cur.is_empty() {
            runs.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    let Some(run) = runs.last() else {
        return String::new();
    };
    // A lone sentence opener ("Some", "However") is not a name.
    if run.len() == 1 && OPENERS.contains(&lower[run[0]].as_str()) {
        return String::new();
    }
    run.iter()
        .map(|&i| lower[i].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// True when a source span names someone ([`key`] is not empty).
pub fn is_named(source: &str) -> bool {
    !key(source).is_empty()
}

/// Merge short keys into the one longer key they end (see the module doc). Counts add up.
pub fn group(counts: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for (k, &n) in counts {
        let longer: Vec<&String> = counts
            .keys()
            .filter(|o| o.len() > k.len() && o.ends_with(&format!(" {k}")))
            .collect();
        // Merge into the longest form when all longer forms are one chain
        // ("akhund" < "hassan akhund" < "mohammad hassan akhund").
        let target = match longer.iter().max_by_key(|o| o.len()) {
            Some(top) if longer.iter().all(|o| top.ends_with(o.as_str())) => (*top).clone(),
            _ => k.clone(),
        };
        *out.entry(target).or_default() += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_drop_titles_and_orgs_before_them() {
        assert_eq!(
            key("Taliban Prime Minister Mohammad Hassan Akhund"),
            "mohammad hassan akhund"
        );
        assert_eq!(key("Mohammad Hassan Akhund"), "mohammad hassan akhund");
        assert_eq!(key("Akhund"), "akhund");
        assert_eq!(key("Akhund's"), "akhund");
        assert_eq!(key("France 24"), "france 24");
        assert_eq!(key("Nishank Motwani"), "nishank motwani");
        // Appositions: the name before the comma, not the organisation after it.
        assert_eq!(
            key("Faran Jeffrey, deputy director and head of the South Asia desk"),
            "faran jeffrey"
        );
        assert_eq!(
            key("Mohammad Hassan Akhund, the Taliban's prime minister"),
            "mohammad hassan akhund"
        );
        assert_eq!(
            key("the spokesman, Zabihullah Mujahid"),
            "zabihullah mujahid"
        );
        assert_eq!(key("the Taliban"), "taliban");
        assert_eq!(key("he"), "");
        assert_eq!(key("He"), "");
        assert_eq!(key("Officials"), "");
        assert_eq!(key("a spokesman"), "");
        assert!(is_named("UN Secretary-General Antonio Guterres"));
    }

    #[test]
    fn grouping_merges_unambiguous_short_forms() {
        let c: BTreeMap<String, u64> = [
            ("akhund", 2),
            ("mohammad hassan akhund", 1),
            ("biden", 3),
            ("joe biden", 1),
            ("hunter biden", 1),
            ("france 24", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let g = group(&c);
        assert_eq!(g["mohammad hassan akhund"], 3);
        assert!(!g.contains_key("akhund"));
        assert_eq!(g["biden"], 3, "ambiguous: kept apart");
        assert_eq!(g["france 24"], 1);
        assert_eq!(g.values().sum::<u64>(), c.values().sum::<u64>());
    }
}
