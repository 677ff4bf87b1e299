//! TargetPolicy: which clusters a team's applications are placed on.

use super::*;

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
    /// Labels a cluster must have, with these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Requirements a cluster's labels must all meet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One requirement of a label selector.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// The label key.
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
