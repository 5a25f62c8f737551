//! Records the git commit slant is built from (for run manifests). Outside a git checkout the
//! commit is "unknown"; a checkout with uncommitted changes gets a "-dirty" suffix.
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let value = if dirty && commit != "unknown" {
        format!("{commit}-dirty")
    } else {
        commit
    };
    println!("cargo:rustc-env=SLANT_GIT_COMMIT={value}");
    // Re-run when HEAD moves or the index changes.
    if let Ok(o) = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
    {
        if o.status.success() {
            let git_dir = String::from_utf8_lossy(&o.stdout).trim().to_string();
            println!("cargo:rerun-if-changed={git_dir}/HEAD");
            println!("cargo:rerun-if-changed={git_dir}/index");
            println!("cargo:rerun-if-changed={git_dir}/refs");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
