//! LogicalCluster: many clusters under one name, and how they are linked.

use super::*;

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
// No docs on the type or its variants: see GitOpsAgent.
#[allow(missing_docs)]
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
    /// One cluster.
    pub a: String,
    /// The other.
    pub b: String,
}
