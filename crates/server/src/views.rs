//! Read models over the whole fleet, shaped for a screen: who the caller is, every cluster
//! with its labels, state and placements in one compact answer (the fleet map and the
//! placement matrix), and one cluster explained (effective spec with the provenance of each
//! value, its Cluster API objects, why each application is placed on it). Public API routes,
//! in the OpenAPI document like the rest: the web UI has no other way in.

use crate::problem::Problem;
use crate::{State, can_read};
use atoll_inventory::Role;
use atoll_model::selector::Selector;
use axum::Json;
use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

type S = axum::extract::State<Arc<State>>;

/// `GET /api/v1/session`: the caller, and what it may do.
pub async fn session(state: S, headers: HeaderMap) -> Result<Json<Value>, Problem> {
    let p = state.principal(&headers).await?;
    Ok(Json(json!({
        "name": p.name,
        "team": p.team,
        "role": p.role.as_str(),
        "canWrite": p.role != Role::Reader,
        "oidcIssuer": state.oidc.as_ref().map(|o| o.issuer.clone()),
    })))
}

/// The query of `/api/v1/fleet`: which clusters, and whether with their applications.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FleetQuery {
    label_selector: Option<String>,
    /// `false`: leave out the applications on each cluster (a map needs none; at 10,000
    /// clusters they are half the answer).
    placements: Option<bool>,
}

/// `GET /api/v1/fleet[?labelSelector=…]`: every cluster the selector picks, with its labels,
/// provider, phase, agent sync (when observed) and the applications placed on it (indices
/// into `applications`, which holds only those the caller may see); the logical clusters
/// with their members and links.
pub async fn fleet(
    state: S,
    headers: HeaderMap,
    Query(q): Query<FleetQuery>,
) -> Result<axum::response::Response, Problem> {
    let p = state.principal(&headers).await?;
    let selector = q.label_selector.unwrap_or_default();
    let sel = Selector::parse(&selector)
        .map_err(|e| Problem::bad_request(format!("labelSelector: {}", e.0)))?;
    let team = (p.role != Role::Admin).then_some(p.team);
    let st = state.0.clone();
    let placements = q.placements.unwrap_or(true);
    let body = tokio::task::spawn_blocking(move || {
        fleet_cached(&st, team.as_deref(), &selector, &sel, placements)
    })
    .await
    .map_err(|e| Problem::internal(e.to_string()))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}

/// Fleet answers by (visibility, selector), for the fleet as of one version (a commit or a
/// sweep of the clusters bumps it): at 10,000 clusters building one takes a while, and every
/// open fleet map asks for the same one.
#[derive(Default)]
pub struct FleetCache {
    version: u64,
    bodies: Vec<(String, Arc<str>)>,
}

/// How many answers are kept per version.
const FLEET_CACHE_SIZE: usize = 16;

/// The fleet answer for a caller who sees `team`'s applications (`None`: all), cached.
pub fn fleet_cached(
    state: &State,
    team: Option<&str>,
    selector: &str,
    sel: &Selector,
    placements: bool,
) -> Arc<str> {
    let version = state
        .fleet_version
        .load(std::sync::atomic::Ordering::Acquire);
    let key = format!("{}\n{placements}\n{selector}", team.unwrap_or("*"));
    {
        let c = state.fleet_cache.lock().expect("fleet cache");
        if c.version == version
            && let Some((_, b)) = c.bodies.iter().find(|(k, _)| *k == key)
        {
            return b.clone();
        }
    }
    let body: Arc<str> = fleet_json(state, team, sel, placements).to_string().into();
    let mut c = state.fleet_cache.lock().expect("fleet cache");
    if c.version != version {
        *c = FleetCache {
            version,
            bodies: vec![],
        };
    }
    if c.bodies.len() >= FLEET_CACHE_SIZE {
        c.bodies.remove(0);
    }
    c.bodies.push((key, body.clone()));
    body
}

fn fleet_json(state: &State, team: Option<&str>, sel: &Selector, placements: bool) -> Value {
    let view = state.view.read().expect("view");
    let observed = state.observed.read().expect("observed");
    let all = state.catalogs.current();
    let visible = |app: &str| team.is_none_or(|t| app.split('/').next() == Some(t));
    let apps: Vec<&str> = view
        .revisions
        .keys()
        .map(String::as_str)
        .filter(|a| visible(a))
        .collect();
    let index: std::collections::HashMap<&str, usize> =
        apps.iter().enumerate().map(|(i, a)| (*a, i)).collect();
    let mut clusters = Vec::new();
    let unknown = ("unknown".to_string(), "Unknown".to_string());
    for (key, entry) in all.range("Cluster", None, None) {
        if key.0 != "Cluster" {
            break;
        }
        let name = key.2.as_str();
        if !sel.matches(&entry.labels) {
            continue;
        }
        let (provider, phase) = view.clusters.get(name).unwrap_or(&unknown);
        let phase = observed.phases.get(name).unwrap_or(phase);
        let placed: Vec<usize> = view
            .placements
            .get(name)
            .into_iter()
            .flat_map(|a| a.iter())
            .filter_map(|a| index.get(&**a).copied())
            .collect();
        let mut c = json!({
            "name": name,
            "labels": entry.labels,
            "provider": provider,
            "phase": phase,
        });
        if placements {
            c["apps"] = json!(placed);
        }
        if let Some(s) = observed.clusters.get(name) {
            c["sync"] = json!(s.state.as_str());
            if let Some(b) = s.behind {
                c["behind"] = json!(b);
            }
        }
        clusters.push(c);
    }
    let logical: Vec<Value> = state
        .model
        .read()
        .expect("model")
        .as_ref()
        .map(|m| {
            m.logical_clusters
                .values()
                .map(|lc| {
                    json!({
                        "name": lc.name,
                        "members": m.members(lc),
                        "connectivity": lc.spec.connectivity,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let applications: Vec<Value> = apps
        .iter()
        .map(|a| json!({"name": a, "revision": view.revisions.get(*a)}))
        .collect();
    json!({
        "commit": view.commit,
        "total": view.clusters.len(),
        "clusters": clusters,
        "applications": applications,
        "logicalClusters": logical,
    })
}

/// `GET /api/v1/clusters/{name}/explain`: the cluster's effective spec with the provenance of
/// every value, its Cluster API objects as committed at HEAD, and why each application the
/// caller may see is placed on it.
pub async fn explain_cluster(
    state: S,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, Problem> {
    let p = state.principal(&headers).await?;
    let Some(model) = state.model.read().expect("model").clone() else {
        return Err(Problem::not_found(format!("no cluster `{name}`")));
    };
    let Some(decl) = model.clusters.get(&name) else {
        return Err(Problem::not_found(format!("no cluster `{name}`")));
    };
    let resolved = atoll_engine::resolve::resolve(&model, decl)
        .map(|r| json!(r))
        .map_err(|d| Problem::internal(format!("the cluster does not resolve: {d:?}")))?;
    let view = state.view.read().expect("view").clone();
    let app_kind = state.kind_by_plural("applications").cloned();
    let placed: Vec<Value> = view
        .placements
        .get(&name)
        .into_iter()
        .flat_map(|a| a.iter())
        .filter(|a| {
            let team = a.split('/').next().unwrap_or("");
            app_kind.as_ref().is_some_and(|k| can_read(&p, k, team))
        })
        .map(|a| {
            let (team, app) = a.split_once('/').unwrap_or(("", a));
            json!({
                "application": &**a,
                "revision": view.revisions.get(&**a),
                "reasons": atoll_engine::placement_reasons(&model, (team, app), &name, &decl.labels),
            })
        })
        .collect();
    let repo = state.repo.clone();
    let cluster = name.clone();
    let (management, allocations) = tokio::task::spawn_blocking(move || committed(&repo, &cluster))
        .await
        .map_err(|e| Problem::internal(e.to_string()))?;
    let (sync, phase) = {
        let o = state.observed.read().expect("observed");
        (o.clusters.get(&name).cloned(), o.phases.get(&name).cloned())
    };
    Ok(Json(json!({
        "name": name,
        "labels": decl.labels,
        "origin": {"file": &*decl.origin.file, "line": decl.origin.line},
        "effective": resolved,
        "management": management,
        "allocations": allocations,
        "applications": placed,
        "sync": sync,
        "phase": phase.or_else(|| view.clusters.get(&name).map(|c| c.1.clone())),
    })))
}

/// What HEAD holds for the cluster: kind and name of each object under its management
/// directory, by file; and its address allocations (pool → CIDR).
fn committed(repo: &std::path::Path, cluster: &str) -> (Vec<Value>, BTreeMap<String, String>) {
    let Ok(Some(r)) = atoll_gitops::FleetRepo::open_if_exists(repo) else {
        return (vec![], BTreeMap::new());
    };
    let mut allocations = BTreeMap::new();
    if let Ok(Some(bytes)) = r.head_file(atoll_layout::ALLOCATIONS_FILE)
        && let Ok(docs) = atoll_model::yaml::parse_values(&String::from_utf8_lossy(&bytes))
        && let Some(pools) = docs.first().and_then(|d| d["pools"].as_object())
    {
        for (pool, by_cluster) in pools {
            if let Some(cidr) = by_cluster[cluster].as_str() {
                allocations.insert(pool.clone(), cidr.to_string());
            }
        }
    }
    let dir = atoll_layout::management_dir(cluster);
    let Ok(files) = r.head_files_under([dir.as_str()]) else {
        return (vec![], allocations);
    };
    let mut out = Vec::new();
    for (path, bytes) in files.iter() {
        let text = String::from_utf8_lossy(bytes);
        let objects: Vec<Value> = atoll_model::yaml::parse_values(&text)
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v.is_object())
            .map(|v| {
                json!({
                    "apiVersion": v["apiVersion"],
                    "kind": v["kind"],
                    "name": v["metadata"]["name"],
                    "namespace": v["metadata"]["namespace"],
                })
            })
            .collect();
        out.push(json!({"file": path, "objects": objects}));
    }
    (out, allocations)
}
