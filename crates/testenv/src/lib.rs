//! A real Kubernetes control plane for tests, the way controller-runtime's envtest does it: etcd
//! and kube-apiserver (no kubelet, no controllers), built from their pinned Go modules by
//! `testenv/build.sh` (cached in `.cache/testenv`), started on loopback ports in a temporary
//! folder, stopped when the [`ApiServer`] is dropped. Each test gets its own.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the test environment could not be built or started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `testenv/build.sh` failed (its output).
    #[error("building the test environment (testenv/build.sh) failed: {0}")]
    Build(String),
    /// A component started but never answered.
    #[error("{what} did not become ready in {secs} s; its log:\n{log}")]
    NotReady {
        /// The component (etcd, kube-apiserver, a controller...).
        what: &'static str,
        /// How long it was given.
        secs: u64,
        /// The end of its log.
        log: String,
    },
    /// Starting a process or writing its files failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The kubeconfig for the API server could not be made or read.
    #[error("{0}")]
    Kubeconfig(String),
}

/// A running etcd + kube-apiserver pair.
pub struct ApiServer {
    etcd: Child,
    apiserver: Child,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// A kubeconfig for a cluster-admin user (bearer token), for kubectl and kube::Client.
    pub kubeconfig: PathBuf,
    /// The folder of the Go-built binaries (kube-apiserver, etcd, kubectl).
    pub bin: PathBuf,
    dir: tempfile::TempDir,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds (or finds cached) binaries and returns their folder.
pub fn binaries() -> Result<PathBuf, Error> {
    build("core")
}

/// Flux's source-controller and kustomize-controller (v1.9.6, built from their Go modules;
/// their CRDs in `crds/` beside them).
pub fn flux_binaries() -> Result<PathBuf, Error> {
    build("flux")
}

/// Cluster API v1.14.2 (core, kubeadm bootstrap, kubeadm control plane) and its Docker
/// provider v1.14.4 with the in-memory backend; CRDs and webhook registrations in
/// `config/<manager>/` beside them.
pub fn capi_binaries() -> Result<PathBuf, Error> {
    build("capi")
}

fn build(family: &str) -> Result<PathBuf, Error> {
    let out = Command::new("bash")
        .arg(repo_root().join("testenv/build.sh"))
        .arg(family)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(Error::Build(format!("exit status {}", out.status)));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for(
    what: &'static str,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), Error> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(Error::NotReady {
        what,
        secs: timeout.as_secs(),
        log: std::fs::read_to_string(log).unwrap_or_default(),
    })
}

impl ApiServer {
    /// Starts a fresh etcd and kube-apiserver and waits until the API server is ready.
    pub fn start() -> Result<ApiServer, Error> {
        let bin = binaries()?;
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let (client_port, peer_port, api_port) = (free_port()?, free_port()?, free_port()?);

        let etcd_log = d.join("etcd.log");
        let etcd = Command::new(bin.join("etcd"))
            .args([
                "--data-dir",
                &d.join("etcd").display().to_string(),
                "--listen-client-urls",
                &format!("http://127.0.0.1:{client_port}"),
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{client_port}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer_port}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer_port}"),
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{peer_port}"),
                "--unsafe-no-fsync",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&etcd_log)?)
            .spawn()?;

        // Service-account signing key, and a static token for an admin user.
        let key = d.join("sa.key");
        let st = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048")
            .stderr(Stdio::null())
            .status()?;
        if !st.success() {
            return Err(Error::Build("openssl genrsa failed".into()));
        }
        let token = format!("atoll-test-{}", std::process::id());
        std::fs::write(
            d.join("tokens.csv"),
            format!("{token},atoll-admin,atoll-admin,system:masters\n"),
        )?;

        // Audit every write at Metadata level: tests read who changed what.
        std::fs::write(
            d.join("audit-policy.yaml"),
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n  verbs: [create, update, patch, delete, deletecollection]\n- level: None\n",
        )?;

        let api_log = d.join("kube-apiserver.log");
        let apiserver = Command::new(bin.join("kube-apiserver"))
            .args([
                &format!("--etcd-servers=http://127.0.0.1:{client_port}"),
                &format!("--cert-dir={}", d.join("certs").display()),
                &format!("--secure-port={api_port}"),
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--service-account-issuer=https://kubernetes.default.svc",
                &format!("--service-account-key-file={}", key.display()),
                &format!("--service-account-signing-key-file={}", key.display()),
                &format!("--token-auth-file={}", d.join("tokens.csv").display()),
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--disable-admission-plugins=ServiceAccount",
                &format!(
                    "--audit-policy-file={}",
                    d.join("audit-policy.yaml").display()
                ),
                &format!("--audit-log-path={}", d.join("audit.log").display()),
                "--audit-log-mode=blocking",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&api_log)?)
            .spawn()?;

        let url = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = d.join("kubeconfig");
        write_kubeconfig(&kubeconfig, &url, &token)?;
        let server = ApiServer {
            etcd,
            apiserver,
            url,
            kubeconfig,
            bin,
            dir,
        };
        let kubectl = server.bin.join("kubectl");
        let kc = server.kubeconfig.clone();
        wait_for("kube-apiserver", &api_log, Duration::from_secs(90), || {
            Command::new(&kubectl)
                .arg("--kubeconfig")
                .arg(&kc)
                .args(["get", "--raw", "/readyz"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })?;
        Ok(server)
    }

    /// A client for the admin user.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
        kube::Client::try_from(config).map_err(|e| Error::Kubeconfig(e.to_string()))
    }

    /// `kubectl` against this server.
    pub fn kubectl(&self) -> Command {
        let mut c = Command::new(self.bin.join("kubectl"));
        c.arg("--kubeconfig").arg(&self.kubeconfig);
        c
    }

    /// A kubeconfig at `dir()/<name>.kubeconfig` that authenticates with `token` (a service
    /// account token from `kubectl create token`, say).
    pub fn kubeconfig_with_token(&self, name: &str, token: &str) -> Result<PathBuf, Error> {
        let p = self.dir().join(format!("{name}.kubeconfig"));
        write_kubeconfig(&p, &self.url, token)?;
        Ok(p)
    }

    /// The API server's audit log so far: one JSON event per write request (create, update,
    /// patch, delete), at Metadata level (user, verb, resource, name, response code).
    pub fn audit_events(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The scratch folder (logs, certificates, etcd data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// etcd's and kube-apiserver's process ids (to read their memory).
    pub fn pids(&self) -> Vec<(String, u32)> {
        vec![
            ("etcd".into(), self.etcd.id()),
            ("kube-apiserver".into(), self.apiserver.id()),
        ]
    }

    /// Freezes the API server (SIGSTOP): connections are accepted by the kernel and never
    /// answered, as with a site whose link is down.
    pub fn pause(&self) {
        signal(self.apiserver.id(), "STOP");
    }

    /// Lets a paused API server go on (SIGCONT).
    pub fn resume(&self) {
        signal(self.apiserver.id(), "CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

/// Git's smart-HTTP server (`gitserver`, built in testenv/) serving the repositories under
/// a folder, on loopback. Stopped when dropped.
pub struct GitServer {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The folder whose repositories it serves.
    pub root: PathBuf,
}

impl GitServer {
    /// Serves `root`; with `auth`, every request needs that basic-auth user and password.
    pub fn start(root: &Path, auth: Option<(&str, &str)>) -> Result<GitServer, Error> {
        let bin = binaries()?;
        let port = free_port()?;
        let log = root.join(format!("gitserver-{port}.log"));
        let mut c = Command::new(bin.join("gitserver"));
        c.arg("-root")
            .arg(root)
            .arg("-listen")
            .arg(format!("127.0.0.1:{port}"));
        if let Some((u, p)) = auth {
            c.args(["-user", u, "-password", p]);
        }
        let child = c
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let url = format!("http://127.0.0.1:{port}");
        wait_for("gitserver", &log, Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })?;
        Ok(GitServer {
            child,
            url,
            root: root.to_path_buf(),
        })
    }

    /// A new bare repository `name` that accepts pushes; returns its URL.
    pub fn create_repo(&self, name: &str) -> Result<String, Error> {
        let path = self.root.join(name);
        let st = Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&path)
            .status()?;
        let st2 = Command::new("git")
            .arg("--git-dir")
            .arg(&path)
            .args(["config", "http.receivepack", "true"])
            .status()?;
        if !st.success() || !st2.success() {
            return Err(Error::Build(format!("git init {}", path.display())));
        }
        Ok(format!("{}/{name}", self.url))
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Flux (source-controller + kustomize-controller) running against one API server, as the
/// agent of that cluster: its CRDs installed, the `flux-system` namespace, both controllers
/// as local processes (`KUBECONFIG` pointing at the cluster). Stopped when dropped.
pub struct Flux {
    children: Vec<Child>,
    /// The controllers' log files.
    pub logs: Vec<PathBuf>,
}

impl Flux {
    /// Installs Flux's CRDs and namespace into `api` and starts both controllers against it.
    pub fn start(api: &ApiServer) -> Result<Flux, Error> {
        let bin = flux_binaries()?;
        let run = |args: &[&str]| -> Result<(), Error> {
            let out = api.kubectl().args(args).output()?;
            if !out.status.success() {
                return Err(Error::Build(format!(
                    "kubectl {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            Ok(())
        };
        run(&["create", "namespace", "flux-system"])?;
        run(&[
            "apply",
            "--server-side",
            "-f",
            &bin.join("crds").display().to_string(),
        ])?;
        for crd in [
            "gitrepositories.source.toolkit.fluxcd.io",
            "kustomizations.kustomize.toolkit.fluxcd.io",
        ] {
            run(&[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                &format!("crd/{crd}"),
            ])?;
        }
        let dir = api.dir().join("flux");
        std::fs::create_dir_all(dir.join("storage"))?;
        let (storage, h1, m1, h2, m2) = (
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
        );
        let mut children = Vec::new();
        let mut logs = Vec::new();
        let spawn = |name: &str, args: Vec<String>| -> Result<(Child, PathBuf), Error> {
            let log = dir.join(format!("{name}.log"));
            let child = Command::new(bin.join(name))
                .args(args)
                .env("KUBECONFIG", &api.kubeconfig)
                .env("RUNTIME_NAMESPACE", "flux-system")
                .env(
                    "SOURCE_CONTROLLER_LOCALHOST",
                    format!("127.0.0.1:{storage}"),
                )
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()?;
            Ok((child, log))
        };
        let (c, l) = spawn(
            "source-controller",
            vec![
                format!("--storage-path={}", dir.join("storage").display()),
                format!("--storage-addr=127.0.0.1:{storage}"),
                format!("--storage-adv-addr=127.0.0.1:{storage}"),
                format!("--health-addr=127.0.0.1:{h1}"),
                format!("--metrics-addr=127.0.0.1:{m1}"),
                "--enable-leader-election=false".into(),
            ],
        )?;
        children.push(c);
        logs.push(l);
        let (c, l) = spawn(
            "kustomize-controller",
            vec![
                format!("--health-addr=127.0.0.1:{h2}"),
                format!("--metrics-addr=127.0.0.1:{m2}"),
                "--enable-leader-election=false".into(),
            ],
        )?;
        children.push(c);
        logs.push(l);
        Ok(Flux { children, logs })
    }
}

impl Drop for Flux {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The four Cluster API managers running against one API server (the management cluster):
/// their CRDs installed (providers with the contract label), webhooks served on loopback with
/// a self-signed certificate and registered by URL, each manager a local process. The Docker
/// provider runs its in-memory backend: workload "API servers" are fakes on 127.0.0.1:20000+
/// that answer for nodes and pods only. Stopped when dropped.
pub struct ClusterApi {
    children: Vec<(String, Child)>,
    /// Manager name → its log.
    pub logs: Vec<(String, PathBuf)>,
}

const CAPI_MANAGERS: [&str; 4] = [
    "capi-core",
    "capi-kubeadm-bootstrap",
    "capi-kubeadm-control-plane",
    "capd",
];

impl ClusterApi {
    /// Installs Cluster API's CRDs and webhooks-free setup into `api` and starts the core,
    /// kubeadm and in-memory provider controllers against it.
    pub fn start(api: &ApiServer) -> Result<ClusterApi, Error> {
        let bin = capi_binaries()?;
        let dir = api.dir().join("capi");
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs)?;
        let st = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(certs.join("tls.key"))
            .arg("-out")
            .arg(certs.join("tls.crt"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !st.success() {
            return Err(Error::Build(
                "openssl req (webhook certificate) failed".into(),
            ));
        }
        let ca = base64(&std::fs::read(certs.join("tls.crt"))?);
        let kubectl = |args: &[&str]| -> Result<(), Error> {
            let out = api.kubectl().args(args).output()?;
            if !out.status.success() {
                return Err(Error::Build(format!(
                    "kubectl {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            Ok(())
        };
        let mut children = Vec::new();
        let mut logs = Vec::new();
        let mut health = Vec::new();
        for manager in CAPI_MANAGERS {
            let config = bin.join("config").join(manager);
            let crds = config.join("crds").display().to_string();
            kubectl(&["apply", "--server-side", "-f", &crds])?;
            kubectl(&[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "-f",
                &crds,
            ])?;
            if manager != "capi-core" {
                // What clusterctl's kustomization adds: the contract this provider implements.
                kubectl(&[
                    "label",
                    "--overwrite",
                    "-f",
                    &crds,
                    "cluster.x-k8s.io/v1beta2=v1beta2",
                ])?;
            }
            let (webhook, probe, diag) = (free_port()?, free_port()?, free_port()?);
            let hooks = dir.join(format!("{manager}-webhooks.yaml"));
            let text = std::fs::read_to_string(config.join("webhooks.yaml"))?;
            std::fs::write(&hooks, webhooks_by_url(&text, manager, webhook, &ca))?;
            let log = dir.join(format!("{manager}.log"));
            let child = Command::new(bin.join(manager))
                .arg("--kubeconfig")
                .arg(&api.kubeconfig)
                .arg(format!("--webhook-cert-dir={}", certs.display()))
                .arg(format!("--webhook-port={webhook}"))
                .arg(format!("--health-addr=127.0.0.1:{probe}"))
                .arg(format!("--diagnostics-address=127.0.0.1:{diag}"))
                .args(["--insecure-diagnostics", "--leader-elect=false"])
                .env("POD_IP", "127.0.0.1")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()?;
            children.push((manager.to_string(), child));
            logs.push((manager.to_string(), log.clone()));
            health.push((hooks, probe, log));
        }
        let capi = ClusterApi { children, logs };
        // Register the webhooks once their servers answer: they fail closed.
        for (hooks, probe, log) in health {
            wait_for(
                "a Cluster API manager",
                &log,
                Duration::from_secs(120),
                || http_ok(probe, "/readyz"),
            )?;
            kubectl(&["apply", "--server-side", "-f", &hooks.display().to_string()])?;
        }
        Ok(capi)
    }

    /// Each manager's name and process id (to read its memory).
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.children
            .iter()
            .map(|(n, c)| (n.clone(), c.id()))
            .collect()
    }

    /// Stops one manager (by name), e.g. to make a cluster fail to progress.
    pub fn stop(&mut self, manager: &str) {
        for (name, c) in &mut self.children {
            if name == manager {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for ClusterApi {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A webhook registration pointing at a Service, rewritten to a loopback URL with `ca`, and
/// its configuration named after `manager` (all four managers call theirs the same).
fn webhooks_by_url(text: &str, manager: &str, port: u16, ca: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed == "service:" {
            let mut path = String::new();
            while let Some(next) = lines.peek() {
                let inner = next.len() - next.trim_start().len();
                if inner <= indent {
                    break;
                }
                if let Some(p) = next.trim().strip_prefix("path:") {
                    path = p.trim().to_string();
                }
                lines.next();
            }
            let pad = " ".repeat(indent);
            out.push_str(&format!("{pad}url: https://127.0.0.1:{port}{path}\n"));
            out.push_str(&format!("{pad}caBundle: {ca}\n"));
        } else if indent == 2
            && let Some(name) = trimmed.strip_prefix("name: ")
            && name.ends_with("webhook-configuration")
        {
            out.push_str(&format!("  name: {manager}-{name}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Whether `GET http://127.0.0.1:<port><path>` answers 200.
fn http_ok(port: u16, path: &str) -> bool {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    buf[..n].starts_with(b"HTTP/1.1 200") || buf[..n].starts_with(b"HTTP/1.0 200")
}

fn write_kubeconfig(path: &Path, url: &str, token: &str) -> Result<(), Error> {
    let mut f = std::fs::File::create(path)?;
    write!(
        f,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: testenv\n  cluster:\n    server: {url}\n    insecure-skip-tls-verify: true\nusers:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: testenv\n  context:\n    cluster: testenv\n    user: user\n    namespace: default\ncurrent-context: testenv\n"
    )?;
    Ok(())
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.apiserver.kill();
        let _ = self.apiserver.wait();
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("hello", "aGVsbG8="),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

    #[test]
    fn webhooks_point_at_loopback() {
        let text = "---\nkind: MutatingWebhookConfiguration\nmetadata:\n  name: mutating-webhook-configuration\nwebhooks:\n- clientConfig:\n    service:\n      name: webhook-service\n      namespace: system\n      path: /mutate-x\n  failurePolicy: Fail\n  name: default.x\n";
        let out = webhooks_by_url(text, "capd", 9443, "Q0E=");
        assert!(
            out.contains("  name: capd-mutating-webhook-configuration\n"),
            "{out}"
        );
        assert!(out.contains("    url: https://127.0.0.1:9443/mutate-x\n    caBundle: Q0E=\n  failurePolicy: Fail\n"), "{out}");
        assert!(!out.contains("webhook-service"), "{out}");
        assert!(out.contains("  name: default.x\n"), "{out}");
    }
}
