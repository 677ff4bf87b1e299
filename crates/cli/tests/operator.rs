//! `atoll operator` against a real kube-apiserver + etcd (testenv/), installed with its own
//! `atoll operator manifests` and running as its ServiceAccount (so the least-privilege RBAC is
//! what is exercised), committing to a real Git repository. The Cluster API CRDs come from
//! ../shared/schemas; no Cluster API controllers run, so a test plays their part where one is
//! needed (writing a CAPI Cluster's phase).

mod common;
use atoll_testenv::ApiServer;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NS: &str = "atoll-system";
const MGMT: &str = "fleet-clusters";
/// Short, so failover in the two-replica test takes seconds.
const LEASE_SECS: &str = "6";

struct Env {
    api: ApiServer,
    repo: PathBuf,
    /// The Git remote every operator publishes to (a bare repository, pushed to by path).
    remote: PathBuf,
    _tmp: tempfile::TempDir,
}

fn setup() -> Env {
    ensure_upstream();
    let api = ApiServer::start().unwrap();
    install_upstream_crds(&api);
    let manifests = api.dir().join("operator.yaml");
    std::fs::write(
        &manifests,
        ok(&atoll(&[
            "operator",
            "manifests",
            "--management-namespace",
            "fleet-clusters",
        ])),
    )
    .unwrap();
    succeeded(
        &kubectl(
            &api,
            &["apply", "--server-side", "-f", manifests.to_str().unwrap()],
        ),
        "kubectl apply the operator manifests",
    );
    wait_established(&api);
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
    Env {
        api,
        repo: tmp.path().join("fleet.git"),
        remote,
        _tmp: tmp,
    }
}

impl Env {
    /// A kubeconfig for a ServiceAccount in atoll-system (a real signed token).
    fn kubeconfig_for(&self, sa: &str) -> PathBuf {
        let token = succeeded(
            &kubectl(
                &self.api,
                &["create", "token", sa, "-n", NS, "--duration=2h"],
            ),
            "kubectl create token",
        );
        self.api.kubeconfig_with_token(sa, token.trim()).unwrap()
    }

    fn start(&self, identity: &str, kubeconfig: &Path, fault: Option<&str>) -> Operator {
        let log = self.api.dir().join(format!("{identity}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atoll"));
        cmd.args(["operator", "run", "--bare", "--repo"])
            .arg(&self.repo)
            .arg("--remote")
            .arg(&self.remote)
            .args([
                "--upstream-base",
                "examples/edge-fleet",
                "--upstream-root",
                "target/upstream-packages",
                "--lease-namespace",
                NS,
                "--identity",
                identity,
                "--lease-duration",
                LEASE_SECS,
                "--resync",
                "30",
            ])
            .current_dir(root())
            .env("KUBECONFIG", kubeconfig)
            .env("SOURCE_DATE_EPOCH", "1767225600")
            .env_remove("ATOLL_FAULT")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(f) = fault {
            cmd.env("ATOLL_FAULT", f);
        }
        Operator {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    fn kubectl(&self, args: &[&str]) -> String {
        succeeded(&kubectl(&self.api, args), &format!("kubectl {args:?}"))
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&a)).unwrap()
    }

    fn git(&self, args: &[&str]) -> String {
        git(&self.repo, args)
    }

    fn head(&self) -> String {
        head(&self.repo)
    }

    /// `commit` is HEAD or an ancestor of it where every one of `dirs` is as in HEAD: what
    /// an object's `status.commit` promises about its rendering.
    fn same_rendering(&self, commit: &str, dirs: &[String]) -> bool {
        let ok = |args: &[&str]| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(&self.repo)
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if commit.is_empty() || !ok(&["merge-base", "--is-ancestor", commit, "HEAD"]) {
            return false;
        }
        dirs.iter().all(|dir| {
            let at = |rev: &str| {
                std::process::Command::new("git")
                    .arg("-C")
                    .arg(&self.repo)
                    .args(["rev-parse", "-q", "--verify", &format!("{rev}:{dir}")])
                    .output()
                    .map(|o| o.stdout)
                    .unwrap_or_default()
            };
            at(commit) == at("HEAD")
        })
    }

    /// Paths in HEAD.
    fn tree(&self) -> Vec<String> {
        self.git(&["ls-tree", "-r", "--name-only", "HEAD"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `kubectl apply -f examples/edge-fleet`, after creating the teams' namespaces (where
    /// their Applications and TargetPolicies live), as a platform admin would.
    fn apply_example(&self) {
        for ns in ["analytics", "retail", "platform"] {
            self.kubectl(&["create", "namespace", ns]);
        }
        let dir = root().join("examples/edge-fleet");
        self.kubectl(&["apply", "-f", dir.to_str().unwrap()]);
    }

    /// CAPI objects of one cluster, as `kind/name` → object.
    fn capi(&self, cluster: &str) -> Vec<Value> {
        let kinds = "clusters.cluster.x-k8s.io,machinedeployments.cluster.x-k8s.io,kthreescontrolplanes.controlplane.cluster.x-k8s.io,kubeadmcontrolplanes.controlplane.cluster.x-k8s.io,devclusters.infrastructure.cluster.x-k8s.io,openstackclusters.infrastructure.cluster.x-k8s.io,configmaps";
        let sel = format!("atoll.dev/cluster={cluster}");
        self.json(&[
            "get",
            kinds,
            "-n",
            MGMT,
            "-l",
            &sel,
            "--show-managed-fields",
        ])["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn atoll_clusters(&self) -> Vec<Value> {
        self.json(&["get", "clusters.atoll.dev"])["items"]
            .as_array()
            .unwrap()
            .clone()
    }
}

struct Operator {
    child: Child,
    log: PathBuf,
}

impl Operator {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no clean-up, no Lease release
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it returns Ok, or fails with its last complaint and the logs.
fn wait_until(
    what: &str,
    secs: u64,
    ops: &[&Operator],
    mut check: impl FnMut() -> Result<(), String>,
) {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(secs) {
        match check() {
            Ok(()) => return,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let logs: Vec<String> = ops.iter().map(|o| o.log()).collect();
    panic!(
        "timed out after {secs} s waiting for {what}: {last}\noperator logs:\n{}",
        logs.join("\n----\n")
    );
}

fn condition<'a>(obj: &'a Value, t: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
}

fn is_true(obj: &Value, t: &str) -> bool {
    condition(obj, t).is_some_and(|c| c["status"] == "True")
}

/// Every atoll Cluster is Ready for its current generation at `commit`, and (except
/// those without Cluster API objects) has its CAPI Cluster.
fn converged(env: &Env, expect: usize) -> Result<(), String> {
    let head = env.head();
    if head.is_empty() {
        return Err("no commit yet".into());
    }
    let clusters = env.atoll_clusters();
    if clusters.len() != expect {
        return Err(format!("{} atoll Clusters", clusters.len()));
    }
    for c in &clusters {
        let name = c["metadata"]["name"].as_str().unwrap();
        if !is_true(c, "Ready") {
            return Err(format!("{name} not Ready: {}", c["status"]));
        }
        if c["status"]["observedGeneration"] != c["metadata"]["generation"] {
            return Err(format!("{name}: observedGeneration behind"));
        }
        let at = c["status"]["commit"].as_str().unwrap_or("");
        let dirs = [
            format!("clusters/{name}"),
            format!("management/clusters/{name}"),
        ];
        if !env.same_rendering(at, &dirs) {
            return Err(format!(
                "{name}: its rendering at status.commit {at} is not HEAD's ({head})"
            ));
        }
    }
    // Applications too: a TargetPolicy or Team observed in a later pass than the Clusters
    // places more of them, in a later commit.
    let apps = env.json(&["get", "applications.atoll.dev", "-A"]);
    for a in apps["items"].as_array().unwrap() {
        let name = a["metadata"]["name"].as_str().unwrap();
        let placed: Vec<String> = a["status"]["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        let team = a["metadata"]["namespace"].as_str().unwrap_or("");
        let dirs: Vec<String> = placed
            .iter()
            .map(|c| format!("clusters/{c}/apps/{team}/{name}"))
            .collect();
        let at = a["status"]["commit"].as_str().unwrap_or("");
        if !is_true(a, "Ready") || !env.same_rendering(at, &dirs) {
            return Err(format!(
                "Application {name} not Ready at HEAD: {}",
                a["status"]
            ));
        }
    }
    let capi = env.kubectl(&["get", "clusters.cluster.x-k8s.io", "-n", MGMT, "-o", "name"]);
    let in_git = env
        .tree()
        .iter()
        .filter(|p| p.starts_with("management/clusters/") && p.ends_with("/cluster.yaml"))
        .count();
    if capi.lines().count() != in_git {
        return Err(format!(
            "{} CAPI Clusters, {in_git} in Git",
            capi.lines().count()
        ));
    }
    Ok(())
}

#[test]
fn operator_reconciles_scales_upgrades_reports_and_cleans_up() {
    let env = setup();
    let kc = env.kubeconfig_for("atoll-operator");
    let op = env.start("op-0", &kc, None);
    env.apply_example();
    wait_until("the example fleet to converge", 120, &[&op], || {
        converged(&env, 13)
    });

    // Git has every cluster's package and the management objects.
    let tree = env.tree();
    for p in [
        "clusters/edge-paris/kustomization.yaml",
        "management/clusters/edge-paris/cluster.yaml",
        "management/gitops/edge-paris.yaml",
        "state/inputs.tsv",
    ] {
        assert!(tree.iter().any(|t| t == p), "{p} not in Git");
    }
    let commits =
        |env: &Env| -> usize { env.git(&["rev-list", "--count", "HEAD"]).parse().unwrap() };
    let converged_at = commits(&env);
    // Published: the remote holds the operator's HEAD.
    wait_until("the operator to push", 30, &[&op], || {
        let remote = git(&env.remote, &["rev-parse", "main"]);
        if remote == env.head() {
            Ok(())
        } else {
            Err(format!("remote {remote}, HEAD {}", env.head()))
        }
    });
    // The same pipeline as the CLI: the same declarations give the same tree.
    let cli = tempfile::tempdir().unwrap();
    ok(&atoll(&[
        "render",
        "examples/edge-fleet",
        "--bare",
        "--repo",
        cli.path().to_str().unwrap(),
    ]));
    // Eventually: `converged` sees the objects' statuses, and a pass for a declaration that
    // reached the watch last may still be on its way.
    let cli_tree = git(cli.path(), &["rev-parse", "HEAD^{tree}"]);
    wait_until(
        "the operator's tree to be `atoll render`'s",
        30,
        &[&op],
        || {
            let tree = env.git(&["rev-parse", "HEAD^{tree}"]);
            if tree == cli_tree {
                Ok(())
            } else {
                Err(format!("operator {tree}, atoll render {cli_tree}"))
            }
        },
    );

    // The observed side is in the status: no workload cluster runs here, so no kubeconfig
    // Secret exists yet — said as such (the operator may read Secrets in the management
    // namespace, so it is not a permission error). The agents are swept beside the passes,
    // so the first sweep's report may follow the first commit by a moment.
    wait_until("the agents' sweep in the status", 60, &[&op], || {
        let paris = env.json(&["get", "clusters.atoll.dev", "edge-paris"]);
        let pos = env.json(&["get", "applications.atoll.dev", "-n", "retail", "pos"]);
        if paris["status"]["sync"].is_null() || pos["status"]["atHead"].is_null() {
            return Err(format!("{} / {}", paris["status"], pos["status"]));
        }
        Ok(())
    });
    let paris = env.json(&["get", "clusters.atoll.dev", "edge-paris"]);
    let sync = &paris["status"]["sync"];
    assert_eq!(sync["state"], "Unreachable", "{sync}");
    assert!(
        sync["message"]
            .as_str()
            .unwrap()
            .contains("no Secret fleet-clusters/edge-paris-kubeconfig"),
        "{sync}"
    );
    let pos = env.json(&["get", "applications.atoll.dev", "-n", "retail", "pos"]);
    assert!(
        pos["status"]["atHead"].as_str().unwrap().starts_with("0/"),
        "{}",
        pos["status"]
    );

    // CAPI objects are owned by their atoll Cluster and managed by field manager `atoll`.
    let paris = env.json(&["get", "clusters.atoll.dev", "edge-paris"]);
    let uid = paris["metadata"]["uid"].as_str().unwrap();
    assert!(
        paris["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "atoll.dev/cleanup")
    );
    let objs = env.capi("edge-paris");
    assert!(objs.len() >= 5, "{} CAPI objects", objs.len());
    for o in &objs {
        let what = format!("{} {}", o["kind"], o["metadata"]["name"]);
        let owner = &o["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], uid, "{what}: owner");
        assert_eq!(owner["kind"], "Cluster", "{what}");
        assert_eq!(owner["apiVersion"], "atoll.dev/v1alpha1", "{what}");
        assert!(
            o["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["manager"] == "atoll" && m["operation"] == "Apply"),
            "{what}: not server-side applied by atoll"
        );
    }

    // Applications report where they are placed; other kinds are Ready too.
    let apps = env.json(&["get", "applications.atoll.dev", "-A"]);
    for a in apps["items"].as_array().unwrap() {
        let name = a["metadata"]["name"].as_str().unwrap();
        assert!(is_true(a, "Ready"), "{name}: {}", a["status"]);
        assert!(!is_true(a, "Stalled"), "{name}");
    }
    let store_web = env.json(&["get", "applications.atoll.dev", "store-web", "-n", "retail"]);
    let placed: Vec<&str> = store_web["status"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(placed.contains(&"edge-paris"), "{placed:?}");
    for c in &placed {
        assert!(
            tree.iter()
                .any(|p| p == &format!("clusters/{c}/apps/retail/store-web/kustomization.yaml")),
            "store-web reported on {c} but not in its package"
        );
    }
    let catalog = env.json(&["get", "clustercatalogs.atoll.dev", "edge"]);
    assert!(is_true(&catalog, "Ready"), "{}", catalog["status"]);

    // The CAPI phase is read back (a test plays the Cluster API controller here).
    env.kubectl(&[
        "patch",
        "clusters.cluster.x-k8s.io",
        "edge-paris",
        "-n",
        MGMT,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Provisioned"}}"#,
    ]);
    wait_until("the CAPI phase in status", 60, &[&op], || {
        let p = env.json(&["get", "clusters.atoll.dev", "edge-paris"]);
        (p["status"]["phase"] == "Provisioned")
            .then_some(())
            .ok_or(format!("phase {}", p["status"]["phase"]))
    });

    // Scaling workers and bumping Kubernetes patch the existing objects.
    let find = |kind: &str| -> Value {
        env.capi("edge-paris")
            .into_iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let md = find("MachineDeployment");
    let cp = find("KThreesControlPlane");
    env.kubectl(&[
        "patch",
        "clusters.atoll.dev",
        "edge-paris",
        "--type=merge",
        "-p",
        r#"{"spec":{"overrides":{"infrastructure":{"workerCount":7,"kubernetesVersion":"v1.34.3"}}}}"#,
    ]);
    wait_until("the scale-up and upgrade", 60, &[&op], || {
        let m = find("MachineDeployment");
        let c = find("KThreesControlPlane");
        if m["spec"]["replicas"] != 7 {
            return Err(format!("replicas {}", m["spec"]["replicas"]));
        }
        if !c["spec"]["version"]
            .as_str()
            .unwrap_or("")
            .starts_with("v1.34.3")
        {
            return Err(format!("version {}", c["spec"]["version"]));
        }
        converged(&env, 13)
    });
    let md2 = find("MachineDeployment");
    let cp2 = find("KThreesControlPlane");
    assert_eq!(
        md2["metadata"]["uid"], md["metadata"]["uid"],
        "MachineDeployment replaced"
    );
    assert_eq!(
        cp2["metadata"]["uid"], cp["metadata"]["uid"],
        "control plane replaced"
    );
    assert!(md2["metadata"]["generation"].as_i64() > md["metadata"]["generation"].as_i64());
    assert!(cp2["metadata"]["generation"].as_i64() > cp["metadata"]["generation"].as_i64());
    assert_eq!(commits(&env), converged_at + 1, "one change, one commit");
    let paris = env.json(&["get", "clusters.atoll.dev", "edge-paris"]);
    assert_eq!(
        paris["status"]["observedGeneration"],
        paris["metadata"]["generation"]
    );

    // An unresolvable reference stalls that object only; a new cluster beside it is built.
    let extra = env.api.dir().join("extra.yaml");
    std::fs::write(
        &extra,
        "apiVersion: atoll.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: edge-ghost\n  labels: {region: eu-west, tier: edge}\nspec:\n  catalog: no-such-catalog\n---\napiVersion: atoll.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: edge-nice\n  labels: {region: eu-west, tier: edge, gpu: \"false\"}\nspec:\n  catalog: edge\n",
    )
    .unwrap();
    env.kubectl(&["apply", "-f", extra.to_str().unwrap()]);
    wait_until("edge-ghost Stalled, edge-nice built", 60, &[&op], || {
        let ghost = env.json(&["get", "clusters.atoll.dev", "edge-ghost"]);
        let stalled = condition(&ghost, "Stalled").ok_or("no Stalled condition")?;
        if stalled["status"] != "True" {
            return Err(format!("ghost: {}", ghost["status"]));
        }
        let msg = stalled["message"].as_str().unwrap_or("");
        assert!(
            msg.contains("no-such-catalog"),
            "message does not name the reference: {msg}"
        );
        let nice = env.json(&["get", "clusters.atoll.dev", "edge-nice"]);
        if !is_true(&nice, "Ready") {
            return Err(format!("nice: {}", nice["status"]));
        }
        (!env.capi("edge-nice").is_empty())
            .then_some(())
            .ok_or("no CAPI objects for edge-nice".into())
    });
    let ghost = env.json(&["get", "clusters.atoll.dev", "edge-ghost"]);
    assert!(!is_true(&ghost, "Ready"));
    assert!(!env.tree().iter().any(|p| p.contains("edge-ghost")));
    assert!(env.capi("edge-ghost").is_empty());
    env.kubectl(&[
        "delete",
        "clusters.atoll.dev",
        "edge-ghost",
        "--timeout=60s",
    ]);

    // Deleting an Application removes it from every cluster's package before it goes.
    assert!(env.tree().iter().any(|p| p.contains("/apps/retail/pos/")));
    env.kubectl(&[
        "delete",
        "applications.atoll.dev",
        "pos",
        "-n",
        "retail",
        "--timeout=60s",
    ]);
    assert!(
        !env.tree().iter().any(|p| p.contains("/apps/retail/pos/")),
        "pos still in Git after its deletion completed"
    );

    // Deleting a Cluster deletes its CAPI objects and its packages before it goes.
    assert!(!env.capi("edge-nice").is_empty());
    env.kubectl(&["delete", "clusters.atoll.dev", "edge-nice", "--timeout=60s"]);
    assert!(env.capi("edge-nice").is_empty(), "CAPI objects left");
    assert!(
        !env.tree().iter().any(|p| p.contains("edge-nice")),
        "edge-nice still in Git"
    );
    wait_until("the fleet to settle", 60, &[&op], || converged(&env, 13));
    // The repository is sound.
    env.git(&["fsck", "--strict"]);
}

#[test]
fn operator_killed_mid_apply_loses_nothing_and_converges() {
    let env = setup();
    let kc = env.kubeconfig_for("atoll-operator");
    // The declarations first, so that the first pass sees the whole fleet.
    env.apply_example();
    let mut op = env.start("op-0", &kc, Some("mid-apply"));
    wait_until("the operator to reach the fault point", 120, &[&op], || {
        op.log()
            .contains("ATOLL-FAULT mid-apply")
            .then_some(())
            .ok_or("not yet".into())
    });
    // Mid-reconcile: committed, some CAPI objects applied, no status written.
    let commit = env.head();
    assert!(!commit.is_empty());
    let capi = env.kubectl(&["get", "clusters.cluster.x-k8s.io", "-n", MGMT, "-o", "name"]);
    assert!(
        capi.lines().count() < 12,
        "everything was applied already: {capi}"
    );
    assert!(env.atoll_clusters().iter().all(|c| !is_true(c, "Ready")));
    op.kill();

    // A new replica (another identity: it waits out the dead one's Lease) completes it.
    let op2 = env.start("op-1", &kc, None);
    wait_until("convergence after the restart", 120, &[&op2], || {
        converged(&env, 13)
    });
    assert_eq!(env.head(), commit, "the restart made another commit");
    assert_eq!(env.git(&["rev-list", "--count", "HEAD"]), "1");
    env.git(&["fsck", "--strict"]);
    for c in env.atoll_clusters() {
        let name = c["metadata"]["name"].as_str().unwrap();
        if env
            .tree()
            .iter()
            .any(|p| p == &format!("management/clusters/{name}/cluster.yaml"))
        {
            assert!(env.capi(name).len() >= 5, "{name}: CAPI objects missing");
        }
    }
}

/// Writes in the audit log by `user`, other than to Leases: (time, verb, resource/name).
fn writes_by(api: &ApiServer, user: &str) -> Vec<(String, String, String)> {
    api.audit_events()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["user"]["username"] == user && e["objectRef"]["resource"] != "leases")
        .filter(|e| e["responseStatus"]["code"].as_i64().unwrap_or(0) < 400)
        .map(|e| {
            (
                e["stageTimestamp"].as_str().unwrap_or("").to_string(),
                e["verb"].as_str().unwrap_or("").to_string(),
                format!(
                    "{}/{}",
                    e["objectRef"]["resource"].as_str().unwrap_or(""),
                    e["objectRef"]["name"].as_str().unwrap_or("")
                ),
            )
        })
        .collect()
}

#[test]
fn two_replicas_only_the_leader_writes_and_the_other_takes_over() {
    let env = setup();
    // A second ServiceAccount with the same roles, so the audit log tells the replicas apart.
    env.kubectl(&["create", "serviceaccount", "atoll-operator-b", "-n", NS]);
    let subject = r#"[{"op":"add","path":"/subjects/-","value":{"kind":"ServiceAccount","name":"atoll-operator-b","namespace":"atoll-system"}}]"#;
    env.kubectl(&[
        "patch",
        "clusterrolebinding",
        "atoll-operator",
        "--type=json",
        "-p",
        subject,
    ]);
    env.kubectl(&[
        "patch",
        "rolebinding",
        "atoll-operator-leader-election",
        "-n",
        NS,
        "--type=json",
        "-p",
        subject,
    ]);
    let user_a = "system:serviceaccount:atoll-system:atoll-operator";
    let user_b = "system:serviceaccount:atoll-system:atoll-operator-b";
    let mut a = env.start("op-a", &env.kubeconfig_for("atoll-operator"), None);
    wait_until("op-a to lead", 60, &[&a], || {
        a.log()
            .contains("op-a is the leader")
            .then_some(())
            .ok_or("not yet".into())
    });
    let b = env.start("op-b", &env.kubeconfig_for("atoll-operator-b"), None);
    wait_until("op-b to wait", 60, &[&b], || {
        b.log()
            .contains("op-b waiting for leadership")
            .then_some(())
            .ok_or("not yet".into())
    });
    env.apply_example();
    wait_until("convergence under op-a", 120, &[&a, &b], || {
        converged(&env, 13)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !writes_by(&env.api, user_a).is_empty(),
        "the leader wrote nothing"
    );
    assert_eq!(writes_by(&env.api, user_b), vec![], "the standby wrote");
    assert!(!b.log().contains("is the leader"));
    let lease = env.json(&["get", "lease", "atoll-operator", "-n", NS]);
    assert_eq!(lease["spec"]["holderIdentity"], "op-a");

    // The leader dies without releasing the Lease; the standby takes over once it expires.
    a.kill();
    let killed_at = writes_by(&env.api, user_a).last().unwrap().0.clone();
    wait_until("op-b to take over", 60, &[&b], || {
        b.log()
            .contains("op-b is the leader")
            .then_some(())
            .ok_or("not yet".into())
    });
    env.kubectl(&[
        "patch",
        "clusters.atoll.dev",
        "edge-lyon",
        "--type=merge",
        "-p",
        r#"{"spec":{"overrides":{"infrastructure":{"workerCount":4}}}}"#,
    ]);
    wait_until("op-b to apply the change", 90, &[&b], || {
        let md = env
            .capi("edge-lyon")
            .into_iter()
            .find(|o| o["kind"] == "MachineDeployment")
            .ok_or("no MachineDeployment")?;
        if md["spec"]["replicas"] != 4 {
            return Err(format!("replicas {}", md["spec"]["replicas"]));
        }
        converged(&env, 13)
    });
    let by_b = writes_by(&env.api, user_b);
    assert!(!by_b.is_empty(), "the new leader wrote nothing");
    assert!(
        by_b.iter().all(|(t, _, _)| *t >= killed_at),
        "op-b wrote before op-a died"
    );
    let lease = env.json(&["get", "lease", "atoll-operator", "-n", NS]);
    assert_eq!(lease["spec"]["holderIdentity"], "op-b");
    assert!(lease["spec"]["leaseTransitions"].as_i64().unwrap() >= 1);
}
