//! PackageVariant: an upstream package cloned to a downstream with changes (seed 000).

use super::*;

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
    /// The package cloned.
    pub upstream: UpstreamPackage,
    /// Where the clone goes.
    pub downstream: Downstream,
}

/// A package's place in a cluster's package.
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
