//! Helpers for the end-to-end tests: run the real `atoll` binary against real Git repositories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The upstream package catalog the examples pin (a real Git repo with tags v1, v2).
pub fn ensure_upstream() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let dest = root().join("target/upstream-packages");
        if dest.join(".git").exists() {
            return;
        }
        let st = Command::new("bash")
            .arg(root().join("examples/upstream-packages/make-repo.sh"))
            .arg(&dest)
            .status()
            .unwrap();
        assert!(st.success());
    });
}

pub fn atoll(args: &[&str]) -> Output {
    ensure_upstream();
    Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(args)
        .current_dir(root())
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .output()
        .unwrap()
}

pub fn ok(out: &Output) -> String {
    succeeded(out, "atoll")
}

/// Asserts that a command succeeded (saying `what` failed otherwise) and returns its stdout.
pub fn succeeded(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Resident memory of a process, now (VmRSS) and at its peak (VmHWM), in MiB; `None` when
/// the process is gone.
pub fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |f: &str| -> Option<f64> {
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(f))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// HEAD of a repository, or "" when it has none.
pub fn head(repo: &Path) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "--verify", "-q", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every file of the work tree (relative path → text), .git excluded.
pub fn files(dir: &Path) -> std::collections::BTreeMap<String, String> {
    fn walk(root: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.file_name().unwrap() == ".git" {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap(),
                );
            }
        }
    }
    let mut out = Default::default();
    walk(dir, dir, &mut out);
    out
}

/// Copies a folder (for tests that edit declarations).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

pub fn kubectl(api: &atoll_testenv::ApiServer, args: &[&str]) -> Output {
    api.kubectl().args(args).output().unwrap()
}

/// Installs the upstream CRDs from ../shared/schemas that rendered objects need.
pub fn install_upstream_crds(api: &atoll_testenv::ApiServer) {
    let schemas = root().join("../shared/schemas");
    for dir in [
        "cluster-api",
        "cluster-api-k3s",
        "cluster-api-provider-openstack",
        "flux",
        "argo-cd",
        "config-sync",
        "metallb",
    ] {
        succeeded(
            &kubectl(
                api,
                &[
                    "apply",
                    "--server-side",
                    "-f",
                    schemas.join(dir).to_str().unwrap(),
                ],
            ),
            dir,
        );
    }
    wait_established(api);
}

/// Waits until every CRD installed is served.
pub fn wait_established(api: &atoll_testenv::ApiServer) {
    succeeded(
        &kubectl(
            api,
            &[
                "wait",
                "--for=condition=Established",
                "crd",
                "--all",
                "--timeout=120s",
            ],
        ),
        "CRDs established",
    );
}

/// A small valid fleet (one cluster, one team, one application placed by a policy), the
/// base the bad-input and hostile-input cases change.
pub const BASE_FLEET: &str = r#"apiVersion: atoll.dev/v1alpha1
kind: IPPool
metadata: {name: pods}
spec: {purpose: pod, cidrs: ["10.64.0.0/14"]}
---
apiVersion: atoll.dev/v1alpha1
kind: IPPool
metadata: {name: lb}
spec: {purpose: loadBalancer, cidrs: ["203.0.113.0/30"]}
---
apiVersion: atoll.dev/v1alpha1
kind: InfrastructureProfile
metadata: {name: infra}
spec:
  type: Infrastructure
  revision: "1"
  infrastructure: {provider: docker, bootstrap: kubeadm, kubernetesVersion: v1.34.2}
---
apiVersion: atoll.dev/v1alpha1
kind: InfrastructureProfile
metadata: {name: net}
spec:
  type: Network
  revision: "1"
  network: {cni: calico, podPool: pods, serviceCIDR: 10.96.0.0/12}
---
apiVersion: atoll.dev/v1alpha1
kind: InfrastructureProfile
metadata: {name: metallb}
spec:
  type: Software
  revision: "1"
  software: {addon: metallb, addressPool: lb}
---
apiVersion: atoll.dev/v1alpha1
kind: InfrastructureProfile
metadata: {name: nginx}
spec:
  type: Software
  revision: "1"
  software: {addon: ingress-nginx}
---
apiVersion: atoll.dev/v1alpha1
kind: ClusterCatalog
metadata: {name: small}
spec:
  infrastructure: {name: infra, revision: "1"}
  network: {name: net, revision: "1"}
  software: [{name: metallb, revision: "1"}, {name: nginx, revision: "1"}]
---
apiVersion: atoll.dev/v1alpha1
kind: Team
metadata: {name: shop}
spec: {contributors: [shop-devs]}
---
apiVersion: atoll.dev/v1alpha1
kind: Cluster
metadata: {name: site-a, labels: {region: eu}}
spec: {catalog: small}
---
apiVersion: atoll.dev/v1alpha1
kind: Application
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  components:
    - name: web
      image: nginx:1.27
      expose: [{containerPort: 8080, public: true}]
---
apiVersion: atoll.dev/v1alpha1
kind: TargetPolicy
metadata: {name: web-everywhere, namespace: shop}
spec:
  appSelector: {matchLabels: {app: web}}
  clusterSelector: {matchLabels: {region: eu}}
"#;

/// Installs the operator in `api` with its own `atoll operator manifests` (management
/// namespace `mgmt`) and returns a kubeconfig for its ServiceAccount (a real signed token),
/// so that the shipped RBAC is what the operator runs with.
pub fn install_operator(api: &atoll_testenv::ApiServer, mgmt: &str) -> PathBuf {
    let manifests = api.dir().join("operator.yaml");
    std::fs::write(
        &manifests,
        ok(&atoll(&[
            "operator",
            "manifests",
            "--management-namespace",
            mgmt,
        ])),
    )
    .unwrap();
    succeeded(
        &kubectl(
            api,
            &["apply", "--server-side", "-f", manifests.to_str().unwrap()],
        ),
        "kubectl apply the operator manifests",
    );
    wait_established(api);
    let token = succeeded(
        &kubectl(
            api,
            &[
                "create",
                "token",
                "atoll-operator",
                "-n",
                "atoll-system",
                "--duration=2h",
            ],
        ),
        "kubectl create token",
    );
    api.kubeconfig_with_token("atoll-operator", token.trim())
        .unwrap()
}

/// A new `atoll serve` token in the store at `db`.
pub fn token(db: &str, name: &str, team: &str, role: &str) -> String {
    ok(&atoll(&[
        "token",
        "create",
        "--database",
        db,
        "--name",
        name,
        "--team",
        team,
        "--role",
        role,
    ]))
    .trim()
    .to_string()
}

/// A TCP port free on loopback now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
