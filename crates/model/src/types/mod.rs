//! The atoll.dev/v1alpha1 kinds. Each spec is a kube `CustomResource`, so `atoll crds` prints
//! CRDs generated from these very declarations.
//!
//! Fleet-level kinds (profiles, catalogs, clusters, logical clusters, teams, pools, workload
//! deployments, package variants, the fleet itself) are cluster-scoped. Applications and
//! target policies are namespaced: their namespace is the owning team.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The API group of every atoll kind.
pub const GROUP: &str = "atoll.dev";
/// The API version of every atoll kind.
pub const VERSION: &str = "v1alpha1";
/// `GROUP/VERSION`, as `apiVersion` says it.
pub const API_VERSION: &str = "atoll.dev/v1alpha1";

fn preserve_unknown(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

mod application;
mod catalog;
mod cluster;
mod fleet;
mod ip_pool;
mod logical_cluster;
mod package_variant;
mod profile;
mod status;
mod target_policy;
mod team;
mod workload_deployment;

pub use application::*;
pub use catalog::*;
pub use cluster::*;
pub use fleet::*;
pub use ip_pool::*;
pub use logical_cluster::*;
pub use package_variant::*;
pub use profile::*;
pub use status::*;
pub use target_policy::*;
pub use team::*;
pub use workload_deployment::*;
