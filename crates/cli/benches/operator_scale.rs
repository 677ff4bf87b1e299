//! `cargo bench -p atoll --bench operator_scale -- [N]`: the operator at N atoll Clusters
//! (default 10,000) in a real testenv kube-apiserver. The benchmark's generated fleet (N
//! clusters, 200 applications, 50 policies, 20 teams) goes in with one `kubectl apply`; the
//! operator (release build, as its ServiceAccount, Cluster API's CRDs installed but no Cluster
//! API controller) renders it, commits and applies every cluster's Cluster API objects. Then
//! one cluster at a time is scaled (`workerCount`) and the time from the write to the commit
//! and to its MachineDeployment showing the new replica count is taken — the target is 2 s —
//! and the operator's memory is read.

#[path = "../tests/common/mod.rs"]
mod common;

use atoll_testenv::ApiServer;
use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NS: &str = "atoll-system";
const MGMT: &str = "fleet-clusters";

/// [`rss_mib`], zero for a process that is gone.
fn rss(pid: u32) -> (f64, f64) {
    rss_mib(pid).unwrap_or_default()
}

fn lines(api: &ApiServer, args: &[&str]) -> Vec<String> {
    String::from_utf8_lossy(&kubectl(api, args).stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    eprintln!("starting the management cluster…");
    let api = ApiServer::start().unwrap();
    install_upstream_crds(&api);
    let kubeconfig = install_operator(&api, MGMT);
    let tmp = tempfile::tempdir().unwrap();
    let generated = tmp.path().join("generated");
    ok(&atoll(&[
        "bench",
        "gen",
        generated.to_str().unwrap(),
        "-n",
        &n.to_string(),
    ]));
    let fleet = generated.join("fleet");
    for t in 0..20 {
        let _ = kubectl(&api, &["create", "namespace", &format!("team-{t:02}")]);
    }
    eprintln!("kubectl apply of {n} clusters and the rest of the fleet…");
    let t = Instant::now();
    succeeded(
        &kubectl(
            &api,
            &[
                "apply",
                "--server-side",
                "-R",
                "-f",
                fleet.to_str().unwrap(),
            ],
        ),
        "kubectl apply",
    );
    let applied = t.elapsed();
    let n_apps = lines(&api, &["get", "applications.atoll.dev", "-A", "-o", "name"]).len();

    let repo = tmp.path().join("fleet.git");
    let log = api.dir().join("operator.log");
    let mut operator = Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(["operator", "run", "--bare", "--repo"])
        .arg(&repo)
        .args(["--lease-namespace", NS, "--identity", "bench"])
        .arg("--upstream-base")
        .arg(fleet.join("apps"))
        .arg("--upstream-root")
        .arg(&generated)
        .env("KUBECONFIG", &kubeconfig)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // The first pass: everything rendered, committed, applied.
    let start = Instant::now();
    let (mut committed, mut created) = (None, None);
    let mut last = String::new();
    while created.is_none() && start.elapsed() < Duration::from_secs(7200) {
        std::thread::sleep(Duration::from_secs(5));
        if committed.is_none() && !head(&repo).is_empty() {
            committed = Some(start.elapsed());
        }
        let capi = lines(
            &api,
            &["get", "clusters.cluster.x-k8s.io", "-n", MGMT, "-o", "name"],
        )
        .len();
        if capi == n {
            created = Some(start.elapsed());
        }
        let line = format!(
            "{:>5.0} s: {} CAPI Clusters applied, operator RSS {:.0} MiB",
            start.elapsed().as_secs_f64(),
            capi,
            rss(operator.id()).0
        );
        if line[8..] != last[8.min(last.len())..] {
            eprintln!("{line}");
        }
        last = line;
        if let Ok(Some(s)) = operator.try_wait() {
            panic!("the operator exited ({s}); see {}", log.display());
        }
    }
    let created = created.unwrap_or_else(|| panic!("not every cluster was applied: {last}"));
    // Let the first pass's status writes (and the first sweep of the agents, which changes
    // every Cluster's status once) settle before timing single changes: the operator logs
    // "pass took" when a pass has written its statuses, so a log whose last pass line is one
    // of those and that has not grown for 20 s means it is idle.
    let mut size = 0;
    loop {
        std::thread::sleep(Duration::from_secs(20));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let finished = text
            .lines()
            .rev()
            .find(|l| l.contains("atoll_operator: pass"))
            .is_some_and(|l| l.contains("pass took"));
        if finished && text.len() == size {
            break;
        }
        size = text.len();
    }
    let after_first = rss(operator.id());

    // Single-cluster changes: scale one cluster's workers, time the commit and the apply.
    let names = lines(
        &api,
        &["get", "clusters.atoll.dev", "-o", "name", "-l", "tier=edge"],
    );
    assert!(!names.is_empty(), "no edge clusters");
    let mut rows = Vec::new();
    for (i, name) in names
        .iter()
        .step_by(names.len() / 5 + 1)
        .take(5)
        .enumerate()
    {
        let name = name.trim_start_matches("cluster.atoll.dev/").to_string();
        let replicas = 11 + i;
        let sel = format!("atoll.dev/cluster={name}");
        let before = head(&repo);
        let patch = format!(
            r#"{{"spec":{{"overrides":{{"infrastructure":{{"workerCount":{replicas}}}}}}}}}"#
        );
        let t = Instant::now();
        succeeded(
            &kubectl(
                &api,
                &[
                    "patch",
                    "clusters.atoll.dev",
                    &name,
                    "--type=merge",
                    "-p",
                    &patch,
                ],
            ),
            "kubectl patch",
        );
        let (mut commit, mut applied_at) = (None, None);
        while applied_at.is_none() && t.elapsed() < Duration::from_secs(120) {
            if commit.is_none() && head(&repo) != before {
                commit = Some(t.elapsed());
            }
            let md: Value = serde_json::from_slice(
                &kubectl(
                    &api,
                    &[
                        "get",
                        "machinedeployments.cluster.x-k8s.io",
                        "-n",
                        MGMT,
                        "-l",
                        &sel,
                        "-o",
                        "json",
                    ],
                )
                .stdout,
            )
            .unwrap_or_default();
            if md["items"][0]["spec"]["replicas"] == replicas {
                applied_at = Some(t.elapsed());
                commit = commit.or(Some(t.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let ms = |d: Option<Duration>| {
            d.map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
                .unwrap_or_else(|| "not reached".into())
        };
        eprintln!(
            "{name}: workers → {replicas}: committed {}, applied {}",
            ms(commit),
            ms(applied_at)
        );
        rows.push((name, ms(commit), ms(applied_at)));
    }
    let end = rss(operator.id());
    let api_rss = api
        .pids()
        .into_iter()
        .map(|(name, pid)| format!("{name} {:.0} MiB", rss(pid).0))
        .collect::<Vec<_>>()
        .join(", ");

    println!("\noperator benchmark: {n} atoll Clusters, {n_apps} Applications");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| `kubectl apply --server-side` of the fleet | {:.0} s |",
        applied.as_secs_f64()
    );
    println!(
        "| first pass: first commit | {} |",
        committed
            .map(|d| format!("{:.0} s", d.as_secs_f64()))
            .unwrap_or_else(|| "?".into())
    );
    println!(
        "| first pass: all {n} clusters' Cluster API objects applied | {:.0} s |",
        created.as_secs_f64()
    );
    for (name, c, a) in &rows {
        println!("| scale `{name}`: write → commit / → MachineDeployment applied | {c} / {a} |");
    }
    println!(
        "| operator RSS after the first pass (peak) | {:.0} MiB ({:.0} MiB) |",
        after_first.0, after_first.1
    );
    println!(
        "| operator RSS at the end (peak) | {:.0} MiB ({:.0} MiB) |",
        end.0, end.1
    );
    println!("| management cluster | {api_rss} |");
    let _ = operator.kill();
    let _ = operator.wait();
    // The operator's log outlives the management cluster's folder, for a look at its passes.
    let kept = std::env::temp_dir().join(format!("atoll-operator-bench-{n}.log"));
    if std::fs::copy(&log, &kept).is_ok() {
        eprintln!("operator log: {}", kept.display());
    }
}
