//! Bakes the commit the binaries are built from into `FIGACHECHNAYA_COMMIT`, for the
//! build-info metric and the start-up log line: the variable of that name when the build sets
//! it (container images, CI), else what git says, else `unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=FIGACHECHNAYA_COMMIT");
    let commit = std::env::var("FIGACHECHNAYA_COMMIT")
        .ok()
        .filter(|commit| !commit.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=FIGACHECHNAYA_COMMIT={commit}");
    // A new commit moves the branch's ref (or HEAD itself, when detached). A path that does
    // not exist would rerun this script on every build, so only existing ones are named.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
        watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    }
    for path in watched.into_iter().flatten() {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}
