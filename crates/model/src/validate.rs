//! Validation of loaded declarations and their expansion into one consistent model:
//! names unique, references resolved, profile bases acyclic, values well-formed.

use crate::load::{Decl, Declarations, Diagnostic, Diagnostics, Origin};
use crate::types::*;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};

/// A validated fleet: every reference in it resolves.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub fleet: FleetSpec,
    /// Keyed by (profile name, revision).
    pub profiles: BTreeMap<(String, String), Decl<InfrastructureProfileSpec>>,
    pub catalogs: BTreeMap<String, Decl<ClusterCatalogSpec>>,
    /// Declared clusters plus inline members of logical clusters and workload deployments.
    pub clusters: BTreeMap<String, Decl<ClusterSpec>>,
    pub logical_clusters: BTreeMap<String, Decl<LogicalClusterSpec>>,
    pub teams: BTreeMap<String, Decl<TeamSpec>>,
    /// Keyed by (team, name).
    pub applications: BTreeMap<(String, String), Decl<ApplicationSpec>>,
    /// Keyed by (team, name).
    pub policies: BTreeMap<(String, String), Decl<TargetPolicySpec>>,
    /// Declared package variants plus those expanded from workload deployments.
    pub package_variants: BTreeMap<String, Decl<PackageVariantSpec>>,
    pub pools: BTreeMap<String, Decl<IPPoolSpec>>,
}

impl Model {
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

/// An inline member (of a LogicalCluster or WorkloadDeployment) becomes a Cluster whose errors
/// point into the declaring document.
fn member_cluster(
    m: &mut Model,
    mem: &LogicalMember,
    parent: &Origin,
    i: usize,
    d: &mut Vec<Diagnostic>,
) {
    let at = format!("spec.clusters[{i}]");
    let origin = parent.nested(&format!("{at}.spec"), format!("Cluster/{}", mem.name));
    if let Some(msg) = crate::names::name_problem("Cluster", &mem.name) {
        d.push(parent.error(&format!("{at}.name"), msg));
    }
    if let Some(prev) = m.clusters.get(&mem.name) {
        d.push(parent.error(
            &format!("{at}.name"),
            format!(
                "duplicate Cluster `{}`; first declared at {}:{}",
                mem.name,
                prev.origin.file,
                prev.origin.error("", "").line
            ),
        ));
        return;
    }
    for (k, v) in &mem.labels {
        if let Some(msg) = crate::selector::label_key_problem(k)
            .or_else(|| crate::selector::label_value_problem(v))
        {
            d.push(parent.error(&format!("{at}.labels.{k}"), msg));
        }
    }
    m.clusters.insert(
        mem.name.clone(),
        Decl {
            name: mem.name.clone(),
            namespace: None,
            labels: mem.labels.clone(),
            spec: mem.spec.clone(),
            origin,
        },
    );
}

fn check_profile(
    m: &Model,
    name: &str,
    rev: &str,
    p: &Decl<InfrastructureProfileSpec>,
    d: &mut Vec<Diagnostic>,
) {
    let s = &p.spec;
    let blocks = [
        (
            ProfileType::Infrastructure,
            "infrastructure",
            s.infrastructure.is_some(),
        ),
        (ProfileType::Network, "network", s.network.is_some()),
        (ProfileType::Software, "software", s.software.is_some()),
    ];
    for (ty, field, present) in blocks {
        if present && ty != s.type_ {
            d.push(p.origin.error(
                &format!("spec.{field}"),
                format!(
                    "a profile of type {:?} cannot have `{field}` values; expected only `{}`",
                    s.type_,
                    lower(s.type_)
                ),
            ));
        }
    }
    if s.revision.trim().is_empty() {
        d.push(
            p.origin
                .error("spec.revision", "revision must not be empty"),
        );
    }
    if let Some(v) = &s.infrastructure {
        check_infra(v, &p.origin, "spec.infrastructure", d);
    }
    if let Some(v) = &s.network {
        check_network(m, v, &p.origin, "spec.network", d);
    }
    if let Some(sw) = &s.software {
        if s.base.is_none() && sw.addon.is_none() {
            d.push(p.origin.error("spec.software.addon", "missing `addon`: expected one of metallb, ingress-nginx, prometheus, liqo, strimzi"));
        }
        if let Some(pool) = &sw.address_pool {
            check_pool(
                m,
                pool,
                PoolPurpose::LoadBalancer,
                &p.origin,
                "spec.software.addressPool",
                d,
            );
        }
        if sw.addon == Some(Addon::MetalLb) && sw.address_pool.is_none() && s.base.is_none() {
            d.push(p.origin.error("spec.software.addressPool", "MetalLB needs `addressPool`: the IPPool (purpose loadBalancer) of the shared address"));
        }
    }
    if let Some(base) = &s.base {
        match m.profile(base) {
            None => d.push(p.origin.error(
                "spec.base",
                format!("base profile `{base}` does not exist{}", near(m, base)),
            )),
            Some(b) if b.spec.type_ != s.type_ => d.push(p.origin.error(
                "spec.base",
                format!(
                    "base profile `{base}` is of type {:?}, expected {:?}",
                    b.spec.type_, s.type_
                ),
            )),
            Some(_) => {
                // Walk the chain; a cycle returns here.
                let mut seen = vec![format!("{name}@{rev}")];
                let mut cur = base.clone();
                while let Some(next) = m.profile(&cur) {
                    let key = cur.to_string();
                    if seen.contains(&key) {
                        seen.push(key);
                        d.push(p.origin.error(
                            "spec.base",
                            format!("profile bases form a cycle: {}", seen.join(" -> ")),
                        ));
                        break;
                    }
                    seen.push(key);
                    match &next.spec.base {
                        Some(b) => cur = b.clone(),
                        None => break,
                    }
                }
            }
        }
    }
}

fn check_rollout(r: &RolloutPolicy, o: &Origin, d: &mut Vec<Diagnostic>) {
    if r.max_unavailable == 0 {
        d.push(o.error(
            "spec.rollout.maxUnavailable",
            "must be at least 1 (clusters changed at a time)",
        ));
    }
    for (field, v) in [
        ("bakeTime", &r.bake_time),
        ("progressDeadline", &r.progress_deadline),
    ] {
        if let Some(v) = v
            && parse_duration(v).is_none()
        {
            d.push(o.error(
                &format!("spec.rollout.{field}"),
                format!("`{v}` is not a duration: expected e.g. `30s`, `5m`, `1h30m`"),
            ));
        }
    }
    for (i, k) in r.order_by.iter().enumerate() {
        if let Some(why) = crate::selector::label_key_problem(k) {
            d.push(o.error(&format!("spec.rollout.orderBy[{i}]"), why));
        }
    }
}

fn lower(t: ProfileType) -> &'static str {
    match t {
        ProfileType::Infrastructure => "infrastructure",
        ProfileType::Network => "network",
        ProfileType::Software => "software",
    }
}

fn near(m: &Model, r: &ProfileRef) -> String {
    let revs: Vec<&str> = m
        .profiles
        .keys()
        .filter(|(n, _)| n == &r.name)
        .map(|(_, v)| v.as_str())
        .collect();
    if revs.is_empty() {
        let names: BTreeSet<&str> = m.profiles.keys().map(|(n, _)| n.as_str()).collect();
        format!(" (profiles: {})", join(names))
    } else {
        format!(" (revisions of `{}`: {})", r.name, revs.join(", "))
    }
}

fn check_ref(
    m: &Model,
    r: &ProfileRef,
    ty: ProfileType,
    o: &Origin,
    at: &str,
    d: &mut Vec<Diagnostic>,
) {
    match m.profile(r) {
        None => d.push(o.error(at, format!("profile `{r}` does not exist{}", near(m, r)))),
        Some(p) if p.spec.type_ != ty => d.push(o.error(
            at,
            format!(
                "profile `{r}` is of type {:?}, expected a {ty:?} profile",
                p.spec.type_
            ),
        )),
        Some(_) => {}
    }
}

fn check_infra(v: &InfrastructureValues, o: &Origin, at: &str, d: &mut Vec<Diagnostic>) {
    if let Some(kv) = &v.kubernetes_version
        && !is_k8s_version(kv)
    {
        d.push(o.error(
            &format!("{at}.kubernetesVersion"),
            format!("`{kv}` is not a Kubernetes version, expected e.g. `v1.34.2`"),
        ));
    }
    if let Some(n) = v.control_plane_count
        && (n < 1 || n % 2 == 0)
    {
        d.push(o.error(
            &format!("{at}.controlPlaneCount"),
            format!("{n} control-plane machines: expected an odd number >= 1 (etcd quorum)"),
        ));
    }
    if let Some(n) = v.worker_count
        && n < 0
    {
        d.push(o.error(
            &format!("{at}.workerCount"),
            format!("{n} workers: expected 0 or more"),
        ));
    }
}

fn check_network(m: &Model, v: &NetworkValues, o: &Origin, at: &str, d: &mut Vec<Diagnostic>) {
    for (field, cidr, pool, pfield, purpose) in [
        (
            "podCIDR",
            &v.pod_cidr,
            &v.pod_pool,
            "podPool",
            PoolPurpose::Pod,
        ),
        (
            "serviceCIDR",
            &v.service_cidr,
            &v.service_pool,
            "servicePool",
            PoolPurpose::Service,
        ),
    ] {
        if cidr.is_some() && pool.is_some() {
            d.push(o.error(
                &format!("{at}.{pfield}"),
                format!("give either `{field}` or `{pfield}`, not both"),
            ));
        }
        if let Some(c) = cidr
            && c.parse::<IpNet>().is_err()
        {
            d.push(o.error(
                &format!("{at}.{field}"),
                format!("`{c}` is not a CIDR, expected e.g. `10.244.0.0/16`"),
            ));
        }
        if let Some(p) = pool {
            check_pool(m, p, purpose, o, &format!("{at}.{pfield}"), d);
        }
    }
}

fn check_pool(
    m: &Model,
    pool: &str,
    purpose: PoolPurpose,
    o: &Origin,
    at: &str,
    d: &mut Vec<Diagnostic>,
) {
    match m.pools.get(pool) {
        None => d.push(o.error(
            at,
            format!(
                "IPPool `{pool}` does not exist (pools: {})",
                join(m.pools.keys())
            ),
        )),
        Some(p) if p.spec.purpose != purpose => d.push(o.error(
            at,
            format!(
                "IPPool `{pool}` has purpose {:?}, expected {purpose:?}",
                p.spec.purpose
            ),
        )),
        Some(_) => {}
    }
}

fn check_overrides(m: &Model, o: &Overrides, origin: &Origin, at: &str, d: &mut Vec<Diagnostic>) {
    if let Some(i) = &o.infrastructure {
        check_infra(i, origin, &format!("{at}.infrastructure"), d);
    }
    if let Some(n) = &o.network {
        check_network(m, n, origin, &format!("{at}.network"), d);
    }
}

fn check_cluster(m: &Model, c: &Decl<ClusterSpec>, d: &mut Vec<Diagnostic>) {
    // Inline members carry their origin at `spec`, declared clusters at the document root.
    let base = if c.origin.prefix.is_empty() {
        "spec."
    } else {
        ""
    };
    let at = |f: &str| format!("{base}{f}");
    if let Some(cat) = &c.spec.catalog
        && !m.catalogs.contains_key(cat)
    {
        d.push(c.origin.error(
            &at("catalog"),
            format!(
                "catalog `{cat}` does not exist (catalogs: {})",
                join(m.catalogs.keys())
            ),
        ));
    }
    if let Some(p) = &c.spec.profiles {
        if let Some(r) = &p.infrastructure {
            check_ref(
                m,
                r,
                ProfileType::Infrastructure,
                &c.origin,
                &at("profiles.infrastructure"),
                d,
            );
        }
        if let Some(r) = &p.network {
            check_ref(
                m,
                r,
                ProfileType::Network,
                &c.origin,
                &at("profiles.network"),
                d,
            );
        }
        for (i, r) in p.software.iter().enumerate() {
            check_ref(
                m,
                r,
                ProfileType::Software,
                &c.origin,
                &at(&format!("profiles.software[{i}]")),
                d,
            );
        }
    }
    let existing = c.spec.provider == Some(Provider::Existing);
    let has_infra_values = c
        .spec
        .overrides
        .as_ref()
        .is_some_and(|o| o.infrastructure.is_some());
    if c.spec.catalog.is_none()
        && c.spec
            .profiles
            .as_ref()
            .is_none_or(|p| p.infrastructure.is_none())
        && !existing
        && !has_infra_values
    {
        d.push(c.origin.error(
            &at("catalog"),
            "a cluster needs a `catalog` or `profiles.infrastructure` (or `provider: existing` for a cluster atoll does not make)",
        ));
    }
    if let Some(o) = &c.spec.overrides {
        check_overrides(m, o, &c.origin, &at("overrides"), d);
    }
    if let Some(s) = &c.spec.kubeconfig_secret
        && let Some(msg) = dns_subdomain_problem(s)
    {
        d.push(c.origin.error(&at("kubeconfigSecret"), msg));
    }
    for (k, v) in &c.labels {
        if let Some(msg) = crate::selector::label_key_problem(k)
            .or_else(|| crate::selector::label_value_problem(v))
        {
            d.push(c.origin.error(&format!("metadata.labels.{k}"), msg));
        }
    }
}

fn check_app(m: &Model, a: &Decl<ApplicationSpec>, d: &mut Vec<Diagnostic>) {
    let s = &a.spec;
    let sources = [
        ("git", s.git.is_some()),
        ("kpt", s.kpt.is_some()),
        ("helm", s.helm.is_some()),
        ("components", !s.components.is_empty()),
    ];
    let given: Vec<&str> = sources
        .iter()
        .filter(|(_, p)| *p)
        .map(|(n, _)| *n)
        .collect();
    match given.len() {
        0 => d.push(a.origin.error("spec", "no source: expected exactly one of `git`, `kpt`, `helm` or `components`")),
        1 => {}
        _ => d.push(a.origin.error(
            &format!("spec.{}", given[1]),
            format!("several sources ({}): expected exactly one of `git`, `kpt`, `helm` or `components`", given.join(", ")),
        )),
    }
    if let Some(ns) = &s.target_namespace
        && let Some(msg) = dns_label_problem(ns)
    {
        d.push(a.origin.error("spec.targetNamespace", msg));
    }
    for (i, c) in s.clusters.iter().enumerate() {
        if !m.clusters.contains_key(c) {
            d.push(a.origin.error(
                &format!("spec.clusters[{i}]"),
                format!("cluster `{c}` does not exist"),
            ));
        }
    }
    if let Some(k) = &s.kpt {
        check_upstream(k, &a.origin, "spec.kpt", d);
    }
    if let Some(h) = &s.helm
        && !(h.repo_url.starts_with("https://")
            || h.repo_url.starts_with("http://")
            || h.repo_url.starts_with("oci://"))
    {
        d.push(a.origin.error(
            "spec.helm.repoURL",
            format!(
                "`{}` is not a chart repository URL, expected https://… or oci://…",
                h.repo_url
            ),
        ));
    }
    let mut names = BTreeSet::new();
    for (i, c) in s.components.iter().enumerate() {
        let at = format!("spec.components[{i}]");
        if let Some(msg) = dns_label_problem(&c.name) {
            d.push(a.origin.error(&format!("{at}.name"), msg));
        } else if a.name.len() + c.name.len() + "--public".len() > 63 {
            // Its Service is `<app>-<component>` and its public one `…-public`.
            d.push(a.origin.error(
                &format!("{at}.name"),
                format!(
                    "`{}-{}-public` (the component's public Service) would be longer than the 63 characters Kubernetes allows: shorten the application or component name",
                    a.name, c.name
                ),
            ));
        }
        if !names.insert(&c.name) {
            d.push(a.origin.error(
                &format!("{at}.name"),
                format!("duplicate component `{}`", c.name),
            ));
        }
        if c.image.trim().is_empty() || c.image.contains(' ') {
            d.push(a.origin.error(
                &format!("{at}.image"),
                format!("`{}` is not an image reference", c.image),
            ));
        }
        if let Some(cl) = &c.cluster
            && !m.clusters.contains_key(cl)
        {
            d.push(a.origin.error(
                &format!("{at}.cluster"),
                format!("cluster `{cl}` does not exist"),
            ));
        }
        if let Some(r) = c.replicas
            && r < 0
        {
            d.push(
                a.origin
                    .error(&format!("{at}.replicas"), "replicas must be 0 or more"),
            );
        }
        let mut env_names = BTreeSet::new();
        for (j, e) in c.env.iter().enumerate() {
            if !env_names.insert(e.name.clone()) {
                d.push(a.origin.error(
                    &format!("{at}.env[{j}].name"),
                    format!("duplicate variable `{}`", e.name),
                ));
            }
            if e.name.is_empty() || e.name.contains(['=', ' ']) {
                d.push(a.origin.error(
                    &format!("{at}.env[{j}].name"),
                    format!("`{}` is not an environment variable name", e.name),
                ));
            }
        }
        for (j, e) in c.secret_env.iter().enumerate() {
            if !env_names.insert(e.name.clone()) {
                d.push(a.origin.error(
                    &format!("{at}.secretEnv[{j}].name"),
                    format!("duplicate variable `{}`", e.name),
                ));
            }
        }
        let mut ports = BTreeSet::new();
        for (j, e) in c.expose.iter().enumerate() {
            for (f, p) in [
                ("containerPort", Some(e.container_port)),
                ("servicePort", e.service_port),
            ] {
                if let Some(p) = p
                    && !(1..=65535).contains(&p)
                {
                    d.push(a.origin.error(
                        &format!("{at}.expose[{j}].{f}"),
                        format!("port {p} is out of range 1-65535"),
                    ));
                }
            }
            if let Some(p) = &e.protocol
                && p != "TCP"
                && p != "UDP"
            {
                d.push(a.origin.error(
                    &format!("{at}.expose[{j}].protocol"),
                    format!("`{p}`: expected TCP or UDP"),
                ));
            }
            let key = (
                e.service_port.unwrap_or(e.container_port),
                e.protocol.clone().unwrap_or_else(|| "TCP".into()),
            );
            if !ports.insert(key.clone()) {
                d.push(a.origin.error(
                    &format!("{at}.expose[{j}]"),
                    format!("service port {}/{} is exposed twice", key.0, key.1),
                ));
            }
        }
    }
}

fn check_upstream(u: &UpstreamPackage, o: &Origin, at: &str, d: &mut Vec<Diagnostic>) {
    if u.repo.trim().is_empty() {
        d.push(o.error(&format!("{at}.repo"), "repository must not be empty"));
    }
    if u.package.starts_with('/')
        || u.package.split('/').any(|s| {
            matches!(s, "." | "..")
                || s.trim_end_matches(['.', ' ']).eq_ignore_ascii_case(".git")
                || s.contains(['\\', '\0'])
        })
    {
        d.push(o.error(
            &format!("{at}.package"),
            format!(
                "`{}` must be a relative path inside the repository",
                u.package
            ),
        ));
    }
    if u.revision.trim().is_empty() {
        d.push(o.error(
            &format!("{at}.revision"),
            "revision must not be empty: pin a tag or commit",
        ));
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
