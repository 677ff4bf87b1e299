//! What a render remembers about each cluster for the next one: a cluster whose declaration
//! and whose fleet-wide inputs are unchanged is then not resolved, placed or digested again.
//!
//! Everything here is keyed by content (digests of the declarations it was computed from), so a
//! memo from another fleet, another repository or an older render is never wrong, only of no
//! use. A shell that keeps none renders the same files, only slower.

use crate::resolve::Range;
use crate::{SharedDigests, digest_of, json_bytes};
// (descriptions are left out of every digest: see `spec_bytes`)
use atoll_model::{Decl, Model};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-cluster results of one render.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RenderMemo {
    /// Digest of every declaration but the clusters, of the upstream packages and of the
    /// render epoch: the memo's entries hold only while it is unchanged.
    pub fleet: String,
    /// Distinct sets of applications placed together, as indices in the model's application
    /// order (which `fleet` pins). A few dozen sets serve thousands of clusters.
    pub app_sets: Vec<Vec<u32>>,
    /// Each cluster's results, by name.
    pub clusters: BTreeMap<String, ClusterMemo>,
}

/// One cluster's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterMemo {
    /// Digest of `fleet` and the cluster's declaration (name, labels, spec).
    pub key: String,
    /// Digest of everything its files are made from but its address blocks.
    pub inputs: String,
    /// Index in `app_sets` of the applications placed on it.
    pub apps: u32,
    /// Where its pod range came from.
    pub pods: Range,
    /// Where its service range came from.
    pub services: Range,
    /// Pools named by its add-ons' address blocks, in add-on order.
    pub address_pools: Vec<String>,
    /// The pool its MetalLB add-on takes a block from.
    pub metallb_pool: Option<String>,
}

impl RenderMemo {
    /// The entry for `cluster` if it was computed from the same declarations.
    pub(crate) fn recall(&self, cluster: &str, key: &str) -> Option<&ClusterMemo> {
        self.clusters.get(cluster).filter(|c| c.key == key)
    }
}

/// Digest of everything a cluster's files can depend on besides its own declaration and its
/// address blocks: all other declarations, the upstream packages, the render epoch.
pub(crate) fn fleet_key(m: &Model, shared: &SharedDigests) -> String {
    fn decls<K: Serialize, T: Serialize>(map: &BTreeMap<K, Decl<T>>) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, d) in map {
            out.extend(json_bytes(&(k, &d.namespace, &d.labels)));
            out.extend(crate::spec_bytes(&d.spec));
        }
        out
    }
    let upstreams: Vec<(String, &String)> = shared
        .upstreams
        .iter()
        .map(|(u, d)| (format!("{}/{}@{}", u.repo, u.package, u.revision), d))
        .collect();
    digest_of(&[
        shared.fleet.as_bytes(),
        &decls(&m.profiles),
        &decls(&m.catalogs),
        &decls(&m.logical_clusters),
        &decls(&m.teams),
        &decls(&m.applications),
        &decls(&m.policies),
        &decls(&m.package_variants),
        &decls(&m.pools),
        &json_bytes(&upstreams),
    ])
}

/// Digest of `fleet` and one cluster's declaration.
pub(crate) fn cluster_key(fleet: &str, c: &Decl<atoll_model::ClusterSpec>) -> String {
    digest_of(&[
        fleet.as_bytes(),
        &json_bytes(&(&c.name, &c.namespace, &c.labels, &c.spec)),
    ])
}
