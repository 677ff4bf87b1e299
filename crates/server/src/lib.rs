//! `atoll serve`: a long-lived control plane that owns the declarations (in the inventory
//! store), runs the engine on each change and commits the result to Git, as `atoll render` does
//! from files. A REST API in the Kubernetes style for every atoll kind, plus placements, an
//! inventory summary, plan/apply (apply as a polled task), history and rollback, bearer-token
//! auth with per-team roles, Prometheus metrics and health checks. The OpenAPI document is
//! generated from the same kind table the routes use.

pub mod api;
pub mod catalog;
pub mod change;
pub mod kinds;
pub mod metrics;
pub mod oidc;
pub mod openapi;
pub mod problem;
pub mod ui;
pub mod views;

use atoll_inventory::{Principal, Role, Store};
use atoll_model::Model;
use problem::Problem;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite:PATH` or `postgres://…`.
    pub database: String,
    /// The fleet repository (created when missing).
    pub repo: PathBuf,
    /// Base of relative upstream package repositories.
    pub upstream_base: PathBuf,
    /// Local upstream repositories must lie under one of these.
    pub upstream_roots: Vec<PathBuf>,
    /// Create a missing repository bare (no work tree).
    pub bare: bool,
    /// Publish every commit to this Git server (the one the agents pull from).
    pub remote: Option<atoll_gitops::Remote>,
    /// Read each cluster's agent through its kubeconfig Secret in the management cluster of
    /// KUBECONFIG (every [`OBSERVE_EVERY`]): sync state in the inventory, placements,
    /// metrics and events.
    pub observe: bool,
    /// Also accept OIDC JWTs.
    pub oidc: Option<oidc::Oidc>,
}

/// What the last render says, for placement queries and metrics.
#[derive(Debug, Default, Clone)]
pub struct View {
    /// HEAD of the fleet repository.
    pub commit: String,
    /// Cluster → `team/app`.
    pub placements: atoll_engine::Placements,
    /// Cluster → (provider, phase).
    pub clusters: BTreeMap<String, (String, String)>,
    /// `team/app` → the revision it is delivered at.
    pub revisions: BTreeMap<String, String>,
    /// `team/app` → number of components.
    pub components: BTreeMap<String, usize>,
}

/// The observed side of the fleet (see the `atoll-status` crate).
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// What each cluster's agent last reported.
    pub clusters: BTreeMap<String, atoll_status::ClusterSync>,
    /// `team/app` → (clusters where it runs at HEAD, clusters it is placed on).
    pub applications: BTreeMap<String, (usize, usize)>,
    /// Cluster → the phase its Cluster API `Cluster` reports in the management cluster.
    pub phases: BTreeMap<String, String>,
    /// Clients to the clusters, kept between sweeps.
    pub clients: atoll_status::Clients,
}

/// How often `atoll serve --observe` reads the clusters.
pub const OBSERVE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads every cluster's agent, keeps what it says, and records each change of a cluster's
/// state or revision as an event (a cluster's timeline shows its syncs).
pub async fn observe_once(state: &State, client: &kube::Client) -> Result<(), Problem> {
    let repo_path = state.repo.clone();
    let Some(repo) = atoll_gitops::FleetRepo::open_if_exists(&repo_path)
        .map_err(|e| Problem::internal(e.to_string()))?
    else {
        return Ok(());
    };
    let targets = {
        let mut parsed = state.observed_targets.lock().expect("targets");
        atoll_status::targets_since(&repo, &mut parsed)
    }
    .map_err(|e| Problem::internal(e.to_string()))?;
    let want = atoll_status::desired(&repo, &targets, true);
    drop(repo);
    let (previous, clients) = {
        let o = state.observed.read().expect("observed");
        (o.clusters.clone(), o.clients.clone())
    };
    let mut syncs = atoll_status::read_clusters(
        client,
        &want,
        &targets,
        &previous,
        &atoll_status::Options {
            timeout: std::time::Duration::from_secs(5),
            clients: clients.clone(),
            ..Default::default()
        },
    )
    .await;
    let repo = atoll_gitops::FleetRepo::open_if_exists(&repo_path)
        .map_err(|e| Problem::internal(e.to_string()))?
        .ok_or_else(|| Problem::internal("the fleet repository went away"))?;
    let phases = atoll_status::capi_clusters(client, &targets)
        .await
        .into_iter()
        .filter_map(|(c, capi)| capi.phase.map(|p| (c, p)))
        .collect();
    atoll_status::behind(&repo, want.head, &mut syncs);
    let applications = atoll_status::applications(&repo, &targets, &syncs);
    drop(repo);
    let mut changed = Vec::new();
    for s in &syncs {
        let before = previous.get(&s.cluster);
        if before.map(|b| (b.state, &b.revision)) != Some((s.state, &s.revision)) {
            changed.push((before.cloned(), s.clone()));
        }
    }
    *state.observed.write().expect("observed") = Observed {
        clusters: syncs.into_iter().map(|s| (s.cluster.clone(), s)).collect(),
        applications,
        phases,
        clients,
    };
    state
        .fleet_version
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    if !changed.is_empty() {
        let mut tx = state.store.begin().await?;
        let change_id = atoll_inventory::new_change_id();
        let at = atoll_inventory::now();
        for (before, after) in changed {
            let e = atoll_inventory::Event {
                id: 0,
                change_id: change_id.clone(),
                at: at.clone(),
                actor: "atoll (observed)".into(),
                action: "sync".into(),
                team: String::new(),
                kind: "Cluster".into(),
                namespace: String::new(),
                name: after.cluster.clone(),
                message: format!(
                    "{} at {}: {}",
                    after.state.as_str(),
                    after
                        .revision
                        .as_deref()
                        .map(|r| &r[..r.len().min(12)])
                        .unwrap_or("-"),
                    after.message
                ),
                commit: after.revision.clone().unwrap_or_default(),
                clusters: vec![after.cluster.clone()],
                before: before.map(|b| serde_json::to_value(b).expect("json")),
                after: Some(serde_json::to_value(&after).expect("json")),
            };
            atoll_inventory::record(&mut tx, &e).await?;
        }
        tx.commit()
            .await
            .map_err(atoll_inventory::StoreError::from)?;
    }
    Ok(())
}

/// What a change tells the view.
pub struct ViewUpdate {
    placements: atoll_engine::Placements,
    rendered: std::collections::BTreeSet<String>,
}

impl ViewUpdate {
    /// What the view learns from a committed change.
    pub fn of(c: &atoll_pipeline::Change) -> ViewUpdate {
        ViewUpdate {
            placements: c.placements.clone(),
            rendered: c.rendered.clone(),
        }
    }
}

/// A long operation, polled by id.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Its id, in `/api/v1/tasks/<id>`.
    pub id: String,
    /// Where it is.
    pub state: TaskState,
    /// The steps it went through, the current one last.
    pub steps: Vec<Step>,
    /// What it produced, once succeeded (the change's outcome).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why it failed (a problem+json body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Who started it: only they (and admins) can read it.
    #[serde(skip)]
    pub owner: String,
}

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Still working.
    Running,
    /// Done; `result` says what it did.
    Succeeded,
    /// Stopped; `error` says why.
    Failed,
}

/// One step of a task.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// What it does (`render`, `commit`, `push`...).
    pub name: String,
    /// RFC 3339 time the step started.
    pub started: String,
}

/// Everything the server's handlers share.
pub struct State {
    /// The inventory (declarations, history, tokens).
    pub store: Store,
    /// The fleet repository's path.
    pub repo: PathBuf,
    /// The kinds the API serves.
    pub kinds: Vec<kinds::Kind>,
    /// Serialises changes (render + commit) within this process.
    pub write: tokio::sync::Mutex<()>,
    /// What the last render says.
    pub view: RwLock<View>,
    /// Bumped whenever what `/api/v1/fleet` answers may change (a commit, a sweep).
    pub fleet_version: std::sync::atomic::AtomicU64,
    /// The last `/api/v1/fleet` answers, valid while `fleet_version` stands.
    pub fleet_cache: Mutex<views::FleetCache>,
    /// The model HEAD was rendered from (explanations: provenance, why placed).
    pub model: RwLock<Option<std::sync::Arc<Model>>>,
    /// The objects as served, in memory (lists and gets never read the database).
    pub catalogs: catalog::Catalogs,
    /// Each stored object as the model loaded it, by resourceVersion: a change loads only
    /// the objects it wrote.
    pub decls: Mutex<change::DeclCache>,
    /// What each cluster's agent last reported, and per application on how many of its
    /// clusters it runs at HEAD.
    pub observed: RwLock<Observed>,
    /// The state files `--observe` parsed, kept so a sweep parses only what a commit changed.
    pub observed_targets: std::sync::Mutex<atoll_status::TargetCache>,
    /// Tokens seen lately (by hash), so that a request does not wait for the database to
    /// know its caller.
    pub callers: Mutex<std::collections::HashMap<String, (Principal, std::time::Instant)>>,
    /// The fleet repository, through the one pipeline every shell uses (it keeps the last
    /// render's memo between changes). Held for whole renders and pushes: reach it only
    /// through [`State::with_pipeline`], from blocking code.
    pipeline: Mutex<atoll_pipeline::Pipeline>,
    /// Whether the repository is published to a remote (fixed at start).
    pub remote: bool,
    /// The pipeline's publish state as of its last use: async code reads this, never the
    /// pipeline itself (which a push may hold for seconds, and a worker thread blocked on
    /// it starves every connection queued behind it).
    pub published: Mutex<atoll_pipeline::PublishState>,
    /// Long operations by id (in memory: they do not outlive the process).
    pub tasks: Mutex<BTreeMap<String, Task>>,
    /// Prometheus counters and histograms.
    pub metrics: metrics::Metrics,
    /// The OIDC issuer whose ID tokens are accepted, if configured.
    pub oidc: Option<oidc::Oidc>,
}

impl State {
    /// Opens the store and the repository, loads the catalogs and the view of HEAD.
    pub async fn new(cfg: &Config) -> Result<State, Problem> {
        let store = Store::open(&cfg.database).await?;
        Ok(State {
            remote: cfg.remote.is_some(),
            published: Mutex::new(Default::default()),
            store,
            repo: cfg.repo.clone(),
            kinds: kinds::all(),
            write: tokio::sync::Mutex::new(()),
            view: RwLock::new(View::default()),
            model: RwLock::new(None),
            fleet_version: Default::default(),
            fleet_cache: Default::default(),
            catalogs: catalog::Catalogs::default(),
            decls: Mutex::new(Default::default()),
            callers: Mutex::new(Default::default()),
            observed: RwLock::new(Observed::default()),
            observed_targets: Default::default(),
            pipeline: Mutex::new(
                atoll_pipeline::Pipeline::open(
                    &cfg.repo,
                    atoll_pipeline::Options {
                        create: true,
                        bare: cfg.bare,
                        disk_cache: atoll_pipeline::Reuse::Nothing,
                        writer: "atoll serve".into(),
                        sources: atoll_pipeline::UpstreamSources::folder(
                            cfg.upstream_base.clone(),
                            cfg.upstream_roots.clone(),
                        ),
                        remote: cfg.remote.clone(),
                    },
                )
                .map_err(|e| Problem::internal(format!("fleet repository: {e}")))?,
            ),
            tasks: Mutex::new(BTreeMap::new()),
            metrics: metrics::Metrics::default(),
            oidc: cfg.oidc.clone(),
        })
    }

    /// Runs `f` on the pipeline (blocking: call from inside `block_in_place`), then keeps
    /// its publish state for async readers.
    pub fn with_pipeline<R>(&self, f: impl FnOnce(&mut atoll_pipeline::Pipeline) -> R) -> R {
        let mut p = self.pipeline.lock().expect("pipeline");
        let r = f(&mut p);
        *self.published.lock().expect("published") = p.publish_state();
        r
    }

    /// The kind served at `/…/<plural>`.
    pub fn kind_by_plural(&self, plural: &str) -> Option<&kinds::Kind> {
        self.kinds.iter().find(|k| k.plural == plural)
    }

    /// The kind named `kind`.
    pub fn kind_by_name(&self, kind: &str) -> Option<&kinds::Kind> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    /// The caller, from `Authorization: Bearer <token>`.
    pub async fn principal(&self, headers: &axum::http::HeaderMap) -> Result<Principal, Problem> {
        let h = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Problem::unauthorized(
                    "send `Authorization: Bearer <token>` (create one with `atoll token create`)",
                )
            })?;
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let token = h
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t)
            .ok_or_else(|| {
                Problem::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        let token = token.trim();
        // A JWT has three dot-separated parts; atoll's own tokens have none.
        if let Some(o) = &self.oidc
            && token.split('.').count() == 3
        {
            return o.principal(token).map_err(Problem::unauthorized);
        }
        let hash = atoll_inventory::hash_token(token);
        if let Some((p, at)) = self.callers.lock().expect("callers").get(&hash)
            && at.elapsed() < CALLER_TTL
        {
            return Ok(p.clone());
        }
        let p = self
            .store
            .authenticate(token)
            .await?
            .ok_or_else(|| Problem::unauthorized("unknown token"))?;
        let mut callers = self.callers.lock().expect("callers");
        if callers.len() > 10_000 {
            callers.retain(|_, (_, at)| at.elapsed() < CALLER_TTL);
        }
        callers.insert(hash, (p.clone(), std::time::Instant::now()));
        Ok(p)
    }

    /// Validates the objects together, loading only those not loaded before.
    pub fn model_of<'a>(
        &self,
        objects: impl IntoIterator<Item = &'a atoll_inventory::Stored>,
    ) -> Result<Model, Vec<problem::FieldError>> {
        change::model_with(objects, Some(&mut self.decls.lock().expect("decls")))
    }

    /// Brings Git up to date with the store (after a restart, or a commit that failed) and
    /// fills the view.
    pub async fn reconcile(&self) -> Result<(), Problem> {
        let _guard = self.write.lock().await;
        let rv = self.store.resource_version().await?;
        let all = self.store.list(None, None).await?;
        self.catalogs.replace(all.clone(), rv);
        // An empty store declares nothing yet: rendering it would remove every cluster from
        // a repository (or a remote) that already holds a fleet.
        if all.is_empty() {
            return Ok(());
        }
        let model = self
            .model_of(&all)
            .map_err(|e| Problem::invalid("stored declarations do not validate", e))?;
        let remote = self.remote;
        let plan = tokio::task::block_in_place(|| change::plan(self, &model, !remote))?;
        let view = ViewUpdate::of(&plan.change);
        let head = tokio::task::block_in_place(|| {
            if remote {
                drop(plan);
                change::commit_fresh(self, "Reconciled by atoll serve.")
            } else {
                change::commit(self, plan, "Reconciled by atoll serve.")
            }
        })?;
        self.set_view(model, view, &head);
        Ok(())
    }

    /// Brings the view up to date after a change: only clusters rendered again (or new) are
    /// resolved again.
    pub fn set_view(&self, model: Model, update: ViewUpdate, head: &str) {
        let old = std::mem::take(&mut *self.view.write().expect("view"));
        let mut v = View {
            commit: head.to_string(),
            placements: update.placements,
            ..Default::default()
        };
        v.clusters = old.clusters;
        v.clusters.retain(|c, _| model.clusters.contains_key(c));
        for (name, decl) in &model.clusters {
            if v.clusters.contains_key(name) && !update.rendered.contains(name) {
                continue;
            }
            let provider = atoll_engine::resolve::resolve(&model, decl)
                .ok()
                .and_then(|r| serde_json::to_value(r.provider.value).ok())
                .and_then(|p| p.as_str().map(str::to_string))
                .unwrap_or_else(|| "unknown".into());
            // Without Cluster API feedback (that is the operator's job) the phase is unknown.
            v.clusters
                .insert(name.clone(), (provider, "Unknown".into()));
        }
        for ((team, name), a) in &model.applications {
            let s = &a.spec;
            let rev = if let Some(h) = &s.helm {
                format!("helm {}", h.version)
            } else if let Some(g) = &s.git {
                format!(
                    "git {}",
                    g.revision.clone().unwrap_or_else(|| "HEAD".into())
                )
            } else if let Some(k) = &s.kpt {
                format!("kpt {}", k.revision)
            } else {
                // Inline components: the Git commit is their revision.
                "inline".to_string()
            };
            let key = format!("{team}/{name}");
            v.revisions.insert(key.clone(), rev);
            v.components.insert(key, s.components.len());
        }
        *self.view.write().expect("view") = v;
        *self.model.write().expect("model") = Some(std::sync::Arc::new(model));
        self.fleet_version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// May `p` read objects of `kind` in `namespace`?
pub fn can_read(p: &Principal, kind: &kinds::Kind, namespace: &str) -> bool {
    p.role == Role::Admin || !kind.team_owned() || p.team == namespace
}

/// May `p` write objects of `kind` in `namespace`?
pub fn can_write(p: &Principal, kind: &kinds::Kind, namespace: &str) -> bool {
    match p.role {
        Role::Admin => true,
        Role::Contributor => kind.team_owned() && p.team == namespace,
        Role::Reader => false,
    }
}

/// How long a token, once found in the store, is taken without asking the store again.
pub const CALLER_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// A client has this long to send its request line and headers; then the connection is
/// closed (a client that never finishes its headers must not hold a connection).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves until SIGTERM / Ctrl-C (connections under way are finished first).
pub async fn serve(cfg: Config, listener: tokio::net::TcpListener) -> Result<(), Problem> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let state = std::sync::Arc::new(State::new(&cfg).await?);
    state.reconcile().await?;
    // Writes by other replicas (sharing a PostgreSQL store) reach this one's catalog within
    // a couple of seconds; its own writes update it at once.
    let refresher = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        // A commit that did not reach the remote is pushed again, backing off to a minute.
        let (mut wait, mut next_push) = (2u64, std::time::Instant::now());
        loop {
            tick.tick().await;
            // The whole fleet as an admin sees it is what every fleet map opens with: have it
            // ready (building it at 10,000 clusters takes longer than a first paint may).
            let warm = refresher.clone();
            let _ = tokio::task::spawn_blocking(move || {
                views::fleet_cached(&warm, None, "", &Default::default(), false)
            })
            .await;
            let failed = refresher
                .published
                .lock()
                .expect("published")
                .error
                .is_some();
            if failed && std::time::Instant::now() >= next_push {
                let guard = refresher.write.lock().await;
                let ok = tokio::task::block_in_place(|| refresher.with_pipeline(|p| p.publish()));
                drop(guard);
                match ok {
                    Ok(true) => wait = 2,
                    // The remote moved: render on top of it (which pushes again).
                    Ok(false) => {
                        let _ = refresher.reconcile().await;
                    }
                    Err(e) => {
                        tracing::warn!("committed, not pushed: {e}");
                        wait = (wait * 2).min(60);
                    }
                }
                next_push = std::time::Instant::now() + std::time::Duration::from_secs(wait);
            }
            let Ok(rv) = refresher.store.resource_version().await else {
                continue;
            };
            if rv == refresher.catalogs.current().resource_version {
                continue;
            }
            let _guard = refresher.write.lock().await;
            if let (Ok(rv), Ok(all)) = (
                refresher.store.resource_version().await,
                refresher.store.list(None, None).await,
            ) {
                refresher.catalogs.replace(all, rv);
                refresher
                    .fleet_version
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
        }
    });
    if cfg.observe {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| Problem::internal(format!("--observe: the management cluster: {e}")))?;
        let observer = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(OBSERVE_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = observe_once(&observer, &client).await {
                    tracing::warn!("observing the clusters: {}", e.detail);
                }
            }
        });
    }
    let app = api::router(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: wait a moment, keep serving.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // A list page is several segments: with Nagle's algorithm its last one waits for the
        // client's (delayed) ACK of the others, tens of milliseconds.
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    graceful.shutdown().await;
    Ok(())
}
