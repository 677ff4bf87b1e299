//! atoll's engine: from a validated [`Model`] to the files of the fleet repository.
//!
//! Pure and deterministic: no I/O, same inputs → byte-identical outputs. The Git shell gives it
//! the previous IP allocations and the upstream packages it read; the engine returns every file
//! of the repository (paths relative to its root) and the new allocations.
//!
//! Steps: resolve each cluster's effective spec (with provenance) and place applications on it
//! (or recall both from the previous render's [`memo`]) → allocate pod/service/load-balancer
//! ranges → render, in parallel, the clusters whose input digest changed.

pub mod capi;
pub mod delivery;
pub mod ipam;
pub mod memo;
pub mod packages;
pub mod resolve;

use atoll_model::load::Diagnostic;
use atoll_model::yaml::{to_yaml, to_yaml_stream};
use atoll_model::*;
use ipam::{Allocations, PoolDef};
use memo::{ClusterMemo, RenderMemo};
use packages::{Fetched, Injection};
use rayon::prelude::*;
use resolve::{Range, ResolvedCluster};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// What the engine needs besides the declarations.
pub struct Inputs<'a> {
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

/// Bumped whenever rendering changes, so that every cluster is rendered again.
const RENDER_EPOCH: &str = "atoll-render-4";

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

/// Every upstream package the model refers to (what the shell must fetch).
pub fn upstream_requests(m: &Model) -> BTreeSet<UpstreamPackage> {
    let mut out = BTreeSet::new();
    for pv in m.package_variants.values() {
        out.insert(pv.spec.upstream.clone());
    }
    for a in m.applications.values() {
        if let Some(k) = &a.spec.kpt {
            out.insert(k.clone());
        }
    }
    out
}

/// Places applications on clusters: explicit lists, target policies of the app's team, and
/// clusters its components are pinned to. Applications are named by index in the model's
/// order, so that placing moves small integers instead of cloning 50-odd name pairs per
/// cluster.
pub struct Placer<'m> {
    explicit: HashMap<&'m str, Vec<u32>>,
    policies: Vec<(&'m atoll_model::LabelSelector, Vec<u32>)>,
}

impl<'m> Placer<'m> {
    pub fn new(m: &'m Model) -> Placer<'m> {
        let mut explicit: HashMap<&str, Vec<u32>> = HashMap::new();
        for (i, a) in m.applications.values().enumerate() {
            let named = a.spec.clusters.iter().chain(
                a.spec
                    .components
                    .iter()
                    .filter_map(|comp| comp.cluster.as_ref()),
            );
            for c in named {
                explicit.entry(c.as_str()).or_default().push(i as u32);
            }
        }
        let policies = m
            .policies
            .iter()
            .filter_map(|((team, _), p)| {
                let apps: Vec<u32> = m
                    .applications
                    .iter()
                    .enumerate()
                    .filter(|(_, ((t, _), a))| t == team && p.spec.app_selector.matches(&a.labels))
                    .map(|(i, _)| i as u32)
                    .collect();
                (!apps.is_empty()).then_some((&p.spec.cluster_selector, apps))
            })
            .collect();
        Placer { explicit, policies }
    }

    /// Indices (sorted) of the applications placed on the cluster `name` with `labels`.
    pub fn apps(&self, name: &str, labels: &BTreeMap<String, String>) -> Vec<u32> {
        let mut idx: Vec<u32> = self.explicit.get(name).cloned().unwrap_or_default();
        for (sel, apps) in &self.policies {
            if sel.matches(labels) {
                idx.extend_from_slice(apps);
            }
        }
        idx.sort_unstable();
        idx.dedup();
        idx
    }
}

/// Why an application is (or is not) placed on a cluster: each rule that puts it there, in
/// words a platform engineer reads (the same rules [`Placer`] applies). Empty: not placed.
pub fn placement_reasons(
    m: &Model,
    app: (&str, &str),
    cluster: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let Some(a) = m.applications.get(&(app.0.to_string(), app.1.to_string())) else {
        return out;
    };
    if a.spec.clusters.iter().any(|c| c == cluster) {
        out.push("listed in the application's spec.clusters".to_string());
    }
    for comp in &a.spec.components {
        if comp.cluster.as_deref() == Some(cluster) {
            out.push(format!(
                "component `{}` is pinned to this cluster",
                comp.name
            ));
        }
    }
    for ((team, name), p) in &m.policies {
        if team == app.0
            && p.spec.app_selector.matches(&a.labels)
            && p.spec.cluster_selector.matches(labels)
        {
            out.push(format!(
                "TargetPolicy {team}/{name}: appSelector {} matches the application, clusterSelector {} matches the cluster",
                selector_text(&p.spec.app_selector),
                selector_text(&p.spec.cluster_selector)
            ));
        }
    }
    out
}

/// A label selector in kubectl's string syntax (`{}` for everything).
fn selector_text(s: &atoll_model::LabelSelector) -> String {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in &s.match_expressions {
        let op = e.operator.as_str();
        parts.push(match op {
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            "In" => format!("{} in ({})", e.key, e.values.join(",")),
            "NotIn" => format!("{} notin ({})", e.key, e.values.join(",")),
            _ => format!("{} {op} {:?}", e.key, e.values),
        });
    }
    if parts.is_empty() {
        "{}".to_string()
    } else {
        parts.join(",")
    }
}

fn cidr_or_alloc(r: &Range, allocs: &Allocations, cluster: &str) -> String {
    match r {
        Range::Fixed(c) => c.clone(),
        Range::Pool(p) => allocs.get(p, cluster).unwrap_or("").to_string(),
    }
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

impl ClusterMemo {
    /// The cluster's input digest: its inputs and the address blocks it was given.
    fn with_blocks(&self, allocs: &Allocations, cluster: &str) -> String {
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

/// What clusters of one render share: one copy of each distinct file content, and the
/// rendered source object of each Git or Helm application per agent (it does not depend on the
/// cluster it lands on).
#[derive(Default)]
struct Interner {
    contents: Mutex<HashSet<Arc<str>>>,
    sources: Mutex<HashMap<(GitOpsAgent, String, String), Arc<str>>>,
}

impl Interner {
    fn intern_all(&self, files: Vec<(String, String)>) -> Vec<(String, Arc<str>)> {
        let mut set = self.contents.lock().expect("memo");
        files
            .into_iter()
            .map(|(p, c)| {
                let c = match set.get(c.as_str()) {
                    Some(a) => a.clone(),
                    None => {
                        let a: Arc<str> = c.into();
                        set.insert(a.clone());
                        a
                    }
                };
                (p, c)
            })
            .collect()
    }

    /// The source object of `team/app` for `agent`, made by `make` the first time.
    fn source(
        &self,
        agent: GitOpsAgent,
        team: &str,
        app: &str,
        make: impl FnOnce() -> String,
    ) -> String {
        let key = (agent, team.to_string(), app.to_string());
        if let Some(s) = self.sources.lock().expect("memo").get(&key) {
            return s.to_string();
        }
        let s = make();
        self.sources
            .lock()
            .expect("memo")
            .insert(key, s.as_str().into());
        s
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
struct PartHasher(sha1_smol::Sha1);

impl PartHasher {
    fn part(&mut self, pieces: &[&[u8]]) {
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        self.0.update(&(len as u64).to_le_bytes());
        for p in pieces {
            self.0.update(p);
        }
    }
    fn finish(self) -> String {
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
    fn new(m: &Model, upstreams: &BTreeMap<UpstreamPackage, Fetched>) -> Self {
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
    fn cluster(
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

type InternedFiles = Result<Vec<(String, Arc<str>)>, Vec<Diagnostic>>;

/// One cluster's files, or the errors that stopped them.
type ClusterFiles = Result<Vec<(String, String)>, Vec<Diagnostic>>;

fn render_cluster(
    m: &Model,
    c: &ResolvedCluster,
    apps: &[&(String, String)],
    pvs: &[&Decl<PackageVariantSpec>],
    allocs: &Allocations,
    upstreams: &BTreeMap<UpstreamPackage, Fetched>,
    memo: &Interner,
) -> ClusterFiles {
    let name = &c.name;
    let decl = &m.clusters[name];
    let mut files: Vec<(String, String)> = Vec::new();
    let mut diags = Vec::new();
    let pods = cidr_or_alloc(&c.pods.value, allocs, name);
    let services = cidr_or_alloc(&c.services.value, allocs, name);
    let shared_block = c
        .addons
        .iter()
        .find(|a| a.addon == Addon::MetalLb)
        .and_then(|a| a.address_pool.as_ref())
        .and_then(|p| allocs.get(p, name));
    let shared_ip = shared_block.map(|b| b.split('/').next().unwrap_or(b).to_string());
    let domain = m
        .fleet
        .domain
        .clone()
        .unwrap_or_else(|| "atoll.local".into());
    let repo_url = m
        .fleet
        .gitops
        .repo_url
        .clone()
        .unwrap_or_else(|| "https://git.example.com/fleet.git".into());
    let branch = m
        .fleet
        .gitops
        .branch
        .clone()
        .unwrap_or_else(|| "main".into());
    let agent = c.gitops_agent.value;

    // The agent object, and Cluster API objects unless atoll does not make this cluster.
    let agent_yaml = yaml_stream(&delivery::agent_object(
        agent,
        name,
        &repo_url,
        &branch,
        m.fleet.gitops.interval.as_deref(),
    ));
    files.push((atoll_layout::agent_file(name), agent_yaml.clone()));
    if c.provider.value != Provider::Existing {
        let ns = m
            .fleet
            .management_namespace
            .clone()
            .unwrap_or_else(|| "atoll-system".into());
        let mut res = Vec::new();
        for (file, objs) in capi::render(
            c,
            &ns,
            &capi::Net {
                pods: &pods,
                services: &services,
            },
            &agent_yaml,
        ) {
            res.push(file.to_string());
            files.push((
                format!("{}{file}", atoll_layout::management_dir(name)),
                yaml_stream(&objs),
            ));
        }
        files.push((
            format!("{}kustomization.yaml", atoll_layout::management_dir(name)),
            kustomization(&res),
        ));
    }

    let mut dirs: Vec<String> = Vec::new();
    let mut shared_ports: Vec<delivery::SharedPort> = Vec::new();
    let mut put_dir = |dir: String,
                       objs_by_file: Vec<(String, String)>,
                       files: &mut Vec<(String, String)>,
                       with_kustomization: bool| {
        let mut res = Vec::new();
        for (f, content) in objs_by_file {
            if f.ends_with(".yaml") && f != "Kptfile" && f != "kustomization.yaml" {
                res.push(f.clone());
            }
            files.push((
                format!("{}{dir}/{f}", atoll_layout::package_dir(name)),
                content,
            ));
        }
        if with_kustomization {
            files.push((
                format!(
                    "{}{dir}/kustomization.yaml",
                    atoll_layout::package_dir(name)
                ),
                kustomization(&res),
            ));
        }
        dirs.push(dir);
    };

    // Add-ons.
    for a in &c.addons {
        let (objs, ports) = delivery::addon_objects(c, a, shared_ip.as_deref(), &pods, &services);
        shared_ports.extend(ports);
        put_dir(
            format!("addons/{}", a.addon.as_str()),
            vec![(format!("{}.yaml", a.addon.as_str()), yaml_stream(&objs))],
            &mut files,
            true,
        );
    }

    // Tenancy: each team with apps here.
    let mut team_ns: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for key @ (team, _) in apps.iter().copied() {
        let a = &m.applications[key];
        team_ns.entry(team).or_default().insert(
            a.spec
                .target_namespace
                .clone()
                .unwrap_or_else(|| team.clone()),
        );
    }
    for (team, nss) in &team_ns {
        let t = &m.teams[*team];
        let objs = delivery::tenancy_objects(
            team,
            &t.spec.readers,
            &t.spec.contributors,
            &nss.iter().cloned().collect::<Vec<_>>(),
        );
        put_dir(
            format!("tenancy/{team}"),
            vec![("tenancy.yaml".into(), yaml_stream(&objs))],
            &mut files,
            true,
        );
    }

    // Applications.
    for key @ (team, app) in apps.iter().copied() {
        let a = &m.applications[key];
        let ns = a
            .spec
            .target_namespace
            .clone()
            .unwrap_or_else(|| team.clone());
        let dir = format!("apps/{team}/{app}");
        let obj_name = format!("{team}-{app}");
        if let Some(g) = &a.spec.git {
            let source = memo.source(agent, team, app, || {
                yaml_stream(&delivery::git_objects(
                    agent,
                    &obj_name,
                    &g.repo_url,
                    g.revision.as_deref().unwrap_or("main"),
                    g.path.as_deref().unwrap_or("."),
                    &ns,
                ))
            });
            put_dir(dir, vec![("source.yaml".into(), source)], &mut files, true);
        } else if let Some(h) = &a.spec.helm {
            let release = memo.source(agent, team, app, || {
                let chart = delivery::Chart {
                    name: &obj_name,
                    repo_url: &h.repo_url,
                    chart: &h.chart,
                    version: &h.version,
                    namespace: &ns,
                    values: h.values.clone().unwrap_or(json!({})),
                };
                yaml_stream(&delivery::helm_objects(agent, &chart))
            });
            put_dir(
                dir,
                vec![("release.yaml".into(), release)],
                &mut files,
                true,
            );
        } else if let Some(k) = &a.spec.kpt {
            let Some(f) = upstreams.get(k) else { continue };
            let inj = Injection {
                cluster: name,
                namespace: Some(&ns),
                create_namespace: false,
                context: context(c, &pods, &services, shared_ip.as_deref()),
            };
            match packages::downstream(k, f, app, &inj) {
                Ok(pkg) => put_dir(dir, pkg.into_iter().collect(), &mut files, false),
                Err(e) => diags.push(a.origin.error("spec.kpt", e)),
            }
        } else {
            let mut objs = Vec::new();
            for comp in &a.spec.components {
                if comp.cluster.as_ref().is_some_and(|p| p != name) {
                    continue;
                }
                let (o, ports) = delivery::component_objects(
                    name,
                    team,
                    app,
                    &ns,
                    comp,
                    shared_ip.as_deref(),
                    &domain,
                );
                objs.extend(o);
                shared_ports.extend(ports);
            }
            if !objs.is_empty() {
                put_dir(
                    dir,
                    vec![("components.yaml".into(), yaml_stream(&objs))],
                    &mut files,
                    true,
                );
            }
        }
    }

    // Package variants.
    for pv in pvs {
        let up = &pv.spec.upstream;
        let Some(f) = upstreams.get(up) else { continue };
        let inj = Injection {
            cluster: name,
            namespace: pv.spec.downstream.namespace.as_deref(),
            create_namespace: true,
            context: context(c, &pods, &services, shared_ip.as_deref()),
        };
        match packages::downstream(up, f, &pv.spec.downstream.package, &inj) {
            Ok(pkg) => put_dir(
                format!("packages/{}", pv.spec.downstream.package),
                pkg.into_iter().collect(),
                &mut files,
                false,
            ),
            Err(e) => diags.push(pv.origin.error("spec.upstream", e)),
        }
    }

    // One address, many services: the same port twice is a clash (seed 003 §6.3.5).
    if shared_ip.is_some() {
        let mut seen: BTreeMap<(i32, &str), &str> = BTreeMap::new();
        for p in &shared_ports {
            if let Some(first) = seen.get(&(p.port, p.protocol)) {
                diags.push(decl.origin.error(
                    "",
                    format!(
                        "port {}/{} on the shared address {} is wanted by both {} and {}: change one of them",
                        p.port,
                        p.protocol,
                        shared_ip.as_deref().unwrap_or(""),
                        first,
                        p.owner
                    ),
                ));
            } else {
                seen.insert((p.port, p.protocol), &p.owner);
            }
        }
    }

    dirs.sort();
    files.push((
        format!("{}kustomization.yaml", atoll_layout::package_dir(name)),
        kustomization(&dirs),
    ));
    let mut state = serde_json::to_value(c).expect("resolved cluster");
    state["network"] = json!({"pods": pods, "services": services, "sharedAddress": shared_ip});
    state["applications"] = json!(
        apps.iter()
            .map(|(t, a)| format!("{t}/{a}"))
            .collect::<Vec<_>>()
    );
    // Where atoll reads the cluster's state from (`atoll status`, the operator, serve).
    state["observe"] = json!({
        "agent": agent,
        "kubeconfigSecret": {
            "namespace": m.fleet.management_namespace.clone().unwrap_or_else(|| "atoll-system".into()),
            "name": decl.spec.kubeconfig_secret.clone().unwrap_or_else(|| format!("{name}-kubeconfig")),
            "key": "value",
        },
    });
    files.push((atoll_layout::state_file(name), to_yaml(&state)));
    if diags.is_empty() {
        Ok(files)
    } else {
        Err(diags)
    }
}

fn context(
    c: &ResolvedCluster,
    pods: &str,
    services: &str,
    ip: Option<&str>,
) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("cluster".into(), c.name.clone());
    m.insert("podCIDR".into(), pods.to_string());
    m.insert("serviceCIDR".into(), services.to_string());
    if let Some(ip) = ip {
        m.insert("sharedAddress".into(), ip.to_string());
    }
    for (k, v) in &c.labels {
        let key = k.rsplit('/').next().unwrap_or(k);
        m.entry(format!("label.{key}")).or_insert_with(|| v.clone());
    }
    m
}
