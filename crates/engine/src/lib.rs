//! atoll's engine: from a validated [`Model`] to the files of the fleet repository.
//!
//! Pure and deterministic: no I/O, same inputs → byte-identical outputs. The Git shell gives it
//! the previous IP allocations and the upstream packages it read; the engine returns every file
//! of the repository (paths relative to its root) and the new allocations.
//!
//! Steps: resolve each cluster's effective spec (with provenance) → place applications →
//! allocate pod/service/load-balancer ranges → render per cluster (in parallel).

pub mod capi;
pub mod delivery;
pub mod ipam;
pub mod packages;
pub mod resolve;

use atoll_model::load::Diagnostic;
use atoll_model::yaml::{to_yaml, to_yaml_stream};
use atoll_model::*;
use ipam::{Allocations, PoolDef};
use packages::{Fetched, Injection};
use rayon::prelude::*;
use resolve::{Range, ResolvedCluster};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// What the engine needs besides the declarations.
pub struct Inputs<'a> {
    pub model: &'a Model,
    /// Allocations committed by the previous render.
    pub previous: &'a Allocations,
    /// Upstream packages, read by the shell at their pinned revisions.
    pub upstreams: &'a BTreeMap<UpstreamPackage, Fetched>,
}

/// The rendered repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Path → content, for every file atoll owns in the repository.
    pub files: BTreeMap<String, String>,
    pub allocations: Allocations,
    /// Cluster → `team/app` placed on it.
    pub placements: BTreeMap<String, Vec<String>>,
}

/// Where atoll keeps its own state in the repository.
pub const ALLOCATIONS_FILE: &str = "state/allocations.yaml";

/// Top-level folders atoll owns; anything else in the repository is left alone.
pub const OWNED_DIRS: &[&str] = &["clusters/", "management/", "state/"];

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

/// Applications placed on each cluster: explicit lists, target policies of the app's team,
/// and clusters its components are pinned to.
pub fn place(m: &Model) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for ((team, name), a) in &m.applications {
        for c in &a.spec.clusters {
            out.entry(c.clone())
                .or_default()
                .insert((team.clone(), name.clone()));
        }
        for comp in &a.spec.components {
            if let Some(c) = &comp.cluster {
                out.entry(c.clone())
                    .or_default()
                    .insert((team.clone(), name.clone()));
            }
        }
    }
    for ((team, _), p) in &m.policies {
        let apps: Vec<&String> = m
            .applications
            .iter()
            .filter(|((t, _), a)| t == team && p.spec.app_selector.matches(&a.labels))
            .map(|((_, n), _)| n)
            .collect();
        if apps.is_empty() {
            continue;
        }
        for (cname, c) in &m.clusters {
            if p.spec.cluster_selector.matches(&c.labels) {
                let set = out.entry(cname.clone()).or_default();
                for a in &apps {
                    set.insert((team.clone(), (*a).clone()));
                }
            }
        }
    }
    out
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

    // 1. Resolve.
    let resolved: Vec<Result<ResolvedCluster, Vec<Diagnostic>>> = m
        .clusters
        .values()
        .collect::<Vec<_>>()
        .par_iter()
        .map(|c| resolve::resolve(m, c))
        .collect();
    let mut clusters: BTreeMap<String, ResolvedCluster> = BTreeMap::new();
    for r in resolved {
        match r {
            Ok(c) => {
                clusters.insert(c.name.clone(), c);
            }
            Err(e) => diags.extend(e),
        }
    }

    // 2. Place.
    let placements = place(m);

    // 3. Allocate.
    let mut requests: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in clusters.values() {
        for r in [&c.pods.value, &c.services.value] {
            if let Range::Pool(p) = r {
                requests
                    .entry(p.clone())
                    .or_default()
                    .insert(c.name.clone());
            }
        }
        for a in &c.addons {
            if let (Addon::MetalLb, Some(p)) = (a.addon, &a.address_pool) {
                requests
                    .entry(p.clone())
                    .or_default()
                    .insert(c.name.clone());
            }
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
    for c in clusters
        .values()
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

    // 4. Render each cluster.
    let pvs_by_cluster: BTreeMap<&str, Vec<&Decl<PackageVariantSpec>>> = m
        .package_variants
        .values()
        .fold(BTreeMap::new(), |mut acc, pv| {
            acc.entry(pv.spec.downstream.cluster.as_str())
                .or_default()
                .push(pv);
            acc
        });
    let empty = BTreeSet::new();
    let per_cluster: Vec<ClusterFiles> = clusters
        .values()
        .collect::<Vec<_>>()
        .par_iter()
        .map(|c| {
            let apps = placements.get(&c.name).unwrap_or(&empty);
            let pvs = pvs_by_cluster
                .get(c.name.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            render_cluster(m, c, apps, pvs, &allocations, inputs.upstreams)
        })
        .collect();
    let mut files = BTreeMap::new();
    for r in per_cluster {
        match r {
            Ok(f) => files.extend(f),
            Err(e) => diags.extend(e),
        }
    }
    if !diags.is_empty() {
        diags.sort();
        return Err(Diagnostics(diags));
    }
    files.insert(
        ALLOCATIONS_FILE.into(),
        to_yaml(&serde_json::to_value(&allocations).expect("allocations")),
    );
    let placements: BTreeMap<String, Vec<String>> = placements
        .into_iter()
        .filter(|(c, _)| clusters.contains_key(c))
        .map(|(c, apps)| {
            (
                c,
                apps.into_iter().map(|(t, a)| format!("{t}/{a}")).collect(),
            )
        })
        .collect();
    Ok(Output {
        files,
        allocations,
        placements,
    })
}

/// One cluster's files, or the errors that stopped them.
type ClusterFiles = Result<Vec<(String, String)>, Vec<Diagnostic>>;

fn render_cluster(
    m: &Model,
    c: &ResolvedCluster,
    apps: &BTreeSet<(String, String)>,
    pvs: &[&Decl<PackageVariantSpec>],
    allocs: &Allocations,
    upstreams: &BTreeMap<UpstreamPackage, Fetched>,
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
    let agent_yaml = yaml_stream(&delivery::agent_object(agent, name, &repo_url, &branch));
    files.push((format!("management/gitops/{name}.yaml"), agent_yaml.clone()));
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
                format!("management/clusters/{name}/{file}"),
                yaml_stream(&objs),
            ));
        }
        files.push((
            format!("management/clusters/{name}/kustomization.yaml"),
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
            files.push((format!("clusters/{name}/{dir}/{f}"), content));
        }
        if with_kustomization {
            files.push((
                format!("clusters/{name}/{dir}/kustomization.yaml"),
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
    for (team, app) in apps {
        let a = &m.applications[&(team.clone(), app.clone())];
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
    for (team, app) in apps {
        let a = &m.applications[&(team.clone(), app.clone())];
        let ns = a
            .spec
            .target_namespace
            .clone()
            .unwrap_or_else(|| team.clone());
        let dir = format!("apps/{team}/{app}");
        let obj_name = format!("{team}-{app}");
        if let Some(g) = &a.spec.git {
            let objs = delivery::git_objects(
                agent,
                &obj_name,
                &g.repo_url,
                g.revision.as_deref().unwrap_or("main"),
                g.path.as_deref().unwrap_or("."),
                &ns,
            );
            put_dir(
                dir,
                vec![("source.yaml".into(), yaml_stream(&objs))],
                &mut files,
                true,
            );
        } else if let Some(h) = &a.spec.helm {
            let chart = delivery::Chart {
                name: &obj_name,
                repo_url: &h.repo_url,
                chart: &h.chart,
                version: &h.version,
                namespace: &ns,
                values: h.values.clone().unwrap_or(json!({})),
            };
            put_dir(
                dir,
                vec![(
                    "release.yaml".into(),
                    yaml_stream(&delivery::helm_objects(agent, &chart)),
                )],
                &mut files,
                true,
            );
        } else if let Some(k) = &a.spec.kpt {
            let Some(f) = upstreams.get(k) else { continue };
            let inj = Injection {
                cluster: name,
                namespace: Some(&ns),
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
        format!("clusters/{name}/kustomization.yaml"),
        kustomization(&dirs),
    ));
    let mut state = serde_json::to_value(c).expect("resolved cluster");
    state["network"] = json!({"pods": pods, "services": services, "sharedAddress": shared_ip});
    state["applications"] = json!(
        apps.iter()
            .map(|(t, a)| format!("{t}/{a}"))
            .collect::<Vec<_>>()
    );
    files.push((format!("state/clusters/{name}.yaml"), to_yaml(&state)));
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
