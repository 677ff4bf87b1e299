//! Seed 003's LowLevelOrchestration custom resource (charity-project.eu/v1, Figure 6.2 and
//! Figure 7.4), read as input and converted to atoll kinds.
//!
//! - each `clusters[]` entry → a Cluster `<object>-<name>` (OpenStack + the entry's bootstrap
//!   provider, as the thesis's testbed), labelled `atoll.dev/llo: <object>`;
//! - `links` (pairs of cluster names) → a LogicalCluster `<object>` with Liqo connectivity;
//! - each app owner → a Team; each app → an Application with inline components, placed on
//!   the app's cluster; `cluster-selector` pins a component to a cluster.
//!
//! Cluster references may use either the short entry name (`green`) or the full name
//! (`<object>-green`), as the thesis's own figures do both.

use crate::decl::{Decl, Declarations, Diagnostic, Origin};
use crate::types::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The apiVersion of seed 001's LowLevelOrchestration documents.
pub const LLO_API_VERSION: &str = "charity-project.eu/v1";

/// A LowLevelOrchestration document's spec (seed 001): clusters, links and applications,
/// converted into atoll's kinds.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct LowLevelOrchestrationSpec {
    /// The clusters to create.
    #[serde(default)]
    pub clusters: Vec<LloCluster>,
    /// Pairs of cluster names.
    #[serde(default)]
    pub links: Vec<Vec<String>>,
    /// The applications to deploy.
    #[serde(default)]
    pub apps: Vec<LloApp>,
}

/// A cluster of a LowLevelOrchestration document.
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LloCluster {
    /// Bootstrap provider: kubeadm or k3s.
    pub provider: String,
    /// The cluster's name.
    pub name: String,
    /// The Kubernetes version.
    pub kubernetes_version: String,
    /// Control-plane machines (default 1).
    #[serde(default = "one")]
    pub control_plane_count: i32,
    /// The control plane's machine flavor.
    pub control_plane_flavor: Option<String>,
    /// Worker machines.
    #[serde(default)]
    pub worker_machine_count: i32,
    /// The workers' machine flavor.
    pub worker_machine_flavor: Option<String>,
    /// The machine image.
    pub image: Option<String>,
}

fn one() -> i32 {
    1
}

/// An application of a LowLevelOrchestration document.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct LloApp {
    /// The application's name.
    pub name: String,
    /// The owning team.
    pub owner: String,
    /// The cluster (or logical cluster) it runs on.
    pub cluster: String,
    /// Its containers.
    #[serde(default)]
    pub components: Vec<LloComponent>,
}

/// A component (one container) of a LowLevelOrchestration application.
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LloComponent {
    /// The component's name.
    pub name: String,
    /// The member cluster it is pinned to, within a logical cluster.
    pub cluster_selector: Option<String>,
    /// The container image.
    pub image: String,
    /// Ports it exposes.
    #[serde(default)]
    pub expose: Vec<LloExpose>,
    /// Its environment.
    pub env: Option<LloEnv>,
    /// The TLS Secret its public ports use.
    pub tls: Option<LloNamed>,
    /// The image pull Secret.
    pub docker_secret: Option<LloNamed>,
}

/// A port a component exposes.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct LloExpose {
    /// Reachable from outside the cluster.
    #[serde(rename = "is-public", default)]
    pub is_public: bool,
    /// Reachable from the peered clusters of its logical cluster.
    #[serde(rename = "is-peered", default)]
    pub is_peered: bool,
    /// The port the container listens on.
    #[serde(rename = "containerPort")]
    pub container_port: i32,
    /// The port the Service offers, if not the container's.
    #[serde(rename = "clusterPort")]
    pub cluster_port: Option<i32>,
}

/// A component's environment variables.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct LloEnv {
    /// When true the values are not written: each variable is read from the Secret
    /// `<component>-env`, which must exist on the cluster.
    #[serde(rename = "is-secret", default)]
    pub is_secret: bool,
    /// The variables.
    #[serde(default)]
    pub variables: Vec<EnvVar>,
}

/// A reference by name (a Secret).
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct LloNamed {
    /// The referenced object's name.
    pub name: String,
}

/// Adds the atoll objects a LowLevelOrchestration stands for.
pub fn expand(
    name: &str,
    s: LowLevelOrchestrationSpec,
    origin: &Origin,
    decls: &mut Declarations,
    diags: &mut Vec<Diagnostic>,
) {
    let full = |short: &str| -> String {
        if s.clusters.iter().any(|c| c.name == short) {
            format!("{name}-{short}")
        } else {
            short.to_string()
        }
    };
    let label = BTreeMap::from([("atoll.dev/llo".to_string(), name.to_string())]);
    for (i, c) in s.clusters.iter().enumerate() {
        let bootstrap = match c.provider.as_str() {
            "kubeadm" => Bootstrap::Kubeadm,
            "k3s" => Bootstrap::K3s,
            other => {
                diags.push(origin.error(
                    &format!("spec.clusters[{i}].provider"),
                    format!("unknown provider `{other}`, expected kubeadm or k3s"),
                ));
                continue;
            }
        };
        let cname = format!("{name}-{}", c.name);
        if let Some(msg) = crate::names::name_problem("Cluster", &cname) {
            diags.push(origin.error(&format!("spec.clusters[{i}].name"), msg));
            continue;
        }
        decls.clusters.push(Decl {
            name: cname.clone(),
            namespace: None,
            labels: label.clone(),
            spec: ClusterSpec {
                description: Some(format!("converted from LowLevelOrchestration {name}")),
                provider: Some(Provider::OpenStack),
                overrides: Some(Overrides {
                    infrastructure: Some(InfrastructureValues {
                        provider: Some(Provider::OpenStack),
                        kubernetes_version: Some(c.kubernetes_version.clone()),
                        control_plane_count: Some(c.control_plane_count),
                        control_plane_flavor: c.control_plane_flavor.clone(),
                        worker_count: Some(c.worker_machine_count),
                        worker_flavor: c.worker_machine_flavor.clone(),
                        image: c.image.clone(),
                        bootstrap: Some(bootstrap),
                        ..Default::default()
                    }),
                    network: Some(NetworkValues {
                        cni: Some(Cni::Calico),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            },
            origin: origin.nested(&format!("spec.clusters[{i}]"), format!("Cluster/{cname}")),
        });
    }
    if !s.links.is_empty() {
        let mut links = Vec::new();
        for (i, l) in s.links.iter().enumerate() {
            if l.len() != 2 {
                diags.push(origin.error(
                    &format!("spec.links[{i}]"),
                    format!("a link is a pair of cluster names, got {} names", l.len()),
                ));
                continue;
            }
            links.push(Link {
                a: full(&l[0]),
                b: full(&l[1]),
            });
        }
        decls.logical_clusters.push(Decl {
            name: name.to_string(),
            namespace: None,
            labels: BTreeMap::new(),
            spec: LogicalClusterSpec {
                clusters: vec![],
                cluster_selector: Some(LabelSelector {
                    match_labels: label.clone(),
                    ..Default::default()
                }),
                connectivity: Some(Connectivity {
                    kind: LinkKind::Liqo,
                    links,
                }),
            },
            origin: origin.nested("spec.links", format!("LogicalCluster/{name}")),
        });
    }
    let mut owners = std::collections::BTreeSet::new();
    for (i, a) in s.apps.iter().enumerate() {
        let team = sanitize(&a.owner);
        if owners.insert(team.clone()) {
            decls.teams.push(Decl {
                name: team.clone(),
                namespace: None,
                labels: BTreeMap::new(),
                spec: TeamSpec {
                    description: Some(format!(
                        "owner `{}` in LowLevelOrchestration {name}",
                        a.owner
                    )),
                    ..Default::default()
                },
                origin: origin.nested(&format!("spec.apps[{i}].owner"), format!("Team/{team}")),
            });
        }
        let components = a
            .components
            .iter()
            .map(|c| {
                let (env, secret_env) = match &c.env {
                    Some(e) if e.is_secret => (
                        vec![],
                        e.variables
                            .iter()
                            .map(|v| SecretEnvVar {
                                name: v.name.clone(),
                                secret_name: format!("{}-env", c.name),
                                key: v.name.clone(),
                            })
                            .collect(),
                    ),
                    Some(e) => (e.variables.clone(), vec![]),
                    None => (vec![], vec![]),
                };
                Component {
                    name: c.name.clone(),
                    image: c.image.clone(),
                    cluster: c.cluster_selector.as_deref().map(full),
                    replicas: None,
                    env,
                    secret_env,
                    expose: c
                        .expose
                        .iter()
                        .map(|e| Expose {
                            container_port: e.container_port,
                            service_port: e.cluster_port,
                            public: e.is_public,
                            peered: e.is_peered,
                            ..Default::default()
                        })
                        .collect(),
                    tls_secret: c.tls.as_ref().map(|t| t.name.clone()),
                    image_pull_secret: c.docker_secret.as_ref().map(|t| t.name.clone()),
                }
            })
            .collect();
        decls.applications.push(Decl {
            name: a.name.clone(),
            namespace: Some(team),
            labels: BTreeMap::from([("atoll.dev/owner".to_string(), sanitize(&a.owner))]),
            spec: ApplicationSpec {
                owner: Some(a.owner.clone()),
                clusters: vec![full(&a.cluster)],
                components,
                ..Default::default()
            },
            origin: origin.nested(
                &format!("spec.apps[{i}]"),
                format!("Application/{}", a.name),
            ),
        });
    }
}

fn sanitize(s: &str) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out = out.trim_matches('-').to_string();
    out.truncate(63);
    if out.is_empty() { "owner".into() } else { out }
}

fn object<T: Serialize>(kind: &str, d: &Decl<T>) -> Value {
    let mut meta = serde_json::Map::new();
    meta.insert("name".into(), json!(d.name));
    if let Some(ns) = &d.namespace {
        meta.insert("namespace".into(), json!(ns));
    }
    if !d.labels.is_empty() {
        meta.insert("labels".into(), json!(d.labels));
    }
    json!({"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": d.spec})
}

macro_rules! to_objects {
    ($($kind:ident, $field:ident: $spec:ty, $scope:ident;)*) => {
        impl Declarations {
            /// Every declaration as an atoll.dev/v1alpha1 object (what `atoll convert` prints),
            /// kind by kind in the order of [`KINDS`](crate::KINDS).
            pub fn to_objects(&self) -> Vec<Value> {
                let mut out = Vec::new();
                $( out.extend(self.$field.iter().map(|d| object(stringify!($kind), d))); )*
                out
            }
        }
    };
}
crate::kinds::for_each_kind!(to_objects);
