//! Build script: records the git commit this binary was built from, for
//! `semsearch --version`, `/v1/stats` and the `semsearch_build_info` metric.
//! Outside a git checkout (a source tarball, a Docker context without .git)
//! the commit is "unknown"; `SEMSEARCH_GIT_SHA` set at build time wins.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    String::from_utf8(out.stdout).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=SEMSEARCH_GIT_SHA");
    let sha = std::env::var("SEMSEARCH_GIT_SHA")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SEMSEARCH_GIT_SHA={sha}");
    // Rebuild when HEAD moves: HEAD itself, the branch it points to, packed refs.
    if let (Some(git_dir), Some(common)) = (git(&["rev-parse", "--git-dir"]), git(&["rev-parse", "--git-common-dir"])) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        println!("cargo:rerun-if-changed={common}/packed-refs");
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={common}/{branch}");
        }
    }
}
