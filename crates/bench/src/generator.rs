//! A seeded, realistic fleet of N clusters: regions and zones, core/regional/GPU/edge tiers,
//! five catalogs over shared profiles, 20 teams, 200 applications of every source kind, 50
//! target policies and IP pools sized for the fleet. The same (N, seed) always gives the same
//! bytes, so benchmark runs compare like with like.

use atoll_model::yaml::to_yaml_stream;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// How many clusters.
    pub clusters: usize,
    /// The random seed: the same seed makes the same fleet.
    pub seed: u64,
}

/// Teams, applications and policies: fixed by the shape, not by N.
pub const TEAMS: usize = 20;
/// Applications, spread over the teams.
pub const APPS: usize = 200;
/// Target policies, spread over the teams.
pub const POLICIES: usize = 50;

const REGIONS: &[&str] = &[
    "eu-west",
    "eu-central",
    "eu-north",
    "us-east",
    "us-west",
    "ap-south",
    "ap-east",
    "sa-east",
];
const FORMATS: &[&str] = &["hyper", "super", "express", "depot"];

/// The generated fleet: declaration files (relative path → YAML) and the files of the upstream
/// package repository that its kpt applications pin.
pub struct Fleet {
    /// Declaration files: relative path → YAML.
    pub files: BTreeMap<String, String>,
    /// The upstream package repository's files: path → bytes.
    pub upstream: BTreeMap<String, Vec<u8>>,
    /// Relative path of the upstream repository, as the declarations refer to it.
    pub upstream_dir: &'static str,
}

/// splitmix64: small, seedable, good enough to spread labels.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One generated cluster (also used by the benchmark to add a site).
pub fn cluster(
    name: &str,
    tier: &str,
    region: &str,
    zone: usize,
    format: &str,
    prod: bool,
) -> Value {
    let catalog = match tier {
        "core" => "core",
        "regional" => "regional",
        "gpu" => "gpu",
        "edge-gpu" => "edge-gpu",
        _ => "edge",
    };
    let gpu = matches!(tier, "gpu" | "edge-gpu");
    let edge = tier.starts_with("edge");
    json!({
        "apiVersion": "atoll.dev/v1alpha1", "kind": "Cluster",
        "metadata": {"name": name, "labels": {
            "region": region,
            "zone": format!("{region}-{zone}"),
            "tier": if edge { "edge" } else { tier },
            "gpu": gpu.to_string(),
            "edge": edge.to_string(),
            "format": format,
            "env": if prod { "prod" } else { "staging" },
        }},
        "spec": {"catalog": catalog},
    })
}

/// The fleet for `p`, in memory; [`write`] puts it on disk.
pub fn generate(p: Params) -> Fleet {
    let mut rng = Rng(p.seed);
    let mut files = BTreeMap::new();
    let n = p.clusters;

    // Pools sized for the fleet: /22 of pods and /24 of services per cluster, one shared
    // load-balancer address each.
    files.insert(
        "fleet.yaml".to_string(),
        to_yaml_stream(
            [
                json!({"apiVersion": "atoll.dev/v1alpha1", "kind": "Fleet", "metadata": {"name": "bench"},
                   "spec": {"domain": "apps.example.net", "managementNamespace": "fleet-clusters",
                            "gitops": {"agent": "flux", "repoURL": "https://git.example.net/platform/fleet.git", "branch": "main"}}}),
                json!({"apiVersion": "atoll.dev/v1alpha1", "kind": "IPPool", "metadata": {"name": "pods"},
                   "spec": {"purpose": "pod", "cidrs": ["10.0.0.0/8"], "prefixLength": 22}}),
                json!({"apiVersion": "atoll.dev/v1alpha1", "kind": "IPPool", "metadata": {"name": "services"},
                   "spec": {"purpose": "service", "cidrs": ["100.64.0.0/10"], "prefixLength": 24}}),
                json!({"apiVersion": "atoll.dev/v1alpha1", "kind": "IPPool", "metadata": {"name": "public"},
                   "spec": {"purpose": "loadBalancer", "cidrs": ["198.18.0.0/15"]}}),
            ]
            .iter(),
        ),
    );

    let profile = |name: &str, ty: &str, body: Value| {
        let mut spec = json!({"type": ty, "profileName": name, "revision": "1.0.0"});
        for (k, v) in body.as_object().expect("object") {
            spec[k] = v.clone();
        }
        json!({"apiVersion": "atoll.dev/v1alpha1", "kind": "InfrastructureProfile",
               "metadata": {"name": format!("{name}-1.0.0")}, "spec": spec})
    };
    let profiles = vec![
        profile(
            "openstack-base",
            "Infrastructure",
            json!({"infrastructure": {"provider": "openstack", "bootstrap": "kubeadm", "kubernetesVersion": "v1.34.2",
                  "image": "ubuntu-2404-kube-v1.34", "cloudName": "openstack", "externalNetwork": "public", "sshKeyName": "fleet-admin"}}),
        ),
        profile(
            "openstack-large",
            "Infrastructure",
            json!({"base": {"name": "openstack-base", "revision": "1.0.0"},
                   "infrastructure": {"controlPlaneCount": 3, "controlPlaneFlavor": "m1.large", "workerCount": 6, "workerFlavor": "m1.xlarge"}}),
        ),
        profile(
            "openstack-gpu",
            "Infrastructure",
            json!({"base": {"name": "openstack-large", "revision": "1.0.0"},
                   "infrastructure": {"workerCount": 4, "workerFlavor": "g1.a100"}}),
        ),
        profile(
            "edge-k3s",
            "Infrastructure",
            json!({"infrastructure": {"provider": "docker", "bootstrap": "k3s", "kubernetesVersion": "v1.34.2",
                   "controlPlaneCount": 1, "workerCount": 1}}),
        ),
        profile(
            "calico",
            "Network",
            json!({"network": {"cni": "calico", "version": "v3.29.1", "podPool": "pods", "servicePool": "services"}}),
        ),
        profile(
            "flannel",
            "Network",
            json!({"network": {"cni": "flannel", "version": "v0.26.1", "podPool": "pods", "servicePool": "services"}}),
        ),
        profile(
            "metallb",
            "Software",
            json!({"software": {"addon": "metallb", "version": "0.15.2", "addressPool": "public"}}),
        ),
        profile(
            "ingress-nginx",
            "Software",
            json!({"software": {"addon": "ingress-nginx", "version": "4.12.0"}}),
        ),
        profile(
            "prometheus",
            "Software",
            json!({"software": {"addon": "prometheus", "version": "27.1.0", "values": {"server": {"retention": "15d"}}}}),
        ),
        profile(
            "liqo",
            "Software",
            json!({"software": {"addon": "liqo", "version": "v1.0.0"}}),
        ),
    ];
    files.insert("profiles.yaml".into(), to_yaml_stream(profiles.iter()));

    let r = |name: &str| json!({"name": name, "revision": "1.0.0"});
    let catalog = |name: &str, infra: &str, net: &str, sw: &[&str], overrides: Value| {
        let mut spec = json!({"description": format!("{name} clusters"), "infrastructure": r(infra), "network": r(net),
                              "software": sw.iter().map(|s| r(s)).collect::<Vec<_>>()});
        if !overrides.is_null() {
            spec["overrides"] = overrides;
        }
        json!({"apiVersion": "atoll.dev/v1alpha1", "kind": "ClusterCatalog", "metadata": {"name": name}, "spec": spec})
    };
    let catalogs = [
        catalog(
            "core",
            "openstack-large",
            "calico",
            &["metallb", "ingress-nginx", "prometheus", "liqo"],
            Value::Null,
        ),
        catalog(
            "regional",
            "openstack-base",
            "calico",
            &["metallb", "ingress-nginx", "prometheus", "liqo"],
            json!({"infrastructure": {"workerCount": 3, "workerFlavor": "m1.large"}}),
        ),
        catalog(
            "gpu",
            "openstack-gpu",
            "calico",
            &["metallb", "ingress-nginx", "prometheus"],
            Value::Null,
        ),
        catalog(
            "edge",
            "edge-k3s",
            "flannel",
            &["metallb", "ingress-nginx", "prometheus", "liqo"],
            Value::Null,
        ),
        catalog(
            "edge-gpu",
            "edge-k3s",
            "flannel",
            &["metallb", "ingress-nginx", "prometheus", "liqo"],
            json!({"infrastructure": {"workerCount": 2}}),
        ),
    ];
    files.insert("catalogs.yaml".into(), to_yaml_stream(catalogs.iter()));

    // Clusters, one file per region as a platform team would keep them.
    let mut by_region: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for i in 0..n {
        let region = REGIONS[rng.below(REGIONS.len())];
        let roll = rng.below(100);
        let tier = match roll {
            0..2 => "core",
            2..8 => "regional",
            8..12 => "gpu",
            12..20 => "edge-gpu",
            _ => "edge",
        };
        let zone = 1 + rng.below(3);
        let format = FORMATS[rng.below(FORMATS.len())];
        let prod = rng.chance(85);
        let prefix = if tier.starts_with("edge") {
            "edge"
        } else {
            tier
        };
        let name = format!("{prefix}-{region}-{i:05}");
        by_region
            .entry(region)
            .or_default()
            .push(cluster(&name, tier, region, zone, format, prod));
    }
    for (region, cs) in by_region {
        files.insert(format!("clusters/{region}.yaml"), to_yaml_stream(cs.iter()));
    }

    // Teams, their applications (10 each, of every source kind) and policies.
    let mut teams = Vec::new();
    for t in 0..TEAMS {
        let team = format!("team-{t:02}");
        teams.push(json!({"apiVersion": "atoll.dev/v1alpha1", "kind": "Team", "metadata": {"name": team},
                          "spec": {"description": format!("Team {t}"), "readers": [format!("grp-{team}-readers")],
                                   "contributors": [format!("grp-{team}-devs")]}}));
        let mut apps = Vec::new();
        for a in 0..APPS / TEAMS {
            let name = format!("app-{t:02}-{a}");
            // Placement groups: which policy picks the app up.
            let group = a % 3;
            let labels = json!({"group": group.to_string(), "team": team});
            let spec = match (t * 10 + a) % 10 {
                0..4 => {
                    json!({"helm": {"repoURL": format!("https://charts.example.net/{team}"), "chart": name,
                        "version": format!("1.{}.{}", rng.below(10), rng.below(10)),
                        "values": {"replicas": 1 + rng.below(3), "image": {"tag": format!("v{}", rng.below(50))}}}})
                }
                4..7 => {
                    json!({"git": {"repoURL": format!("https://git.example.net/{team}/{name}.git"),
                        "revision": format!("v2.{}", rng.below(20)), "path": "deploy"}})
                }
                7 if t % 2 == 0 => json!({"targetNamespace": format!("{name}-ns"),
                        "kpt": {"repo": "../../upstream", "package": "web", "revision": "v1"}}),
                _ => {
                    let public = a % 4 == 3;
                    let mut api = json!({"name": "api", "image": format!("registry.example.net/{team}/{name}:{}.{}", 1 + rng.below(3), rng.below(20)),
                        "replicas": 1 + rng.below(2),
                        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "APP", "value": name}],
                        "expose": [{"containerPort": 8080, "servicePort": 80}]});
                    if public {
                        api["expose"] = json!([{"containerPort": 8080, "servicePort": 80, "public": true, "host": format!("{name}.example.net")}]);
                    }
                    json!({"owner": format!("{team}-lead"), "components": [api,
                        {"name": "cache", "image": "docker.io/library/redis:7", "expose": [{"containerPort": 6379}]}]})
                }
            };
            apps.push(json!({"apiVersion": "atoll.dev/v1alpha1", "kind": "Application",
                             "metadata": {"name": name, "namespace": team, "labels": labels}, "spec": spec}));
        }
        files.insert(format!("apps/{team}.yaml"), to_yaml_stream(apps.iter()));
    }
    files.insert("teams.yaml".into(), to_yaml_stream(teams.iter()));

    // 50 policies: 2 or 3 per team, each a (group of apps) × (kind of cluster) rule. The
    // cluster selectors run from broad (all production) to narrow (GPU sites of one region).
    let selectors = [
        json!({"matchLabels": {"env": "prod", "format": "hyper"}}),
        json!({"matchLabels": {"edge": "true", "format": "express"}}),
        json!({"matchExpressions": [{"key": "format", "operator": "In", "values": ["hyper", "super"]}]}),
        json!({"matchLabels": {"gpu": "true"}}),
        json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["core", "regional"]}]}),
        json!({"matchExpressions": [{"key": "region", "operator": "In", "values": ["eu-west", "eu-central", "eu-north"]}]}),
        json!({"matchExpressions": [{"key": "region", "operator": "NotIn", "values": ["ap-south", "ap-east"]},
                                    {"key": "format", "operator": "NotIn", "values": ["depot"]}]}),
        json!({"matchLabels": {"env": "staging"}}),
    ];
    let mut policies = Vec::new();
    for i in 0..POLICIES {
        let t = i % TEAMS;
        let group = (i / TEAMS) % 3;
        let sel = &selectors[(i * 5 + t) % selectors.len()];
        policies.push(json!({"apiVersion": "atoll.dev/v1alpha1", "kind": "TargetPolicy",
            "metadata": {"name": format!("group-{group}-rule-{i:02}"), "namespace": format!("team-{t:02}")},
            "spec": {"appSelector": {"matchLabels": {"group": group.to_string()}}, "clusterSelector": sel}}));
    }
    files.insert("policies.yaml".into(), to_yaml_stream(policies.iter()));

    let mut upstream = BTreeMap::new();
    upstream.insert(
        "web/Kptfile".to_string(),
        b"apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: web\ninfo:\n  description: A web server\n".to_vec(),
    );
    upstream.insert(
        "web/deployment.yaml".to_string(),
        b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - name: web\n          image: docker.io/library/nginx:1.27\n".to_vec(),
    );
    upstream.insert(
        "web/service.yaml".to_string(),
        b"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n    - port: 80\n      targetPort: 80\n".to_vec(),
    );
    Fleet {
        files,
        upstream,
        upstream_dir: "upstream",
    }
}

/// Writes the declarations under `dir` and the upstream package repository (tagged `v1`) at
/// `dir/upstream`.
pub fn write(fleet: &Fleet, dir: &Path) -> Result<(), crate::Error> {
    for (rel, text) in &fleet.files {
        let p = dir.join("fleet").join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text)?;
    }
    let up = dir.join(fleet.upstream_dir);
    let repo = atoll_gitops::FleetRepo::open_or_init(&up)?;
    repo.commit(&fleet.upstream, "upstream packages v1")?;
    repo.tag("v1")?;
    Ok(())
}
