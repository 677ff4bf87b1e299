//! The status every kind shares: conditions, what the operator observed and did.

use super::*;

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
