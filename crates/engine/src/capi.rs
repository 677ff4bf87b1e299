//! Cluster API objects for the management cluster (v1beta2 core; OpenStack v1beta1; k3s v1beta2).
//!
//! The CNI is installed by a ClusterResourceSet: it is declarative and visible in Git (unlike
//! seed 003's postKubeadmCommands, which ran a download script on the node), and it is applied
//! by the management cluster as soon as the API server answers — before any GitOps agent could
//! run, since the agent's own pods need pod networking.

use crate::resolve::ResolvedCluster;
use atoll_model::{Bootstrap, Cni, GitOpsAgent, Provider};
use serde_json::{Value, json};

const CAPI: &str = "cluster.x-k8s.io/v1beta2";
const INFRA_GROUP: &str = "infrastructure.cluster.x-k8s.io";

/// A cluster's address ranges, as its Cluster object declares them.
pub struct Net<'a> {
    /// The pod CIDR.
    pub pods: &'a str,
    /// The service CIDR.
    pub services: &'a str,
}

/// Every management object carries an annotation: Cluster API's Docker provider (in-memory
/// backend) writes into `metadata.annotations` assuming the map exists, and panics on a
/// DevCluster applied server-side without one (kubectl's client-side apply only hid that by
/// adding its own).
fn meta(name: &str, ns: &str, cluster: &str) -> Value {
    json!({"name": name, "namespace": ns,
           "labels": {"cluster.x-k8s.io/cluster-name": cluster, "atoll.dev/cluster": cluster},
           "annotations": {"atoll.dev/rendered-by": "atoll"}})
}

/// (file name, objects) pairs for `management/clusters/<cluster>/`.
pub fn render(
    c: &ResolvedCluster,
    ns: &str,
    net: &Net,
    agent_object: &str,
) -> Vec<(&'static str, Vec<Value>)> {
    let name = c.name.as_str();
    let (infra_kind, infra_api, tmpl_kind) = match c.provider.value {
        Provider::OpenStack => (
            "OpenStackCluster",
            "infrastructure.cluster.x-k8s.io/v1beta1",
            "OpenStackMachineTemplate",
        ),
        _ => (
            "DevCluster",
            "infrastructure.cluster.x-k8s.io/v1beta2",
            "DevMachineTemplate",
        ),
    };
    let (cp_kind, cp_api, boot_kind, boot_api) = match c.bootstrap.value {
        Bootstrap::Kubeadm => (
            "KubeadmControlPlane",
            "controlplane.cluster.x-k8s.io/v1beta2",
            "KubeadmConfigTemplate",
            "bootstrap.cluster.x-k8s.io/v1beta2",
        ),
        Bootstrap::K3s => (
            "KThreesControlPlane",
            "controlplane.cluster.x-k8s.io/v1beta2",
            "KThreesConfigTemplate",
            "bootstrap.cluster.x-k8s.io/v1beta2",
        ),
    };
    let mut cluster_meta = meta(name, ns, name);
    for (k, v) in &c.labels {
        cluster_meta["labels"][k] = json!(v);
    }
    cluster_meta["labels"]["atoll.dev/cni"] = json!(cni_name(c.cni.value));
    let cluster = json!({
        "apiVersion": CAPI, "kind": "Cluster", "metadata": cluster_meta,
        "spec": {
            "clusterNetwork": {"pods": {"cidrBlocks": [net.pods]}, "services": {"cidrBlocks": [net.services]}},
            "controlPlaneRef": {"apiGroup": "controlplane.cluster.x-k8s.io", "kind": cp_kind, "name": format!("{name}-control-plane")},
            "infrastructureRef": {"apiGroup": INFRA_GROUP, "kind": infra_kind, "name": name},
        }
    });

    // Infrastructure.
    let mut infra = Vec::new();
    let machine_tmpl = |role: &str, flavor: Option<&str>| -> Value {
        let spec = match c.provider.value {
            Provider::OpenStack => {
                let mut s = json!({
                    "flavor": flavor.unwrap_or("m1.medium"),
                    "image": {"filter": {"name": c.image.as_ref().map(|i| i.value.as_str()).unwrap_or("ubuntu-2404-kube")}},
                });
                if let Some(k) = &c.ssh_key_name {
                    s["sshKeyName"] = json!(k.value);
                }
                s
            }
            Provider::InMemory => json!({"backend": {"inMemory": {}}}),
            _ => {
                let mut d = json!({});
                if let Some(i) = &c.image {
                    d["customImage"] = json!(i.value);
                }
                json!({"backend": {"docker": d}})
            }
        };
        json!({"apiVersion": infra_api, "kind": tmpl_kind, "metadata": meta(&format!("{name}-{role}"), ns, name),
               "spec": {"template": {"spec": spec}}})
    };
    let cluster_infra = match c.provider.value {
        Provider::OpenStack => {
            let cloud = c
                .cloud_name
                .as_ref()
                .map(|v| v.value.as_str())
                .unwrap_or("openstack");
            let mut spec = json!({
                "identityRef": {"type": "Secret", "name": format!("{cloud}-cloud-config"), "cloudName": cloud},
                "managedSecurityGroups": {"allowAllInClusterTraffic": true},
                "apiServerLoadBalancer": {"enabled": false},
            });
            if let Some(n) = &c.external_network {
                spec["externalNetwork"] = json!({"filter": {"name": n.value}});
            }
            json!({"apiVersion": infra_api, "kind": infra_kind, "metadata": meta(name, ns, name), "spec": spec})
        }
        Provider::InMemory => {
            json!({"apiVersion": infra_api, "kind": infra_kind, "metadata": meta(name, ns, name),
                                      "spec": {"backend": {"inMemory": {}}}})
        }
        _ => json!({"apiVersion": infra_api, "kind": infra_kind, "metadata": meta(name, ns, name),
                    "spec": {"backend": {"docker": {}}}}),
    };
    infra.push(cluster_infra);
    infra.push(machine_tmpl(
        "control-plane",
        c.control_plane_flavor.as_ref().map(|f| f.value.as_str()),
    ));
    infra.push(machine_tmpl(
        "worker",
        c.worker_flavor.as_ref().map(|f| f.value.as_str()),
    ));

    // Control plane.
    let version = &c.kubernetes_version.value;
    let cp = match c.bootstrap.value {
        Bootstrap::Kubeadm => {
            let kubelet = kubelet_args(c.provider.value);
            json!({"apiVersion": cp_api, "kind": cp_kind, "metadata": meta(&format!("{name}-control-plane"), ns, name),
            "spec": {
                "replicas": c.control_plane_count.value,
                "version": version,
                "machineTemplate": {"spec": {"infrastructureRef": {"apiGroup": INFRA_GROUP, "kind": tmpl_kind, "name": format!("{name}-control-plane")}}},
                "kubeadmConfigSpec": {
                    "initConfiguration": {"nodeRegistration": kubelet.clone()},
                    "joinConfiguration": {"nodeRegistration": kubelet},
                }
            }})
        }
        Bootstrap::K3s => {
            json!({"apiVersion": cp_api, "kind": cp_kind, "metadata": meta(&format!("{name}-control-plane"), ns, name),
            "spec": {
                "replicas": c.control_plane_count.value,
                "version": k3s_version(version),
                "machineTemplate": {"infrastructureRef": {"apiVersion": infra_api, "kind": tmpl_kind, "name": format!("{name}-control-plane")}},
                "kthreesConfigSpec": {"serverConfig": {
                    "clusterCidr": net.pods, "serviceCidr": net.services,
                    "disableComponents": ["servicelb", "traefik"],
                }},
            }})
        }
    };

    // Workers.
    let boot_spec = match c.bootstrap.value {
        Bootstrap::Kubeadm => {
            json!({"joinConfiguration": {"nodeRegistration": kubelet_args(c.provider.value)}})
        }
        Bootstrap::K3s => {
            json!({"agentConfig": {"nodeLabels": [format!("atoll.dev/cluster={name}")]}})
        }
    };
    let md_name = format!("{name}-workers");
    let boot = json!({"apiVersion": boot_api, "kind": boot_kind, "metadata": meta(&md_name, ns, name),
                      "spec": {"template": {"spec": boot_spec}}});
    let md_version = match c.bootstrap.value {
        Bootstrap::K3s => k3s_version(version),
        Bootstrap::Kubeadm => version.clone(),
    };
    let md = json!({"apiVersion": CAPI, "kind": "MachineDeployment", "metadata": meta(&md_name, ns, name),
    "spec": {
        "clusterName": name,
        "replicas": c.worker_count.value,
        "selector": {"matchLabels": {"cluster.x-k8s.io/cluster-name": name, "atoll.dev/pool": "workers"}},
        "template": {
            "metadata": {"labels": {"cluster.x-k8s.io/cluster-name": name, "atoll.dev/pool": "workers"}},
            "spec": {
                "clusterName": name,
                "version": md_version,
                "bootstrap": {"configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io", "kind": boot_kind, "name": md_name}},
                "infrastructureRef": {"apiGroup": INFRA_GROUP, "kind": tmpl_kind, "name": format!("{name}-worker")},
            }
        }
    }});

    let mut files = vec![
        ("cluster.yaml", vec![cluster]),
        ("infrastructure.yaml", infra),
        ("control-plane.yaml", vec![cp]),
        ("workers.yaml", vec![boot, md]),
    ];
    // k3s brings flannel; kubeadm clusters get their CNI from a ClusterResourceSet.
    if c.bootstrap.value == Bootstrap::Kubeadm {
        files.push(("cni.yaml", cni_resource_set(c, ns, net)));
    }
    files.push((
        "gitops-bootstrap.yaml",
        agent_resource_set(c, ns, agent_object),
    ));
    files
}

/// Kubelet flags per provider: OpenStack nodes use the external cloud provider; Docker and
/// in-memory nodes switch off disk-pressure eviction, as Cluster API's own Docker templates do.
fn kubelet_args(p: Provider) -> Value {
    match p {
        Provider::OpenStack => {
            json!({"kubeletExtraArgs": [{"name": "cloud-provider", "value": "external"}]})
        }
        _ => {
            json!({"kubeletExtraArgs": [{"name": "eviction-hard", "value": "nodefs.available<0%,nodefs.inodesFree<0%,imagefs.available<0%"}]})
        }
    }
}

fn k3s_version(v: &str) -> String {
    if v.contains('+') {
        v.to_string()
    } else {
        format!("{v}+k3s1")
    }
}

/// The CNI's name as its chart and the cluster labels spell it.
pub fn cni_name(c: Cni) -> &'static str {
    match c {
        Cni::Calico => "calico",
        Cni::Flannel => "flannel",
        Cni::Cilium => "cilium",
    }
}

fn crs(name: &str, ns: &str, cluster: &str, resources: Vec<Value>) -> Value {
    json!({"apiVersion": "addons.cluster.x-k8s.io/v1beta2", "kind": "ClusterResourceSet",
           "metadata": meta(name, ns, cluster),
           "spec": {"strategy": "Reconcile",
                    "clusterSelector": {"matchLabels": {"atoll.dev/cluster": cluster}},
                    "resources": resources}})
}

/// Flannel is rendered whole with the cluster's pod CIDR. Calico and Cilium are large
/// upstream manifests: the platform team loads each once into the management cluster as the
/// ConfigMap `atoll-cni-<cni>-<version>`, and every cluster's set references it. Calico picks
/// the pod CIDR up from kubeadm's configuration; Cilium is told it by atoll's own ConfigMap.
fn cni_resource_set(c: &ResolvedCluster, ns: &str, net: &Net) -> Vec<Value> {
    let name = &c.name;
    let version = &c.cni_version.value;
    let mut out = Vec::new();
    let mut resources = Vec::new();
    match c.cni.value {
        Cni::Flannel => {
            let manifest = crate::yaml_stream(&flannel(net.pods, version));
            out.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(&format!("{name}-cni"), ns, name),
                            "data": {"flannel.yaml": manifest}}));
            resources.push(json!({"kind": "ConfigMap", "name": format!("{name}-cni")}));
        }
        Cni::Calico => {
            resources.push(json!({"kind": "ConfigMap", "name": format!("atoll-cni-calico-{}", version.replace('.', "-"))}));
        }
        Cni::Cilium => {
            let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "atoll-cilium-ipam", "namespace": "kube-system"},
                "data": {"cluster-name": name, "ipam": "cluster-pool", "cluster-pool-ipv4-cidr": net.pods}});
            out.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(&format!("{name}-cni"), ns, name),
                            "data": {"cilium-ipam.yaml": crate::yaml_stream(&[cfg])}}));
            resources.push(json!({"kind": "ConfigMap", "name": format!("atoll-cni-cilium-{}", version.replace('.', "-"))}));
            resources.push(json!({"kind": "ConfigMap", "name": format!("{name}-cni")}));
        }
    }
    out.insert(0, crs(&format!("{name}-cni"), ns, name, resources));
    out
}

/// The agent's install manifest (loaded once by the platform team as `atoll-agent-<agent>`) and
/// this cluster's agent object, applied into the new cluster by Cluster API.
fn agent_resource_set(c: &ResolvedCluster, ns: &str, agent_object: &str) -> Vec<Value> {
    let name = &c.name;
    let agent = match c.gitops_agent.value {
        GitOpsAgent::ArgoCd => "argocd",
        GitOpsAgent::Flux => "flux",
        GitOpsAgent::ConfigSync => "configsync",
    };
    vec![
        crs(
            &format!("{name}-gitops"),
            ns,
            name,
            vec![
                json!({"kind": "ConfigMap", "name": format!("atoll-agent-{agent}")}),
                json!({"kind": "ConfigMap", "name": format!("{name}-gitops")}),
            ],
        ),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(&format!("{name}-gitops"), ns, name),
               "data": {"agent.yaml": agent_object}}),
    ]
}

/// kube-flannel, as upstream's kube-flannel.yml, with the cluster's pod network.
fn flannel(pod_cidr: &str, version: &str) -> Vec<Value> {
    let ns = "kube-flannel";
    let net_conf = format!(
        "{{\n  \"Network\": \"{pod_cidr}\",\n  \"EnableNFTables\": false,\n  \"Backend\": {{\n    \"Type\": \"vxlan\"\n  }}\n}}\n"
    );
    let cni_conf = "{\n  \"name\": \"cbr0\",\n  \"cniVersion\": \"0.3.1\",\n  \"plugins\": [\n    {\n      \"type\": \"flannel\",\n      \"delegate\": {\n        \"hairpinMode\": true,\n        \"isDefaultGateway\": true\n      }\n    },\n    {\n      \"type\": \"portmap\",\n      \"capabilities\": {\n        \"portMappings\": true\n      }\n    }\n  ]\n}\n";
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"k8s-app": "flannel", "pod-security.kubernetes.io/enforce": "privileged"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "flannel", "namespace": ns, "labels": {"k8s-app": "flannel"}}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "flannel", "labels": {"k8s-app": "flannel"}},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "flannel", "labels": {"k8s-app": "flannel"}},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flannel"},
               "subjects": [{"kind": "ServiceAccount", "name": "flannel", "namespace": ns}]}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-flannel-cfg", "namespace": ns, "labels": {"app": "flannel", "k8s-app": "flannel", "tier": "node"}},
               "data": {"cni-conf.json": cni_conf, "net-conf.json": net_conf}}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "kube-flannel-ds", "namespace": ns, "labels": {"app": "flannel", "k8s-app": "flannel", "tier": "node"}},
        "spec": {
            "selector": {"matchLabels": {"app": "flannel"}},
            "template": {
                "metadata": {"labels": {"app": "flannel", "tier": "node"}},
                "spec": {
                    "hostNetwork": true,
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "flannel",
                    "tolerations": [{"effect": "NoSchedule", "operator": "Exists"}],
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}},
                    "initContainers": [
                        {"name": "install-cni-plugin", "image": "ghcr.io/flannel-io/flannel-cni-plugin:v1.6.0-flannel1",
                         "command": ["cp"], "args": ["-f", "/flannel", "/opt/cni/bin/flannel"],
                         "volumeMounts": [{"name": "cni-plugin", "mountPath": "/opt/cni/bin"}]},
                        {"name": "install-cni", "image": format!("ghcr.io/flannel-io/flannel:{version}"),
                         "command": ["cp"], "args": ["-f", "/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"],
                         "volumeMounts": [{"name": "cni", "mountPath": "/etc/cni/net.d"}, {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"}]},
                    ],
                    "containers": [{
                        "name": "kube-flannel", "image": format!("ghcr.io/flannel-io/flannel:{version}"),
                        "command": ["/opt/bin/flanneld"], "args": ["--ip-masq", "--kube-subnet-mgr"],
                        "resources": {"requests": {"cpu": "100m", "memory": "50Mi"}},
                        "securityContext": {"privileged": false, "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                        "env": [
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                            {"name": "EVENT_QUEUE_DEPTH", "value": "5000"},
                        ],
                        "volumeMounts": [
                            {"name": "run", "mountPath": "/run/flannel"},
                            {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"},
                            {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
                        ],
                    }],
                    "volumes": [
                        {"name": "run", "hostPath": {"path": "/run/flannel"}},
                        {"name": "cni-plugin", "hostPath": {"path": "/opt/cni/bin"}},
                        {"name": "cni", "hostPath": {"path": "/etc/cni/net.d"}},
                        {"name": "flannel-cfg", "configMap": {"name": "kube-flannel-cfg"}},
                        {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
                    ],
                }
            }
        }}),
    ]
}
