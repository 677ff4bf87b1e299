//! [`Pipeline`]: the one path from a model to a plan or a commit, for every shell. The CLI
//! (`render`, `plan`, `validate`), `atoll serve` and the operator open the fleet repository
//! through it and call [`Pipeline::plan`] then [`Pipeline::commit`]; none of them reads HEAD,
//! fetches upstreams, renders, builds a tree edit or writes a commit on its own, so they
//! cannot drift apart in behaviour or speed.

use crate::cache::{Cache, Saving};
use crate::{Change, Error, HeadState, UpstreamSources};
use atoll_engine::memo::RenderMemo;
use atoll_gitops::{FleetRepo, ObjectId, Pushed, Remote, RepoLock};
use atoll_model::{Diagnostics, Model};
use std::path::{Path, PathBuf};

/// How much of the on-disk cache a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// Read and write it.
    All,
    /// Write what this run computed, read nothing (a `--full` render).
    WriteOnly,
    /// Leave it alone.
    Nothing,
}

/// How a shell opens the fleet repository.
#[derive(Clone, Debug)]
pub struct Options {
    /// Create a missing repository (bare when `bare`); otherwise a missing one reads as
    /// empty and nothing can be committed.
    pub create: bool,
    /// A repository without a work tree (what a Git server holds).
    pub bare: bool,
    /// Use the cache in the repository's Git directory (what a short-lived CLI run wants;
    /// long-running shells keep the memo in memory instead).
    pub disk_cache: Reuse,
    /// Who writes, for the repository lock and the commit message (`atoll render`,
    /// `atoll serve`, `atoll operator`).
    pub writer: String,
    /// Where upstream packages may come from.
    pub sources: UpstreamSources,
    /// The Git server the repository is published to (the one the agents pull from).
    pub remote: Option<Remote>,
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The declarations do not render: errors on declarations.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// Reading the repository or an upstream failed.
    #[error("{0}")]
    Error(#[from] Error),
}

/// A plan against HEAD, ready to commit. Made for a commit, it holds the repository's writer
/// lock until it is committed or dropped, so HEAD cannot move in between.
pub struct Plan {
    /// What the commit would change.
    pub change: Change,
    /// HEAD the plan was made against.
    pub base: Option<ObjectId>,
    _lock: Option<RepoLock>,
}

/// What a commit did.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The new commit, or `None` when the tree did not change.
    pub commit: Option<ObjectId>,
    /// HEAD afterwards.
    pub head: Option<ObjectId>,
    /// The commit message (also what a no-op would have said).
    pub message: String,
}

/// The fleet repository as a shell sees it, and what it remembers between plans.
pub struct Pipeline {
    path: PathBuf,
    repo: Option<FleetRepo>,
    options: Options,
    cache: Option<Cache>,
    /// The last render's per-cluster results (kept in memory by long-running shells).
    memo: Option<RenderMemo>,
    /// What HEAD said when this process last looked, by commit.
    head: Option<(String, HeadState)>,
    saving: Option<Saving>,
    /// Where the remote stands, as far as this process knows.
    publish: PublishState,
    /// The clusters' health, from a shell that observes them (upgrade waves' gates).
    health: Option<std::collections::BTreeMap<String, crate::rollout::Health>>,
    /// A fixed "now" for upgrade waves' timers (tests and replays); the system clock otherwise.
    clock: Option<u64>,
}

/// Whether what was committed reached the remote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishState {
    /// The last commit the remote was seen to hold after a push.
    pub pushed: Option<String>,
    /// Why the last push failed ("committed, not pushed" until a push succeeds).
    pub error: Option<String>,
}

/// How many times a change is rendered again on top of another writer's before giving up.
const MAX_REBASES: usize = 8;

impl Pipeline {
    /// Opens (or creates) the repository at `path`.
    pub fn open(path: &Path, options: Options) -> Result<Pipeline, Error> {
        let repo = if options.create && options.bare {
            Some(FleetRepo::open_or_init_bare(path)?)
        } else if options.create {
            Some(FleetRepo::open_or_init(path)?)
        } else {
            FleetRepo::open_if_exists(path)?
        };
        let cache = repo
            .as_ref()
            .filter(|_| options.disk_cache != Reuse::Nothing)
            .map(|r| Cache::open(r.git_dir()));
        Ok(Pipeline {
            path: path.to_path_buf(),
            repo,
            options,
            cache,
            memo: None,
            head: None,
            saving: None,
            publish: PublishState::default(),
            health: None,
            clock: None,
        })
    }

    /// No repository at all: plans against an empty one (what `validate` renders).
    pub fn detached(options: Options) -> Pipeline {
        Pipeline {
            path: PathBuf::new(),
            repo: None,
            options,
            cache: None,
            memo: None,
            head: None,
            saving: None,
            publish: PublishState::default(),
            health: None,
            clock: None,
        }
    }

    /// The repository, if it exists.
    pub fn repo(&self) -> Option<&FleetRepo> {
        self.repo.as_ref()
    }

    /// Where the fleet repository is (or will be).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The repository's HEAD commit.
    pub fn head_commit(&self) -> Result<Option<ObjectId>, Error> {
        Ok(match &self.repo {
            Some(r) => r.head()?.map(|(c, _)| c),
            None => None,
        })
    }

    fn reading_cache(&self) -> Option<&Cache> {
        self.cache
            .as_ref()
            .filter(|_| self.options.disk_cache == Reuse::All)
    }

    /// Loads and validates declaration files, taking unchanged ones from the cache; the last
    /// render's memo is read meanwhile.
    pub fn load_files(&mut self, paths: &[PathBuf]) -> Result<Model, Diagnostics> {
        let (model, memo) = match self.reading_cache() {
            Some(c) => c.load_model(paths),
            None => (atoll_model::load_model(paths), None),
        };
        if memo.is_some() {
            self.memo = memo;
        }
        model
    }

    /// Whether a render died after its commit and before the work tree caught up.
    pub fn interrupted(&self) -> bool {
        self.repo.as_ref().is_some_and(|r| r.checkout_interrupted())
    }

    /// What HEAD says about atoll's last render (from memory or the cache when HEAD is a
    /// commit seen before).
    pub fn head_state(&mut self, full: bool) -> Result<HeadState, Error> {
        let commit = self.head_commit()?.map(|c| c.to_string());
        if !full
            && let (Some(c), Some((seen, state))) = (&commit, &self.head)
            && c == seen
        {
            return Ok(state.clone());
        }
        if !full
            && let (Some(cache), Some(c)) = (self.reading_cache(), &commit)
            && let Some(h) = cache.head(c)
        {
            self.head = Some((c.clone(), h.clone()));
            return Ok(h);
        }
        let h = HeadState::read(
            self.repo.as_ref(),
            full || self.options.disk_cache == Reuse::WriteOnly,
        )?;
        if let Some(c) = commit {
            if self.options.disk_cache == Reuse::All
                && let Some(cache) = &self.cache
            {
                cache.save_head(&c, &h);
            }
            self.head = Some((c, h.clone()));
        }
        Ok(h)
    }

    /// What the shell observed of the clusters, for upgrade waves' health gates (the
    /// operator sets it before each pass; without it, gates are not judged).
    pub fn set_health(
        &mut self,
        health: std::collections::BTreeMap<String, crate::rollout::Health>,
    ) {
        self.health = Some(health);
    }

    /// Fixes the time upgrade waves' timers see (Unix seconds).
    pub fn set_clock(&mut self, now: u64) {
        self.clock = Some(now);
    }

    /// Plans `model` against HEAD: fetches upstream packages, renders only the clusters whose
    /// inputs changed (recalling the last render's memo), and turns the output into a tree
    /// edit and a per-cluster plan. With `for_commit`, the writer lock is taken first (and a
    /// work tree left behind by an interrupted render is repaired).
    pub fn plan(
        &mut self,
        model: &Model,
        with_diff: bool,
        for_commit: bool,
    ) -> Result<Plan, Failure> {
        self.plan_with(model, with_diff, for_commit, false)
    }

    /// [`Pipeline::plan`], rendering every cluster again when `full`.
    pub fn plan_with(
        &mut self,
        model: &Model,
        with_diff: bool,
        for_commit: bool,
        full: bool,
    ) -> Result<Plan, Failure> {
        let lock = match (&self.repo, for_commit) {
            (Some(r), true) => {
                let lock = r
                    .lock(&self.options.writer, &|holder| {
                        eprintln!("waiting for the repository lock, held by {holder}")
                    })
                    .map_err(Error::from)?;
                if r.repair_work_tree().map_err(Error::from)? {
                    eprintln!(
                        "repaired the work tree of {} (a render was interrupted after its commit)",
                        self.path.display()
                    );
                }
                Some(lock)
            }
            _ => None,
        };
        if lock.is_some() {
            self.sync()?;
        }
        let head = self.head_state(full)?;
        let base = self.head_commit()?;
        let upstreams = crate::fetch_upstreams(model, &self.options.sources)?;
        let memo = if full { None } else { self.memo.take() };
        let mut out =
            crate::render(model, &head, &upstreams, memo.as_ref()).map_err(Failure::Invalid)?;
        if let Some(repo) = &self.repo {
            let skips = crate::version_skips(model, repo, &out)?;
            if !skips.is_empty() {
                return Err(Failure::Invalid(Diagnostics(skips)));
            }
        }
        // The memo is kept for the next plan (and written to the cache meanwhile).
        let fresh = std::mem::take(&mut out.memo);
        if let Some(cache) = &self.cache
            && self.options.disk_cache != Reuse::Nothing
            && memo.as_ref() != Some(&fresh)
        {
            self.saving = Some(cache.save_memo_in_background(fresh.clone()));
        }
        self.memo = Some(fresh);
        let observed = crate::rollout::Observed {
            now: self.clock.unwrap_or_else(crate::rollout::now),
            health: self.health.clone(),
        };
        let rollouts = crate::rollout::apply(model, self.repo.as_ref(), &mut out, &observed)?;
        let mut change = crate::change(&head, out, self.repo.as_ref(), with_diff)?;
        change.rollouts = rollouts;
        Ok(Plan {
            change,
            base,
            _lock: lock,
        })
    }

    /// Commits a plan (one commit whose message summarises each cluster's change, none when
    /// the tree is unchanged) and updates the work tree's changed paths. `note` says why.
    pub fn commit(&mut self, plan: Plan, note: Option<&str>) -> Result<Committed, Error> {
        let message = crate::plan::commit_message(&plan.change.plans, note);
        let Some(repo) = &self.repo else {
            return Err(Error::State {
                file: self.path.display().to_string(),
                message: "no repository to commit to".into(),
            });
        };
        let commit = repo
            .commit_edit(&plan.change.edit, &message)?
            .map(|(_, c)| c);
        let head = repo.head()?.map(|(c, _)| c);
        if let Some(c) = &commit {
            let id = c.to_string();
            if let Some(cache) = &self.cache
                && self.options.disk_cache != Reuse::Nothing
            {
                cache.save_head(&id, &plan.change.after);
            }
            self.head = Some((id, plan.change.after.clone()));
        }
        Ok(Committed {
            commit,
            head,
            message,
        })
    }

    /// Takes what the remote holds when it is ahead of (or diverged from) the local
    /// repository: the next plan renders on top of it. Local commits not yet pushed are left
    /// behind — the declarations are the source of truth, so rendering them again on top of
    /// the remote's commit puts the same change there.
    pub fn sync(&mut self) -> Result<(), Error> {
        let (Some(remote), Some(repo)) = (&self.options.remote, &self.repo) else {
            return Ok(());
        };
        // A remote that cannot be reached does not stop the commit: it is pushed later.
        let theirs = match repo.fetch(remote) {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.publish.error = Some(e.to_string());
                return Ok(());
            }
        };
        let ours = repo.head()?.map(|(c, _)| c);
        if ours == Some(theirs) {
            return Ok(());
        }
        if let Some(o) = ours
            && repo.is_ancestor(theirs, o)?
        {
            return Ok(()); // we are ahead: the next push fast-forwards
        }
        repo.reset_to(theirs)?;
        self.head = None;
        Ok(())
    }

    /// Pushes HEAD to the remote (fast-forward only). `Ok(false)` when the remote moved
    /// meanwhile: sync, plan and commit again, then publish.
    pub fn publish(&mut self) -> Result<bool, Error> {
        let (Some(remote), Some(repo)) = (&self.options.remote, &self.repo) else {
            return Ok(true);
        };
        match repo.push(remote) {
            Ok(Pushed::Pushed | Pushed::UpToDate) => {
                self.publish.pushed = repo.head()?.map(|(c, _)| c.to_string());
                self.publish.error = None;
                Ok(true)
            }
            Ok(Pushed::Rejected) => Ok(false),
            Err(e) => {
                self.publish.error = Some(e.to_string());
                Err(e.into())
            }
        }
    }

    /// Commits a plan and publishes it; when another writer pushed first, renders `model`
    /// again on top of theirs and tries again. A push that fails for another reason (the
    /// server is down, credentials are refused) leaves the local commit: see
    /// [`Pipeline::publish_state`], and call [`Pipeline::publish`] later.
    pub fn commit_and_publish(
        &mut self,
        plan: Plan,
        model: &Model,
        note: Option<&str>,
    ) -> Result<Committed, Failure> {
        self.commit_and_publish_with(plan, &mut || Ok(model.clone()), note)
    }

    /// [`Pipeline::commit_and_publish`], asking `model` for the declarations to render again
    /// when the remote moved: a shell whose declarations live in a shared store reads them
    /// again, so that what the other writer changed is in the new render.
    pub fn commit_and_publish_with(
        &mut self,
        mut plan: Plan,
        model: &mut dyn FnMut() -> Result<Model, Failure>,
        note: Option<&str>,
    ) -> Result<Committed, Failure> {
        let mut done = self.commit(plan, note)?;
        for _ in 0..MAX_REBASES {
            match self.publish() {
                Ok(true) => return Ok(done),
                Ok(false) => {
                    eprintln!("the remote moved (another writer): rendering again on top of it");
                    let m = model()?;
                    plan = self.plan(&m, false, true)?;
                    done = self.commit(plan, note)?;
                }
                Err(_) => return Ok(done),
            }
        }
        self.publish.error = Some(format!(
            "the remote kept moving: {MAX_REBASES} renders on top of other writers' commits were all overtaken"
        ));
        Ok(done)
    }

    /// For declarations kept in a store other writers share: takes the writer lock, syncs
    /// with the remote, and only then asks `model` for the declarations — so everything
    /// behind the remote's commit is in them — plans, commits and publishes; when another
    /// writer pushed meanwhile, does it all again.
    pub fn commit_fresh(
        &mut self,
        model: &mut dyn FnMut() -> Result<Model, Failure>,
        note: Option<&str>,
    ) -> Result<Committed, Failure> {
        let mut done = None;
        for _ in 0..MAX_REBASES {
            let lock = match &self.repo {
                Some(r) => Some(
                    r.lock(&self.options.writer, &|holder| {
                        eprintln!("waiting for the repository lock, held by {holder}")
                    })
                    .map_err(Error::from)?,
                ),
                None => None,
            };
            if let Some(r) = &self.repo {
                r.repair_work_tree().map_err(Error::from)?;
            }
            self.sync()?;
            let m = model()?;
            let mut plan = self.plan_with(&m, false, false, false)?;
            plan._lock = lock;
            let d = self.commit(plan, note)?;
            done = Some(d);
            match self.publish() {
                Ok(true) | Err(_) => return Ok(done.expect("committed")),
                Ok(false) => {
                    eprintln!("the remote moved (another writer): rendering again on top of it");
                    continue;
                }
            }
        }
        self.publish.error = Some(format!(
            "the remote kept moving: {MAX_REBASES} renders on top of other writers' commits were all overtaken"
        ));
        Ok(done.expect("committed at least once"))
    }

    /// Whether HEAD reached the remote.
    pub fn publish_state(&self) -> PublishState {
        self.publish.clone()
    }

    /// Publishes to `remote` from now on.
    pub fn set_remote(&mut self, remote: Option<Remote>) {
        self.options.remote = remote;
    }

    /// Whether a remote is configured.
    pub fn has_remote(&self) -> bool {
        self.options.remote.is_some()
    }

    /// What the last render remembered (for a process that keeps it elsewhere).
    pub fn take_memo(&mut self) -> Option<RenderMemo> {
        self.memo.take()
    }
}
