use super::*;
use crate::pipeline::records::ArticleSummary;
use crate::report::compare::render_table;

/// An article of `n` sentences, `k` of them loaded, with loaded probabilities summing to `p`.
fn art(id: &str, n: u64, k: u64, p: f64) -> ArticleSummary {
    ArticleSummary {
        id: id.into(),
        source: "s".into(),
        sentences: n,
        loaded_sentences: k,
        loaded_prob_sum: p,
        truncated: 0,
        ..Default::default()
    }
}

/// The sums of one source's articles, folded as a corpus folds them.
fn sums(arts: Vec<ArticleSummary>) -> SourceSums {
    let mut c = crate::aggregate::Corpus::default();
    for mut a in arts {
        a.source = "s".into();
        c.push(a);
    }
    c.sources.remove("s").unwrap_or_default()
}

/// 8 articles of 20 sentences with few loaded sentences.
fn low() -> SourceSums {
    sums(
        (0..8)
            .map(|i| art(&format!("l{i}"), 20, 1 + i % 3, 2.0 + (i % 3) as f64))
            .collect(),
    )
}

/// 8 articles of 20 sentences with many loaded sentences.
fn high() -> SourceSums {
    sums(
        (0..8)
            .map(|i| art(&format!("h{i}"), 20, 10 + i % 4, 10.0 + (i % 4) as f64))
            .collect(),
    )
}

fn json(c: &Comparison) -> String {
    serde_json::to_string(c).unwrap()
}

#[test]
fn identical_sources_differ_by_zero() {
    let a = low();
    // Same articles under other ids: same values, nothing to find.
    let b = sums(
        a.articles
            .iter()
            .map(|x| {
                art(
                    &format!("copy-{}", x.id),
                    x.sentences,
                    x.loaded_sentences,
                    x.loaded_prob_sum,
                )
            })
            .collect(),
    );
    let c = compare("x", &a, "y", &b, DEFAULT_REPS, DEFAULT_SEED);
    assert_eq!(c.metrics.len(), 2);
    for m in &c.metrics {
        assert_eq!(m.a, m.b, "{}", m.name);
        assert_eq!(m.diff, 0.0, "{}", m.name);
        let p = m.p.expect("8 vs 8 articles give a p-value");
        assert!(p > 0.5, "{}: p = {p}", m.name);
        let [lo, hi] = m.ci.expect("8 vs 8 articles give an interval");
        assert!(lo <= 0.0 && 0.0 <= hi, "{}: [{lo}, {hi}]", m.name);
        assert!(m.note.is_none(), "{}: {:?}", m.name, m.note);
    }
    let share = c.metric(LOADED_SHARE).unwrap();
    assert_eq!(share.effect, Some(0.0));
    let t = share.sentence_test.as_ref().unwrap();
    assert_eq!((t.z, t.p), (0.0, 1.0));
    assert!(c.metric(MEAN_LOADED).unwrap().effect.is_none());
    assert!(c.notes.is_empty(), "{:?}", c.notes);
}

#[test]
fn clearly_different_sources_are_detected() {
    let c = compare("low", &low(), "high", &high(), DEFAULT_REPS, DEFAULT_SEED);
    assert_eq!((c.a_articles, c.b_articles), (8, 8));
    assert_eq!((c.a_sentences, c.b_sentences), (160, 160));
    for m in &c.metrics {
        assert!(m.diff > 0.3, "{}: diff = {}", m.name, m.diff);
        assert!((m.diff - (m.b - m.a)).abs() < 2e-6, "{}", m.name);
        let [lo, hi] = m.ci.unwrap();
        assert!(
            0.0 < lo && lo <= m.diff && m.diff <= hi,
            "{}: [{lo}, {hi}]",
            m.name
        );
        let p = m.p.unwrap();
        assert!(p < 0.01, "{}: p = {p}", m.name);
    }
    // Expected values by hand: low has 1+2+3+1+2+3+1+2 = 15 loaded of 160, high has
    // 10+11+12+13+10+11+12+13 = 92 of 160.
    let share = c.metric(LOADED_SHARE).unwrap();
    assert_eq!(share.a, round6(15.0 / 160.0));
    assert_eq!(share.b, round6(92.0 / 160.0));
    let h = share.effect.unwrap();
    assert!(h > 0.0, "b is higher, so h > 0 (got {h})");
    assert_eq!(h, round6(stats::cohens_h(15.0 / 160.0, 92.0 / 160.0)));
    let t = share.sentence_test.as_ref().unwrap();
    assert!(t.z > 0.0 && t.p < 0.001, "{t:?}");

    // Swapping the sources flips every sign.
    let r = compare("high", &high(), "low", &low(), DEFAULT_REPS, DEFAULT_SEED);
    for (m, n) in c.metrics.iter().zip(&r.metrics) {
        assert_eq!(m.diff, -n.diff, "{}", m.name);
        let [lo, hi] = n.ci.unwrap();
        assert!(hi < 0.0 && lo <= n.diff, "{}: [{lo}, {hi}]", n.name);
    }
    assert_eq!(r.metric(LOADED_SHARE).unwrap().effect, Some(-h));
    assert!(
        r.metric(LOADED_SHARE)
            .unwrap()
            .sentence_test
            .as_ref()
            .unwrap()
            .z
            < 0.0
    );
}

#[test]
fn one_article_sources_have_no_inference_over_articles() {
    let a = sums(vec![art("a1", 10, 2, 2.5)]);
    let b = sums(vec![art("b1", 12, 8, 7.0)]);
    let c = compare("alpha", &a, "beta", &b, DEFAULT_REPS, DEFAULT_SEED);
    for m in &c.metrics {
        assert!(m.ci.is_none(), "{}", m.name);
        assert!(m.p.is_none(), "{}", m.name);
        let note = m.note.as_deref().unwrap();
        assert!(note.contains("too few articles"), "{}: {note}", m.name);
        assert!(note.contains("(a: 1, b: 1"), "{}: {note}", m.name);
    }
    // The values themselves are still there, descriptively.
    let share = c.metric(LOADED_SHARE).unwrap();
    assert_eq!((share.a, share.b), (0.2, round6(8.0 / 12.0)));
    assert!(share.effect.unwrap() > 0.0);
    assert!(share.sentence_test.is_some());
    assert!(share
        .note
        .as_deref()
        .unwrap()
        .contains("treats sentences as independent"));
    assert_eq!(c.notes.len(), 2, "{:?}", c.notes);
    assert!(c.notes[0].contains("alpha has 1 article"), "{:?}", c.notes);
    assert!(c.notes[1].contains("beta has 1 article"), "{:?}", c.notes);
    assert!(c.notes.iter().all(|n| n.contains("descriptive")));
    // `None` serialises as null.
    let v: serde_json::Value = serde_json::from_str(&json(&c)).unwrap();
    assert!(v["metrics"][0]["ci"].is_null());
    assert!(v["metrics"][0]["p"].is_null());
    assert!(v["metrics"][1]["effect"].is_null());
}

#[test]
fn few_articles_are_flagged() {
    // 2 vs 2 articles: an interval exists, but only C(4, 2) = 6 relabellings.
    let a = sums(vec![art("a1", 10, 1, 1.0), art("a2", 10, 2, 2.0)]);
    let b = sums(vec![art("b1", 10, 6, 6.0), art("b2", 10, 7, 7.0)]);
    let c = compare("a", &a, "b", &b, 500, 1);
    let m = c.metric(LOADED_SHARE).unwrap();
    assert!(m.ci.is_some());
    assert!(m.p.is_none());
    let note = m.note.as_deref().unwrap();
    assert!(note.contains("only 6 distinct relabellings"), "{note}");
    assert!(!note.contains("interval"), "an interval exists: {note}");
    assert_eq!(c.notes.len(), 2);
    assert!(c
        .notes
        .iter()
        .all(|n| n.contains("only 2 articles") && n.contains("unstable")));
}

#[test]
fn same_seed_gives_identical_json() {
    let (a, b) = (low(), high());
    let c1 = json(&compare("a", &a, "b", &b, 2000, 7));
    let c2 = json(&compare("a", &a, "b", &b, 2000, 7));
    assert_eq!(c1, c2);
    // Article order within a source does not matter either.
    let mut shuffled = a.clone();
    shuffled.articles.reverse();
    shuffled.articles.swap(1, 5);
    assert_eq!(c1, json(&compare("a", &shuffled, "b", &b, 2000, 7)));
    // Another seed draws other resamples.
    assert_ne!(c1, json(&compare("a", &a, "b", &b, 2000, 8)));
}

#[test]
fn empty_sides_do_not_panic() {
    let empty = SourceSums::default();
    let c = compare("none", &empty, "some", &low(), 100, 1);
    assert_eq!((c.a_articles, c.a_sentences), (0, 0));
    for m in &c.metrics {
        assert!(m.a.is_nan() && m.diff.is_nan());
        assert!(m.ci.is_none() && m.p.is_none() && m.effect.is_none());
        assert!(m.note.as_deref().unwrap().contains("undefined"));
    }
    assert!(c.notes[0].contains("none has no articles"));
    // NaN serialises as null, so the JSON stays valid.
    let v: serde_json::Value = serde_json::from_str(&json(&c)).unwrap();
    assert!(v["metrics"][0]["a"].is_null());
    assert!(render_table(&c).contains("n/a"));
}

#[test]
fn render_table_names_sources_and_metrics() {
    let c = compare("The Daily Low", &low(), "High Times", &high(), 1000, 3);
    let t = render_table(&c);
    assert!(
        t.contains("The Daily Low") && t.contains("High Times"),
        "{t}"
    );
    for m in &c.metrics {
        assert!(t.contains(&m.name), "{t}");
    }
    assert!(t.contains("95% CI") && t.contains("Cohen's h"), "{t}");
    assert!(t.contains("treats sentences as independent"), "{t}");
    // Rows line up: every table line between the rule and the key has the rule's width or less.
    let lines: Vec<&str> = t.lines().collect();
    let rule = lines.iter().position(|l| l.starts_with("---")).unwrap();
    let width = lines[rule].len();
    assert!(lines[rule - 1].len() <= width);
    for l in &lines[rule + 1..rule + 1 + c.metrics.len()] {
        assert_eq!(l.len(), width, "{t}");
    }

    let one = compare(
        "solo",
        &sums(vec![art("a", 5, 1, 1.0)]),
        "pair",
        &sums(vec![art("b", 5, 3, 3.0), art("c", 5, 2, 2.0)]),
        100,
        1,
    );
    let t = render_table(&one);
    assert!(t.contains("solo has 1 article"), "{t}");
    assert!(t.contains("n/a"), "{t}");
    assert!(t.contains("loaded_share: too few articles"), "{t}");
}

#[test]
fn relabelling_counts() {
    assert_eq!(relabellings(4, 2), 6);
    assert_eq!(relabellings(6, 1), 6);
    assert_eq!(relabellings(16, 8), 12870);
    assert_eq!(relabellings(0, 0), 1);
    assert_eq!(relabellings(300, 150), u128::MAX);
}

#[test]
fn rounding_is_stable() {
    assert_eq!(round6(0.123_456_789), 0.123457);
    assert_eq!(
        round6(-1e-9).to_bits(),
        0.0f64.to_bits(),
        "no negative zero"
    );
    assert!(round6(f64::NAN).is_nan());
}

fn with_frames(id: &str, f: &[(usize, f64)]) -> ArticleSummary {
    let mut v = vec![0.0; crate::vocab::FRAMES.len()];
    for &(k, p) in f {
        v[k] = p;
    }
    ArticleSummary {
        frames: v,
        ..art(id, 10, 1, 1.0)
    }
}

#[test]
fn frames_jsd_row_by_hand_and_with_a_bootstrap() {
    // a: every article all on frame 0; b: all on frame 1: disjoint, JSD = 1 bit.
    let a = sums(vec![
        with_frames("a1", &[(0, 1.0)]),
        with_frames("a2", &[(0, 1.0)]),
    ]);
    let b = sums(vec![
        with_frames("b1", &[(1, 1.0)]),
        with_frames("b2", &[(1, 1.0)]),
    ]);
    let c = compare("a", &a, "b", &b, 200, 1);
    let m = c.metric(FRAMES_JSD).expect("frames_jsd row");
    assert_eq!(m.diff, 1.0);
    assert!(m.a.is_nan() && m.b.is_nan());
    assert_eq!(m.ci, Some([1.0, 1.0]), "every resample is disjoint");
    // Half overlap: a = (1, 0), b = (0.5, 0.5) → m = (0.75, 0.25);
    // JSD = ½·log2(1/0.75) + ½·(0.5·log2(0.5/0.75) + 0.5·log2(0.5/0.25)) = 0.3112781.
    let b = sums(vec![with_frames("b1", &[(0, 1.0), (1, 1.0)])]);
    let c = compare("a", &a, "b", &b, 200, 1);
    let m = c.metric(FRAMES_JSD).unwrap();
    assert!((m.diff - 0.311278).abs() < 1e-6, "{}", m.diff);
    assert_eq!(m.ci, None, "one article on b: no interval");
    assert!(m.note.as_deref().unwrap().contains("too few articles"));
    // Without frame scores there is no row.
    assert!(compare("x", &low(), "y", &high(), 100, 1)
        .metric(FRAMES_JSD)
        .is_none());
}

#[test]
fn attribution_rows_and_sides_appear_when_both_sources_have_counts() {
    use crate::attribution::AttributionCounts;
    let with_att = |id: &str, n: u64, attributed: u64, cues: u64, loaded: u64| {
        let mut c = AttributionCounts {
            sentences: n,
            attributed_sentences: attributed,
            unattributed_sentences: n - attributed,
            cues,
            ..Default::default()
        };
        c.stances.insert("loaded".into(), loaded);
        c.stances.insert("neutral".into(), cues - loaded);
        c.cue_lemmas.insert("say".into(), cues - loaded);
        c.speakers.insert("akhund".into(), 1);
        c.speakers.insert("mohammad hassan akhund".into(), 1);
        ArticleSummary {
            attribution: c,
            ..art(id, n, 0, 0.0)
        }
    };
    let a = sums(vec![
        with_att("a1", 10, 5, 5, 1),
        with_att("a2", 10, 5, 5, 1),
    ]);
    let b = sums(vec![
        with_att("b1", 10, 8, 10, 5),
        with_att("b2", 10, 8, 10, 5),
    ]);
    let c = compare("a", &a, "b", &b, 200, 1);
    let rate = c.metric("attribution_rate").expect("row");
    assert!((rate.a - 0.5).abs() < 1e-9 && (rate.b - 0.8).abs() < 1e-9);
    let loaded = c.metric("loaded_cue_share").expect("row");
    assert!((loaded.a - 0.2).abs() < 1e-9 && (loaded.b - 0.5).abs() < 1e-9);
    let un = c.metric("unattributed_share").expect("row");
    assert!((un.a - 0.5).abs() < 1e-9 && (un.b - 0.2).abs() < 1e-9);
    let sides = c.attribution.as_ref().expect("both sides");
    // "akhund" is merged into "mohammad hassan akhund": one speaker with all the voice.
    assert_eq!(sides.a.speakers.len(), 1);
    assert_eq!(sides.a.speakers[0].speaker, "mohammad hassan akhund");
    assert_eq!(sides.a.speakers[0].attributions, 4);
    assert!((sides.a.speakers[0].share_of_voice - 1.0).abs() < 1e-9);
    assert!(render_table(&c).contains("who gets quoted"));
    // Without attribution counts on one side: no rows, no section.
    let plain = sums(vec![art("p1", 10, 1, 1.0), art("p2", 10, 1, 1.0)]);
    let c = compare("a", &a, "p", &plain, 200, 1);
    assert!(c.metric("attribution_rate").is_none());
    assert!(c.attribution.is_none());
}
