//! ClusterCatalog: a named combination of profiles that clusters are built from.

use super::*;

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
    /// Infrastructure values over the infrastructure profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure: Option<InfrastructureValues>,
    /// Network values over the network profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkValues>,
}
