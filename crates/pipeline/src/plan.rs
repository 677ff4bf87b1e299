//! The per-cluster plan: two trees (path → bytes) in, what changes per cluster out, and the
//! commit message that says it. Pure: the CLI's `plan`, the server's dry runs and every commit
//! message come from here.

use atoll_layout::cluster_of;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// How one file changes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileChange {
    /// The file's path in the repository.
    pub path: String,
    /// Whether it comes, changes or goes.
    pub change: ChangeKind,
    /// Unified diff of the text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
}

/// What happens to a file.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// New in this change.
    Added,
    /// Its contents change.
    Modified,
    /// It goes.
    Removed,
}

/// Whose files a [`ClusterPlan`] lists. Fleet-level files sort first, as `(fleet)`, the name
/// they are shown and serialised under, sorts before every cluster name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PlanScope {
    /// Files that belong to no cluster (`state/allocations.yaml`, `state/inputs.tsv`).
    Fleet,
    /// One cluster's files.
    Cluster(String),
}

impl PlanScope {
    /// The cluster's name; `(fleet)` for the fleet-level files.
    pub fn as_str(&self) -> &str {
        match self {
            PlanScope::Fleet => "(fleet)",
            PlanScope::Cluster(c) => c,
        }
    }

    /// The cluster, unless these are the fleet-level files.
    pub fn cluster(&self) -> Option<&str> {
        match self {
            PlanScope::Fleet => None,
            PlanScope::Cluster(c) => Some(c),
        }
    }
}

impl std::fmt::Display for PlanScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PlanScope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What happens to a cluster as a whole.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum PlanStatus {
    /// All its files are new.
    New,
    /// Some of its files change.
    #[default]
    Changed,
    /// All its files go.
    Removed,
}

/// Changes of one cluster, or of the files that belong to none.
/// How one cluster's package (or the fleet's own files) changes.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterPlan {
    /// Whose files these are (serialised as the cluster's name, or `(fleet)`).
    pub cluster: PlanScope,
    /// Files added.
    pub added: usize,
    /// Files modified.
    pub modified: usize,
    /// Files removed.
    pub removed: usize,
    /// The cluster as a whole.
    pub status: PlanStatus,
    /// Each file's change, by path.
    pub files: Vec<FileChange>,
}

impl PlanStatus {
    /// The word `atoll plan` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::New => "new",
            PlanStatus::Changed => "changed",
            PlanStatus::Removed => "removed",
        }
    }
}

impl ClusterPlan {
    /// Whether these are the fleet-level files rather than a cluster's.
    pub fn is_fleet(&self) -> bool {
        self.cluster == PlanScope::Fleet
    }
}

/// Compares `old` and `new` trees, per cluster. `with_diff` adds unified text diffs.
pub fn plan<A: AsRef<[u8]>, B: AsRef<[u8]>>(
    old: &BTreeMap<String, A>,
    new: &BTreeMap<String, B>,
    with_diff: bool,
) -> Vec<ClusterPlan> {
    // Which clusters exist before and after, computed once: a per-cluster scan of every path
    // would be quadratic in fleet size.
    let in_old: BTreeSet<&str> = old.keys().filter_map(|k| cluster_of(k)).collect();
    let in_new: BTreeSet<&str> = new.keys().filter_map(|k| cluster_of(k)).collect();
    plan_changed(old, new, with_diff, &in_old, &in_new)
}

/// [`plan`] over only the files that differ (`old` and `new` may leave out every file that is
/// the same on both sides), given which clusters have files before and after.
pub fn plan_changed<KA, KB, A, B>(
    old: &BTreeMap<KA, A>,
    new: &BTreeMap<KB, B>,
    with_diff: bool,
    in_old: &BTreeSet<&str>,
    in_new: &BTreeSet<&str>,
) -> Vec<ClusterPlan>
where
    KA: std::borrow::Borrow<str> + Ord,
    KB: std::borrow::Borrow<str> + Ord,
    A: AsRef<[u8]>,
    B: AsRef<[u8]>,
{
    let mut by: BTreeMap<PlanScope, ClusterPlan> = BTreeMap::new();
    let mut add = |path: &str, change: ChangeKind, diff: String| {
        let key = cluster_of(path).map_or(PlanScope::Fleet, |c| PlanScope::Cluster(c.into()));
        let p = by.entry(key.clone()).or_insert_with(|| ClusterPlan {
            cluster: key,
            added: 0,
            modified: 0,
            removed: 0,
            status: PlanStatus::default(),
            files: Vec::new(),
        });
        match change {
            ChangeKind::Added => p.added += 1,
            ChangeKind::Modified => p.modified += 1,
            ChangeKind::Removed => p.removed += 1,
        }
        p.files.push(FileChange {
            path: path.to_string(),
            change,
            diff,
        });
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (path, nb) in new {
        let path: &str = path.borrow();
        match old.get(path) {
            None => add(
                path,
                ChangeKind::Added,
                if with_diff {
                    unified("", &text(nb.as_ref()), path)
                } else {
                    String::new()
                },
            ),
            Some(ob) if ob.as_ref() != nb.as_ref() => add(
                path,
                ChangeKind::Modified,
                if with_diff {
                    unified(&text(ob.as_ref()), &text(nb.as_ref()), path)
                } else {
                    String::new()
                },
            ),
            _ => {}
        }
    }
    for (path, ob) in old {
        let path: &str = path.borrow();
        if !new.contains_key(path) {
            add(
                path,
                ChangeKind::Removed,
                if with_diff {
                    unified(&text(ob.as_ref()), "", path)
                } else {
                    String::new()
                },
            );
        }
    }
    let mut out: Vec<ClusterPlan> = by.into_values().collect();
    for p in &mut out {
        let total = p.files.len();
        let fleet = p.is_fleet();
        p.status = if !fleet && p.added == total && !in_old.contains(p.cluster.as_str()) {
            PlanStatus::New
        } else if !fleet && p.removed == total && !in_new.contains(p.cluster.as_str()) {
            PlanStatus::Removed
        } else {
            PlanStatus::Changed
        };
        p.files.sort_by(|a, b| a.path.cmp(&b.path));
    }
    out
}

fn unified(a: &str, b: &str, path: &str) -> String {
    similar::TextDiff::from_lines(a, b)
        .unified_diff()
        .context_radius(2)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

/// A commit message that says what changed per cluster.
pub fn commit_message(plans: &[ClusterPlan], note: Option<&str>) -> String {
    let new = plans.iter().filter(|p| p.status == PlanStatus::New).count();
    let removed = plans
        .iter()
        .filter(|p| p.status == PlanStatus::Removed)
        .count();
    let changed = plans
        .iter()
        .filter(|p| p.status == PlanStatus::Changed && !p.is_fleet())
        .count();
    let mut msg = format!(
        "atoll: render fleet ({new} new, {changed} changed, {removed} removed clusters)\n\n"
    );
    if let Some(n) = note {
        msg.push_str(n);
        msg.push_str("\n\n");
    }
    const MAX: usize = 200;
    for p in plans.iter().take(MAX) {
        msg.push_str(&format!(
            "{}: {} (+{} ~{} -{})\n",
            p.cluster,
            p.status.as_str(),
            p.added,
            p.modified,
            p.removed
        ));
    }
    if plans.len() > MAX {
        msg.push_str(&format!("… and {} more\n", plans.len() - MAX));
    }
    msg
}
