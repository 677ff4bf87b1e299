//! One fleet pass — orient, decide, act (seed 003 §6.3.2's OODA loop): build the model from
//! the snapshot, setting aside every declaration that is invalid or refers to one that is;
//! render with the engine against the repository's HEAD (only clusters whose inputs changed
//! are rendered again); commit; server-side apply the Cluster API objects; delete those of
//! clusters that went away.
//!
//! Git is written before the cluster, and everything is derived from the declarations plus
//! HEAD: a pass interrupted anywhere is completed by the next one, which finds the commit
//! already made and applies what is missing.

use crate::apply::{Applier, ApplyError, Owner};
use crate::observe::Snapshot;
use atoll_model::{Declarations, Diagnostic, Model};
use atoll_pipeline::{Failure, Pipeline};
use futures::StreamExt;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Where the pass reads and writes.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The fleet repository (created when missing).
    pub repo: PathBuf,
    /// Keep it bare (no work tree).
    pub bare: bool,
    /// Base of relative upstream package repositories.
    pub upstream_base: PathBuf,
    /// Local upstream repositories must lie under one of these (resolved).
    pub upstream_roots: Vec<PathBuf>,
    /// Publish every commit to this Git server (the one the agents pull from).
    pub remote: Option<atoll_gitops::Remote>,
    /// Test hook: stop the process at a named point (see [`Fault`]).
    pub fault: Option<Fault>,
}

/// Points where a test can make the operator hang, to kill it there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// After the Git commit and the first cluster's objects, before the rest and any status.
    MidApply,
}

/// Why a pass failed as a whole (errors of single objects go to their status instead).
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The fleet repository could not be read or written.
    #[error("fleet repository: {0}")]
    Git(#[from] atoll_gitops::GitError),
    /// The pipeline failed (an upstream, the repository's state).
    #[error("{0}")]
    Pipeline(#[from] atoll_pipeline::Error),
    /// Errors that no single declaration can be blamed for.
    #[error("declarations cannot be rendered:\n{0}")]
    Unattributed(String),
    /// Applying to the management cluster failed.
    #[error("{0}")]
    Apply(#[from] ApplyError),
    /// Local files (the repository's folder) failed.
    #[error("{0}")]
    Io(String),
}

/// What a pass found and did, for the status of every object.
#[derive(Debug, Default)]
pub struct Outcome {
    /// HEAD of the fleet repository after the pass.
    pub commit: Option<String>,
    /// Whether this pass made that commit.
    pub committed: bool,
    /// Declarations set aside, with why.
    pub invalid: BTreeMap<String, Vec<String>>,
    /// Every cluster rendered.
    pub clusters: BTreeSet<String>,
    /// Clusters whose files this pass rendered again and committed (empty without a commit).
    pub rendered: BTreeSet<String>,
    /// Applications (`team/app`) whose package on some cluster this pass's commit changed.
    pub changed_apps: BTreeSet<String>,
    /// Object key → the clusters it is placed on or affects.
    pub affects: BTreeMap<String, BTreeSet<String>>,
    /// Cluster → key of the declaration it comes from (a Cluster, or a LogicalCluster /
    /// WorkloadDeployment member).
    pub owner_of: BTreeMap<String, String>,
    /// Cluster → why its objects could not be applied.
    pub apply_errors: BTreeMap<String, String>,
    /// Clusters whose objects could not be applied because a kind is not served (a provider's
    /// CRDs are not installed).
    pub missing_crds: BTreeSet<String>,
    /// Clusters removed whose CAPI Cluster Cluster API is still tearing down.
    pub removing: BTreeSet<String>,
    /// Cluster API objects applied in this pass.
    pub applied: usize,
    /// Namespace of the Cluster API objects (the Fleet's `managementNamespace`).
    pub management_namespace: String,
    /// Why HEAD is committed but not on the remote, if it is not.
    pub not_pushed: Option<String>,
    /// Upgrade waves in progress after this pass.
    pub rollouts: Vec<atoll_pipeline::rollout::Report>,
}

fn message(d: &Diagnostic) -> String {
    if d.path.is_empty() {
        d.message.clone()
    } else {
        format!("{}: {}", d.path, d.message)
    }
}

/// Builds the model from every declaration that is not being deleted, setting aside the
/// ones with errors until what remains validates and renders (an object referring to one set
/// aside then fails too, naming it), and plans it through the pipeline.
fn orient(
    snap: &Snapshot,
    pipeline: &mut Pipeline,
    invalid: &mut BTreeMap<String, Vec<String>>,
) -> Result<(Model, atoll_pipeline::Plan), PassError> {
    let keys: BTreeSet<&str> = snap.objects.iter().map(|o| o.key.as_str()).collect();
    loop {
        let mut decls = Declarations::default();
        let mut diags = Vec::new();
        for o in &snap.objects {
            if !o.deleting && !invalid.contains_key(&o.key) {
                atoll_model::load_value(&o.key, o.declaration(), &mut decls, &mut diags);
            }
        }
        let result = if diags.is_empty() {
            atoll_model::validate(decls).map_err(|d| d.0)
        } else {
            Err(diags)
        };
        let diags = match result {
            Ok(model) => match pipeline.plan(&model, false, true) {
                Ok(plan) => return Ok((model, plan)),
                Err(Failure::Invalid(d)) => d.0,
                Err(Failure::Error(atoll_pipeline::Error::Upstream(d))) => vec![d],
                Err(Failure::Error(e)) => return Err(e.into()),
            },
            Err(d) => d,
        };
        let mut progressed = false;
        let mut stray = Vec::new();
        for d in diags {
            if keys.contains(d.file.as_str()) {
                invalid.entry(d.file.clone()).or_default().push(message(&d));
                progressed = true;
            } else {
                stray.push(d.to_string());
            }
        }
        if !progressed {
            return Err(PassError::Unattributed(stray.join("\n")));
        }
    }
}

/// The Cluster API objects of one cluster, from its rendered files.
fn capi_objects(files: &BTreeMap<String, Vec<u8>>, cluster: &str) -> Vec<Value> {
    let prefix = atoll_layout::management_dir(cluster);
    let mut out = Vec::new();
    for (path, bytes) in files.range(prefix.clone()..) {
        if !path.starts_with(&prefix) {
            break;
        }
        if path.ends_with("/kustomization.yaml") || !path.ends_with(".yaml") {
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        if let Ok(docs) = atoll_model::yaml::parse_documents(&text) {
            out.extend(docs.into_iter().map(|d| d.value).filter(Value::is_object));
        }
    }
    // The CAPI Cluster last when applying: what it references exists by then.
    out.sort_by_key(|o| o["kind"] == "Cluster");
    out
}

/// Clusters whose objects are applied concurrently.
const APPLY_PARALLELISM: usize = 8;

/// State that lives across passes.
#[derive(Default)]
pub struct Memory {
    /// Clusters whose objects have been applied since the operator started, at their
    /// rendered input digest. A restarted operator applies everything once.
    pub applied: BTreeMap<String, String>,
    /// The fleet repository through the one pipeline (it keeps the last render's memo).
    pub pipeline: Option<Pipeline>,
    /// What each cluster's agent reported in the last sweep (for rollouts' health gates).
    pub syncs: BTreeMap<String, atoll_status::ClusterSync>,
    /// Whether the last pass made a commit.
    pub committed_last: bool,
    /// The status last written per object (`key` → uid and status): the watch cache can lag
    /// behind the operator's own writes, and without this a pass would write them again.
    pub written: std::sync::Mutex<std::collections::HashMap<String, (String, atoll_model::Status)>>,
    /// Clusters and applications rendered again by passes whose status phase was cut short
    /// (a newer declaration came): the next passes report them as rendered at HEAD, as the
    /// cut pass would have, until a status phase runs to the end.
    pub unreported: (BTreeSet<String>, BTreeSet<String>),
}

impl Settings {
    fn options(&self) -> atoll_pipeline::Options {
        atoll_pipeline::Options {
            create: true,
            bare: self.bare,
            disk_cache: atoll_pipeline::Reuse::Nothing,
            writer: "atoll operator".into(),
            sources: atoll_pipeline::UpstreamSources::folder(
                self.upstream_base.clone(),
                self.upstream_roots.clone(),
            ),
            remote: self.remote.clone(),
        }
    }

    fn open(&self) -> Result<Pipeline, PassError> {
        Ok(Pipeline::open(&self.repo, self.options())?)
    }
}

/// Runs one pass. Per-cluster apply failures do not fail the pass: they are in the outcome.
pub async fn pass(
    snap: &Snapshot,
    settings: &Settings,
    applier: &Applier,
    memory: &mut Memory,
) -> Result<Outcome, PassError> {
    if memory.pipeline.is_none() {
        memory.pipeline = Some(settings.open()?);
    }
    let pipeline = memory.pipeline.as_mut().expect("opened");
    pipeline.set_health(health(snap, &memory.syncs));
    let mut outcome = Outcome::default();
    let (model, plan) =
        tokio::task::block_in_place(|| orient(snap, pipeline, &mut outcome.invalid))?;
    let management_ns = model
        .fleet
        .management_namespace
        .clone()
        .unwrap_or_else(|| "atoll-system".into());
    outcome.management_namespace = management_ns.clone();

    // Who declared each cluster, and what each declaration affects.
    for (name, decl) in &model.clusters {
        outcome
            .owner_of
            .insert(name.clone(), decl.origin.file.to_string());
        outcome
            .affects
            .entry(decl.origin.file.to_string())
            .or_default()
            .insert(name.clone());
        if let Some(cat) = &decl.spec.catalog {
            outcome
                .affects
                .entry(format!("ClusterCatalog/{cat}"))
                .or_default()
                .insert(name.clone());
        }
    }
    for (cluster, apps) in &plan.change.placements {
        for app in apps.iter() {
            let (team, _) = app.split_once('/').unwrap_or((app, ""));
            for key in [format!("Application/{app}"), format!("Team/{team}")] {
                outcome
                    .affects
                    .entry(key)
                    .or_default()
                    .insert(cluster.clone());
            }
        }
    }
    for (name, lc) in &model.logical_clusters {
        outcome
            .affects
            .entry(format!("LogicalCluster/{name}"))
            .or_default()
            .extend(model.members(lc));
    }
    let digests = plan.change.after.inputs.clone();
    outcome.rollouts = plan.change.rollouts.clone();

    // Decide: the change against HEAD; the CAPI objects of clusters going away, read
    // before the commit removes them.
    let repo = pipeline.repo().expect("created");
    outcome.clusters = plan.change.clusters.clone();
    let gone_files = repo.head_files_under(
        plan.change
            .removed
            .iter()
            .map(|c| atoll_layout::management_dir(c))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
    )?;

    // Recorded before the commit that removes them from HEAD, so that a crash between the
    // two cannot orphan them.
    let mut teardown = Teardown::load(repo.git_dir());
    for cluster in &plan.change.removed {
        memory.applied.remove(cluster);
        teardown
            .pending
            .insert(cluster.clone(), capi_objects(&gone_files, cluster));
    }
    teardown.save()?;

    // Act 1: Git (the Cluster API objects rendered again are kept to apply next).
    let rendered_capi: BTreeMap<String, Vec<u8>> = plan
        .change
        .edit
        .files
        .iter()
        .filter(|(p, _)| {
            atoll_layout::cluster_of(p).is_some_and(|c| {
                plan.change.rendered.contains(c) && p.starts_with(&atoll_layout::management_dir(c))
            })
        })
        .map(|(p, b)| (p.clone(), b.to_vec()))
        .collect();
    let (rendered, clusters) = (plan.change.rendered.clone(), plan.change.clusters.clone());
    // `clusters/<c>/apps/<team>/<app>/…`: which applications' packages the commit touches.
    let changed_apps: BTreeSet<String> = plan
        .change
        .plans
        .iter()
        .flat_map(|p| &p.files)
        .filter_map(|f| {
            let mut parts = f.path.split('/');
            match (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
            ) {
                (Some("clusters"), Some(_), Some("apps"), Some(team), Some(app)) => {
                    Some(format!("{team}/{app}"))
                }
                _ => None,
            }
        })
        .collect();
    let done = tokio::task::block_in_place(|| {
        pipeline.commit_and_publish(plan, &model, Some("Rendered by atoll operator."))
    })
    .map_err(|f| match f {
        Failure::Error(e) => PassError::Pipeline(e),
        Failure::Invalid(d) => PassError::Unattributed(d.to_string()),
    })?;
    // The pass is done even when the push was not: the next one pushes (status says so).
    if pipeline.has_remote()
        && let Some(e) = pipeline.publish_state().error
    {
        outcome.not_pushed = Some(e);
    }
    if let Some(c) = &done.commit {
        tracing::info!(
            "committed {c}: {}",
            done.message.lines().next().unwrap_or("")
        );
        outcome.committed = true;
        outcome.rendered = rendered.clone();
        outcome.changed_apps = changed_apps;
    }
    outcome.commit = done.head.map(|c| c.to_string());
    let repo = pipeline.repo().expect("created");

    // Act 2: Cluster API objects, for clusters rendered again or not applied since start
    // (or whose CAPI Cluster has disappeared).
    let to_apply: Vec<String> = clusters
        .iter()
        .filter(|c| {
            rendered.contains(*c)
                || memory.applied.get(*c) != digests.get(*c)
                || !snap
                    .capi_phases
                    .contains_key(&(management_ns.clone(), (*c).clone()))
        })
        .cloned()
        .collect();
    if !to_apply.is_empty() {
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let need_head: Vec<String> = to_apply
            .iter()
            .filter(|c| !rendered.contains(*c))
            .map(|c| atoll_layout::management_dir(c))
            .collect();
        files.extend(repo.head_files_under(need_head.iter().map(String::as_str))?);
        files.extend(rendered_capi);
        applier
            .apply(
                &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": management_ns}}),
                None,
            )
            .await?;
        // Clusters in parallel (each cluster's objects in order); one at a time under a
        // fault hook, so that "mid-apply" is exactly one cluster.
        let parallel = if settings.fault.is_some() {
            1
        } else {
            APPLY_PARALLELISM
        };
        let owners: BTreeMap<&str, Owner> = snap
            .objects
            .iter()
            .map(|o| {
                (
                    o.key.as_str(),
                    Owner {
                        kind: o.kind.kind.clone(),
                        name: o.name.clone(),
                        uid: o.uid.clone(),
                    },
                )
            })
            .collect();
        let jobs = to_apply.iter().map(|cluster| {
            let owner = owners.get(outcome.owner_of[cluster].as_str()).cloned();
            let objs = capi_objects(&files, cluster);
            async move {
                let mut applied = 0;
                for obj in objs {
                    if let Err(e) = applier.apply(&obj, owner.as_ref()).await {
                        return (cluster, applied, Some(e));
                    }
                    applied += 1;
                }
                (cluster, applied, None)
            }
        });
        let mut results = futures::stream::iter(jobs).buffer_unordered(parallel);
        let mut first = true;
        while let Some((cluster, applied, failed)) = results.next().await {
            outcome.applied += applied;
            match failed {
                Some(e) => {
                    tracing::warn!("cluster {cluster}: {e}");
                    memory.applied.remove(cluster);
                    if matches!(e, ApplyError::UnknownKind { .. }) {
                        outcome.missing_crds.insert(cluster.clone());
                    }
                    outcome.apply_errors.insert(cluster.clone(), e.to_string());
                }
                None => {
                    memory.applied.insert(
                        cluster.clone(),
                        digests.get(cluster).cloned().unwrap_or_default(),
                    );
                }
            }
            if first && settings.fault == Some(Fault::MidApply) {
                tracing::warn!("fault injected: pausing mid-apply after cluster {cluster}");
                eprintln!("ATOLL-FAULT mid-apply");
                std::future::pending::<()>().await;
            }
            first = false;
        }
    }

    // Act 3: clusters that went away. Only the CAPI Cluster is deleted at first: Cluster API
    // tears the machines down from it and needs the infrastructure objects until it is done
    // (deleting them together leaves Machines waiting for their infrastructure for good).
    // The rest — templates, ClusterResourceSets, ConfigMaps — is deleted once the Cluster is
    // gone. What is left to delete is kept in the Git directory, so a restarted operator
    // finishes a teardown it did not see begin.
    // A cluster declared again before its teardown finished is not torn down.
    teardown.pending.retain(|c, _| !clusters.contains(c));
    teardown.save()?;
    let pending: Vec<String> = teardown.pending.keys().cloned().collect();
    for cluster in pending {
        let objs = &teardown.pending[&cluster];
        let (capi, rest): (Vec<&Value>, Vec<&Value>) =
            objs.iter().partition(|o| is_capi_cluster(o));
        let mut still_there = false;
        for obj in &capi {
            applier.delete(obj).await?;
            still_there |= applier.exists(obj).await?;
        }
        if still_there {
            outcome.removing.insert(cluster.clone());
            continue;
        }
        for obj in rest.iter().rev() {
            applier.delete(obj).await?;
        }
        tracing::info!(
            "cluster {cluster}: Cluster API tore it down; deleted {} Cluster API objects",
            objs.len()
        );
        teardown.pending.remove(&cluster);
        teardown.save()?;
    }
    Ok(outcome)
}

/// Each cluster's health for upgrade waves' gates, as Cluster API reports its machines (the
/// nodes' own versions when Cluster API does not list them).
fn health(
    snap: &Snapshot,
    syncs: &BTreeMap<String, atoll_status::ClusterSync>,
) -> BTreeMap<String, atoll_pipeline::rollout::Health> {
    let full = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| s.split_once('/'))
            .is_some_and(|(r, d)| r == d)
    };
    snap.capi_phases
        .iter()
        .map(|((_, name), c)| {
            let m = &c.machines;
            let mut versions: BTreeSet<&str> = m
                .machine_versions
                .iter()
                .filter_map(|v| v.split_once('=').map(|(v, _)| v))
                .collect();
            if versions.is_empty()
                && let Some(n) = syncs.get(name).and_then(|s| s.nodes.as_ref())
            {
                versions.extend(n.versions.keys().map(String::as_str));
            }
            let version =
                (versions.len() == 1).then(|| versions.iter().next().unwrap().to_string());
            let provisioned = c.phase.as_deref() == Some("Provisioned");
            let ready = provisioned
                && m.control_plane_available
                && full(&m.control_plane)
                && full(&m.workers);
            let message = format!(
                "phase {}, control plane {} ({}), workers {} ready",
                c.phase.as_deref().unwrap_or("unknown"),
                m.control_plane.as_deref().unwrap_or("?"),
                if m.control_plane_available {
                    "available"
                } else {
                    "not available"
                },
                m.workers.as_deref().unwrap_or("?"),
            );
            (
                name.clone(),
                atoll_pipeline::rollout::Health {
                    version,
                    ready,
                    message,
                },
            )
        })
        .collect()
}

fn is_capi_cluster(obj: &Value) -> bool {
    obj["kind"] == "Cluster"
        && obj["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("cluster.x-k8s.io/"))
}

/// Clusters being torn down and the Cluster API objects atoll still has to delete for each,
/// kept in `<git dir>/atoll-teardown.json` (written before the first delete).
struct Teardown {
    path: std::path::PathBuf,
    pending: BTreeMap<String, Vec<Value>>,
    saved: Option<String>,
}

impl Teardown {
    fn load(git_dir: &std::path::Path) -> Teardown {
        let path = git_dir.join("atoll-teardown.json");
        let text = std::fs::read_to_string(&path).ok();
        // An unreadable file is treated as empty: the objects carry owner references, so
        // the garbage collector still removes them with their declaration.
        let pending = text
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        Teardown {
            path,
            pending,
            saved: text,
        }
    }

    fn save(&mut self) -> Result<(), PassError> {
        let text = serde_json::to_string(&self.pending).expect("json");
        if self.saved.as_deref() == Some(text.as_str())
            || (self.saved.is_none() && self.pending.is_empty())
        {
            return Ok(());
        }
        if self.pending.is_empty() {
            std::fs::remove_file(&self.path).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
        } else {
            let tmp = self.path.with_extension("json.tmp");
            std::fs::write(&tmp, &text).and_then(|_| std::fs::rename(&tmp, &self.path))
        }
        .map_err(|e| PassError::Io(format!("{}: {e}", self.path.display())))?;
        self.saved = if self.pending.is_empty() {
            None
        } else {
            Some(text)
        };
        Ok(())
    }
}

/// Whether the CAPI Cluster of `cluster` is still there (being torn down).
pub async fn capi_cluster_exists(
    applier: &Applier,
    namespace: &str,
    cluster: &str,
) -> Result<bool, ApplyError> {
    applier
        .exists(&serde_json::json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2",
            "kind": "Cluster",
            "metadata": {"name": cluster, "namespace": namespace},
        }))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{Object, atoll_kinds};

    /// The example fleet as the API server would hand it over, plus `extra` documents.
    fn snapshot(extra: &str) -> Snapshot {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/edge-fleet");
        let mut text = String::new();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            text.push_str(&std::fs::read_to_string(f).unwrap());
            text.push_str("\n---\n");
        }
        text.push_str(extra);
        let kinds = atoll_kinds();
        let mut objects = Vec::new();
        for (i, doc) in atoll_model::yaml::parse_documents(&text)
            .unwrap()
            .into_iter()
            .enumerate()
        {
            let mut v = doc.value;
            if !v.is_object() {
                continue;
            }
            let kind = kinds.iter().find(|k| v["kind"] == k.kind.as_str()).unwrap();
            v["metadata"]["uid"] = format!("uid-{i}").into();
            v["metadata"]["generation"] = 1.into();
            let o: kube::api::DynamicObject = serde_json::from_value(v).unwrap();
            objects.push(Object::new(kind, &o));
        }
        Snapshot {
            objects,
            capi_phases: Default::default(),
        }
    }

    fn settings() -> Settings {
        Settings {
            repo: PathBuf::new(),
            bare: true,
            upstream_base: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples/edge-fleet"),
            upstream_roots: atoll_pipeline::canonical_roots(vec![
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
            ]),
            remote: None,
            fault: None,
        }
    }

    #[test]
    fn bad_declarations_are_set_aside_and_the_rest_renders() {
        let upstream =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/upstream-packages");
        if !upstream.join(".git").exists() {
            let st = std::process::Command::new("bash")
                .arg(
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../../examples/upstream-packages/make-repo.sh"),
                )
                .arg(&upstream)
                .status()
                .unwrap();
            assert!(st.success());
        }
        let snap = snapshot(
            "apiVersion: atoll.dev/v1alpha1\nkind: Cluster\nmetadata: {name: ghost}\nspec: {catalog: no-such-catalog}\n---\n\
             apiVersion: atoll.dev/v1alpha1\nkind: Application\nmetadata: {name: haunt, namespace: retail}\nspec: {clusters: [ghost], components: [{name: web, image: nginx:1.27}]}\n",
        );
        let mut invalid = BTreeMap::new();
        let mut pipeline = Pipeline::detached(settings().options());
        let (model, out) = orient(&snap, &mut pipeline, &mut invalid).unwrap();
        let out = out.change;
        // The cluster with the dangling catalog, and the application naming that cluster.
        assert_eq!(
            invalid.keys().collect::<Vec<_>>(),
            ["Application/retail/haunt", "Cluster/ghost"]
        );
        assert!(
            invalid["Cluster/ghost"][0].contains("no-such-catalog"),
            "{invalid:?}"
        );
        assert!(
            invalid["Application/retail/haunt"][0].contains("ghost"),
            "{invalid:?}"
        );
        // Everything else is rendered as from files.
        assert_eq!(model.clusters.len(), 13);
        assert_eq!(out.clusters.len(), 13);
        assert!(!out.clusters.contains("ghost"));
    }

    #[test]
    fn deleting_objects_leave_the_model() {
        let mut snap = snapshot("");
        for o in &mut snap.objects {
            if o.key == "Cluster/edge-newark" || o.key == "Cluster/edge-paris" {
                o.deleting = true;
            }
        }
        let mut invalid = BTreeMap::new();
        let mut pipeline = Pipeline::detached(settings().options());
        let (model, _) = orient(&snap, &mut pipeline, &mut invalid).unwrap();
        assert!(!model.clusters.contains_key("edge-newark"));
        assert!(!model.clusters.contains_key("edge-paris"));
        assert_eq!(model.clusters.len(), 11);
        // edge-paris is linked in a LogicalCluster: that one is set aside, saying why.
        assert_eq!(
            invalid.keys().collect::<Vec<_>>(),
            ["LogicalCluster/eu-west-edge"]
        );
        assert!(invalid["LogicalCluster/eu-west-edge"][0].contains("edge-paris"));
    }
}
