//! The layout of a fleet repository, spelled out once. The engine writes these paths, the
//! Git shell refuses to write anything else, the pipeline reads state back from them, the
//! operator finds each cluster's Cluster API objects under them.
//!
//! ```text
//! clusters/<c>/                  the cluster's package (what its GitOps agent applies)
//! management/clusters/<c>/       Cluster API objects, applied to the management cluster
//! management/gitops/<c>.yaml     the agent object pointing at clusters/<c>
//! state/clusters/<c>.yaml        the effective spec with the provenance of every value
//! state/allocations.yaml         IP address blocks handed out, per pool and cluster
//! state/inputs.tsv               per cluster, a digest of everything its files come from
//! ```

/// The top-level folders atoll owns; nothing else in the repository is touched.
pub const OWNED_ROOTS: [&str; 3] = ["clusters", "management", "state"];

/// [`OWNED_ROOTS`] as folder keys (`clusters/`), what a whole render replaces.
pub const OWNED_DIRS: [&str; 3] = ["clusters/", "management/", "state/"];

/// IPAM state: pool → cluster → block, kept stable across renders.
pub const ALLOCATIONS_FILE: &str = "state/allocations.yaml";

/// Per cluster, the digest of everything its files are made from.
pub const INPUTS_FILE: &str = "state/inputs.tsv";

/// Upgrade waves in progress: which clusters each wave holds and how far it got.
pub const ROLLOUT_FILE: &str = "state/rollout.yaml";

/// The files of a cluster's Cluster API objects whose change replaces or resizes machines (a
/// version, an image, a size): what upgrade waves hold back.
pub const MACHINE_FILES: [&str; 3] = ["infrastructure.yaml", "control-plane.yaml", "workers.yaml"];

/// The folders whose entries are clusters (a folder or a `<c>.yaml` per cluster).
pub const CLUSTER_LISTINGS: [&str; 4] = [
    "clusters",
    "management/clusters",
    "management/gitops",
    "state/clusters",
];

/// A cluster's package folder.
pub fn package_dir(cluster: &str) -> String {
    format!("clusters/{cluster}/")
}

/// A cluster's Cluster API objects folder.
pub fn management_dir(cluster: &str) -> String {
    format!("management/clusters/{cluster}/")
}

/// A cluster's GitOps agent object.
pub fn agent_file(cluster: &str) -> String {
    format!("management/gitops/{cluster}.yaml")
}

/// A cluster's effective spec.
pub fn state_file(cluster: &str) -> String {
    format!("state/clusters/{cluster}.yaml")
}

/// Everything that belongs to one cluster: folders end in `/`.
pub fn cluster_paths(cluster: &str) -> [String; 4] {
    [
        package_dir(cluster),
        management_dir(cluster),
        agent_file(cluster),
        state_file(cluster),
    ]
}

/// The cluster a repository path belongs to, if any.
pub fn cluster_of(path: &str) -> Option<&str> {
    path.strip_prefix("clusters/")
        .or_else(|| path.strip_prefix("management/clusters/"))
        .map(|r| r.split('/').next().unwrap_or(r))
        .or_else(|| {
            path.strip_prefix("management/gitops/")
                .and_then(|r| r.strip_suffix(".yaml"))
        })
        .or_else(|| {
            path.strip_prefix("state/clusters/")
                .and_then(|r| r.strip_suffix(".yaml"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cluster_path_belongs_to_its_cluster() {
        for p in cluster_paths("edge-paris") {
            assert_eq!(
                cluster_of(&format!("{p}x")).or(cluster_of(&p)),
                Some("edge-paris"),
                "{p}"
            );
        }
        assert_eq!(cluster_of(INPUTS_FILE), None);
        assert_eq!(cluster_of(ALLOCATIONS_FILE), None);
        for p in cluster_paths("c") {
            assert!(OWNED_ROOTS.iter().any(|r| p.starts_with(r)));
        }
    }
}
