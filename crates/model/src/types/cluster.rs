//! Cluster: one Kubernetes cluster of the fleet, built from a catalog.

use super::*;

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

/// Profiles a cluster takes instead of (or besides) its catalog's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterProfiles {
    /// Replaces the catalog's infrastructure profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure: Option<ProfileRef>,
    /// Replaces the catalog's network profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<ProfileRef>,
    /// Added to the catalog's software profiles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<ProfileRef>,
}
