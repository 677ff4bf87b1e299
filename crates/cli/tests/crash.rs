//! Crash safety at fleet scale: a 2,000-cluster fleet repository (with its work tree, about
//! 300,000 files), renders killed with SIGKILL at every point — while rendering, before the
//! commit, right after it, half way through the work-tree update — and then `plan` and
//! `render` as a user would run them next. The repository must end exactly where a render
//! that was never killed ends (the same tree as a shadow repository that took the same
//! changes without a crash), with a clean work tree and index, and `git fsck --strict` clean.
//! Then two renders started at once: one waits for the other, neither fails.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn atoll_in(root: &Path, args: &[&str], fault: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atoll"));
    c.args(args)
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .env("ATOLL_UPSTREAM_ROOTS", root);
    if let Some(f) = fault {
        c.env("ATOLL_FAULT", f);
    }
    c.output().unwrap()
}

fn tree(repo: &Path) -> String {
    git(repo, &["rev-parse", "HEAD^{tree}"])
}

#[test]
fn renders_killed_anywhere_are_repaired_by_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let r = root.to_str().unwrap();
    succeeded(
        &atoll_in(
            root,
            &["bench", "gen", r, "-n", "2000", "--seed", "11"],
            None,
        ),
        "bench gen",
    );
    let fleet = root.join("fleet");
    let f = fleet.to_str().unwrap();
    let repo = root.join("repo");
    let rp = repo.to_str().unwrap();
    let shadow = root.join("shadow.git");
    let sp = shadow.to_str().unwrap();
    succeeded(
        &atoll_in(root, &["render", f, "--repo", rp], None),
        "first render",
    );
    // The shadow takes the same changes, never killed.
    git(root, &["clone", "-q", "--bare", rp, sp]);
    assert_eq!(tree(&repo), tree(&shadow));

    let regions = ["ap-east", "ap-south", "eu-north", "eu-west"];
    let points = [
        "while-rendering",
        "before-commit",
        "after-commit",
        "mid-checkout",
    ];
    for (i, point) in points.iter().enumerate() {
        // Relabel one region's clusters (a few hundred of them are rendered again).
        let file = fleet.join(format!("clusters/{}.yaml", regions[i]));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("env: prod"), "{}", file.display());
        std::fs::write(&file, text.replace("env: prod", &format!("env: step{i}"))).unwrap();
        let before = git(&repo, &["rev-parse", "HEAD"]);

        if *point == "while-rendering" {
            let mut child = Command::new(env!("CARGO_BIN_EXE_atoll"))
                .args(["render", f, "--repo", rp])
                .env("ATOLL_UPSTREAM_ROOTS", r)
                .env("SOURCE_DATE_EPOCH", "1767225600")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(700));
            let _ = child.kill();
            let _ = child.wait();
        } else {
            let out = atoll_in(root, &["render", f, "--repo", rp], Some(point));
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                out.status.signal(),
                Some(9),
                "[{point}] not killed: {out:?}"
            );
        }
        let after_kill = git(&repo, &["rev-parse", "HEAD"]);
        if *point == "before-commit" {
            assert_eq!(after_kill, before, "[{point}] HEAD moved");
        }
        if matches!(*point, "after-commit" | "mid-checkout") {
            assert_ne!(after_kill, before, "[{point}] the commit was not made");
        }

        // What a user runs next: plan says what is pending, render repairs and finishes.
        let plan = atoll_in(root, &["plan", f, "--repo", rp], None);
        let plan_err = String::from_utf8_lossy(&plan.stderr).into_owned();
        succeeded(&plan, "plan after the kill");
        if matches!(*point, "after-commit" | "mid-checkout") {
            assert!(
                plan_err.contains("a render was interrupted after its commit"),
                "[{point}] {plan_err}"
            );
        }
        succeeded(
            &atoll_in(root, &["render", f, "--repo", rp], None),
            "render after the kill",
        );
        succeeded(
            &atoll_in(root, &["render", f, "--repo", sp], None),
            "shadow render",
        );
        assert_eq!(
            tree(&repo),
            tree(&shadow),
            "[{point}] the tree differs from a render never killed"
        );
        assert_eq!(
            git(&repo, &["status", "--porcelain"]),
            "",
            "[{point}] work tree or index differ from HEAD"
        );
        let again = succeeded(
            &atoll_in(root, &["render", f, "--repo", rp], None),
            "render again",
        );
        assert!(again.contains("no changes"), "[{point}] {again}");
    }
    git(&repo, &["fsck", "--strict", "--no-progress"]);

    // Two renders at once on one repository: the second waits for the first's lock.
    let file = fleet.join("clusters/eu-west.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("env: step3", "env: both", 1)).unwrap();
    let before = git(&repo, &["rev-parse", "HEAD"]);
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_atoll"))
            .args(["render", f, "--repo", rp])
            .env("ATOLL_UPSTREAM_ROOTS", r)
            .env("SOURCE_DATE_EPOCH", "1767225600")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let both = format!(
        "{}{}{}{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stdout),
        String::from_utf8_lossy(&b.stderr)
    );
    assert!(a.status.success() && b.status.success(), "{both}");
    assert!(
        both.contains("waiting for the repository lock, held by atoll render (pid"),
        "{both}"
    );
    assert_eq!(both.matches("committed ").count(), 1, "{both}");
    assert!(both.contains("no changes"), "{both}");
    assert_eq!(
        git(&repo, &["rev-list", "--count", &format!("{before}..HEAD")]),
        "1"
    );
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
}
