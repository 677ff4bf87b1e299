//! A cluster's effective spec: profile base chain, then catalog, then the cluster's own
//! choices, each value remembering who set it.

use atoll_model::load::{Decl, Diagnostic};
use atoll_model::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// A value and the declaration that set it (`profile small@1.0.0`, `catalog edge`,
/// `cluster override`, `default`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sourced<T> {
    /// The effective value.
    pub value: T,
    /// Which declaration set it.
    pub from: String,
}

/// Where a cluster's pod or service range comes from.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum Range {
    /// A CIDR written in the declarations.
    Fixed(String),
    /// A block allocated from the named IPPool.
    Pool(String),
}

/// An add-on with its effective settings.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AddonSpec {
    /// Which add-on.
    pub addon: Addon,
    /// The chart version.
    pub version: String,
    /// The Helm repository.
    pub repo_url: String,
    /// The chart's name in it.
    pub chart: String,
    /// Where it is installed.
    pub namespace: String,
    /// The IPPool its load-balancer addresses come from (MetalLB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_pool: Option<String>,
    /// Helm values, as declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<serde_json::Value>,
    /// Which profile or override declared it.
    pub from: String,
}

/// Everything the renderer needs to know about one cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedCluster {
    /// The cluster's name.
    pub name: String,
    /// Its labels (what placement selects on).
    pub labels: BTreeMap<String, String>,
    /// The Cluster API infrastructure provider.
    pub provider: Sourced<Provider>,
    /// The bootstrap and control-plane provider.
    pub bootstrap: Sourced<Bootstrap>,
    /// The Kubernetes version (`v1.31.2`).
    pub kubernetes_version: Sourced<String>,
    /// Control-plane machines.
    pub control_plane_count: Sourced<i32>,
    /// Worker machines.
    pub worker_count: Sourced<i32>,
    /// The control plane's machine flavor (OpenStack).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_plane_flavor: Option<Sourced<String>>,
    /// The workers' machine flavor (OpenStack).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_flavor: Option<Sourced<String>>,
    /// The machine image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Sourced<String>>,
    /// The OpenStack cloud (in clouds.yaml).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_name: Option<Sourced<String>>,
    /// The OpenStack external network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_network: Option<Sourced<String>>,
    /// The SSH key put on the machines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_key_name: Option<Sourced<String>>,
    /// The CNI plugin.
    pub cni: Sourced<Cni>,
    /// The CNI plugin's version.
    pub cni_version: Sourced<String>,
    /// Where the pod range comes from.
    pub pods: Sourced<Range>,
    /// Where the service range comes from.
    pub services: Sourced<Range>,
    /// The add-ons installed on it.
    pub addons: Vec<AddonSpec>,
    /// The GitOps agent that pulls its package.
    pub gitops_agent: Sourced<GitOpsAgent>,
}

struct Layer<'a> {
    from: String,
    infra: Option<&'a InfrastructureValues>,
    net: Option<&'a NetworkValues>,
}

fn pick<'a, T: Clone>(
    layers: &[Layer<'a>],
    get: impl Fn(&Layer<'a>) -> Option<T>,
) -> Option<Sourced<T>> {
    layers.iter().rev().find_map(|l| {
        get(l).map(|value| Sourced {
            value,
            from: l.from.clone(),
        })
    })
}

/// The base chain of a profile, most basic first. Validation has ruled out cycles and dangling
/// bases; the length bound is a second guard.
fn chain<'m>(m: &'m Model, r: &ProfileRef) -> Vec<&'m Decl<InfrastructureProfileSpec>> {
    let mut out = Vec::new();
    let mut cur = m.profile(r);
    while let Some(p) = cur {
        out.push(p);
        if out.len() > 64 {
            break;
        }
        cur = p.spec.base.as_ref().and_then(|b| m.profile(b));
    }
    out.reverse();
    out
}

fn profile_label(p: &Decl<InfrastructureProfileSpec>) -> String {
    let (n, r) = atoll_model::validate::profile_key(p);
    format!("profile {n}@{r}")
}

/// Resolves one cluster; errors name the cluster declaration's fields.
pub fn resolve(m: &Model, c: &Decl<ClusterSpec>) -> Result<ResolvedCluster, Vec<Diagnostic>> {
    let base = if c.origin.prefix.is_empty() {
        "spec."
    } else {
        ""
    };
    let catalog = c.spec.catalog.as_ref().and_then(|n| m.catalogs.get(n));
    let infra_ref = c
        .spec
        .profiles
        .as_ref()
        .and_then(|p| p.infrastructure.as_ref())
        .or(catalog.map(|c| &c.spec.infrastructure));
    let net_ref = c
        .spec
        .profiles
        .as_ref()
        .and_then(|p| p.network.as_ref())
        .or(catalog.map(|c| &c.spec.network));

    let mut layers: Vec<Layer> = Vec::new();
    if let Some(r) = infra_ref {
        for p in chain(m, r) {
            layers.push(Layer {
                from: profile_label(p),
                infra: p.spec.infrastructure.as_ref(),
                net: None,
            });
        }
    }
    if let Some(r) = net_ref {
        for p in chain(m, r) {
            layers.push(Layer {
                from: profile_label(p),
                infra: None,
                net: p.spec.network.as_ref(),
            });
        }
    }
    if let Some(cat) = catalog
        && let Some(o) = &cat.spec.overrides
    {
        layers.push(Layer {
            from: format!("catalog {}", cat.name),
            infra: o.infrastructure.as_ref(),
            net: o.network.as_ref(),
        });
    }
    if let Some(o) = &c.spec.overrides {
        layers.push(Layer {
            from: "cluster override".into(),
            infra: o.infrastructure.as_ref(),
            net: o.network.as_ref(),
        });
    }
    let shortcut = c.spec.provider.map(|p| InfrastructureValues {
        provider: Some(p),
        ..Default::default()
    });
    if let Some(s) = &shortcut {
        layers.push(Layer {
            from: "cluster spec.provider".into(),
            infra: Some(s),
            net: None,
        });
    }

    let mut errs = Vec::new();
    let provider = pick(&layers, |l| l.infra.and_then(|i| i.provider));
    let provider = match provider {
        Some(p) => p,
        None => {
            errs.push(c.origin.error(&format!("{base}provider"), "no provider: set it in the Infrastructure profile, the catalog's or cluster's overrides, or `spec.provider` (openstack, docker, in-memory, existing)"));
            dflt(Provider::Existing, "default")
        }
    };
    let existing = provider.value == Provider::Existing;
    let kubernetes_version = match pick(&layers, |l| {
        l.infra.and_then(|i| i.kubernetes_version.clone())
    }) {
        Some(v) => v,
        None if existing => dflt(String::new(), "unknown (existing cluster)"),
        None => {
            errs.push(c.origin.error(&format!("{base}overrides.infrastructure.kubernetesVersion"), "no Kubernetes version: set `kubernetesVersion` in the Infrastructure profile or an override"));
            dflt(String::new(), "default")
        }
    };
    let bootstrap = pick(&layers, |l| l.infra.and_then(|i| i.bootstrap))
        .unwrap_or_else(|| dflt(Bootstrap::Kubeadm, "default"));
    let cni = pick(&layers, |l| l.net.and_then(|n| n.cni)).unwrap_or_else(|| {
        dflt(
            if bootstrap.value == Bootstrap::K3s {
                Cni::Flannel
            } else {
                Cni::Calico
            },
            "default",
        )
    });
    if bootstrap.value == Bootstrap::K3s && cni.value != Cni::Flannel && !existing {
        errs.push(c.origin.error(
            &format!("{base}overrides.network.cni"),
            format!("k3s clusters run k3s's built-in flannel, but the CNI is {:?} (from {}): use a Network profile with `cni: flannel` or bootstrap kubeadm", cni.value, cni.from),
        ));
    }
    let cni_version =
        pick(&layers, |l| l.net.and_then(|n| n.version.clone())).unwrap_or_else(|| {
            dflt(
                match cni.value {
                    Cni::Calico => "v3.29.1",
                    Cni::Flannel => "v0.26.1",
                    Cni::Cilium => "1.16.5",
                }
                .to_string(),
                "default",
            )
        });
    let range = |cidr: &dyn Fn(&NetworkValues) -> Option<String>,
                 pool: &dyn Fn(&NetworkValues) -> Option<String>,
                 default: &str| {
        layers
            .iter()
            .rev()
            .find_map(|l| {
                let n = l.net?;
                if let Some(c) = cidr(n) {
                    return Some(Sourced {
                        value: Range::Fixed(c),
                        from: l.from.clone(),
                    });
                }
                pool(n).map(|p| Sourced {
                    value: Range::Pool(p),
                    from: l.from.clone(),
                })
            })
            .unwrap_or_else(|| Sourced {
                value: Range::Fixed(default.into()),
                from: "default".into(),
            })
    };
    let pods = range(
        &|n| n.pod_cidr.clone(),
        &|n| n.pod_pool.clone(),
        "192.168.0.0/16",
    );
    let services = range(
        &|n| n.service_cidr.clone(),
        &|n| n.service_pool.clone(),
        "10.96.0.0/12",
    );

    // Add-ons: catalog's software profiles, then the cluster's own; a later profile for the
    // same add-on replaces an earlier one.
    let mut soft: Vec<&ProfileRef> = catalog
        .map(|c| c.spec.software.iter().collect())
        .unwrap_or_default();
    if let Some(p) = &c.spec.profiles {
        soft.extend(p.software.iter());
    }
    let mut addons: BTreeMap<Addon, AddonSpec> = BTreeMap::new();
    for r in soft {
        let ch = chain(m, r);
        let get = |f: &dyn Fn(&SoftwareValues) -> Option<String>| {
            ch.iter()
                .rev()
                .find_map(|p| p.spec.software.as_ref().and_then(f))
        };
        let Some(addon) = ch
            .iter()
            .rev()
            .find_map(|p| p.spec.software.as_ref().and_then(|s| s.addon))
        else {
            continue;
        };
        let d = addon_defaults(addon);
        // Values merge down the chain, so a derived profile can change one key.
        let mut values: Option<serde_json::Value> = None;
        for p in &ch {
            if let Some(v) = p.spec.software.as_ref().and_then(|s| s.values.clone()) {
                values = Some(match values {
                    Some(mut base) => {
                        merge(&mut base, &v);
                        base
                    }
                    None => v,
                });
            }
        }
        addons.insert(
            addon,
            AddonSpec {
                addon,
                version: get(&|s| s.version.clone()).unwrap_or_else(|| d.version.into()),
                repo_url: get(&|s| s.repo_url.clone()).unwrap_or_else(|| d.repo.into()),
                chart: get(&|s| s.chart.clone()).unwrap_or_else(|| d.chart.into()),
                namespace: get(&|s| s.namespace.clone()).unwrap_or_else(|| d.namespace.into()),
                address_pool: get(&|s| s.address_pool.clone()),
                values,
                from: format!("profile {r}"),
            },
        );
    }
    let gitops_agent = match c.spec.gitops_agent {
        Some(a) => Sourced {
            value: a,
            from: "cluster spec.gitopsAgent".into(),
        },
        None => Sourced {
            value: m.fleet.gitops.agent.unwrap_or(GitOpsAgent::Flux),
            from: if m.fleet.gitops.agent.is_some() {
                "fleet".into()
            } else {
                "default".into()
            },
        },
    };
    let count = |get: &dyn Fn(&InfrastructureValues) -> Option<i32>, d: i32| {
        pick(&layers, |l| l.infra.and_then(get)).unwrap_or_else(|| Sourced {
            value: d,
            from: "default".into(),
        })
    };
    let opt = |get: &dyn Fn(&InfrastructureValues) -> Option<String>| {
        pick(&layers, |l| l.infra.and_then(get))
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(ResolvedCluster {
        name: c.name.clone(),
        labels: c.labels.clone(),
        provider,
        bootstrap,
        kubernetes_version,
        control_plane_count: count(&|i| i.control_plane_count, 1),
        worker_count: count(&|i| i.worker_count, 1),
        control_plane_flavor: opt(&|i| i.control_plane_flavor.clone()),
        worker_flavor: opt(&|i| i.worker_flavor.clone()),
        image: opt(&|i| i.image.clone()),
        cloud_name: opt(&|i| i.cloud_name.clone()),
        external_network: opt(&|i| i.external_network.clone()),
        ssh_key_name: opt(&|i| i.ssh_key_name.clone()),
        cni,
        cni_version,
        pods,
        services,
        addons: addons.into_values().collect(),
        gitops_agent,
    })
}

fn dflt<T>(value: T, from: &str) -> Sourced<T> {
    Sourced {
        value,
        from: from.to_string(),
    }
}

/// JSON merge: objects merge key by key, anything else replaces.
pub fn merge(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(bv) => merge(bv, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Where an add-on's chart comes from when a profile does not say.
pub struct AddonDefaults {
    /// The Helm repository.
    pub repo: &'static str,
    /// The chart.
    pub chart: &'static str,
    /// The chart version.
    pub version: &'static str,
    /// The namespace it is installed in.
    pub namespace: &'static str,
}

/// The defaults of add-on `a`.
pub fn addon_defaults(a: Addon) -> AddonDefaults {
    match a {
        Addon::MetalLb => AddonDefaults {
            repo: "https://metallb.github.io/metallb",
            chart: "metallb",
            version: "0.15.2",
            namespace: "metallb-system",
        },
        Addon::IngressNginx => AddonDefaults {
            repo: "https://kubernetes.github.io/ingress-nginx",
            chart: "ingress-nginx",
            version: "4.12.0",
            namespace: "ingress-nginx",
        },
        Addon::Prometheus => AddonDefaults {
            repo: "https://prometheus-community.github.io/helm-charts",
            chart: "prometheus",
            version: "27.1.0",
            namespace: "monitoring",
        },
        Addon::Liqo => AddonDefaults {
            repo: "https://helm.liqo.io/",
            chart: "liqo",
            version: "v1.0.0",
            namespace: "liqo",
        },
        Addon::Strimzi => AddonDefaults {
            repo: "https://strimzi.io/charts/",
            chart: "strimzi-kafka-operator",
            version: "0.45.0",
            namespace: "kafka",
        },
    }
}
