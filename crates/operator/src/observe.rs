//! Observe: a watch-backed cache of every atoll object and of the Cluster API Clusters atoll
//! manages, and a snapshot of them for one fleet pass.

use atoll_model::Status;
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Notify;

/// An atoll kind as served by the API server.
#[derive(Clone, Debug)]
pub struct Kind {
    /// The kind's name.
    pub kind: String,
    /// Whether its objects live in namespaces (Applications, TargetPolicies).
    pub namespaced: bool,
    /// How the API server serves it.
    pub resource: ApiResource,
}

/// The atoll kinds, from the CRDs atoll itself generates.
pub fn atoll_kinds() -> Vec<Kind> {
    atoll_model::crds()
        .into_iter()
        .map(|crd| {
            let gvk = GroupVersionKind::gvk(
                atoll_model::GROUP,
                atoll_model::VERSION,
                &crd.spec.names.kind,
            );
            Kind {
                kind: crd.spec.names.kind.clone(),
                namespaced: crd.spec.scope == "Namespaced",
                resource: ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural),
            }
        })
        .collect()
}

/// The Cluster API Cluster, read back for its phase.
pub fn capi_cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "Cluster"),
        "clusters",
    )
}

/// Caches kept current by watches; every change wakes `changed`.
pub struct Caches {
    /// One cache per atoll kind.
    pub kinds: Vec<(Kind, Store<DynamicObject>)>,
    /// The CAPI Clusters atoll made (label `atoll.dev/cluster`), for their phases.
    pub capi_clusters: Store<DynamicObject>,
    /// Woken on every change a pass may answer: an atoll object's declaration (see
    /// [`Caches::declared`]) or finalizers, a CAPI Cluster's anything.
    pub changed: Arc<Notify>,
    /// Counts writes to atoll objects that a pass must answer: a spec (its generation),
    /// labels, or a deletion. Not the operator's own status writes or finalizers. A pass
    /// whose snapshot is older stops writing statuses, so that the write is taken up at once.
    pub declared: Arc<AtomicU64>,
}

/// What makes a watched atoll object's change one a pass must answer (see
/// [`Caches::declared`]).
fn declared_key(o: &DynamicObject) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    o.metadata.generation.hash(&mut h);
    o.metadata.labels.hash(&mut h);
    o.metadata.deletion_timestamp.is_some().hash(&mut h);
    h.finish()
}

/// `declared`: counts this kind's changes a pass must answer (`None` for CAPI Clusters,
/// whose status changes must not cut a pass short).
fn watch(
    api: Api<DynamicObject>,
    resource: &ApiResource,
    config: watcher::Config,
    changed: Arc<Notify>,
    declared: Option<Arc<AtomicU64>>,
) -> Store<DynamicObject> {
    let writer = reflector::store::Writer::new(resource.clone());
    let reader = writer.as_reader();
    let what = resource.kind.clone();
    let stream = watcher(api, config).default_backoff().reflect(writer);
    tokio::spawn(async move {
        // uid → (declared key, finalizers), as last seen.
        let mut seen: std::collections::HashMap<String, (u64, Vec<String>)> = Default::default();
        stream
            .for_each(|ev| {
                match ev {
                    Err(e) => tracing::warn!("watching {what}: {e}"),
                    // CAPI Clusters: their status is what is watched.
                    Ok(_) if declared.is_none() => changed.notify_one(),
                    Ok(ev) => {
                        // A pass answers declarations and finalizers; the operator's own
                        // status writes must not wake the loop (a burst of them would hold a
                        // write's pass back for the whole quiet period).
                        let (moved, relevant) = match &ev {
                            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                                let uid = o.metadata.uid.clone().unwrap_or_default();
                                let now = (
                                    declared_key(o),
                                    o.metadata.finalizers.clone().unwrap_or_default(),
                                );
                                let before = seen.insert(uid, now.clone());
                                let moved = before.as_ref().map(|b| b.0) != Some(now.0);
                                let live = matches!(ev, watcher::Event::Apply(_));
                                (moved && live, before.as_ref() != Some(&now))
                            }
                            watcher::Event::Delete(o) => {
                                seen.remove(o.metadata.uid.as_deref().unwrap_or_default());
                                (true, true)
                            }
                            watcher::Event::Init | watcher::Event::InitDone => (false, true),
                        };
                        if moved && let Some(declared) = &declared {
                            declared.fetch_add(1, Ordering::Relaxed);
                        }
                        if relevant {
                            changed.notify_one();
                        }
                    }
                }
                futures::future::ready(())
            })
            .await
    });
    reader
}

impl Caches {
    /// Starts the watches. CAPI Clusters are watched in `management_namespace`, selected by
    /// the `atoll.dev/cluster` label atoll puts on everything it renders.
    pub fn start(client: &kube::Client) -> Caches {
        let changed = Arc::new(Notify::new());
        let declared = Arc::new(AtomicU64::new(0));
        let kinds = atoll_kinds()
            .into_iter()
            .map(|k| {
                let api = Api::all_with(client.clone(), &k.resource);
                let store = watch(
                    api,
                    &k.resource,
                    watcher::Config::default(),
                    changed.clone(),
                    Some(declared.clone()),
                );
                (k, store)
            })
            .collect();
        let capi = capi_cluster_resource();
        let capi_clusters = watch(
            Api::all_with(client.clone(), &capi),
            &capi,
            watcher::Config::default().labels("atoll.dev/cluster"),
            changed.clone(),
            None,
        );
        Caches {
            kinds,
            capi_clusters,
            changed,
            declared,
        }
    }

    /// Waits until every atoll kind has been listed once. The CAPI watch is not waited for:
    /// without the Cluster API CRDs it never lists, and atoll still renders to Git.
    pub async fn ready(&self) {
        for (_, s) in &self.kinds {
            let _ = s.wait_until_ready().await;
        }
    }

    /// What the caches hold now, as one consistent-enough view for a pass.
    pub fn snapshot(&self) -> Snapshot {
        let mut objects = Vec::new();
        for (k, store) in &self.kinds {
            for o in store.state() {
                objects.push(Object::new(k, &o));
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        let mut capi_phases = BTreeMap::new();
        for c in self.capi_clusters.state() {
            let name = c.metadata.name.clone().unwrap_or_default();
            let ns = c.metadata.namespace.clone().unwrap_or_default();
            capi_phases.insert((ns, name), CapiCluster::read(&c.data["status"]));
        }
        Snapshot {
            objects,
            capi_phases,
        }
    }
}

/// One atoll object as the operator sees it.
#[derive(Clone, Debug)]
pub struct Object {
    /// Its kind.
    pub kind: Kind,
    /// `Kind/name` or `Kind/namespace/name`: unique, and the "file" of its diagnostics.
    pub key: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, for namespaced kinds.
    pub namespace: Option<String>,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.generation` (what `status.observedGeneration` answers).
    pub generation: Option<i64>,
    /// Whether it has a deletion timestamp.
    pub deleting: bool,
    /// `metadata.finalizers`.
    pub finalizers: Vec<String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `spec`, as served.
    pub spec: Value,
    /// `status`, as last written.
    pub status: Status,
}

impl Object {
    pub(crate) fn new(kind: &Kind, o: &DynamicObject) -> Object {
        let m = &o.metadata;
        let name = m.name.clone().unwrap_or_default();
        let namespace = m.namespace.clone();
        let key = match &namespace {
            Some(ns) => format!("{}/{ns}/{name}", kind.kind),
            None => format!("{}/{name}", kind.kind),
        };
        Object {
            kind: kind.clone(),
            key,
            name,
            namespace,
            uid: m.uid.clone().unwrap_or_default(),
            generation: m.generation,
            deleting: m.deletion_timestamp.is_some(),
            finalizers: m.finalizers.clone().unwrap_or_default(),
            labels: m.labels.clone().unwrap_or_default(),
            spec: o.data.get("spec").cloned().unwrap_or(json!({})),
            status: o
                .data
                .get("status")
                .and_then(|s| serde_json::from_value(s.clone()).ok())
                .unwrap_or_default(),
        }
    }

    /// The declaration as the model reads it (a diagnostic's line points into its pretty
    /// JSON print).
    pub fn declaration(&self) -> serde_json::Value {
        let mut meta = json!({"name": self.name});
        if let Some(ns) = &self.namespace {
            meta["namespace"] = json!(ns);
        }
        if !self.labels.is_empty() {
            meta["labels"] = json!(self.labels);
        }
        json!({
            "apiVersion": atoll_model::API_VERSION,
            "kind": self.kind.kind,
            "metadata": meta,
            "spec": self.spec,
        })
    }
}

/// Everything one fleet pass reads from the API server.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every atoll object, sorted by key.
    pub objects: Vec<Object>,
    /// (namespace, name) of each CAPI Cluster → what its status says.
    pub capi_phases: BTreeMap<(String, String), CapiCluster>,
}

pub use atoll_status::CapiCluster;

impl Snapshot {
    /// A digest of what a pass depends on: specs, labels, deletion, finalizers and CAPI phases —
    /// not atoll's own status writes, which would otherwise wake the loop forever.
    pub fn digest(&self) -> String {
        let mut h = sha1_smol::Sha1::new();
        for o in &self.objects {
            h.update(o.key.as_bytes());
            h.update(o.uid.as_bytes());
            h.update(&o.generation.unwrap_or(0).to_le_bytes());
            h.update(&[o.deleting as u8]);
            h.update(
                serde_json::to_string(&o.labels)
                    .unwrap_or_default()
                    .as_bytes(),
            );
            h.update(o.finalizers.join(",").as_bytes());
            h.update(b"\n");
        }
        // Cluster API's view too (atoll never writes it, so this cannot loop).
        for ((ns, n), c) in &self.capi_phases {
            h.update(format!("{ns}/{n}={c:?}\n").as_bytes());
        }
        h.digest().to_string()
    }
}
