//! Upgrade waves through the one pipeline, with a fixed clock and the health a shell would
//! observe: a Kubernetes version bump over three clusters under `maxUnavailable: 1` commits
//! one wave at a time; a wave is released only after the previous one is healthy and baked;
//! `paused` holds the next wave; a wave that misses its deadline stops the rollout naming the
//! cluster, and a pipeline opened afresh on the repository (a restarted shell) goes on from
//! what Git says.

use atoll_model::Model;
use atoll_pipeline::rollout::{Health, Phase};
use atoll_pipeline::{Options, Pipeline, Reuse, UpstreamSources};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const FLEET: &str = r#"apiVersion: atoll.dev/v1alpha1
kind: Fleet
metadata: {name: lab}
spec:
  managementNamespace: fleet-clusters
  rollout:
    orderBy: [zone]
    maxUnavailable: 1
    bakeTime: 1m
    progressDeadline: 10m
    paused: PAUSED
---
apiVersion: atoll.dev/v1alpha1
kind: IPPool
metadata: {name: pods}
spec: {purpose: pod, cidrs: ["10.64.0.0/10"], prefixLength: 16}
---
apiVersion: atoll.dev/v1alpha1
kind: IPPool
metadata: {name: services}
spec: {purpose: service, cidrs: ["10.32.0.0/12"], prefixLength: 20}
---
apiVersion: atoll.dev/v1alpha1
kind: InfrastructureProfile
metadata: {name: in-memory-1.0.0}
spec:
  type: Infrastructure
  profileName: in-memory
  revision: 1.0.0
  infrastructure: {provider: in-memory, bootstrap: kubeadm, kubernetesVersion: v1.34.2, controlPlaneCount: 1, workerCount: 1}
---
apiVersion: atoll.dev/v1alpha1
kind: InfrastructureProfile
metadata: {name: in-memory-1.1.0}
spec:
  type: Infrastructure
  profileName: in-memory
  revision: 1.1.0
  infrastructure: {provider: in-memory, bootstrap: kubeadm, kubernetesVersion: v1.35.0, controlPlaneCount: 1, workerCount: 1}
---
apiVersion: atoll.dev/v1alpha1
kind: InfrastructureProfile
metadata: {name: calico-1.0.0}
spec:
  type: Network
  profileName: calico
  revision: 1.0.0
  network: {cni: calico, version: v3.29.1, podPool: pods, servicePool: services}
---
apiVersion: atoll.dev/v1alpha1
kind: ClusterCatalog
metadata: {name: lab}
spec:
  infrastructure: {name: in-memory, revision: REVISION}
  network: {name: calico, revision: 1.0.0}
---
apiVersion: atoll.dev/v1alpha1
kind: Cluster
metadata: {name: lab-c, labels: {zone: z3}}
spec: {catalog: lab}
---
apiVersion: atoll.dev/v1alpha1
kind: Cluster
metadata: {name: lab-a, labels: {zone: z1}}
spec: {catalog: lab}
---
apiVersion: atoll.dev/v1alpha1
kind: Cluster
metadata: {name: lab-b, labels: {zone: z2}}
spec: {catalog: lab}
"#;

fn model(dir: &Path, revision: &str, paused: bool) -> Model {
    let file = dir.join("fleet.yaml");
    std::fs::write(
        &file,
        FLEET
            .replace("REVISION", revision)
            .replace("PAUSED", if paused { "true" } else { "false" }),
    )
    .unwrap();
    atoll_model::load_model(&[file]).expect("the lab validates")
}

fn open(repo: &Path) -> Pipeline {
    Pipeline::open(
        repo,
        Options {
            create: true,
            bare: true,
            disk_cache: Reuse::Nothing,
            writer: "test".into(),
            sources: UpstreamSources::files(vec![PathBuf::from("/")]),
            remote: None,
        },
    )
    .unwrap()
}

fn show(repo: &Path, path: &str) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(["show", &format!("HEAD:{path}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The Kubernetes version each cluster's KubeadmControlPlane has in HEAD.
fn versions(repo: &Path) -> Vec<String> {
    ["lab-a", "lab-b", "lab-c"]
        .iter()
        .map(|c| {
            let cp = show(repo, &format!("management/clusters/{c}/control-plane.yaml"));
            let v = cp
                .lines()
                .find_map(|l| l.trim().strip_prefix("version: "))
                .unwrap_or("?")
                .to_string();
            format!("{c}={v}")
        })
        .collect()
}

fn healthy(clusters: &[(&str, &str, bool)]) -> BTreeMap<String, Health> {
    clusters
        .iter()
        .map(|(c, v, ready)| {
            (
                c.to_string(),
                Health {
                    version: Some(v.to_string()),
                    ready: *ready,
                    message: if *ready {
                        String::new()
                    } else {
                        "MachineDeployment lab-b-workers: 0 of 1 ready".into()
                    },
                },
            )
        })
        .collect()
}

/// Plans and commits at `now`; returns the fleet rollout's report and whether it committed.
fn step(p: &mut Pipeline, m: &Model, now: u64) -> (Option<atoll_pipeline::rollout::Report>, bool) {
    p.set_clock(now);
    let plan = p.plan(m, false, true).unwrap();
    let report = plan.change.rollouts.first().cloned();
    let done = p.commit(plan, None).unwrap();
    (report, done.commit.is_some())
}

#[test]
fn a_version_bump_rolls_out_one_healthy_wave_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("fleet.git");
    let v1 = model(tmp.path(), "1.0.0", false);
    let mut p = open(&repo);

    // New clusters are built at once: no rollout, no state.
    let (r, committed) = step(&mut p, &v1, 1000);
    assert!(committed && r.is_none(), "{r:?}");
    assert_eq!(
        versions(&repo),
        ["lab-a=v1.34.2", "lab-b=v1.34.2", "lab-c=v1.34.2"]
    );
    assert_eq!(show(&repo, "state/rollout.yaml"), "");

    // The bump: wave 1 (zone z1) is committed, the others keep their old spec in Git.
    let v2 = model(tmp.path(), "1.1.0", false);
    let (r, committed) = step(&mut p, &v2, 2000);
    let r = r.expect("a rollout");
    assert!(committed);
    assert_eq!(r.waves, [["lab-a"], ["lab-b"], ["lab-c"]]);
    assert_eq!((r.released, r.phase), (1, Phase::Rolling), "{r:?}");
    assert_eq!(r.wave_of("lab-c"), Some((3, false)));
    assert_eq!(
        versions(&repo),
        ["lab-a=v1.35.0", "lab-b=v1.34.2", "lab-c=v1.34.2"]
    );
    assert!(show(&repo, "state/clusters/lab-b.yaml").contains("v1.34.2"));
    assert!(show(&repo, "state/inputs.tsv").contains("lab-b\theld-by-rollout"));
    assert!(show(&repo, "state/rollout.yaml").contains("released: 1"));

    // Without health (a shell that does not observe), nothing moves and nothing is committed.
    let (r, committed) = step(&mut p, &v2, 2010);
    assert!(!committed);
    assert!(r.unwrap().message.contains("judged by the operator"));

    // lab-a still rolling: wave 2 waits.
    p.set_health(healthy(&[("lab-a", "v1.34.2", true)]));
    let (r, _) = step(&mut p, &v2, 2020);
    let r = r.unwrap();
    assert_eq!((r.released, r.phase), (1, Phase::Rolling));
    assert_eq!(r.waiting_on, ["lab-a"]);

    // lab-a healthy on v1.35.0: the bake starts; wave 2 is not released before it ends.
    p.set_health(healthy(&[("lab-a", "v1.35.0", true)]));
    let (r, _) = step(&mut p, &v2, 2030);
    assert_eq!(r.unwrap().phase, Phase::Baking);
    let (r, _) = step(&mut p, &v2, 2060);
    assert_eq!(r.unwrap().phase, Phase::Baking);
    assert_eq!(versions(&repo)[1], "lab-b=v1.34.2");

    // Paused: the baked wave is not followed by the next.
    let paused = model(tmp.path(), "1.1.0", true);
    let (r, _) = step(&mut p, &paused, 2100);
    assert_eq!(r.unwrap().phase, Phase::Paused);
    assert_eq!(versions(&repo)[1], "lab-b=v1.34.2");

    // Resumed after the bake: wave 2 released.
    let (r, committed) = step(&mut p, &v2, 2110);
    let r = r.unwrap();
    assert!(committed);
    assert_eq!((r.released, r.phase), (2, Phase::Rolling), "{r:?}");
    assert_eq!(
        versions(&repo),
        ["lab-a=v1.35.0", "lab-b=v1.35.0", "lab-c=v1.34.2"]
    );

    // lab-b's workers never become ready: past the deadline the rollout fails, naming it.
    p.set_health(healthy(&[
        ("lab-a", "v1.35.0", true),
        ("lab-b", "v1.35.0", false),
    ]));
    let (r, _) = step(&mut p, &v2, 2110 + 500);
    assert_eq!(r.unwrap().phase, Phase::Rolling);
    let (r, _) = step(&mut p, &v2, 2110 + 601);
    let r = r.unwrap();
    assert_eq!(r.phase, Phase::Failed, "{r:?}");
    assert!(
        r.message.contains("cluster lab-b") && r.message.contains("0 of 1 ready"),
        "{}",
        r.message
    );
    assert_eq!(versions(&repo)[2], "lab-c=v1.34.2");

    // A restarted shell (a new pipeline on the same repository) goes on from Git: still
    // failed, lab-c still held.
    drop(p);
    let mut p = open(&repo);
    p.set_health(healthy(&[
        ("lab-a", "v1.35.0", true),
        ("lab-b", "v1.35.0", false),
    ]));
    let (r, committed) = step(&mut p, &v2, 3000);
    assert_eq!(r.unwrap().phase, Phase::Failed);
    assert!(!committed);
    assert_eq!(versions(&repo)[2], "lab-c=v1.34.2");

    // lab-b recovers: baked, then the last wave; the rollout is complete.
    p.set_health(healthy(&[
        ("lab-a", "v1.35.0", true),
        ("lab-b", "v1.35.0", true),
    ]));
    let (r, _) = step(&mut p, &v2, 3010);
    assert_eq!(r.unwrap().phase, Phase::Baking);
    let (r, _) = step(&mut p, &v2, 3100);
    let r = r.unwrap();
    assert_eq!((r.released, r.phase), (3, Phase::Complete), "{r:?}");
    assert_eq!(
        versions(&repo),
        ["lab-a=v1.35.0", "lab-b=v1.35.0", "lab-c=v1.35.0"]
    );
    assert!(!show(&repo, "state/inputs.tsv").contains("held-by-rollout"));
    assert!(show(&repo, "state/rollout.yaml").contains("rollouts: {}"));
    // Nothing left to do.
    let (r, committed) = step(&mut p, &v2, 3200);
    assert!(!committed && r.is_none(), "{r:?}");
}

/// A catalog's own policy governs its clusters instead of the Fleet's: here the catalog
/// rolls two clusters at a time, so the same bump is one wave for lab-a and lab-b.
#[test]
fn a_catalog_policy_overrides_the_fleets() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("fleet.git");
    let with_catalog_policy = |revision: &str| {
        let file = tmp.path().join("fleet.yaml");
        let text = FLEET
            .replace("REVISION", revision)
            .replace("PAUSED", "false")
            .replace(
                "  network: {name: calico, revision: 1.0.0}\n",
                "  network: {name: calico, revision: 1.0.0}\n  rollout: {orderBy: [zone], maxUnavailable: 2}\n",
            );
        assert!(text.contains("maxUnavailable: 2"));
        std::fs::write(&file, text).unwrap();
        atoll_model::load_model(&[file]).expect("valid")
    };
    let mut p = open(&repo);
    step(&mut p, &with_catalog_policy("1.0.0"), 1000);
    let (r, _) = step(&mut p, &with_catalog_policy("1.1.0"), 2000);
    let r = r.expect("a rollout");
    assert_eq!(r.policy, "catalog/lab");
    assert_eq!(r.waves, vec![vec!["lab-a", "lab-b"], vec!["lab-c"]]);
    assert_eq!(
        versions(&repo),
        ["lab-a=v1.35.0", "lab-b=v1.35.0", "lab-c=v1.34.2"]
    );
}

/// A policy is validated where it is declared.
#[test]
fn a_bad_policy_names_its_field() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("fleet.yaml");
    std::fs::write(
        &file,
        FLEET
            .replace("REVISION", "1.0.0")
            .replace("PAUSED", "false")
            .replace("maxUnavailable: 1", "maxUnavailable: 0")
            .replace("bakeTime: 1m", "bakeTime: soon"),
    )
    .unwrap();
    let err = atoll_model::load_model(&[file]).unwrap_err().to_string();
    assert!(
        err.contains("spec.rollout.maxUnavailable") && err.contains("at least 1"),
        "{err}"
    );
    assert!(
        err.contains("spec.rollout.bakeTime") && err.contains("`soon` is not a duration"),
        "{err}"
    );
    assert!(err.contains("fleet.yaml:"), "{err}");
}
