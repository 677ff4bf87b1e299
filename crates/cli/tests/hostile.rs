//! Hostile input: upstream Git trees crafted object by object (entries named `..`, `.git`,
//! gitlinks, symbolic links out of the package), YAML bombs, huge and broken files, names
//! too long for what they become, upstream sources outside the allowed roots, and a work
//! tree booby-trapped with symbolic links. Each refused case must give its own error naming
//! file, line and field, exit non-zero, and leave everything as it was: the fleet
//! repository's HEAD, its work tree, and every file of the sandbox around it (so nothing was
//! written outside). The accepted cases must not write outside the repository either.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const H: &str = "apiVersion: atoll.dev/v1alpha1\n";

/// A Git tree entry to craft.
enum E {
    Blob(&'static str, &'static [u8]),
    /// A name given as raw bytes (what `git mktree` would refuse).
    RawBlob(&'static [u8], &'static [u8]),
    Tree(&'static str, Vec<E>),
    RawTree(&'static [u8], Vec<E>),
    Link(&'static str, &'static str),
    Gitlink(&'static str),
}

fn git_stdin(repo: &Path, args: &[&str], input: &[u8]) -> String {
    let mut c = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Writes a tree object from raw entries, the way a hostile server could hand one out.
fn write_tree(repo: &Path, entries: &[E]) -> String {
    let mut raw: Vec<(Vec<u8>, &str, String)> = Vec::new();
    for e in entries {
        let (name, mode, id): (&[u8], &str, String) = match e {
            E::Blob(n, b) => (
                n.as_bytes(),
                "100644",
                git_stdin(repo, &["hash-object", "-w", "--stdin"], b),
            ),
            E::RawBlob(n, b) => (
                n,
                "100644",
                git_stdin(repo, &["hash-object", "-w", "--stdin"], b),
            ),
            E::Tree(n, sub) => (n.as_bytes(), "40000", write_tree(repo, sub)),
            E::RawTree(n, sub) => (n, "40000", write_tree(repo, sub)),
            E::Link(n, target) => (
                n.as_bytes(),
                "120000",
                git_stdin(repo, &["hash-object", "-w", "--stdin"], target.as_bytes()),
            ),
            E::Gitlink(n) => (
                n.as_bytes(),
                "160000",
                "0123456789abcdef0123456789abcdef01234567".to_string(),
            ),
        };
        raw.push((name.to_vec(), mode, id));
    }
    let mut bytes = Vec::new();
    for (name, mode, id) in raw {
        bytes.extend_from_slice(mode.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(&name);
        bytes.push(0);
        bytes.extend_from_slice(&hex_bytes(&id));
    }
    git_stdin(
        repo,
        &["hash-object", "-w", "-t", "tree", "--literally", "--stdin"],
        &bytes,
    )
}

/// An upstream repository whose tag `v1` holds `entries` in folder `pkg`.
fn upstream(dir: &Path, entries: Vec<E>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q"]);
    let tree = write_tree(dir, &[E::Tree("pkg", entries)]);
    let commit = git_stdin(
        dir,
        &[
            "-c",
            "user.name=x",
            "-c",
            "user.email=x@x",
            "commit-tree",
            &tree,
            "-m",
            "v1",
        ],
        b"",
    );
    git(dir, &["update-ref", "refs/tags/v1", &commit]);
    dir.to_path_buf()
}

fn kpt_app(repo: &str, package: &str) -> String {
    format!(
        "{H}kind: Application\nmetadata: {{name: evil, namespace: shop, labels: {{app: web}}}}\nspec:\n  kpt: {{repo: \"{repo}\", package: \"{package}\", revision: v1}}\n"
    )
}

const CM: &[u8] = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";

/// Everything under `dir` (symbolic links by target, files by contents), leaving out what a
/// refused run may legitimately touch: atoll's cache and lock in the Git directory.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel.contains("atoll-cache") || rel.ends_with("atoll.lock") {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()),
                );
            } else if m.is_dir() {
                out.insert(rel.clone(), "dir".into());
                walk(root, &p, out);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(rel, format!("{} bytes {:x}", bytes.len(), fxhash(&bytes)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn fxhash(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, x| {
        (h ^ *x as u64).wrapping_mul(0x100000001b3)
    })
}

struct Case {
    name: String,
    /// Contents of `case.yaml` beside the base fleet (raw bytes: some are not UTF-8).
    file: Vec<u8>,
    /// Extra environment (limits).
    env: Vec<(&'static str, String)>,
    message: String,
    /// `case.yaml:<line>:` (or another place) expected in the error.
    place: String,
}

fn case(name: &str, file: impl Into<Vec<u8>>, message: &str, place: &str) -> Case {
    Case {
        name: name.into(),
        file: file.into(),
        env: Vec::new(),
        message: message.into(),
        place: place.into(),
    }
}

fn run(args: &[&str], env: &[(&'static str, String)], cwd: &Path) -> Output {
    ensure_upstream();
    let mut c = Command::new(env!("CARGO_BIN_EXE_atoll"));
    c.args(args)
        .current_dir(cwd)
        .env("SOURCE_DATE_EPOCH", "1767225600");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Builds every case's upstream repository under `sandbox/up` and returns the cases.
fn cases(sandbox: &Path) -> Vec<Case> {
    let up = sandbox.join("up");
    let mut out = Vec::new();
    // ---- upstream trees
    let trees: Vec<(&str, Vec<E>, &str)> = vec![
        (
            "dotdot folder",
            vec![E::Tree("..", vec![E::Blob("x.yaml", CM)])],
            "`..` (a relative folder reference)",
        ),
        (
            "dotdot file",
            vec![E::Blob("..", CM)],
            "`..` (a relative folder reference)",
        ),
        (
            "dot folder",
            vec![E::Tree(".", vec![E::Blob("x.yaml", CM)])],
            "`.` (a relative folder reference)",
        ),
        (
            "dotgit folder",
            vec![E::Tree(
                ".git",
                vec![E::Blob(
                    "config",
                    b"[core]\n\tfsmonitor = touch /tmp/pwned\n",
                )],
            )],
            "`.git` (Git's own folder)",
        ),
        (
            "DOTGIT upper case",
            vec![E::Tree(".GIT", vec![E::Blob("config", b"x")])],
            "`.GIT` (Git's own folder)",
        ),
        (
            "dotgit mixed case",
            vec![E::Tree(".GiT", vec![E::Blob("hooks", b"x")])],
            "`.GiT` (Git's own folder)",
        ),
        (
            "dotgit trailing dot",
            vec![E::Tree(".git.", vec![E::Blob("config", b"x")])],
            "(Git's own folder)",
        ),
        (
            "dotgit trailing space",
            vec![E::Tree(".git ", vec![E::Blob("config", b"x")])],
            "(Git's own folder)",
        ),
        (
            "dotgit short name",
            vec![E::Tree("GIT~1", vec![E::Blob("config", b"x")])],
            "`GIT~1` (Git's own folder)",
        ),
        (
            "dotgit with an ignorable character",
            vec![E::Tree(".g\u{200c}it", vec![E::Blob("config", b"x")])],
            "(Git's own folder)",
        ),
        (
            "dotgit file deep",
            vec![E::Tree(
                "sub",
                vec![E::Tree("deeper", vec![E::Blob(".git", b"gitdir: /etc\n")])],
            )],
            "entry `pkg/sub/deeper/.git` refused",
        ),
        (
            "dotdot deep",
            vec![E::Tree(
                "a",
                vec![E::Tree("..", vec![E::Tree("..", vec![E::Blob("x", CM)])])],
            )],
            "entry `pkg/a/..` refused",
        ),
        ("empty name", vec![E::RawBlob(b"", CM)], "an empty name"),
        (
            "slash in a name",
            vec![E::RawBlob(b"a/../../x", CM)],
            "forbidden byte 0x2f",
        ),
        (
            "backslash in a name",
            vec![E::RawBlob(b"..\\..\\x", CM)],
            "forbidden byte 0x5c",
        ),
        (
            "newline in a name",
            vec![E::RawBlob(b"a\nb", CM)],
            "forbidden byte 0x0a",
        ),
        (
            "not UTF-8 name",
            vec![E::RawTree(b"\xff\xfe", vec![E::Blob("x", CM)])],
            "is not UTF-8",
        ),
        (
            "gitlink",
            vec![E::Gitlink("vendored")],
            "a submodule (gitlink)",
        ),
        (
            "symlink up and out",
            vec![E::Link("passwd", "../../../../../../etc/passwd")],
            "which is outside the package",
        ),
        (
            "absolute symlink",
            vec![E::Link("passwd", "/etc/passwd")],
            "which is outside the package",
        ),
        (
            "symlink to the package's parent",
            vec![E::Link("up", "..")],
            "which is outside the package",
        ),
        (
            "symlink to a missing file",
            vec![E::Link("x.yaml", "nothing.yaml")],
            "which is not a file of the package",
        ),
        (
            "symlink loop",
            vec![E::Link("a", "b"), E::Link("b", "a")],
            "which is not a file of the package",
        ),
        (
            "symlink to a folder",
            vec![E::Tree("d", vec![E::Blob("x", CM)]), E::Link("l", "d")],
            "which is not a file of the package",
        ),
    ];
    for (i, (name, entries, msg)) in trees.into_iter().enumerate() {
        let repo = upstream(&up.join(format!("t{i}")), entries);
        out.push(case(
            &format!("upstream tree: {name}"),
            kpt_app(repo.to_str().unwrap(), "pkg"),
            msg,
            "case.yaml:5:",
        ));
    }
    // ---- package folders and sources
    let good = upstream(&up.join("good"), vec![E::Blob("cm.yaml", CM)]);
    let g = good.to_str().unwrap();
    for (name, package, msg) in [
        (
            "package with ..",
            "../pkg",
            "must be a relative path inside the repository",
        ),
        (
            "package .git",
            ".git",
            "must be a relative path inside the repository",
        ),
        (
            "package .GIT/hooks",
            "pkg/.GIT/hooks",
            "must be a relative path inside the repository",
        ),
        (
            "package absolute",
            "/etc",
            "must be a relative path inside the repository",
        ),
        (
            "package missing",
            "nope",
            "package directory `nope` not found",
        ),
    ] {
        out.push(case(
            &format!("source: {name}"),
            kpt_app(g, package),
            msg,
            "case.yaml:5:",
        ));
    }
    let outside = tempfile::tempdir().unwrap().keep();
    let outside_repo = upstream(&outside.join("r"), vec![E::Blob("cm.yaml", CM)]);
    std::os::unix::fs::symlink(&outside_repo, up.join("link-out")).unwrap();
    for (name, repo, msg) in [
        (
            "repository outside the roots",
            outside_repo.display().to_string(),
            "is outside the allowed upstream roots",
        ),
        (
            "relative path climbing out",
            format!("../../../../../../..{}", outside_repo.display()),
            "is outside the allowed upstream roots",
        ),
        (
            "file URL outside",
            format!("file://{}", outside_repo.display()),
            "is outside the allowed upstream roots",
        ),
        (
            "symlink inside the root to outside",
            up.join("link-out").display().to_string(),
            "is outside the allowed upstream roots",
        ),
        (
            "the system's root",
            "/".to_string(),
            "is outside the allowed upstream roots",
        ),
        (
            "remote not allowed",
            "https://evil.example.com/pkgs.git".to_string(),
            "is not allowed: the Fleet's spec.upstreams.allowedRemotes (empty)",
        ),
        (
            "ssh remote not allowed",
            "git@evil.example.com:pkgs.git".to_string(),
            "is not allowed",
        ),
        (
            "missing repository",
            up.join("none").display().to_string(),
            "No such file or directory",
        ),
    ] {
        out.push(case(
            &format!("source: {name}"),
            kpt_app(&repo, "pkg"),
            msg,
            "case.yaml:5:",
        ));
    }
    let mut c = case(
        "source: revision that does not exist",
        kpt_app(g, "pkg").replace("revision: v1", "revision: v9"),
        "revision `v9` not found",
        "case.yaml:5:",
    );
    c.env.clear();
    out.push(c);

    // ---- YAML
    let mut bomb = format!(
        "{H}kind: Team\nmetadata: {{name: bomb}}\nspec:\n  readers: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    );
    for i in 1..9 {
        bomb.push_str(&format!(
            "  r{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 10].join(", ")
        ));
    }
    out.push(case(
        "yaml: billion laughs",
        bomb,
        "alias bomb",
        "case.yaml:8:",
    ));
    let deep = format!(
        "{H}kind: Team\nmetadata: {{name: deep}}\nspec: {}1{}\n",
        "[".repeat(200),
        "]".repeat(200)
    );
    out.push(case(
        "yaml: nesting 200 deep",
        deep,
        "nested deeper than 64 levels",
        "case.yaml:4:",
    ));
    let mut big = case(
        "yaml: file over the size limit",
        format!(
            "{H}kind: Team\nmetadata: {{name: big}}\n# {}\n",
            "x".repeat(5000)
        ),
        "at most 4096 are read (ATOLL_MAX_FILE_BYTES)",
        "case.yaml:1:",
    );
    big.env.push(("ATOLL_MAX_FILE_BYTES", "4096".into()));
    out.push(big);
    let mut few = case(
        "yaml: alias budget lowered",
        format!(
            "{H}kind: Team\nmetadata: {{name: t}}\nspec: {{readers: &r [a, b], contributors: *r}}\n"
        ),
        "aliases expand to more than 2 nodes",
        "case.yaml:4:",
    );
    few.env.push(("ATOLL_MAX_YAML_ALIAS_NODES", "2".into()));
    out.push(few);
    out.push(case(
        "yaml: raw NUL byte",
        format!("{H}kind: Team\nmetadata: {{name: t\0x}}\n").into_bytes(),
        "NUL byte at byte offset 60",
        "case.yaml:3:19:",
    ));
    out.push(case(
        "yaml: escaped NUL in a scalar",
        format!("{H}kind: Team\nmetadata: {{name: \"t\\0x\"}}\n"),
        "a NUL character in a scalar is not allowed",
        "case.yaml:3:",
    ));
    let mut bad_utf8 =
        format!("{H}kind: Team\nmetadata: {{name: t}}\nspec: {{readers: [").into_bytes();
    bad_utf8.extend_from_slice(b"\xc3\x28]}\n");
    out.push(case(
        "yaml: invalid UTF-8",
        bad_utf8,
        "invalid UTF-8 at byte offset 79",
        "case.yaml:4:18:",
    ));
    out.push(case(
        "yaml: undefined alias",
        format!("{H}kind: Team\nmetadata: {{name: t}}\nspec: {{readers: *nothing}}\n"),
        "invalid YAML",
        "case.yaml:4:",
    ));
    out.push(case(
        "yaml: a list, not an object",
        format!("- {H}- kind: Team\n"),
        "expected a mapping with apiVersion, kind, metadata and spec",
        "case.yaml:1:",
    ));
    out.push(case(
        "yaml: merge key is not a field",
        format!("{H}kind: Team\nmetadata: {{name: t}}\nspec:\n  <<: {{readers: [a]}}\n"),
        "unknown field `<<`",
        "case.yaml:5:",
    ));
    out.push(case(
        "yaml: tab indentation",
        format!("{H}kind: Team\nmetadata:\n\tname: t\n"),
        "invalid YAML",
        "case.yaml:4:",
    ));

    // ---- names
    let dotted = vec!["abcdefghij"; 23].join(".");
    out.push(case(
        "name: 253-character dotted cluster",
        format!("{H}kind: Cluster\nmetadata: {{name: {dotted}, labels: {{region: eu}}}}\nspec: {{catalog: small}}\n"),
        "is not a valid DNS label",
        "case.yaml:3:",
    ));
    out.push(case(
        "name: 127-character cluster",
        format!("{H}kind: Cluster\nmetadata: {{name: {}, labels: {{region: eu}}}}\nspec: {{catalog: small}}\n", "c".repeat(127)),
        "is not a valid DNS label",
        "case.yaml:3:",
    ));
    out.push(case(
        "name: 50-character cluster",
        format!("{H}kind: Cluster\nmetadata: {{name: {}, labels: {{region: eu}}}}\nspec: {{catalog: small}}\n", "c".repeat(50)),
        "a Cluster name is at most 49",
        "case.yaml:3:",
    ));
    out.push(case(
        "name: cluster with a dot",
        format!("{H}kind: Cluster\nmetadata: {{name: a.b, labels: {{region: eu}}}}\nspec: {{catalog: small}}\n"),
        "`a.b` is not a valid DNS label",
        "case.yaml:3:",
    ));
    out.push(case(
        "name: 64-character team",
        format!("{H}kind: Team\nmetadata: {{name: {}}}\n", "t".repeat(64)),
        "is not a valid DNS label",
        "case.yaml:3:",
    ));
    out.push(case(
        "name: application with a dot",
        format!("{H}kind: Application\nmetadata: {{name: a.b, namespace: shop}}\nspec: {{git: {{repoURL: https://x}}}}\n"),
        "`a.b` is not a valid DNS label",
        "case.yaml:3:",
    ));
    out.push(case(
        "name: component Service too long",
        format!(
            "{H}kind: Application\nmetadata: {{name: {}, namespace: shop}}\nspec:\n  components: [{{name: {}, image: nginx}}]\n",
            "a".repeat(30),
            "c".repeat(30)
        ),
        "would be longer than the 63 characters Kubernetes allows",
        "case.yaml:5:",
    ));
    out.push(case(
        "name: profile name with ..",
        format!("{H}kind: ClusterCatalog\nmetadata: {{name: ..}}\nspec: {{}}\n"),
        "`..` is not a valid name",
        "case.yaml:3:",
    ));
    out.push(case(
        "name: logical cluster member too long",
        format!(
            "{H}kind: LogicalCluster\nmetadata: {{name: lc}}\nspec:\n  clusters: [{{name: {}, spec: {{catalog: small}}}}]\n",
            "m".repeat(60)
        ),
        "a Cluster name is at most 49",
        "case.yaml:5:",
    ));
    out.push(case(
        "name: namespace escaping",
        format!("{H}kind: Application\nmetadata: {{name: x, namespace: ../etc}}\nspec: {{git: {{repoURL: https://x}}}}\n"),
        "metadata.namespace: team `../etc` does not exist",
        "case.yaml:3:21:",
    ));

    // ---- selectors
    out.push(case(
        "selector: Gt is not a LabelSelector operator",
        format!("{H}kind: TargetPolicy\nmetadata: {{name: p2, namespace: shop}}\nspec:\n  appSelector: {{}}\n  clusterSelector: {{matchExpressions: [{{key: n, operator: Gt, values: [\"1\"]}}]}}\n"),
        "`Gt` is not a valid label selector operator",
        "case.yaml:6:",
    ));
    out.push(case(
        "selector: key with two slashes",
        format!("{H}kind: TargetPolicy\nmetadata: {{name: p2, namespace: shop}}\nspec:\n  appSelector: {{matchLabels: {{a/b/c: x}}}}\n  clusterSelector: {{}}\n"),
        "a qualified name has at most one `/`",
        "case.yaml:5:",
    ));
    out.push(case(
        "selector: value with a space",
        format!("{H}kind: TargetPolicy\nmetadata: {{name: p2, namespace: shop}}\nspec:\n  appSelector: {{matchLabels: {{a: \"x y\"}}}}\n  clusterSelector: {{}}\n"),
        "is not a valid label value",
        "case.yaml:5:",
    ));
    out.push(case(
        "selector: In with null values",
        format!("{H}kind: TargetPolicy\nmetadata: {{name: p2, namespace: shop}}\nspec:\n  appSelector: {{matchExpressions: [{{key: a, operator: In, values: null}}]}}\n  clusterSelector: {{}}\n"),
        "operator In needs at least one value",
        "case.yaml:5:",
    ));
    out
}

fn write_fleet(dir: &Path, file: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("base.yaml"), BASE_FLEET).unwrap();
    std::fs::write(dir.join("case.yaml"), file).unwrap();
}

#[test]
fn hostile_inputs_are_refused_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = tmp.path().canonicalize().unwrap();
    let repo = sandbox.join("repo");
    let good = sandbox.join("good");
    write_fleet(&good, b"");
    let root = sandbox.to_str().unwrap();
    succeeded(
        &run(
            &[
                "render",
                good.to_str().unwrap(),
                "--repo",
                repo.to_str().unwrap(),
            ],
            &[],
            &sandbox,
        ),
        "the base render",
    );
    let cases = cases(&sandbox);
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let head_before = head(&repo);
    let before = snapshot(&sandbox);
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let dir = sandbox.join("cases").join(i.to_string());
        write_fleet(&dir, &c.file);
        let before = snapshot(&sandbox);
        for cmd in ["validate", "plan", "render"] {
            let mut args = vec![cmd, dir.to_str().unwrap(), "--upstream-root", root];
            if cmd != "validate" {
                args.extend(["--repo", repo.to_str().unwrap()]);
            }
            let out = run(&args, &c.env, &sandbox);
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                failures.push(format!("[{}] {cmd} succeeded", c.name));
            } else if !err.contains(&c.message) {
                failures.push(format!(
                    "[{}] {cmd}: expected `{}`, got:\n{err}",
                    c.name, c.message
                ));
            } else if !err.contains(&c.place) {
                failures.push(format!(
                    "[{}] {cmd}: expected place `{}`, got:\n{err}",
                    c.name, c.place
                ));
            } else if !err.contains("nothing was written") {
                failures.push(format!(
                    "[{}] {cmd}: does not say nothing was written:\n{err}",
                    c.name
                ));
            }
            if out.status.code() != Some(1) {
                failures.push(format!(
                    "[{}] {cmd}: exit {:?} (a crash?)",
                    c.name, out.status
                ));
            }
        }
        let after = snapshot(&sandbox);
        if after != before {
            let changed: Vec<&String> = after
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(v))
                .map(|(k, _)| k)
                .chain(before.keys().filter(|k| !after.contains_key(*k)))
                .collect();
            failures.push(format!("[{}] changed files: {changed:?}", c.name));
        }
        assert_eq!(head(&repo), head_before, "[{}] HEAD moved", c.name);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Only the cases' own folders were added; the repository is as it was.
    let after = snapshot(&sandbox);
    let repo_before: BTreeMap<_, _> = before
        .iter()
        .filter(|(k, _)| k.starts_with("repo"))
        .collect();
    let repo_after: BTreeMap<_, _> = after
        .iter()
        .filter(|(k, _)| k.starts_with("repo"))
        .collect();
    assert_eq!(repo_before, repo_after);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    git(&repo, &["fsck", "--strict"]);
}

#[test]
fn a_link_inside_the_package_is_copied_as_its_file() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = tmp.path().canonicalize().unwrap();
    let up = upstream(
        &sandbox.join("up"),
        vec![
            E::Tree("base", vec![E::Blob("cm.yaml", CM)]),
            E::Link("cm.yaml", "base/cm.yaml"),
            E::Link("again.yaml", "./base/../cm.yaml"),
            E::Blob("kustomization.yaml", b"resources: [cm.yaml]\n"),
        ],
    );
    let fleet = sandbox.join("fleet");
    write_fleet(&fleet, kpt_app(up.to_str().unwrap(), "pkg").as_bytes());
    let repo = sandbox.join("repo");
    succeeded(
        &run(
            &[
                "render",
                fleet.to_str().unwrap(),
                "--repo",
                repo.to_str().unwrap(),
                "--upstream-root",
                sandbox.to_str().unwrap(),
            ],
            &[],
            &sandbox,
        ),
        "render",
    );
    let dir = repo.join("clusters/site-a/apps/shop/evil");
    let copied = std::fs::read(dir.join("cm.yaml")).unwrap();
    assert!(
        !std::fs::symlink_metadata(dir.join("cm.yaml"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(String::from_utf8_lossy(&copied).contains("ConfigMap"));
    assert_eq!(std::fs::read(dir.join("again.yaml")).unwrap(), copied);
    git(&repo, &["fsck", "--strict"]);
}

#[test]
fn links_planted_in_the_work_tree_are_replaced_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = tmp.path().canonicalize().unwrap();
    let outside = sandbox.join("outside");
    std::fs::create_dir_all(outside.join("clusters")).unwrap();
    std::fs::write(outside.join("victim.yaml"), "precious\n").unwrap();
    let fleet = sandbox.join("fleet");
    write_fleet(&fleet, b"");
    let repo = sandbox.join("repo");
    let render = |fleet: &Path| {
        succeeded(
            &run(
                &[
                    "render",
                    fleet.to_str().unwrap(),
                    "--repo",
                    repo.to_str().unwrap(),
                ],
                &[],
                &sandbox,
            ),
            "render",
        )
    };
    render(&fleet);
    let before = snapshot(&outside);
    // A work tree can hold anything: its `state` folder, a cluster folder and one file
    // become links to the outside.
    std::fs::remove_dir_all(repo.join("state")).unwrap();
    std::os::unix::fs::symlink(&outside, repo.join("state")).unwrap();
    std::fs::remove_dir_all(repo.join("clusters/site-a")).unwrap();
    std::os::unix::fs::symlink(outside.join("clusters"), repo.join("clusters/site-a")).unwrap();
    std::fs::remove_file(repo.join("management/gitops/site-a.yaml")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("victim.yaml"),
        repo.join("management/gitops/site-a.yaml"),
    )
    .unwrap();
    // A change that rewrites all of them.
    let text = std::fs::read_to_string(fleet.join("base.yaml")).unwrap();
    std::fs::write(
        fleet.join("base.yaml"),
        text.replace("{region: eu}}", "{region: eu, zone: z1}}"),
    )
    .unwrap();
    render(&fleet);
    assert_eq!(
        snapshot(&outside),
        before,
        "something was written outside the repository"
    );
    assert!(
        !std::fs::symlink_metadata(repo.join("state"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(repo.join("clusters/site-a/kustomization.yaml").is_file());
    assert!(
        !std::fs::symlink_metadata(repo.join("management/gitops/site-a.yaml"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}
