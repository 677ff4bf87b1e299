//! The loop, with real parts only: atoll renders and pushes to a Git server (Git's own
//! smart-HTTP server), real Flux controllers (source-controller + kustomize-controller v1.9.6,
//! built from their Go modules) pull onto three real workload clusters (kube-apiserver +
//! etcd each), and `atoll status` reads back, through kubeconfig Secrets in a management
//! cluster, what each cluster runs. A change reaches exactly its clusters, a removed
//! application is pruned, a cluster that stops answering is Unreachable while a change
//! reaches the others and catches up when it returns, and a Deployment changed by hand in a
//! cluster is reported as drift and healed by the agent.

mod common;
use atoll_testenv::{ApiServer, Flux, GitServer};
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CLUSTERS: [&str; 3] = ["site-a", "site-b", "site-c"];

fn fleet(url: &str) -> String {
    format!(
        r#"apiVersion: atoll.dev/v1alpha1
kind: Fleet
metadata: {{name: fleet}}
spec:
  gitops: {{agent: flux, repoURL: "{url}", branch: main, interval: 3s}}
---
apiVersion: atoll.dev/v1alpha1
kind: Team
metadata: {{name: shop}}
spec: {{contributors: [shop-devs]}}
---
apiVersion: atoll.dev/v1alpha1
kind: Cluster
metadata: {{name: site-a, labels: {{tier: edge}}}}
spec: {{provider: existing}}
---
apiVersion: atoll.dev/v1alpha1
kind: Cluster
metadata: {{name: site-b, labels: {{tier: edge}}}}
spec: {{provider: existing}}
---
apiVersion: atoll.dev/v1alpha1
kind: Cluster
metadata: {{name: site-c, labels: {{tier: core}}}}
spec: {{provider: existing, kubeconfigSecret: site-c-admin}}
---
apiVersion: atoll.dev/v1alpha1
kind: TargetPolicy
metadata: {{name: web-on-edge, namespace: shop}}
spec:
  appSelector: {{matchLabels: {{app: web}}}}
  clusterSelector: {{matchLabels: {{tier: edge}}}}
---
apiVersion: atoll.dev/v1alpha1
kind: TargetPolicy
metadata: {{name: api-everywhere, namespace: shop}}
spec:
  appSelector: {{matchLabels: {{app: api}}}}
  clusterSelector: {{}}
"#
    )
}

fn app(name: &str, image: &str, replicas: u32) -> String {
    format!(
        "apiVersion: atoll.dev/v1alpha1\nkind: Application\nmetadata: {{name: {name}, namespace: shop, labels: {{app: {name}}}}}\nspec:\n  components:\n    - {{name: {name}, image: \"{image}\", replicas: {replicas}, expose: [{{containerPort: 8080}}]}}\n"
    )
}

fn kubectl(api: &ApiServer, args: &[&str]) -> String {
    let out = api.kubectl().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(secs) {
        match f() {
            Ok(()) => return,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("timed out after {secs} s waiting for {what}: {last}");
}

/// Kind/namespace/name of the objects a cluster's package at HEAD holds (of the kinds
/// compared), read from the repository.
fn package_objects(repo: &Path, cluster: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let files = git(
        repo,
        &[
            "ls-tree",
            "-r",
            "--name-only",
            "HEAD",
            &format!("clusters/{cluster}/"),
        ],
    );
    for f in files
        .lines()
        .filter(|f| f.ends_with(".yaml") && !f.ends_with("kustomization.yaml"))
    {
        let text = git(repo, &["show", &format!("HEAD:{f}")]);
        for doc in atoll_model::yaml::parse_values(&text).unwrap() {
            let kind = doc["kind"].as_str().unwrap_or("").to_string();
            if ["Namespace", "Deployment", "Service", "Role", "RoleBinding"]
                .contains(&kind.as_str())
            {
                out.insert(format!(
                    "{kind}/{}/{}",
                    doc["metadata"]["namespace"].as_str().unwrap_or(""),
                    doc["metadata"]["name"].as_str().unwrap_or("")
                ));
            }
        }
    }
    out
}

/// The same objects as found in the cluster (those Flux applied for atoll's Kustomization).
fn cluster_objects(api: &ApiServer) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (kind, res) in [
        ("Namespace", "namespaces"),
        ("Deployment", "deployments"),
        ("Service", "services"),
        ("Role", "roles"),
        ("RoleBinding", "rolebindings"),
    ] {
        let json = kubectl(
            api,
            &[
                "get",
                res,
                "-A",
                "-l",
                "kustomize.toolkit.fluxcd.io/name=atoll-cluster",
                "-o",
                "json",
            ],
        );
        let v: Value = serde_json::from_str(&json).unwrap();
        for i in v["items"].as_array().unwrap() {
            // Being deleted counts as gone: with no kube-controller-manager in the test
            // clusters, a pruned Namespace stays Terminating.
            if i["metadata"]["deletionTimestamp"].is_string() {
                continue;
            }
            out.insert(format!(
                "{kind}/{}/{}",
                i["metadata"]["namespace"].as_str().unwrap_or(""),
                i["metadata"]["name"].as_str().unwrap_or("")
            ));
        }
    }
    out
}

struct Site {
    name: &'static str,
    api: ApiServer,
    _flux: Flux,
}

fn status(mgmt: &ApiServer, repo: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args([
            "status",
            "--repo",
            repo.to_str().unwrap(),
            "-o",
            "json",
            "--timeout",
            "4",
        ])
        .env("KUBECONFIG", &mgmt.kubeconfig)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "atoll status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn cluster_status<'a>(s: &'a Value, c: &str) -> &'a Value {
    s["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["cluster"] == c)
        .unwrap_or_else(|| panic!("{c} not in {s}"))
}

#[test]
fn packages_reach_real_clusters_through_git_and_flux_and_their_state_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::create_dir_all(t.join("git")).unwrap();
    let git_server = GitServer::start(&t.join("git"), None).unwrap();
    let url = git_server.create_repo("fleet.git").unwrap();

    // The management cluster keeps each workload cluster's kubeconfig, as Cluster API does.
    let mgmt = ApiServer::start().unwrap();
    kubectl(&mgmt, &["create", "namespace", "atoll-system"]);
    let mut sites = Vec::new();
    for name in CLUSTERS {
        let api = ApiServer::start().unwrap();
        let flux = Flux::start(&api).unwrap();
        let secret = if name == "site-c" {
            "site-c-admin".to_string()
        } else {
            format!("{name}-kubeconfig")
        };
        kubectl(
            &mgmt,
            &[
                "-n",
                "atoll-system",
                "create",
                "secret",
                "generic",
                &secret,
                &format!("--from-file=value={}", api.kubeconfig.display()),
            ],
        );
        sites.push(Site {
            name,
            api,
            _flux: flux,
        });
    }

    // Declarations, rendered and pushed.
    let decl = t.join("decl");
    std::fs::create_dir_all(&decl).unwrap();
    std::fs::write(decl.join("fleet.yaml"), fleet(&url)).unwrap();
    std::fs::write(decl.join("web.yaml"), app("web", "nginx:1.27", 2)).unwrap();
    std::fs::write(decl.join("api.yaml"), app("api", "nginx:1.27", 1)).unwrap();
    let repo = t.join("repo");
    let d = decl.to_str().unwrap().to_string();
    let render = |why: &str| {
        let out = ok(&atoll(&[
            "render",
            &d,
            "--repo",
            repo.to_str().unwrap(),
            "--bare",
            "--remote",
            "-m",
            why,
        ]));
        assert!(out.contains("pushed to"), "{out}");
        git(&repo, &["rev-parse", "HEAD"])
    };
    let head = render("first delivery");
    assert_eq!(
        git(&t.join("git/fleet.git"), &["rev-parse", "main"]),
        head,
        "the Git server has HEAD"
    );

    // Bootstrap: each cluster's agent object (what the agent ClusterResourceSet applies for a
    // cluster atoll makes; applied once by hand for an existing one, seed 004).
    for s in &sites {
        let obj = git(
            &repo,
            &["show", &format!("HEAD:management/gitops/{}.yaml", s.name)],
        );
        let f = t.join(format!("{}-agent.yaml", s.name));
        std::fs::write(&f, obj).unwrap();
        kubectl(&s.api, &["apply", "-f", f.to_str().unwrap()]);
    }

    // Every cluster ends with exactly its package, and atoll says so.
    let converged = |head: &str, skip: Option<&str>| {
        for s in &sites {
            if Some(s.name) == skip {
                continue;
            }
            let want = package_objects(&repo, s.name);
            wait_until(&format!("{} to apply its package", s.name), 120, || {
                let got = cluster_objects(&s.api);
                if got == want {
                    Ok(())
                } else {
                    Err(format!("want {want:?}\n got {got:?}"))
                }
            });
        }
        wait_until("atoll status to see every cluster at HEAD", 60, || {
            let st = status(&mgmt, &repo);
            for s in &sites {
                if Some(s.name) == skip {
                    continue;
                }
                let c = cluster_status(&st, s.name);
                if c["state"] != "Ready" || c["revision"] != head || c["behind"] != 0 {
                    return Err(format!("{c}"));
                }
            }
            Ok(())
        });
    };
    converged(&head, None);
    // `atoll serve --observe` reads the same clusters: sync in placements, metrics, events.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = format!("sqlite:{}", t.join("observe.db").display());
    let token = ok(&atoll(&[
        "token",
        "create",
        "--database",
        &db,
        "--name",
        "ops",
        "--team",
        "platform",
        "--role",
        "admin",
    ]))
    .trim()
    .to_string();
    let observer = Serve(
        Command::new(env!("CARGO_BIN_EXE_atoll"))
            .args([
                "serve",
                "--observe",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database",
                &db,
            ])
            .args(["--repo", repo.to_str().unwrap()])
            .env("KUBECONFIG", &mgmt.kubeconfig)
            .stderr(std::fs::File::create(t.join("observe.log")).unwrap())
            .spawn()
            .unwrap(),
        format!("http://127.0.0.1:{port}"),
        t.join("observe.log"),
    );
    let http = reqwest::blocking::Client::new();
    let get = |path: &str| -> Result<String, String> {
        http.get(format!("{}{path}", observer.1))
            .bearer_auth(&token)
            .send()
            .and_then(|r| r.text())
            .map_err(|e| e.to_string())
    };
    wait_until("serve to observe the clusters", 60, || {
        let m = get("/metrics")?;
        if m.contains("atoll_cluster_sync{state=\"Ready\"} 3")
            && m.contains("atoll_cluster_revision_lag{cluster=\"site-a\"} 0")
        {
            Ok(())
        } else {
            Err(m
                .lines()
                .filter(|l| l.starts_with("atoll_cluster"))
                .collect::<Vec<_>>()
                .join("\n"))
        }
    });
    let placed: Value =
        serde_json::from_str(&get("/api/v1/placements?cluster=site-a").unwrap()).unwrap();
    assert_eq!(placed["sync"]["state"], "Ready", "{placed}");
    assert_eq!(placed["sync"]["revision"], head.as_str(), "{placed}");
    let events: Value =
        serde_json::from_str(&get("/api/v1/timelines/clusters/site-b").unwrap()).unwrap();
    assert!(
        events.to_string().contains("\"action\":\"sync\""),
        "{events}"
    );
    let st = status(&mgmt, &repo);
    for a in st["applications"].as_array().unwrap() {
        assert_eq!(a["atDesiredRevision"], a["clusters"], "{a}");
    }
    assert!(
        package_objects(&repo, "site-c")
            .iter()
            .all(|o| !o.contains("web"))
    );
    assert!(
        cluster_objects(&sites[2].api)
            .iter()
            .any(|o| o.contains("api-api"))
    );

    // A change to `web` reaches exactly the clusters running it.
    let rv = |api: &ApiServer| {
        kubectl(
            api,
            &[
                "get",
                "deployments,services",
                "-A",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion} {end}",
            ],
        )
    };
    let site_c_before = rv(&sites[2].api);
    std::fs::write(decl.join("web.yaml"), app("web", "nginx:1.28", 2)).unwrap();
    let head = render("web 1.28");
    converged(&head, None);
    for s in &sites[..2] {
        let image = kubectl(
            &s.api,
            &[
                "-n",
                "shop",
                "get",
                "deployment",
                "web-web",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ],
        );
        assert_eq!(image, "nginx:1.28");
    }
    assert_eq!(rv(&sites[2].api), site_c_before, "site-c did not change");

    // A removed application is pruned everywhere.
    std::fs::remove_file(decl.join("api.yaml")).unwrap();
    let head = render("api retired");
    converged(&head, None);
    for s in &sites {
        assert!(
            !cluster_objects(&s.api)
                .iter()
                .any(|o| o.contains("api-api")),
            "{}",
            s.name
        );
    }

    // site-b stops answering: it is Unreachable within the timeout, and a change still
    // reaches the others.
    sites[1].api.pause();
    let t0 = Instant::now();
    let st = status(&mgmt, &repo);
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "status took {:?}",
        t0.elapsed()
    );
    assert_eq!(
        cluster_status(&st, "site-b")["state"],
        "Unreachable",
        "{st}"
    );
    // The others answer (Flux may be in one of its 3-second reconciles: Progressing).
    let a = &cluster_status(&st, "site-a")["state"];
    assert!(a == "Ready" || a == "Progressing", "{st}");
    wait_until("serve to see site-b unreachable", 40, || {
        let m = get("/metrics")?;
        if m.contains("atoll_cluster_sync{state=\"Unreachable\"} 1") {
            Ok(())
        } else {
            Err(m)
        }
    });
    std::fs::write(decl.join("web.yaml"), app("web", "nginx:1.28", 3)).unwrap();
    let head = render("web x3 while site-b is away");
    converged(&head, Some("site-b"));
    let st = status(&mgmt, &repo);
    let b = cluster_status(&st, "site-b");
    assert_eq!(b["state"], "Unreachable", "{b}");
    // It comes back and catches up, untouched.
    sites[1].api.resume();
    converged(&head, None);

    // Drift: a Deployment scaled by hand in site-a is reported, then healed by Flux.
    let scale_by_hand = || {
        kubectl(
            &sites[0].api,
            &[
                "-n",
                "shop",
                "scale",
                "deployment",
                "web-web",
                "--replicas=7",
            ],
        )
    };
    scale_by_hand();
    wait_until("the drift to be reported", 30, || {
        // Flux heals it every 3 s: scale it again whenever it did, so that a slow status
        // sweep (a loaded machine) still finds the drift.
        scale_by_hand();
        let st = status(&mgmt, &repo);
        let a = cluster_status(&st, "site-a");
        let drift: Vec<String> = serde_json::from_value(a["drift"].clone()).unwrap_or_default();
        if drift
            .iter()
            .any(|d| d.contains("Deployment shop/web-web") && d.contains("spec.replicas"))
        {
            Ok(())
        } else {
            Err(format!("{a}"))
        }
    });
    wait_until("Flux to heal it", 60, || {
        let r = kubectl(
            &sites[0].api,
            &[
                "-n",
                "shop",
                "get",
                "deployment",
                "web-web",
                "-o",
                "jsonpath={.spec.replicas}",
            ],
        );
        if r == "3" {
            Ok(())
        } else {
            Err(format!("replicas {r}"))
        }
    });
    wait_until("the drift to clear", 30, || {
        let st = status(&mgmt, &repo);
        let a = cluster_status(&st, "site-a");
        if a["drift"].is_null() {
            Ok(())
        } else {
            Err(format!("{a}"))
        }
    });

    // The operator takes over as the writer: the same declarations as custom resources in the
    // management cluster. It starts from the remote (nothing to change), reports every
    // cluster Ready at HEAD in its status, and a change made with kubectl reaches the clusters.
    drop(observer);
    install_upstream_crds(&mgmt);
    let manifests = t.join("operator.yaml");
    std::fs::write(
        &manifests,
        ok(&atoll(&[
            "operator",
            "manifests",
            "--management-namespace",
            "atoll-system",
        ])),
    )
    .unwrap();
    kubectl(
        &mgmt,
        &["apply", "--server-side", "-f", manifests.to_str().unwrap()],
    );
    wait_established(&mgmt);
    kubectl(&mgmt, &["create", "namespace", "shop"]);
    kubectl(&mgmt, &["apply", "-f", decl.to_str().unwrap()]);
    let op_log = t.join("operator.log");
    let _operator = Serve(
        Command::new(env!("CARGO_BIN_EXE_atoll"))
            .args([
                "operator",
                "run",
                "--bare",
                "--repo",
                t.join("op.git").to_str().unwrap(),
            ])
            .args([
                "--remote",
                &url,
                "--lease-namespace",
                "atoll-system",
                "--identity",
                "op-0",
            ])
            .args(["--upstream-base", decl.to_str().unwrap(), "--resync", "5"])
            .env("KUBECONFIG", &mgmt.kubeconfig)
            .env("SOURCE_DATE_EPOCH", "1767225600")
            .stderr(std::fs::File::create(&op_log).unwrap())
            .spawn()
            .unwrap(),
        String::new(),
        op_log.clone(),
    );
    let remote_head = || git(&t.join("git/fleet.git"), &["rev-parse", "main"]);
    let reported = |want: &str| -> Result<(), String> {
        for c in CLUSTERS {
            let cr: Value = serde_json::from_str(&kubectl(
                &mgmt,
                &["get", "clusters.atoll.dev", c, "-o", "json"],
            ))
            .unwrap();
            let sync = &cr["status"]["sync"];
            if sync["state"] != "Ready" || sync["revision"] != want || sync["behind"] != 0 {
                let log = std::fs::read_to_string(&op_log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(format!("{c}: {sync}\n{}", tail.join("\n")));
            }
        }
        let web: Value = serde_json::from_str(&kubectl(
            &mgmt,
            &[
                "-n",
                "shop",
                "get",
                "applications.atoll.dev",
                "web",
                "-o",
                "json",
            ],
        ))
        .unwrap();
        if web["status"]["atHead"] != "2/2" {
            return Err(format!("web: {}", web["status"]));
        }
        Ok(())
    };
    let before = remote_head();
    wait_until(
        "the operator to report every cluster Ready at HEAD",
        90,
        || reported(&before),
    );
    assert_eq!(
        remote_head(),
        before,
        "the same declarations: nothing to commit"
    );
    kubectl(
        &mgmt,
        &[
            "-n",
            "shop",
            "patch",
            "applications.atoll.dev",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/components/0/image","value":"nginx:1.29"}]"#,
        ],
    );
    wait_until("the operator to push the change", 60, || {
        if remote_head() != before {
            Ok(())
        } else {
            Err("remote unchanged".into())
        }
    });
    let head = remote_head();
    for s in &sites[..2] {
        wait_until(&format!("{} to run nginx:1.29", s.name), 60, || {
            let image = kubectl(
                &s.api,
                &[
                    "-n",
                    "shop",
                    "get",
                    "deployment",
                    "web-web",
                    "-o",
                    "jsonpath={.spec.template.spec.containers[0].image}",
                ],
            );
            if image == "nginx:1.29" {
                Ok(())
            } else {
                Err(image)
            }
        });
    }
    wait_until("the operator to report the new HEAD everywhere", 90, || {
        reported(&head)
    });
}

/// An application the `api-everywhere` policy places on every cluster.
fn placed(name: &str) -> String {
    app(name, "nginx:1.27", 1).replace(&format!("app: {name}}}"), "app: api}")
}

/// A fresh PostgreSQL database (scripts/postgres.sh starts Debian's server when needed).
fn postgres_database(name: &str) -> String {
    let out = Command::new("bash")
        .arg(root().join("scripts/postgres.sh"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    let base = succeeded(&out, "scripts/postgres.sh (a real PostgreSQL server)");
    let base = base.trim().trim_end_matches("/postgres").to_string();
    let db = format!("{name}_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ] {
        let out = Command::new("psql")
            .args([
                &format!("{base}/postgres"),
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &sql,
            ])
            .output()
            .unwrap();
        succeeded(&out, &sql);
    }
    format!("{base}/{db}")
}

struct Serve(std::process::Child, String, PathBuf);

impl Serve {
    /// The replica's log and whether its process is still alive, for failure messages.
    fn report(&self) -> String {
        let log = std::fs::read_to_string(&self.2).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        let mut stacks = String::new();
        if std::env::var_os("ATOLL_DEBUG_GDB").is_some() {
            let out = Command::new("gdb")
                .args([
                    "-p",
                    &self.0.id().to_string(),
                    "-batch",
                    "-ex",
                    "thread apply all bt",
                ])
                .output()
                .unwrap();
            stacks = String::from_utf8_lossy(&out.stdout).into_owned();
        }
        format!("log of {}:\n{}\n{stacks}", self.1, tail.join("\n"))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(db: &str, repo: &Path, remote: &str, log: &Path) -> Serve {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(["serve", "--bare", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database", db, "--repo", repo.to_str().unwrap()])
        .args(["--remote", remote])
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_until("atoll serve", 30, || {
        reqwest::blocking::get(format!("{url}/readyz"))
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
            .ok_or_else(|| std::fs::read_to_string(log).unwrap_or_default())
    });
    Serve(child, url, log.to_path_buf())
}

/// Two `atoll serve` replicas share one PostgreSQL store and push to one Git remote, each
/// from its own local repository. Changes made through both at once all land on the remote,
/// none is lost, and the remote's branch only ever moves forward (its reflog is a chain of
/// fast-forwards).
#[test]
fn two_writers_pushing_to_one_remote_lose_nothing_and_never_force() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::create_dir_all(t.join("git")).unwrap();
    let git_server = GitServer::start(&t.join("git"), None).unwrap();
    let url = git_server.create_repo("fleet.git").unwrap();
    let remote_dir = t.join("git/fleet.git");
    git(&remote_dir, &["config", "core.logAllRefUpdates", "always"]);
    let db = postgres_database("atoll_writers");
    let token = ok(&atoll(&[
        "token",
        "create",
        "--database",
        &db,
        "--name",
        "alice",
        "--team",
        "platform",
        "--role",
        "admin",
    ]))
    .trim()
    .to_string();
    let a = serve(&db, &t.join("a.git"), &url, &t.join("a.log"));
    let b = serve(&db, &t.join("b.git"), &url, &t.join("b.log"));
    let http = reqwest::blocking::Client::new();
    let apply = |s: &Serve, body: String| {
        let r = http
            .post(format!("{}/api/v1/apply", s.1))
            .bearer_auth(&token)
            .header("content-type", "application/yaml")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 202);
        let task: Value = r.json().unwrap();
        let path = task["status"].as_str().unwrap().to_string();
        let mut done = Value::Null;
        wait_until("the change to be applied", 120, || {
            let r = http
                .get(format!("{}{path}", s.1))
                .bearer_auth(&token)
                .send()
                .map_err(|e| format!("{e:?}\n{}", s.report()))?;
            let status = r.status();
            let text = r.text().map_err(|e| e.to_string())?;
            let t: Value = serde_json::from_str(&text).map_err(|_| format!("{status}: {text}"))?;
            if t["state"] == "running" {
                return Err(t.to_string());
            }
            done = t;
            Ok(())
        });
        assert_eq!(done["state"], "succeeded", "{done}");
    };
    apply(
        &a,
        format!("{}---\n{}", fleet(&url), app("web", "nginx:1.27", 1)),
    );
    // Twelve changes, six through each replica, two at a time.
    for i in 0..6 {
        std::thread::scope(|sc| {
            sc.spawn(|| apply(&a, placed(&format!("a{i}"))));
            sc.spawn(|| apply(&b, placed(&format!("b{i}"))));
        });
    }
    // Every application is on the remote, on every cluster (the `api` policy places them).
    let head = git(&remote_dir, &["rev-parse", "main"]);
    let tree = git(
        &remote_dir,
        &[
            "ls-tree",
            "-r",
            "--name-only",
            &head,
            "clusters/site-c/apps/shop/",
        ],
    );
    for i in 0..6 {
        for w in ["a", "b"] {
            assert!(
                tree.contains(&format!("apps/shop/{w}{i}/")),
                "{w}{i} lost:\n{tree}"
            );
        }
    }
    // The replicas say what they pushed. A push that lost a race on the server's ref lock
    // ("cannot lock ref … but expected …") is left as "committed, not pushed" and retried in
    // the background: it clears within a few seconds.
    wait_until("replica b to report its commits pushed", 60, || {
        let inv: Value = http
            .get(format!("{}/api/v1/inventory", b.1))
            .bearer_auth(&token)
            .send()
            .map_err(|e| e.to_string())?
            .json()
            .map_err(|e| e.to_string())?;
        if inv["publish"]["error"].is_null() && inv["publish"]["pushed"].is_string() {
            Ok(())
        } else {
            Err(inv["publish"].to_string())
        }
    });
    // And each is an event in the shared store.
    let events: Value = http
        .get(format!("{}/api/v1/events?kind=Application", a.1))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let names: BTreeSet<String> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    for i in 0..6 {
        assert!(
            names.contains(&format!("a{i}")) && names.contains(&format!("b{i}")),
            "{names:?}"
        );
    }
    // The remote moved forward only: each reflog entry's new value descends from the one
    // before.
    let reflog = git(
        &remote_dir,
        &["reflog", "show", "--format=%H", "refs/heads/main"],
    );
    let chain: Vec<&str> = reflog.lines().collect();
    assert!(chain.len() >= 2, "{reflog}");
    for w in chain.windows(2) {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&remote_dir)
            .args(["merge-base", "--is-ancestor", w[1], w[0]])
            .status()
            .unwrap();
        assert!(
            out.success(),
            "{} does not descend from {}: a forced update",
            w[0],
            w[1]
        );
    }
    // Pushes did race (at least one render was redone on top of the other writer's commit).
    let logs = std::fs::read_to_string(t.join("a.log")).unwrap()
        + &std::fs::read_to_string(t.join("b.log")).unwrap();
    eprintln!(
        "{} renders redone on top of the other writer",
        logs.matches("the remote moved").count()
    );
    // Both replicas' repositories end where the remote is, and a render of the final
    // declarations from scratch gives the same tree.
    let final_tree = git(&remote_dir, &["rev-parse", "main^{tree}"]);
    let decl = t.join("final");
    std::fs::create_dir_all(&decl).unwrap();
    let mut all = format!("{}---\n{}", fleet(&url), app("web", "nginx:1.27", 1));
    for i in 0..6 {
        all.push_str(&format!(
            "---\n{}---\n{}",
            placed(&format!("a{i}")),
            placed(&format!("b{i}"))
        ));
    }
    std::fs::write(decl.join("all.yaml"), all).unwrap();
    let fresh = t.join("fresh");
    ok(&atoll(&[
        "render",
        decl.to_str().unwrap(),
        "--repo",
        fresh.to_str().unwrap(),
        "--bare",
    ]));
    assert_eq!(git(&fresh, &["rev-parse", "HEAD^{tree}"]), final_tree);
}

/// A Git server that wants credentials: without them the render commits and says it did not
/// push (exit 3), the next render with them pushes that commit; the secret is never printed.
#[test]
fn credentials_are_used_and_never_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::create_dir_all(t.join("git")).unwrap();
    let server = GitServer::start(&t.join("git"), Some(("fleet-bot", "s3cr3t-pa55"))).unwrap();
    let url = server.create_repo("fleet.git").unwrap();
    let decl = t.join("decl");
    std::fs::create_dir_all(&decl).unwrap();
    std::fs::write(decl.join("fleet.yaml"), fleet(&url)).unwrap();
    let repo = t.join("repo");
    let run = |creds: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_atoll"));
        c.args([
            "render",
            decl.to_str().unwrap(),
            "--repo",
            repo.to_str().unwrap(),
            "--bare",
            "--remote",
        ])
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .env_remove("ATOLL_GIT_USERNAME")
        .env_remove("ATOLL_GIT_PASSWORD")
        .env_remove("ATOLL_GIT_TOKEN");
        if creds {
            c.env("ATOLL_GIT_USERNAME", "fleet-bot")
                .env("ATOLL_GIT_PASSWORD", "s3cr3t-pa55");
        }
        c.output().unwrap()
    };
    let out = run(false);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains("committed, not pushed"), "{all}");
    let local = git(&repo, &["rev-parse", "HEAD"]);
    let remote_dir = t.join("git/fleet.git");
    assert!(
        Command::new("git")
            .arg("--git-dir")
            .arg(&remote_dir)
            .args(["rev-parse", "--verify", "-q", "main"])
            .output()
            .unwrap()
            .stdout
            .is_empty(),
        "nothing reached the server"
    );
    let out = run(true);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("no changes") && all.contains("pushed to"),
        "{all}"
    );
    assert_eq!(
        git(&remote_dir, &["rev-parse", "main"]),
        local,
        "the earlier commit was pushed"
    );
    assert!(!all.contains("s3cr3t-pa55"));
    let log = std::fs::read_dir(t.join("git"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    assert!(!log.contains("s3cr3t-pa55"));
}
