//! Validation of loaded declarations and their expansion into one consistent model:
//! names unique, references resolved, profile bases acyclic, values well-formed.

use crate::decl::{Decl, Declarations, Diagnostic, Diagnostics, Origin};
use crate::types::*;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};

mod application;
mod cluster;
mod profile;

use application::*;
use cluster::*;
use profile::*;

/// A validated fleet: every reference in it resolves.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// The Fleet's settings (defaults when none is declared).
    pub fleet: FleetSpec,
    /// Keyed by (profile name, revision).
    pub profiles: BTreeMap<(String, String), Decl<InfrastructureProfileSpec>>,
    /// Keyed by name.
    pub catalogs: BTreeMap<String, Decl<ClusterCatalogSpec>>,
    /// Declared clusters plus inline members of logical clusters and workload deployments.
    pub clusters: BTreeMap<String, Decl<ClusterSpec>>,
    /// Keyed by name.
    pub logical_clusters: BTreeMap<String, Decl<LogicalClusterSpec>>,
    /// Keyed by name.
    pub teams: BTreeMap<String, Decl<TeamSpec>>,
    /// Keyed by (team, name).
    pub applications: BTreeMap<(String, String), Decl<ApplicationSpec>>,
    /// Keyed by (team, name).
    pub policies: BTreeMap<(String, String), Decl<TargetPolicySpec>>,
    /// Declared package variants plus those expanded from workload deployments.
    pub package_variants: BTreeMap<String, Decl<PackageVariantSpec>>,
    /// Keyed by name.
    pub pools: BTreeMap<String, Decl<IPPoolSpec>>,
}

impl Model {
    /// The profile a reference names.
    pub fn profile(&self, r: &ProfileRef) -> Option<&Decl<InfrastructureProfileSpec>> {
        self.profiles.get(&(r.name.clone(), r.revision.clone()))
    }

    /// Members of a logical cluster: inline ones and those its selector picks.
    pub fn members(&self, lc: &Decl<LogicalClusterSpec>) -> Vec<String> {
        let mut out: BTreeSet<String> = lc.spec.clusters.iter().map(|m| m.name.clone()).collect();
        if let Some(sel) = &lc.spec.cluster_selector {
            for (name, c) in &self.clusters {
                if sel.matches(&c.labels) {
                    out.insert(name.clone());
                }
            }
        }
        out.into_iter().collect()
    }
}

/// Profile identity: `spec.profileName`, else `metadata.name`.
pub fn profile_key(p: &Decl<InfrastructureProfileSpec>) -> (String, String) {
    (
        p.spec
            .profile_name
            .clone()
            .unwrap_or_else(|| p.name.clone()),
        p.spec.revision.clone(),
    )
}

/// Validates and expands. All problems are reported together.
pub fn validate(decls: Declarations) -> Result<Model, Diagnostics> {
    let mut d = Vec::new();
    let mut m = Model::default();

    if decls.fleets.len() > 1 {
        for f in &decls.fleets[1..] {
            d.push(
                f.origin
                    .error("metadata.name", "only one Fleet object may exist"),
            );
        }
    }
    if let Some(f) = decls.fleets.first() {
        m.fleet = f.spec.clone();
        if let Some(ns) = &f.spec.management_namespace
            && let Some(msg) = dns_label_problem(ns)
        {
            d.push(f.origin.error("spec.managementNamespace", msg));
        }
        if let Some(r) = &f.spec.rollout {
            check_rollout(r, &f.origin, &mut d);
        }
    }
    for c in &decls.catalogs {
        if let Some(r) = &c.spec.rollout {
            check_rollout(r, &c.origin, &mut d);
        }
    }

    // ---- unique names
    fn insert<K: Ord + Clone + std::fmt::Debug, T>(
        map: &mut BTreeMap<K, Decl<T>>,
        key: K,
        decl: Decl<T>,
        kind: &str,
        d: &mut Vec<Diagnostic>,
    ) {
        if let Some(prev) = map.get(&key) {
            d.push(decl.origin.error(
                "metadata.name",
                format!(
                    "duplicate {kind} {key:?}; first declared at {}:{}",
                    prev.origin.file,
                    prev.origin.error("", "").line
                ),
            ));
        } else {
            map.insert(key, decl);
        }
    }
    let mut profile_names = BTreeMap::new();
    for p in decls.profiles {
        insert(
            &mut profile_names,
            p.name.clone(),
            p.clone(),
            "InfrastructureProfile",
            &mut d,
        );
    }
    for p in profile_names.into_values() {
        let key = profile_key(&p);
        insert(
            &mut m.profiles,
            key,
            p,
            "InfrastructureProfile name@revision",
            &mut d,
        );
    }
    for c in decls.catalogs {
        insert(&mut m.catalogs, c.name.clone(), c, "ClusterCatalog", &mut d);
    }
    for c in decls.clusters {
        insert(&mut m.clusters, c.name.clone(), c, "Cluster", &mut d);
    }
    for t in decls.teams {
        insert(&mut m.teams, t.name.clone(), t, "Team", &mut d);
    }
    for p in decls.pools {
        insert(&mut m.pools, p.name.clone(), p, "IPPool", &mut d);
    }
    for a in decls.applications {
        let key = (a.namespace.clone().unwrap_or_default(), a.name.clone());
        insert(&mut m.applications, key, a, "Application", &mut d);
    }
    for p in decls.policies {
        let key = (p.namespace.clone().unwrap_or_default(), p.name.clone());
        insert(&mut m.policies, key, p, "TargetPolicy", &mut d);
    }
    for p in decls.package_variants {
        insert(
            &mut m.package_variants,
            p.name.clone(),
            p,
            "PackageVariant",
            &mut d,
        );
    }
    // Inline members become clusters.
    for lc in decls.logical_clusters {
        for (i, mem) in lc.spec.clusters.iter().enumerate() {
            member_cluster(&mut m, mem, &lc.origin, i, &mut d);
        }
        insert(
            &mut m.logical_clusters,
            lc.name.clone(),
            lc,
            "LogicalCluster",
            &mut d,
        );
    }
    for wd in decls.workload_deployments {
        for (i, mem) in wd.spec.clusters.iter().enumerate() {
            member_cluster(&mut m, mem, &wd.origin, i, &mut d);
            for (j, pkg) in wd.spec.packages.iter().enumerate() {
                let pkg_name = pkg.name.clone().unwrap_or_else(|| {
                    pkg.upstream
                        .package
                        .trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .unwrap_or("pkg")
                        .to_string()
                });
                let name = format!("{}-{}-{}", wd.name, mem.name, pkg_name);
                let origin = wd.origin.nested(
                    &format!("spec.packages[{j}]"),
                    format!("PackageVariant/{name}"),
                );
                let decl = Decl {
                    name: name.clone(),
                    namespace: None,
                    labels: BTreeMap::from([(
                        "atoll.dev/workload-deployment".into(),
                        wd.name.clone(),
                    )]),
                    spec: PackageVariantSpec {
                        upstream: pkg.upstream.clone(),
                        downstream: Downstream {
                            cluster: mem.name.clone(),
                            package: pkg_name,
                            namespace: None,
                        },
                    },
                    origin,
                };
                insert(
                    &mut m.package_variants,
                    name,
                    decl,
                    "PackageVariant",
                    &mut d,
                );
            }
        }
    }

    // ---- per-kind checks
    for ((name, rev), p) in &m.profiles {
        check_profile(&m, name, rev, p, &mut d);
    }
    for c in m.catalogs.values() {
        check_ref(
            &m,
            &c.spec.infrastructure,
            ProfileType::Infrastructure,
            &c.origin,
            "spec.infrastructure",
            &mut d,
        );
        check_ref(
            &m,
            &c.spec.network,
            ProfileType::Network,
            &c.origin,
            "spec.network",
            &mut d,
        );
        for (i, s) in c.spec.software.iter().enumerate() {
            check_ref(
                &m,
                s,
                ProfileType::Software,
                &c.origin,
                &format!("spec.software[{i}]"),
                &mut d,
            );
        }
        if let Some(o) = &c.spec.overrides {
            check_overrides(&m, o, &c.origin, "spec.overrides", &mut d);
        }
    }
    for c in m.clusters.values() {
        check_cluster(&m, c, &mut d);
    }
    for lc in m.logical_clusters.values() {
        if let Some(sel) = &lc.spec.cluster_selector {
            for (p, msg) in sel.problems() {
                d.push(lc.origin.error(&format!("spec.clusterSelector.{p}"), msg));
            }
        }
        let members: BTreeSet<String> = m.members(lc).into_iter().collect();
        if let Some(conn) = &lc.spec.connectivity {
            for (i, l) in conn.links.iter().enumerate() {
                for (side, n) in [("a", &l.a), ("b", &l.b)] {
                    if !members.contains(n) {
                        d.push(lc.origin.error(
                            &format!("spec.connectivity.links[{i}].{side}"),
                            format!(
                                "`{n}` is not a member of this logical cluster (members: {})",
                                join(&members)
                            ),
                        ));
                    }
                }
                if l.a == l.b {
                    d.push(lc.origin.error(
                        &format!("spec.connectivity.links[{i}]"),
                        "a cluster cannot be linked to itself",
                    ));
                }
            }
        }
    }
    for ((team, _), a) in &m.applications {
        if !m.teams.contains_key(team) {
            d.push(a.origin.error(
                "metadata.namespace",
                format!(
                    "team `{team}` does not exist (teams: {})",
                    join(m.teams.keys())
                ),
            ));
        }
        check_app(&m, a, &mut d);
    }
    for ((team, _), p) in &m.policies {
        if !m.teams.contains_key(team) {
            d.push(p.origin.error(
                "metadata.namespace",
                format!(
                    "team `{team}` does not exist (teams: {})",
                    join(m.teams.keys())
                ),
            ));
        }
        for (path, msg) in p.spec.app_selector.problems() {
            d.push(p.origin.error(&format!("spec.appSelector.{path}"), msg));
        }
        for (path, msg) in p.spec.cluster_selector.problems() {
            d.push(p.origin.error(&format!("spec.clusterSelector.{path}"), msg));
        }
    }
    for pv in m.package_variants.values() {
        if !m.clusters.contains_key(&pv.spec.downstream.cluster) {
            d.push(pv.origin.error(
                "spec.downstream.cluster",
                format!("cluster `{}` does not exist", pv.spec.downstream.cluster),
            ));
        }
        if let Some(msg) = dns_label_problem(&pv.spec.downstream.package) {
            d.push(pv.origin.error("spec.downstream.package", msg));
        }
        check_upstream(&pv.spec.upstream, &pv.origin, "spec.upstream", &mut d);
    }
    let mut pool_nets: Vec<(IpNet, &str)> = Vec::new();
    for p in m.pools.values() {
        if p.spec.cidrs.is_empty() {
            d.push(p.origin.error("spec.cidrs", "at least one CIDR is needed"));
        }
        for (i, c) in p.spec.cidrs.iter().enumerate() {
            match c.parse::<IpNet>() {
                Ok(net) => {
                    if net != net.trunc() {
                        d.push(p.origin.error(
                            &format!("spec.cidrs[{i}]"),
                            format!("`{c}` has host bits set; did you mean `{}`?", net.trunc()),
                        ));
                    }
                    let prefix = p
                        .spec
                        .prefix_length
                        .unwrap_or(p.spec.purpose.default_prefix());
                    if prefix < net.prefix_len() || prefix > net.max_prefix_len() {
                        d.push(p.origin.error(
                            "spec.prefixLength",
                            format!("/{prefix} blocks do not fit in `{c}`: expected between /{} and /{}", net.prefix_len(), net.max_prefix_len()),
                        ));
                    }
                    if let Some((_, other)) = pool_nets
                        .iter()
                        .find(|(n, _)| n.contains(&net.network()) || net.contains(&n.network()))
                    {
                        d.push(p.origin.error(
                            &format!("spec.cidrs[{i}]"),
                            format!("`{c}` overlaps IPPool `{other}`"),
                        ));
                    }
                    pool_nets.push((net, &p.name));
                }
                Err(_) => d.push(p.origin.error(
                    &format!("spec.cidrs[{i}]"),
                    format!("`{c}` is not a CIDR, expected e.g. `10.128.0.0/9`"),
                )),
            }
        }
    }

    if d.is_empty() {
        Ok(m)
    } else {
        d.sort();
        d.dedup();
        Err(Diagnostics(d))
    }
}

pub(crate) fn join<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> String {
    let v: Vec<String> = items.into_iter().map(|s| s.as_ref().to_string()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Whether `v` is a Kubernetes version as Cluster API takes it: `v1.31.2`, with an optional
/// `+build` or `-pre` suffix.
pub fn is_k8s_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let core = rest.split(['+', '-']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

pub use crate::names::{dns_label_problem, dns_subdomain_problem};
