//! The Spark example (`examples/spark/score_with_spark.py`) end to end: the five seed articles
//! as a JSONL corpus, scored by PySpark in local mode (`local[2]`, loopback only) with
//! `rdd.pipe` through the real `slant` binary in 3 partitions, merged with `slant merge` into
//! Parquet, must give the same comparison (byte for byte) and the same per-source profiles and
//! actors as one direct `slant score` run of the same corpus.
//!
//! Needs the encoder (`models/fetch`), `java` on PATH and pyspark in `.cache/pyenv`
//! (`bash scripts/install-test-deps.sh` installs both). Without one of them the test prints
//! `skipping: ...` and passes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const A: &str = "000_0ac7ef0ff899d3ba";
const B: &str = "003_4f504e27a0b360eb";
/// The Spark run (JVM start, 3 slant processes, merge) takes about 15 s here; this only guards
/// against a hung JVM.
const SPARK_TIMEOUT: Duration = Duration::from_secs(600);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn venv_python() -> PathBuf {
    root().join(".cache/pyenv/bin/python")
}

/// What is missing for this test, if anything.
fn missing() -> Option<String> {
    if !root()
        .join("models/encoder/all-MiniLM-L6-v2/model.safetensors")
        .is_file()
    {
        return Some("encoder not fetched (run models/fetch)".into());
    }
    let java = Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !java.is_ok_and(|s| s.success()) {
        return Some(
            "no `java` on PATH (bash scripts/install-test-deps.sh installs one as root)".into(),
        );
    }
    let py = Command::new(venv_python())
        .args(["-c", "import pyspark"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !py.is_ok_and(|s| s.success()) {
        return Some("no pyspark in .cache/pyenv (run bash scripts/install-test-deps.sh)".into());
    }
    None
}

fn show(what: &str, out: &Output) -> String {
    format!(
        "{what} exited {:?}\n--- stderr ---\n{}\n--- stdout ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

/// Runs `cmd` in the crate root with stdin closed, killing it after `timeout`.
fn run(mut cmd: Command, what: &str, timeout: Duration) -> Output {
    cmd.current_dir(root())
        .env_remove("SLANT_MODEL")
        .env_remove("RAYON_NUM_THREADS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Read both pipes on threads, so that a child filling one cannot block.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let ro = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let re = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for a child") {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let out = Output {
                status: std::process::ExitStatus::default(),
                stdout: ro.join().unwrap(),
                stderr: re.join().unwrap(),
            };
            panic!(
                "{}",
                show(&format!("{what} (killed after {timeout:?})"), &out)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: ro.join().unwrap(),
        stderr: re.join().unwrap(),
    }
}

fn slant(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slant"));
    cmd.args(args);
    let what = format!("`slant {}`", args.join(" "));
    let out = run(cmd, &what, Duration::from_secs(300));
    assert!(out.status.success(), "{}", show(&what, &out));
    out
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON value")
}

/// The seed articles as a JSONL corpus: id and source are the file stem, as `slant score seeds`
/// assigns them to .txt files given directly.
fn write_corpus(path: &Path) -> usize {
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(root().join("seeds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    seeds.sort();
    let mut jsonl = String::new();
    for p in &seeds {
        let stem = p.file_stem().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(p).unwrap();
        let rec = serde_json::json!({"id": stem, "source": stem, "text": text});
        jsonl.push_str(&rec.to_string());
        jsonl.push('\n');
    }
    std::fs::write(path, jsonl).unwrap();
    seeds.len()
}

#[test]
fn spark_pipe_and_merge_equal_a_direct_run() {
    if let Some(why) = missing() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus.jsonl");
    assert_eq!(write_corpus(&corpus), 5, "expected the 5 seed articles");
    let out_dir = tmp.path().join("out");
    let corpus_s = corpus.to_str().unwrap();
    let out_s = out_dir.to_str().unwrap();

    // The Spark run: 3 partitions of the 5 articles.
    let mut spark = Command::new(venv_python());
    spark
        .arg(root().join("examples/spark/score_with_spark.py"))
        .args([corpus_s, out_s, "--partitions", "3"])
        .args(["--slant", env!("CARGO_BIN_EXE_slant")]);
    let t = Instant::now();
    let out = run(spark, "the Spark example", SPARK_TIMEOUT);
    assert!(out.status.success(), "{}", show("the Spark example", &out));
    eprintln!("spark example ran in {:.1}s", t.elapsed().as_secs_f64());

    // Three shards, each one complete stream (its last line the manifest).
    let parts = out_dir.join("parts");
    let mut shards: Vec<PathBuf> = std::fs::read_dir(&parts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("part-"))
        })
        .collect();
    shards.sort();
    assert_eq!(shards.len(), 3, "want 3 part files in {}", parts.display());
    let mut articles = 0;
    for shard in &shards {
        let text = std::fs::read_to_string(shard).unwrap();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(
            last["record"],
            "manifest",
            "{} ends without a manifest",
            shard.display()
        );
        let n = last["articles"].as_u64().unwrap();
        assert!(n > 0, "{} holds no article", shard.display());
        articles += n;
    }
    assert_eq!(articles, 5);
    let merged = out_dir.join("scores.parquet");
    assert!(merged.is_file(), "no {}", merged.display());
    let merged_s = merged.to_str().unwrap();

    // The same corpus scored directly.
    let direct = tmp.path().join("direct.jsonl");
    let direct_s = direct.to_str().unwrap();
    slant(&[
        "score", corpus_s, "--format", "jsonl", "--out", direct_s, "--quiet",
    ]);

    // (a) The comparison: byte-identical.
    let cmp = |d: &str| {
        slant(&[
            "compare", d, "--a", A, "--b", B, "--format", "json", "--quiet",
        ])
    };
    let (cs, cd) = (cmp(merged_s), cmp(direct_s));
    assert!(!cs.stdout.is_empty());
    assert!(
        cs.stdout == cd.stdout,
        "compare of the Spark dataset differs from the direct run's:\n--- spark ---\n{}\n--- direct ---\n{}",
        String::from_utf8_lossy(&cs.stdout),
        String::from_utf8_lossy(&cd.stdout)
    );

    // (b) The profiles: equal sources and actors (the manifests differ in `inputs`).
    let prof = |d: &str| json(&slant(&["profile", d, "--format", "json", "--quiet"]));
    let (ps, pd) = (prof(merged_s), prof(direct_s));
    for key in ["sources", "actors"] {
        assert!(!ps[key].is_null(), "profile has no `{key}`: {ps}");
        assert_eq!(
            ps[key], pd[key],
            "profile `{key}` differs between Spark and direct runs"
        );
    }
    assert_eq!(ps["sources"].as_array().map(|a| a.len()), Some(5));
    assert_eq!(ps["manifest"]["articles"], 5);
    assert_eq!(ps["manifest"]["sentences"], pd["manifest"]["sentences"]);
}
