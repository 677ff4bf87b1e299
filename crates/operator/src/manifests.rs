//! What it takes to install the operator in a management cluster: the CRDs, a Namespace, a
//! ServiceAccount, least-privilege RBAC (a ClusterRole for what it watches and applies, a
//! namespaced Role for its Lease), a volume for the fleet repository and the Deployment.

use serde_json::{Value, json};

/// Install options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Namespace the operator runs in (and holds its Lease).
    pub namespace: String,
    /// Container image with the `atoll` binary.
    pub image: String,
    /// Replicas; more than one wait on the Lease, only the leader acts.
    pub replicas: u32,
    /// The Fleet's management namespace: where the clusters' kubeconfig Secrets are, the
    /// only Secrets the operator may read.
    pub management_namespace: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            namespace: "atoll-system".into(),
            image: format!("ghcr.io/atoll-dev/atoll:{}", env!("CARGO_PKG_VERSION")),
            replicas: 1,
            management_namespace: "atoll-system".into(),
        }
    }
}

/// The name of the operator's Deployment, ServiceAccount, roles and Lease.
pub const NAME: &str = "atoll-operator";

/// Cluster API resources atoll renders, by API group (see the engine's `capi` module).
const CAPI_RESOURCES: &[(&str, &[&str])] = &[
    ("cluster.x-k8s.io", &["clusters", "machinedeployments"]),
    (
        "controlplane.cluster.x-k8s.io",
        &["kubeadmcontrolplanes", "kthreescontrolplanes"],
    ),
    (
        "bootstrap.cluster.x-k8s.io",
        &["kubeadmconfigtemplates", "kthreesconfigtemplates"],
    ),
    (
        "infrastructure.cluster.x-k8s.io",
        &[
            "openstackclusters",
            "openstackmachinetemplates",
            "devclusters",
            "devmachinetemplates",
        ],
    ),
    ("addons.cluster.x-k8s.io", &["clusterresourcesets"]),
];

/// The ClusterRole: read and report on atoll's kinds, own the Cluster API objects it renders
/// (server-side apply is `patch`), nothing else.
pub fn cluster_role() -> Value {
    let atoll: Vec<String> = crate::observe::atoll_kinds()
        .iter()
        .map(|k| k.resource.plural.clone())
        .collect();
    let status: Vec<String> = atoll.iter().map(|p| format!("{p}/status")).collect();
    let mut rules = vec![
        json!({"apiGroups": [atoll_model::GROUP], "resources": atoll, "verbs": ["get", "list", "watch", "patch"]}),
        json!({"apiGroups": [atoll_model::GROUP], "resources": status, "verbs": ["get", "patch"]}),
        // Owner references with blockOwnerDeletion need update on the owner's finalizers.
        json!({"apiGroups": [atoll_model::GROUP], "resources": ["clusters/finalizers", "logicalclusters/finalizers", "workloaddeployments/finalizers"], "verbs": ["update"]}),
    ];
    for (group, resources) in CAPI_RESOURCES {
        rules.push(json!({"apiGroups": [group], "resources": resources, "verbs": ["get", "list", "watch", "create", "patch", "delete"]}));
    }
    rules.push(json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create", "patch", "delete"]}));
    rules.push(json!({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create", "patch"]}));
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": NAME, "labels": {"app.kubernetes.io/name": NAME}},
        "rules": rules,
    })
}

/// Leader election only needs Leases in the operator's own namespace.
pub fn lease_role(namespace: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": format!("{NAME}-leader-election"), "namespace": namespace},
        "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}],
    })
}

/// Every object, in install order.
pub fn manifests(o: &Options) -> Vec<Value> {
    let ns = o.namespace.as_str();
    let labels = json!({"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "atoll"});
    let mut out: Vec<Value> = atoll_model::crds()
        .iter()
        .map(|c| serde_json::to_value(c).expect("crd"))
        .collect();
    out.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}));
    out.push(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": NAME, "namespace": ns, "labels": labels}}));
    out.push(cluster_role());
    out.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": NAME, "labels": labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}],
    }));
    out.push(lease_role(ns));
    out.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": format!("{NAME}-leader-election"), "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": format!("{NAME}-leader-election")},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}],
    }));
    // Reading the clusters' kubeconfig Secrets (status from each cluster's agent): `get`, and
    // `list` (metadata only: a sweep lists once and reads only Secrets that changed), in the
    // management namespace only.
    let mgmt = o.management_namespace.as_str();
    if mgmt != ns {
        out.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": mgmt, "labels": labels}}));
    }
    out.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": format!("{NAME}-kubeconfigs"), "namespace": mgmt},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
    }));
    out.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": format!("{NAME}-kubeconfigs"), "namespace": mgmt},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": format!("{NAME}-kubeconfigs")},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}],
    }));
    out.push(json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "atoll-fleet-repo", "namespace": ns, "labels": labels},
        "spec": {
            "accessModes": [if o.replicas > 1 { "ReadWriteMany" } else { "ReadWriteOnce" }],
            "resources": {"requests": {"storage": "10Gi"}},
        },
    }));
    out.push(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": o.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": NAME,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "operator",
                        "image": o.image,
                        "args": ["operator", "run", "--repo", "/var/lib/atoll/fleet", "--bare", "--lease-namespace", ns],
                        "env": [{"name": "ATOLL_IDENTITY", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}},
                        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "fleet-repo", "mountPath": "/var/lib/atoll"}],
                    }],
                    "volumes": [{"name": "fleet-repo", "persistentVolumeClaim": {"claimName": "atoll-fleet-repo"}}],
                },
            },
        },
    }));
    out
}
