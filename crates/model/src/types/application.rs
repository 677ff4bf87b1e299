//! Application: what a team deploys, from a Git package, a Helm chart or components.

use super::*;

/// Something to run on clusters. Exactly one source: `git`, `kpt`, `helm` or `components`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[kube(
    group = "atoll.dev",
    version = "v1alpha1",
    kind = "Application",
    shortname = "aapp",
    namespaced,
    status = "Status",
    printcolumn = r#"{"name":"At HEAD","type":"string","jsonPath":".status.atHead"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationSpec {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The user who owns it (seed 003's AMF lists applications by owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Namespace on the clusters. Default: the team's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_namespace: Option<String>,
    /// Clusters named explicitly, besides those chosen by target policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// Plain manifests in a Git repository (seed 004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
    /// A kpt package at a pinned upstream revision, copied into each cluster's package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kpt: Option<UpstreamPackage>,
    /// A Helm chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSource>,
    /// Containers described inline (seed 003).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

/// A package in a Git repository, pinned to a revision.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitSource {
    /// Repository URL.
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Branch, tag or commit. Default `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Directory of the manifests in the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A package in an upstream Git repository (kpt / Porch).
#[derive(
    Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamPackage {
    /// Repository URL or, for a local repository, a path relative to the declaring file.
    pub repo: String,
    /// Directory of the package in the repository.
    pub package: String,
    /// Tag, branch or commit.
    pub revision: String,
}

/// A Helm chart, pinned to a version.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmSource {
    /// Chart repository URL (`https://` or `oci://`).
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Chart name.
    pub chart: String,
    /// Chart version.
    pub version: String,
    /// Helm values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub values: Option<serde_json::Value>,
}

/// One container of an inline application (seed 003 Figure 7.4).
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Component {
    /// DNS label.
    pub name: String,
    /// Container image.
    pub image: String,
    /// Pin the component to this cluster instead of every cluster the app is placed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Replicas. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Plain environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Environment variables read from existing Secrets; their values are never in Git.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<SecretEnvVar>,
    /// Ports the component exposes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<Expose>,
    /// An existing TLS Secret used by the component's Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret: Option<String>,
    /// An existing docker-registry Secret to pull the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<String>,
}

/// An environment variable with its value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// An environment variable read from a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretEnvVar {
    /// The variable's name (also the key in the Secret).
    pub name: String,
    /// The Secret, in the application's namespace.
    pub secret_name: String,
    /// The key in the Secret.
    pub key: String,
}

/// A port of a component and who may reach it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expose {
    /// The container's port.
    pub container_port: i32,
    /// The Service's port. Default: the container port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_port: Option<i32>,
    /// TCP (default) or UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Reachable from outside the cluster: through the ingress for HTTP, otherwise on the
    /// cluster's shared load-balancer address.
    #[serde(default)]
    pub public: bool,
    /// Reachable from linked clusters.
    #[serde(default)]
    pub peered: bool,
    /// HTTP traffic (ingress) rather than a raw port. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<bool>,
    /// Ingress host name. Default `<component>.<app>.<cluster>.<fleet domain>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}
