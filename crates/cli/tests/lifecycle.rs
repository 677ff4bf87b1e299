//! Clusters that really come up: the operator drives real Cluster API controllers (v1.14.2
//! core, kubeadm bootstrap and control plane, and the Docker provider v1.14.4 with its
//! in-memory backend, all built from their Go modules by testenv/) against a real
//! kube-apiserver + etcd. Nothing plays Cluster API's part: what the tests read back is what
//! the controllers did. The in-memory workload "API servers" are fakes that answer for nodes
//! and pods, so what is proven about a workload cluster is its machines and nodes, and that
//! Cluster API marks the ClusterResourceSets applied — not that a CNI runs.

mod common;
use atoll_testenv::{ApiServer, ClusterApi};
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NS: &str = "atoll-system";
const MGMT: &str = "fleet-clusters";

struct Lab {
    api: ApiServer,
    capi: ClusterApi,
    operator: Child,
    kubeconfig: PathBuf,
    log: PathBuf,
    repo: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.operator.kill();
        let _ = self.operator.wait();
    }
}

fn spawn_operator(
    kubeconfig: &std::path::Path,
    repo: &std::path::Path,
    log: &std::path::Path,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(["operator", "run", "--bare", "--repo"])
        .arg(repo)
        .args([
            "--lease-namespace",
            NS,
            "--identity",
            "lab",
            "--lease-duration",
            "6",
        ])
        .args(["--resync", "20"])
        .current_dir(root())
        .env("KUBECONFIG", kubeconfig)
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .env_remove("ATOLL_FAULT")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

impl Lab {
    fn start() -> Lab {
        let api = ApiServer::start().unwrap();
        let capi = ClusterApi::start(&api).unwrap();
        // The operator runs as its ServiceAccount: the shipped RBAC is what is exercised.
        let kubeconfig = install_operator(&api, MGMT);
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("fleet.git");
        let log = api.dir().join("operator.log");
        let operator = spawn_operator(&kubeconfig, &repo, &log);
        Lab {
            api,
            capi,
            operator,
            kubeconfig,
            log,
            repo,
            _tmp: tmp,
        }
    }

    /// Kills the operator (SIGKILL: no clean-up) and starts a new one.
    fn restart_operator(&mut self) {
        let _ = self.operator.kill();
        let _ = self.operator.wait();
        let log = self.api.dir().join("operator-2.log");
        self.operator = spawn_operator(&self.kubeconfig, &self.repo, &log);
        self.log = log;
    }

    fn kubectl(&self, args: &[&str]) -> String {
        succeeded(&kubectl(&self.api, args), &format!("kubectl {args:?}"))
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&a)).unwrap()
    }

    fn items(&self, args: &[&str]) -> Vec<Value> {
        self.json(args)["items"].as_array().unwrap().clone()
    }

    fn cluster(&self, name: &str) -> Value {
        self.json(&["get", "clusters.atoll.dev", name])
    }

    /// Machines of one cluster, by name.
    fn machines(&self, cluster: &str) -> Vec<(String, String)> {
        let sel = format!("cluster.x-k8s.io/cluster-name={cluster}");
        self.items(&["get", "machines.cluster.x-k8s.io", "-n", MGMT, "-l", &sel])
            .iter()
            .map(|m| {
                (
                    m["metadata"]["name"].as_str().unwrap().to_string(),
                    m["spec"]["version"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// Pauses (or resumes) Cluster API's reconciliation of one cluster (`spec.paused` of its
    /// CAPI Cluster, a field atoll does not apply).
    fn pause_capi(&self, cluster: &str, paused: bool) {
        self.kubectl(&[
            "patch",
            "clusters.cluster.x-k8s.io",
            cluster,
            "-n",
            MGMT,
            "--type=merge",
            "-p",
            &format!(r#"{{"spec":{{"paused":{paused}}}}}"#),
        ]);
    }

    fn patch(&self, cluster: &str, patch: &str) {
        self.kubectl(&[
            "patch",
            "clusters.atoll.dev",
            cluster,
            "--type=merge",
            "-p",
            patch,
        ]);
    }

    /// Polls `check` until Ok, or fails with its last complaint and every log.
    fn wait(&self, what: &str, secs: u64, mut check: impl FnMut() -> Result<(), String>) {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < Duration::from_secs(secs) {
            match check() {
                Ok(()) => {
                    eprintln!("{what}: {:.0} s", start.elapsed().as_secs_f64());
                    return;
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let mut logs = format!(
            "operator:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        for (name, log) in &self.capi.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            logs.push_str(&format!(
                "\n---- {name} (last 40 lines, newest first):\n{}",
                tail.join("\n")
            ));
        }
        panic!("timed out after {secs} s waiting for {what}: {last}\n{logs}");
    }

    /// The atoll Cluster's status says Provisioned, the control plane available, `workers`
    /// ready, and every node on `version`.
    fn reports(&self, name: &str, workers: &str, nodes: &str, version: &str) -> Result<(), String> {
        let c = self.cluster(name);
        let st = &c["status"];
        let m = &st["machines"];
        let ok = st["phase"] == "Provisioned"
            && m["controlPlaneInitialized"] == true
            && m["controlPlaneAvailable"] == true
            && m["controlPlane"] == "1/1"
            && m["workers"] == workers
            && m["nodes"] == nodes
            && m["version"] == version;
        if ok {
            Ok(())
        } else {
            Err(format!("{name}: {st}"))
        }
    }
}

#[test]
fn real_cluster_api_builds_scales_upgrades_and_deletes_what_the_operator_applies() {
    let mut lab = Lab::start();
    // What the platform team loads once for the ClusterResourceSets (README): the CNI's and
    // the agent's install manifests. The in-memory workload API servers hold core kinds only,
    // so these stand in with a Namespace and a ConfigMap each.
    let addons = lab.api.dir().join("addons.yaml");
    let addon = |name: &str, ns: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {MGMT}\ndata:\n  install.yaml: |\n    apiVersion: v1\n    kind: Namespace\n    metadata:\n      name: {ns}\n    ---\n    apiVersion: v1\n    kind: ConfigMap\n    metadata:\n      name: {ns}-installed\n      namespace: {ns}\n    data:\n      by: atoll-test\n"
        )
    };
    std::fs::write(
        &addons,
        format!(
            "{}---\n{}",
            addon("atoll-cni-calico-v3-29-1", "calico-system"),
            addon("atoll-agent-flux", "flux-system")
        ),
    )
    .unwrap();
    lab.kubectl(&["apply", "-f", addons.to_str().unwrap()]);
    lab.kubectl(&[
        "apply",
        "-f",
        root().join("examples/in-memory-lab").to_str().unwrap(),
    ]);

    // Create: both clusters provisioned by Cluster API, read back into atoll's status.
    lab.wait(
        "both clusters Provisioned with their nodes on v1.34.2",
        300,
        || {
            lab.reports("lab-a", "1/1", "2/2", "v1.34.2")?;
            lab.reports("lab-b", "1/1", "2/2", "v1.34.2")
        },
    );
    // The operator applied server-side (what CAPD's nil-map panic needed an annotation for).
    let dc = lab.json(&[
        "get",
        "devclusters.infrastructure.cluster.x-k8s.io",
        "-n",
        MGMT,
        "lab-a",
        "--show-managed-fields",
    ]);
    assert!(
        dc["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["manager"] == "atoll" && f["operation"] == "Apply"),
        "{dc}"
    );
    // ClusterResourceSets: Cluster API bound both to the cluster and applied the CNI's
    // resources; the agent's set is tried too, but its per-cluster Flux objects (kinds the
    // fake workload API server does not serve) cannot be applied there.
    lab.wait("ClusterResourceSets applied", 120, || {
        let b = lab.json(&[
            "get",
            "clusterresourcesetbindings.addons.cluster.x-k8s.io",
            "-n",
            MGMT,
            "lab-a",
        ]);
        let bindings = b["spec"]["bindings"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let binding = |set: &str| {
            bindings
                .iter()
                .find(|x| x["clusterResourceSetName"] == set)
                .map(|x| x["resources"].as_array().cloned().unwrap_or_default())
        };
        let cni = binding("lab-a-cni").unwrap_or_default();
        let gitops = binding("lab-a-gitops").unwrap_or_default();
        let cni_applied = cni.len() == 1
            && cni[0]["name"] == "atoll-cni-calico-v3-29-1"
            && cni[0]["applied"] == true;
        let agent_applied = gitops
            .iter()
            .any(|r| r["name"] == "atoll-agent-flux" && r["applied"] == true);
        let tried = gitops.iter().any(|r| r["name"] == "lab-a-gitops");
        if cni_applied && agent_applied && tried {
            Ok(())
        } else {
            Err(format!("{b}"))
        }
    });
    // A four-member LogicalCluster, created together: four CAPI Clusters provisioned.
    let quad = lab.api.dir().join("quad.yaml");
    let members: String = (1..=4)
        .map(|i| format!("  - name: quad-{i}\n    labels: {{region: lab, zone: lab-{i}}}\n    spec: {{catalog: lab}}\n"))
        .collect();
    std::fs::write(
        &quad,
        format!("apiVersion: atoll.dev/v1alpha1\nkind: LogicalCluster\nmetadata:\n  name: quad\nspec:\n  clusters:\n{members}"),
    )
    .unwrap();
    lab.kubectl(&["apply", "-f", quad.to_str().unwrap()]);
    let capi_clusters = |lab: &Lab| -> Vec<(String, atoll_status::CapiCluster)> {
        lab.items(&["get", "clusters.cluster.x-k8s.io", "-n", MGMT])
            .iter()
            .map(|c| {
                (
                    c["metadata"]["name"].as_str().unwrap().to_string(),
                    atoll_status::CapiCluster::read(&c["status"]),
                )
            })
            .collect()
    };
    lab.wait("the LogicalCluster's four members Provisioned", 300, || {
        let quads: Vec<_> = capi_clusters(&lab)
            .into_iter()
            .filter(|(n, _)| n.starts_with("quad-"))
            .collect();
        let up = quads
            .iter()
            .filter(|(_, c)| {
                c.phase.as_deref() == Some("Provisioned")
                    && c.machines.control_plane_available
                    && c.machines.workers.as_deref() == Some("1/1")
            })
            .count();
        let lc = lab.json(&["get", "logicalclusters.atoll.dev", "quad"]);
        let listed = lc["status"]["clusters"].as_array().map_or(0, |a| a.len());
        if quads.len() == 4 && up == 4 && listed == 4 {
            Ok(())
        } else {
            Err(format!(
                "{up}/{} up, {listed} listed: {quads:?}",
                quads.len()
            ))
        }
    });

    // A LogicalCluster deleted: its four members torn down the same way (no finalizer on it:
    // the teardown record carries the work).
    lab.kubectl(&[
        "delete",
        "logicalclusters.atoll.dev",
        "quad",
        "--wait=false",
    ]);
    lab.wait("the LogicalCluster's members torn down", 240, || {
        let left = lab.kubectl(&[
            "get",
            "clusters.cluster.x-k8s.io,machines.cluster.x-k8s.io,devmachinetemplates.infrastructure.cluster.x-k8s.io,clusterresourcesets.addons.cluster.x-k8s.io",
            "-n",
            MGMT,
            "-o",
            "name",
        ]);
        if left.lines().any(|l| l.contains("quad-")) {
            Err(left)
        } else {
            Ok(())
        }
    });
    // kubectl columns and `atoll status` show the same.
    let table = lab.kubectl(&["get", "clusters.atoll.dev"]);
    assert!(table.lines().next().unwrap().contains("WORKERS"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("lab-a") && l.contains("Provisioned") && l.contains("v1.34.2")),
        "{table}"
    );
    let status = Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(["status", "-o", "json", "--no-drift", "--repo"])
        .arg(&lab.repo)
        .env("KUBECONFIG", &lab.api.kubeconfig)
        .output()
        .unwrap();
    let status: Value = serde_json::from_str(&ok(&status)).unwrap();
    for c in status["clusters"].as_array().unwrap() {
        assert_eq!(c["phase"], "Provisioned", "{c}");
        assert_eq!(c["machines"]["workers"], "1/1", "{c}");
        assert_eq!(c["nodes"]["total"], 2, "{c}");
        assert_eq!(c["nodes"]["versions"]["v1.34.2"], 2, "{c}");
    }

    // Scale: workers 1 -> 3 -> 1, the same MachineDeployment patched in place.
    let md_uid = |lab: &Lab| {
        lab.json(&[
            "get",
            "machinedeployments.cluster.x-k8s.io",
            "-n",
            MGMT,
            "lab-a-workers",
        ])["metadata"]["uid"]
            .clone()
    };
    let uid = md_uid(&lab);
    lab.patch(
        "lab-a",
        r#"{"spec":{"overrides":{"infrastructure":{"workerCount":3}}}}"#,
    );
    lab.wait("lab-a scaled to 3 workers", 180, || {
        lab.reports("lab-a", "3/3", "4/4", "v1.34.2")
    });
    lab.patch(
        "lab-a",
        r#"{"spec":{"overrides":{"infrastructure":{"workerCount":1}}}}"#,
    );
    lab.wait("lab-a scaled back to 1 worker", 180, || {
        lab.reports("lab-a", "1/1", "2/2", "v1.34.2")?;
        let n = lab.machines("lab-a").len();
        if n == 2 {
            Ok(())
        } else {
            Err(format!("{n} machines"))
        }
    });
    assert_eq!(
        md_uid(&lab),
        uid,
        "the MachineDeployment was replaced, not scaled"
    );

    // Upgrade in waves (the lab's Fleet: `orderBy: [zone]`, `maxUnavailable: 1`, bake 10 s,
    // deadline 60 s): the catalog moves to the profile revision with v1.35.0. Wave 1 is
    // lab-a — whose CAPI Cluster is paused, so Cluster API does not roll it and it cannot pass
    // its health gate; wave 2 (lab-b) must not be started.
    let a_before: Vec<String> = lab.machines("lab-a").into_iter().map(|m| m.0).collect();
    let b_before = lab.machines("lab-b");
    lab.pause_capi("lab-a", true);
    lab.kubectl(&[
        "patch",
        "clustercatalogs.atoll.dev",
        "lab",
        "--type=merge",
        "-p",
        r#"{"spec":{"infrastructure":{"name":"in-memory","revision":"1.1.0"}}}"#,
    ]);
    let kcp_version = |lab: &Lab, c: &str| {
        lab.json(&[
            "get",
            "kubeadmcontrolplanes.controlplane.cluster.x-k8s.io",
            "-n",
            MGMT,
            &format!("{c}-control-plane"),
        ])["spec"]["version"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let git_version = |lab: &Lab, c: &str| {
        let text = git(
            &lab.repo,
            &[
                "show",
                &format!("HEAD:management/clusters/{c}/control-plane.yaml"),
            ],
        );
        text.lines()
            .find_map(|l| l.trim().strip_prefix("version: "))
            .unwrap_or("")
            .to_string()
    };
    let fleet_rollout =
        |lab: &Lab| lab.json(&["get", "fleets.atoll.dev", "lab"])["status"]["rollout"].clone();
    lab.wait("wave 1 released and failing its gate", 150, || {
        let r = fleet_rollout(&lab);
        if r["phase"] == "Failed"
            && r["wave"] == "1/2"
            && r["message"]
                .as_str()
                .is_some_and(|m| m.contains("cluster lab-a"))
        {
            Ok(())
        } else {
            Err(format!("fleet rollout: {r}"))
        }
    });
    // Wave 1's new spec is in Git and applied; wave 2 keeps its old one, in Git and in the
    // management cluster, and says so.
    assert_eq!(git_version(&lab, "lab-a"), "v1.35.0");
    assert_eq!(kcp_version(&lab, "lab-a"), "v1.35.0");
    assert_eq!(git_version(&lab, "lab-b"), "v1.34.2");
    assert_eq!(kcp_version(&lab, "lab-b"), "v1.34.2");
    let b = lab.cluster("lab-b");
    assert_eq!(b["status"]["rollout"]["phase"], "Held", "{}", b["status"]);
    assert_eq!(b["status"]["rollout"]["wave"], "2/2", "{}", b["status"]);
    // `atoll plan` of the same declarations against the repository says which wave each
    // cluster is in (the CLI does not judge gates: it changes nothing here).
    let decl = std::fs::read_to_string(root().join("examples/in-memory-lab/fleet.yaml"))
        .unwrap()
        .replace(
            "infrastructure: {name: in-memory, revision: 1.0.0}",
            "infrastructure: {name: in-memory, revision: 1.1.0}",
        );
    assert!(decl.contains("revision: 1.1.0}"));
    let bumped = lab.api.dir().join("lab-1.1.yaml");
    std::fs::write(&bumped, decl).unwrap();
    let plan = atoll(&[
        "plan",
        bumped.to_str().unwrap(),
        "--repo",
        lab.repo.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&plan.stderr);
    assert!(
        said.contains("rollout (fleet): 1 of 2 waves released, Failed")
            && said.contains("wave 1 lab-a (released); wave 2 lab-b (held)"),
        "{said}\n{}",
        String::from_utf8_lossy(&plan.stdout)
    );

    // The operator restarted mid-wave goes on from what Git says: still failed, lab-b held.
    lab.restart_operator();
    lab.wait("the new operator's first pass", 60, || {
        let log = std::fs::read_to_string(&lab.log).unwrap_or_default();
        if log.contains("pass:") {
            Ok(())
        } else {
            Err("no pass yet".into())
        }
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(git_version(&lab, "lab-b"), "v1.34.2");
    assert_eq!(kcp_version(&lab, "lab-b"), "v1.34.2");
    assert_eq!(fleet_rollout(&lab)["phase"], "Failed");
    assert_eq!(lab.machines("lab-b"), b_before, "lab-b's machines changed");

    // lab-a unpaused: Cluster API rolls it (new Machines on v1.35.0, the old ones gone), the
    // gate passes, the bake ends, and wave 2 rolls lab-b.
    lab.pause_capi("lab-a", false);
    lab.wait("lab-a upgraded to v1.35.0", 300, || {
        lab.reports("lab-a", "1/1", "2/2", "v1.35.0")?;
        let now = lab.machines("lab-a");
        if now.len() == 2
            && now
                .iter()
                .all(|(n, v)| v == "v1.35.0" && !a_before.contains(n))
        {
            Ok(())
        } else {
            Err(format!("machines {now:?}, before {a_before:?}"))
        }
    });
    lab.wait("wave 2: lab-b upgraded to v1.35.0", 300, || {
        lab.reports("lab-b", "1/1", "2/2", "v1.35.0")
    });
    assert_eq!(git_version(&lab, "lab-b"), "v1.35.0");
    lab.wait("the rollout done", 60, || {
        let r = fleet_rollout(&lab);
        if r.is_null() || r["phase"] == "Complete" {
            Ok(())
        } else {
            Err(format!("{r}"))
        }
    });

    // A provider whose CRDs are not installed (k3s): the Cluster is Stalled, naming the CRD.
    let k3s = lab.api.dir().join("k3s.yaml");
    std::fs::write(
        &k3s,
        "apiVersion: atoll.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: lab-k3s\nspec:\n  catalog: lab\n  overrides:\n    infrastructure:\n      bootstrap: k3s\n    network:\n      cni: flannel\n",
    )
    .unwrap();
    lab.kubectl(&["apply", "-f", k3s.to_str().unwrap()]);
    lab.wait("lab-k3s Stalled for a missing CRD", 60, || {
        let c = lab.cluster("lab-k3s");
        let ready = c["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|x| x["type"] == "Ready").cloned())
            .unwrap_or_default();
        let msg = ready["message"].as_str().unwrap_or("");
        if ready["reason"] == "MissingCRD"
            && msg.contains("kthreescontrolplanes.controlplane.cluster.x-k8s.io")
            && msg.contains("k3s")
        {
            Ok(())
        } else {
            Err(format!("{ready}"))
        }
    });
    // The other clusters are not held up by it.
    lab.reports("lab-a", "1/1", "2/2", "v1.35.0").unwrap();

    // Delete: the CAPI Cluster first, machines torn down by Cluster API, then the rest of
    // atoll's objects, then the finalizer releases.
    lab.kubectl(&["delete", "clusters.atoll.dev", "lab-b", "--wait=false"]);
    let sel = "atoll.dev/cluster=lab-b";
    lab.wait("lab-b torn down and released", 240, || {
        let left = lab.kubectl(&[
            "get",
            "clusters.cluster.x-k8s.io,machines.cluster.x-k8s.io,machinedeployments.cluster.x-k8s.io,kubeadmcontrolplanes.controlplane.cluster.x-k8s.io,devclusters.infrastructure.cluster.x-k8s.io,devmachines.infrastructure.cluster.x-k8s.io,devmachinetemplates.infrastructure.cluster.x-k8s.io,kubeadmconfigtemplates.bootstrap.cluster.x-k8s.io,clusterresourcesets.addons.cluster.x-k8s.io,configmaps",
            "-n",
            MGMT,
            "-l",
            sel,
            "-o",
            "name",
        ]);
        let machines = lab.machines("lab-b");
        let atoll = lab.kubectl(&["get", "clusters.atoll.dev", "-o", "name"]);
        if left.trim().is_empty() && machines.is_empty() && !atoll.contains("lab-b") {
            Ok(())
        } else {
            Err(format!("left: {left} machines: {machines:?} atoll: {atoll}"))
        }
    });
    // In that order: the audit log shows the operator's first delete is the CAPI Cluster, and
    // its deletes of anything else come after Cluster API's last write to that Cluster
    // (removing its finalizer, which is when it went away).
    let events: Vec<Value> = lab
        .api
        .audit_events()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["objectRef"]["namespace"] == MGMT
                && e["objectRef"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("lab-b"))
                && e["responseStatus"]["code"].as_i64().unwrap_or(0) < 400
        })
        .collect();
    let operator = "system:serviceaccount:atoll-system:atoll-operator";
    let is_capi_cluster = |e: &Value| {
        e["objectRef"]["resource"] == "clusters"
            && e["objectRef"]["apiGroup"] == "cluster.x-k8s.io"
            && e["objectRef"]["name"] == "lab-b"
    };
    let deletes: Vec<usize> = (0..events.len())
        .filter(|&i| events[i]["user"]["username"] == operator && events[i]["verb"] == "delete")
        .collect();
    assert!(
        !deletes.is_empty() && is_capi_cluster(&events[deletes[0]]),
        "operator deletes: {:?}",
        deletes
            .iter()
            .map(|&i| &events[i]["objectRef"])
            .collect::<Vec<_>>()
    );
    let rest = deletes
        .iter()
        .copied()
        .find(|&i| !is_capi_cluster(&events[i]))
        .expect("the operator deleted the rest of lab-b's objects");
    let gone = (0..events.len())
        .rev()
        .find(|&i| is_capi_cluster(&events[i]) && events[i]["user"]["username"] != operator)
        .expect("Cluster API wrote the CAPI Cluster");
    assert!(
        gone < rest,
        "the operator deleted {} before Cluster API finished with the CAPI Cluster",
        events[rest]["objectRef"]
    );
    // The teardown record is gone once done.
    lab.wait("the teardown record removed", 30, || {
        match lab.repo.join("atoll-teardown.json").exists() {
            true => Err("still there".into()),
            false => Ok(()),
        }
    });
    lab.reports("lab-a", "1/1", "2/2", "v1.35.0").unwrap();
}
