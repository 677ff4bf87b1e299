//! How long one status sweep over N clusters takes, and what it costs in memory: a real
//! kube-apiserver (testenv) plays the management cluster and every workload cluster — N
//! kubeconfig Secrets, each pointing at it, and a Flux Kustomization with a status — and
//! `atoll_status::read_clusters` reads them all, 32 at a time, each a new client (TLS
//! handshake, Secret read, agent read), as a sweep over a real fleet does.
//!
//! `cargo bench -p atoll-status --bench sweep [-- N]` (default 1000) prints a Markdown table.

use atoll_status::{Desired, Options, SecretRef, Target};
use std::time::{Duration, Instant};

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let api = atoll_testenv::ApiServer::start().expect("testenv apiserver");
    let kubectl = |args: &[&str], stdin: Option<&str>| {
        let mut c = api.kubectl();
        c.args(args);
        if let Some(s) = stdin {
            use std::io::Write;
            let mut child = c
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
            assert!(child.wait().unwrap().success(), "kubectl {args:?}");
        } else {
            assert!(c.status().unwrap().success(), "kubectl {args:?}");
        }
    };
    let crd = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/schemas/flux/kustomize.toolkit.fluxcd.io_kustomizations.yaml");
    kubectl(
        &["apply", "--server-side", "-f", crd.to_str().unwrap()],
        None,
    );
    kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/kustomizations.kustomize.toolkit.fluxcd.io",
        ],
        None,
    );
    kubectl(&["create", "namespace", "flux-system"], None);
    kubectl(&["create", "namespace", "atoll-system"], None);
    let sha = "0123456789abcdef0123456789abcdef01234567";
    kubectl(
        &["apply", "-f", "-"],
        Some(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: atoll-cluster, namespace: flux-system}\nspec: {interval: 5m, path: ./clusters/x, prune: true, sourceRef: {kind: GitRepository, name: atoll-fleet}}\n",
        ),
    );
    kubectl(
        &[
            "-n",
            "flux-system",
            "patch",
            "kustomization",
            "atoll-cluster",
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(
                r#"{{"status":{{"lastAppliedRevision":"main@sha1:{sha}","conditions":[{{"type":"Ready","status":"True","reason":"ReconciliationSucceeded","message":"Applied revision","lastTransitionTime":"2026-12-03T00:00:00Z"}}]}}}}"#
            ),
        ],
        None,
    );
    let kubeconfig = std::fs::read_to_string(&api.kubeconfig).unwrap();
    let t = Instant::now();
    let mut secrets = String::new();
    for i in 0..n {
        secrets.push_str(&format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: c{i:05}-kubeconfig, namespace: atoll-system}}\nstringData:\n  value: |\n{}\n",
            kubeconfig.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
        ));
    }
    kubectl(&["apply", "-f", "-"], Some(&secrets));
    eprintln!(
        "{n} kubeconfig Secrets in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let targets: Vec<Target> = (0..n)
        .map(|i| Target {
            cluster: format!("c{i:05}"),
            agent: atoll_model::GitOpsAgent::Flux,
            kubeconfig: SecretRef {
                namespace: "atoll-system".into(),
                name: format!("c{i:05}-kubeconfig"),
                key: "value".into(),
            },
            applications: Vec::new(),
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(api.client()).unwrap();
    let options = Options {
        timeout: Duration::from_secs(10),
        concurrency: 32,
        drift: false,
        clients: Default::default(),
    };
    let before = rss_kib("VmRSS:");
    let mut rows = Vec::new();
    for sweep in 1..=3 {
        let t = Instant::now();
        let out = rt.block_on(atoll_status::read_clusters(
            &client,
            &Desired::default(),
            &targets,
            &Default::default(),
            &options,
        ));
        let took = t.elapsed();
        let ready = out
            .iter()
            .filter(|s| {
                s.state == atoll_status::SyncState::Ready && s.revision.as_deref() == Some(sha)
            })
            .count();
        if ready != n {
            let bad: Vec<_> = out
                .iter()
                .filter(|s| s.state != atoll_status::SyncState::Ready)
                .take(3)
                .collect();
            panic!("{ready} of {n} read Ready; for example {bad:?}");
        }
        rows.push((sweep, took));
    }
    let peak = rss_kib("VmHWM:");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "Status sweep over {n} clusters ({cpu}, {} cores; one testenv kube-apiserver plays the management cluster and every workload cluster):\n",
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );
    println!("| sweep | wall | per cluster |\n|---|---|---|");
    for (s, d) in &rows {
        println!(
            "| {s} | {:.2} s | {:.1} ms |",
            d.as_secs_f64(),
            d.as_secs_f64() * 1000.0 / n as f64
        );
    }
    println!(
        "\nProcess RSS before the sweeps {} MiB, peak {} MiB.",
        before / 1024,
        peak / 1024
    );
}
