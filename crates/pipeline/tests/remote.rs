//! Publishing: two writers, each with its own repository, push to one bare remote. A writer
//! whose plan was made before the other pushed is rejected (fast-forward only), renders its
//! declarations again on top of the other's commit, and pushes; the remote's history is
//! linear and its tree is what the declarations render to.

use atoll_gitops::{Auth, Remote};
use atoll_model::Model;
use atoll_pipeline::{Options, Pipeline, Reuse, UpstreamSources};
use std::path::{Path, PathBuf};
use std::process::Command;

fn edge_fleet() -> Model {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/edge-fleet");
    atoll_model::load_model(&[dir]).expect("the example fleet validates")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn pipeline(repo: &Path, remote: &Path) -> Pipeline {
    Pipeline::open(
        repo,
        Options {
            create: true,
            bare: true,
            disk_cache: Reuse::Nothing,
            writer: "test".into(),
            sources: UpstreamSources::files(vec![PathBuf::from("/")]),
            remote: Some(Remote {
                url: remote.display().to_string(),
                branch: "main".into(),
                auth: Auth::None,
            }),
        },
    )
    .unwrap()
}

#[test]
fn a_rejected_push_renders_again_on_top_and_loses_nothing() {
    let upstream = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/upstream-packages");
    if !upstream.join(".git").exists() {
        let st = Command::new("bash")
            .arg(
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../examples/upstream-packages/make-repo.sh"),
            )
            .arg(&upstream)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote.git");
    assert!(
        Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&remote)
            .status()
            .unwrap()
            .success()
    );
    git(&remote, &["config", "core.logAllRefUpdates", "always"]);

    // Writer 1 publishes the fleet.
    let base = edge_fleet();
    let mut w1 = pipeline(&tmp.path().join("w1.git"), &remote);
    let plan = w1.plan(&base, false, true).unwrap();
    w1.commit_and_publish(plan, &base, Some("first")).unwrap();
    let first = git(&remote, &["rev-parse", "main"]);

    // Writer 2 plans a change against that...
    let mut relabelled = base.clone();
    relabelled
        .clusters
        .get_mut("edge-paris")
        .unwrap()
        .labels
        .insert("zone".into(), "eu-west-9".into());
    let mut w2 = pipeline(&tmp.path().join("w2.git"), &remote);
    let stale = w2.plan(&relabelled, false, true).unwrap();
    // ...while writer 1 publishes another one (its declarations are the same store's: they
    // hold both changes by the time writer 2 renders again).
    let mut both = relabelled.clone();
    both.clusters
        .get_mut("edge-lyon")
        .unwrap()
        .labels
        .insert("zone".into(), "eu-west-8".into());
    let mut only_w1 = base.clone();
    only_w1.clusters = both.clusters.clone();
    only_w1.clusters.get_mut("edge-paris").unwrap().labels =
        base.clusters["edge-paris"].labels.clone();
    let plan = w1.plan(&only_w1, false, true).unwrap();
    w1.commit_and_publish(plan, &only_w1, Some("lyon")).unwrap();
    let second = git(&remote, &["rev-parse", "main"]);
    assert_ne!(first, second);

    // Writer 2's push is rejected; it renders `both` on top and pushes.
    let done = w2
        .commit_and_publish_with(stale, &mut || Ok(both.clone()), Some("paris"))
        .unwrap();
    assert!(
        w2.publish_state().error.is_none(),
        "{:?}",
        w2.publish_state()
    );
    let third = git(&remote, &["rev-parse", "main"]);
    assert_eq!(done.head.map(|c| c.to_string()), Some(third.clone()));
    assert_eq!(
        git(&remote, &["rev-parse", &format!("{third}^")]),
        second,
        "on top of writer 1's"
    );
    // Fast-forwards only.
    let reflog = git(&remote, &["reflog", "show", "--format=%H", "main"]);
    assert_eq!(
        reflog.lines().collect::<Vec<_>>(),
        [third.as_str(), second.as_str(), first.as_str()]
    );
    // The remote's tree is what `both` renders to from scratch.
    let mut fresh = pipeline(
        &tmp.path().join("fresh.git"),
        &tmp.path().join("elsewhere.git"),
    );
    fresh.set_remote(None);
    let plan = fresh.plan(&both, false, true).unwrap();
    fresh.commit(plan, None).unwrap();
    assert_eq!(
        git(&remote, &["rev-parse", "main^{tree}"]),
        git(&tmp.path().join("fresh.git"), &["rev-parse", "HEAD^{tree}"])
    );
}
