//! IPPool: addresses handed out to clusters (IPAM).

use super::*;

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
// No docs on the type or its variants: see GitOpsAgent.
#[allow(missing_docs)]
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
    /// The block size handed to each cluster when the pool does not say.
    pub fn default_prefix(self) -> u8 {
        match self {
            PoolPurpose::Pod => 16,
            PoolPurpose::Service => 20,
            PoolPurpose::LoadBalancer => 32,
        }
    }
}
