// Sets `MGRAPH_DEPLOY_VERSION` for `--version`: the crate's version and, when built from a git
// checkout (or with `MGRAPH_DEPLOY_COMMIT` set), the commit. The client crate includes this file.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = std::env::var("MGRAPH_DEPLOY_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    match commit {
        Some(commit) => {
            println!("cargo:rustc-env=MGRAPH_DEPLOY_VERSION={version} (commit {commit})")
        }
        None => println!("cargo:rustc-env=MGRAPH_DEPLOY_VERSION={version}"),
    }
    println!("cargo:rerun-if-env-changed=MGRAPH_DEPLOY_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for watched in ["HEAD", "refs/heads", "packed-refs"] {
            println!("cargo:rerun-if-changed={dir}/{watched}");
        }
    }
}
