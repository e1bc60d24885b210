//! Records what `/version` reports about this build: the git commit and tree state, the
//! commit's date as the build date (reproducible, unlike the wall clock), and the compiler.

use std::path::Path;
use std::process::Command;

fn main() {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .env("TZ", "UTC")
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    // Outside a git checkout (a source tarball) the fields stay empty, as upstream's do.
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    let tree_state = match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if changes.is_empty() => "clean",
        Some(_) => "dirty",
        None => "",
    };
    let date = git(&[
        "show",
        "-s",
        "--format=%cd",
        "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
        "HEAD",
    ])
    .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();

    println!("cargo:rustc-env=RKUBE_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=RKUBE_GIT_TREE_STATE={tree_state}");
    println!("cargo:rustc-env=RKUBE_BUILD_DATE={date}");
    println!("cargo:rustc-env=RKUBE_RUSTC_VERSION={rustc_version}");
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        // A new commit moves HEAD or a ref; staging changes the index.
        for file in ["HEAD", "index", "packed-refs"] {
            let path = Path::new(&git_dir).join(file);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let path = Path::new(&git_dir).join(head_ref);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
