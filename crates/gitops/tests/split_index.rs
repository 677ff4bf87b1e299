//! The work tree's index is Git's split index (`src/index.rs`): a render that changes a few
//! clusters writes a small `.git/index` over a shared base. Every step here is checked by
//! Git itself (`ls-files` against `ls-tree`, `status`, `fsck`) and by gix's own reader, and
//! the index Git rewrites behind atoll's back (a stat refresh, an unsplit index, a missing map,
//! garbage) must still end up right after the next render.

use atoll_gitops::{FleetRepo, TreeEdit};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Git and gix both read the index as exactly HEAD's tree, and the work tree as clean.
fn check(dir: &Path) {
    let listed = git(dir, &["ls-files", "-s"]);
    let tree = git(
        dir,
        &[
            "ls-tree",
            "-r",
            "--format=%(objectmode) %(objectname) 0\t%(path)",
            "HEAD",
        ],
    );
    assert_eq!(listed, tree, "git reads the index as HEAD's tree");
    assert_eq!(git(dir, &["status", "--porcelain"]), "", "work tree clean");
    git(dir, &["fsck", "--strict", "--no-progress"]);
    let repo = gix::open(dir).expect("gix opens");
    let index = repo.open_index().expect("gix reads the split index");
    let from_gix: String = index
        .entries()
        .iter()
        .map(|e| format!("{:o} {} 0\t{}\n", e.mode.bits(), e.id, e.path(&index)))
        .collect();
    assert_eq!(from_gix, tree, "gix reads the index as HEAD's tree");
}

/// The shared base `.git/index` links to (Git may leave older ones behind until they expire).
fn base_name(dir: &Path) -> String {
    let index = std::fs::read(dir.join(".git/index")).unwrap();
    let at = index
        .windows(4)
        .rposition(|w| w == b"link")
        .expect("a split index");
    let id = gix::ObjectId::from_bytes_or_panic(&index[at + 8..at + 28]);
    assert!(dir.join(format!(".git/sharedindex.{id}")).exists());
    format!("sharedindex.{id}")
}

fn cluster(edit: &mut TreeEdit, name: &str, version: &str, files: usize) {
    edit.replace.insert(format!("clusters/{name}/"));
    for i in 0..files {
        edit.files.insert(
            format!("clusters/{name}/app-{i}/manifest.yaml"),
            Arc::from(format!("name: {name}\napp: {i}\nversion: {version}\n").into_bytes()),
        );
    }
}

#[test]
fn a_few_clusters_change_only_the_small_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    let repo = FleetRepo::open_or_init(&dir).unwrap();

    // The first render writes everything: the base.
    let mut edit = TreeEdit::default();
    edit.replace.insert("clusters/".into());
    for c in 0..40 {
        let mut one = TreeEdit::default();
        cluster(&mut one, &format!("c{c:02}"), "v1", 3);
        edit.files.extend(one.files);
    }
    repo.commit_edit(&edit, "all").unwrap().expect("a commit");
    check(&dir);
    let base = base_name(&dir);
    let whole_size = std::fs::metadata(dir.join(".git").join(&base))
        .unwrap()
        .len();

    // One cluster changes (one file more): only .git/index is written.
    let mut edit = TreeEdit::default();
    cluster(&mut edit, "c07", "v2", 4);
    repo.commit_edit(&edit, "c07").unwrap().expect("a commit");
    check(&dir);
    assert_eq!(base_name(&dir), base, "the base stays");
    let index_size = std::fs::metadata(dir.join(".git/index")).unwrap().len();
    assert!(index_size < whole_size, "{index_size} vs {whole_size}");

    // A cluster goes, another comes; a single file is replaced outside any folder edit.
    let mut edit = TreeEdit::default();
    edit.replace.insert("clusters/c12/".into());
    cluster(&mut edit, "c99", "v1", 2);
    edit.replace
        .insert("clusters/c03/app-1/manifest.yaml".into());
    edit.files.insert(
        "clusters/c03/app-1/manifest.yaml".into(),
        Arc::from(b"changed alone\n".to_vec()),
    );
    repo.commit_edit(&edit, "c12 c99 c03")
        .unwrap()
        .expect("a commit");
    check(&dir);
    assert_eq!(base_name(&dir), base);

    // `git status` refreshes stat data and writes it as replacements into the split index;
    // the next render keeps them as replacements over the same base.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for c in ["c01", "c02", "c07"] {
        let f = dir.join(format!("clusters/{c}/app-0/manifest.yaml"));
        let bytes = std::fs::read(&f).unwrap();
        std::fs::write(&f, bytes).unwrap();
    }
    check(&dir);
    assert_eq!(base_name(&dir), base, "git status keeps the base");
    let mut edit = TreeEdit::default();
    cluster(&mut edit, "c02", "v3", 1);
    repo.commit_edit(&edit, "c02").unwrap().expect("a commit");
    check(&dir);
    assert_eq!(base_name(&dir), base, "replacements stay replacements");

    // `git update-index --refresh` writes the index unsplit: the next render writes a fresh
    // base from it.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let f = dir.join("clusters/c01/app-0/manifest.yaml");
    std::fs::write(&f, std::fs::read(&f).unwrap()).unwrap();
    git(&dir, &["update-index", "--refresh"]);
    let unsplit = std::fs::read(dir.join(".git/index")).unwrap();
    assert!(!unsplit.windows(4).any(|w| w == b"link"), "git unsplit it");
    let mut edit = TreeEdit::default();
    cluster(&mut edit, "c04", "v2", 3);
    repo.commit_edit(&edit, "c04").unwrap().expect("a commit");
    check(&dir);
    assert_ne!(base_name(&dir), base, "a fresh base");
    let base = base_name(&dir);

    // The map is lost, then the index is garbage: rebuilt each time.
    std::fs::remove_file(dir.join(".git/atoll-index-map")).unwrap();
    let mut edit = TreeEdit::default();
    cluster(&mut edit, "c05", "v2", 3);
    repo.commit_edit(&edit, "c05").unwrap().expect("a commit");
    check(&dir);
    assert_ne!(base_name(&dir), base, "rebuilt");
    std::fs::write(
        dir.join(".git/index"),
        b"DIRC garbage that is not an index at all",
    )
    .unwrap();
    let mut edit = TreeEdit::default();
    cluster(&mut edit, "c06", "v2", 3);
    repo.commit_edit(&edit, "c06").unwrap().expect("a commit");
    check(&dir);

    // Past a fifth of the base (and 2,048 entries) the changes fold into a fresh base.
    let base = base_name(&dir);
    let mut edit = TreeEdit::default();
    cluster(&mut edit, "big", "v1", 2100);
    repo.commit_edit(&edit, "big").unwrap().expect("a commit");
    check(&dir);
    assert_ne!(base_name(&dir), base, "folded into a fresh base");
    let mut edit = TreeEdit::default();
    cluster(&mut edit, "c08", "v2", 3);
    repo.commit_edit(&edit, "c08").unwrap().expect("a commit");
    check(&dir);
}
