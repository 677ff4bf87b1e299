//! Input digests: what a cluster's files are made from, hashed, so that a render skips every
//! cluster whose digest is unchanged. Shared parts (fleet, applications, teams, upstream
//! packages) are hashed once per render.

use super::*;

/// Bumped whenever rendering changes, so that every cluster is rendered again.
pub(crate) const RENDER_EPOCH: &str = "atoll-render-4";

impl ClusterMemo {
    /// The cluster's input digest: its inputs and the address blocks it was given.
    pub(crate) fn with_blocks(&self, allocs: &Allocations, cluster: &str) -> String {
        let shared: Vec<&str> = self
            .address_pools
            .iter()
            .filter_map(|p| allocs.get(p, cluster))
            .collect();
        digest_of(&[
            self.inputs.as_bytes(),
            cidr_or_alloc(&self.pods, allocs, cluster).as_bytes(),
            cidr_or_alloc(&self.services, allocs, cluster).as_bytes(),
            shared.join(",").as_bytes(),
        ])
    }
}

/// Digests of what many clusters share, computed once per render.
pub(crate) struct SharedDigests {
    pub(crate) fleet: String,
    pub(crate) apps: BTreeMap<(String, String), String>,
    pub(crate) teams: BTreeMap<String, String>,
    pub(crate) upstreams: BTreeMap<UpstreamPackage, String>,
}

pub(crate) fn digest_of(parts: &[&[u8]]) -> String {
    let mut h = sha1_smol::Sha1::new();
    for p in parts {
        // Length-prefixed, so that parts cannot run into each other.
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.digest().to_string()
}

/// `digest_of`, fed one part at a time; a part may come in pieces.
#[derive(Default)]
pub(crate) struct PartHasher(sha1_smol::Sha1);

impl PartHasher {
    pub(crate) fn part(&mut self, pieces: &[&[u8]]) {
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        self.0.update(&(len as u64).to_le_bytes());
        for p in pieces {
            self.0.update(p);
        }
    }
    pub(crate) fn finish(self) -> String {
        self.0.digest().to_string()
    }
}

pub(crate) fn json_bytes(v: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(v).expect("serializable")
}

/// The bytes a spec is digested by: its JSON without the top-level `description`, which no
/// rendered file shows — so rewording a team, an application or a profile renders nothing
/// again (and keeps the memo).
pub(crate) fn spec_bytes(spec: &impl serde::Serialize) -> Vec<u8> {
    let mut v = serde_json::to_value(spec).expect("serializable");
    if let Some(o) = v.as_object_mut() {
        o.remove("description");
    }
    json_bytes(&v)
}

impl SharedDigests {
    pub(crate) fn new(m: &Model, upstreams: &BTreeMap<UpstreamPackage, Fetched>) -> Self {
        let upstreams: BTreeMap<UpstreamPackage, String> = upstreams
            .iter()
            .map(|(k, f)| {
                let mut parts: Vec<&[u8]> = vec![f.commit.as_bytes()];
                for (p, b) in &f.files {
                    parts.push(p.as_bytes());
                    parts.push(b);
                }
                (k.clone(), digest_of(&parts))
            })
            .collect();
        // An application's digest covers the upstream package it copies, if any.
        let apps = m
            .applications
            .iter()
            .map(|(k, a)| {
                let up = a
                    .spec
                    .kpt
                    .as_ref()
                    .and_then(|u| upstreams.get(u))
                    .map(String::as_str)
                    .unwrap_or("");
                (k.clone(), digest_of(&[&spec_bytes(&a.spec), up.as_bytes()]))
            })
            .collect();
        SharedDigests {
            fleet: digest_of(&[RENDER_EPOCH.as_bytes(), &json_bytes(&m.fleet)]),
            apps,
            teams: m
                .teams
                .iter()
                .map(|(k, t)| (k.clone(), digest_of(&[&spec_bytes(&t.spec)])))
                .collect(),
            upstreams,
        }
    }

    /// Everything [`render_cluster`] reads for this cluster but its address blocks (see
    /// [`ClusterMemo::with_blocks`]), hashed. Keep the two in step: the incremental-equals-full
    /// tests fail when a read input is missing here.
    pub(crate) fn cluster(
        &self,
        c: &ResolvedCluster,
        apps: &[&(String, String)],
        pvs: &[&Decl<PackageVariantSpec>],
    ) -> String {
        // Streamed into the hash part by part (the same bytes as `digest_of` over the parts):
        // this runs for every cluster on every render, so it allocates as little as it can.
        let mut d = PartHasher::default();
        d.part(&[self.fleet.as_bytes()]);
        d.part(&[&json_bytes(c)]);
        let mut teams = BTreeSet::new();
        for key @ (t, a) in apps.iter().copied() {
            teams.insert(t);
            d.part(&[b"app ", t.as_bytes(), b"/", a.as_bytes()]);
            d.part(&[self.apps.get(key).map(String::as_bytes).unwrap_or_default()]);
        }
        for t in teams {
            d.part(&[b"team ", t.as_bytes()]);
            d.part(&[self.teams.get(t).map(String::as_bytes).unwrap_or_default()]);
        }
        for pv in pvs {
            d.part(&[&json_bytes(&pv.spec)]);
            d.part(&[self
                .upstreams
                .get(&pv.spec.upstream)
                .map(String::as_bytes)
                .unwrap_or_default()]);
        }
        d.finish()
    }
}
