//! Fleet: the fleet-wide settings (upstreams, GitOps agent, rollout policy).

use super::*;

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
// Variants go undocumented: their serde names say it, and a doc comment on a variant makes
// schemars emit a `oneOf`, which kube folds back into an `enum` without the `null` that a
// nullable field needs. (Other enums leave the type undocumented too: its description
// would replace the field's in the CRD.)
#[allow(missing_docs)]
pub enum GitOpsAgent {
    #[serde(rename = "argocd")]
    ArgoCd,
    #[serde(rename = "flux")]
    Flux,
    #[serde(rename = "configsync")]
    ConfigSync,
}
