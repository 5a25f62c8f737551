//! Wrong and damaged models are errors, on the real binary: a copy of the default encoder
//! overwritten in the middle, truncated, with a truncated tokenizer or config; a truncated
//! head; a head run with an encoder other than its own (an error unless
//! `--allow-other-encoder`). Each error names the file and what is wrong with it, and exits 2.

mod common;

use std::path::{Path, PathBuf};

use common::{p, root, slant};

/// A copy of the default encoder's folder in a fresh temporary folder named `name`.
fn encoder_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    let src = root().join("models/encoder/all-MiniLM-L6-v2");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    (tmp, dir)
}

/// Overwrite 4 KiB in the middle of `path` with zeros (the length stays).
fn overwrite_middle(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let n = b.len() / 2;
    b[n..n + 4096].fill(0);
    std::fs::write(path, b).unwrap();
}

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn fails_with(args: &[&str], needles: &[&str]) -> String {
    let r = slant(args);
    assert_eq!(
        r.code,
        2,
        "`slant {}` exited {}: {}",
        args.join(" "),
        r.code,
        r.stderr
    );
    assert!(r.stdout.is_empty(), "no scores are printed: {}", r.text());
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}: {}", r.stderr);
    }
    r.stderr
}

#[test]
fn an_encoder_overwritten_in_the_middle_is_refused_by_its_heads() {
    need_encoder!();
    let (_t, dir) = encoder_copy("my-encoder");
    overwrite_middle(&dir.join("model.safetensors"));
    let seed = "seeds/000_0ac7ef0ff899d3ba.txt";
    let err = fails_with(
        &["score", seed, "--model", p(&dir)],
        &[
            "was trained on encoder all-MiniLM-L6-v2",
            "is no encoder release slant knows",
            "--allow-other-encoder",
        ],
    );
    assert!(!err.contains("warning"), "{err}");
    // The override runs it, warning once per head.
    let r = slant(&["score", seed, "--model", p(&dir), "--allow-other-encoder"]).ok();
    assert!(r.stderr.matches("warning: ").count() >= 2, "{}", r.stderr);
    assert!(r.text().contains("loaded share"), "{}", r.text());
}

#[test]
fn damaged_weights_in_a_release_folder_name_the_release() {
    need_encoder!();
    let (_t, dir) = encoder_copy("all-MiniLM-L6-v2");
    overwrite_middle(&dir.join("model.safetensors"));
    fails_with(
        // Even with the override: the folder's name promises the release's weights.
        &[
            "score",
            "seeds",
            "--model",
            p(&dir),
            "--allow-other-encoder",
        ],
        &[
            "model.safetensors is damaged",
            "not that of the all-MiniLM-L6-v2 release",
            "models/fetch",
        ],
    );
}

#[test]
fn truncated_model_files_say_which_file_and_how() {
    need_encoder!();
    let seed = "seeds/000_0ac7ef0ff899d3ba.txt";
    for (file, len, needle) in [
        (
            "model.safetensors",
            50_000_000,
            "truncated: it has 50000000 bytes, but its tensors need",
        ),
        ("model.safetensors", 5, "fewer than the 8"),
        (
            "tokenizer.json",
            1000,
            "truncated: its 1000 bytes end inside the JSON",
        ),
        (
            "config.json",
            100,
            "truncated: its 100 bytes end inside the JSON",
        ),
    ] {
        let (_t, dir) = encoder_copy("my-encoder");
        truncate(&dir.join(file), len);
        fails_with(
            &["score", seed, "--model", p(&dir)],
            &[&format!("{file} is damaged"), needle],
        );
    }
}

#[test]
fn a_truncated_head_says_so() {
    need_encoder!();
    let tmp = tempfile::tempdir().unwrap();
    let head = tmp.path().join("loaded.safetensors");
    std::fs::copy(root().join("models/loaded.safetensors"), &head).unwrap();
    truncate(&head, 3000);
    fails_with(
        &["score", "seeds", "--head", p(&head)],
        &[
            "loaded.safetensors is damaged",
            "truncated: it has 3000 bytes",
        ],
    );
}
