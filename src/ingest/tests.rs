//! Tests for `ingest`. Fixtures live in `tests/fixtures/ingest/`; byte-exact cases (byte order
//! marks, carriage returns, invalid bytes) are written to temporary files here so that no
//! checkout setting can change them.

use super::*;
use std::fs;
use std::io::{self, Read};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ingest")
        .join(rel)
}

pub(super) fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn err(record: impl Into<String>, id: Option<&str>, message: &str) -> RecordError {
    RecordError::new(record, id.map(str::to_string), message)
}

fn ids(articles: &[Article]) -> Vec<&str> {
    articles.iter().map(|a| a.id.as_str()).collect()
}

fn ids_sources(articles: &[Article]) -> Vec<(&str, &str)> {
    articles
        .iter()
        .map(|a| (a.id.as_str(), a.source.as_str()))
        .collect()
}

fn read_one(path: &Path) -> (Vec<Article>, Vec<RecordError>) {
    read_all(&[path.to_path_buf()])
}

fn read_stdin(inputs: &[&str], stdin: &[u8]) -> (Vec<Article>, Vec<RecordError>) {
    let inputs: Vec<PathBuf> = inputs.iter().map(PathBuf::from).collect();
    collect(Articles::with_stdin(
        &inputs,
        Box::new(io::Cursor::new(stdin.to_vec())),
    ))
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, bytes).unwrap();
    path
}

// ---- folders of .txt files -------------------------------------------------------------------

#[test]
fn folder_sources_come_from_sub_folders_or_stems_in_path_order() {
    let root = fixture("corpus");
    let (articles, errors) = read_one(&root);
    assert_eq!(errors, vec![]);
    // Sorted by path; notes.md, outlet_b/README and .hidden.txt are not read.
    assert_eq!(
        ids_sources(&articles),
        vec![
            ("outlet_a/one", "outlet_a"),
            ("outlet_a/two", "outlet_a"),
            ("outlet_b/2021/deep", "2021"),
            ("outlet_b/one", "outlet_b"),
            ("top", "top"),
        ]
    );
    assert_eq!(articles[0].text, "Outlet A says the talks collapsed.\n");
    assert_eq!(articles[0].title, None);
    assert_eq!(articles[0].date, None);
    assert_eq!(articles[0].url, None);
}

#[test]
fn folder_without_sub_folders_uses_stems() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cnn.txt", b"One.");
    write(dir.path(), "fox.TXT", b"Two.");
    write(dir.path(), "data.json", b"{}");
    let (articles, errors) = read_all(&[dir.path().to_path_buf()]);
    assert_eq!(errors, vec![]);
    assert_eq!(ids_sources(&articles), vec![("cnn", "cnn"), ("fox", "fox")]);
}

#[test]
fn manifest_sets_metadata_and_reports_bad_rows() {
    let root = fixture("manifest");
    let manifest = shown(&root.join("manifest.csv"));
    let (articles, errors) = read_one(&root);
    assert_eq!(
        ids_sources(&articles),
        vec![
            ("planet-1", "Daily Planet"),
            ("sub/b", "Gazette"),
            // Not in the manifest: the layout rules apply.
            ("unlisted", "unlisted"),
        ]
    );
    let planet = &articles[0];
    assert_eq!(
        planet.title.as_deref(),
        Some("Talks \"collapse\", sources say")
    );
    assert_eq!(planet.date.as_deref(), Some("2021-09-08"));
    assert_eq!(planet.url.as_deref(), Some("https://example.com/a"));
    assert_eq!(planet.text, "The planet story.\n");
    assert_eq!(articles[1].title, None);
    assert_eq!(
        errors,
        vec![
            err(
                format!("{manifest}:row 4"),
                Some("gone-1"),
                "manifest names missing file missing.txt"
            ),
            err(
                format!("{manifest}:row 5"),
                None,
                "manifest names notes.md, which is not read: only .txt files are read and \
                 names starting with '.' are skipped"
            ),
            err(
                format!("{manifest}:row 6"),
                None,
                "required field `source` is empty; c.txt skipped"
            ),
            err(
                format!("{manifest}:row 7"),
                None,
                "a.txt is already listed in row 2"
            ),
        ]
    );
}

#[test]
fn manifest_without_source_column_skips_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "manifest.csv", b"file,outlet\na.txt,CNN\n");
    write(dir.path(), "a.txt", b"Text.");
    let (articles, errors) = read_all(&[dir.path().to_path_buf()]);
    assert_eq!(articles, vec![]);
    assert_eq!(
        errors,
        vec![err(
            shown(&dir.path().join("manifest.csv")),
            None,
            &format!(
                "manifest header must have the columns `file` and `source` (header has: \
                 file, outlet); folder {} skipped so that no article gets a wrong source",
                dir.path().display()
            )
        )]
    );
}

#[test]
fn manifest_paths_may_use_backslashes_but_not_leave_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "manifest.csv",
        b"\xEF\xBB\xBFFile , Source\r\nsub\\a.txt,CNN\r\n../b.txt,Fox\r\n",
    );
    write(dir.path(), "sub/a.txt", b"Text.");
    let (articles, errors) = read_all(&[dir.path().to_path_buf()]);
    assert_eq!(ids_sources(&articles), vec![("sub/a", "CNN")]);
    assert_eq!(
        errors,
        vec![err(
            format!("{}:row 3", dir.path().join("manifest.csv").display()),
            None,
            "`file` must be a path inside the folder, found ../b.txt"
        )]
    );
}

#[test]
fn single_txt_file_uses_its_stem() {
    let path = fixture("corpus/outlet_a/two.txt");
    let (articles, errors) = read_all(&[path]);
    assert_eq!(errors, vec![]);
    assert_eq!(ids_sources(&articles), vec![("two", "two")]);
    assert_eq!(articles[0].text, "Outlet A, second story.\n");
}

#[test]
fn broken_txt_files_are_errors_and_the_rest_is_read() {
    let root = fixture("broken");
    let file = |name: &str| shown(&root.join(name));
    let (articles, errors) = read_one(&root);
    assert_eq!(ids(&articles), vec!["good"]);
    assert_eq!(
        errors,
        vec![
            err(
                file("bad_utf8.txt"),
                Some("bad_utf8"),
                "invalid UTF-8 at byte offset 3"
            ),
            err(
                file("binary.txt"),
                Some("binary"),
                "binary content: NUL byte at byte offset 2"
            ),
            err(
                file("blank.txt"),
                Some("blank"),
                "text is empty or whitespace-only"
            ),
            err(
                file("empty.txt"),
                Some("empty"),
                "text is empty or whitespace-only"
            ),
        ]
    );
}

#[test]
fn txt_keeps_carriage_returns_and_drops_only_the_bom() {
    let dir = tempfile::tempdir().unwrap();
    let crlf = write(dir.path(), "crlf.txt", b"Line one.\r\nLine two.\r\n");
    let bom = write(dir.path(), "bom.txt", b"\xEF\xBB\xBF  Indented.\r\n");
    let (articles, errors) = read_all(&[crlf, bom]);
    assert_eq!(errors, vec![]);
    assert_eq!(articles[0].text, "Line one.\r\nLine two.\r\n");
    assert_eq!(articles[1].text, "  Indented.\r\n");
}

#[test]
fn txt_offsets_count_the_bom_and_utf16_gets_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.txt", b"\xEF\xBB\xBFok \xC3(");
    let utf16 = write(dir.path(), "utf16.txt", b"\xFF\xFEH\x00i\x00");
    let (_, errors) = read_all(&[bad.clone(), utf16.clone()]);
    assert_eq!(
        errors,
        vec![
            err(shown(&bad), Some("bad"), "invalid UTF-8 at byte offset 6"),
            err(
                shown(&utf16),
                Some("utf16"),
                "binary content: NUL byte at byte offset 3 (the file looks like UTF-16; \
                 save it as UTF-8)"
            ),
        ]
    );
}

#[test]
fn folder_without_txt_files_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.json", b"{}");
    let (articles, errors) = read_all(&[dir.path().to_path_buf()]);
    assert_eq!(articles, vec![]);
    assert_eq!(
        errors,
        vec![err(
            shown(dir.path()),
            None,
            "no .txt files found in folder"
        )]
    );
}

#[cfg(unix)]
#[test]
fn links_to_files_are_read_links_to_folders_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "cnn/x.txt", b"Outside.");
    let target = write(outside.path(), "y.txt", b"Linked file.");
    write(dir.path(), "a.txt", b"Inside.");
    std::os::unix::fs::symlink(outside.path().join("cnn"), dir.path().join("cnn")).unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("y.txt")).unwrap();
    let (articles, errors) = read_all(&[dir.path().to_path_buf()]);
    assert_eq!(errors, vec![]);
    assert_eq!(ids(&articles), vec!["a", "y"]);
    assert_eq!(articles[1].text, "Linked file.");
}

#[test]
fn seeds_manifest_names_every_seed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let (articles, errors) = read_one(&root);
    assert_eq!(errors, vec![]);
    assert_eq!(articles.len(), 5);
    for article in &articles {
        assert_eq!(article.source, article.id);
        let file = fs::read_to_string(root.join(format!("{}.txt", article.id))).unwrap();
        assert_eq!(article.text, file);
        let title = article.title.as_deref().expect("every seed has a title");
        assert!(title.chars().count() <= 80, "{title}");
        let first_line = file.lines().next().unwrap().trim();
        let stem = title.trim_end_matches('…');
        assert!(first_line.starts_with(stem), "{title} / {first_line}");
    }
    assert_eq!(articles[0].id, "000_0ac7ef0ff899d3ba");
    assert_eq!(articles[4].id, "004_2958265e761597a1");
    assert_eq!(
        articles[3].title.as_deref(),
        Some("5 countries to recognize the Taliban")
    );
}

// ---- JSON Lines ------------------------------------------------------------------------------

#[test]
fn jsonl_fixture_reads_good_lines_and_reports_bad_ones() {
    let path = fixture("articles.jsonl");
    let line = |n: u32| format!("{}:{n}", path.display());
    let (articles, errors) = read_one(&path);
    assert_eq!(ids(&articles), vec!["j1", "7", "j6"]);
    assert_eq!(articles[0].source, "Wire");
    assert_eq!(articles[0].text, "First story.");
    assert_eq!(articles[0].title.as_deref(), Some("T1"));
    assert_eq!(articles[2].date.as_deref(), Some("2021-09-08"));
    assert_eq!(articles[2].url.as_deref(), Some("https://example.com/j6"));
    assert_eq!(articles[2].title, None);

    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert_eq!(errors[0].record, line(4));
    assert_eq!(errors[0].id, None);
    assert!(
        errors[0]
            .message
            .starts_with("malformed JSON: EOF while parsing a string"),
        "{}",
        errors[0].message
    );
    assert_eq!(
        errors[1..],
        [
            err(
                line(5),
                Some("j1"),
                &format!("duplicate id j1, first seen in {}", line(1))
            ),
            err(line(6), Some("j4"), "missing required field `source`"),
            err(line(7), Some("j5"), "text is empty or whitespace-only"),
            err(line(8), None, "expected a JSON object, found an array"),
        ]
    );
}

#[test]
fn jsonl_field_types_and_missing_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.ndjson",
        concat!(
            "{\"id\": true, \"source\": \"s\", \"text\": \"t\"}\n",
            "{\"id\": \"x\", \"source\": \"s\", \"text\": \"t\", \"title\": 3}\n",
            "{\"id\": 1.5}\n",
            "{\"id\": \" \", \"source\": \"s\", \"text\": \"t\"}\n",
            "{\"id\": \"y\", \"source\": \"s\", \"text\": \"a\\u0000b\"}\n",
            "{\"id\": \" z \", \"source\": \" s \", \"text\": \" kept \", \"title\": \"\"}\n",
        )
        .as_bytes(),
    );
    let line = |n: u32| format!("{}:{n}", path.display());
    let (articles, errors) = read_one(&path);
    assert_eq!(
        errors,
        vec![
            err(
                line(1),
                None,
                "field `id` must be a string or a number, found a boolean"
            ),
            err(
                line(2),
                Some("x"),
                "field `title` must be a string, found a number"
            ),
            err(
                line(3),
                Some("1.5"),
                "missing required fields `source`, `text`"
            ),
            err(line(4), None, "required field `id` is empty"),
            err(line(5), Some("y"), "binary content: NUL character in text"),
        ]
    );
    // id/source trimmed, text untouched, empty title absent.
    assert_eq!(
        articles,
        vec![Article {
            id: "z".into(),
            source: "s".into(),
            text: " kept ".into(),
            title: None,
            date: None,
            url: None,
        }]
    );
}

#[test]
fn jsonl_bad_bytes_name_file_and_line_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let good = b"{\"id\":\"a\",\"source\":\"s\",\"text\":\"t\"}\n";
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(good); // bytes 3..38
    bytes.extend_from_slice(b"{\"id\":\"b\xFF\"}\n"); // 0xFF is byte 8 of line 2
    bytes.extend_from_slice(b"{\"id\":\0}\r\n");
    bytes.extend_from_slice(b"\r\n");
    let path = write(dir.path(), "a.jsonl", &bytes);
    let line = |n: u32| format!("{}:{n}", path.display());
    let (articles, errors) = read_one(&path);
    assert_eq!(ids(&articles), vec!["a"]);
    assert_eq!(
        errors,
        vec![
            err(
                line(2),
                None,
                "invalid UTF-8 at byte offset 46 (byte 8 of the line)"
            ),
            err(
                line(3),
                None,
                "binary content: NUL byte at byte offset 56 (byte 6 of the line)"
            ),
        ]
    );
}

#[test]
fn jsonl_text_escapes_are_decoded_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.jsonl",
        b"{\"id\":\"a\",\"source\":\"s\",\"text\":\"one\\r\\ntwo \\u201cq\\u201d\"}\r\n",
    );
    let (articles, errors) = read_all(&[path]);
    assert_eq!(errors, vec![]);
    assert_eq!(articles[0].text, "one\r\ntwo \u{201c}q\u{201d}");
}

// ---- CSV / TSV -------------------------------------------------------------------------------

#[test]
fn csv_fixture_reads_quoted_multiline_fields_and_reports_bad_rows() {
    let path = fixture("articles.csv");
    let row = |n: u32| format!("{}:row {n}", path.display());
    let (articles, errors) = read_one(&path);
    assert_eq!(
        ids_sources(&articles),
        vec![("c1", "Herald"), ("c4", "Herald")]
    );
    assert_eq!(articles[0].text, "First line\nsecond \"quoted\" line");
    assert_eq!(articles[0].title.as_deref(), Some("Headline, with comma"));
    assert_eq!(articles[1].title, None);
    assert_eq!(
        errors,
        vec![
            err(row(3), Some("c2"), "required field `source` is empty"),
            err(
                row(4),
                Some("c3"),
                "wrong number of fields: expected 5 as in the header, found 4"
            ),
        ]
    );
}

#[test]
fn csv_without_a_required_column_is_one_error() {
    let path = fixture("missing_column.csv");
    let (articles, errors) = read_one(&path);
    assert_eq!(articles, vec![]);
    assert_eq!(
        errors,
        vec![err(
            shown(&path),
            None,
            "missing required column `text` (header has: id, source, body)"
        )]
    );
}

#[test]
fn tsv_is_tab_separated_with_csv_quoting() {
    let (articles, errors) = read_all(&[fixture("articles.tsv")]);
    assert_eq!(errors, vec![]);
    assert_eq!(ids_sources(&articles), vec![("t1", "Post"), ("t2", "Post")]);
    assert_eq!(articles[0].text, "Tab separated, with a comma.");
    assert_eq!(articles[1].text, "Quoted\ttab");
}

#[test]
fn csv_bom_header_case_crlf_and_bad_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.csv",
        b"\xEF\xBB\xBF ID ,Source,TEXT,Date,note\r\n\
          a,s,\"one\r\ntwo\",2021,\xFF ignored column\r\n\
          b,s,caf\xE9,,\r\n\
          \r\n\
          c,s,x\x00y,,\r\n",
    );
    let row = |n: u32| format!("{}:row {n}", path.display());
    let (articles, errors) = read_one(&path);
    assert_eq!(ids(&articles), vec!["a"]);
    // CR LF inside a quoted field is kept; invalid bytes in an unused column do not matter.
    assert_eq!(articles[0].text, "one\r\ntwo");
    assert_eq!(articles[0].date.as_deref(), Some("2021"));
    assert_eq!(
        errors,
        vec![
            err(
                row(3),
                Some("b"),
                "invalid UTF-8 in column `text` at byte 3 of the field"
            ),
            // The empty line is skipped and not counted.
            err(
                row(4),
                Some("c"),
                "binary content: NUL byte in column `text` at byte 1 of the field"
            ),
        ]
    );
}

#[test]
fn csv_duplicate_known_column_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"id,source,text,Text\n1,s,t,u\n");
    let (_, errors) = read_one(&path);
    assert_eq!(
        errors,
        vec![err(
            shown(&path),
            None,
            "column `text` appears more than once in the header"
        )]
    );
}

#[test]
fn csv_empty_file_has_no_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"");
    let (_, errors) = read_one(&path);
    assert_eq!(
        errors,
        vec![err(
            shown(&path),
            None,
            "no header row: expected the columns id, source, text"
        )]
    );
}

// ---- inputs, order, duplicates ----------------------------------------------------------------

#[test]
fn missing_and_unsupported_inputs_are_errors_and_the_stream_goes_on() {
    let missing = fixture("no_such_folder");
    let xyz = fixture("input.xyz");
    let bare = fixture("corpus/outlet_b/README");
    let good = fixture("corpus/top.txt");
    let (articles, errors) = read_all(&[missing.clone(), xyz.clone(), bare.clone(), good]);
    assert_eq!(ids(&articles), vec!["top"]);
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[0].record, shown(&missing));
    assert!(
        errors[0].message.starts_with("cannot open input: "),
        "{}",
        errors[0].message
    );
    assert_eq!(
        errors[1..],
        [
            err(
                shown(&xyz),
                None,
                "unsupported input format .xyz: expected a folder of .txt files, .jsonl, .csv \
                 or .tsv"
            ),
            err(
                shown(&bare),
                None,
                "unsupported input format (no extension): expected a folder of .txt files, \
                 .jsonl, .csv or .tsv"
            ),
        ]
    );
}

#[test]
fn inputs_are_read_in_the_order_given() {
    let a = fixture("articles.tsv");
    let b = fixture("corpus/top.txt");
    let (ab, _) = read_all(&[a.clone(), b.clone()]);
    let (ba, _) = read_all(&[b, a]);
    assert_eq!(ids(&ab), vec!["t1", "t2", "top"]);
    assert_eq!(ids(&ba), vec!["top", "t1", "t2"]);
}

#[test]
fn duplicate_ids_across_inputs_keep_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let txt = write(dir.path(), "x.txt", b"From the folder.");
    let csv = write(dir.path(), "a.csv", b"id,source,text\nx,s,From the CSV.\n");
    let (articles, errors) = read_all(&[txt.clone(), csv.clone()]);
    assert_eq!(articles.len(), 1);
    assert_eq!(articles[0].text, "From the folder.");
    assert_eq!(
        errors,
        vec![err(
            format!("{}:row 2", csv.display()),
            Some("x"),
            &format!("duplicate id x, first seen in {}", txt.display())
        )]
    );
}

#[test]
fn record_error_display_names_record_and_id() {
    let e = err("a.jsonl:3", Some("x"), "text is empty or whitespace-only");
    assert_eq!(
        e.to_string(),
        "a.jsonl:3 (id x): text is empty or whitespace-only"
    );
    assert_eq!(err("a.txt", None, "m").to_string(), "a.txt: m");
}

#[test]
fn article_json_skips_absent_optional_fields() {
    let article = Article {
        id: "a".into(),
        source: "s".into(),
        text: "t".into(),
        title: None,
        date: Some("2021".into()),
        url: None,
    };
    let json = serde_json::to_string(&article).unwrap();
    assert_eq!(json, r#"{"id":"a","source":"s","text":"t","date":"2021"}"#);
    assert_eq!(serde_json::from_str::<Article>(&json).unwrap(), article);
}

// ---- stdin -----------------------------------------------------------------------------------

#[test]
fn stdin_jsonl_is_detected_and_lines_are_counted() {
    let (articles, errors) = read_stdin(
        &["-"],
        b"\n  \n {\"id\":\"a\",\"source\":\"s\",\"text\":\"t\"}\n{bad\n",
    );
    assert_eq!(ids(&articles), vec!["a"]);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].record, "<stdin>:4");
    assert!(errors[0].message.starts_with("malformed JSON: "));
}

#[test]
fn stdin_csv_and_tsv_are_detected_by_a_text_column() {
    let (articles, errors) =
        read_stdin(&["-"], b"\xEF\xBB\xBFid,source,text\n1,s,\"a, b\"\n2,,x\n");
    assert_eq!(ids(&articles), vec!["1"]);
    assert_eq!(articles[0].text, "a, b");
    assert_eq!(
        errors,
        vec![err(
            "<stdin>:row 3",
            Some("2"),
            "required field `source` is empty"
        )]
    );

    let (articles, errors) = read_stdin(&["-"], b"id\tsource\ttext\n1\ts\ta, b\n");
    assert_eq!(errors, vec![]);
    assert_eq!(articles[0].text, "a, b");
}

#[test]
fn stdin_plain_text_is_refused_and_empty_input_is_an_empty_corpus() {
    let message = "stdin: expected JSONL or CSV with a `text` column; for plain text pass a file";
    for input in [
        &b"Just some article text.\nMore.\n"[..],
        b"id,source,body\n1,s,t\n",
    ] {
        let (articles, errors) = read_stdin(&["-"], input);
        assert_eq!(articles, vec![]);
        assert_eq!(errors, vec![err("<stdin>", None, message)]);
    }
    // An empty pipe (or an empty Spark partition) is a corpus of no articles, not an error.
    for input in [&b""[..], b"\n \n"] {
        let (articles, errors) = read_stdin(&["-"], input);
        assert_eq!((articles, errors), (vec![], vec![]));
    }
}

#[test]
fn stdin_given_twice_is_an_error() {
    let (articles, errors) = read_stdin(
        &["-", "-"],
        b"{\"id\":\"a\",\"source\":\"s\",\"text\":\"t\"}",
    );
    assert_eq!(ids(&articles), vec!["a"]);
    assert_eq!(
        errors,
        vec![err("<stdin>", None, "stdin (`-`) given more than once")]
    );
}

// ---- streaming -------------------------------------------------------------------------------

/// Endless JSONL: never fits in memory, so only a streaming reader can get through it.
struct Endless {
    n: u64,
    buf: Vec<u8>,
}

impl Read for Endless {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.buf.is_empty() {
            self.n += 1;
            self.buf =
                format!("{{\"id\":{},\"source\":\"s\",\"text\":\"t\"}}\n", self.n).into_bytes();
        }
        let k = out.len().min(self.buf.len());
        out[..k].copy_from_slice(&self.buf[..k]);
        self.buf.drain(..k);
        Ok(k)
    }
}

#[test]
fn the_stream_can_move_to_another_thread() {
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&open(&[PathBuf::from("-")]));
}

#[test]
fn endless_input_streams() {
    let reader = Endless {
        n: 0,
        buf: Vec::new(),
    };
    let stream = Articles::with_stdin(&[PathBuf::from("-")], Box::new(reader));
    let first: Vec<String> = stream.take(10_000).map(|a| a.unwrap().id).collect();
    assert_eq!(first.len(), 10_000);
    assert_eq!(first[0], "1");
    assert_eq!(first[9_999], "10000");
}

/// Yields `data`, then fails.
struct FailsAfter {
    data: io::Cursor<Vec<u8>>,
}

impl Read for FailsAfter {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.data.read(out)? {
            0 => Err(io::Error::other("disk on fire")),
            n => Ok(n),
        }
    }
}

#[test]
fn records_come_out_before_the_rest_is_read() {
    for (input, record) in [
        (
            &b"{\"id\":\"a\",\"source\":\"s\",\"text\":\"t\"}\n"[..],
            "<stdin>:2",
        ),
        (b"id,source,text\na,s,t\n", "<stdin>:row 3"),
    ] {
        let reader = FailsAfter {
            data: io::Cursor::new(input.to_vec()),
        };
        let mut stream = Articles::with_stdin(&[PathBuf::from("-")], Box::new(reader));
        assert_eq!(stream.next().unwrap().unwrap().id, "a");
        let e = stream.next().unwrap().unwrap_err();
        assert_eq!(e.record, record);
        assert!(e.message.starts_with("read error: "), "{}", e.message);
        assert!(e.message.contains("disk on fire"), "{}", e.message);
        assert!(stream.next().is_none());
        assert!(stream.next().is_none());
    }
}

// ---- article size limit ----------------------------------------------------------------------

fn limited(max: u64) -> IngestOptions {
    IngestOptions {
        max_article_bytes: max,
    }
}

fn read_limited(inputs: &[PathBuf], max: u64) -> (Vec<Article>, Vec<RecordError>) {
    read_all_with(inputs, &limited(max))
}

#[test]
fn size_limit_default_and_message() {
    assert_eq!(DEFAULT_MAX_ARTICLE_BYTES, 1_048_576);
    assert_eq!(IngestOptions::default().max_article_bytes, 1_048_576);
    assert_eq!(
        too_long_message(41_943_040, DEFAULT_MAX_ARTICLE_BYTES),
        "article text is 41,943,040 bytes, over the limit of 1,048,576 (--max-article-bytes)"
    );
    for (n, s) in [
        (0, "0"),
        (999, "999"),
        (1_000, "1,000"),
        (123_456, "123,456"),
        (1_234_567, "1,234,567"),
        (u64::MAX, "18,446,744,073,709,551,615"),
    ] {
        assert_eq!(grouped(n), s);
    }
    assert_eq!(jsonl_line_cap(u64::MAX), u64::MAX);
}

#[test]
fn oversized_txt_files_are_errors_with_their_id_and_the_next_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cnn/a.txt", &[b'a'; 100]);
    let big = write(dir.path(), "cnn/b.txt", &[b'b'; 101]);
    // Exactly the limit after the byte order mark is dropped.
    let mut with_bom = BOM.to_vec();
    with_bom.extend_from_slice(&[b'c'; 100]);
    write(dir.path(), "cnn/c.txt", &with_bom);
    let mut big_bom = BOM.to_vec();
    big_bom.extend_from_slice(&[b'd'; 101]);
    let big_with_bom = write(dir.path(), "cnn/d.txt", &big_bom);
    write(dir.path(), "fox/e.txt", b"Fox says so.");
    let (articles, errors) = read_limited(&[dir.path().to_path_buf()], 100);
    assert_eq!(ids(&articles), vec!["cnn/a", "cnn/c", "fox/e"]);
    assert_eq!(articles[1].text.len(), 100);
    let message = "article text is 101 bytes, over the limit of 100 (--max-article-bytes)";
    assert_eq!(
        errors,
        vec![
            err(shown(&big), Some("cnn/b"), message),
            err(shown(&big_with_bom), Some("cnn/d"), message),
        ]
    );
    // A single file, and the default options through `open`.
    let (articles, errors) = read_limited(std::slice::from_ref(&big), 100);
    assert!(articles.is_empty());
    assert_eq!(errors, vec![err(shown(&big), Some("b"), message)]);
    let (articles, errors) = read_one(&big);
    assert_eq!((articles.len(), errors.len()), (1, 0));
}

#[test]
fn oversized_txt_files_are_not_read() {
    // A sparse file far over the limit: refused from its length, without reading it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.txt");
    let file = fs::File::create(&path).unwrap();
    file.set_len(1 << 40).unwrap();
    drop(file);
    let (articles, errors) = read_one(&path);
    assert!(articles.is_empty());
    assert_eq!(
        errors,
        vec![err(
            shown(&path),
            Some("huge"),
            "article text is 1,099,511,627,776 bytes, over the limit of 1,048,576 \
             (--max-article-bytes)"
        )]
    );
}

#[test]
fn oversized_jsonl_records_are_errors_with_their_id_and_the_next_line_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let line = |id: &str, text: &str| {
        format!("{{\"id\":\"{id}\",\"source\":\"s\",\"text\":\"{text}\"}}\n").into_bytes()
    };
    let mut bytes = line("a", &"a".repeat(50));
    bytes.extend(line("b", &"b".repeat(51)));
    // Escapes count as the text they decode to: 50 bytes of text, 300 in the line.
    bytes.extend(line("c", &"\\u0063".repeat(50)));
    bytes.extend(line("d", "short"));
    let path = write(dir.path(), "a.jsonl", &bytes);
    let (articles, errors) = read_limited(std::slice::from_ref(&path), 50);
    assert_eq!(ids(&articles), vec!["a", "c", "d"]);
    assert_eq!(
        errors,
        vec![err(
            format!("{}:2", path.display()),
            Some("b"),
            "article text is 51 bytes, over the limit of 50 (--max-article-bytes)"
        )]
    );
}

/// A JSONL stream with one enormous line (generated as it is read), then a good line.
struct HugeLine {
    head: io::Cursor<Vec<u8>>,
    filler: u64,
    tail: io::Cursor<Vec<u8>>,
}

impl Read for HugeLine {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.head.read(out)?;
        if n > 0 {
            return Ok(n);
        }
        if self.filler > 0 {
            let k = (out.len() as u64).min(self.filler) as usize;
            out[..k].fill(b'x');
            self.filler -= k as u64;
            return Ok(k);
        }
        self.tail.read(out)
    }
}

#[test]
fn jsonl_lines_too_long_for_the_limit_are_skipped_as_they_are_read() {
    let max = 1_000;
    let filler = 64 << 20;
    let head = b"{\"id\":\"big\",\"source\":\"s\",\"text\":\"";
    let reader = HugeLine {
        head: io::Cursor::new(head.to_vec()),
        filler,
        tail: io::Cursor::new(
            b"\"}\n\n{\"id\":\"next\",\"source\":\"s\",\"text\":\"t\"}\n".to_vec(),
        ),
    };
    let stream = Articles::with_stdin_and(&[PathBuf::from("-")], Box::new(reader), &limited(max));
    let items: Vec<_> = stream.collect();
    assert_eq!(items.len(), 2, "{items:?}");
    let e = items[0].as_ref().unwrap_err();
    assert_eq!(e.record, "<stdin>:1");
    assert_eq!(e.id, None);
    let line_len = head.len() as u64 + filler + 2;
    assert_eq!(
        e.message,
        format!(
            "line is {} bytes, too long for an article text within the limit of 1,000 \
             (--max-article-bytes)",
            grouped(line_len)
        )
    );
    // Line 2 is blank; line numbers go on after the skipped line.
    assert_eq!(items[1].as_ref().unwrap().id, "next");
    // A huge whitespace-only line is blank, as a short one is.
    let reader = HugeLine {
        head: io::Cursor::new(Vec::new()),
        filler: 0,
        tail: io::Cursor::new(
            [
                vec![b' '; 3 << 20],
                b"\n{\"id\":\"n\",\"source\":\"s\",\"text\":\"t\"}\n".to_vec(),
            ]
            .concat(),
        ),
    };
    let stream = Articles::with_stdin_and(&[PathBuf::from("-")], Box::new(reader), &limited(max));
    let items: Vec<_> = stream.collect();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap().id, "n");
}

#[test]
fn jsonl_line_numbers_and_offsets_go_on_after_a_skipped_line() {
    let dir = tempfile::tempdir().unwrap();
    let max = 10;
    let cap = jsonl_line_cap(max) as usize;
    let mut bytes = format!("{{\"id\":\"a\",\"text\":\"{}\"}}\n", "a".repeat(cap)).into_bytes();
    let after = bytes.len();
    bytes.extend_from_slice(b"{\"id\":\"b\xFF\"}\n");
    let path = write(dir.path(), "a.jsonl", &bytes);
    let (articles, errors) = read_limited(std::slice::from_ref(&path), max);
    assert!(articles.is_empty());
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].record, format!("{}:1", path.display()));
    assert!(
        errors[0].message.starts_with("line is "),
        "{}",
        errors[0].message
    );
    assert_eq!(
        errors[1],
        err(
            format!("{}:2", path.display()),
            None,
            &format!(
                "invalid UTF-8 at byte offset {} (byte 8 of the line)",
                after + 8
            )
        )
    );
}

#[test]
fn oversized_csv_rows_are_errors_with_their_id_and_the_next_row_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let csv = format!(
        "id,source,text\na,s,{}\nb,s,\"{}\"\nc,s,short\n",
        "a".repeat(20),
        "b\n".repeat(11)
    );
    let path = write(dir.path(), "a.csv", csv.as_bytes());
    let (articles, errors) = read_limited(std::slice::from_ref(&path), 20);
    assert_eq!(ids(&articles), vec!["a", "c"]);
    assert_eq!(
        errors,
        vec![err(
            format!("{}:row 3", path.display()),
            Some("b"),
            "article text is 22 bytes, over the limit of 20 (--max-article-bytes)"
        )]
    );
    // TSV on stdin.
    let tsv = format!("id\tsource\ttext\nx\ts\t{}\ny\ts\tok\n", "x".repeat(21));
    let stream = Articles::with_stdin_and(
        &[PathBuf::from("-")],
        Box::new(io::Cursor::new(tsv.into_bytes())),
        &limited(20),
    );
    let items: Vec<_> = stream.collect();
    let e = items[0].as_ref().unwrap_err();
    assert_eq!(
        (e.record.as_str(), e.id.as_deref()),
        ("<stdin>:row 2", Some("x"))
    );
    assert_eq!(items[1].as_ref().unwrap().id, "y");
}
