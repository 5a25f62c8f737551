//! A bounded, deterministic sample of whole articles per source (the evidence of the HTML
//! report): for each source, the `per_source` articles whose ids have the smallest SHA-256.
//! The sample is the same whatever the order of the records, the sharding or the number of
//! files, and memory stays at `per_source` articles per source.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::pipeline::records::SentenceRecord;

/// One sampled article with all its sentences (in article order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampledArticle {
    pub id: String,
    pub source: String,
    pub title: Option<String>,
    pub date: Option<String>,
    pub url: Option<String>,
    pub sentences: Vec<SentenceRecord>,
}

/// Sort key of an article in the sample: the first 8 bytes of SHA-256(id), then the id.
type Key = (u64, String);

fn key(id: &str) -> Key {
    let h = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    (u64::from_be_bytes(b), id.to_string())
}

/// Collects the sample while records stream by ([`Self::offer_sentence`] and
/// [`Self::offer_article`], in any order).
#[derive(Debug, Default)]
pub struct ArticleSample {
    per_source: usize,
    sources: BTreeMap<String, BTreeMap<Key, SampledArticle>>,
}

impl ArticleSample {
    pub fn new(per_source: usize) -> Self {
        Self {
            per_source,
            sources: BTreeMap::new(),
        }
    }

    /// The slot of article `id` of `source` when it belongs to the sample seen so far (an
    /// article pushed out is never taken back: the bar only falls).
    fn slot(&mut self, source: &str, id: &str) -> Option<&mut SampledArticle> {
        if self.per_source == 0 {
            return None;
        }
        let k = key(id);
        let kept = self.sources.entry(source.to_string()).or_default();
        if !kept.contains_key(&k) {
            if kept.len() == self.per_source {
                let worst = kept.keys().next_back().expect("per_source > 0").clone();
                if k > worst {
                    return None;
                }
                kept.remove(&worst);
            }
            kept.insert(
                k.clone(),
                SampledArticle {
                    id: id.to_string(),
                    source: source.to_string(),
                    ..Default::default()
                },
            );
        }
        kept.get_mut(&k)
    }

    pub fn offer_sentence(&mut self, s: &SentenceRecord) {
        if let Some(a) = self.slot(&s.source, &s.article) {
            a.sentences.push(s.clone());
        }
    }

    pub fn offer_article(
        &mut self,
        id: &str,
        source: &str,
        title: Option<&str>,
        date: Option<&str>,
        url: Option<&str>,
    ) {
        if let Some(a) = self.slot(source, id) {
            a.title = title.map(str::to_string);
            a.date = date.map(str::to_string);
            a.url = url.map(str::to_string);
        }
    }

    /// The sample per source (sources sorted), each source's articles in sample order,
    /// sentences by index.
    pub fn into_articles(self) -> BTreeMap<String, Vec<SampledArticle>> {
        self.sources
            .into_iter()
            .map(|(source, kept)| {
                let arts = kept
                    .into_values()
                    .map(|mut a| {
                        a.sentences.sort_by_key(|s| s.index);
                        a
                    })
                    .collect();
                (source, arts)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(article: &str, source: &str, index: usize) -> SentenceRecord {
        SentenceRecord {
            article: article.into(),
            source: source.into(),
            index,
            text: format!("{article} {index}"),
            ..Default::default()
        }
    }

    fn ids(s: &BTreeMap<String, Vec<SampledArticle>>, source: &str) -> Vec<String> {
        s[source].iter().map(|a| a.id.clone()).collect()
    }

    #[test]
    fn sample_is_bounded_and_independent_of_order() {
        let mut recs = Vec::new();
        for i in 0..40 {
            for j in 0..3 {
                recs.push(sent(
                    &format!("a{i}"),
                    if i % 2 == 0 { "x" } else { "y" },
                    j,
                ));
            }
        }
        let run = |recs: &[SentenceRecord]| {
            let mut s = ArticleSample::new(3);
            for r in recs {
                s.offer_sentence(r);
            }
            s.into_articles()
        };
        let fwd = run(&recs);
        let mut rev = recs.clone();
        rev.reverse();
        let back = run(&rev);
        assert_eq!(fwd, back);
        assert_eq!(fwd["x"].len(), 3);
        assert_eq!(fwd["y"].len(), 3);
        for a in fwd.values().flatten() {
            let idx: Vec<usize> = a.sentences.iter().map(|s| s.index).collect();
            assert_eq!(idx, vec![0, 1, 2], "{}", a.id);
        }
        // The kept ids are the three smallest hashes of the source's ids.
        let mut want: Vec<(u64, String)> = (0..40)
            .filter(|i| i % 2 == 0)
            .map(|i| key(&format!("a{i}")))
            .collect();
        want.sort();
        let want: Vec<String> = want.into_iter().take(3).map(|k| k.1).collect();
        assert_eq!(ids(&fwd, "x"), want);
    }

    #[test]
    fn article_rows_fill_metadata_in_any_order() {
        let mut s = ArticleSample::new(5);
        s.offer_article("b", "x", Some("Title"), None, Some("https://example.org/b"));
        s.offer_sentence(&sent("b", "x", 1));
        s.offer_sentence(&sent("b", "x", 0));
        let out = s.into_articles();
        let a = &out["x"][0];
        assert_eq!(a.title.as_deref(), Some("Title"));
        assert_eq!(a.url.as_deref(), Some("https://example.org/b"));
        assert_eq!(a.sentences.len(), 2);
        assert_eq!(a.sentences[0].index, 0);
        assert!(ArticleSample::new(0).into_articles().is_empty());
    }
}
