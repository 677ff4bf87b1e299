//! Act on the management cluster: server-side apply of rendered objects (field manager
//! `atoll`), deletion, and finalizer edits. Kinds are resolved by discovery once and cached.

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Scope};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;

/// The field manager of atoll's server-side applies.
pub const FIELD_MANAGER: &str = "atoll";
/// The finalizer that makes deletion of a declaration wait for its clusters' cleanup.
pub const FINALIZER: &str = "atoll.dev/cleanup";

/// Why an object could not be applied, deleted or given its status.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The management cluster does not serve the object's kind.
    #[error(
        "{what}: the management cluster does not serve {api_version} {kind}: CRD {crd} is not installed{hint}"
    )]
    UnknownKind {
        /// The object (`Kind namespace/name`).
        what: String,
        /// Its apiVersion.
        api_version: String,
        /// Its kind.
        kind: String,
        /// The CustomResourceDefinition that would serve it (`<plural>.<group>`).
        crd: String,
        /// Which provider ships that CRD, when atoll knows.
        hint: String,
    },
    /// The API server refused or failed.
    #[error("{what}: {source}")]
    Api {
        /// The object.
        what: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
    /// A rendered object atoll cannot apply as it is (no name, no kind...).
    #[error("{what}: {message}")]
    Invalid {
        /// The object.
        what: String,
        /// What is wrong with it.
        message: String,
    },
}

/// The owner set on every applied object, so deletion of the declaration cascades.
#[derive(Clone, Debug)]
pub struct Owner {
    /// The declaring object's kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
}

/// Applies, deletes and reads objects of any kind, discovering each kind's resource once.
pub struct Applier {
    client: kube::Client,
    kinds: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
}

fn unknown(what: &str, group: &str, api_version: &str, kind: &str) -> ApplyError {
    let lower = kind.to_lowercase();
    let plural = if lower.ends_with('s') {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    };
    ApplyError::UnknownKind {
        what: what.to_string(),
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        crd: format!("{plural}.{group}"),
        hint: provider_hint(kind).to_string(),
    }
}

/// Which Cluster API provider ships the CRD of `kind`, for the error that says it is missing.
fn provider_hint(kind: &str) -> &'static str {
    if kind.starts_with("KThrees") {
        " (install the k3s Cluster API providers, bootstrap and control plane, from github.com/k3s-io/cluster-api-k3s; atoll's tests do not exercise them)"
    } else if kind.starts_with("Dev") || kind.starts_with("Docker") {
        " (install Cluster API's Docker provider, CAPD)"
    } else if kind.starts_with("Kubeadm") {
        " (install Cluster API's kubeadm bootstrap and control plane providers)"
    } else if matches!(
        kind,
        "Cluster"
            | "MachineDeployment"
            | "ClusterClass"
            | "ClusterResourceSet"
            | "MachineHealthCheck"
    ) {
        " (install Cluster API core: clusterctl init)"
    } else {
        ""
    }
}

fn describe(obj: &Value) -> String {
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or("");
    format!(
        "{} {}{}{}",
        obj["kind"].as_str().unwrap_or("?"),
        ns,
        if ns.is_empty() { "" } else { "/" },
        obj["metadata"]["name"].as_str().unwrap_or("?")
    )
}

impl Applier {
    /// An applier talking to the management cluster through `client`.
    pub fn new(client: kube::Client) -> Applier {
        Applier {
            client,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    async fn api_for(&self, obj: &Value) -> Result<Api<DynamicObject>, ApplyError> {
        let what = describe(obj);
        let api_version = obj["apiVersion"].as_str().unwrap_or("").to_string();
        let kind = obj["kind"].as_str().unwrap_or("").to_string();
        let key = (api_version.clone(), kind.clone());
        let cached = self.kinds.lock().expect("kinds").get(&key).cloned();
        let (ar, namespaced) = match cached {
            Some(v) => v,
            None => {
                let (group, version) = match api_version.split_once('/') {
                    Some((g, v)) => (g.to_string(), v.to_string()),
                    None => (String::new(), api_version.clone()),
                };
                let gvk = GroupVersionKind::gvk(&group, &version, &kind);
                let (ar, caps): (ApiResource, ApiCapabilities) =
                    kube::discovery::pinned_kind(&self.client, &gvk)
                        .await
                        .map_err(|e| match e {
                            // Group/version not served (404), or served without this kind.
                            kube::Error::Api(s) if s.code == 404 => {
                                unknown(&what, &group, &api_version, &kind)
                            }
                            kube::Error::Discovery(_) => {
                                unknown(&what, &group, &api_version, &kind)
                            }
                            source => ApplyError::Api {
                                what: what.clone(),
                                source,
                            },
                        })?;
                let v = (ar, caps.scope == Scope::Namespaced);
                self.kinds.lock().expect("kinds").insert(key, v.clone());
                v
            }
        };
        Ok(if namespaced {
            let ns = obj["metadata"]["namespace"]
                .as_str()
                .ok_or_else(|| ApplyError::Invalid {
                    what: what.clone(),
                    message: "namespaced kind without metadata.namespace".into(),
                })?;
            Api::namespaced_with(self.client.clone(), ns, &ar)
        } else {
            Api::all_with(self.client.clone(), &ar)
        })
    }

    /// Server-side applies `obj` with `owner` as its controlling owner.
    pub async fn apply(&self, obj: &Value, owner: Option<&Owner>) -> Result<(), ApplyError> {
        let api = self.api_for(obj).await?;
        let mut obj = obj.clone();
        if let Some(o) = owner {
            obj["metadata"]["ownerReferences"] = json!([{
                "apiVersion": atoll_model::API_VERSION,
                "kind": o.kind,
                "name": o.name,
                "uid": o.uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }]);
        }
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&obj),
        )
        .await
        .map(|_| ())
        .map_err(|source| ApplyError::Api {
            what: describe(&obj),
            source,
        })
    }

    /// Deletes `obj` (identified by apiVersion, kind, namespace, name); gone already is fine.
    pub async fn delete(&self, obj: &Value) -> Result<(), ApplyError> {
        let api = match self.api_for(obj).await {
            Ok(a) => a,
            // A kind nobody serves any more has nothing left to delete.
            Err(ApplyError::UnknownKind { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(source) => Err(ApplyError::Api {
                what: describe(obj),
                source,
            }),
        }
    }

    /// Whether `obj` still exists.
    pub async fn exists(&self, obj: &Value) -> Result<bool, ApplyError> {
        let api = match self.api_for(obj).await {
            Ok(a) => a,
            Err(ApplyError::UnknownKind { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        api.get_opt(name)
            .await
            .map(|o| o.is_some())
            .map_err(|source| ApplyError::Api {
                what: describe(obj),
                source,
            })
    }

    /// Adds or removes atoll's finalizer with a JSON patch that first tests the list it read,
    /// so a concurrent edit of the finalizers makes the patch fail instead of clobbering it.
    pub async fn set_finalizer(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        current: &[String],
        present: bool,
    ) -> Result<(), ApplyError> {
        let has = current.iter().any(|f| f == FINALIZER);
        if has == present {
            return Ok(());
        }
        let mut next: Vec<&str> = current
            .iter()
            .map(String::as_str)
            .filter(|f| *f != FINALIZER)
            .collect();
        if present {
            next.push(FINALIZER);
        }
        let test = if current.is_empty() {
            Value::Null
        } else {
            json!(current)
        };
        let ops: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": "/metadata/finalizers", "value": test},
            {"op": "add", "path": "/metadata/finalizers", "value": next},
        ]))
        .expect("patch");
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        api.patch(name, &params, &Patch::<()>::Json(ops))
            .await
            .map(|_| ())
            .map_err(|source| ApplyError::Api {
                what: format!("finalizers of {name}"),
                source,
            })
    }
}
