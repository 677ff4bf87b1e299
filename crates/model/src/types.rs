//! The atoll.dev/v1alpha1 kinds. Each spec is a kube `CustomResource`, so `atoll crds` prints
//! CRDs generated from these very declarations.
//!
//! Fleet-level kinds (profiles, catalogs, clusters, logical clusters, teams, pools, workload
//! deployments, package variants, the fleet itself) are cluster-scoped. Applications and
//! target policies are namespaced: their namespace is the owning team.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const GROUP: &str = "atoll.dev";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "atoll.dev/v1alpha1";

fn preserve_unknown(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

// ---------------------------------------------------------------- status, shared by all kinds

/// What the operator observed and did; empty when declarations come from files.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Clusters this object is placed on or affects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// The Git commit that last changed what this object renders to (an Application: its
    /// package on each of its clusters; anything else: its clusters' packages and Cluster API
    /// objects); HEAD holds the same rendering of it. Not moved by commits that change only
    /// other clusters or other applications, so that a one-cluster change rewrites one
    /// status, not the fleet's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The Cluster API phase, read back from the CAPI Cluster (Cluster kind only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// What the cluster's GitOps agent reports (Cluster kind only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncStatus>,
    /// On how many of its clusters the application runs as HEAD wants it, as `n/m`
    /// (Application kind only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_head: Option<String>,
    /// What Cluster API and the cluster's own nodes report about its machines (Cluster kind
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machines: Option<MachinesStatus>,
    /// Upgrade waves in progress under this object's rollout policy (Fleet, or a
    /// ClusterCatalog with its own), or the wave a held Cluster is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,
}

/// Where a rollout stands.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// Rolling, Baking, Paused, Failed or Complete.
    pub phase: String,
    /// Waves released out of all, as `1/3` (for a Cluster: its wave, as `2/3`).
    pub wave: String,
    /// What the rollout waits for, or why it stopped (the failing cluster named).
    #[serde(default)]
    pub message: String,
    /// Each wave's clusters, `1: lab-a,lab-b`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<String>,
    /// Clusters of the last released wave not yet healthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<String>,
}

/// A cluster's machines as Cluster API (the CAPI Cluster's status) and the workload cluster's
/// nodes (read through its kubeconfig Secret) report them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MachinesStatus {
    /// The control plane has been initialised (its first machine answers).
    #[serde(default)]
    pub control_plane_initialized: bool,
    /// The CAPI Cluster's `ControlPlaneAvailable` condition is true.
    #[serde(default)]
    pub control_plane_available: bool,
    /// Control-plane machines ready out of desired, as `ready/desired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<String>,
    /// Worker machines (all MachineDeployments) ready out of desired, as `ready/desired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<String>,
    /// Kubernetes versions Cluster API reports for the machines (control plane and
    /// workers), with how many machines run each, as `v1.34.2=3`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machine_versions: Vec<String>,
    /// Kubelet versions the cluster's nodes report, with how many nodes run each; several
    /// entries while an upgrade rolls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_versions: Vec<String>,
    /// The one version every node reports, once they agree (the `Version` column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Nodes whose `Ready` condition is true, out of all, as `ready/total`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<String>,
}

/// A cluster as its GitOps agent sees it, read through the cluster's kubeconfig.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// Ready, Progressing, Failed, Unreachable or NoAgent.
    pub state: String,
    /// The commit the agent last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Commits between that one and HEAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behind: Option<i64>,
    /// The agent's message.
    #[serde(default)]
    pub message: String,
    /// When atoll last reached the cluster (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<String>,
    /// Delivered objects changed in the cluster (`Kind namespace/name: field`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
}

/// A condition in the Kubernetes style.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Ready, Reconciling or Stalled.
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    /// A CamelCase reason.
    #[serde(default)]
    pub reason: String,
    /// A human-readable message.
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time of the last change of `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The generation the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

// ---------------------------------------------------------------- fleet

/// Settings that apply to the whole fleet. At most one Fleet object; without it the defaults hold.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[kube(
    group = "atoll.dev",
    version = "v1alpha1",
    kind = "Fleet",
    status = "Status"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetSpec {
    /// How rendered packages reach the clusters.
    #[serde(default)]
    pub gitops: GitOpsSettings,
    /// DNS domain for generated ingress hosts (`<component>.<app>.<cluster>.<domain>`). Default `atoll.local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Namespace of the management cluster that holds the Cluster API objects. Default `atoll-system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_namespace: Option<String>,
    /// Where upstream packages may come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstreams: Option<UpstreamSettings>,
    /// How changes to existing clusters' Cluster API objects (a Kubernetes version, a profile
    /// revision, a size) roll out: in waves, each released only once the previous one is
    /// healthy. Absent: every cluster at once. A catalog may set its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutPolicy>,
}

/// Upgrade waves (seed 001's zero-downtime upgrade of edge sites). The clusters a change
/// touches are ordered by `orderBy` labels, then name, and cut into waves of
/// `maxUnavailable`. The first wave's new spec is committed at once; each later wave only
/// when every cluster of the one before reports the new Kubernetes version on all its
/// machines, with every machine ready (the health gate), and `bakeTime` has passed since.
/// Clusters not yet reached keep their old spec in Git. A wave that does not pass its gate
/// within `progressDeadline` stops the rollout (status names the cluster); it goes on by
/// itself once that cluster is healthy. Gates are judged by the operator, which sees the
/// Cluster API objects; `atoll render` and `atoll serve` release the first wave and hold
/// the rest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutPolicy {
    /// Label keys to order clusters by (`[region, zone]`); clusters without a key sort last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_by: Vec<String>,
    /// Clusters changed at a time: the size of each wave (at least 1).
    pub max_unavailable: u32,
    /// How long a wave stays healthy before the next is released (`30s`, `5m`). Default `0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_time: Option<String>,
    /// How long a released wave may take to pass its gate before the rollout is reported
    /// Failed and stops. Default `30m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline: Option<String>,
    /// Release no further wave (the ones released go on); set back to false to resume.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

/// Seconds in a duration written `90s`, `5m`, `2h` or a sum of them (`1h30m`).
pub fn parse_duration(s: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut num = String::new();
    if s.is_empty() {
        return None;
    }
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
        let n: u64 = num.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        num.clear();
    }
    num.is_empty().then_some(total)
}

/// Which upstream package repositories a fleet may read. Local repositories are allowed only
/// under the roots the command line gives (`--upstream-root`, `--upstream-base`); remote ones
/// only when their URL starts with one of `allowedRemotes`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamSettings {
    /// URL prefixes of remote repositories packages may come from
    /// (`https://github.com/example/catalog`). Empty: no remote repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_remotes: Vec<String>,
}

/// The Git repository the agents pull from, and which agent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitOpsSettings {
    /// The agent used by clusters that do not choose one. Default `flux`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<GitOpsAgent>,
    /// URL the agents clone. Default `https://git.example.com/fleet.git`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "repoURL")]
    pub repo_url: Option<String>,
    /// Branch the agents follow. Default `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// How often the agents look for new commits and re-apply (healing drift), as a Go
    /// duration (`30s`, `5m`). Default: Flux's source every `1m` and its Kustomization every
    /// `5m`; Argo CD's and Config Sync's own defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

/// A GitOps agent that runs in each workload cluster.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum GitOpsAgent {
    #[serde(rename = "argocd")]
    ArgoCd,
    #[serde(rename = "flux")]
    Flux,
    #[serde(rename = "configsync")]
    ConfigSync,
}

// ---------------------------------------------------------------- profiles and catalogs

/// A versioned, reusable piece of cluster configuration (seed 001).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema, PartialEq)]
#[kube(
    group = "atoll.dev",
    version = "v1alpha1",
    kind = "InfrastructureProfile",
    shortname = "iprof",
    status = "Status",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Revision","type":"string","jsonPath":".spec.revision"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InfrastructureProfileSpec {
    /// Which part of a cluster this profile describes.
    #[serde(rename = "type")]
    pub type_: ProfileType,
    /// The profile's name in references (`name@revision`). Defaults to `metadata.name`, so several
    /// revisions of one profile can coexist as objects named e.g. `small-1.0.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    /// The revision, e.g. `1.0.0`. Together with the name it identifies the profile.
    pub revision: String,
    /// A profile of the same type whose values this one overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<ProfileRef>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Values of an Infrastructure profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure: Option<InfrastructureValues>,
    /// Values of a Network profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkValues>,
    /// Values of a Software profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<SoftwareValues>,
}

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum ProfileType {
    Infrastructure,
    Network,
    Software,
}

/// A reference to a profile revision.
#[derive(
    Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(deny_unknown_fields)]
pub struct ProfileRef {
    /// The profile's name (`spec.profileName`, or `metadata.name`).
    pub name: String,
    /// The exact revision.
    pub revision: String,
}

impl std::fmt::Display for ProfileRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.revision)
    }
}

/// Where and how the machines of a cluster are made. Every field is optional so that profiles
/// and overrides can set just what they change.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InfrastructureValues {
    /// The Cluster API infrastructure provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Kubernetes version, `v1.34.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Number of control-plane machines (odd, for etcd quorum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_count: Option<i32>,
    /// Machine flavor (OpenStack) of control-plane machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_flavor: Option<String>,
    /// Number of worker machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_count: Option<i32>,
    /// Machine flavor of worker machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_flavor: Option<String>,
    /// Machine image (OpenStack image name; for Docker the kindest/node image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Bootstrap and control-plane provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<Bootstrap>,
    /// OpenStack: the clouds.yaml entry and the Secret that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_name: Option<String>,
    /// OpenStack: the external network for floating IPs (seed 003 needed one per cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_network: Option<String>,
    /// OpenStack: SSH key pair installed on machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key_name: Option<String>,
}

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum Provider {
    #[serde(rename = "openstack")]
    OpenStack,
    #[serde(rename = "docker")]
    Docker,
    #[serde(rename = "in-memory")]
    InMemory,
    /// Not made by atoll: only delivered to.
    #[serde(rename = "existing")]
    Existing,
}

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum Bootstrap {
    #[serde(rename = "kubeadm")]
    Kubeadm,
    #[serde(rename = "k3s")]
    K3s,
}

/// Pod networking of a cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkValues {
    /// The CNI plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<Cni>,
    /// The CNI's version, e.g. `v3.28.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A fixed pod CIDR. Give this or `podPool`.
    #[serde(default, rename = "podCIDR", skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<String>,
    /// A fixed service CIDR. Give this or `servicePool`.
    #[serde(
        default,
        rename = "serviceCIDR",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_cidr: Option<String>,
    /// An IPPool (purpose pod) to allocate the pod CIDR from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_pool: Option<String>,
    /// An IPPool (purpose service) to allocate the service CIDR from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_pool: Option<String>,
}

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum Cni {
    #[serde(rename = "calico")]
    Calico,
    #[serde(rename = "flannel")]
    Flannel,
    #[serde(rename = "cilium")]
    Cilium,
}

/// An add-on installed on the clusters that use this profile.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SoftwareValues {
    /// Which add-on. atoll knows how to make these coexist (ports, shared IP, DNS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addon: Option<Addon>,
    /// Chart version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Helm repository URL; a sensible upstream default exists for every add-on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "repoURL")]
    pub repo_url: Option<String>,
    /// Chart name; defaults per add-on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Namespace the add-on runs in; defaults per add-on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// MetalLB: the IPPool (purpose loadBalancer) the cluster's shared address comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_pool: Option<String>,
    /// Helm values, merged under the values atoll computes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub values: Option<serde_json::Value>,
}

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum Addon {
    #[serde(rename = "metallb")]
    MetalLb,
    #[serde(rename = "ingress-nginx")]
    IngressNginx,
    #[serde(rename = "prometheus")]
    Prometheus,
    #[serde(rename = "liqo")]
    Liqo,
    #[serde(rename = "strimzi")]
    Strimzi,
}

impl Addon {
    pub fn as_str(self) -> &'static str {
        match self {
            Addon::MetalLb => "metallb",
            Addon::IngressNginx => "ingress-nginx",
            Addon::Prometheus => "prometheus",
            Addon::Liqo => "liqo",
            Addon::Strimzi => "strimzi",
        }
    }
}

/// A named bundle of profiles that clusters pick (seed 001's ClusterCatalog).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[kube(
    group = "atoll.dev",
    version = "v1alpha1",
    kind = "ClusterCatalog",
    shortname = "ccat",
    status = "Status"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterCatalogSpec {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Infrastructure profile.
    pub infrastructure: ProfileRef,
    /// The Network profile.
    pub network: ProfileRef,
    /// Software profiles (add-ons).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<ProfileRef>,
    /// Values that override the profiles for every cluster of this catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Overrides>,
    /// How changes roll out to this catalog's clusters, instead of the Fleet's policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutPolicy>,
}

/// Values that override profile values.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Overrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure: Option<InfrastructureValues>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkValues>,
}

// ---------------------------------------------------------------- clusters

/// A workload cluster. Its labels (`metadata.labels`: region, zone, gpu, edge…) are what
/// target policies select on.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[kube(
    group = "atoll.dev",
    version = "v1alpha1",
    kind = "Cluster",
    shortname = "acl",
    status = "Status",
    printcolumn = r#"{"name":"Catalog","type":"string","jsonPath":".spec.catalog"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"CP","type":"string","jsonPath":".status.machines.controlPlane"}"#,
    printcolumn = r#"{"name":"Workers","type":"string","jsonPath":".status.machines.workers"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.machines.version"}"#,
    printcolumn = r#"{"name":"Sync","type":"string","jsonPath":".status.sync.state"}"#,
    printcolumn = r#"{"name":"Behind","type":"integer","jsonPath":".status.sync.behind"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The catalog this cluster is built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    /// Profiles picked directly; they replace the catalog's profile of the same slot, and
    /// software profiles are added to the catalog's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<ClusterProfiles>,
    /// Shortcut for `overrides.infrastructure.provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Values that override the catalog and profiles for this cluster only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Overrides>,
    /// The GitOps agent of this cluster, overriding the fleet's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops_agent: Option<GitOpsAgent>,
    /// The Secret (in the management namespace, kubeconfig under key `value`) through which
    /// atoll reads this cluster's state. Default `<cluster>-kubeconfig`, the one Cluster API
    /// writes; an `existing` cluster names the one its admin created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_secret: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterProfiles {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure: Option<ProfileRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<ProfileRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<ProfileRef>,
}

/// Many clusters under one name, and how they are linked (seed 001's LogicalCluster).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[kube(
    group = "atoll.dev",
    version = "v1alpha1",
    kind = "LogicalCluster",
    shortname = "lcl",
    status = "Status"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogicalClusterSpec {
    /// Clusters declared inline; each becomes a Cluster of that name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<LogicalMember>,
    /// Existing clusters that are members too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<LabelSelector>,
    /// How members are linked so one app can span several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<Connectivity>,
}

/// An inline member of a logical cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogicalMember {
    /// The cluster's name.
    pub name: String,
    /// The cluster's labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The cluster's spec.
    #[serde(default)]
    pub spec: ClusterSpec,
}

/// Links between the members of a logical cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connectivity {
    /// The technology: `liqo` (peering and offloading) or `submariner` (flat network).
    pub kind: LinkKind,
    /// Pairs of member names. Empty means every pair (full mesh).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    JsonSchema,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
)]
pub enum LinkKind {
    #[default]
    #[serde(rename = "liqo")]
    Liqo,
    #[serde(rename = "submariner")]
    Submariner,
}

/// Two linked clusters.
#[derive(
    Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub a: String,
    pub b: String,
}

// ---------------------------------------------------------------- teams and applications

/// A tenant (seed 004's "namespace"): its directory groups and the namespaces it owns on clusters.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[kube(
    group = "atoll.dev",
    version = "v1alpha1",
    kind = "Team",
    status = "Status"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TeamSpec {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Groups that may read (list/get) the team's objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readers: Vec<String>,
    /// Groups that may change the team's applications and policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contributors: Vec<String>,
}

/// Something to run on clusters. Exactly one source: `git`, `kpt`, `helm` or `components`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[kube(
    group = "atoll.dev",
    version = "v1alpha1",
    kind = "Application",
    shortname = "aapp",
    namespaced,
    status = "Status",
    printcolumn = r#"{"name":"At HEAD","type":"string","jsonPath":".status.atHead"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationSpec {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The user who owns it (seed 003's AMF lists applications by owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Namespace on the clusters. Default: the team's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_namespace: Option<String>,
    /// Clusters named explicitly, besides those chosen by target policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// Plain manifests in a Git repository (seed 004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
    /// A kpt package at a pinned upstream revision, copied into each cluster's package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kpt: Option<UpstreamPackage>,
    /// A Helm chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSource>,
    /// Containers described inline (seed 003).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitSource {
    /// Repository URL.
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Branch, tag or commit. Default `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Directory of the manifests in the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A package in an upstream Git repository (kpt / Porch).
#[derive(
    Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamPackage {
    /// Repository URL or, for a local repository, a path relative to the declaring file.
    pub repo: String,
    /// Directory of the package in the repository.
    pub package: String,
    /// Tag, branch or commit.
    pub revision: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmSource {
    /// Chart repository URL (`https://` or `oci://`).
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Chart name.
    pub chart: String,
    /// Chart version.
    pub version: String,
    /// Helm values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub values: Option<serde_json::Value>,
}

/// One container of an inline application (seed 003 Figure 7.4).
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Component {
    /// DNS label.
    pub name: String,
    /// Container image.
    pub image: String,
    /// Pin the component to this cluster instead of every cluster the app is placed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Replicas. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Plain environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Environment variables read from existing Secrets; their values are never in Git.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<SecretEnvVar>,
    /// Ports the component exposes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<Expose>,
    /// An existing TLS Secret used by the component's Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret: Option<String>,
    /// An existing docker-registry Secret to pull the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretEnvVar {
    pub name: String,
    /// The Secret, in the application's namespace.
    pub secret_name: String,
    /// The key in the Secret.
    pub key: String,
}

/// A port of a component and who may reach it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expose {
    /// The container's port.
    pub container_port: i32,
    /// The Service's port. Default: the container port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_port: Option<i32>,
    /// TCP (default) or UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Reachable from outside the cluster: through the ingress for HTTP, otherwise on the
    /// cluster's shared load-balancer address.
    #[serde(default)]
    pub public: bool,
    /// Reachable from linked clusters.
    #[serde(default)]
    pub peered: bool,
    /// HTTP traffic (ingress) rather than a raw port. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<bool>,
    /// Ingress host name. Default `<component>.<app>.<cluster>.<fleet domain>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Places a team's applications on clusters by labels (seed 004).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[kube(
    group = "atoll.dev",
    version = "v1alpha1",
    kind = "TargetPolicy",
    shortname = "tpol",
    namespaced,
    status = "Status"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetPolicySpec {
    /// Which of the team's applications.
    pub app_selector: LabelSelector,
    /// Which clusters.
    pub cluster_selector: LabelSelector,
}

/// A Kubernetes label selector; an empty selector selects everything.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    pub key: String,
    /// In, NotIn, Exists or DoesNotExist.
    pub operator: String,
    /// The values for In and NotIn; none (or `null`, as Kubernetes accepts) for Exists and
    /// DoesNotExist.
    #[serde(
        default,
        deserialize_with = "crate::names::null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<String>,
}

// ---------------------------------------------------------------- seed 000

/// Clusters and the packages to put on them, in one object (seed 000). Expands into Clusters
/// and PackageVariants.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[kube(
    group = "atoll.dev",
    version = "v1alpha1",
    kind = "WorkloadDeployment",
    shortname = "wld",
    status = "Status"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadDeploymentSpec {
    /// Clusters to create (as LogicalCluster members are declared).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<LogicalMember>,
    /// Packages to put on every one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<WorkloadPackage>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadPackage {
    /// Downstream package name. Default: the upstream package's last path element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub upstream: UpstreamPackage,
}

/// Upstream package@revision → a cluster's downstream package (seed 000, as Porch does).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[kube(
    group = "atoll.dev",
    version = "v1alpha1",
    kind = "PackageVariant",
    shortname = "apv",
    status = "Status"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageVariantSpec {
    pub upstream: UpstreamPackage,
    pub downstream: Downstream,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Downstream {
    /// The cluster whose package receives it.
    pub cluster: String,
    /// The package's name under `clusters/<cluster>/packages/`.
    pub package: String,
    /// Namespace given to the package's namespaced resources. Default: leave as written upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

// ---------------------------------------------------------------- IPAM

/// Address space handed out to clusters by atoll, never overlapping (seed 003 §6.3.5, seed 002).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[kube(
    group = "atoll.dev",
    version = "v1alpha1",
    kind = "IPPool",
    shortname = "ipp",
    status = "Status"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPPoolSpec {
    /// What the addresses are for.
    pub purpose: PoolPurpose,
    /// The address ranges, e.g. `10.128.0.0/9`.
    pub cidrs: Vec<String>,
    /// Prefix length of each cluster's block: /16 for pods, /20 for services, /32 (one shared
    /// address) for load balancers are the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<u8>,
}

#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    JsonSchema,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
)]
pub enum PoolPurpose {
    #[default]
    #[serde(rename = "pod")]
    Pod,
    #[serde(rename = "service")]
    Service,
    #[serde(rename = "loadBalancer")]
    LoadBalancer,
}

impl PoolPurpose {
    pub fn default_prefix(self) -> u8 {
        match self {
            PoolPurpose::Pod => 16,
            PoolPurpose::Service => 20,
            PoolPurpose::LoadBalancer => 32,
        }
    }
}
