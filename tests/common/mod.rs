//! Helpers shared by the integration tests that run the real binary: run `slant` from the
//! repository root, check that the encoder is fetched (tests skip, saying so, without it).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub args: Vec<String>,
}

impl Run {
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code,
            0,
            "`slant {}` exited {}: {}",
            self.args.join(" "),
            self.code,
            self.stderr
        );
        self
    }
    pub fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("UTF-8 stdout")
    }
}

pub fn slant(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_slant"))
        .args(args)
        .current_dir(root())
        .env_remove("SLANT_MODEL")
        .env_remove("RAYON_NUM_THREADS")
        .stdin(Stdio::null())
        .output()
        .expect("cannot start slant");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn have_encoder() -> bool {
    let ok = root()
        .join("models/encoder/all-MiniLM-L6-v2/model.safetensors")
        .is_file();
    if !ok {
        eprintln!("skipping: encoder not fetched (run models/fetch)");
    }
    ok
}

#[macro_export]
macro_rules! need_encoder {
    () => {
        if !common::have_encoder() {
            return;
        }
    };
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
