//! End-to-end tests of the `slant` binary: each test runs the real executable
//! (`CARGO_BIN_EXE_slant`) from the crate root, on `seeds/`, with the real encoder
//! (`models/encoder/all-MiniLM-L6-v2`) and the real loaded-language head
//! (`models/loaded.safetensors`).
//!
//! * Tests that need the encoder print `skipping: encoder not fetched (run models/fetch)` and
//!   pass when `models/encoder/all-MiniLM-L6-v2/model.safetensors` is absent, so `cargo test`
//!   passes on a machine without the model (CI always fetches it).
//! * Tests that need labelled data use `$SLANT_DATA`, else `../shared/data` next to the crate,
//!   and skip with a message when it is absent.
//! * Golden files live in `tests/golden/`. After an intended change of the output (a retrained
//!   head, a splitter fix, a new field) rewrite them and review the diff:
//!
//!   ```text
//!   SLANT_UPDATE_GOLDEN=1 cargo test --test cli
//!   ```
//!
//!   `score_seeds.json` is the output of `slant score seeds --format json` without
//!   `manifest.git_commit`; it is compared with floats within 2e-3 (CPU differences) and
//!   everything else (keys, array lengths, strings, integers, booleans) exactly.
//!
//! One `score seeds --format json` run is shared by the tests that only read it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// sha256 of all-MiniLM-L6-v2's model.safetensors (models/encoder.sha256).
const ENCODER_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// Tolerance for floats that go through the encoder (CPU float differences).
const FLOAT_TOL: f64 = 2e-3;
/// The seed articles; each one's id and source is its file stem. Sorted by name.
const SEEDS: [&str; 5] = [
    "000_0ac7ef0ff899d3ba",
    "001_a97b6867efbebe7e",
    "002_7f085a4d41f1373a",
    "003_4f504e27a0b360eb",
    "004_2958265e761597a1",
];
const SEED0: &str = "seeds/000_0ac7ef0ff899d3ba.txt";
const CSV_HEADER: &str =
    "article,source,index,start,end,text,loaded,loaded_label,loaded_spans,tokens,truncated,attributions,unattributed";

// ------------------------------------------------------------------------------------------
// Helpers

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What one run of the binary gave.
struct Run {
    args: Vec<String>,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn show(&self) -> String {
        format!(
            "`slant {}` exited {}\n--- stderr ---\n{}\n--- stdout (first 2000 bytes) ---\n{}",
            self.args.join(" "),
            self.code,
            self.stderr,
            &self.stdout[..floor_char_boundary(&self.stdout, 2000)]
        )
    }

    fn expect_code(&self, want: i32) -> &Self {
        assert_eq!(
            self.code,
            want,
            "wrong exit code (want {want}): {}",
            self.show()
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {}", self.show()))
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Runs the binary in the crate root with `args`, feeding `stdin` (or nothing: stdin is closed).
fn slant_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slant"));
    cmd.args(args)
        .current_dir(root())
        // The binary must find the checkout's encoder and choose its own thread count.
        .env_remove("SLANT_MODEL")
        .env_remove("RAYON_NUM_THREADS")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cannot start the slant binary");
    let writer = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let bytes = bytes.to_vec();
        // A thread, so that a child filling its stdout pipe cannot deadlock us.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let out = child.wait_with_output().expect("waiting for slant");
    if let Some(w) = writer {
        w.join().expect("stdin writer thread");
    }
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is not UTF-8"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn slant(args: &[&str]) -> Run {
    slant_with_stdin(args, None)
}

/// True when the encoder is there; otherwise says why the test is skipped.
fn have_encoder() -> bool {
    let weights = root().join("models/encoder/all-MiniLM-L6-v2/model.safetensors");
    if weights.is_file() {
        true
    } else {
        eprintln!("skipping: encoder not fetched (run models/fetch)");
        false
    }
}

macro_rules! need_encoder {
    () => {
        if !have_encoder() {
            return;
        }
    };
}

/// The labelled-data folder ($SLANT_DATA, else ../shared/data), when it holds BABE.
fn data_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("SLANT_DATA") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => root().join("../shared/data"),
    };
    if dir.join("babe/data/final_labels_SG2.csv").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: no labelled data at {} (set SLANT_DATA to a folder like ../shared/data)",
            dir.display()
        );
        None
    }
}

fn update_golden() -> bool {
    std::env::var_os("SLANT_UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

fn golden_path(name: &str) -> PathBuf {
    root().join("tests/golden").join(name)
}

/// Reads a golden file, or writes `got` to it under SLANT_UPDATE_GOLDEN=1 (then returns None).
fn golden(name: &str, got: &str) -> Option<String> {
    let path = golden_path(name);
    if update_golden() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        eprintln!("rewrote {}", path.display());
        return None;
    }
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {} ({e}); create it with SLANT_UPDATE_GOLDEN=1 cargo test --test cli",
            path.display()
        )
    }))
}

/// Whitespace runs collapsed to one space, ends trimmed (what `text` fields hold).
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn seed_bytes(id: &str) -> Vec<u8> {
    std::fs::read(root().join("seeds").join(format!("{id}.txt"))).unwrap()
}

/// `text[start..end]` of a record, checked to be in bounds and on UTF-8 boundaries.
fn slice<'a>(bytes: &'a [u8], start: usize, end: usize, what: &str) -> &'a str {
    assert!(
        start < end && end <= bytes.len(),
        "{what}: span {start}..{end} outside 0..{}",
        bytes.len()
    );
    std::str::from_utf8(&bytes[start..end])
        .unwrap_or_else(|e| panic!("{what}: span {start}..{end} is not UTF-8 text: {e}"))
}

fn u(v: &Value, key: &str) -> usize {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("`{key}` is not an unsigned integer in {v}")) as usize
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {v}"))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {v}"))
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is not an array in {v}"))
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The first line where `a` and `b` differ, for messages.
fn first_diff(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n  - {x}\n  + {y}", i + 1);
        }
    }
    format!(
        "one output is a prefix of the other ({} vs {} lines)",
        a.lines().count(),
        b.lines().count()
    )
}

/// Differences between JSON values: keys, array lengths, strings, integers and booleans exactly;
/// numbers where either side is a float within `tol`. Paths like `$.sentences[3].loaded`.
fn diff_json(path: &str, want: &Value, got: &Value, tol: f64, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for k in w.keys().filter(|k| !g.contains_key(*k)) {
                out.push(format!("{path}.{k}: missing (golden has it)"));
            }
            for k in g.keys().filter(|k| !w.contains_key(*k)) {
                out.push(format!("{path}.{k}: new key, not in golden"));
            }
            for (k, wv) in w {
                if let Some(gv) = g.get(k) {
                    diff_json(&format!("{path}.{k}"), wv, gv, tol, out);
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                out.push(format!(
                    "{path}: {} elements in golden, {} now",
                    w.len(),
                    g.len()
                ));
            }
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                diff_json(&format!("{path}[{i}]"), wv, gv, tol, out);
            }
        }
        (Value::Number(w), Value::Number(g)) if w.is_f64() || g.is_f64() => {
            let (a, b) = (w.as_f64().unwrap(), g.as_f64().unwrap());
            if (a - b).abs() > tol {
                out.push(format!(
                    "{path}: {a} in golden, {b} now (differs by {:.2e} > {tol})",
                    (a - b).abs()
                ));
            }
        }
        _ if want != got => out.push(format!("{path}: {want} in golden, {got} now")),
        _ => {}
    }
}

/// Sentence records keyed by (article, index).
fn records_by_key(sentences: &[Value]) -> BTreeMap<(String, usize), &Value> {
    let mut m = BTreeMap::new();
    for r in sentences {
        let key = (s(r, "article").to_string(), u(r, "index"));
        assert!(m.insert(key.clone(), r).is_none(), "record {key:?} twice");
    }
    m
}

/// Asserts that two lists of sentence records hold the same sentences (all fields equal,
/// `loaded` within FLOAT_TOL and `loaded_label` equal unless `loaded` is that close to the
/// threshold).
fn assert_same_records(want: &[Value], got: &[Value], threshold: f64, what: &str) {
    let (w, g) = (records_by_key(want), records_by_key(got));
    assert_eq!(
        w.keys().collect::<Vec<_>>(),
        g.keys().collect::<Vec<_>>(),
        "{what}: not the same (article, index) set"
    );
    for (key, wr) in &w {
        let gr = g[key];
        for field in ["source", "start", "end", "text", "tokens", "truncated"] {
            assert_eq!(
                wr[field], gr[field],
                "{what}: {key:?}.{field} differs\n  {wr}\n  {gr}"
            );
        }
        let (a, b) = (f(wr, "loaded"), f(gr, "loaded"));
        assert!(
            (a - b).abs() <= FLOAT_TOL,
            "{what}: {key:?}.loaded {a} vs {b} (tolerance {FLOAT_TOL})"
        );
        if (a - threshold).abs() > FLOAT_TOL {
            assert_eq!(
                wr["loaded_label"], gr["loaded_label"],
                "{what}: {key:?}.loaded_label differs"
            );
        }
    }
}

/// `slant score seeds --format json`, run once and shared.
fn seeds_json() -> &'static (Run, Value) {
    static RUN: OnceLock<(Run, Value)> = OnceLock::new();
    RUN.get_or_init(|| {
        let run = slant(&["score", "seeds", "--format", "json"]);
        run.expect_code(0);
        let v = run.json();
        (run, v)
    })
}

fn seeds_sentences() -> &'static Vec<Value> {
    arr(&seeds_json().1, "sentences")
}

fn seeds_threshold() -> f64 {
    f(&seeds_json().1["manifest"], "loaded_threshold")
}

/// `slant split --format jsonl` of a file: (start, end, text) per sentence.
fn split_spans(path: &str) -> Vec<(usize, usize, String)> {
    let run = slant(&["split", "--format", "jsonl", path]);
    run.expect_code(0);
    run.stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("split --format jsonl line is not JSON ({e}): {l}"));
            (u(&v, "start"), u(&v, "end"), s(&v, "text").to_string())
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// 1. split

#[test]
fn split_seed_matches_golden() {
    let run = slant(&["split", SEED0]);
    run.expect_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    // Checked by eye: 11 paragraphs, the 6th holding two sentences; "U.S." and "3.3" kept whole.
    assert_eq!(lines.len(), 12, "{}", run.show());
    assert!(lines[0].ends_with("created by the hasty U.S. withdrawal."));
    assert!(lines[6].starts_with("Some 80 percent of Afghanistan’s public spending"));
    assert!(lines[9].contains("a disastrous U.S. and NATO withdrawal"));
    if let Some(want) = golden("split_000.txt", &run.stdout) {
        assert!(
            want == run.stdout,
            "split of {SEED0} differs from tests/golden/split_000.txt at {}\n\
             (if intended, rerun with SLANT_UPDATE_GOLDEN=1)",
            first_diff(&want, &run.stdout)
        );
    }
}

#[test]
fn split_jsonl_spans_slice_the_file() {
    let bytes = std::fs::read(root().join(SEED0)).unwrap();
    let spans = split_spans(SEED0);
    let text_run = slant(&["split", SEED0]);
    let lines: Vec<&str> = text_run.stdout.lines().collect();
    assert_eq!(spans.len(), 12);
    assert_eq!(
        spans.len(),
        lines.len(),
        "jsonl and text give different counts"
    );
    let mut prev_end = 0;
    for (i, (start, end, text)) in spans.iter().enumerate() {
        let what = format!("sentence {i}");
        assert!(*start >= prev_end, "{what}: overlaps the previous one");
        assert_eq!(
            &collapse(slice(&bytes, *start, *end, &what)),
            text,
            "{what}"
        );
        assert_eq!(
            text, lines[i],
            "{what}: jsonl text differs from text output"
        );
        assert_eq!(text.trim(), text, "{what}: untrimmed");
        prev_end = *end;
    }
    assert_eq!(spans[0].0, 0);
    assert_eq!(spans[0].1, 223);
    assert_eq!(
        spans[1].0, 225,
        "the blank line between paragraphs is not in a sentence"
    );
}

#[test]
fn split_reads_stdin() {
    let bytes = std::fs::read(root().join(SEED0)).unwrap();
    let from_file = slant(&["split", SEED0]);
    from_file.expect_code(0);
    let dash = slant_with_stdin(&["split", "-"], Some(&bytes));
    dash.expect_code(0);
    assert_eq!(
        dash.stdout, from_file.stdout,
        "`split -` differs from `split FILE`"
    );
    let implicit = slant_with_stdin(&["split"], Some(&bytes));
    implicit.expect_code(0);
    assert_eq!(
        implicit.stdout, from_file.stdout,
        "`split` (stdin by default) differs"
    );
    let jsonl = slant_with_stdin(&["split", "--format", "jsonl", "-"], Some(&bytes));
    jsonl.expect_code(0);
    let from_stdin: Vec<Value> = jsonl
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let spans = split_spans(SEED0);
    assert_eq!(from_stdin.len(), spans.len());
    for (v, (start, end, text)) in from_stdin.iter().zip(&spans) {
        assert_eq!(
            (u(v, "start"), u(v, "end"), s(v, "text")),
            (*start, *end, text.as_str())
        );
    }
    // A short text with abbreviations and a quote, from the help.
    let small = slant_with_stdin(
        &["split"],
        Some("Mr. Smith went to Washington. He said \"no.\"\n".as_bytes()),
    );
    small.expect_code(0);
    assert_eq!(
        small.stdout,
        "Mr. Smith went to Washington.\nHe said \"no.\"\n"
    );
}

// ------------------------------------------------------------------------------------------
// 2. score seeds --format json: internal consistency

#[test]
fn score_seeds_json_is_consistent() {
    need_encoder!();
    let (run, v) = seeds_json();
    assert_eq!(run.code, 0);
    assert_eq!(arr(v, "errors").len(), 0, "errors: {}", v["errors"]);
    // docs/output.md: every JSON document carries the schema version.
    assert_eq!(v["schema_version"], 2, "score JSON lacks schema_version 2");

    let m = &v["manifest"];
    assert_eq!(s(m, "encoder_sha256"), ENCODER_SHA256);
    assert_eq!(s(m, "encoder"), "all-MiniLM-L6-v2");
    assert_eq!(
        s(m, "loaded_head_sha256"),
        sha256_hex(&root().join("models/loaded.safetensors")),
        "manifest.loaded_head_sha256 is not the sha256 of models/loaded.safetensors"
    );
    assert_eq!(arr(m, "inputs"), &vec![Value::from("seeds")]);
    assert_eq!(u(m, "articles"), 5);
    assert_eq!(u(m, "record_errors"), 0);
    assert_eq!(u(m, "truncated_sentences"), 0, "seed sentences are short");
    assert!(!s(m, "slant_version").is_empty());
    let threshold = f(m, "loaded_threshold");
    assert!(threshold > 0.0 && threshold < 1.0, "threshold {threshold}");

    let sentences = arr(v, "sentences");
    assert_eq!(u(m, "sentences"), sentences.len());

    let sources = arr(v, "sources");
    let names: Vec<&str> = sources.iter().map(|p| s(p, "source")).collect();
    assert_eq!(names, SEEDS, "sources are the 5 seeds sorted by name");

    // Records: sorted by (article, index), indices 0.. per article, spans slice the files.
    let mut files = BTreeMap::new();
    let mut next_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut prev: Option<(String, usize)> = None;
    for r in sentences {
        let article = s(r, "article").to_string();
        let what = format!("{article}[{}]", u(r, "index"));
        assert_eq!(
            s(r, "source"),
            article,
            "{what}: seed source = file stem = id"
        );
        let want_index = next_index.entry(article.clone()).or_insert(0);
        assert_eq!(
            u(r, "index"),
            *want_index,
            "{what}: indices are 0, 1, … per article"
        );
        *want_index += 1;
        let key = (article.clone(), u(r, "index"));
        if let Some(p) = &prev {
            assert!(*p < key, "{what}: records not sorted by (article, index)");
        }
        prev = Some(key);
        let bytes = files
            .entry(article.clone())
            .or_insert_with(|| seed_bytes(&article));
        let (start, end) = (u(r, "start"), u(r, "end"));
        assert!(start < end, "{what}: start {start} >= end {end}");
        assert_eq!(
            s(r, "text"),
            collapse(slice(bytes, start, end, &what)),
            "{what}"
        );
        let loaded = f(r, "loaded");
        assert!((0.0..=1.0).contains(&loaded), "{what}: loaded {loaded}");
        // Loaded spans: inside the sentence, in order, slicing the article's bytes.
        let mut after = start;
        for sp in arr(r, "loaded_spans") {
            let (a, b) = (u(sp, "start"), u(sp, "end"));
            assert!(
                after <= a && a < b && b <= end,
                "{what}: span {a}..{b} not in order inside the sentence"
            );
            assert_eq!(
                s(sp, "text"),
                slice(bytes, a, b, &what),
                "{what}: span text"
            );
            let sc = f(sp, "score");
            assert!(sc > 0.0 && sc <= 1.0, "{what}: span score {sc}");
            after = b;
        }
        assert_eq!(
            r["loaded_label"].as_bool().unwrap(),
            loaded >= threshold,
            "{what}: loaded_label is not loaded >= threshold ({threshold})"
        );
        assert!(
            u(r, "tokens") >= 3,
            "{what}: tokens include [CLS] and [SEP]"
        );
        assert_eq!(r["truncated"], Value::Bool(false), "{what}");
    }
    assert_eq!(next_index.keys().collect::<Vec<_>>(), SEEDS);
    assert_eq!(next_index["000_0ac7ef0ff899d3ba"], 12);

    // Per-source sums agree with the records.
    for p in sources {
        let name = s(p, "source");
        let recs: Vec<&Value> = sentences
            .iter()
            .filter(|r| s(r, "source") == name)
            .collect();
        let n = recs.len();
        let k = recs.iter().filter(|r| r["loaded_label"] == true).count();
        let mean = recs.iter().map(|r| f(r, "loaded")).sum::<f64>() / n as f64;
        assert_eq!(u(p, "articles"), 1, "{name}");
        assert_eq!(u(p, "sentences"), n, "{name}");
        assert_eq!(u(p, "loaded_sentences"), k, "{name}");
        assert!(
            (f(p, "loaded_share") - k as f64 / n as f64).abs() < 1e-6,
            "{name}"
        );
        assert!((f(p, "mean_loaded") - mean).abs() < 1e-5, "{name}");
        assert_eq!(s(p, "ci_method"), "wilson_sentences", "{name}: one article");
        assert_eq!(u(p, "truncated_sentences"), 0);
        for (ci, point) in [
            ("loaded_share_ci", "loaded_share"),
            ("mean_loaded_ci", "mean_loaded"),
        ] {
            let lo = p[ci][0].as_f64().unwrap();
            let hi = p[ci][1].as_f64().unwrap();
            let x = f(p, point);
            assert!(
                0.0 <= lo && lo <= x && x <= hi && hi <= 1.0,
                "{name}: {ci} [{lo}, {hi}] around {x}"
            );
        }
    }
    let total: usize = sources.iter().map(|p| u(p, "sentences")).sum();
    assert_eq!(total, sentences.len());

    // The sentences are exactly those of `slant split`.
    for id in SEEDS {
        let spans = split_spans(&format!("seeds/{id}.txt"));
        let got: Vec<(usize, usize, String)> = sentences
            .iter()
            .filter(|r| s(r, "article") == id)
            .map(|r| (u(r, "start"), u(r, "end"), s(r, "text").to_string()))
            .collect();
        assert_eq!(got, spans, "{id}: score's sentences differ from split's");
    }
}

// ------------------------------------------------------------------------------------------
// 3. golden output

#[test]
fn score_seeds_json_matches_golden() {
    need_encoder!();
    let mut got = seeds_json().1.clone();
    got["manifest"]
        .as_object_mut()
        .expect("manifest")
        .remove("git_commit")
        .expect("manifest.git_commit");
    let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
    let Some(want) = golden("score_seeds.json", &text) else {
        return;
    };
    let want: Value = serde_json::from_str(&want).expect("tests/golden/score_seeds.json is JSON");
    let mut diffs = Vec::new();
    diff_json("$", &want, &got, FLOAT_TOL, &mut diffs);
    assert!(
        diffs.is_empty(),
        "`slant score seeds --format json` differs from tests/golden/score_seeds.json in {} \
         place(s) (floats within {FLOAT_TOL}; if the change is intended, rerun with \
         SLANT_UPDATE_GOLDEN=1):\n  {}{}",
        diffs.len(),
        diffs
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  "),
        if diffs.len() > 40 { "\n  …" } else { "" }
    );
}

// ------------------------------------------------------------------------------------------
// 4. determinism

#[test]
fn thread_count_does_not_change_output() {
    need_encoder!();
    let one = slant(&["--threads", "1", "score", "seeds", "--format", "json"]);
    one.expect_code(0);
    let two = slant(&["score", "seeds", "--format", "json", "--threads", "2"]);
    two.expect_code(0);
    assert!(
        one.stdout == two.stdout,
        "--threads 1 and --threads 2 differ at {}",
        first_diff(&one.stdout, &two.stdout)
    );
    let default = &seeds_json().0;
    assert!(
        one.stdout == default.stdout,
        "--threads 1 and the default thread count differ at {}",
        first_diff(&one.stdout, &default.stdout)
    );
}

#[test]
fn int8_precision_scores_the_seeds_and_is_thread_independent() {
    need_encoder!();
    let one = slant(&[
        "--threads",
        "1",
        "score",
        "seeds",
        "--format",
        "json",
        "--precision",
        "int8",
    ]);
    one.expect_code(0);
    let two = slant(&[
        "--threads",
        "2",
        "score",
        "seeds",
        "--format",
        "json",
        "--precision",
        "int8",
    ]);
    two.expect_code(0);
    assert!(
        one.stdout == two.stdout,
        "int8: --threads 1 and 2 differ at {}",
        first_diff(&one.stdout, &two.stdout)
    );
    let v = one.json();
    assert_eq!(v["manifest"]["precision"], "int8");
    let fp32 = &seeds_json().1;
    assert!(fp32["manifest"].get("precision").is_none());
    // Same sentences; loaded probabilities close to fp32's but not all equal.
    let (a, b) = (
        v["sentences"].as_array().unwrap(),
        fp32["sentences"].as_array().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    let diffs: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x["loaded"].as_f64().unwrap() - y["loaded"].as_f64().unwrap()).abs())
        .collect();
    let worst = diffs.iter().cloned().fold(0.0, f64::max);
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    assert!(
        worst < 0.15 && mean < 0.03,
        "int8 vs fp32 loaded: max {worst}, mean {mean}"
    );
    assert!(worst > 0.0, "int8 should not reproduce fp32 exactly");
}

#[test]
fn int8_precision_with_the_candle_engine_is_refused() {
    need_encoder!();
    let run = slant(&[
        "score",
        "seeds",
        "--engine",
        "candle",
        "--precision",
        "int8",
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("fast engine"), "{}", run.stderr);
}

/// The committed loaded head's header metadata.
fn head_meta(path: &Path) -> serde_json::Map<String, Value> {
    let b = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let h: Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    h["__metadata__"].as_object().cloned().unwrap_or_default()
}

#[test]
fn sentence_head_reading_span_evidence_refuses_another_span_head() {
    need_encoder!();
    let loaded = root().join("models/loaded.safetensors");
    let spans = root().join("models/loaded_spans.safetensors");
    let meta = head_meta(&loaded);
    if meta.get("features").and_then(Value::as_str) != Some("mean+span_evidence") {
        eprintln!("skipping: the committed loaded head reads no span evidence");
        return;
    }
    // The header names the committed span head by its sha256.
    let sha = format!("{:x}", Sha256::digest(std::fs::read(&spans).unwrap()));
    assert_eq!(meta["span_evidence_sha256"], Value::String(sha.clone()));
    // Another span head (same tensors, one more header key: another sha256) is refused with a
    // message naming both checksums, and nothing is written to stdout.
    let b = std::fs::read(&spans).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let mut h: Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    h["__metadata__"]["note"] = Value::String("a copy".into());
    let mut hs = serde_json::to_vec(&h).unwrap();
    while !hs.len().is_multiple_of(8) {
        hs.push(b' ');
    }
    let mut other = (hs.len() as u64).to_le_bytes().to_vec();
    other.extend(&hs);
    other.extend(&b[8 + n..]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("other_spans.safetensors");
    std::fs::write(&p, &other).unwrap();
    let run = slant(&[
        "score",
        SEED0,
        "--format",
        "json",
        "--spans-head",
        p.to_str().unwrap(),
    ]);
    assert_ne!(run.code, 0, "{}", run.show());
    assert!(
        run.stderr.contains(&sha) && run.stderr.contains("token evidence of the span head"),
        "{}",
        run.show()
    );
    assert!(run.stdout.is_empty(), "{}", run.show());
}

#[test]
fn token_heads_can_be_switched_off_without_changing_the_sentence_scores() {
    need_encoder!();
    let run = slant(&[
        "score",
        "seeds",
        "--format",
        "json",
        "--no-spans",
        "--no-attribution",
    ]);
    run.expect_code(0);
    let v = run.json();
    let off = arr(&v, "sentences");
    let on = seeds_sentences();
    assert_eq!(off.len(), on.len());
    assert!(
        on.iter().any(|r| !arr(r, "attributions").is_empty())
            && on.iter().any(|r| !arr(r, "loaded_spans").is_empty()),
        "the default run should find attributions and loaded spans on the seeds"
    );
    for (a, b) in off.iter().zip(on) {
        assert!(arr(a, "attributions").is_empty(), "{a}");
        assert!(a["unattributed"].is_null(), "{a}");
        assert!(arr(a, "loaded_spans").is_empty(), "{a}");
        // The same single encoder pass: the sentence head's score does not depend on the taggers.
        assert_eq!(a["loaded"], b["loaded"]);
        assert_eq!(a["start"], b["start"]);
    }
    for p in arr(&v, "sources") {
        assert!(p.get("attribution").is_none_or(Value::is_null), "{p}");
        assert!(p
            .get("loaded_terms")
            .is_none_or(|t| t.as_array().is_some_and(Vec::is_empty)));
    }
}

#[test]
fn batch_size_does_not_change_records() {
    need_encoder!();
    let run = slant(&["score", "seeds", "--format", "json", "--batch-size", "1"]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(u(&v["manifest"], "batch_size"), 1);
    assert_ne!(
        u(&seeds_json().1["manifest"], "batch_size"),
        1,
        "the default batch size should batch"
    );
    assert_same_records(
        seeds_sentences(),
        arr(&v, "sentences"),
        seeds_threshold(),
        "--batch-size 1 vs default",
    );
    for (a, b) in arr(&v, "sources")
        .iter()
        .zip(arr(&seeds_json().1, "sources"))
    {
        assert_eq!(a["source"], b["source"]);
        assert_eq!(a["sentences"], b["sentences"]);
        assert!((f(a, "mean_loaded") - f(b, "mean_loaded")).abs() <= FLOAT_TOL);
    }
}

// ------------------------------------------------------------------------------------------
// 5. formats

#[test]
fn jsonl_out_file_has_one_record_per_sentence() {
    need_encoder!();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sentences.jsonl");
    let run = slant(&[
        "score",
        "seeds",
        "--format",
        "jsonl",
        "--out",
        out.to_str().unwrap(),
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout, "", "with --out nothing goes to stdout");
    let content = std::fs::read_to_string(&out).unwrap();
    assert!(content.ends_with('\n'));
    // docs/output.md: sentence lines carry the CSV columns plus `record`; each article's
    // sentences are followed by its article line; the last line is the manifest.
    let mut keys: Vec<&str> = CSV_HEADER.split(',').collect();
    keys.push("record");
    let mut recs = Vec::new();
    let mut kinds = Vec::new();
    for (i, line) in content.lines().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {line}", i + 1));
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("line {} is not an object", i + 1));
        let kind = s(&v, "record").to_string();
        if kind == "sentence" {
            let mut got: Vec<&str> = obj.keys().map(|k| k.as_str()).collect();
            let mut want = keys.clone();
            got.sort();
            want.sort();
            assert_eq!(got, want, "line {}: fields", i + 1);
            recs.push(v.clone());
        }
        kinds.push(kind);
    }
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("manifest"),
        "last line"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "article").count(),
        SEEDS.len(),
        "one article line per article"
    );
    assert_eq!(kinds.iter().filter(|k| *k == "manifest").count(), 1);
    assert_eq!(recs.len(), seeds_sentences().len(), "one line per sentence");
    assert_same_records(seeds_sentences(), &recs, seeds_threshold(), "jsonl vs json");
}

#[test]
fn csv_has_header_and_one_row_per_sentence() {
    need_encoder!();
    let run = slant(&["score", "seeds", "--format", "csv"]);
    run.expect_code(0);
    assert_eq!(run.stdout.lines().next(), Some(CSV_HEADER), "CSV header");
    let mut rd = csv::Reader::from_reader(run.stdout.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    let mut recs = Vec::new();
    for (i, row) in rd.records().enumerate() {
        let row = row.unwrap_or_else(|e| panic!("CSV row {}: {e}", i + 2));
        assert_eq!(row.len(), header.len(), "row {}", i + 2);
        let get = |name: &str| &row[header.iter().position(|h| h == name).unwrap()];
        let num = |name: &str| -> usize { get(name).parse().unwrap() };
        let boolean = |name: &str| -> bool { get(name).parse().unwrap() };
        recs.push(serde_json::json!({
            "article": get("article"),
            "source": get("source"),
            "index": num("index"),
            "start": num("start"),
            "end": num("end"),
            "text": get("text"),
            "loaded": get("loaded").parse::<f64>().unwrap(),
            "loaded_label": boolean("loaded_label"),
            "tokens": num("tokens"),
            "truncated": boolean("truncated"),
        }));
    }
    assert_eq!(recs.len(), seeds_sentences().len(), "one row per sentence");
    assert_same_records(seeds_sentences(), &recs, seeds_threshold(), "csv vs json");
}

#[test]
fn table_lists_every_source() {
    need_encoder!();
    let run = slant(&["score", "seeds"]);
    run.expect_code(0);
    let out = &run.stdout;
    assert!(out.contains("loaded share"), "{}", run.show());
    let header = out.lines().next().unwrap();
    assert!(header.starts_with("source"), "{header}");
    for (i, id) in SEEDS.iter().enumerate() {
        // Row i+1 of the table is source i, with its article and sentence counts.
        let row: Vec<&str> = out.lines().nth(i + 1).unwrap().split_whitespace().collect();
        let p = &arr(&seeds_json().1, "sources")[i];
        assert_eq!(row[0], *id, "{}", run.show());
        assert_eq!(row[1], "1");
        assert_eq!(row[2], u(p, "sentences").to_string());
        assert_eq!(row[3], format!("{:.3}", f(p, "loaded_share")));
        assert!(
            out.contains(&format!("most loaded sentences of {id}:")),
            "{id}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// 6. bad input loses nothing

#[test]
fn broken_files_are_reported_and_good_ones_scored() {
    need_encoder!();
    let dir = tempfile::tempdir().unwrap();
    for id in SEEDS {
        std::fs::write(dir.path().join(format!("{id}.txt")), seed_bytes(id)).unwrap();
    }
    std::fs::write(
        dir.path().join("bad_utf8.txt"),
        b"Valid start. \xff\xfe then broken bytes.\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.txt"), b"").unwrap();
    let run = slant(&["score", dir.path().to_str().unwrap(), "--format", "json"]);
    run.expect_code(1);
    for name in ["bad_utf8.txt", "empty.txt"] {
        assert!(
            run.stderr.contains(name),
            "stderr does not name {name}: {}",
            run.show()
        );
    }
    assert!(
        run.stderr.contains("invalid UTF-8 at byte offset 13"),
        "{}",
        run.show()
    );
    assert!(
        run.stderr.contains("text is empty or whitespace-only"),
        "{}",
        run.show()
    );

    let v = run.json();
    let errors = arr(&v, "errors");
    assert_eq!(errors.len(), 2, "errors: {}", v["errors"]);
    let find = |name: &str| {
        errors
            .iter()
            .find(|e| s(e, "record").ends_with(name))
            .unwrap_or_else(|| panic!("no error names {name}: {}", v["errors"]))
    };
    assert!(s(find("bad_utf8.txt"), "message").contains("invalid UTF-8 at byte offset 13"));
    assert_eq!(
        s(find("empty.txt"), "message"),
        "text is empty or whitespace-only"
    );
    assert_eq!(u(&v["manifest"], "record_errors"), 2);
    assert_eq!(u(&v["manifest"], "articles"), 5);

    let names: Vec<&str> = arr(&v, "sources").iter().map(|p| s(p, "source")).collect();
    assert_eq!(names, SEEDS, "all 5 good articles are scored");
    assert_same_records(
        seeds_sentences(),
        arr(&v, "sentences"),
        seeds_threshold(),
        "seeds with two broken files vs seeds",
    );
}

#[test]
fn malformed_jsonl_line_is_skipped_not_fatal() {
    need_encoder!();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corpus.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"id": "good-1", "source": "Alpha", "text": "The senator praised the bill. Critics called it a reckless giveaway."}"#,
            "\n",
            r#"{"id": "broken", "source": "Alpha", "text": "no closing quote}"#,
            "\n",
            r#"{"id": "good-2", "source": "Beta", "text": "The council met on Tuesday. It approved the budget."}"#,
            "\n",
        ),
    )
    .unwrap();
    let run = slant(&["score", path.to_str().unwrap(), "--format", "json"]);
    run.expect_code(1);
    assert!(run.stderr.contains("corpus.jsonl:2"), "{}", run.show());
    let v = run.json();
    let errors = arr(&v, "errors");
    assert_eq!(errors.len(), 1, "errors: {}", v["errors"]);
    assert!(
        s(&errors[0], "record").ends_with("corpus.jsonl:2"),
        "{}",
        errors[0]
    );
    assert!(
        s(&errors[0], "message").starts_with("malformed JSON"),
        "{}",
        errors[0]
    );
    let got: Vec<(&str, &str, &str)> = arr(&v, "sentences")
        .iter()
        .map(|r| (s(r, "article"), s(r, "source"), s(r, "text")))
        .collect();
    assert_eq!(
        got,
        vec![
            ("good-1", "Alpha", "The senator praised the bill."),
            ("good-1", "Alpha", "Critics called it a reckless giveaway."),
            ("good-2", "Beta", "The council met on Tuesday."),
            ("good-2", "Beta", "It approved the budget."),
        ]
    );
    assert_eq!(u(&v["manifest"], "articles"), 2);
}

#[test]
fn missing_input_is_an_error() {
    need_encoder!();
    let run = slant(&["score", "no/such/corpus.jsonl", "--format", "json"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("no/such/corpus.jsonl") && run.stderr.contains("cannot open input"),
        "{}",
        run.show()
    );
    let v = run.json();
    let errors = arr(&v, "errors");
    assert_eq!(errors.len(), 1);
    assert_eq!(s(&errors[0], "record"), "no/such/corpus.jsonl");
    assert!(arr(&v, "sources").is_empty());
    assert!(arr(&v, "sentences").is_empty());
}

// ------------------------------------------------------------------------------------------
// 7. compare

#[test]
fn compare_two_seeds() {
    need_encoder!();
    let (a, b) = (SEEDS[0], SEEDS[3]);
    let run = slant(&["compare", "seeds", "--a", a, "--b", b, "--format", "json"]);
    run.expect_code(0);
    let v = run.json();
    for key in ["a", "b", "metrics"] {
        assert!(v.get(key).is_some(), "compare JSON lacks `{key}`: {v}");
    }
    // docs/output.md: every JSON document carries the schema version.
    assert_eq!(
        v["schema_version"], 2,
        "compare JSON lacks schema_version 2"
    );
    // The sources may be given as names or as objects naming them.
    let name_of = |x: &Value| {
        x.as_str()
            .map(String::from)
            .unwrap_or_else(|| s(x, "source").into())
    };
    assert_eq!(name_of(&v["a"]), a);
    assert_eq!(name_of(&v["b"]), b);
    // `metrics`: a list of {name, a, b, diff, …}, or an object keyed by name.
    let metrics: Vec<(String, &Value)> = match &v["metrics"] {
        Value::Array(list) => list.iter().map(|m| (s(m, "name").to_string(), m)).collect(),
        Value::Object(map) => map.iter().map(|(k, m)| (k.clone(), m)).collect(),
        other => panic!("`metrics` is neither a list nor an object: {other}"),
    };
    let names: Vec<&str> = metrics.iter().map(|(n, _)| n.as_str()).collect();
    for want in ["loaded_share", "mean_loaded"] {
        assert!(names.contains(&want), "no metric {want} in {names:?}");
    }
    let profiles = arr(&seeds_json().1, "sources");
    let profile = |name: &str| profiles.iter().find(|p| s(p, "source") == name).unwrap();
    for (name, m) in &metrics {
        if name == "frames_jsd" {
            // A divergence, not a difference: a and b do not apply (tests/profiles.rs).
            assert!(m["a"].is_null() && m["b"].is_null(), "{m}");
            continue;
        }
        let (x, y, d) = (f(m, "a"), f(m, "b"), f(m, "diff"));
        assert!(
            (d - (y - x)).abs() < 1e-6,
            "{name}: diff {d} != b - a = {}",
            y - x
        );
        if name == "loaded_share" || name == "mean_loaded" {
            // The same numbers as the per-source profiles of `score`.
            assert!((x - f(profile(a), name)).abs() < 1e-6, "{name}: a = {x}");
            assert!((y - f(profile(b), name)).abs() < 1e-6, "{name}: b = {y}");
        }
    }
}

#[test]
fn compare_unknown_source_lists_the_sources() {
    need_encoder!();
    let run = slant(&["compare", "seeds", "--a", SEEDS[0], "--b", "no-such-outlet"]);
    run.expect_code(2);
    assert!(run.stderr.contains("no-such-outlet"), "{}", run.show());
    assert!(run.stderr.contains("sources found"), "{}", run.show());
    for id in SEEDS {
        assert!(
            run.stderr.contains(id),
            "the message does not list {id}: {}",
            run.show()
        );
    }
    assert_eq!(run.stdout, "");
}

// ------------------------------------------------------------------------------------------
// 8. usage errors

#[test]
fn no_subcommand_is_a_usage_error() {
    let run = slant(&[]);
    run.expect_code(2);
    assert!(run.stderr.contains("Usage"), "{}", run.show());
}

#[test]
fn score_without_inputs_is_a_usage_error() {
    let run = slant(&["score"]);
    run.expect_code(2);
    assert!(run.stderr.contains("<INPUT>"), "{}", run.show());
    let run = slant(&["score", "seeds", "--format", "yaml"]);
    run.expect_code(2);
}

#[test]
fn help_mentions_every_subcommand() {
    let run = slant(&["--help"]);
    run.expect_code(0);
    for cmd in ["score", "compare", "split", "train", "eval"] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{cmd} "))),
            "--help does not list `{cmd}`:\n{}",
            run.stdout
        );
    }
    for (cmd, sub) in [("train", "loaded"), ("eval", "loaded")] {
        let run = slant(&[cmd, "--help"]);
        run.expect_code(0);
        assert!(run.stdout.contains(sub), "`{cmd} --help` lacks `{sub}`");
    }
}

// ------------------------------------------------------------------------------------------
// 9. evaluation on labelled data

#[test]
fn eval_loaded_on_babe() {
    need_encoder!();
    let Some(data) = data_dir() else {
        return;
    };
    let run = slant(&[
        "eval",
        "loaded",
        "--dataset",
        "babe",
        "--format",
        "json",
        "--data",
        data.to_str().unwrap(),
    ]);
    run.expect_code(0);
    let v = run.json();
    let n = u(&v, "n");
    assert_eq!(n, 3673, "BABE SG2 without 'No agreement'");
    assert_eq!(u(&v, "tp") + u(&v, "fp") + u(&v, "fn") + u(&v, "tn"), n);
    let f1 = f(&v, "macro_f1");
    assert!(0.5 < f1 && f1 < 1.0, "macro_f1 {f1}");
    assert_eq!(s(&v, "dataset"), "babe");
    let m = &v["manifest"];
    assert_eq!(s(m, "encoder_sha256"), ENCODER_SHA256);
    assert_eq!(
        s(&arr(m, "data_files")[0], "path"),
        "babe/data/final_labels_SG2.csv"
    );
    assert_eq!(
        s(m, "head_sha256"),
        sha256_hex(&root().join("models/loaded.safetensors"))
    );
}

/// Actor labelling on the seeds: the Taliban is the main actor, and the outlets name it
/// differently (seed 000: "the terrorist organisation"; seed 002: "the organization").
#[test]
fn seeds_actor_labels_show_how_outlets_name_the_taliban() {
    need_encoder!();
    let (_, v) = seeds_json();
    let actors = arr(v, "actors");
    assert_eq!(actors[0]["actor"], "taliban", "{}", v["actors"]);
    assert_eq!(actors[0]["articles"], 5);
    let labels_of = |source: &str| -> Vec<String> {
        actors[0]["by_source"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["source"] == source)
            .unwrap_or_else(|| panic!("no {source} in {}", actors[0]))["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["label"].as_str().unwrap().to_string())
            .collect()
    };
    let l000 = labels_of("000_0ac7ef0ff899d3ba");
    assert!(
        l000.contains(&"the terrorist organisation".to_string()),
        "{l000:?}"
    );
    assert!(
        l000.contains(&"taliban-led afghanistan government".to_string()),
        "{l000:?}"
    );
    let l002 = labels_of("002_7f085a4d41f1373a");
    assert!(l002.contains(&"the organization".to_string()), "{l002:?}");
    assert!(
        !l002.contains(&"the terrorist organisation".to_string()),
        "{l002:?}"
    );
}

// ------------------------------------------------------------------------------------------
// Attributions (models/attribution.safetensors, trained on PolNeAR)

/// The attributions of the first sentence of article `art` that contains `needle`.
fn attributions_of<'a>(art: &str, needle: &str) -> (&'a Value, &'a Vec<Value>) {
    let rec = seeds_sentences()
        .iter()
        .find(|r| s(r, "article") == art && s(r, "text").contains(needle))
        .unwrap_or_else(|| panic!("no sentence of {art} contains {needle:?}"));
    (rec, arr(rec, "attributions"))
}

/// Spans point into the article by byte offsets and their `text` is that slice (whitespace
/// collapsed).
fn check_span(art: &str, span: &Value) -> String {
    let bytes = seed_bytes(art);
    let got = slice(&bytes, u(span, "start"), u(span, "end"), "attribution span");
    assert_eq!(
        collapse(got),
        s(span, "text"),
        "span text is the article slice"
    );
    s(span, "text").to_string()
}

#[test]
fn seed_000_akhund_claimed_and_france_24_reports() {
    need_encoder!();
    let (rec, atts) = attributions_of(SEEDS[0], "Akhund claimed");
    assert_eq!(rec["unattributed"], Value::Bool(false));
    let claim = atts
        .iter()
        .find(|a| s(a, "cue_lemma") == "claim")
        .unwrap_or_else(|| panic!("no `claim` cue in {atts:#?}"));
    assert_eq!(check_span(SEEDS[0], &claim["cue"]), "claimed");
    assert_eq!(check_span(SEEDS[0], &claim["source"]), "Akhund");
    assert_eq!(s(claim, "cue_stance"), "loaded");
    let content = check_span(SEEDS[0], &claim["content"]);
    assert!(
        content.starts_with("the Taliban did not want international endorsement"),
        "{content}"
    );
    let reports = atts
        .iter()
        .find(|a| s(a, "cue_lemma") == "report")
        .unwrap_or_else(|| panic!("no `report` cue in {atts:#?}"));
    assert_eq!(check_span(SEEDS[0], &reports["cue"]), "reports");
    assert_eq!(check_span(SEEDS[0], &reports["source"]), "France 24");
    assert_eq!(s(reports, "cue_stance"), "neutral");
}

#[test]
fn seed_002_according_to_nishank_motwani() {
    need_encoder!();
    let (_, atts) = attributions_of(SEEDS[2], "According to Nishank Motwani");
    let acc = atts
        .iter()
        .find(|a| s(a, "kind") == "according_to")
        .unwrap_or_else(|| panic!("no according_to attribution in {atts:#?}"));
    assert_eq!(s(acc, "cue_lemma"), "according to");
    assert_eq!(s(acc, "cue_stance"), "according_to");
    let source = check_span(SEEDS[2], &acc["source"]);
    assert!(source.starts_with("Nishank Motwani"), "{source}");
    assert_eq!(s(acc, "speaker"), "nishank motwani");
}

#[test]
fn every_record_has_attributions_and_an_unattributed_flag() {
    need_encoder!();
    let recs = seeds_sentences();
    let mut unattributed = 0;
    for r in recs {
        let atts = arr(r, "attributions");
        let un = r["unattributed"]
            .as_bool()
            .unwrap_or_else(|| panic!("unattributed is not a bool: {r}"));
        if un {
            unattributed += 1;
            assert!(
                atts.is_empty(),
                "an unattributed sentence has no attribution"
            );
        }
        for a in atts {
            check_span(s(r, "article"), &a["cue"]);
            assert!(["direct", "indirect", "mixed", "according_to"].contains(&s(a, "kind")));
        }
    }
    // The seeds mix reporting and assertion: both kinds of sentence occur.
    assert!(
        unattributed > 0 && unattributed < recs.len(),
        "{unattributed}"
    );
    // Profiles carry the attribution section.
    for p in arr(&seeds_json().1, "sources") {
        let a = &p["attribution"];
        assert!(f(a, "attribution_rate") > 0.0 || f(a, "unattributed_share") > 0.0);
        assert!(a["top_cues"].is_array() && a["speakers"].is_array());
    }
}

// ------------------------------------------------------------------------------------------
// The tuned loaded head

/// `slant score` gives each sentence the tuned head's probability as the library computes it
/// from the inputs training used (token states after the shared layers; for a blend, the
/// partner's mean-pooled + span-evidence features) with `--tuned`; the default is the frozen head.
#[test]
fn score_uses_the_tuned_head_as_trained() {
    need_encoder!();
    let tuned_path = root().join("models/loaded_tuned.safetensors");
    if !tuned_path.is_file() {
        eprintln!("skipping: models/loaded_tuned.safetensors not present");
        return;
    }
    let enc_dir = root().join("models/encoder/all-MiniLM-L6-v2");
    let enc = slant::encode::Encoder::load(&enc_dir, Default::default()).unwrap();
    let t = slant::heads::tuned::TunedLoaded::load(&tuned_path, &enc_dir).unwrap();
    let texts = [
        "The regime's brutal crackdown has terrorised ordinary Afghans.",
        "The ministry said the meeting would take place on Monday.",
        "Critics slammed the shameful deal as a betrayal of women.",
        "Talks resumed in Doha after a two-week pause.",
    ];
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let lines: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({"id": format!("a{i}"), "source": "x", "text": s}).to_string()
        })
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let got = |extra: &[&str]| -> Vec<f64> {
        let mut args = vec![
            "score",
            input.to_str().unwrap(),
            "--format",
            "jsonl",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        let run = slant(&args);
        run.expect_code(0);
        let recs: Vec<Value> = run
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["record"] == "sentence")
            .collect();
        assert_eq!(recs.len(), texts.len(), "one sentence per article");
        recs.iter().map(|r| f(r, "loaded")).collect()
    };
    let tuned = got(&["--tuned"]);
    let states = enc.states_after(&texts, t.first_layer, 8).unwrap();
    let refs: Vec<&[f32]> = states.iter().map(Vec::as_slice).collect();
    // The training forward (fastgrad) of the merged layers: what the head was trained and
    // calibrated with, computed apart from the scorer's inference kernels.
    let zt = t.top.logits(&refs, 8);
    let zm = t.blend.as_ref().map(|b| {
        let partner =
            slant::heads::MlpHead::load(&root().join("models").join(&b.partner_file)).unwrap();
        let kind = slant::heads::SentenceFeatures::of(&partner).unwrap();
        let span_path = root().join("models/loaded_spans.safetensors");
        let span = slant::heads::tagger::TaggerHead::load(&span_path).unwrap();
        let sha = sha256_hex(&span_path);
        let rows: Vec<slant::data::LabelledSentence> = texts
            .iter()
            .enumerate()
            .map(|(i, s)| slant::data::LabelledSentence {
                id: i.to_string(),
                text: s.to_string(),
                label: false,
                outlet: None,
                article: None,
                biased_words: Vec::new(),
            })
            .collect();
        let x = slant::eval::loaded::head_features(
            &enc,
            &rows,
            8,
            "test sentences",
            &kind,
            Some((&span, &sha, "models/loaded_spans.safetensors")),
        )
        .unwrap();
        slant::eval::loaded::logits(&partner, &x)
    });
    let want = t.combine(&zt, zm.as_deref()).unwrap();
    for (i, (g, w)) in tuned.iter().zip(&want).enumerate() {
        assert!(
            (g - *w as f64).abs() < 2e-4,
            "sentence {i}: score {g}, library {w}"
        );
    }
    // The frozen head alone gives other probabilities.
    let frozen = got(&[]);
    assert!(
        tuned.iter().zip(&frozen).any(|(a, b)| (a - b).abs() > 1e-3),
        "--tuned changed nothing: {tuned:?} vs {frozen:?}"
    );
}

/// A closed stdout (`| head`) ends every command quietly with exit 0: the read end of the pipe
/// is closed before the command writes anything, so its first write fails with EPIPE.
#[test]
fn a_closed_stdout_exits_quietly_with_0() {
    need_encoder!();
    let dir = tempfile::tempdir().unwrap();
    let scores = dir.path().join("seeds.jsonl");
    slant(&[
        "score",
        "seeds",
        "--format",
        "jsonl",
        "--out",
        scores.to_str().unwrap(),
        "-q",
    ]);
    let s = scores.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["score", "seeds", "--format", "table"],
        vec!["score", "seeds", "--format", "json"],
        vec!["score", "seeds", "--format", "jsonl"],
        vec!["score", "seeds", "--format", "csv"],
        vec!["profile", s],
        vec!["profile", s, "--format", "json"],
        vec!["profile", s, "--format", "html"],
        vec!["compare", s, "--a", SEEDS[0], "--b", SEEDS[3]],
        vec![
            "compare", s, "--a", SEEDS[0], "--b", SEEDS[3], "--format", "json",
        ],
        vec![
            "compare", s, "--a", SEEDS[0], "--b", SEEDS[3], "--format", "html",
        ],
        vec!["report", s],
        vec!["split", SEED0],
        vec!["split", SEED0, "--format", "jsonl"],
        vec!["--help"],
        vec!["score", "--help"],
    ];
    for args in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_slant"))
            .args(&args)
            .current_dir(root())
            .env_remove("SLANT_MODEL")
            .env_remove("RAYON_NUM_THREADS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start slant");
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "slant {}: {stderr}",
            args.join(" ")
        );
        assert!(
            !stderr.contains("error"),
            "slant {}: {stderr}",
            args.join(" ")
        );
    }
}
