//! InfrastructureProfile: a versioned, reusable piece of a cluster (infrastructure, network, software).

use super::*;

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
// No docs on the type or its variants: see GitOpsAgent.
#[allow(missing_docs)]
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
// No docs on the type or its variants: see GitOpsAgent.
#[allow(missing_docs)]
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
// No docs on the type or its variants: see GitOpsAgent.
#[allow(missing_docs)]
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
// No docs on the type or its variants: see GitOpsAgent.
#[allow(missing_docs)]
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
// No docs on the type or its variants: see GitOpsAgent.
#[allow(missing_docs)]
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
    /// The add-on's name as declarations spell it.
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
