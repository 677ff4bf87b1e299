//! From a validated model to a Git change, the one path every shell takes: read what the
//! fleet repository's HEAD says about the last render (allocations, per-cluster input
//! digests, which clusters exist), fetch upstream packages, render incrementally with the
//! engine, and turn the output into a [`TreeEdit`] plus a per-cluster plan. The CLI's
//! `render`/`plan` and the operator both call it, so they cannot drift apart.

pub mod cache;
pub mod plan;
pub mod rollout;
mod run;

pub use run::{Committed, Failure, Options, Pipeline, Plan, PublishState, Reuse};

use atoll_engine::ipam::Allocations;
use atoll_engine::memo::RenderMemo;
use atoll_engine::packages::Fetched;
use atoll_gitops::{FleetRepo, TreeEdit};
use atoll_layout::cluster_of;
use atoll_model::{Diagnostics, Model, Origin, UpstreamPackage};
use plan::ClusterPlan;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the pipeline could not plan or commit (beyond errors on declarations).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The fleet repository's own state file cannot be read back.
    #[error("{file}: {message}")]
    State {
        /// The state file's path in the repository.
        file: String,
        /// What is wrong with it.
        message: String,
    },
    /// An upstream package is not allowed or could not be read: an error at the declaring
    /// field (`spec.kpt.repo`, `spec.upstream.revision`…).
    #[error("{0}")]
    Upstream(atoll_model::Diagnostic),
    /// Reading or writing the fleet repository failed.
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
    /// Files under atoll's folders that changed since atoll's last render (a hand edit
    /// committed, another tool's commit): the clusters they belong to are rendered again and
    /// the other files restored, so the next commit undoes the drift.
    #[serde(default)]
    pub drift: Vec<String>,
    /// The tree of atoll's last render when HEAD has drifted from it (what the drifted
    /// fleet-level files are restored from).
    #[serde(default)]
    pub rendered_tree: Option<String>,
}

/// How far back along HEAD's history atoll looks for its own last render.
const MAX_HISTORY_WALK: usize = 1000;

impl HeadState {
    /// Reads the state of atoll's last render (HEAD's, unless other commits came on top of
    /// it: then theirs is drift) and which clusters HEAD holds. Without a repository, or with
    /// `full`, every cluster is rendered again.
    pub fn read(fleet: Option<&FleetRepo>, full: bool) -> Result<HeadState, Error> {
        let Some(f) = fleet else {
            return Ok(HeadState::default());
        };
        let Some((head_commit, head_tree)) = f.head()? else {
            return Ok(HeadState::default());
        };
        let (state_tree, drift) = match f.last_rendered(MAX_HISTORY_WALK)? {
            Some((c, t)) if c != head_commit => (
                t,
                f.changed_paths(t, head_tree, &atoll_gitops::OWNED_ROOTS)?,
            ),
            Some((_, t)) => (t, Vec::new()),
            // No render of atoll's in reach: HEAD is all there is to trust.
            None => (head_tree, Vec::new()),
        };
        let allocations = match f.file_at(state_tree, atoll_engine::ALLOCATIONS_FILE)? {
            Some(bytes) => parse_allocations(&bytes).map_err(|message| Error::State {
                file: atoll_engine::ALLOCATIONS_FILE.into(),
                message,
            })?,
            None => Allocations::default(),
        };
        let mut clusters = BTreeSet::new();
        for dir in atoll_layout::CLUSTER_LISTINGS {
            for n in f.head_names(dir)? {
                clusters.insert(n.strip_suffix(".yaml").unwrap_or(&n).to_string());
            }
        }
        let mut inputs = match f.file_at(state_tree, atoll_engine::INPUTS_FILE)? {
            Some(b) => atoll_engine::parse_inputs(&String::from_utf8_lossy(&b)),
            None => BTreeMap::new(),
        };
        let drifted: BTreeSet<&str> = drift.iter().filter_map(|p| cluster_of(p)).collect();
        // A cluster whose folder went missing from the repository, or whose files drifted,
        // is rendered again.
        inputs.retain(|c, _| !full && clusters.contains(c) && !drifted.contains(c.as_str()));
        Ok(HeadState {
            allocations,
            inputs,
            clusters,
            rendered_tree: (state_tree != head_tree && !drift.is_empty())
                .then(|| state_tree.to_string()),
            drift,
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
    /// Files that drifted from atoll's last render and that this change puts back.
    pub drift: Vec<String>,
    /// Upgrade waves in progress, after this change.
    pub rollouts: Vec<rollout::Report>,
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
            if cluster_of(p).is_none() {
                edit.replace.insert(p.clone());
            }
        }
        for p in &head.drift {
            edit.replace.insert(p.clone());
        }
    }
    edit.files = out
        .files
        .into_iter()
        .map(|(p, s)| (p, Arc::<[u8]>::from(s)))
        .collect();
    // A drifted file the render did not write again (a fleet-level state file unchanged
    // since the last render) is put back as atoll last wrote it, or removed if it never did.
    if let (Some(f), Some(tree)) = (fleet, &head.rendered_tree) {
        let tree = atoll_gitops::ObjectId::from_hex(tree.as_bytes()).map_err(|e| Error::State {
            file: "HEAD".into(),
            message: e.to_string(),
        })?;
        for p in &head.drift {
            let rerendered = cluster_of(p)
                .is_some_and(|c| out.rendered.contains(c) || !out.clusters.contains(c));
            if !edit.files.contains_key(p)
                && !rerendered
                && let Some(bytes) = f.file_at(tree, p)?
            {
                edit.files.insert(p.clone(), Arc::from(bytes));
            }
        }
    }
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
    let in_old: BTreeSet<&str> = old_ids.keys().filter_map(|k| cluster_of(k)).collect();
    let in_new: BTreeSet<&str> = edit.files.keys().filter_map(|k| cluster_of(k)).collect();
    let plans = plan::plan_changed(&old, &new, with_diff, &in_old, &in_new);
    Ok(Change {
        edit,
        plans,
        after: HeadState {
            allocations: out.allocations,
            inputs: out.inputs,
            clusters: out.clusters.clone(),
            ..Default::default()
        },
        clusters: out.clusters,
        rendered: out.rendered,
        removed,
        placements: out.placements,
        memo: out.memo,
        drift: head.drift.clone(),
        rollouts: Vec::new(),
    })
}

/// The minor version of `v1.35.2`.
fn minor(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim_start_matches('v').split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Clusters whose Kubernetes version the render moves by more than one minor (or down):
/// Cluster API upgrades one minor at a time and never downgrades — a KubeadmControlPlane
/// webhook refuses the skip while the MachineDeployment in the same apply is accepted,
/// leaving a half-upgraded cluster. The current version is what HEAD's
/// `state/clusters/<c>.yaml` says.
pub fn version_skips(
    model: &Model,
    repo: &FleetRepo,
    out: &atoll_engine::Output,
) -> Result<Vec<atoll_model::Diagnostic>, Error> {
    let Some((_, tree)) = repo.head()? else {
        return Ok(Vec::new());
    };
    let version = |bytes: &[u8]| -> Option<String> {
        let v = atoll_model::yaml::parse_values(&String::from_utf8_lossy(bytes)).ok()?;
        v.first()?["kubernetesVersion"]["value"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut out_diags = Vec::new();
    for c in &out.rendered {
        let path = atoll_layout::state_file(c);
        let (Some(new), Some(old)) = (
            out.files.get(&path).and_then(|b| version(b.as_bytes())),
            repo.file_at(tree, &path)?.and_then(|b| version(&b)),
        ) else {
            continue;
        };
        let (Some(n), Some(o)) = (minor(&new), minor(&old)) else {
            continue;
        };
        let why = if n.0 != o.0 || n.1 > o.1 + 1 {
            format!(
                "Kubernetes {old} → {new} skips a minor version; Cluster API upgrades one minor at a time: go to v{}.{} first, then on",
                o.0,
                o.1 + 1
            )
        } else if n.1 < o.1 {
            format!("Kubernetes {old} → {new} is a downgrade, which Cluster API does not do")
        } else {
            continue;
        };
        if let Some(d) = model.clusters.get(c) {
            let at = if d.origin.prefix.is_empty() {
                "spec"
            } else {
                ""
            };
            out_diags.push(d.origin.error(at, format!("cluster `{c}`: {why}")));
        }
    }
    Ok(out_diags)
}

/// Where upstream packages may be read from.
#[derive(Debug, Clone)]
pub struct UpstreamSources {
    /// What a relative repository path is resolved against.
    pub base: UpstreamBase,
    /// A local repository must lie under one of these folders (after resolving `..` and
    /// symbolic links); none: no local repository is allowed.
    pub roots: Vec<PathBuf>,
}

/// What a relative upstream repository path is resolved against.
#[derive(Debug, Clone)]
pub enum UpstreamBase {
    /// The folder of the file that declares it (declarations read from files).
    DeclaringFile,
    /// One folder (declarations held by `atoll serve` or the operator).
    Folder(PathBuf),
}

impl UpstreamSources {
    /// Relative paths against the declaring file's folder, local repositories under `roots`.
    pub fn files(roots: Vec<PathBuf>) -> UpstreamSources {
        UpstreamSources {
            base: UpstreamBase::DeclaringFile,
            roots: canonical_roots(roots),
        }
    }

    /// Relative paths against `base`, local repositories under `roots`.
    pub fn folder(base: PathBuf, roots: Vec<PathBuf>) -> UpstreamSources {
        UpstreamSources {
            base: UpstreamBase::Folder(base),
            roots: canonical_roots(roots),
        }
    }

    fn base_of(&self, origin: &Origin) -> PathBuf {
        match &self.base {
            UpstreamBase::DeclaringFile => file_base(origin),
            UpstreamBase::Folder(f) => f.clone(),
        }
    }
}

/// The roots as the file system sees them (missing ones are dropped: nothing lies under
/// them).
pub fn canonical_roots(roots: Vec<PathBuf>) -> Vec<PathBuf> {
    roots
        .into_iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect()
}

/// Reads every upstream package from its Git repository at its pinned revision. A relative
/// repository path is resolved against `sources.base(origin)` of the first declaration naming
/// it. The source is checked first: a local repository must lie under one of the allowed
/// roots, a remote URL must start with one of the Fleet's `upstreams.allowedRemotes` (and this
/// build reads local repositories only); anything else is an error at the declaring field.
pub fn fetch_upstreams(
    m: &Model,
    sources: &UpstreamSources,
) -> Result<BTreeMap<UpstreamPackage, Fetched>, Error> {
    let mut declared_in: BTreeMap<UpstreamPackage, (&Origin, &str)> = BTreeMap::new();
    for pv in m.package_variants.values() {
        declared_in
            .entry(pv.spec.upstream.clone())
            .or_insert((&pv.origin, "spec.upstream"));
    }
    for a in m.applications.values() {
        if let Some(k) = &a.spec.kpt {
            declared_in
                .entry(k.clone())
                .or_insert((&a.origin, "spec.kpt"));
        }
    }
    let allowed_remotes: &[String] = m
        .fleet
        .upstreams
        .as_ref()
        .map_or(&[], |u| u.allowed_remotes.as_slice());
    let mut out = BTreeMap::new();
    for (up, (origin, at)) in declared_in {
        let fail = |field: &str, message: String| {
            Error::Upstream(origin.error(&format!("{at}.{field}"), message))
        };
        let repo = up.repo.strip_prefix("file://").unwrap_or(&up.repo);
        if repo.contains("://") || repo.starts_with("git@") {
            if !allowed_remotes
                .iter()
                .any(|p| !p.is_empty() && up.repo.starts_with(p.as_str()))
            {
                return Err(fail(
                    "repo",
                    format!(
                        "remote repository `{}` is not allowed: the Fleet's spec.upstreams.allowedRemotes ({}) has no prefix of it",
                        up.repo,
                        if allowed_remotes.is_empty() {
                            "empty".to_string()
                        } else {
                            allowed_remotes.join(", ")
                        }
                    ),
                ));
            }
            return Err(fail(
                "repo",
                format!(
                    "upstream repository `{}` is remote; this build reads local repositories only (clone it under an upstream root and give its path)",
                    up.repo
                ),
            ));
        }
        let path = if Path::new(repo).is_absolute() {
            PathBuf::from(repo)
        } else {
            sources.base_of(origin).join(repo)
        };
        let real = std::fs::canonicalize(&path).map_err(|e| {
            fail(
                "repo",
                format!(
                    "upstream repository `{}` ({}): {e}",
                    up.repo,
                    path.display()
                ),
            )
        })?;
        if !sources.roots.iter().any(|r| real.starts_with(r)) {
            return Err(fail(
                "repo",
                format!(
                    "upstream repository `{}` ({}) is outside the allowed upstream roots ({}); allow its folder with --upstream-root (CLI) or --upstream-base (serve, operator)",
                    up.repo,
                    real.display(),
                    if sources.roots.is_empty() {
                        "none".to_string()
                    } else {
                        sources
                            .roots
                            .iter()
                            .map(|r| r.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ));
        }
        let (commit, files) = atoll_gitops::read_package(&real, &up.package, &up.revision)
            .map_err(|e| {
                let field = match &e {
                    atoll_gitops::GitError::Revision { .. } => "revision",
                    atoll_gitops::GitError::NoPackage { .. }
                    | atoll_gitops::GitError::Unsafe { .. } => "package",
                    _ => "repo",
                };
                fail(
                    field,
                    format!(
                        "reading upstream package {}/{}@{}: {e}",
                        up.repo, up.package, up.revision
                    ),
                )
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
