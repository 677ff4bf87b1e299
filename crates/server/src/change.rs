//! Executing a change: in one store transaction, write the objects, validate the whole
//! resulting fleet, render it against the repository's HEAD; then (unless it is a plan) commit
//! the transaction, commit the render to Git and record one event per object. A change that
//! does not validate or render leaves the store and Git as they were.

use crate::State;
use crate::problem::{FieldError, Problem};
use atoll_inventory::{self as inv, Event, Principal, Stored};
use atoll_model::{Declarations, Model};
use atoll_pipeline::plan::ClusterPlan;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// One write.
#[derive(Debug, Clone)]
pub enum Op {
    /// Create; fails if the object exists.
    Create(Value),
    /// Update; `expected` is the resourceVersion the caller read.
    Update {
        /// The new object.
        body: Value,
        /// See above; `None` writes whatever is stored.
        expected: Option<i64>,
    },
    /// Create or update (apply, rollback).
    Upsert(Value),
    /// Delete; `expected` as for updates.
    Delete {
        /// The object's kind.
        kind: String,
        /// Its namespace ("" for cluster-scoped kinds).
        namespace: String,
        /// Its name.
        name: String,
        /// The resourceVersion the caller read.
        expected: Option<i64>,
    },
}

/// Writes applied together: one render, one commit, events sharing one change id.
#[derive(Debug, Clone)]
pub struct ChangeRequest {
    /// The writes, in order.
    pub ops: Vec<Op>,
    /// Why (optional, recorded in events and the commit message).
    pub message: String,
    /// Who asks (authorised per op).
    pub actor: Principal,
    /// Recorded action; empty: create / update / delete per op.
    pub action: &'static str,
}

/// What a change did (or, for a plan, would do).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeOutcome {
    /// Shared by its events.
    pub change_id: String,
    /// The Git commit, "" when no file changed (or for a plan).
    pub commit: String,
    /// Per cluster: what the change does to its files.
    pub plans: Vec<ClusterPlan>,
    /// Objects after the change (deleted ones as they were).
    pub objects: Vec<Value>,
    /// The ids of the events recorded.
    pub events: Vec<i64>,
}

/// The key an object's diagnostics are filed under.
pub fn object_key(kind: &str, namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}/{namespace}/{name}")
    }
}

/// The declaration the model reads from a stored object: what a client wrote, without what
/// the server set.
pub fn declaration(body: &Value) -> Value {
    let m = &body["metadata"];
    let mut meta = json!({"name": m["name"]});
    if let Some(ns) = m["namespace"].as_str().filter(|s| !s.is_empty()) {
        meta["namespace"] = json!(ns);
    }
    if m["labels"].is_object() {
        meta["labels"] = m["labels"].clone();
    }
    let mut decl =
        json!({"apiVersion": body["apiVersion"], "kind": body["kind"], "metadata": meta});
    if !body["spec"].is_null() {
        decl["spec"] = body["spec"].clone();
    }
    decl
}

/// Validates every stored object together.
pub fn model_of(objects: &[Stored]) -> Result<Model, Vec<FieldError>> {
    model_with(objects, None)
}

/// Per object (by kind, namespace, name): the resourceVersion and what it loaded as.
pub type DeclCache =
    std::collections::HashMap<(String, String, String), (i64, std::sync::Arc<Declarations>)>;

/// [`model_of`], taking each object unchanged since it was last loaded from `cache` (and
/// keeping what it loads there).
pub fn model_with<'a>(
    objects: impl IntoIterator<Item = &'a Stored>,
    mut cache: Option<&mut DeclCache>,
) -> Result<Model, Vec<FieldError>> {
    let mut decls = Declarations::default();
    let mut diags = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for o in objects {
        let id = (o.kind.clone(), o.namespace.clone(), o.name.clone());
        if let Some(c) = cache.as_deref()
            && let Some((rv, d)) = c.get(&id)
            && *rv == o.resource_version
        {
            decls.extend((**d).clone());
            seen.insert(id);
            continue;
        }
        let key = object_key(&o.kind, &o.namespace, &o.name);
        let mut one = Declarations::default();
        let before = diags.len();
        atoll_model::load_value(&key, declaration(&o.body), &mut one, &mut diags);
        if let Some(c) = cache.as_deref_mut()
            && diags.len() == before
        {
            c.insert(
                id.clone(),
                (o.resource_version, std::sync::Arc::new(one.clone())),
            );
        }
        seen.insert(id);
        decls.extend(one);
    }
    if let Some(c) = cache {
        c.retain(|k, _| seen.contains(k));
    }
    let diags = if diags.is_empty() {
        match atoll_model::validate(decls) {
            Ok(m) => return Ok(m),
            Err(d) => d.0,
        }
    } else {
        diags
    };
    Err(diags.into_iter().map(FieldError::about_stored).collect())
}

/// Plans `model` against the repository through the pipeline (the same path `atoll render`
/// takes). With `for_commit`, the plan holds the repository's writer lock until committed.
pub fn plan(
    state: &State,
    model: &Model,
    for_commit: bool,
) -> Result<atoll_pipeline::Plan, Problem> {
    let t = Instant::now();
    let plan = state
        .with_pipeline(|p| p.plan(model, false, for_commit))
        .map_err(|f| match f {
            atoll_pipeline::Failure::Invalid(d) => Problem::invalid(
                "the fleet does not render",
                d.0.into_iter().map(FieldError::about_stored).collect(),
            ),
            atoll_pipeline::Failure::Error(atoll_pipeline::Error::Upstream(d)) => Problem::invalid(
                "an upstream package is not allowed or cannot be read",
                vec![FieldError::about_stored(d)],
            ),
            atoll_pipeline::Failure::Error(e) => Problem::internal(e.to_string()),
        })?;
    state.metrics.observe_render(t.elapsed().as_secs_f64());
    Ok(plan)
}

/// Commits the store's declarations as they are now, on top of the remote's HEAD, and
/// publishes them (see `Pipeline::commit_fresh`). Returns HEAD afterwards.
pub fn commit_fresh(state: &State, note: &str) -> Result<String, Problem> {
    let t = Instant::now();
    let mut fresh = || fresh_model(state);
    let done = state
        .with_pipeline(|p| p.commit_fresh(&mut fresh, Some(note)))
        .map_err(|e| Problem::internal(format!("Git commit failed: {e}")))?;
    state.metrics.observe_commit(t.elapsed().as_secs_f64());
    Ok(done.head.map(|c| c.to_string()).unwrap_or_default())
}

/// The store's declarations, read now (blocking: called from inside `block_in_place`).
fn fresh_model(state: &State) -> Result<Model, atoll_pipeline::Failure> {
    let rt = tokio::runtime::Handle::current();
    let all = rt.block_on(state.store.list(None, None)).map_err(|e| {
        atoll_pipeline::Failure::Error(atoll_pipeline::Error::State {
            file: "store".into(),
            message: e.to_string(),
        })
    })?;
    state.model_of(&all).map_err(|errs| {
        atoll_pipeline::Failure::Error(atoll_pipeline::Error::State {
            file: "store".into(),
            message: errs
                .iter()
                .map(|e| format!("{}: {}", e.object, e.message))
                .collect::<Vec<_>>()
                .join("; "),
        })
    })
}

/// Commits a plan (a server without a remote; with one, see [`commit_fresh`]). Returns HEAD
/// afterwards.
pub fn commit(state: &State, plan: atoll_pipeline::Plan, note: &str) -> Result<String, Problem> {
    let t = Instant::now();
    let done = state
        .with_pipeline(|p| p.commit(plan, Some(note)))
        .map_err(|e| Problem::internal(format!("Git commit failed: {e}")))?;
    state.metrics.observe_commit(t.elapsed().as_secs_f64());
    Ok(done.head.map(|c| c.to_string()).unwrap_or_default())
}

fn team_of(kind: &str, namespace: &str, name: &str) -> String {
    match kind {
        "Team" => name.to_string(),
        _ => namespace.to_string(),
    }
}

/// Runs a change. With `dry_run`, nothing is kept: the plan is all.
pub async fn execute(
    state: &State,
    req: ChangeRequest,
    dry_run: bool,
    step: &(dyn Fn(&str) + Sync),
) -> Result<ChangeOutcome, Problem> {
    // One change at a time per process: renders and Git commits are sequential by nature.
    let _guard = state.write.lock().await;
    // Each step's duration goes to the log, one line per change: where a write's time goes.
    let mut last = (Instant::now(), "start");
    let timings = std::sync::Mutex::new(String::new());
    let step = |name: &'static str, last: &mut (Instant, &'static str)| {
        if last.1 != "start" {
            timings.lock().expect("timings").push_str(&format!(
                " {} {:.0} ms,",
                last.1,
                last.0.elapsed().as_secs_f64() * 1000.0
            ));
        }
        *last = (Instant::now(), name);
        // "read" and "done" are timing marks only; the task shows the others.
        if !matches!(name, "read" | "view" | "done") {
            step(name);
        }
    };
    let mut tx = state.store.begin().await?;
    step("write", &mut last);
    let mut written: Vec<(String, Option<Value>, Option<Value>)> = Vec::new();
    for op in &req.ops {
        let (action, before, after) = match op {
            Op::Create(body) => (
                "create",
                None,
                Some(inv::create(&mut tx, body.clone()).await?),
            ),
            Op::Update { body, expected } => {
                let (old, new) = inv::update(&mut tx, body.clone(), *expected).await?;
                ("update", Some(old), Some(new))
            }
            Op::Upsert(body) => {
                let (kind, ns, name) = inv::identity(body);
                if inv::get(&mut tx, &kind, &ns, &name).await?.is_some() {
                    let (old, new) = inv::update(&mut tx, body.clone(), None).await?;
                    ("update", Some(old), Some(new))
                } else {
                    (
                        "create",
                        None,
                        Some(inv::create(&mut tx, body.clone()).await?),
                    )
                }
            }
            Op::Delete {
                kind,
                namespace,
                name,
                expected,
            } => (
                "delete",
                Some(inv::delete(&mut tx, kind, namespace, name, *expected).await?),
                None,
            ),
        };
        written.push((
            action.to_string(),
            before.map(|s| s.body),
            after.map(|s| s.body),
        ));
    }
    step("read", &mut last);
    // The objects after this change: the in-memory catalog with this transaction's writes
    // when the catalog is the store as it was (each write bumps the version once), else the
    // store itself (another replica wrote meanwhile).
    let now = inv::resource_version(&mut tx).await?;
    let snap = state.catalogs.current();
    // (Holding the counter's row since our first write, no transaction with a lower version
    // is still open: the store as read here is exactly the store at version `now`.)
    let consistent = now - req.ops.len() as i64 == snap.resource_version;
    // Borrowed from the catalog, not copied: 10,000 objects' bodies cost tens of ms to clone.
    let changed: Vec<(crate::catalog::Key, Option<inv::Stored>)> = written
        .iter()
        .map(|(_, before, after)| {
            let obj = after.as_ref().or(before.as_ref()).expect("object");
            let key = inv::identity(obj);
            let stored = after.as_ref().map(|body| inv::Stored {
                kind: key.0.clone(),
                namespace: key.1.clone(),
                name: key.2.clone(),
                resource_version: body["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(now),
                body: body.clone(),
            });
            (key, stored)
        })
        .collect();
    let store_now: Vec<inv::Stored>;
    let all: Vec<&inv::Stored> = if consistent {
        let mut objects: BTreeMap<&crate::catalog::Key, Option<&inv::Stored>> = snap
            .objects
            .iter()
            .map(|(k, e)| (k, Some(&e.stored)))
            .collect();
        for (key, stored) in &changed {
            objects.insert(key, stored.as_ref());
        }
        objects.into_values().flatten().collect()
    } else {
        store_now = inv::list(&mut tx, None, None).await?;
        store_now.iter().collect()
    };
    step("validate", &mut last);
    let model = state.model_of(all.iter().copied()).map_err(|errors| {
        Problem::invalid(
            "the change leaves declarations that do not validate; nothing was stored",
            errors,
        )
    })?;
    step("render", &mut last);
    // With a remote shared with other writers, this render only checks the change: the one
    // committed is made after the store's transaction, from the store as it then is.
    let remote = state.remote;
    let planned = tokio::task::block_in_place(|| plan(state, &model, !dry_run && !remote))?;
    let change = &planned.change;
    let touched: Vec<String> = change
        .plans
        .iter()
        .filter(|p| !p.is_fleet())
        .map(|p| p.cluster.to_string())
        .collect();
    let change_id = inv::new_change_id();
    if dry_run {
        tx.rollback().await.map_err(inv::StoreError::from)?;
        return Ok(ChangeOutcome {
            change_id,
            commit: String::new(),
            plans: planned.change.plans,
            objects: written
                .into_iter()
                .filter_map(|(_, b, a)| a.or(b))
                .collect(),
            events: vec![],
        });
    }
    // Events first (in the transaction), the commit id filled in once Git has it.
    step("record", &mut last);
    let at = inv::now();
    let mut events = Vec::new();
    for (action, before, after) in &written {
        let obj = after.as_ref().or(before.as_ref()).expect("object");
        let (kind, namespace, name) = inv::identity(obj);
        let e = Event {
            id: 0,
            change_id: change_id.clone(),
            at: at.clone(),
            actor: req.actor.name.clone(),
            action: if req.action.is_empty() {
                action.clone()
            } else {
                req.action.to_string()
            },
            team: team_of(&kind, &namespace, &name),
            kind,
            namespace,
            name,
            message: req.message.clone(),
            commit: String::new(),
            clusters: touched.clone(),
            before: before.clone(),
            after: after.clone(),
        };
        events.push(inv::record(&mut tx, &e).await?);
    }
    tx.commit().await.map_err(inv::StoreError::from)?;
    // The catalog now says version `now`: this change on top of what it held, or (when it
    // was behind another replica's writes) the store as this transaction read it.
    if consistent {
        state.catalogs.apply(
            written
                .iter()
                .map(|(_, before, after)| {
                    let obj = after.as_ref().or(before.as_ref()).expect("object");
                    let (kind, namespace, name) = inv::identity(obj);
                    ((kind, namespace, name), after.clone())
                })
                .collect(),
            now,
        );
    } else {
        state
            .catalogs
            .replace(all.into_iter().cloned().collect(), now);
    }
    step("commit", &mut last);
    let note = if req.message.is_empty() {
        format!("By {} (change {change_id}).", req.actor.name)
    } else {
        format!(
            "{}\n\nBy {} (change {change_id}).",
            req.message, req.actor.name
        )
    };
    let changed = !change.plans.is_empty();
    let plans = change.plans.clone();
    let view = crate::ViewUpdate::of(&planned.change);
    let head = tokio::task::block_in_place(|| {
        if remote {
            drop(planned);
            commit_fresh(state, &note)
        } else {
            commit(state, planned, &note)
        }
    })
    .map_err(|p| {
        Problem::internal(format!(
            "stored, but {}; the next change (or a restart) commits it",
            p.detail
        ))
    })?;
    let commit = if changed { head.clone() } else { String::new() };
    if !commit.is_empty() {
        state.store.set_event_commit(&change_id, &commit).await?;
    }
    step("view", &mut last);
    state.set_view(model, view, &head);
    step("done", &mut last);
    tracing::info!(
        "change {change_id} ({} objects):{}",
        written.len(),
        timings.lock().expect("timings").trim_end_matches(',')
    );
    Ok(ChangeOutcome {
        change_id,
        commit,
        plans,
        objects: written
            .into_iter()
            .filter_map(|(_, b, a)| a.or(b))
            .collect(),
        events,
    })
}

/// Clusters in both sets, for placement answers.
pub fn placements_by_app(
    placements: &atoll_engine::Placements,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (c, apps) in placements {
        for a in apps.iter() {
            out.entry(a.to_string()).or_default().insert(c.clone());
        }
    }
    out
}
