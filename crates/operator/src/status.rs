//! Reporting, one reconcile function per kind: from a pass's [`Outcome`] to each object's
//! status (Ready / Reconciling / Stalled conditions, observedGeneration, clusters, commit, CAPI
//! phase), and finalizers — added to live Clusters and Applications, removed once their
//! clean-up is done.

use crate::apply::{Applier, ApplyError, FINALIZER};
use crate::fleet::{self, Outcome};
use crate::observe::{Object, Snapshot};
use atoll_model::{Condition, Status};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;
use std::time::Duration;

/// What an object's conditions say.
struct Verdict {
    ready: bool,
    reason: String,
    message: String,
    reconciling: bool,
    stalled: bool,
}

impl Verdict {
    fn ready(reason: &str, message: String) -> Verdict {
        Verdict {
            ready: true,
            reason: reason.into(),
            message,
            reconciling: false,
            stalled: false,
        }
    }
    fn stalled(reason: &str, message: String) -> Verdict {
        Verdict {
            ready: false,
            reason: reason.into(),
            message,
            reconciling: false,
            stalled: true,
        }
    }
    fn reconciling(reason: &str, message: String) -> Verdict {
        Verdict {
            ready: false,
            reason: reason.into(),
            message,
            reconciling: true,
            stalled: false,
        }
    }
}

fn now() -> String {
    Timestamp::from_second(Timestamp::now().as_second())
        .expect("time")
        .to_string()
}

/// Conditions for `v`, keeping a condition's transition time while its status holds.
fn conditions(prev: &[Condition], generation: Option<i64>, v: &Verdict) -> Vec<Condition> {
    let b = |x: bool| if x { "True" } else { "False" }.to_string();
    let idle = |t: &str| match t {
        "Reconciling" => "Idle",
        _ => "Healthy",
    };
    [
        ("Ready", v.ready, v.reason.clone()),
        (
            "Reconciling",
            v.reconciling,
            if v.reconciling {
                v.reason.clone()
            } else {
                idle("Reconciling").into()
            },
        ),
        (
            "Stalled",
            v.stalled,
            if v.stalled {
                v.reason.clone()
            } else {
                idle("Stalled").into()
            },
        ),
    ]
    .into_iter()
    .map(|(t, on, reason)| {
        let status = b(on);
        let message = if t == "Ready" || on {
            v.message.clone()
        } else {
            String::new()
        };
        let since = prev
            .iter()
            .find(|c| c.type_ == t && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(now);
        Condition {
            type_: t.into(),
            status,
            reason,
            message,
            last_transition_time: Some(since),
            observed_generation: generation,
        }
    })
    .collect()
}

use std::collections::BTreeMap;

/// The pass's view shared by every per-kind reconcile.
pub struct Report<'a> {
    /// What the pass read.
    pub snap: &'a Snapshot,
    /// What it rendered, committed and applied.
    pub outcome: &'a Outcome,
    /// For status writes and CAPI reads.
    pub applier: &'a Applier,
    /// The management cluster.
    pub client: &'a kube::Client,
    /// Where the CAPI objects live.
    pub management_namespace: &'a str,
    /// What each cluster's agent reports (the observed side), by cluster.
    pub syncs: &'a BTreeMap<String, atoll_status::ClusterSync>,
    /// Per `team/app`: (clusters at HEAD, clusters placed on).
    pub at_head: &'a BTreeMap<String, (usize, usize)>,
    /// What was last written per object (see [`crate::fleet::Memory::written`]).
    pub written: &'a std::sync::Mutex<std::collections::HashMap<String, (String, Status)>>,
    /// Statuses written by this report.
    pub wrote: std::sync::atomic::AtomicUsize,
    /// The outcome's `owner_of` turned around: owner → the clusters it declares (looked up
    /// per object; a scan per object would be quadratic in fleet size).
    pub owned: BTreeMap<&'a str, Vec<&'a String>>,
    /// [`crate::observe::Caches::declared`] and its value when the snapshot was taken: once
    /// it moves, a declaration changed since, and the statuses not yet written are left to
    /// the next pass (which starts right away and writes them all again where needed), so
    /// that a write is not kept waiting behind 10,000 status computations.
    pub declared: Option<(&'a std::sync::atomic::AtomicU64, u64)>,
    /// Statuses left to the next pass because a declaration changed.
    pub deferred: std::sync::atomic::AtomicUsize,
}

/// `owner_of` turned around, for [`Report::owned`].
pub fn owned(outcome: &Outcome) -> BTreeMap<&str, Vec<&String>> {
    let mut out: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for (cluster, owner) in &outcome.owner_of {
        out.entry(owner.as_str()).or_default().push(cluster);
    }
    out
}

impl Report<'_> {
    fn api(&self, o: &Object) -> Api<DynamicObject> {
        match &o.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &o.kind.resource),
            None => Api::all_with(self.client.clone(), &o.kind.resource),
        }
    }

    fn clusters(&self, o: &Object) -> Vec<String> {
        self.outcome
            .affects
            .get(&o.key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The common verdict: set aside, failed to apply one of its clusters, or rendered.
    fn verdict(&self, o: &Object, clusters: &[String]) -> Verdict {
        if let Some(why) = self.outcome.invalid.get(&o.key) {
            let reason = if why
                .iter()
                .any(|m| m.contains("no ") || m.contains("unknown"))
            {
                "InvalidReference"
            } else {
                "InvalidSpec"
            };
            return Verdict::stalled(reason, why.join("; "));
        }
        let owned = self
            .owned
            .get(o.key.as_str())
            .map_or(&[][..], Vec::as_slice);
        let failed: Vec<String> = owned
            .iter()
            .filter_map(|c| self.outcome.apply_errors.get(*c))
            .cloned()
            .collect();
        if !failed.is_empty() {
            let reason = if owned.iter().any(|c| self.outcome.missing_crds.contains(*c)) {
                "MissingCRD"
            } else {
                "ApplyFailed"
            };
            return Verdict::stalled(reason, failed.join("; "));
        }
        let commit = self.commit_of(o, clusters);
        let at = commit
            .as_deref()
            .map(|c| &c[..c.len().min(12)])
            .unwrap_or("-");
        if let Some(e) = &self.outcome.not_pushed {
            return Verdict::reconciling(
                "NotPushed",
                format!("committed at {at}, not pushed (retried with backoff): {e}"),
            );
        }
        Verdict::ready(
            "Rendered",
            format!("rendered at commit {at}; {} cluster(s)", clusters.len()),
        )
    }

    /// Writes `status` unless the object has it, or the operator wrote it last and the
    /// watch has not caught up.
    async fn write(&self, o: &Object, status: Status) -> Result<(), ApplyError> {
        if status == o.status {
            return Ok(());
        }
        if self
            .written
            .lock()
            .expect("written")
            .get(&o.key)
            .is_some_and(|(uid, s)| *uid == o.uid && *s == status)
        {
            return Ok(());
        }
        let remembered = status.clone();
        let mut value = serde_json::to_value(&status).expect("status");
        // A merge patch keeps absent fields: clear them explicitly.
        for k in [
            "observedGeneration",
            "conditions",
            "clusters",
            "commit",
            "phase",
            "sync",
            "atHead",
            "machines",
            "rollout",
        ] {
            if value.get(k).is_none() {
                value[k] = serde_json::Value::Null;
            }
        }
        let params = PatchParams {
            field_manager: Some(crate::apply::FIELD_MANAGER.into()),
            ..Default::default()
        };
        match self
            .api(o)
            .patch_status(&o.name, &params, &Patch::Merge(json!({"status": value})))
            .await
        {
            Ok(_) => {
                self.written
                    .lock()
                    .expect("written")
                    .insert(o.key.clone(), (o.uid.clone(), remembered));
                self.wrote
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            // Deleted meanwhile: nothing to report on.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(source) => Err(ApplyError::Api {
                what: format!("status of {}", o.key),
                source,
            }),
        }
    }

    /// The commit that last changed `o`'s rendering: the one it reported, unless it has
    /// changed since or this pass committed a new rendering of it (then HEAD). An
    /// Application's rendering is its package on each of its clusters; anything else's is
    /// the whole of its clusters' files.
    fn commit_of(&self, o: &Object, clusters: &[String]) -> Option<String> {
        let rendered_again = if o.kind.kind == "Application" {
            let key = format!("{}/{}", o.namespace.as_deref().unwrap_or(""), o.name);
            self.outcome.changed_apps.contains(&key)
        } else {
            clusters.iter().any(|c| self.outcome.rendered.contains(c))
        };
        // What this operator wrote last is newer than a watch that has not caught up.
        let written = self.written.lock().expect("written");
        let prev = written
            .get(&o.key)
            .filter(|(uid, _)| *uid == o.uid)
            .map_or(&o.status, |(_, s)| s);
        let unchanged = prev.commit.is_some()
            && prev.observed_generation == o.generation
            && prev.clusters.as_slice() == clusters
            && !rendered_again;
        if unchanged {
            prev.commit.clone()
        } else {
            self.outcome.commit.clone()
        }
    }

    fn status(&self, o: &Object, v: &Verdict, clusters: Vec<String>) -> Status {
        Status {
            observed_generation: o.generation,
            conditions: conditions(&o.status.conditions, o.generation, v),
            commit: self.commit_of(o, &clusters),
            clusters,
            phase: None,
            sync: None,
            at_head: None,
            machines: None,
            rollout: None,
        }
    }

    /// Cluster: status with the CAPI phase; on deletion, keep the finalizer until Cluster API
    /// has deleted the CAPI Cluster (its machines go with it).
    pub async fn reconcile_cluster(&self, o: &Object) -> Result<Option<Duration>, ApplyError> {
        let api = self.api(o);
        if o.deleting {
            if !o.finalizers.iter().any(|f| f == FINALIZER) {
                return Ok(None);
            }
            if fleet::capi_cluster_exists(self.applier, self.management_namespace, &o.name).await? {
                let v = Verdict::reconciling(
                    "Deleting",
                    format!(
                        "packages removed from Git; waiting for Cluster API to delete Cluster {}/{}",
                        self.management_namespace, o.name
                    ),
                );
                self.write(o, self.status(o, &v, vec![])).await?;
                return Ok(Some(Duration::from_secs(2)));
            }
            self.applier
                .set_finalizer(&api, &o.name, &o.finalizers, false)
                .await?;
            return Ok(None);
        }
        self.applier
            .set_finalizer(&api, &o.name, &o.finalizers, true)
            .await?;
        let clusters = self.clusters(o);
        let mut v = self.verdict(o, &clusters);
        // Not stalled means its objects were applied (an apply error stalls the owner).
        let capi = if v.stalled {
            None
        } else {
            v.message = format!(
                "{}; Cluster API objects applied to {}",
                v.message, self.management_namespace
            );
            self.snap
                .capi_phases
                .get(&(self.management_namespace.to_string(), o.name.clone()))
                .cloned()
        };
        // Held back by a rollout: it says which wave it waits in.
        let wave = self
            .outcome
            .rollouts
            .iter()
            .find_map(|r| r.wave_of(&o.name).map(|w| (r, w)));
        if let Some((r, (n, false))) = wave {
            v.message = format!(
                "{}; held in wave {n} of {} by the {} rollout ({}: {})",
                v.message,
                r.waves.len(),
                r.policy,
                r.phase.as_str(),
                r.message
            );
        }
        let mut status = self.status(o, &v, clusters);
        if let Some((r, (n, released))) = wave {
            status.rollout = Some(atoll_model::RolloutStatus {
                phase: if released {
                    "Released".into()
                } else {
                    "Held".into()
                },
                wave: format!("{n}/{}", r.waves.len()),
                message: r.message.clone(),
                waves: Vec::new(),
                waiting_on: Vec::new(),
            });
        }
        let nodes = self.syncs.get(&o.name).and_then(|s| s.nodes.as_ref());
        if let Some(c) = capi {
            status.phase = c.phase;
            let mut m = c.machines;
            if let Some(n) = nodes {
                m.node_versions = n.versions.iter().map(|(v, k)| format!("{v}={k}")).collect();
                m.version = n.version().map(str::to_string);
                m.nodes = Some(format!("{}/{}", n.ready, n.total));
            }
            status.machines = Some(m);
        }
        status.sync = self.syncs.get(&o.name).map(|s| atoll_model::SyncStatus {
            state: s.state.as_str().into(),
            revision: s.revision.clone(),
            behind: s.behind.map(|b| b as i64),
            message: s.message.clone(),
            last_contact: s.last_contact.clone(),
            drift: s.drift.clone(),
        });
        self.write(o, status).await?;
        Ok(None)
    }

    /// Application: status with the clusters it is placed on; on deletion, the pass has
    /// already committed its removal from every cluster's package.
    pub async fn reconcile_application(&self, o: &Object) -> Result<Option<Duration>, ApplyError> {
        let api = self.api(o);
        if o.deleting {
            self.applier
                .set_finalizer(&api, &o.name, &o.finalizers, false)
                .await?;
            return Ok(None);
        }
        self.applier
            .set_finalizer(&api, &o.name, &o.finalizers, true)
            .await?;
        let clusters = self.clusters(o);
        let mut v = self.verdict(o, &clusters);
        if v.ready {
            v.message = format!("placed on {} cluster(s); {}", clusters.len(), v.message);
        }
        let mut status = self.status(o, &v, clusters);
        let key = format!("{}/{}", o.namespace.as_deref().unwrap_or(""), o.name);
        status.at_head = self.at_head.get(&key).map(|(ok, n)| format!("{ok}/{n}"));
        self.write(o, status).await?;
        Ok(None)
    }

    /// Every other kind: it is either part of the render or set aside with the reason.
    pub async fn reconcile_declaration(&self, o: &Object) -> Result<Option<Duration>, ApplyError> {
        if o.deleting {
            return Ok(None);
        }
        let clusters = self.clusters(o);
        let v = self.verdict(o, &clusters);
        let mut status = self.status(o, &v, clusters);
        let policy = match o.kind.kind.as_str() {
            "Fleet" => Some("fleet".to_string()),
            "ClusterCatalog" => Some(format!("catalog/{}", o.name)),
            _ => None,
        };
        if let Some(r) = policy.and_then(|p| self.outcome.rollouts.iter().find(|r| r.policy == p)) {
            status.rollout = Some(atoll_model::RolloutStatus {
                phase: r.phase.as_str().into(),
                wave: format!("{}/{}", r.released, r.waves.len()),
                message: r.message.clone(),
                waves: r
                    .waves
                    .iter()
                    .enumerate()
                    .map(|(i, w)| format!("{}: {}", i + 1, w.join(",")))
                    .collect(),
                waiting_on: r.waiting_on.clone(),
            });
        }
        self.write(o, status).await?;
        Ok(None)
    }

    /// Reconciles every object, several at a time; one failing does not stop the others.
    /// Also returns how many statuses were written. Once a declaration changes (see
    /// [`Report::declared`]) the rest is left to the next pass, and the writes in flight are
    /// dropped with it: a merge patch that landed is found in the object next time, one that
    /// did not is written again, and the new write does not wait behind either.
    pub async fn reconcile_all(&self) -> (Option<Duration>, Vec<ApplyError>, usize) {
        use futures::StreamExt;
        let jobs = self.snap.objects.iter().map(|o| async move {
            match o.kind.kind.as_str() {
                "Cluster" => self.reconcile_cluster(o).await,
                "Application" => self.reconcile_application(o).await,
                _ => self.reconcile_declaration(o).await,
            }
        });
        let mut stream = futures::stream::iter(jobs).buffer_unordered(32);
        let mut results = Vec::with_capacity(self.snap.objects.len());
        loop {
            tokio::select! {
                r = stream.next() => match r {
                    Some(r) => results.push(r),
                    None => break,
                },
                () = self.declaration_changed() => {
                    self.deferred.fetch_add(
                        self.snap.objects.len() - results.len(),
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    break;
                }
            }
        }
        let mut requeue: Option<Duration> = None;
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(Some(d)) => requeue = Some(requeue.map_or(d, |r| r.min(d))),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        (
            requeue,
            errors,
            self.wrote.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Resolves once a declaration changed since the snapshot; never without
    /// [`Report::declared`]. A poll of one counter: cheaper than a second watch.
    async fn declaration_changed(&self) {
        let Some((declared, at)) = self.declared else {
            return std::future::pending().await;
        };
        while declared.load(std::sync::atomic::Ordering::Relaxed) == at {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::atoll_kinds;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// An API server that takes every request and never answers: a status write to it stays
    /// in flight until it is dropped (kube's own read timeout is minutes).
    fn silent_server() -> kube::Client {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in listener.incoming() {
                held.push(s);
            }
        });
        kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap()
    }

    fn objects(n: usize) -> Vec<Object> {
        let kinds = atoll_kinds();
        let kind = kinds.iter().find(|k| k.kind == "Fleet").unwrap();
        (0..n)
            .map(|i| {
                let o: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "atoll.dev/v1alpha1",
                    "kind": "Fleet",
                    "metadata": {"name": format!("f{i:03}"), "uid": format!("uid-{i}"), "generation": 1},
                    "spec": {},
                }))
                .unwrap();
                Object::new(kind, &o)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_new_declaration_drops_the_status_writes_in_flight() {
        let client = silent_server();
        let applier = Applier::new(client.clone());
        let snap = Snapshot {
            objects: objects(100),
            capi_phases: Default::default(),
        };
        let outcome = Outcome::default();
        let declared = AtomicU64::new(7);
        let (syncs, at_head, written) = Default::default();
        let report = Report {
            snap: &snap,
            outcome: &outcome,
            applier: &applier,
            client: &client,
            management_namespace: "atoll-system",
            syncs: &syncs,
            at_head: &at_head,
            written: &written,
            wrote: Default::default(),
            owned: owned(&outcome),
            declared: Some((&declared, 7)),
            deferred: Default::default(),
        };
        let bump = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            declared.fetch_add(1, Ordering::Relaxed);
        };
        let ((requeue, errors, wrote), ()) = tokio::time::timeout(
            Duration::from_secs(10),
            futures::future::join(report.reconcile_all(), bump),
        )
        .await
        .expect("the writes in flight were waited for, not dropped");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!((requeue, wrote), (None, 0));
        // Nothing finished against the silent server: all 100 are left to the next pass.
        assert_eq!(report.deferred.load(Ordering::Relaxed), 100);
    }
}
