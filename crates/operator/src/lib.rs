//! `atoll operator`: atoll as a controller in the management cluster, with the same engine as
//! `atoll render`. The atoll.dev objects in the API server are the source of truth; one loop
//! observes them (watch caches), orients (builds and validates the model, setting aside bad
//! declarations), decides (renders incrementally against the fleet repository's HEAD) and acts
//! (commits to Git, server-side applies the Cluster API objects, writes status), the loop of
//! seed 003 §6.3.2.
//!
//! Modules: [`observe`] (watch caches and snapshots), [`fleet`] (one pass), [`status`] (one
//! reconcile function per kind: status and finalizers), [`apply`] (server-side apply),
//! [`election`] (Lease leader election), [`manifests`] (what installs the operator).

pub mod apply;
pub mod election;
pub mod fleet;
pub mod manifests;
pub mod observe;
pub mod status;

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The fleet repository, its remote, and what a pass may do.
    pub settings: fleet::Settings,
    /// Namespace of the leader-election Lease.
    pub lease_namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// This replica's identity in the Lease (the pod name in a Deployment).
    pub identity: String,
    /// How long a leader holds the Lease without renewing it.
    pub lease_duration: Duration,
    /// A full pass at least this often, even without changes (reads CAPI phases, re-applies).
    pub resync: Duration,
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another replica took the Lease (this one exits so that it restarts as a follower).
    #[error("leadership lost: another replica holds the Lease {0}")]
    LeadershipLost(String),
    /// The Lease could not be read or written.
    #[error("leader election: {0}")]
    Election(kube::Error),
}

/// Exponential backoff between failed passes: 1 s doubling to 60 s.
#[derive(Debug)]
struct Backoff(u32);

impl Backoff {
    fn next(&mut self) -> Duration {
        let d = Duration::from_secs(1u64 << self.0.min(6)).min(Duration::from_secs(60));
        self.0 += 1;
        d
    }
    fn reset(&mut self) {
        self.0 = 0;
    }
}

/// Waits for leadership, then runs the controller until shutdown (Ok) or leadership is lost
/// (Err: the process should exit and be restarted, as controller-runtime does).
pub async fn run(client: kube::Client, cfg: Config) -> Result<(), Error> {
    let mut elector = election::Elector::new(
        client.clone(),
        &cfg.lease_namespace,
        &cfg.lease_name,
        &cfg.identity,
        cfg.lease_duration,
    );
    let retry = (cfg.lease_duration / 4).max(Duration::from_millis(500));
    tracing::info!(
        "{} waiting for leadership (Lease {}/{})",
        cfg.identity,
        cfg.lease_namespace,
        cfg.lease_name
    );
    loop {
        tokio::select! {
            r = elector.try_acquire_or_renew() => match r {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::warn!("leader election: {e}"),
            },
            _ = shutdown() => return Ok(()),
        }
        tokio::time::sleep(retry).await;
    }
    tracing::info!("{} is the leader", cfg.identity);
    let lease = format!("{}/{}", cfg.lease_namespace, cfg.lease_name);
    let result = {
        let renew = async {
            let mut last_ok = Instant::now();
            loop {
                tokio::time::sleep(cfg.lease_duration / 3).await;
                match elector.try_acquire_or_renew().await {
                    Ok(true) => last_ok = Instant::now(),
                    Ok(false) => return Error::LeadershipLost(lease.clone()),
                    Err(e) => {
                        tracing::warn!("renewing the Lease: {e}");
                        if last_ok.elapsed() > cfg.lease_duration * 2 / 3 {
                            return Error::Election(e);
                        }
                    }
                }
            }
        };
        tokio::select! {
            e = renew => Err(e),
            _ = controller(client, &cfg) => Ok(()),
            _ = shutdown() => Ok(()),
        }
    };
    if result.is_ok() {
        if let Err(e) = elector.release().await {
            tracing::warn!("releasing the Lease: {e}");
        }
        tracing::info!("{} stopped and released the Lease", cfg.identity);
    }
    result
}

async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// The loop: a pass whenever what the fleet depends on changed, when a retry or requeue is
/// due, and at least every `resync`.
async fn controller(client: kube::Client, cfg: &Config) {
    let caches = observe::Caches::start(&client);
    caches.ready().await;
    tracing::info!("caches filled; reconciling");
    let observed = Arc::new(std::sync::Mutex::new(Observed::default()));
    let (swept, kick) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    // A thread of its own: reading what a commit targets parses every cluster's state file,
    // which must not hold up a pass that a write is waiting for (and the repository handle it
    // reads through cannot move between a multi-threaded runtime's workers).
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    {
        let (client, repo) = (client.clone(), cfg.settings.repo.clone());
        let (observed, swept, kick) = (observed.clone(), swept.clone(), kick.clone());
        std::thread::Builder::new()
            .name("sweep-agents".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the sweep");
                rt.block_on(async {
                    tokio::select! {
                        () = sweep_agents(client, repo, observed, swept, kick) => {}
                        _ = stopped => {}
                    }
                });
            })
            .expect("the sweep's thread");
    }
    // Dropped with the controller (shutdown, leadership lost): the sweep stops too.
    let _stop = stop;
    let passes = async {
        let applier = apply::Applier::new(client.clone());
        let mut memory = fleet::Memory::default();
        let mut last: Option<String> = None;
        let mut backoff = Backoff(0);
        let mut wake_at: Option<Instant> = None;
        let mut last_pass = Instant::now();
        loop {
            let declared_at = caches.declared.load(std::sync::atomic::Ordering::Relaxed);
            let snap = caches.snapshot();
            let digest = snap.digest();
            let now = Instant::now();
            let due = wake_at.is_some_and(|t| now >= t) || now - last_pass >= cfg.resync;
            if last.as_deref() != Some(digest.as_str()) || due {
                last = Some(digest);
                last_pass = now;
                wake_at = None;
                memory.syncs = observed.lock().expect("observed").syncs.clone();
                let declared = (caches.declared.as_ref(), declared_at);
                let outcome = one_pass(
                    &client,
                    &snap,
                    cfg,
                    &applier,
                    &mut memory,
                    &observed,
                    declared,
                )
                .await;
                // A new commit: the agents have something new to pull; look at them soon.
                if memory.committed_last {
                    kick.notify_one();
                }
                match outcome {
                    Ok(None) => backoff.reset(),
                    Ok(Some(requeue)) => wake_at = Some(Instant::now() + requeue),
                    Err(retry) => {
                        let d = if retry {
                            backoff.next()
                        } else {
                            Duration::ZERO
                        };
                        wake_at = Some(Instant::now() + d);
                    }
                }
            }
            let sleep = wake_at
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|| cfg.resync.saturating_sub(last_pass.elapsed()));
            tokio::select! {
                _ = caches.changed.notified() => {
                    // Let a burst of changes (kubectl apply -f of a folder) land as one pass:
                    // wait until the caches have been quiet for a moment, within a bound. A
                    // single write costs only the quiet moment.
                    let burst = Instant::now();
                    while burst.elapsed() < BURST_AT_MOST {
                        let more = caches.changed.notified();
                        if tokio::time::timeout(QUIET, more).await.is_err() {
                            break;
                        }
                    }
                }
                // The agents reported something new: report it.
                _ = swept.notified() => wake_at = Some(Instant::now()),
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    };
    passes.await
}

/// How long the caches must be quiet before a pass starts after a change.
const QUIET: Duration = Duration::from_millis(100);
/// A burst of changes delays a pass at most this long.
const BURST_AT_MOST: Duration = Duration::from_millis(500);

/// Agents are swept at most this often.
const OBSERVE_EVERY: Duration = Duration::from_secs(10);

/// What the last sweep of the agents found.
#[derive(Default)]
struct Observed {
    /// What each cluster's agent last reported (a failed read keeps the last contact).
    syncs: std::collections::BTreeMap<String, atoll_status::ClusterSync>,
    /// Per application (`team/app`): on how many clusters it runs at HEAD, of how many.
    at_head: std::collections::BTreeMap<String, (usize, usize)>,
}

/// The observed side, beside the passes rather than inside them: every cluster's agent is
/// read through its kubeconfig Secret (concurrently, each bounded by a timeout, so one
/// cluster that is down costs no one else anything), and each sweep wakes the loop to report
/// it. A sweep of 10,000 clusters takes seconds, on a thread of its own.
async fn sweep_agents(
    client: kube::Client,
    repo_path: std::path::PathBuf,
    observed: Arc<std::sync::Mutex<Observed>>,
    wake: Arc<Notify>,
    kick: Arc<Notify>,
) {
    let clients = atoll_status::Clients::default();
    let mut targets: Option<(String, Vec<atoll_status::Target>)> = None;
    let mut parsed = atoll_status::TargetCache::default();
    loop {
        let started = Instant::now();
        if let Ok(Some(repo)) = atoll_gitops::FleetRepo::open_if_exists(&repo_path) {
            let head = repo
                .head()
                .ok()
                .flatten()
                .map(|(c, _)| c.to_string())
                .unwrap_or_default();
            // Once per commit, parsing only the state files it changed.
            if targets.as_ref().is_none_or(|(at, _)| *at != head) {
                match atoll_status::targets_since(&repo, &mut parsed) {
                    Ok(t) => targets = Some((head, t)),
                    Err(e) => tracing::warn!("cannot tell which clusters to observe: {e}"),
                }
            }
            if let Some((_, targets)) = &targets {
                let previous = observed.lock().expect("observed").syncs.clone();
                let syncs = atoll_status::collect(
                    &client,
                    Some(&repo),
                    targets,
                    &previous,
                    &atoll_status::Options {
                        timeout: Duration::from_secs(5),
                        clients: clients.clone(),
                        ..Default::default()
                    },
                )
                .await;
                let at_head = atoll_status::applications(&repo, targets, &syncs);
                let syncs = syncs.into_iter().map(|s| (s.cluster.clone(), s)).collect();
                let changed = {
                    let mut o = observed.lock().expect("observed");
                    let changed = o.syncs != syncs || o.at_head != at_head;
                    *o = Observed { syncs, at_head };
                    changed
                };
                tracing::debug!(
                    "agents of {} clusters read in {:.2} s",
                    targets.len(),
                    started.elapsed().as_secs_f64()
                );
                if changed {
                    wake.notify_one();
                }
            }
        }
        // Sooner after a commit (the loop kicks), but not more than every 2 s.
        tokio::time::sleep(Duration::from_secs(2).saturating_sub(started.elapsed())).await;
        let _ = tokio::time::timeout(
            OBSERVE_EVERY.saturating_sub(started.elapsed()),
            kick.notified(),
        )
        .await;
    }
}

/// One pass plus status. `Ok(Some(d))`: come back in `d`; `Err(true)`: back off and retry.
async fn one_pass(
    client: &kube::Client,
    snap: &observe::Snapshot,
    cfg: &Config,
    applier: &apply::Applier,
    memory: &mut fleet::Memory,
    observed: &std::sync::Mutex<Observed>,
    declared: (&std::sync::atomic::AtomicU64, u64),
) -> Result<Option<Duration>, bool> {
    let started = Instant::now();
    let mut outcome = match fleet::pass(snap, &cfg.settings, applier, memory).await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!("fleet pass failed (will retry): {e}");
            return Err(true);
        }
    };
    tracing::info!(
        "pass: {} clusters, {} objects applied, {} declarations set aside, {} apply failures, commit {}",
        outcome.clusters.len(),
        outcome.applied,
        outcome.invalid.len(),
        outcome.apply_errors.len(),
        outcome.commit.as_deref().unwrap_or("-")
    );
    for (key, why) in &outcome.invalid {
        tracing::warn!("{key} set aside: {}", why.join("; "));
    }
    memory.committed_last = outcome.committed;
    let rendered_in = started.elapsed();
    // The agents as the pass saw them (`memory.syncs`, taken before it), not a newer sweep.
    let at_head = observed.lock().expect("observed").at_head.clone();
    // Forget what was written for objects that are gone.
    memory.written.lock().expect("written").retain(|key, _| {
        snap.objects
            .binary_search_by(|o| o.key.as_str().cmp(key))
            .is_ok()
    });
    // What a cut-short status phase left unsaid: those renderings are still news.
    let (clusters, apps) = &memory.unreported;
    outcome.rendered.extend(clusters.iter().cloned());
    outcome.changed_apps.extend(apps.iter().cloned());
    let report = status::Report {
        snap,
        outcome: &outcome,
        applier,
        client,
        management_namespace: &outcome.management_namespace,
        syncs: &memory.syncs,
        at_head: &at_head,
        written: &memory.written,
        wrote: Default::default(),
        owned: status::owned(&outcome),
        declared: Some(declared),
        deferred: Default::default(),
    };
    let (mut requeue, errors, wrote) = report.reconcile_all().await;
    let deferred = report.deferred.load(std::sync::atomic::Ordering::Relaxed);
    drop(report);
    memory.unreported = if deferred > 0 {
        (
            std::mem::take(&mut outcome.rendered),
            std::mem::take(&mut outcome.changed_apps),
        )
    } else {
        Default::default()
    };
    tracing::info!(
        "pass took {:.2} s: render, commit and apply {:.2} s, {wrote} status(es) written in {:.2} s{}",
        started.elapsed().as_secs_f64(),
        rendered_in.as_secs_f64(),
        (started.elapsed() - rendered_in).as_secs_f64(),
        if deferred > 0 {
            format!(" ({deferred} left to the next pass: a declaration changed)")
        } else {
            String::new()
        }
    );
    // A teardown or a rollout in progress is looked at again soon (Cluster API's status
    // changes wake the loop too; this is for a missed event and for bake timers).
    if !outcome.removing.is_empty()
        || outcome
            .rollouts
            .iter()
            .any(|r| r.phase != atoll_pipeline::rollout::Phase::Complete)
    {
        let soon = Duration::from_secs(5);
        requeue = Some(requeue.map_or(soon, |r| r.min(soon)));
    }
    // Statuses left for a newer declaration: a pass comes back for them at once, even if that
    // declaration was already in this pass's snapshot (then no digest change would wake it).
    if deferred > 0 {
        requeue = Some(Duration::ZERO);
    }
    for e in &errors {
        tracing::warn!("{e}");
    }
    if let Some(e) = &outcome.not_pushed {
        tracing::warn!("committed, not pushed (will retry): {e}");
    }
    // A failed apply or push is retried with backoff.
    if !errors.is_empty() || !outcome.apply_errors.is_empty() || outcome.not_pushed.is_some() {
        return Err(true);
    }
    Ok(requeue)
}
