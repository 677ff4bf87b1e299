//! Upgrade waves (seed 001's zero-downtime upgrade of edge sites). A render that changes the
//! machines of existing clusters (their `infrastructure.yaml`, `control-plane.yaml` or
//! `workers.yaml`: a Kubernetes version, an image, a size) under a rollout policy does not
//! commit all of them: the clusters are ordered by the policy's labels and cut into waves of
//! `maxUnavailable`, and only released waves get their new spec in Git. Clusters not yet
//! reached keep HEAD's Cluster API objects and effective spec, and an input digest that never
//! matches, so every later render looks at them again. A wave is released once every cluster
//! of the previous one is healthy — on the new Kubernetes version with every machine ready,
//! as the shell observed it — and has stayed so for the bake time. Where the rollout stands
//! is committed in [`ROLLOUT_FILE`], so any shell, or a restarted one, goes on from there.
//!
//! Only a shell that observes the clusters (the operator) can judge a gate: `atoll render`
//! and `atoll serve` release the first wave and hold the rest.

use crate::Error;
use atoll_engine::Output;
use atoll_gitops::FleetRepo;
pub use atoll_layout::ROLLOUT_FILE;
use atoll_model::{Model, RolloutPolicy};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The input digest recorded for a held cluster: never a real digest, so it is rendered
/// again (and judged again) by every later render.
pub const HELD: &str = "held-by-rollout";

/// Default time a wave may take to pass its gate.
const DEFAULT_DEADLINE: u64 = 30 * 60;

/// What is committed in [`ROLLOUT_FILE`]: one rollout per policy (`fleet`, or
/// `catalog/<name>` for a catalog with its own).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutState {
    /// Each policy's rollout (`fleet` or `catalog/<name>`).
    #[serde(default)]
    pub rollouts: BTreeMap<String, Rollout>,
}

/// One rollout in progress.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// The clusters of each wave, in order.
    pub waves: Vec<Vec<String>>,
    /// How many waves have their new spec in Git.
    pub released: usize,
    /// When the last wave was released (Unix seconds).
    pub released_at: u64,
    /// Since when the last released wave has passed its gate (the bake started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_since: Option<u64>,
    /// Why the rollout stopped: the last released wave missed its deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// A cluster as the shell observed it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// The one Kubernetes version every machine runs (none while several do).
    pub version: Option<String>,
    /// Every machine ready: control plane available, workers ready as desired.
    pub ready: bool,
    /// What is not ready yet, in Cluster API's words.
    pub message: String,
}

/// What the shell knows of the clusters when it plans.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Unix seconds.
    pub now: u64,
    /// Per cluster; `None` when this shell does not observe clusters (gates cannot pass).
    pub health: Option<BTreeMap<String, Health>>,
}

impl Observed {
    /// No observation, at the current time (what `atoll render` and `atoll serve` use).
    pub fn none() -> Observed {
        Observed {
            now: now(),
            health: None,
        }
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where a rollout stands.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The last released wave is being rolled by Cluster API (or its gate is not judged).
    Rolling,
    /// The last released wave is healthy; the next is released after the bake time.
    Baking,
    /// `paused`: no further wave is released.
    Paused,
    /// The last released wave missed its deadline; the rest is left untouched.
    Failed,
    /// Every wave is released.
    Complete,
}

impl Phase {
    /// The phase as the status and `atoll plan` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Rolling => "Rolling",
            Phase::Baking => "Baking",
            Phase::Paused => "Paused",
            Phase::Failed => "Failed",
            Phase::Complete => "Complete",
        }
    }
}

/// A rollout as a plan, the status and `atoll plan` describe it.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `fleet` or `catalog/<name>`.
    pub policy: String,
    /// The clusters of each wave, in order.
    pub waves: Vec<Vec<String>>,
    /// Waves whose new spec is in Git after this change.
    pub released: usize,
    /// Where the rollout stands.
    pub phase: Phase,
    /// Why, in a sentence (what it waits for, what failed).
    pub message: String,
    /// Clusters of the last released wave that are not healthy.
    pub waiting_on: Vec<String>,
}

impl Report {
    /// The wave (1-based) `cluster` is in, and whether it is released.
    pub fn wave_of(&self, cluster: &str) -> Option<(usize, bool)> {
        self.waves
            .iter()
            .position(|w| w.iter().any(|c| c == cluster))
            .map(|i| (i + 1, i < self.released))
    }

    /// One line: `wave 1/2 Rolling: wave 1 lab-a (released); wave 2 lab-b (held)`.
    pub fn summary(&self) -> String {
        let waves: Vec<String> = self
            .waves
            .iter()
            .enumerate()
            .map(|(i, w)| {
                format!(
                    "wave {} {} ({})",
                    i + 1,
                    w.join(","),
                    if i < self.released {
                        "released"
                    } else {
                        "held"
                    }
                )
            })
            .collect();
        format!(
            "rollout ({}): {} of {} waves released, {}: {}; {}",
            self.policy,
            self.released,
            self.waves.len(),
            self.phase.as_str(),
            self.message,
            waves.join("; ")
        )
    }
}

fn secs(v: &Option<String>, default: u64) -> u64 {
    v.as_deref()
        .and_then(atoll_model::parse_duration)
        .unwrap_or(default)
}

/// The policy that governs `cluster`: its catalog's, else the Fleet's.
fn policy_of<'m>(model: &'m Model, cluster: &str) -> Option<(String, &'m RolloutPolicy)> {
    let decl = model.clusters.get(cluster)?;
    if let Some(cat) = &decl.spec.catalog
        && let Some(p) = model
            .catalogs
            .get(cat)
            .and_then(|c| c.spec.rollout.as_ref())
    {
        return Some((format!("catalog/{cat}"), p));
    }
    model.fleet.rollout.as_ref().map(|p| ("fleet".into(), p))
}

fn version_in(bytes: &[u8]) -> Option<String> {
    let v = atoll_model::yaml::parse_values(&String::from_utf8_lossy(bytes)).ok()?;
    v.first()?["kubernetesVersion"]["value"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Holds back the clusters of waves not yet released, advances waves whose gate passed, and
/// writes where each rollout stands. Does nothing for a fleet without a rollout policy.
pub fn apply(
    model: &Model,
    repo: Option<&FleetRepo>,
    out: &mut Output,
    observed: &Observed,
) -> Result<Vec<Report>, Error> {
    let any_policy =
        model.fleet.rollout.is_some() || model.catalogs.values().any(|c| c.spec.rollout.is_some());
    let (Some(repo), Some((_, head_tree))) = (repo, repo.map(|r| r.head()).transpose()?.flatten())
    else {
        return Ok(Vec::new());
    };
    let previous_text = repo.file_at(head_tree, ROLLOUT_FILE)?;
    if !any_policy && previous_text.is_none() {
        return Ok(Vec::new());
    }
    let previous: RolloutState = previous_text
        .as_deref()
        .and_then(|b| atoll_model::yaml::parse_values(&String::from_utf8_lossy(b)).ok())
        .and_then(|v| v.into_iter().next())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();

    // Which rendered clusters that exist in HEAD change their machines.
    let mut candidates: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut head_files: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for c in &out.rendered {
        let Some((key, _)) = policy_of(model, c) else {
            continue;
        };
        let dir = atoll_layout::management_dir(c);
        let old = repo.head_files_under([dir.as_str(), atoll_layout::state_file(c).as_str()])?;
        if old.is_empty() {
            continue; // a new cluster is built at once
        }
        let changed = atoll_layout::MACHINE_FILES.iter().any(|f| {
            let p = format!("{dir}{f}");
            old.get(&p).map(|b| b.as_slice()) != out.files.get(&p).map(|s| s.as_bytes())
        });
        if changed {
            candidates.entry(key).or_default().push(c.clone());
        }
        head_files.insert(c.clone(), old);
    }

    let desired_version = |c: &str| -> Option<String> {
        let path = atoll_layout::state_file(c);
        match out.files.get(&path) {
            Some(s) => version_in(s.as_bytes()),
            None => repo
                .file_at(head_tree, &path)
                .ok()
                .flatten()
                .and_then(|b| version_in(&b)),
        }
    };

    let mut state = RolloutState::default();
    let mut reports = Vec::new();
    let mut held: BTreeSet<String> = BTreeSet::new();
    let keys: BTreeSet<String> = candidates
        .keys()
        .chain(previous.rollouts.keys())
        .cloned()
        .collect();
    for key in keys {
        let policy = if key == "fleet" {
            model.fleet.rollout.as_ref()
        } else {
            key.strip_prefix("catalog/")
                .and_then(|c| model.catalogs.get(c))
                .and_then(|c| c.spec.rollout.as_ref())
        };
        let mine: Vec<String> = candidates.remove(&key).unwrap_or_default();
        // A policy removed mid-rollout releases everything it held.
        let Some(policy) = policy else { continue };
        let size = policy.max_unavailable.max(1) as usize;
        let order = |cs: &mut Vec<String>| {
            cs.sort_by_key(|c| {
                let labels = model.clusters.get(c).map(|d| &d.labels);
                let keys: Vec<(bool, String)> = policy
                    .order_by
                    .iter()
                    .map(|k| match labels.and_then(|l| l.get(k)) {
                        Some(v) => (false, v.clone()),
                        None => (true, String::new()),
                    })
                    .collect();
                (keys, c.clone())
            })
        };
        let mut r = previous.rollouts.get(&key).cloned().unwrap_or_default();
        // Clusters that left the fleet leave their wave.
        for w in &mut r.waves {
            w.retain(|c| model.clusters.contains_key(c));
        }
        let in_waves: BTreeSet<String> = r.waves.iter().flatten().cloned().collect();
        let mut new: Vec<String> = mine
            .iter()
            .filter(|c| !in_waves.contains(*c))
            .cloned()
            .collect();
        if r.waves.is_empty() && new.is_empty() {
            continue;
        }
        if r.waves.is_empty() {
            r.released_at = observed.now;
        }
        order(&mut new);
        r.waves.extend(new.chunks(size).map(|w| w.to_vec()));
        let deadline = secs(&policy.progress_deadline, DEFAULT_DEADLINE);
        let bake = secs(&policy.bake_time, 0);
        let mut waiting_on = Vec::new();
        let (phase, message) = loop {
            if r.released >= r.waves.len() {
                break (Phase::Complete, "every wave released".to_string());
            }
            if r.released == 0 {
                if policy.paused {
                    break (Phase::Paused, "paused before the first wave".into());
                }
                r.released = 1;
                r.released_at = observed.now;
                r.healthy_since = None;
                continue;
            }
            let wave = r.released;
            let Some(health) = &observed.health else {
                if let Some(f) = &r.failed {
                    break (Phase::Failed, f.clone());
                }
                break (
                    Phase::Rolling,
                    format!("wave {wave} released; its gate is judged by the operator"),
                );
            };
            let unhealthy: Vec<(String, String)> = r.waves[wave - 1]
                .iter()
                .filter_map(|c| {
                    let want = desired_version(c);
                    let why = match health.get(c) {
                        None => "not observed yet".to_string(),
                        Some(h) if h.version != want => format!(
                            "machines on {}, want {}",
                            h.version.as_deref().unwrap_or("several versions"),
                            want.as_deref().unwrap_or("?")
                        ),
                        Some(h) if !h.ready => h.message.clone(),
                        Some(_) => return None,
                    };
                    Some((c.clone(), why))
                })
                .collect();
            if !unhealthy.is_empty() {
                r.healthy_since = None;
                waiting_on = unhealthy.iter().map(|(c, _)| c.clone()).collect();
                let (c, why) = &unhealthy[0];
                let waited = observed.now.saturating_sub(r.released_at);
                if waited > deadline {
                    let msg = format!(
                        "wave {wave} did not pass its health gate within {deadline} s: cluster {c}: {why}; later waves are not released"
                    );
                    r.failed = Some(msg.clone());
                    break (Phase::Failed, msg);
                }
                break (
                    Phase::Rolling,
                    format!("wave {wave}: waiting for cluster {c}: {why}"),
                );
            }
            r.failed = None;
            let since = *r.healthy_since.get_or_insert(observed.now);
            if observed.now.saturating_sub(since) < bake {
                break (
                    Phase::Baking,
                    format!("wave {wave} healthy; baking for {bake} s"),
                );
            }
            if policy.paused {
                break (
                    Phase::Paused,
                    format!("wave {wave} healthy; paused before wave {}", wave + 1),
                );
            }
            r.released += 1;
            r.released_at = observed.now;
            r.healthy_since = None;
        };
        for w in &r.waves[r.released.min(r.waves.len())..] {
            held.extend(w.iter().filter(|c| mine.contains(*c)).cloned());
        }
        reports.push(Report {
            policy: key.clone(),
            waves: r.waves.clone(),
            released: r.released.min(r.waves.len()),
            phase,
            message,
            waiting_on,
        });
        if phase != Phase::Complete {
            state.rollouts.insert(key, r);
        }
    }

    // Held clusters keep HEAD's Cluster API objects and effective spec.
    for c in &held {
        let dir = atoll_layout::management_dir(c);
        let state_path = atoll_layout::state_file(c);
        out.files
            .retain(|p, _| !(p.starts_with(&dir) || *p == state_path));
        for (p, b) in head_files.remove(c).unwrap_or_default() {
            out.files
                .insert(p, Arc::from(String::from_utf8_lossy(&b).as_ref()));
        }
        out.inputs.insert(c.clone(), HELD.into());
    }
    if !held.is_empty() {
        let digests: String = out
            .inputs
            .iter()
            .map(|(c, d)| format!("{c}\t{d}\n"))
            .collect();
        out.files
            .insert(atoll_layout::INPUTS_FILE.into(), digests.into());
    }
    let text = format!(
        "# Upgrade waves in progress (written by atoll; times in Unix seconds).\n{}",
        atoll_model::yaml::to_yaml_stream(std::iter::once(
            &serde_json::to_value(&state).expect("state")
        ))
    );
    let idle_from_start = previous_text.is_none() && state.rollouts.is_empty();
    if !idle_from_start && previous_text.as_deref() != Some(text.as_bytes()) {
        out.files.insert(ROLLOUT_FILE.into(), text.into());
    }
    Ok(reports)
}
