//! WorkloadDeployment: clusters and the packages to put on them in one object (seed 000).

use super::*;

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

/// A package put on every cluster of a WorkloadDeployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadPackage {
    /// Downstream package name. Default: the upstream package's last path element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The package.
    pub upstream: UpstreamPackage,
}
