//! What goes into `clusters/<cluster>/`: the agent's own source objects for Helm and Git
//! sources, add-ons configured to coexist, inline components, tenancy, and the agent object in
//! `management/gitops/<cluster>.yaml`.

use crate::resolve::{AddonSpec, ResolvedCluster, merge};
use atoll_model::{Addon, Component, GitOpsAgent};
use serde_json::{Value, json};

/// A chart to install, in agent-neutral form.
pub struct Chart<'a> {
    /// The release name.
    pub name: &'a str,
    /// The Helm repository.
    pub repo_url: &'a str,
    /// The chart in it.
    pub chart: &'a str,
    /// The chart version.
    pub version: &'a str,
    /// The namespace it is installed in.
    pub namespace: &'a str,
    /// Helm values.
    pub values: Value,
}

/// The agent's own objects that install a Helm chart.
pub fn helm_objects(agent: GitOpsAgent, c: &Chart) -> Vec<Value> {
    let values_empty = c.values.as_object().is_none_or(|m| m.is_empty());
    match agent {
        GitOpsAgent::Flux => {
            let mut repo = json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
                "metadata": {"name": c.name, "namespace": "flux-system"},
                "spec": {"interval": "1h", "url": c.repo_url}});
            if c.repo_url.starts_with("oci://") {
                repo["spec"]["type"] = json!("oci");
            }
            let mut rel = json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": c.name, "namespace": "flux-system"},
            "spec": {
                "interval": "10m",
                "releaseName": c.name,
                "targetNamespace": c.namespace,
                "install": {"createNamespace": true},
                "chart": {"spec": {"chart": c.chart, "version": c.version,
                                   "sourceRef": {"kind": "HelmRepository", "name": c.name}}},
            }});
            if !values_empty {
                rel["spec"]["values"] = c.values.clone();
            }
            vec![repo, rel]
        }
        GitOpsAgent::ArgoCd => {
            let mut helm = json!({"releaseName": c.name});
            if !values_empty {
                helm["valuesObject"] = c.values.clone();
            }
            let repo = c.repo_url.strip_prefix("oci://").unwrap_or(c.repo_url);
            vec![
                json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": c.name, "namespace": "argocd"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": repo, "chart": c.chart, "targetRevision": c.version, "helm": helm},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": c.namespace},
                    "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]},
                }}),
            ]
        }
        GitOpsAgent::ConfigSync => {
            let mut helm = json!({"repo": c.repo_url, "chart": c.chart, "version": c.version,
                                  "releaseName": c.name, "namespace": c.namespace, "auth": "none"});
            if !values_empty {
                helm["values"] = c.values.clone();
            }
            vec![
                json!({"apiVersion": "configsync.gke.io/v1beta1", "kind": "RootSync",
                "metadata": {"name": c.name, "namespace": "config-management-system"},
                "spec": {"sourceType": "helm", "sourceFormat": "unstructured", "helm": helm}}),
            ]
        }
    }
}

/// The agent's own objects that apply a directory of a Git repository.
pub fn git_objects(
    agent: GitOpsAgent,
    name: &str,
    repo: &str,
    revision: &str,
    path: &str,
    namespace: &str,
) -> Vec<Value> {
    match agent {
        GitOpsAgent::Flux => vec![
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                   "metadata": {"name": name, "namespace": "flux-system"},
                   "spec": {"interval": "5m", "url": repo, "ref": git_ref(revision)}}),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": name, "namespace": "flux-system"},
                   "spec": {"interval": "10m", "path": format!("./{}", path.trim_start_matches("./")), "prune": true,
                            "targetNamespace": namespace,
                            "sourceRef": {"kind": "GitRepository", "name": name}}}),
        ],
        GitOpsAgent::ArgoCd => vec![
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {
                "project": "default",
                "source": {"repoURL": repo, "targetRevision": revision, "path": path},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
                "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]},
            }}),
        ],
        GitOpsAgent::ConfigSync => vec![
            json!({"apiVersion": "configsync.gke.io/v1beta1", "kind": "RepoSync",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"sourceType": "git", "sourceFormat": "unstructured",
                     "git": {"repo": repo, "revision": revision, "dir": path, "auth": "none"}}}),
        ],
    }
}

fn git_ref(revision: &str) -> Value {
    let is_commit = revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit());
    if is_commit {
        json!({"commit": revision})
    } else if revision.starts_with('v') && revision.contains('.') {
        json!({"tag": revision})
    } else {
        json!({"branch": revision})
    }
}

/// The object that points the cluster's agent at `clusters/<cluster>`.
pub fn agent_object(
    agent: GitOpsAgent,
    cluster: &str,
    repo: &str,
    branch: &str,
    interval: Option<&str>,
) -> Vec<Value> {
    let path = format!("clusters/{cluster}");
    match agent {
        GitOpsAgent::Flux => vec![
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                   "metadata": {"name": "atoll-fleet", "namespace": "flux-system"},
                   "spec": {"interval": interval.unwrap_or("1m"), "url": repo, "ref": {"branch": branch}}}),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "atoll-cluster", "namespace": "flux-system"},
                   "spec": {"interval": interval.unwrap_or("5m"), "path": format!("./{path}"), "prune": true,
                            "sourceRef": {"kind": "GitRepository", "name": "atoll-fleet"}}}),
        ],
        GitOpsAgent::ArgoCd => vec![
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "atoll-cluster", "namespace": "argocd"},
            "spec": {
                "project": "default",
                "source": {"repoURL": repo, "targetRevision": branch, "path": path},
                "destination": {"server": "https://kubernetes.default.svc"},
                "syncPolicy": {"automated": {"prune": true, "selfHeal": true}},
            }}),
        ],
        GitOpsAgent::ConfigSync => vec![
            json!({"apiVersion": "configsync.gke.io/v1beta1", "kind": "RootSync",
            "metadata": {"name": "root-sync", "namespace": "config-management-system"},
            "spec": {"sourceType": "git", "sourceFormat": "unstructured",
                     "git": {"repo": repo, "branch": branch, "dir": path, "auth": "none"}}}),
        ],
    }
}

/// A service on the cluster's shared load-balancer address.
#[derive(Debug, Clone)]
pub struct SharedPort {
    /// The port.
    pub port: i32,
    /// `TCP` or `UDP`.
    pub protocol: &'static str,
    /// `team/app` that exposes it.
    pub owner: String,
}

fn shared_ip_annotations(cluster: &str, ip: Option<&str>) -> Value {
    match ip {
        Some(ip) => {
            json!({"metallb.io/allow-shared-ip": cluster, "metallb.io/loadBalancerIPs": ip})
        }
        None => json!({}),
    }
}

/// Objects of one add-on and the ports it takes on the shared address.
pub fn addon_objects(
    c: &ResolvedCluster,
    a: &AddonSpec,
    shared_ip: Option<&str>,
    pods: &str,
    services: &str,
) -> (Vec<Value>, Vec<SharedPort>) {
    let agent = c.gitops_agent.value;
    let ann = shared_ip_annotations(&c.name, shared_ip);
    let mut ports = Vec::new();
    let mut extra = Vec::new();
    let mut values = match a.addon {
        Addon::MetalLb => {
            if let Some(ip) = shared_ip {
                extra.push(
                    json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                    "metadata": {"name": "atoll-shared", "namespace": a.namespace},
                    "spec": {"addresses": [ip], "autoAssign": false}}),
                );
                extra.push(
                    json!({"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
                    "metadata": {"name": "atoll-shared", "namespace": a.namespace},
                    "spec": {"ipAddressPools": ["atoll-shared"]}}),
                );
            }
            json!({})
        }
        Addon::IngressNginx => {
            ports.push(SharedPort {
                port: 80,
                protocol: "TCP",
                owner: "add-on ingress-nginx (http)".into(),
            });
            ports.push(SharedPort {
                port: 443,
                protocol: "TCP",
                owner: "add-on ingress-nginx (https)".into(),
            });
            json!({"controller": {"ingressClassResource": {"name": "nginx", "default": true},
                                  "service": {"type": "LoadBalancer", "annotations": ann}}})
        }
        Addon::Prometheus => {
            ports.push(SharedPort {
                port: 9090,
                protocol: "TCP",
                owner: "add-on prometheus (server)".into(),
            });
            json!({"server": {"service": {"type": "LoadBalancer", "servicePort": 9090, "annotations": ann}},
                   "alertmanager": {"enabled": false}})
        }
        Addon::Liqo => {
            ports.push(SharedPort {
                port: 51840,
                protocol: "UDP",
                owner: "add-on liqo (gateway)".into(),
            });
            json!({"discovery": {"config": {"clusterID": c.name}},
                   "ipam": {"podCIDR": pods, "serviceCIDR": services},
                   "networking": {"gatewayTemplates": {"server": {"service": {"type": "LoadBalancer", "annotations": ann}}}}})
        }
        Addon::Strimzi => json!({"watchAnyNamespace": true}),
    };
    // The profile's values go under atoll's, except where atoll must decide (ports, address).
    if let Some(user) = &a.values {
        let mut merged = user.clone();
        merge(&mut merged, &values);
        values = merged;
    }
    let mut objs = helm_objects(
        agent,
        &Chart {
            name: a.addon.as_str(),
            repo_url: &a.repo_url,
            chart: &a.chart,
            version: &a.version,
            namespace: &a.namespace,
            values,
        },
    );
    objs.extend(extra);
    (objs, ports)
}

/// The objects of one inline component and the shared ports it takes.
pub fn component_objects(
    cluster: &str,
    team: &str,
    app: &str,
    ns: &str,
    c: &Component,
    shared_ip: Option<&str>,
    domain: &str,
) -> (Vec<Value>, Vec<SharedPort>) {
    let name = format!("{app}-{}", c.name);
    let labels = json!({"app.kubernetes.io/name": c.name, "app.kubernetes.io/part-of": app, "app.kubernetes.io/managed-by": "atoll", "atoll.dev/team": team});
    let selector = json!({"app.kubernetes.io/name": c.name, "app.kubernetes.io/part-of": app});
    let mut env: Vec<Value> = c
        .env
        .iter()
        .map(|e| json!({"name": e.name, "value": e.value}))
        .collect();
    env.extend(c.secret_env.iter().map(|e| {
        json!({"name": e.name, "valueFrom": {"secretKeyRef": {"name": e.secret_name, "key": e.key}}})
    }));
    let mut container = json!({"name": c.name, "image": c.image});
    if !env.is_empty() {
        container["env"] = json!(env);
    }
    if !c.expose.is_empty() {
        container["ports"] = json!(c.expose.iter().map(|e| json!({"containerPort": e.container_port, "protocol": e.protocol.as_deref().unwrap_or("TCP")})).collect::<Vec<_>>());
    }
    let mut pod_spec = json!({"containers": [container]});
    if let Some(s) = &c.image_pull_secret {
        pod_spec["imagePullSecrets"] = json!([{"name": s}]);
    }
    let mut objs = vec![json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"replicas": c.replicas.unwrap_or(1), "selector": {"matchLabels": selector},
                 "template": {"metadata": {"labels": labels}, "spec": pod_spec}}})];
    let mut ports = Vec::new();
    if !c.expose.is_empty() {
        let svc_ports: Vec<Value> = c
            .expose
            .iter()
            .map(|e| {
                let p = e.service_port.unwrap_or(e.container_port);
                json!({"name": format!("{}-{p}", e.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase()), "port": p, "targetPort": e.container_port, "protocol": e.protocol.as_deref().unwrap_or("TCP")})
            })
            .collect();
        let mut svc_labels = labels.clone();
        if c.expose.iter().any(|e| e.peered) {
            // Reflected to linked clusters.
            svc_labels["atoll.dev/peered"] = json!("true");
        }
        objs.push(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": svc_labels},
            "spec": {"selector": selector, "ports": svc_ports}}));
        let raw: Vec<_> = c
            .expose
            .iter()
            .filter(|e| e.public && e.http == Some(false))
            .collect();
        if !raw.is_empty() {
            let lb_ports: Vec<Value> = raw
                .iter()
                .map(|e| {
                    let p = e.service_port.unwrap_or(e.container_port);
                    let proto = e.protocol.as_deref().unwrap_or("TCP");
                    ports.push(SharedPort {
                        port: p,
                        protocol: if proto == "UDP" { "UDP" } else { "TCP" },
                        owner: format!("application {team}/{app} component {}", c.name),
                    });
                    json!({"name": format!("{}-{p}", proto.to_ascii_lowercase()), "port": p, "targetPort": e.container_port, "protocol": proto})
                })
                .collect();
            objs.push(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("{name}-public"), "namespace": ns, "labels": labels,
                             "annotations": shared_ip_annotations(cluster, shared_ip)},
                "spec": {"type": "LoadBalancer", "selector": selector, "ports": lb_ports}}));
        }
        let http: Vec<_> = c
            .expose
            .iter()
            .filter(|e| e.public && e.http != Some(false))
            .collect();
        if !http.is_empty() {
            let rules: Vec<Value> = http
                .iter()
                .map(|e| {
                    let host = e.host.clone().unwrap_or_else(|| format!("{}.{app}.{cluster}.{domain}", c.name));
                    json!({"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                        "backend": {"service": {"name": name, "port": {"number": e.service_port.unwrap_or(e.container_port)}}}}]}})
                })
                .collect();
            let mut spec = json!({"ingressClassName": "nginx", "rules": rules});
            if let Some(tls) = &c.tls_secret {
                let hosts: Vec<Value> = rules.iter().map(|r| r["host"].clone()).collect();
                spec["tls"] = json!([{"hosts": hosts, "secretName": tls}]);
            }
            objs.push(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": spec}),
            );
        }
    }
    (objs, ports)
}

/// Namespaces and roles of one team on one cluster.
pub fn tenancy_objects(
    team: &str,
    readers: &[String],
    contributors: &[String],
    namespaces: &[String],
) -> Vec<Value> {
    let mut out = Vec::new();
    let resources = json!([
        "pods",
        "pods/log",
        "services",
        "configmaps",
        "secrets",
        "persistentvolumeclaims",
        "deployments",
        "statefulsets",
        "daemonsets",
        "replicasets",
        "jobs",
        "cronjobs",
        "ingresses",
        "events"
    ]);
    let groups = json!(["", "apps", "batch", "networking.k8s.io"]);
    for ns in namespaces {
        out.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"atoll.dev/team": team, "app.kubernetes.io/managed-by": "atoll"}}}));
        for (role, verbs, subjects) in [
            ("atoll-reader", json!(["get", "list", "watch"]), readers),
            (
                "atoll-contributor",
                json!([
                    "get", "list", "watch", "create", "update", "patch", "delete"
                ]),
                contributors,
            ),
        ] {
            out.push(
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": role, "namespace": ns, "labels": {"atoll.dev/team": team}},
                "rules": [{"apiGroups": groups, "resources": resources, "verbs": verbs}]}),
            );
            if !subjects.is_empty() {
                out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": role, "namespace": ns, "labels": {"atoll.dev/team": team}},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                    "subjects": subjects.iter().map(|g| json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": g})).collect::<Vec<_>>()}));
            }
        }
    }
    out
}
