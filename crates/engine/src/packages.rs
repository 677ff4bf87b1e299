//! Upstream package@revision → downstream cluster package, as Porch's PackageVariant does:
//! the files are copied, a Kptfile records upstream and lock, and the cluster's values are
//! injected by functions on the data (never by text templates).

use atoll_model::UpstreamPackage;
use atoll_model::yaml::{parse_documents, to_yaml_stream};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// An upstream package as read from its repository by the Git shell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The commit the revision resolved to.
    pub commit: String,
    /// Files of the package, relative to its directory.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Values a package can have injected.
pub struct Injection<'a> {
    /// The cluster the package goes to.
    pub cluster: &'a str,
    /// The namespace its namespaced objects are put in, when the package leaves it open.
    pub namespace: Option<&'a str>,
    /// Add a Namespace object for `namespace` unless the package has one (nothing else on
    /// the cluster makes it).
    pub create_namespace: bool,
    /// Key → value for the package's setters (cluster name, labels, allocated addresses).
    pub context: BTreeMap<String, String>,
}

const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PersistentVolume",
    "PriorityClass",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
];

/// The downstream package's files, or an error message naming the upstream file.
pub fn downstream(
    up: &UpstreamPackage,
    fetched: &Fetched,
    name: &str,
    inj: &Injection,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut resources = Vec::new();
    let mut has_kustomization = false;
    let mut namespaces: Vec<String> = Vec::new();
    for (path, bytes) in &fetched.files {
        let text =
            std::str::from_utf8(bytes).map_err(|_| format!("{}/{path}: not UTF-8", up.package))?;
        let is_yaml = path.ends_with(".yaml") || path.ends_with(".yml");
        if path == "Kptfile" {
            continue;
        }
        if !is_yaml {
            out.insert(path.clone(), text.to_string());
            continue;
        }
        if path == "kustomization.yaml" || path == "kustomization.yml" {
            has_kustomization = true;
            out.insert(path.clone(), text.to_string());
            continue;
        }
        let docs = parse_documents(text).map_err(|e| {
            format!(
                "{}/{path}:{}:{}: invalid YAML: {}",
                up.package, e.line, e.col, e.message
            )
        })?;
        let mut objs: Vec<Value> = Vec::new();
        for d in docs {
            let mut v = d.value;
            if v.get("kind").is_none() || v.get("apiVersion").is_none() {
                return Err(format!(
                    "{}/{path}:{}: not a KRM object (apiVersion and kind are needed)",
                    up.package, d.line
                ));
            }
            inject(&mut v, inj);
            if v["kind"] == "Namespace"
                && let Some(n) = v["metadata"]["name"].as_str()
            {
                namespaces.push(n.to_string());
            }
            objs.push(v);
        }
        let local = objs
            .iter()
            .all(|o| o["metadata"]["annotations"]["config.kubernetes.io/local-config"] == "true");
        if !local {
            resources.push(path.clone());
        }
        out.insert(path.clone(), to_yaml_stream(objs.iter()));
    }
    out.insert(
        "Kptfile".into(),
        atoll_model::yaml::to_yaml(&kptfile(up, &fetched.commit, name)),
    );
    // A namespace nobody else makes (a PackageVariant's) comes with the package, or the
    // package's objects would be refused on the cluster.
    if let (Some(ns), true) = (inj.namespace, inj.create_namespace)
        && !namespaces.iter().any(|n| n == ns)
        && !has_kustomization
    {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": ns, "labels": {"atoll.dev/cluster": inj.cluster}}});
        out.insert("namespace.yaml".into(), atoll_model::yaml::to_yaml(&obj));
        resources.insert(0, "namespace.yaml".to_string());
    }
    if !has_kustomization {
        out.insert(
            "kustomization.yaml".into(),
            crate::kustomization(&resources),
        );
    }
    Ok(out)
}

fn inject(v: &mut Value, inj: &Injection) {
    let kind = v["kind"].as_str().unwrap_or("").to_string();
    if v.get("metadata").is_none() {
        v["metadata"] = json!({});
    }
    let meta = &mut v["metadata"];
    if meta.get("labels").is_none() {
        meta["labels"] = json!({});
    }
    meta["labels"]["atoll.dev/cluster"] = json!(inj.cluster);
    if let Some(ns) = inj.namespace
        && !CLUSTER_SCOPED.contains(&kind.as_str())
    {
        meta["namespace"] = json!(ns);
    }
    // A ConfigMap that asks for the cluster's context gets it as data.
    if kind == "ConfigMap" && meta["annotations"]["atoll.dev/inject"] == "cluster-context" {
        if v.get("data").is_none() {
            v["data"] = json!({});
        }
        for (k, val) in &inj.context {
            v["data"][k] = json!(val);
        }
    }
}

fn kptfile(up: &UpstreamPackage, commit: &str, name: &str) -> Value {
    let dir = format!("/{}", up.package.trim_matches('/'));
    json!({
        "apiVersion": "kpt.dev/v1",
        "kind": "Kptfile",
        "metadata": {"name": name, "annotations": {"config.kubernetes.io/local-config": "true"}},
        "info": {"description": format!("{} from {}@{}, rendered by atoll", name, up.package, up.revision)},
        "upstream": {"type": "git", "git": {"repo": up.repo, "directory": dir, "ref": up.revision}, "updateStrategy": "resource-merge"},
        "upstreamLock": {"type": "git", "git": {"repo": up.repo, "directory": dir, "ref": up.revision, "commit": commit}},
    })
}
