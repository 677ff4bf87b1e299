//! `cargo bench -p atoll --bench provision -- [N]`: N in-memory clusters (default 100) from
//! one `kubectl apply` to all of them Provisioned and Ready in atoll's own status, with real
//! Cluster API v1.14 controllers (core, kubeadm, Docker provider's in-memory backend) and the
//! operator running as its ServiceAccount against a testenv kube-apiserver. Reports the time
//! to the commit, to every CAPI Cluster Provisioned, and to every atoll Cluster reporting its
//! control plane available and its workers ready, and the peak memory of the operator and of
//! each Cluster API manager. Cluster API's own scale tests are the anchor (1,000 clusters with
//! tuned concurrency); the managers run here with their default concurrency.

#[path = "../tests/common/mod.rs"]
mod common;

use atoll_testenv::{ApiServer, ClusterApi};
use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NS: &str = "atoll-system";
const MGMT: &str = "fleet-clusters";

/// Peak resident memory of a process (VmHWM), in MiB.
fn peak_mib(pid: u32) -> Option<f64> {
    rss_mib(pid).map(|(_, peak)| peak)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    eprintln!("building / starting the management cluster and Cluster API…");
    let api = ApiServer::start().unwrap();
    let capi = ClusterApi::start(&api).unwrap();
    let kubeconfig = install_operator(&api, MGMT);
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("fleet.git");
    let mut operator = Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(["operator", "run", "--bare", "--repo"])
        .arg(&repo)
        .args(["--lease-namespace", NS, "--identity", "bench"])
        .current_dir(root())
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(api.dir().join("operator.log")).unwrap())
        .spawn()
        .unwrap();

    // The lab's Fleet, pools, profiles and catalog; N clusters over 10 zones.
    let lab = std::fs::read_to_string(root().join("examples/in-memory-lab/fleet.yaml")).unwrap();
    let base: String = lab
        .split("\n---\n")
        .filter(|d| !d.contains("kind: Cluster\n"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    // Address space for N clusters (the lab's pools hold 64).
    let mut fleet = base
        .replace(
            "cidrs: [\"10.64.0.0/10\"]\n  prefixLength: 16",
            "cidrs: [\"10.0.0.0/8\"]\n  prefixLength: 20",
        )
        .replace(
            "cidrs: [\"10.32.0.0/12\"]\n  prefixLength: 20",
            "cidrs: [\"172.16.0.0/12\"]\n  prefixLength: 24",
        );
    assert!(fleet.contains("10.0.0.0/8") && fleet.contains("172.16.0.0/12"));
    for i in 0..n {
        fleet.push_str(&format!(
            "\n---\napiVersion: atoll.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: bench-{i:04}\n  labels: {{region: lab, zone: zone-{}}}\nspec:\n  catalog: lab\n",
            i % 10
        ));
    }
    let file = api.dir().join("bench-fleet.yaml");
    std::fs::write(&file, fleet).unwrap();

    let start = Instant::now();
    succeeded(
        &kubectl(&api, &["apply", "-f", file.to_str().unwrap()]),
        "kubectl apply",
    );
    let (mut committed, mut provisioned, mut ready) = (None, None, None);
    let mut last = String::new();
    while ready.is_none() && start.elapsed() < Duration::from_secs(3600) {
        std::thread::sleep(Duration::from_secs(2));
        let capi_clusters: Value = serde_json::from_slice(
            &kubectl(
                &api,
                &["get", "clusters.cluster.x-k8s.io", "-n", MGMT, "-o", "json"],
            )
            .stdout,
        )
        .unwrap_or_default();
        let capi_items = capi_clusters["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if committed.is_none() && capi_items.len() == n {
            committed = Some(start.elapsed());
        }
        let up = capi_items
            .iter()
            .filter(|c| c["status"]["phase"] == "Provisioned")
            .count();
        if provisioned.is_none() && up == n {
            provisioned = Some(start.elapsed());
        }
        let atoll: Value = serde_json::from_slice(
            &kubectl(&api, &["get", "clusters.atoll.dev", "-o", "json"]).stdout,
        )
        .unwrap_or_default();
        let healthy = atoll["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| {
                let m = &c["status"]["machines"];
                c["status"]["phase"] == "Provisioned"
                    && m["controlPlaneAvailable"] == true
                    && m["workers"] == "1/1"
            })
            .count();
        if healthy == n {
            ready = Some(start.elapsed());
        }
        let line = format!(
            "{:>5.0} s: {} CAPI Clusters, {up} Provisioned, {healthy} Ready in atoll's status",
            start.elapsed().as_secs_f64(),
            capi_items.len()
        );
        if line[8..] != last[8.min(last.len())..] {
            eprintln!("{line}");
        }
        last = line;
    }
    let secs = |d: Option<Duration>| {
        d.map(|d| format!("{:.0} s", d.as_secs_f64()))
            .unwrap_or_else(|| "not reached".into())
    };
    let op_peak = peak_mib(operator.id());
    println!("\nprovision benchmark: {n} in-memory clusters, one `kubectl apply`");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| all CAPI Clusters created (committed and applied) | {} |",
        secs(committed)
    );
    println!("| all CAPI Clusters Provisioned | {} |", secs(provisioned));
    println!(
        "| all Ready in atoll's status (control plane available, workers 1/1) | {} |",
        secs(ready)
    );
    println!(
        "| operator peak RSS | {} |",
        op_peak
            .map(|m| format!("{m:.0} MiB"))
            .unwrap_or_else(|| "?".into())
    );
    for (name, pid) in capi.pids() {
        println!(
            "| {name} peak RSS | {} |",
            peak_mib(pid)
                .map(|m| format!("{m:.0} MiB"))
                .unwrap_or_else(|| "?".into())
        );
    }
    let _ = operator.kill();
    let _ = operator.wait();
    assert!(ready.is_some(), "not every cluster became Ready: {last}");
}
