use super::*;

fn sentence(article: &str, source: &str, index: usize, loaded: f64) -> SentenceRecord {
    SentenceRecord {
        article: article.into(),
        source: source.into(),
        index,
        start: 0,
        end: 4,
        text: "Text".into(),
        loaded,
        loaded_label: loaded >= 0.5,
        loaded_spans: Vec::new(),
        tokens: 3,
        truncated: false,
        attributions: Vec::new(),
        unattributed: None,
    }
}

#[test]
fn top_n_keeps_the_best_in_order_with_ties_by_position() {
    let mut t = TopN::new(3);
    for (i, p) in [0.2, 0.9, 0.5, 0.9, 0.1, 0.7].iter().enumerate() {
        t.offer(&sentence("a", "x", i, *p));
    }
    let v: Vec<(usize, f64)> = t
        .into_sorted()
        .iter()
        .map(|s| (s.index, s.loaded))
        .collect();
    assert_eq!(v, [(1, 0.9), (3, 0.9), (5, 0.7)]);
    let mut none = TopN::new(0);
    none.offer(&sentence("a", "x", 0, 1.0));
    assert!(none.into_sorted().is_empty());
}

#[test]
fn jsonl_lines_are_tagged_and_round_trip() {
    let s = sentence("a1", "x", 0, 0.25);
    let mut buf = Vec::new();
    write_line(&mut buf, LineRef::Sentence(&s)).unwrap();
    let text = String::from_utf8(buf.clone()).unwrap();
    assert!(
        text.starts_with("{\"record\":\"sentence\",\"article\":\"a1\""),
        "{text}"
    );
    let back: Line = serde_json::from_slice(&buf).unwrap();
    assert_eq!(back, Line::Sentence(s));
}

#[test]
fn an_unfinished_jsonl_dataset_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.jsonl");
    let s = sentence("a1", "x", 0, 0.25);
    let mut buf = Vec::new();
    write_line(&mut buf, LineRef::Sentence(&s)).unwrap();
    std::fs::write(&p, &buf).unwrap();
    assert!(is_dataset(&p));
    let e = Dataset::read(std::slice::from_ref(&p), &ReadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("incomplete dataset"), "{e}");
    // A torn last line is reported as such.
    buf.extend_from_slice(b"{\"record\":\"sente");
    std::fs::write(&p, &buf).unwrap();
    let e = Dataset::read(&[p], &ReadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("cut off"), "{e}");
}

#[test]
fn manifests_of_different_models_do_not_merge() {
    let m = Manifest {
        schema_version: SCHEMA_VERSION,
        slant_version: "0".into(),
        git_commit: "c".into(),
        encoder: "e".into(),
        encoder_sha256: "aa".into(),
        loaded_head_sha256: "bb".into(),
        loaded_threshold: 0.5,
        max_tokens: 256,
        batch_size: 64,
        inputs: vec!["one".into()],
        articles: 2,
        sentences: 10,
        truncated_sentences: 0,
        record_errors: 1,
        precision: None,
        shard: Some("1/2".into()),
    };
    let mut m2 = m.clone();
    m2.inputs = vec!["two".into()];
    m2.shard = Some("2/2".into());
    let merged = Manifest::merged(&[m.clone(), m2]).unwrap();
    assert_eq!(
        (merged.articles, merged.sentences, merged.record_errors),
        (4, 20, 2)
    );
    assert_eq!(merged.inputs, ["one", "two"]);
    assert_eq!(merged.shard, None);
    let mut other = m.clone();
    other.precision = Some("int8".into());
    let e = Manifest::merged(&[m, other]).unwrap_err();
    assert!(e.to_string().contains("different models"), "{e}");
}
