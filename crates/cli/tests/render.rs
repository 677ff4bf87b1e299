//! End to end: examples render into real Git repositories; every object validates against
//! the upstream schemas; real `kubectl kustomize` builds every cluster directory; renders are
//! deterministic; plans answer "what happens if we add a site".

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

fn schemas() -> &'static atoll_conformance::Schemas {
    static S: std::sync::OnceLock<atoll_conformance::Schemas> = std::sync::OnceLock::new();
    S.get_or_init(|| atoll_conformance::Schemas::load(&atoll_conformance::schemas_dir()))
}

/// Validates every object of every rendered YAML file, including manifests embedded in
/// ConfigMaps (the CNI and the agent object that Cluster API applies). Returns the count.
fn validate_tree(repo: &Path) -> usize {
    let mut n = 0;
    let mut errors = Vec::new();
    for (path, text) in files(repo) {
        if !(path.ends_with(".yaml") || path == "Kptfile" || path.ends_with("/Kptfile"))
            || path.starts_with("state/")
        {
            continue;
        }
        if path.ends_with("kustomization.yaml") {
            continue;
        }
        let mut queue: Vec<Value> = atoll_conformance::objects(&text);
        while let Some(obj) = queue.pop() {
            if obj["kind"] == "ConfigMap" {
                for (k, v) in obj["data"].as_object().into_iter().flatten() {
                    if k.ends_with(".yaml") {
                        queue.extend(atoll_conformance::objects(v.as_str().unwrap()));
                    }
                }
            }
            n += 1;
            if let Err(e) = schemas().validate(&obj) {
                errors.push(format!("{path}: {}", e.join("; ")));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} objects fail their upstream schema:\n{}",
        errors.len(),
        errors.join("\n")
    );
    n
}

fn kustomize_all(repo: &Path) -> usize {
    let mut dirs = Vec::new();
    for top in ["clusters", "management/clusters"] {
        let Ok(rd) = std::fs::read_dir(repo.join(top)) else {
            continue;
        };
        for e in rd.flatten() {
            dirs.push(e.path());
        }
    }
    dirs.sort();
    for d in &dirs {
        let out = std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(d)
            .output()
            .expect("kubectl on PATH");
        assert!(
            out.status.success(),
            "kubectl kustomize {}: {}",
            d.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty());
    }
    dirs.len()
}

fn render_into(paths: &[&str], repo: &Path) -> String {
    let mut args = vec!["render"];
    args.extend_from_slice(paths);
    args.push("--repo");
    args.push(repo.to_str().unwrap());
    ok(&atoll(&args))
}

#[test]
fn edge_fleet_renders_validates_and_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("fleet");
    let out = render_into(&["examples/edge-fleet"], &repo);
    assert!(out.contains("13 new"), "{out}");
    // What the fleet must contain.
    let f = files(&repo);
    for p in [
        "management/clusters/core-eu-west/control-plane.yaml",
        "management/clusters/edge-paris/control-plane.yaml",
        "management/gitops/legacy-datacenter.yaml",
        "clusters/regional-eu-west/packages/nginx-gateway/Kptfile",
        "clusters/edge-paris/apps/retail/pos/components.yaml",
        "clusters/gpu-us-east/apps/analytics/inference/release.yaml",
        "state/allocations.yaml",
    ] {
        assert!(f.contains_key(p), "missing {p}");
    }
    assert!(
        !f.contains_key("management/clusters/legacy-datacenter/cluster.yaml"),
        "an existing cluster gets no CAPI objects"
    );
    assert!(
        f["management/clusters/edge-paris/control-plane.yaml"]
            .contains("kind: KThreesControlPlane")
    );
    assert!(
        f["management/clusters/core-eu-west/control-plane.yaml"]
            .contains("kind: KubeadmControlPlane")
    );
    assert!(f["management/clusters/core-eu-west/cni.yaml"].contains("kind: ClusterResourceSet"));
    assert!(
        f["management/gitops/gpu-us-east.yaml"].contains("kind: Application"),
        "gpu clusters use Argo CD"
    );
    assert!(
        f["management/gitops/edge-pune.yaml"].contains("kind: RootSync"),
        "edge-pune uses Config Sync"
    );
    assert!(
        f["management/gitops/edge-paris.yaml"].contains("kind: Kustomization"),
        "the fleet default is Flux"
    );
    // Secrets never in clear: only references.
    assert!(f["clusters/edge-paris/apps/retail/pos/components.yaml"].contains("secretKeyRef"));
    assert!(!f.values().any(|t| t.contains("kind: Secret")));
    let n = validate_tree(&repo);
    assert!(n > 300, "only {n} objects validated");
    assert_eq!(kustomize_all(&repo), 25);
    assert_eq!(
        git(&repo, &["status", "--porcelain"]),
        "",
        "work tree matches the commit"
    );
    git(&repo, &["fsck", "--strict"]);
}

/// Cluster API's Docker provider (in-memory backend) panics on a DevCluster applied
/// server-side without `metadata.annotations` (it writes into a nil map): every
/// infrastructure object atoll renders carries one.
#[test]
fn dev_clusters_and_templates_carry_annotations() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("fleet");
    render_into(&["examples/edge-fleet"], &repo);
    let mut seen = 0;
    for (path, text) in files(&repo) {
        if !path.starts_with("management/clusters/") {
            continue;
        }
        for doc in atoll_model::yaml::parse_values(&text).unwrap() {
            let kind = doc["kind"].as_str().unwrap_or("");
            if kind.starts_with("Dev") {
                seen += 1;
                assert!(
                    doc["metadata"]["annotations"]
                        .as_object()
                        .is_some_and(|a| !a.is_empty()),
                    "{path}: {kind} without annotations"
                );
            }
        }
    }
    assert!(seen > 0, "the example fleet has Docker-provider clusters");
}

#[test]
fn rerender_without_change_makes_no_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("fleet");
    render_into(&["examples/edge-fleet"], &repo);
    let first = head(&repo);
    let out = render_into(&["examples/edge-fleet"], &repo);
    assert!(out.contains("no changes"), "{out}");
    assert_eq!(head(&repo), first);
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]), "1");
}

#[test]
fn renders_are_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    render_into(&["examples/edge-fleet"], &a);
    render_into(&["examples/edge-fleet"], &b);
    assert_eq!(
        git(&a, &["rev-parse", "HEAD^{tree}"]),
        git(&b, &["rev-parse", "HEAD^{tree}"])
    );
    assert_eq!(files(&a), files(&b));
    // Same time, same everything: the commits are identical too.
    assert_eq!(head(&a), head(&b));
}

#[test]
fn adding_a_site_is_planned_before_it_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("fleet");
    render_into(&["examples/edge-fleet"], &repo);
    let before = head(&repo);
    let site = tmp.path().join("new-site.yaml");
    std::fs::write(
        &site,
        "apiVersion: atoll.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: edge-marseille\n  labels: {region: eu-west, zone: eu-west-3, tier: edge, edge: \"true\", gpu: \"false\"}\nspec:\n  catalog: edge\n",
    )
    .unwrap();
    let out = ok(&atoll(&[
        "plan",
        "examples/edge-fleet",
        site.to_str().unwrap(),
        "--repo",
        repo.to_str().unwrap(),
        "-o",
        "json",
    ]));
    let plan: Vec<Value> = serde_json::from_str(&out).unwrap();
    let by: std::collections::BTreeMap<&str, &Value> = plan
        .iter()
        .map(|p| (p["cluster"].as_str().unwrap(), p))
        .collect();
    assert_eq!(by["edge-marseille"]["status"], "new");
    // The retail store apps follow the edge label: they are in the new site's package.
    let paths: Vec<&str> = by["edge-marseille"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"clusters/edge-marseille/apps/retail/pos/components.yaml"),
        "{paths:?}"
    );
    // No other cluster changes; only the fleet's allocation state grows.
    assert_eq!(
        by.keys().copied().collect::<Vec<_>>(),
        vec!["(fleet)", "edge-marseille"]
    );
    assert_eq!(head(&repo), before, "plan writes nothing");
    // Text plan, piped: plain, no colour codes.
    let text = ok(&atoll(&[
        "plan",
        "examples/edge-fleet",
        site.to_str().unwrap(),
        "--repo",
        repo.to_str().unwrap(),
    ]));
    assert!(
        text.contains("+ edge-marseille") && !text.contains('\x1b'),
        "{text}"
    );
    // Allocations already made do not move when the site is added.
    let old_alloc = files(&repo)["state/allocations.yaml"].clone();
    render_into(&["examples/edge-fleet", site.to_str().unwrap()], &repo);
    let new_alloc = files(&repo)["state/allocations.yaml"].clone();
    for line in old_alloc.lines() {
        assert!(new_alloc.contains(line), "allocation `{line}` moved");
    }
    assert!(new_alloc.contains("edge-marseille"));
}

#[test]
fn a_later_upstream_revision_upgrades_the_package() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = tmp.path().join("decl");
    copy_dir(&root().join("examples/edge-fleet"), &fleet);
    // Keep the relative path to the upstream catalog valid from the copy.
    let apps = std::fs::read_to_string(fleet.join("apps.yaml")).unwrap();
    let upstream = root().join("target/upstream-packages");
    std::fs::write(
        fleet.join("apps.yaml"),
        apps.replace("../../target/upstream-packages", upstream.to_str().unwrap()),
    )
    .unwrap();
    let pk = std::fs::read_to_string(fleet.join("packages.yaml")).unwrap();
    std::fs::write(
        fleet.join("packages.yaml"),
        pk.replace("../../target/upstream-packages", upstream.to_str().unwrap()),
    )
    .unwrap();
    let repo = tmp.path().join("fleet");
    render_into(&[fleet.to_str().unwrap()], &repo);
    let f = files(&repo);
    assert!(f["clusters/edge-paris/apps/retail/store-web/deployment.yaml"].contains("nginx:1.27"));
    let v1_commit = git(&upstream, &["rev-parse", "v1"]);
    assert!(f["clusters/edge-paris/apps/retail/store-web/Kptfile"].contains(&v1_commit));
    // Namespace injected, cluster context filled by functions on the data.
    assert!(
        f["clusters/edge-paris/apps/retail/store-web/deployment.yaml"]
            .contains("namespace: retail-web")
    );
    assert!(
        f["clusters/edge-paris/apps/retail/store-web/context.yaml"].contains("cluster: edge-paris")
    );

    std::fs::write(
        fleet.join("apps.yaml"),
        std::fs::read_to_string(fleet.join("apps.yaml"))
            .unwrap()
            .replace("revision: v1", "revision: v2"),
    )
    .unwrap();
    let out = ok(&atoll(&[
        "plan",
        fleet.to_str().unwrap(),
        "--repo",
        repo.to_str().unwrap(),
        "-o",
        "json",
    ]));
    let plan: Vec<Value> = serde_json::from_str(&out).unwrap();
    let edge: Vec<&Value> = plan
        .iter()
        .filter(|p| p["cluster"].as_str().unwrap().starts_with("edge-"))
        .collect();
    assert_eq!(edge.len(), 6, "every edge site gets the new revision");
    render_into(&[fleet.to_str().unwrap()], &repo);
    let f = files(&repo);
    assert!(f["clusters/edge-paris/apps/retail/store-web/deployment.yaml"].contains("nginx:1.29"));
    assert!(
        f["clusters/edge-paris/apps/retail/store-web/Kptfile"]
            .contains(&git(&upstream, &["rev-parse", "v2"]))
    );
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]), "2");
    let msg = git(&repo, &["log", "-1", "--format=%B"]);
    assert!(msg.contains("edge-paris: changed (+0 ~2 -0)"), "{msg}");
}

#[test]
fn seed_examples_render_and_validate() {
    let tmp = tempfile::tempdir().unwrap();
    for seed in [
        "000-workload-deployment",
        "001-lkaas",
        "003-charity",
        "004-control-plane",
    ] {
        let repo = tmp.path().join(seed);
        render_into(&[&format!("examples/seeds/{seed}")], &repo);
        validate_tree(&repo);
        kustomize_all(&repo);
    }
}

/// The in-memory lab (what the lifecycle test applies to real Cluster API) is valid against
/// the upstream schemas too.
#[test]
fn in_memory_lab_renders_and_validates() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("lab");
    render_into(&["examples/in-memory-lab"], &repo);
    validate_tree(&repo);
    // Its clusters run no applications (empty packages): kustomize builds the management side.
    for c in ["lab-a", "lab-b"] {
        let out = std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(repo.join("management/clusters").join(c))
            .output()
            .expect("kubectl on PATH");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("kind: DevCluster") && text.contains("kind: KubeadmControlPlane"),
            "{text}"
        );
    }
}

#[test]
fn crds_are_structural_and_valid_crd_objects() {
    let out = ok(&atoll(&["crds"]));
    let crds = atoll_conformance::objects(&out);
    assert_eq!(crds.len(), 11);
    fn structural(s: &Value, path: &str, errs: &mut Vec<String>) {
        let preserve = s["x-kubernetes-preserve-unknown-fields"] == true;
        if s.get("type").is_none() && !preserve && s["x-kubernetes-int-or-string"] != true {
            errs.push(format!("{path}: no type"));
        }
        for (k, v) in s["properties"].as_object().into_iter().flatten() {
            structural(v, &format!("{path}.{k}"), errs);
        }
        if let Some(i) = s.get("items") {
            structural(i, &format!("{path}[]"), errs);
        }
        if let Some(a) = s.get("additionalProperties").filter(|a| a.is_object()) {
            structural(a, &format!("{path}{{}}"), errs);
        }
    }
    for crd in &crds {
        schemas().validate(crd).unwrap();
        let mut errs = Vec::new();
        for v in crd["spec"]["versions"].as_array().unwrap() {
            structural(
                &v["schema"]["openAPIV3Schema"],
                crd["metadata"]["name"].as_str().unwrap(),
                &mut errs,
            );
        }
        assert!(errs.is_empty(), "not structural: {errs:?}");
    }
}

#[test]
fn convert_prints_atoll_kinds_for_seed_003() {
    let out = ok(&atoll(&[
        "convert",
        "examples/seeds/003-charity/lowlevelorchestration.yaml",
    ]));
    let objs = atoll_conformance::objects(&out);
    let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"Cluster")
            && kinds.contains(&"Application")
            && kinds.contains(&"LogicalCluster")
            && kinds.contains(&"Team"),
        "{kinds:?}"
    );
    let green = objs
        .iter()
        .find(|o| o["metadata"]["name"] == "kubeadm-based-orchestration-green")
        .unwrap();
    assert_eq!(
        green["spec"]["overrides"]["infrastructure"]["kubernetesVersion"],
        "v1.25.0"
    );
    // The converted output is itself valid input.
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("converted.yaml");
    std::fs::write(&f, &out).unwrap();
    ok(&atoll(&["validate", f.to_str().unwrap()]));
}

/// Commits made by someone else on top of atoll's last render, touching atoll's folders, are
/// drift: `plan` lists them and shows the clusters that change back, `render` puts every file
/// back (without `--full`), and atoll's state files are read from its own last render.
#[test]
fn hand_edits_committed_in_rendered_paths_are_drift_that_render_undoes() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("fleet");
    render_into(&["examples/edge-fleet"], &repo);
    let rendered = git(&repo, &["rev-parse", "HEAD^{tree}"]);
    let kust = repo.join("clusters/edge-paris/kustomization.yaml");
    let mut text = std::fs::read_to_string(&kust).unwrap();
    text.push_str("# tuned by hand\n");
    std::fs::write(&kust, text).unwrap();
    // Allocations edited to steal another cluster's block: must not be believed.
    std::fs::write(repo.join("state/allocations.yaml"), "pools: {}\n").unwrap();
    std::fs::write(repo.join("management/extra.yaml"), "kind: Secret\n").unwrap();
    std::fs::remove_file(repo.join("management/gitops/edge-lyon.yaml")).unwrap();
    git(&repo, &["add", "-A"]);
    git(
        &repo,
        &[
            "-c",
            "user.name=bob",
            "-c",
            "user.email=bob@example.net",
            "commit",
            "-qm",
            "hand edits",
        ],
    );
    let r = repo.to_str().unwrap();
    let out = atoll(&["plan", "examples/edge-fleet", "--repo", r]);
    let (plan, err) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "{err}");
    assert!(err.contains("drift: 4 file(s)"), "{err}");
    for p in [
        "clusters/edge-paris/kustomization.yaml",
        "state/allocations.yaml",
        "management/extra.yaml",
        "management/gitops/edge-lyon.yaml",
    ] {
        assert!(err.contains(p), "{p} not listed:\n{err}");
        assert!(plan.contains(p), "{p} not planned:\n{plan}");
    }
    let out = render_into(&["examples/edge-fleet"], &repo);
    assert!(out.contains("committed"), "{out}");
    assert_eq!(git(&repo, &["rev-parse", "HEAD^{tree}"]), rendered);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    let again = render_into(&["examples/edge-fleet"], &repo);
    assert!(again.contains("no changes"), "{again}");
}

/// A Kubernetes upgrade that skips a minor (or goes down) is refused at plan time, naming the
/// cluster's declaration, with nothing written; one minor at a time goes through.
#[test]
fn version_skips_are_refused_in_plan_and_render() {
    let tmp = tempfile::tempdir().unwrap();
    let decl = tmp.path().join("x/fleet");
    std::fs::create_dir_all(&decl).unwrap();
    for e in std::fs::read_dir(root().join("examples/edge-fleet")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, decl.join(p.file_name().unwrap())).unwrap();
    }
    std::os::unix::fs::symlink(root().join("target"), tmp.path().join("target")).unwrap();
    let repo = tmp.path().join("repo");
    let d = decl.to_str().unwrap();
    let r = repo.to_str().unwrap();
    let up = tmp.path().join("target").canonicalize().unwrap();
    let up = up.to_str().unwrap();
    ok(&atoll(&["render", d, "--repo", r, "--upstream-root", up]));
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let clusters = decl.join("clusters.yaml");
    let text = std::fs::read_to_string(&clusters).unwrap();
    let with = |v: &str| {
        text.replacen(
            "  catalog: core\n",
            &format!(
                "  catalog: core\n  overrides:\n    infrastructure: {{kubernetesVersion: {v}}}\n"
            ),
            1,
        )
    };
    for (v, why) in [
        ("v1.36.1", "skips a minor version"),
        ("v1.33.0", "is a downgrade"),
    ] {
        std::fs::write(&clusters, with(v)).unwrap();
        for cmd in ["plan", "render"] {
            let out = atoll(&[cmd, d, "--repo", r, "--upstream-root", up]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{cmd} {v} succeeded");
            assert!(err.contains(why) && err.contains("core-eu-west"), "{err}");
            assert!(err.contains("clusters.yaml:"), "{err}");
        }
        assert_eq!(git(&repo, &["rev-parse", "HEAD"]), head);
    }
    std::fs::write(&clusters, with("v1.35.0")).unwrap();
    let out = ok(&atoll(&["render", d, "--repo", r, "--upstream-root", up]));
    assert!(out.contains("committed"), "{out}");
}
