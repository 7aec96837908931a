//! Records the compiler and commit a binary was built from, for meta.json and `--version`.
//! Outside a git checkout (or without git) the commit is "unknown".
use std::path::Path;
use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Rerun when HEAD moves: HEAD itself, the branch it names (a commit changes only that) and
/// packed-refs, and the index for `-dirty`. Asked of git, because in a worktree `.git` is a
/// file and these live elsewhere; a path that does not exist is left out (cargo would rerun
/// the script on every build).
fn rerun_when_head_changes() {
    println!("cargo:rerun-if-changed=build.rs");
    let mut names = vec!["HEAD".to_string(), "packed-refs".into(), "index".into()];
    if let Some(branch) = output("git", &["symbolic-ref", "-q", "HEAD"]) {
        names.push(branch);
    }
    for name in names {
        if let Some(path) = output(
            "git",
            &["rev-parse", "--path-format=absolute", "--git-path", &name],
        ) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = output(&rustc, &["-V"]).unwrap_or_else(|| "unknown".into());
    let mut commit = output("git", &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    if output("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty())
    {
        commit.push_str("-dirty");
    }
    println!("cargo:rustc-env=RUNBENCH_RUSTC_VERSION={version}");
    println!("cargo:rustc-env=RUNBENCH_GIT_COMMIT={commit}");
    rerun_when_head_changes();
}
