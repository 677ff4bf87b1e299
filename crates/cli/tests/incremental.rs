//! Incremental rendering and the cache are only optimisations: after every kind of change,
//! rendering onto the previous commit (which skips clusters whose inputs did not change, and
//! takes unchanged files and clusters from the cache in the Git directory) must give exactly
//! the tree a `--full` render from the same previous commit gives, and a plan must not depend
//! on the cache.

mod common;
use atoll_bench::{generator, suite};
use common::*;
use std::path::Path;

fn tree(repo: &Path) -> String {
    git(repo, &["rev-parse", "HEAD^{tree}"])
}

fn edit_text(p: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(p).unwrap();
    assert!(text.contains(from), "{} has no `{from}`", p.display());
    std::fs::write(p, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn incremental_render_equals_full_render_after_every_kind_of_change() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = generator::generate(generator::Params {
        clusters: 40,
        seed: 7,
    });
    generator::write(&fleet, tmp.path()).unwrap();
    let decl = tmp.path().join("fleet");
    let d = decl.to_str().unwrap();
    let repo = tmp.path().join("incremental");
    let r = repo.to_str().unwrap();
    // The generated fleet's upstream catalog lies beside its declarations.
    let upstream_root = tmp.path().to_str().unwrap().to_string();
    let atoll = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--upstream-root", upstream_root.as_str()]);
        atoll(&a)
    };
    ok(&atoll(&["render", d, "--repo", r]));
    let cache = repo.join(".git/atoll-cache");
    assert!(cache.is_dir(), "no cache written in {}", cache.display());

    type Change = Box<dyn Fn(&Path)>;
    let changes: Vec<(&str, Change)> = vec![
        (
            "one cluster's labels",
            Box::new(|d| {
                suite::edit_cluster(d, "eu-west", |l| {
                    l["format"] = "hyper".into();
                    l["env"] = "staging".into();
                })
                .unwrap()
            }),
        ),
        ("a new site", Box::new(|d| suite::add_site(d, 40).unwrap())),
        (
            "an application's chart version",
            Box::new(|d| suite::bump_app(d).unwrap()),
        ),
        (
            "a profile every edge cluster uses",
            Box::new(|d| edit_text(&d.join("profiles.yaml"), "workerCount: 1", "workerCount: 2")),
        ),
        (
            "a team's groups",
            Box::new(|d| edit_text(&d.join("teams.yaml"), "grp-team-03-devs", "grp-team-03-sre")),
        ),
        (
            "a target policy",
            Box::new(|d| edit_text(&d.join("policies.yaml"), "hyper", "depot")),
        ),
        (
            "a removed cluster",
            Box::new(|d| {
                let p = d.join("clusters/eu-west.yaml");
                let mut docs = suite::read_docs(&p).unwrap();
                docs.remove(0);
                std::fs::write(&p, atoll_model::yaml::to_yaml_stream(docs.iter())).unwrap();
            }),
        ),
        (
            "the fleet's Git settings",
            Box::new(|d| edit_text(&d.join("fleet.yaml"), "branch: main", "branch: fleet")),
        ),
    ];
    for (i, (what, change)) in changes.iter().enumerate() {
        let before = head(&repo);
        let full = tmp.path().join(format!("full-{i}"));
        git(tmp.path(), &["clone", "-q", r, full.to_str().unwrap()]);
        change(&decl);
        // Planning first leaves its results in the cache for the render to take.
        let cached = ok(&atoll(&["plan", d, "--repo", r, "-o", "json"]));
        let uncached = ok(&atoll(&[
            "plan",
            d,
            "--repo",
            r,
            "-o",
            "json",
            "--no-cache",
        ]));
        assert_eq!(cached, uncached, "{what}: the cache changed the plan");
        ok(&atoll(&["render", d, "--repo", r, "-m", what]));
        assert_ne!(head(&repo), before, "{what}: no commit");
        ok(&atoll(&[
            "render",
            d,
            "--repo",
            full.to_str().unwrap(),
            "--full",
        ]));
        assert_eq!(
            tree(&repo),
            tree(&full),
            "{what}: incremental and full renders differ"
        );
        assert_eq!(
            git(&repo, &["status", "--porcelain"]),
            "",
            "{what}: work tree not clean"
        );
        // A re-render of the same declarations changes nothing.
        let out = ok(&atoll(&["render", d, "--repo", r]));
        assert!(out.contains("no changes"), "{what}: {out}");
    }

    // A cache that cannot be read is only slower: every entry garbled, then one more change.
    let mut garbled = 0;
    let mut stack = vec![cache.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                std::fs::write(e.path(), b"{garbage").unwrap();
                garbled += 1;
            }
        }
    }
    assert!(garbled >= 3, "memo, HEAD state and parsed files: {garbled}");
    let full = tmp.path().join("full-garbled");
    git(tmp.path(), &["clone", "-q", r, full.to_str().unwrap()]);
    suite::edit_cluster(&decl, "eu-west", |l| l["format"] = "super".into()).unwrap();
    ok(&atoll(&["render", d, "--repo", r]));
    ok(&atoll(&[
        "render",
        d,
        "--repo",
        full.to_str().unwrap(),
        "--full",
    ]));
    assert_eq!(tree(&repo), tree(&full), "after a garbled cache");
    git(&repo, &["fsck", "--strict"]);
}
