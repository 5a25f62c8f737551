//! Property tests of ingest on hostile input (see `src/fuzz_tests.rs`): arbitrary bytes as
//! stdin, as `.jsonl` / `.csv` / `.tsv` / `.txt` files and as a folder never panic and every
//! error names its record; valid records with hostile text (combining marks, RTL, emoji, NUL,
//! CRLF, lone surrogates and controls in JSON escapes, very long tokens) come back
//! byte-identical, in order, between broken lines that each give one error.

use std::io;
use std::path::PathBuf;

use proptest::prelude::*;

use super::tests::shown;
use super::{collect, read_all, Article, Articles, RecordError};
use crate::fuzz_tests::{article_text, config, hostile_text};

fn assert_named(errors: &[RecordError], name: &str) {
    for e in errors {
        assert!(e.record.starts_with(name), "{e:?} does not name {name}");
        assert!(!e.message.is_empty(), "{e:?} says nothing");
    }
}

/// One article to write: what a reader must give back for it.
#[derive(Debug, Clone)]
struct Rec {
    id: String,
    source: String,
    text: String,
}

fn recs(n: usize) -> impl Strategy<Value = Vec<Rec>> {
    prop::collection::vec((hostile_text(4), hostile_text(6), article_text(40)), 0..n).prop_map(
        |v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (id, source, text))| Rec {
                    // Unique after trimming (the number comes first).
                    id: format!("{i}-{}", id.replace(char::is_whitespace, "_")),
                    source,
                    text,
                })
                .collect()
        },
    )
}

/// Non-blank JSONL lines that are not an article, each one record error.
fn broken_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(
            any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
            0..80
        )
        .prop_map(|b| [b"\x01".to_vec(), b].concat()),
        Just(br#"{"id":"g","source":"s","text":"\ud800 lone surrogate"}"#.to_vec()),
        Just(br#"{"id":"g","source":"s","text":"\udc00"}"#.to_vec()),
        Just(br#"{"id":"g","source":"s","text":"cut off"#.to_vec()),
        Just(br#"{"id":"g","source":"s","text":"t\u0000"} trailing"#.to_vec()),
        Just(br#"{"id":[1],"source":"s","text":"t"}"#.to_vec()),
        Just(br#"{"id":"g","source":"s","text":5}"#.to_vec()),
        Just(br#"{"id":"g","source":"s","text":" \r\n\t"}"#.to_vec()),
        Just(br#"{"id":"g","source":"s"}"#.to_vec()),
        Just(b"[1, 2]".to_vec()),
        Just(b"\"a string\"".to_vec()),
        Just(b"{\"id\":\"g\",\"source\":\"s\",\"text\":\"\xff\xfe\"}".to_vec()),
        Just(b"{\"id\":\"g\",\"source\":\"s\",\"text\":\"a\0b\"}".to_vec()),
    ]
}

/// Check what a reader gave for `recs` (in order): an article for each record with a source,
/// its text byte-identical; an error naming the id for one whose source is blank or whose
/// text holds a NUL character (any field with `nul_anywhere`: CSV/TSV fields are checked as
/// bytes).
fn check_round_trip(
    recs: &[Rec],
    articles: &[Article],
    errors: &[RecordError],
    nul_anywhere: bool,
    extra_errors: usize,
) {
    let mut want = Vec::new();
    let mut want_errors = extra_errors;
    for r in recs {
        let nul = r.text.contains('\0')
            || nul_anywhere && [&r.id, &r.source].iter().any(|f| f.contains('\0'));
        if nul || r.source.trim().is_empty() {
            want_errors += 1;
            continue;
        }
        want.push(r);
    }
    assert_eq!(errors.len(), want_errors, "errors: {errors:#?}");
    assert_eq!(articles.len(), want.len(), "articles: {articles:#?}");
    for (a, r) in articles.iter().zip(want) {
        assert_eq!(a.id, r.id.trim());
        assert_eq!(a.source, r.source.trim());
        assert_eq!(a.text, r.text, "text of {} changed", r.id);
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn arbitrary_bytes_on_stdin_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let (_, errors) = collect(Articles::with_stdin(
            &[PathBuf::from("-")],
            Box::new(io::Cursor::new(bytes)),
        ));
        assert_named(&errors, super::STDIN_NAME);
    }

    #[test]
    fn arbitrary_bytes_in_every_file_format_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        text in hostile_text(30),
    ) {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["jsonl", "csv", "tsv", "txt", "ndjson"] {
            for (k, content) in [bytes.clone(), text.clone().into_bytes()].into_iter().enumerate() {
                let path = dir.path().join(format!("in{k}.{ext}"));
                std::fs::write(&path, &content).unwrap();
                let (articles, errors) = read_all(std::slice::from_ref(&path));
                assert_named(&errors, &shown(&path));
                if ext == "txt" {
                    assert_eq!(articles.len() + errors.len(), 1, "a .txt file is one record");
                }
            }
        }
    }

    #[test]
    fn a_folder_of_arbitrary_files_gives_one_record_per_txt_file(
        files in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        for (i, b) in files.iter().enumerate() {
            std::fs::write(dir.path().join(format!("f{i}.txt")), b).unwrap();
        }
        let (articles, errors) = read_all(&[dir.path().to_path_buf()]);
        assert_named(&errors, &shown(dir.path()));
        // An empty folder is one error of its own.
        assert_eq!(articles.len() + errors.len(), files.len().max(1));
    }

    #[test]
    fn jsonl_round_trips_hostile_text_between_broken_lines(
        recs in recs(12),
        broken in prop::collection::vec((any::<prop::sample::Index>(), broken_line()), 0..6),
        crlf in any::<bool>(),
    ) {
        let mut lines: Vec<Vec<u8>> = recs
            .iter()
            .map(|r| {
                serde_json::to_vec(&serde_json::json!({"id": r.id, "source": r.source, "text": r.text}))
                    .unwrap()
            })
            .collect();
        for (at, line) in &broken {
            let at = at.index(lines.len() + 1);
            lines.insert(at, line.clone());
        }
        let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, lines.join(eol)).unwrap();
        let (articles, errors) = read_all(std::slice::from_ref(&path));
        assert_named(&errors, &shown(&path));
        check_round_trip(&recs, &articles, &errors, false, broken.len());
    }

    #[test]
    fn csv_and_tsv_round_trip_hostile_text(recs in recs(12)) {
        let dir = tempfile::tempdir().unwrap();
        for (ext, delimiter) in [("csv", b','), ("tsv", b'\t')] {
            let path = dir.path().join(format!("in.{ext}"));
            let mut w = csv::WriterBuilder::new().delimiter(delimiter).from_path(&path).unwrap();
            w.write_record(["id", "source", "text"]).unwrap();
            for r in &recs {
                w.write_record([&r.id, &r.source, &r.text]).unwrap();
            }
            w.flush().unwrap();
            drop(w);
            let (articles, errors) = read_all(std::slice::from_ref(&path));
            assert_named(&errors, &shown(&path));
            check_round_trip(&recs, &articles, &errors, true, 0);
        }
    }
}
