//! Rendering one cluster: its Cluster API objects, its delivery (the GitOps agent's objects,
//! each application's package) and its kustomizations, with file contents interned across the
//! fleet.

use super::*;

/// What clusters of one render share: one copy of each distinct file content, and the
/// rendered source object of each Git or Helm application per agent (it does not depend on the
/// cluster it lands on).
#[derive(Default)]
pub(crate) struct Interner {
    contents: Mutex<HashSet<Arc<str>>>,
    sources: Mutex<HashMap<(GitOpsAgent, String, String), Arc<str>>>,
}

impl Interner {
    pub(crate) fn intern_all(&self, files: Vec<(String, String)>) -> Vec<(String, Arc<str>)> {
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
    pub(crate) fn source(
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

pub(crate) fn cidr_or_alloc(r: &Range, allocs: &Allocations, cluster: &str) -> String {
    match r {
        Range::Fixed(c) => c.clone(),
        Range::Pool(p) => allocs.get(p, cluster).unwrap_or("").to_string(),
    }
}

pub(crate) type InternedFiles = Result<Vec<(String, Arc<str>)>, Vec<Diagnostic>>;

/// One cluster's files, or the errors that stopped them.
pub(crate) type ClusterFiles = Result<Vec<(String, String)>, Vec<Diagnostic>>;

pub(crate) fn render_cluster(
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

pub(crate) fn context(
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
