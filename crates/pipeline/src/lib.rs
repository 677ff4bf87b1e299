//! From a validated model to a Git change, the one path every shell takes: read what the
//! fleet repository's HEAD says about the last render (allocations, per-cluster input
//! digests, which clusters exist), fetch upstream packages, render incrementally with the
//! engine, and turn the output into a [`TreeEdit`] plus a per-cluster plan. The CLI's
//! `render`/`plan` and the operator both call it, so they cannot drift apart.

pub mod cache;

use atoll_engine::ipam::Allocations;
use atoll_engine::memo::RenderMemo;
use atoll_engine::packages::Fetched;
use atoll_gitops::{ClusterPlan, FleetRepo, TreeEdit};
use atoll_model::{Diagnostics, Model, Origin, UpstreamPackage};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The fleet repository's own state file cannot be read back.
    #[error("{file}: {message}")]
    State { file: String, message: String },
    /// An upstream package could not be read.
    #[error("{file}: {object}: {message}")]
    Upstream {
        /// Where the declaration naming the package came from.
        file: String,
        /// `Kind/name` of that declaration.
        object: String,
        message: String,
    },
    #[error(transparent)]
    Git(#[from] atoll_gitops::GitError),
}

/// What HEAD says about the last render.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct HeadState {
    /// Allocations committed by the last render (kept stable across renders).
    pub allocations: Allocations,
    /// Input digests of clusters whose files are in HEAD; empty means "render everything".
    pub inputs: BTreeMap<String, String>,
    /// Clusters with any file in HEAD.
    pub clusters: BTreeSet<String>,
}

impl HeadState {
    /// Reads HEAD's state files and folder listings. Without a repository, or with `full`,
    /// every cluster is rendered again.
    pub fn read(fleet: Option<&FleetRepo>, full: bool) -> Result<HeadState, Error> {
        let Some(f) = fleet else {
            return Ok(HeadState::default());
        };
        let allocations = match f.head_file(atoll_engine::ALLOCATIONS_FILE)? {
            Some(bytes) => parse_allocations(&bytes).map_err(|message| Error::State {
                file: atoll_engine::ALLOCATIONS_FILE.into(),
                message,
            })?,
            None => Allocations::default(),
        };
        let mut clusters = BTreeSet::new();
        for dir in [
            "clusters",
            "management/clusters",
            "management/gitops",
            "state/clusters",
        ] {
            for n in f.head_names(dir)? {
                clusters.insert(n.strip_suffix(".yaml").unwrap_or(&n).to_string());
            }
        }
        let mut inputs = match f.head_file(atoll_engine::INPUTS_FILE)? {
            Some(b) => atoll_engine::parse_inputs(&String::from_utf8_lossy(&b)),
            None => BTreeMap::new(),
        };
        // A cluster whose folder went missing from the repository is rendered again.
        inputs.retain(|c, _| !full && clusters.contains(c));
        Ok(HeadState {
            allocations,
            inputs,
            clusters,
        })
    }
}

fn parse_allocations(bytes: &[u8]) -> Result<Allocations, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let docs = atoll_model::yaml::parse_values(text)
        .map_err(|e| format!("line {}: {}", e.line, e.message))?;
    match docs.into_iter().next() {
        Some(v) => serde_json::from_value(v).map_err(|e| e.to_string()),
        None => Ok(Allocations::default()),
    }
}

/// Renders the model against HEAD's state, reusing what `memo` remembers of the last render.
/// Engine errors are diagnostics on declarations.
pub fn render(
    model: &Model,
    head: &HeadState,
    upstreams: &BTreeMap<UpstreamPackage, Fetched>,
    memo: Option<&RenderMemo>,
) -> Result<atoll_engine::Output, Diagnostics> {
    atoll_engine::render(&atoll_engine::Inputs {
        model,
        previous: &head.allocations,
        upstreams,
        previous_inputs: &head.inputs,
        memo,
    })
}

/// What a render changes in the repository.
#[derive(Debug, Default)]
pub struct Change {
    /// The edit to HEAD's tree.
    pub edit: TreeEdit,
    /// Per cluster: files added, changed, removed.
    pub plans: Vec<ClusterPlan>,
    /// Every cluster of the fleet after the change.
    pub clusters: BTreeSet<String>,
    /// Clusters whose files were rendered again.
    pub rendered: BTreeSet<String>,
    /// Clusters in HEAD that the change removes.
    pub removed: BTreeSet<String>,
    /// Cluster → `team/app` placed on it.
    pub placements: atoll_engine::Placements,
    /// What HEAD will say once the change is committed.
    pub after: HeadState,
    /// What the next render may reuse.
    pub memo: RenderMemo,
}

/// Turns a render into a tree edit: only the clusters that changed, appeared or went away are
/// replaced (with atoll's fleet-level files), so files of unchanged clusters are not even read.
pub fn change(
    head: &HeadState,
    out: atoll_engine::Output,
    fleet: Option<&FleetRepo>,
    with_diff: bool,
) -> Result<Change, Error> {
    let mut edit = TreeEdit::default();
    let removed: BTreeSet<String> = head.clusters.difference(&out.clusters).cloned().collect();
    if head.inputs.is_empty() {
        edit.replace = atoll_engine::OWNED_DIRS
            .iter()
            .map(|d| d.to_string())
            .collect();
    } else {
        for c in out.rendered.iter().chain(&removed) {
            edit.replace.extend(atoll_engine::cluster_paths(c));
        }
        for p in out.files.keys() {
            if atoll_gitops::cluster_of(p).is_none() {
                edit.replace.insert(p.clone());
            }
        }
    }
    edit.files = out
        .files
        .into_iter()
        .map(|(p, s)| (p, Arc::<[u8]>::from(s)))
        .collect();
    let old_ids = match fleet {
        Some(f) => f.head_ids_under(edit.replace.iter().map(String::as_str))?,
        None => BTreeMap::new(),
    };
    // A file whose blob is already at its path is unchanged: it is neither read nor diffed.
    let unchanged: BTreeSet<&str> = edit
        .files
        .par_iter()
        .filter(|(p, b)| {
            old_ids
                .get(p.as_str())
                .is_some_and(|id| *id == atoll_gitops::blob_id(b))
        })
        .map(|(p, _)| p.as_str())
        .collect();
    let changed_ids: BTreeMap<String, _> = old_ids
        .iter()
        .filter(|(p, _)| !unchanged.contains(p.as_str()))
        .map(|(p, id)| (p.clone(), *id))
        .collect();
    let old = match fleet {
        Some(f) => f.read_blobs(&changed_ids)?,
        None => BTreeMap::new(),
    };
    let new: BTreeMap<&str, &Arc<[u8]>> = edit
        .files
        .iter()
        .filter(|(p, _)| !unchanged.contains(p.as_str()))
        .map(|(p, b)| (p.as_str(), b))
        .collect();
    let in_old: BTreeSet<&str> = old_ids
        .keys()
        .filter_map(|k| atoll_gitops::cluster_of(k))
        .collect();
    let in_new: BTreeSet<&str> = edit
        .files
        .keys()
        .filter_map(|k| atoll_gitops::cluster_of(k))
        .collect();
    let plans = atoll_gitops::plan_changed(&old, &new, with_diff, &in_old, &in_new);
    Ok(Change {
        edit,
        plans,
        after: HeadState {
            allocations: out.allocations,
            inputs: out.inputs,
            clusters: out.clusters.clone(),
        },
        clusters: out.clusters,
        rendered: out.rendered,
        removed,
        placements: out.placements,
        memo: out.memo,
    })
}

/// Reads every upstream package from its Git repository at its pinned revision. A relative
/// repository path is resolved against `base(origin)` of the first declaration naming it;
/// this build reads local repositories only.
pub fn fetch_upstreams(
    m: &Model,
    base: &dyn Fn(&Origin) -> PathBuf,
) -> Result<BTreeMap<UpstreamPackage, Fetched>, Error> {
    let mut declared_in: BTreeMap<UpstreamPackage, &Origin> = BTreeMap::new();
    for pv in m.package_variants.values() {
        declared_in
            .entry(pv.spec.upstream.clone())
            .or_insert(&pv.origin);
    }
    for a in m.applications.values() {
        if let Some(k) = &a.spec.kpt {
            declared_in.entry(k.clone()).or_insert(&a.origin);
        }
    }
    let mut out = BTreeMap::new();
    for (up, origin) in declared_in {
        let fail = |message: String| Error::Upstream {
            file: origin.file.to_string(),
            object: origin.object.to_string(),
            message,
        };
        let repo = up.repo.strip_prefix("file://").unwrap_or(&up.repo);
        if repo.contains("://") || repo.starts_with("git@") {
            return Err(fail(format!(
                "upstream repository `{}` is remote; this build reads local repositories only (clone it and give its path)",
                up.repo
            )));
        }
        let path = if Path::new(repo).is_absolute() {
            PathBuf::from(repo)
        } else {
            base(origin).join(repo)
        };
        let (commit, files) = atoll_gitops::read_package(&path, &up.package, &up.revision)
            .map_err(|e| {
                fail(format!(
                    "reading upstream package {}/{}@{}: {e}",
                    up.repo, up.package, up.revision
                ))
            })?;
        out.insert(up, Fetched { commit, files });
    }
    Ok(out)
}

/// The base of relative upstream paths for declarations read from files: the declaring
/// file's folder.
pub fn file_base(origin: &Origin) -> PathBuf {
    Path::new(&*origin.file)
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}
