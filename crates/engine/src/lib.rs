//! atoll's engine: from a validated [`Model`] to the files of the fleet repository.
//!
//! Pure and deterministic: no I/O, same inputs → byte-identical outputs. The Git shell gives it
//! the previous IP allocations and the upstream packages it read; the engine returns every file
//! of the repository (paths relative to its root) and the new allocations.
//!
//! Steps: resolve each cluster's effective spec (with provenance) and place applications on it
//! (or recall both from the previous render's [`memo`]) → allocate pod/service/load-balancer
//! ranges → render, in parallel, the clusters whose input digest changed.
//!
//! Modules: [`resolve`] (a cluster's effective spec), `place` (applications on clusters),
//! `digest` (input digests), [`ipam`], `cluster` (one cluster's files: [`capi`],
//! [`delivery`], [`packages`]), [`memo`] (what the next render reuses).

pub mod capi;
mod cluster;
pub mod delivery;
mod digest;
pub mod ipam;
pub mod memo;
pub mod packages;
mod place;
pub mod resolve;

use atoll_model::load::Diagnostic;
use atoll_model::yaml::{to_yaml, to_yaml_stream};
use atoll_model::*;
use cluster::*;
use digest::*;
use ipam::{Allocations, PoolDef};
use memo::{ClusterMemo, RenderMemo};
use packages::{Fetched, Injection};
pub use place::{Placer, placement_reasons, upstream_requests};
use rayon::prelude::*;
use resolve::{Range, ResolvedCluster};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// What the engine needs besides the declarations.
pub struct Inputs<'a> {
    /// The validated declarations.
    pub model: &'a Model,
    /// Allocations committed by the previous render.
    pub previous: &'a Allocations,
    /// Upstream packages, read by the shell at their pinned revisions.
    pub upstreams: &'a BTreeMap<UpstreamPackage, Fetched>,
    /// Input digests committed by the previous render (from [`INPUTS_FILE`]): a cluster whose
    /// digest is unchanged is not rendered again. Empty renders every cluster.
    pub previous_inputs: &'a BTreeMap<String, String>,
    /// What the previous render remembered ([`Output::memo`]); `None` computes everything.
    pub memo: Option<&'a RenderMemo>,
}

/// The rendered repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Path → content: the fleet-level files, and every file of each cluster in `rendered`.
    /// Clusters left out kept their inputs, so their files in the repository stand.
    /// Equal contents share one allocation: at fleet scale most files repeat.
    pub files: BTreeMap<String, Arc<str>>,
    /// Every cluster of the fleet.
    pub clusters: BTreeSet<String>,
    /// The clusters whose files are in `files`.
    pub rendered: BTreeSet<String>,
    /// Every cluster's address blocks, old ones kept.
    pub allocations: Allocations,
    /// Cluster → `team/app` placed on it.
    pub placements: Placements,
    /// Cluster → digest of everything its files are made from (what [`INPUTS_FILE`] holds).
    pub inputs: BTreeMap<String, String>,
    /// What the next render may reuse.
    pub memo: RenderMemo,
}

/// Cluster → `team/app` placed on it. Clusters placed alike share one list, and each name is
/// one allocation: 10,000 clusters receive ~50 each of a few hundred applications, in a few
/// dozen combinations.
pub type Placements = BTreeMap<String, Arc<[Arc<str>]>>;

/// Where atoll keeps its own state in the repository.
pub use atoll_layout::ALLOCATIONS_FILE;

/// One line per cluster: its name and the digest of everything its files are made from.
pub use atoll_layout::INPUTS_FILE;

/// Parses [`INPUTS_FILE`]; anything unreadable just means "render again".
pub fn parse_inputs(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(c, d)| (c.to_string(), d.to_string()))
        .collect()
}

/// The repository paths that hold one cluster's files (folders end in `/`).
pub use atoll_layout::cluster_paths;

/// Top-level folders atoll owns; anything else in the repository is left alone.
pub use atoll_layout::OWNED_DIRS;

pub(crate) fn yaml_stream(objs: &[Value]) -> String {
    to_yaml_stream(objs.iter())
}

pub(crate) fn kustomization(resources: &[String]) -> String {
    to_yaml(
        &json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}),
    )
}

/// Renders the whole fleet.
pub fn render(inputs: &Inputs) -> Result<Output, Diagnostics> {
    let m = inputs.model;
    let mut diags: Vec<Diagnostic> = Vec::new();

    let shared = SharedDigests::new(m, inputs.upstreams);
    let fleet_key = memo::fleet_key(m, &shared);
    let recall = inputs.memo.filter(|p| p.fleet == fleet_key);
    let app_keys: Vec<&(String, String)> = m.applications.keys().collect();
    let pvs_by_cluster: BTreeMap<&str, Vec<&Decl<PackageVariantSpec>>> = m
        .package_variants
        .values()
        .fold(BTreeMap::new(), |mut acc, pv| {
            acc.entry(pv.spec.downstream.cluster.as_str())
                .or_default()
                .push(pv);
            acc
        });
    let pvs_of = |name: &str| pvs_by_cluster.get(name).map(Vec::as_slice).unwrap_or(&[]);

    // 1. Resolve and place each cluster, or recall both from the memo when neither its
    //    declaration nor anything fleet-wide changed.
    let placer = Placer::new(m);
    let prepared: Vec<Result<Prepared, Vec<Diagnostic>>> = m
        .clusters
        .values()
        .collect::<Vec<_>>()
        .par_iter()
        .map(|decl| {
            let key = memo::cluster_key(&fleet_key, decl);
            if let Some(p) = recall
                && let Some(e) = p.recall(&decl.name, &key)
            {
                return Ok(Prepared {
                    name: &decl.name,
                    apps: p.app_sets[e.apps as usize].clone(),
                    memo: e.clone(),
                    resolved: None,
                });
            }
            let c = resolve::resolve(m, decl)?;
            let apps = placer.apps(&decl.name, &decl.labels);
            let refs: Vec<&(String, String)> = apps.iter().map(|&i| app_keys[i as usize]).collect();
            let memo = ClusterMemo {
                key,
                inputs: shared.cluster(&c, &refs, pvs_of(&c.name)),
                apps: 0,
                pods: c.pods.value.clone(),
                services: c.services.value.clone(),
                address_pools: c
                    .addons
                    .iter()
                    .filter_map(|a| a.address_pool.clone())
                    .collect(),
                metallb_pool: c
                    .addons
                    .iter()
                    .find(|a| a.addon == Addon::MetalLb)
                    .and_then(|a| a.address_pool.clone()),
            };
            Ok(Prepared {
                name: &decl.name,
                apps,
                memo,
                resolved: Some(c),
            })
        })
        .collect();
    let mut clusters: Vec<Prepared> = Vec::with_capacity(prepared.len());
    for r in prepared {
        match r {
            Ok(c) => clusters.push(c),
            Err(e) => diags.extend(e),
        }
    }

    // 2. Allocate.
    let mut requests: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in &clusters {
        let pools = [&c.memo.pods, &c.memo.services]
            .into_iter()
            .filter_map(|r| match r {
                Range::Pool(p) => Some(p),
                Range::Fixed(_) => None,
            })
            .chain(&c.memo.metallb_pool);
        for p in pools {
            requests.entry(p).or_default().insert(c.name);
        }
    }
    let pool_defs: BTreeMap<String, PoolDef> = m
        .pools
        .iter()
        .map(|(n, p)| {
            let prefix = p
                .spec
                .prefix_length
                .unwrap_or(p.spec.purpose.default_prefix());
            (
                n.clone(),
                PoolDef {
                    cidrs: p.spec.cidrs.iter().filter_map(|c| c.parse().ok()).collect(),
                    prefix,
                },
            )
        })
        .collect();
    let allocations = match ipam::allocate(&pool_defs, &requests, inputs.previous) {
        Ok(a) => a,
        Err(errs) => {
            for e in errs {
                let origin = &m.pools[&e.pool].origin;
                diags.push(origin.error("spec.cidrs", e.to_string()));
            }
            Allocations::default()
        }
    };
    // Fixed ranges must not collide with pool space handed out by atoll.
    // An existing cluster's ranges are whatever it was built with; atoll does not check them.
    // A recalled cluster passed this check against the same pools.
    for c in clusters
        .iter()
        .filter_map(|c| c.resolved.as_ref())
        .filter(|c| c.provider.value != Provider::Existing)
    {
        for (what, r) in [("pod", &c.pods), ("service", &c.services)] {
            if let Range::Fixed(cidr) = &r.value {
                let Ok(net) = cidr.parse::<ipnet::IpNet>() else {
                    continue;
                };
                for (pname, def) in &pool_defs {
                    if def
                        .cidrs
                        .iter()
                        .any(|p| p.contains(&net.network()) || net.contains(&p.network()))
                    {
                        diags.push(m.clusters[&c.name].origin.error(
                            "",
                            format!("the {what} CIDR {cidr} (from {}) overlaps IPPool `{pname}`, whose blocks atoll hands to other clusters", r.from),
                        ));
                    }
                }
            }
        }
    }
    // Namespaces belong to one team.
    // A namespace named after a team is that team's.
    let mut ns_owner: BTreeMap<String, (String, String)> = m
        .teams
        .keys()
        .map(|t| (t.clone(), (t.clone(), "its own namespace".to_string())))
        .collect();
    for ((team, name), a) in &m.applications {
        let ns = a
            .spec
            .target_namespace
            .clone()
            .unwrap_or_else(|| team.clone());
        if let Some((other, other_app)) = ns_owner.get(&ns) {
            if other != team {
                diags.push(a.origin.error(
                    "spec.targetNamespace",
                    format!("namespace `{ns}` is already used by team `{other}` ({other_app}); a namespace belongs to one team"),
                ));
            }
        } else {
            ns_owner.insert(ns, (team.clone(), name.clone()));
        }
    }
    for up in upstream_requests(m) {
        if !inputs.upstreams.contains_key(&up) {
            diags.push(Diagnostic {
                file: String::new(),
                line: 0,
                col: 0,
                object: String::new(),
                path: String::new(),
                message: format!(
                    "upstream package {}/{}@{} was not fetched",
                    up.repo, up.package, up.revision
                ),
            });
        }
    }
    if !diags.is_empty() {
        diags.sort();
        return Err(Diagnostics(diags));
    }

    // 3. Render each cluster whose inputs changed since the last render.
    let interner = Interner::default();
    let per_cluster: Vec<(String, String, Option<InternedFiles>)> = clusters
        .par_iter()
        .map(|c| {
            let name = c.name;
            let digest = c.memo.with_blocks(&allocations, name);
            let unchanged = inputs.previous_inputs.get(name) == Some(&digest);
            let files = (!unchanged).then(|| {
                let fresh;
                let resolved = match &c.resolved {
                    Some(r) => r,
                    None => {
                        fresh = resolve::resolve(m, &m.clusters[name])?;
                        &fresh
                    }
                };
                let apps: Vec<&(String, String)> =
                    c.apps.iter().map(|&i| app_keys[i as usize]).collect();
                render_cluster(
                    m,
                    resolved,
                    &apps,
                    pvs_of(name),
                    &allocations,
                    inputs.upstreams,
                    &interner,
                )
                .map(|f| interner.intern_all(f))
            });
            (name.to_string(), digest, files)
        })
        .collect();
    let mut files: BTreeMap<String, Arc<str>> = BTreeMap::new();
    let mut rendered = BTreeSet::new();
    let mut digests = String::new();
    let mut inputs_out = BTreeMap::new();
    for (name, digest, r) in per_cluster {
        digests.push_str(&format!("{name}\t{digest}\n"));
        inputs_out.insert(name.clone(), digest);
        match r {
            Some(Ok(f)) => {
                files.extend(f);
                rendered.insert(name);
            }
            Some(Err(e)) => diags.extend(e),
            None => {}
        }
    }
    files.insert(INPUTS_FILE.into(), digests.into());
    if !diags.is_empty() {
        diags.sort();
        return Err(Diagnostics(diags));
    }
    // Written when it changes (or on a full render): at fleet scale it is 20,000 lines.
    if inputs.previous_inputs.is_empty() || allocations != *inputs.previous {
        files.insert(
            ALLOCATIONS_FILE.into(),
            to_yaml(&serde_json::to_value(&allocations).expect("allocations")).into(),
        );
    }
    let names: Vec<Arc<str>> = app_keys
        .iter()
        .map(|(t, a)| Arc::from(format!("{t}/{a}")))
        .collect();
    let mut memo = RenderMemo {
        fleet: fleet_key,
        ..Default::default()
    };
    // Application set → its index in the memo, and its names.
    type Set = (u32, Arc<[Arc<str>]>);
    let mut sets: HashMap<&[u32], Set> = HashMap::new();
    let mut placements = Placements::new();
    for c in &clusters {
        let (set, list) = sets.entry(&c.apps).or_insert_with(|| {
            memo.app_sets.push(c.apps.clone());
            (
                memo.app_sets.len() as u32 - 1,
                c.apps.iter().map(|&i| names[i as usize].clone()).collect(),
            )
        });
        if !c.apps.is_empty() {
            placements.insert(c.name.to_string(), list.clone());
        }
        memo.clusters.insert(
            c.name.to_string(),
            ClusterMemo {
                apps: *set,
                ..c.memo.clone()
            },
        );
    }
    Ok(Output {
        files,
        clusters: m.clusters.keys().cloned().collect(),
        rendered,
        allocations,
        placements,
        inputs: inputs_out,
        memo,
    })
}

/// One cluster between resolving and rendering.
struct Prepared<'m> {
    name: &'m str,
    /// Indices of the applications placed on it.
    apps: Vec<u32>,
    /// `apps` is not yet an index in a set here.
    memo: ClusterMemo,
    /// Set when resolved in this render; a recalled cluster is resolved only if rendered.
    resolved: Option<ResolvedCluster>,
}
