//! The observed side of the loop (seed 003's observe step, seed 004's central view): for each
//! cluster, atoll reads its GitOps agent's own status through the cluster's kubeconfig — the
//! `<cluster>-kubeconfig` Secret Cluster API writes in the management namespace, or the one an
//! `existing` cluster names — and joins it to the fleet repository: which commit the cluster
//! runs, how many commits behind HEAD that is, Ready / Progressing / Failed with the agent's
//! message, when atoll last reached it, and which delivered objects were changed in the
//! cluster (drift). A cluster that does not answer within the timeout is `Unreachable`;
//! clusters are read concurrently, so one that is down never holds up the others.

use atoll_gitops::{FleetRepo, ObjectId};
use atoll_model::GitOpsAgent;
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Why the clusters to observe could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the fleet repository failed.
    #[error("{0}")]
    Git(#[from] atoll_gitops::GitError),
    /// A cluster's state file in the repository does not parse.
    #[error("{file}: {message}")]
    State {
        /// The state file's path in the repository.
        file: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Where a cluster's kubeconfig is kept in the management cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SecretRef {
    /// The Secret's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
    /// The data key holding the kubeconfig.
    pub key: String,
}

/// A cluster to observe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The cluster's name.
    pub cluster: String,
    /// The GitOps agent that pulls its package.
    pub agent: GitOpsAgent,
    /// How to reach it.
    pub kubeconfig: SecretRef,
    /// `team/app` placed on it.
    pub applications: Vec<String>,
}

/// What a cluster's agent says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum SyncState {
    /// Applied, healthy.
    Ready,
    /// Applying, or waiting for a newer revision.
    Progressing,
    /// The agent reports an error.
    Failed,
    /// The cluster's API server did not answer (or its kubeconfig cannot be read).
    Unreachable,
    /// The agent's object is not in the cluster (not bootstrapped yet).
    NoAgent,
}

impl SyncState {
    /// The state as the status and `atoll status` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Ready => "Ready",
            SyncState::Progressing => "Progressing",
            SyncState::Failed => "Failed",
            SyncState::Unreachable => "Unreachable",
            SyncState::NoAgent => "NoAgent",
        }
    }
}

/// One cluster, observed.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSync {
    /// The cluster's name.
    pub cluster: String,
    /// What its agent reports, in one word.
    pub state: SyncState,
    /// The commit the agent last applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Commits between that one and HEAD (0: at HEAD; none: not in HEAD's history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behind: Option<usize>,
    /// The agent's own words.
    pub message: String,
    /// When atoll last reached the cluster's API server (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<String>,
    /// Objects of the cluster's package at HEAD whose live state differs from it
    /// (`Kind namespace/name: field`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    /// The cluster's nodes, as its API server lists them (none: not reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Nodes>,
}

/// A workload cluster's nodes: how many, how many Ready, and which kubelet versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Nodes {
    /// Nodes in the cluster.
    pub total: usize,
    /// Of them, Ready.
    pub ready: usize,
    /// Kubelet version → nodes running it.
    pub versions: BTreeMap<String, usize>,
}

impl Nodes {
    fn read(list: &[DynamicObject]) -> Nodes {
        let mut n = Nodes {
            total: list.len(),
            ..Nodes::default()
        };
        for node in list {
            let status = &node.data["status"];
            let ready = status["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            n.ready += usize::from(ready);
            if let Some(v) = status["nodeInfo"]["kubeletVersion"].as_str() {
                *n.versions.entry(v.to_string()).or_default() += 1;
            }
        }
        n
    }

    /// The one version every node runs, once they agree.
    pub fn version(&self) -> Option<&str> {
        match (self.versions.len(), self.versions.iter().next()) {
            (1, Some((v, n))) if *n == self.total => Some(v),
            _ => None,
        }
    }
}

/// What a CAPI Cluster's (v1beta2) status says about the cluster and its machines.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CapiCluster {
    /// `status.phase` (Pending, Provisioning, Provisioned, Deleting, Failed).
    pub phase: Option<String>,
    /// Control-plane and worker machines, ready of desired, and their versions.
    pub machines: atoll_model::MachinesStatus,
}

impl CapiCluster {
    /// Reads a CAPI Cluster's `status`.
    pub fn read(status: &Value) -> CapiCluster {
        let replicas = |part: &Value| -> Option<String> {
            let desired = part["desiredReplicas"].as_i64()?;
            Some(format!(
                "{}/{desired}",
                part["readyReplicas"].as_i64().unwrap_or(0)
            ))
        };
        let mut versions = Vec::new();
        for part in ["controlPlane", "workers"] {
            for v in status[part]["versions"].as_array().into_iter().flatten() {
                if let Some(version) = v["version"].as_str() {
                    versions.push(format!("{version}={}", v["replicas"].as_i64().unwrap_or(0)));
                }
            }
        }
        let available = status["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "ControlPlaneAvailable" && c["status"] == "True")
        });
        CapiCluster {
            phase: status["phase"].as_str().map(str::to_string),
            machines: atoll_model::MachinesStatus {
                control_plane_initialized: status["initialization"]["controlPlaneInitialized"]
                    == true,
                control_plane_available: available,
                control_plane: replicas(&status["controlPlane"]),
                workers: replicas(&status["workers"]),
                machine_versions: versions,
                ..Default::default()
            },
        }
    }
}

/// The CAPI Cluster of each target (in its kubeconfig Secret's namespace, where Cluster API
/// keeps both), as Cluster API reports it; clusters without one are left out.
pub async fn capi_clusters(
    mgmt: &kube::Client,
    targets: &[Target],
) -> BTreeMap<String, CapiCluster> {
    let ar = ApiResource {
        group: "cluster.x-k8s.io".into(),
        version: "v1beta2".into(),
        api_version: "cluster.x-k8s.io/v1beta2".into(),
        kind: "Cluster".into(),
        plural: "clusters".into(),
    };
    let mut out = BTreeMap::new();
    let mut namespaces: Vec<&str> = targets
        .iter()
        .map(|t| t.kubeconfig.namespace.as_str())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    for ns in namespaces {
        let api: Api<DynamicObject> = Api::namespaced_with(mgmt.clone(), ns, &ar);
        let Ok(list) = api.list(&Default::default()).await else {
            continue;
        };
        for c in list.items {
            let name = c.metadata.name.clone().unwrap_or_default();
            if targets
                .iter()
                .any(|t| t.cluster == name && t.kubeconfig.namespace == ns)
            {
                out.insert(name, CapiCluster::read(&c.data["status"]));
            }
        }
    }
    out
}

fn nodes_resource() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Node".into(),
        plural: "nodes".into(),
    }
}

/// How to observe.
#[derive(Clone, Debug)]
pub struct Options {
    /// A cluster that has not answered in this long is Unreachable.
    pub timeout: Duration,
    /// Clusters read at once.
    pub concurrency: usize,
    /// Compare the delivered objects with the cluster's (costs a read per object).
    pub drift: bool,
    /// Clients kept from earlier sweeps (a long-running shell keeps one `Clients`).
    pub clients: Clients,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            timeout: Duration::from_secs(10),
            concurrency: 32,
            drift: true,
            clients: Clients::default(),
        }
    }
}

/// The clusters of the repository's HEAD, with where to read each from (what the render
/// recorded in `state/clusters/<c>.yaml`).
pub fn targets(repo: &FleetRepo) -> Result<Vec<Target>, Error> {
    targets_since(repo, &mut TargetCache::default())
}

/// What [`targets_since`] parsed, by state file and blob: a long-running shell keeps one, so
/// that a commit costs a parse of the state files it changed, not of every cluster's.
#[derive(Default)]
pub struct TargetCache(std::collections::HashMap<String, (ObjectId, Target)>);

/// [`targets`], parsing only the state files whose content is not in `cache` (which is left
/// holding HEAD's).
pub fn targets_since(repo: &FleetRepo, cache: &mut TargetCache) -> Result<Vec<Target>, Error> {
    let ids = repo.head_ids_under(["state/clusters/"])?;
    let changed: BTreeMap<String, ObjectId> = ids
        .iter()
        .filter(|(path, id)| cache.0.get(*path).is_none_or(|(seen, _)| seen != *id))
        .map(|(p, id)| (p.clone(), *id))
        .collect();
    let mut parsed = std::collections::HashMap::with_capacity(changed.len());
    for (path, bytes) in repo.read_blobs(&changed)? {
        if let Some(t) = target_of(&path, &bytes)? {
            parsed.insert(path, t);
        }
    }
    let mut next = std::collections::HashMap::with_capacity(ids.len());
    let mut out = Vec::with_capacity(ids.len());
    for (path, id) in ids {
        let t = match parsed.remove(&path) {
            Some(t) => t,
            None => match cache.0.remove(&path) {
                Some((_, t)) => t,
                // Not a cluster's state file.
                None => continue,
            },
        };
        out.push(t.clone());
        next.insert(path, (id, t));
    }
    cache.0 = next;
    Ok(out)
}

/// One cluster's target from its state file (`None` for a path that is not one).
fn target_of(path: &str, bytes: &[u8]) -> Result<Option<Target>, Error> {
    let Some(cluster) = atoll_layout::cluster_of(path) else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(bytes);
    let state = atoll_model::yaml::parse_values(&text)
        .ok()
        .and_then(|v| v.into_iter().next())
        .ok_or_else(|| Error::State {
            file: path.to_string(),
            message: "not a YAML document".into(),
        })?;
    let observe = &state["observe"];
    let (Ok(agent), Ok(kubeconfig)) = (
        serde_json::from_value::<GitOpsAgent>(observe["agent"].clone()),
        serde_json::from_value::<SecretRef>(observe["kubeconfigSecret"].clone()),
    ) else {
        return Err(Error::State {
            file: path.to_string(),
            message: "no `observe` section: render again with this atoll".into(),
        });
    };
    let applications = state["applications"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(Target {
        cluster: cluster.to_string(),
        agent,
        kubeconfig,
        applications,
    }))
}

fn now() -> String {
    // RFC 3339 in UTC from the system clock, without a date crate.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A client for the workload cluster whose kubeconfig is in `secret`.
/// Clients kept between sweeps, per kubeconfig content: the next sweep reuses a cluster's
/// open connection instead of a new TLS handshake, and a rotated kubeconfig gets a new one.
#[derive(Clone, Default)]
pub struct Clients(std::sync::Arc<std::sync::Mutex<ClientMap>>);

/// Per Secret (`namespace/name`): its resourceVersion, the kubeconfig it held and the client
/// made from it.
type ClientMap = BTreeMap<String, (String, Vec<u8>, kube::Client)>;

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Clients({})",
            self.0.lock().map(|m| m.len()).unwrap_or(0)
        )
    }
}

/// What one list of a namespace's Secrets (metadata only) said of a cluster's Secret.
#[derive(Clone, Debug, PartialEq)]
enum Listed {
    /// Not listed (no list permission, or the list failed): read the Secret to know.
    Unknown,
    /// The namespace has no such Secret.
    Missing,
    /// It exists at this resourceVersion.
    At(String),
}

/// At most this many pages of 500 Secrets are listed per namespace (100,000 Secrets).
const MAX_SECRET_PAGES: usize = 200;

/// Per namespace, its Secrets' names and resourceVersions — one paged, metadata-only list
/// instead of a read per cluster, so a sweep of 10,000 clusters whose Secret is unchanged (or
/// not written yet) reads no Secret at all. `None` where the list is not allowed or failed.
async fn list_secrets(
    mgmt: &kube::Client,
    namespaces: std::collections::BTreeSet<String>,
) -> BTreeMap<String, Option<std::collections::HashMap<String, String>>> {
    let mut out = BTreeMap::new();
    for ns in namespaces {
        let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(mgmt.clone(), &ns);
        let mut names = std::collections::HashMap::new();
        let mut params = kube::api::ListParams::default().limit(500);
        // Bounded: an API server that hands out `continue` tokens without end gets the
        // per-Secret reads instead of holding the sweep.
        let mut pages = 0;
        let listed = loop {
            pages += 1;
            if pages > MAX_SECRET_PAGES {
                break None;
            }
            match api.list_metadata(&params).await {
                Ok(page) => {
                    for s in page.items {
                        if let (Some(n), Some(rv)) = (s.metadata.name, s.metadata.resource_version)
                        {
                            names.insert(n, rv);
                        }
                    }
                    match page.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(c) => params = params.continue_token(&c),
                        None => break Some(names),
                    }
                }
                Err(_) => break None,
            }
        };
        out.insert(ns, listed);
    }
    out
}

async fn client_for(
    mgmt: &kube::Client,
    secret: &SecretRef,
    listed: Listed,
    timeout: Duration,
    clients: &Clients,
) -> Result<kube::Client, String> {
    let missing = || {
        format!(
            "no Secret {}/{} with the cluster's kubeconfig",
            secret.namespace, secret.name
        )
    };
    let key = format!("{}/{}", secret.namespace, secret.name);
    match &listed {
        Listed::Missing => return Err(missing()),
        Listed::At(rv) => {
            if let Some((seen, _, c)) = clients.0.lock().expect("clients").get(&key)
                && seen == rv
            {
                return Ok(c.clone());
            }
        }
        Listed::Unknown => {}
    }
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(mgmt.clone(), &secret.namespace);
    let s = api
        .get_opt(&secret.name)
        .await
        .map_err(|e| format!("reading Secret {}/{}: {e}", secret.namespace, secret.name))?
        .ok_or_else(missing)?;
    let rv = s.metadata.resource_version.clone().unwrap_or_default();
    let bytes = s
        .data
        .as_ref()
        .and_then(|d| d.get(&secret.key))
        .map(|b| b.0.clone())
        .ok_or_else(|| {
            format!(
                "Secret {}/{} has no key `{}`",
                secret.namespace, secret.name, secret.key
            )
        })?;
    {
        let mut kept = clients.0.lock().expect("clients");
        if let Some((seen_rv, seen, c)) = kept.get_mut(&key)
            && *seen == bytes
        {
            *seen_rv = rv;
            return Ok(c.clone());
        }
    }
    let kc =
        kube::config::Kubeconfig::from_yaml(&String::from_utf8_lossy(&bytes)).map_err(|e| {
            format!(
                "the kubeconfig in {}/{}: {e}",
                secret.namespace, secret.name
            )
        })?;
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(|e| {
            format!(
                "the kubeconfig in {}/{}: {e}",
                secret.namespace, secret.name
            )
        })?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
    clients
        .0
        .lock()
        .expect("clients")
        .insert(key, (rv, bytes, client.clone()));
    Ok(client)
}

/// The agent's object: (group, version, kind, plural, namespace, name).
fn agent_object(agent: GitOpsAgent) -> (ApiResource, &'static str, &'static str) {
    let ar = |group: &str, version: &str, kind: &str, plural: &str| ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    };
    match agent {
        GitOpsAgent::Flux => (
            ar(
                "kustomize.toolkit.fluxcd.io",
                "v1",
                "Kustomization",
                "kustomizations",
            ),
            "flux-system",
            "atoll-cluster",
        ),
        GitOpsAgent::ArgoCd => (
            ar("argoproj.io", "v1alpha1", "Application", "applications"),
            "argocd",
            "atoll-cluster",
        ),
        GitOpsAgent::ConfigSync => (
            ar("configsync.gke.io", "v1beta1", "RootSync", "rootsyncs"),
            "config-management-system",
            "root-sync",
        ),
    }
}

/// The commit in a revision string (`main@sha1:abc…`, `abc…`).
fn commit_of(rev: &str) -> Option<String> {
    let sha = rev.rsplit(':').next().unwrap_or(rev);
    let sha = sha.rsplit('@').next().unwrap_or(sha);
    (sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then(|| sha.to_string())
}

/// Reads the agent's status: (state, revision, message).
fn read_agent(agent: GitOpsAgent, status: &Value) -> (SyncState, Option<String>, String) {
    let cond = |t: &str| {
        status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t))
            .cloned()
    };
    match agent {
        GitOpsAgent::Flux => {
            let revision = status["lastAppliedRevision"].as_str().and_then(commit_of);
            let Some(ready) = cond("Ready") else {
                return (
                    SyncState::Progressing,
                    revision,
                    "no Ready condition yet".into(),
                );
            };
            let msg = ready["message"].as_str().unwrap_or("").to_string();
            let reason = ready["reason"].as_str().unwrap_or("");
            let state = match ready["status"].as_str() {
                Some("True") => SyncState::Ready,
                Some("False")
                    if matches!(
                        reason,
                        "Progressing" | "ProgressingWithRetry" | "DependencyNotReady"
                    ) =>
                {
                    SyncState::Progressing
                }
                Some("False") => SyncState::Failed,
                _ => SyncState::Progressing,
            };
            (state, revision, msg)
        }
        GitOpsAgent::ArgoCd => {
            let sync = status["sync"]["status"].as_str().unwrap_or("");
            let health = status["health"]["status"].as_str().unwrap_or("");
            let revision = status["sync"]["revision"].as_str().and_then(commit_of);
            let state = match (sync, health) {
                ("Synced", "Healthy") => SyncState::Ready,
                (_, "Degraded" | "Missing") => SyncState::Failed,
                _ => SyncState::Progressing,
            };
            (state, revision, format!("sync {sync}, health {health}"))
        }
        GitOpsAgent::ConfigSync => {
            let revision = status["lastSyncedCommit"]
                .as_str()
                .or(status["sync"]["commit"].as_str())
                .and_then(commit_of);
            let errors = status["sync"]["errorSummary"]["totalCount"]
                .as_u64()
                .unwrap_or(0);
            let syncing = cond("Syncing").is_some_and(|c| c["status"] == "True");
            let state = if errors > 0 {
                SyncState::Failed
            } else if syncing {
                SyncState::Progressing
            } else {
                SyncState::Ready
            };
            (state, revision, format!("{errors} sync error(s)"))
        }
    }
}

/// Whether every field of `want` is in `live` with the same value (what the server adds is
/// not drift). Returns the first differing field path.
fn differs(want: &Value, live: &Value, path: &str) -> Option<String> {
    match (want, live) {
        (Value::Object(w), Value::Object(l)) => w.iter().find_map(|(k, v)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match l.get(k) {
                Some(lv) => differs(v, lv, &p),
                None if v.is_null() => None,
                None => Some(p),
            }
        }),
        (Value::Array(w), Value::Array(l)) => {
            if w.len() != l.len() {
                return Some(path.to_string());
            }
            w.iter()
                .zip(l)
                .enumerate()
                .find_map(|(i, (a, b))| differs(a, b, &format!("{path}[{i}]")))
        }
        (Value::Number(a), Value::Number(b)) => (a.as_f64() != b.as_f64()).then(|| path.into()),
        (a, b) => (a != b).then(|| path.to_string()),
    }
}

/// The kinds whose live state is compared with the package (workloads and their wiring).
fn compared(kind: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match kind {
        "Deployment" => ("apps", "v1", "deployments"),
        "StatefulSet" => ("apps", "v1", "statefulsets"),
        "DaemonSet" => ("apps", "v1", "daemonsets"),
        "Service" => ("", "v1", "services"),
        "ConfigMap" => ("", "v1", "configmaps"),
        "ServiceAccount" => ("", "v1", "serviceaccounts"),
        "Role" => ("rbac.authorization.k8s.io", "v1", "roles"),
        "RoleBinding" => ("rbac.authorization.k8s.io", "v1", "rolebindings"),
        _ => return None,
    })
}

/// The objects of a cluster's package at HEAD that drift detection compares.
fn desired_objects(repo: &FleetRepo, cluster: &str) -> Result<Vec<Value>, Error> {
    let dir = atoll_layout::package_dir(cluster);
    let files = repo.head_files_under([dir.as_str()])?;
    let mut out = Vec::new();
    for (path, bytes) in files {
        if !path.ends_with(".yaml") || path.ends_with("kustomization.yaml") {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        let Ok(docs) = atoll_model::yaml::parse_values(&text) else {
            continue;
        };
        out.extend(docs.into_iter().filter(|d| {
            d["kind"].as_str().and_then(compared).is_some()
                && d["metadata"]["namespace"].is_string()
        }));
    }
    Ok(out)
}

async fn drift_of(client: &kube::Client, desired: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for want in desired {
        let kind = want["kind"].as_str().unwrap_or("");
        let Some((group, version, plural)) = compared(kind) else {
            continue;
        };
        let ns = want["metadata"]["namespace"].as_str().unwrap_or("");
        let name = want["metadata"]["name"].as_str().unwrap_or("");
        let ar = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: if group.is_empty() {
                version.into()
            } else {
                format!("{group}/{version}")
            },
            kind: kind.into(),
            plural: plural.into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        match api.get_opt(name).await {
            Ok(Some(live)) => {
                let live = serde_json::to_value(&live).unwrap_or_default();
                let mut w = want.clone();
                // The agent's own bookkeeping is not drift.
                if let Some(m) = w["metadata"].as_object_mut() {
                    m.remove("annotations");
                }
                for part in ["spec", "data", "rules", "subjects", "roleRef", "metadata"] {
                    if let Some(f) = differs(&w[part], &live[part], part)
                        && !w[part].is_null()
                    {
                        out.push(format!("{kind} {ns}/{name}: {f}"));
                        break;
                    }
                }
            }
            Ok(None) => out.push(format!("{kind} {ns}/{name}: missing")),
            Err(_) => {}
        }
    }
    out
}

/// What the repository says before the clusters are read: HEAD, and each cluster's
/// delivered objects (for drift). Kept apart so that no repository handle is held while
/// waiting on the clusters.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// The commit the clusters should be at.
    pub head: Option<ObjectId>,
    /// Per cluster, the objects its package delivers (compared with the live ones).
    pub objects: BTreeMap<String, Vec<Value>>,
}

/// Reads [`Desired`] from the repository.
pub fn desired(repo: &FleetRepo, targets: &[Target], drift: bool) -> Desired {
    Desired {
        head: repo.head().ok().flatten().map(|(c, _)| c),
        objects: if drift {
            targets
                .iter()
                .map(|t| {
                    (
                        t.cluster.clone(),
                        desired_objects(repo, &t.cluster).unwrap_or_default(),
                    )
                })
                .collect()
        } else {
            BTreeMap::new()
        },
    }
}

/// Fills in how many commits each cluster is behind HEAD.
pub fn behind(repo: &FleetRepo, head: Option<ObjectId>, syncs: &mut [ClusterSync]) {
    let Some(h) = head else { return };
    for s in syncs {
        if let Some(rev) = &s.revision
            && let Ok(id) = ObjectId::from_hex(rev.as_bytes())
        {
            s.behind = repo.commits_between(id, h).ok().flatten();
        }
    }
}

/// Observes every target. `previous` carries each cluster's last contact over a failed
/// read. The repository (when given) turns applied revisions into "commits behind HEAD" and
/// gives the desired objects for drift.
pub async fn collect(
    mgmt: &kube::Client,
    repo: Option<&FleetRepo>,
    targets: &[Target],
    previous: &BTreeMap<String, ClusterSync>,
    options: &Options,
) -> Vec<ClusterSync> {
    let head = repo.and_then(|r| r.head().ok().flatten().map(|(c, _)| c));
    let want = Desired {
        head,
        objects: BTreeMap::new(),
    };
    let mut out = read_clusters(mgmt, &want, targets, previous, options).await;
    // Drift only where it means something: clusters whose agent applied HEAD. Reading every
    // cluster's delivered objects from Git first would cost a parse of the whole repository
    // on every sweep (minutes at 10,000 clusters, most of them not ready).
    if let (Some(r), true) = (repo, options.drift) {
        let head_hex = head.map(|h| h.to_string());
        let at_head: Vec<Target> = targets
            .iter()
            .filter(|t| {
                out.binary_search_by(|s| s.cluster.as_str().cmp(&t.cluster))
                    .ok()
                    .is_some_and(|i| {
                        out[i].state == SyncState::Ready && out[i].revision == head_hex
                    })
            })
            .cloned()
            .collect();
        if !at_head.is_empty() {
            let want = desired(r, &at_head, true);
            for again in read_clusters(mgmt, &want, &at_head, previous, options).await {
                if let Ok(i) = out.binary_search_by(|s| s.cluster.cmp(&again.cluster)) {
                    out[i] = again;
                }
            }
        }
    }
    if let Some(r) = repo {
        behind(r, head, &mut out);
    }
    out
}

/// Reads every target's agent (without the repository: see [`collect`]).
pub async fn read_clusters(
    mgmt: &kube::Client,
    want: &Desired,
    targets: &[Target],
    previous: &BTreeMap<String, ClusterSync>,
    options: &Options,
) -> Vec<ClusterSync> {
    let head = want.head;
    let namespaces = targets.iter().map(|t| t.kubeconfig.namespace.clone());
    let secrets = list_secrets(mgmt, namespaces.collect()).await;
    // Each job owns what it reads, so the whole is `Send` for any caller's runtime.
    let jobs = targets.iter().cloned().map(|t| {
        let listed = match secrets.get(&t.kubeconfig.namespace) {
            Some(Some(names)) => names
                .get(&t.kubeconfig.name)
                .map_or(Listed::Missing, |rv| Listed::At(rv.clone())),
            _ => Listed::Unknown,
        };
        let desired = want.objects.get(t.cluster.as_str()).cloned().unwrap_or_default();
        let last = previous.get(&t.cluster).and_then(|p| p.last_contact.clone());
        let prev_revision = previous.get(&t.cluster).and_then(|p| p.revision.clone());
        let head = head.map(|h| h.to_string());
        let mgmt = mgmt.clone();
        let options = options.clone();
        async move {
            let work = async {
                let client = client_for(&mgmt, &t.kubeconfig, listed, options.timeout, &options.clients)
                    .await
                    .map_err(|m| (SyncState::Unreachable, m))?;
                let nodes: Api<DynamicObject> = Api::all_with(client.clone(), &nodes_resource());
                let nodes = match nodes.list(&Default::default()).await {
                    Ok(list) => Some(Nodes::read(&list.items)),
                    // It answered (a kubeconfig may not be allowed to list nodes).
                    Err(kube::Error::Api(_)) => None,
                    Err(e) => {
                        return Err((
                            SyncState::Unreachable,
                            format!("the cluster's API server: {e}"),
                        ));
                    }
                };
                let contact = now();
                let (ar, ns, name) = agent_object(t.agent);
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
                let obj = match api.get_opt(name).await {
                    Ok(o) => o,
                    // It answered, but cannot serve the agent's kind (no CRD yet).
                    Err(kube::Error::Api(s)) => {
                        return Ok((
                            SyncState::NoAgent,
                            None,
                            format!("cannot read {} {ns}/{name}: {}", ar.kind, s.message),
                            contact,
                            Vec::new(),
                            nodes,
                        ));
                    }
                    Err(e) => {
                        return Err((
                            SyncState::Unreachable,
                            format!("the cluster's API server: {e}"),
                        ));
                    }
                };
                let Some(obj) = obj else {
                    return Ok((
                        SyncState::NoAgent,
                        None,
                        format!(
                            "no {} {ns}/{name} in the cluster: bootstrap the agent with management/gitops/{}.yaml",
                            ar.kind, t.cluster
                        ),
                        contact,
                        Vec::new(),
                        nodes,
                    ));
                };
                let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
                let (state, revision, message) = read_agent(t.agent, &status);
                let drift = if state == SyncState::Ready && revision == head && !desired.is_empty() {
                    drift_of(&client, &desired).await
                } else {
                    Vec::new()
                };
                Ok((state, revision, message, contact, drift, nodes))
            };
            let r = match tokio::time::timeout(options.timeout, work).await {
                Ok(r) => r,
                Err(_) => Err((
                    SyncState::Unreachable,
                    format!("no answer within {} s", options.timeout.as_secs()),
                )),
            };
            match r {
                Ok((state, revision, message, contact, drift, nodes)) => ClusterSync {
                    cluster: t.cluster.clone(),
                    state,
                    revision,
                    behind: None,
                    message,
                    last_contact: Some(contact),
                    drift,
                    nodes,
                },
                Err((state, message)) => ClusterSync {
                    cluster: t.cluster.clone(),
                    state,
                    revision: prev_revision,
                    behind: None,
                    message,
                    last_contact: last,
                    drift: Vec::new(),
                    nodes: None,
                },
            }
        }
    });
    let mut out: Vec<ClusterSync> = futures::stream::iter(jobs)
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    out.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    out
}

/// Per application (`team/app`): on how many of its clusters it runs as HEAD wants it (the
/// cluster's applied commit has the same `clusters/<c>/apps/<team>/<app>` as HEAD), and on
/// how many it is placed.
pub fn applications(
    repo: &FleetRepo,
    targets: &[Target],
    syncs: &[ClusterSync],
) -> BTreeMap<String, (usize, usize)> {
    let by: BTreeMap<&str, &ClusterSync> = syncs.iter().map(|s| (s.cluster.as_str(), s)).collect();
    let head = repo.head().ok().flatten();
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for t in targets {
        for app in &t.applications {
            let e = out.entry(app.clone()).or_default();
            e.1 += 1;
            let Some(s) = by.get(t.cluster.as_str()) else {
                continue;
            };
            let (Some(rev), Some((_, head_tree))) = (&s.revision, head) else {
                continue;
            };
            let Ok(id) = ObjectId::from_hex(rev.as_bytes()) else {
                continue;
            };
            let path = format!("{}apps/{app}", atoll_layout::package_dir(&t.cluster));
            let at = |tree| repo.tree_entry(tree, &path).ok().flatten();
            let applied_tree = repo.tree_of(id).ok().flatten();
            if s.state != SyncState::Unreachable
                && let Some(applied) = applied_tree
                && at(applied) == at(head_tree)
                && at(head_tree).is_some()
            {
                e.0 += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(cluster: &str, apps: &[&str]) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "observe": {
                "agent": "flux",
                "kubeconfigSecret": {"namespace": "fleet", "name": format!("{cluster}-kubeconfig"), "key": "value"},
            },
            "applications": apps,
        }))
        .unwrap()
    }

    #[test]
    fn a_commit_costs_a_parse_of_the_state_files_it_changed() {
        let dir = tempfile::tempdir().unwrap();
        let repo = FleetRepo::open_or_init_bare(dir.path()).unwrap();
        let path = |c: &str| atoll_layout::state_file(c);
        let mut files: atoll_gitops::Files = ["a", "b", "c"]
            .iter()
            .map(|c| (path(c), state(c, &["team/web"])))
            .collect();
        repo.commit(&files, "one").unwrap();
        let mut cache = TargetCache::default();
        let first = targets_since(&repo, &mut cache).unwrap();
        assert_eq!(first, targets(&repo).unwrap());
        assert_eq!(
            first.iter().map(|t| t.cluster.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        // Mark what the cache holds for `a`: kept as long as a's file is the same blob.
        cache.0.get_mut(&path("a")).unwrap().1.applications = vec!["marked".into()];
        files.insert(path("b"), state("b", &["team/web", "team/db"]));
        files.remove(&path("c"));
        repo.commit(&files, "two").unwrap();
        let second = targets_since(&repo, &mut cache).unwrap();
        assert_eq!(
            second
                .iter()
                .map(|t| (t.cluster.as_str(), t.applications.join(",")))
                .collect::<Vec<_>>(),
            [("a", "marked".into()), ("b", "team/web,team/db".into())]
        );
        assert_eq!(cache.0.len(), 2);
        // A file that changed back is parsed again, not taken from a stale entry.
        files.insert(path("a"), state("a", &[]));
        repo.commit(&files, "three").unwrap();
        assert!(
            targets_since(&repo, &mut cache).unwrap()[0]
                .applications
                .is_empty()
        );
    }

    #[test]
    fn agent_status_is_read_as_the_agents_write_it() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let flux = json!({"lastAppliedRevision": format!("main@sha1:{sha}"),
            "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "Applied revision"}]});
        assert_eq!(
            read_agent(GitOpsAgent::Flux, &flux),
            (
                SyncState::Ready,
                Some(sha.into()),
                "Applied revision".into()
            )
        );
        let failing = json!({"conditions": [{"type": "Ready", "status": "False", "reason": "BuildFailed", "message": "kustomize build failed"}]});
        assert_eq!(read_agent(GitOpsAgent::Flux, &failing).0, SyncState::Failed);
        let argo =
            json!({"sync": {"status": "Synced", "revision": sha}, "health": {"status": "Healthy"}});
        assert_eq!(read_agent(GitOpsAgent::ArgoCd, &argo).0, SyncState::Ready);
        assert_eq!(commit_of("main@sha1:zz"), None);
    }

    #[test]
    fn drift_is_a_difference_in_what_was_delivered() {
        let want = json!({"replicas": 2, "template": {"spec": {"containers": [{"image": "a:1"}]}}});
        let same = json!({"replicas": 2, "paused": false, "template": {"spec": {"containers": [{"image": "a:1", "imagePullPolicy": "IfNotPresent"}]}}});
        assert_eq!(differs(&want, &same, "spec"), None);
        let scaled =
            json!({"replicas": 5, "template": {"spec": {"containers": [{"image": "a:1"}]}}});
        assert_eq!(
            differs(&want, &scaled, "spec"),
            Some("spec.replicas".into())
        );
    }

    #[test]
    fn now_is_rfc3339() {
        let n = now();
        assert_eq!(n.len(), 20, "{n}");
        assert!(n.starts_with("20") && n.ends_with('Z'));
    }
}
