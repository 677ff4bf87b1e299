//! What the fleet looks like: the placement matrix, inventory counts and Prometheus metrics.

use super::*;

#[derive(Deserialize, Default)]
pub(super) struct PlacementQuery {
    cluster: Option<String>,
    application: Option<String>,
}

pub(super) async fn placements(
    state: S,
    headers: HeaderMap,
    Query(q): Query<PlacementQuery>,
) -> Result<Json<Value>, Problem> {
    let p = state.principal(&headers).await?;
    let view = state.view.read().expect("view").clone();
    let visible =
        |app: &str| p.role == Role::Admin || app.split('/').next() == Some(p.team.as_str());
    match (q.cluster, q.application) {
        (Some(c), None) => {
            let observed = state
                .observed
                .read()
                .expect("observed")
                .clusters
                .get(&c)
                .cloned();
            if !view.clusters.contains_key(&c) && observed.is_none() {
                return Err(Problem::not_found(format!("no cluster `{c}`")));
            }
            let apps: Vec<Value> = view
                .placements
                .get(&c)
                .into_iter()
                .flat_map(|a| a.iter())
                .filter(|a| visible(a))
                .map(|a| json!({"application": &**a, "revision": view.revisions.get(&**a)}))
                .collect();
            let mut out = json!({"cluster": c, "commit": view.commit, "applications": apps});
            if let Some(s) = observed {
                out["sync"] = json!(s);
            }
            Ok(Json(out))
        }
        (None, Some(a)) => {
            if !visible(&a) || !view.revisions.contains_key(&a) {
                return Err(Problem::not_found(format!(
                    "no application `{a}` (use team/name)"
                )));
            }
            let by_app = change::placements_by_app(&view.placements);
            let mut out = json!({
                "application": a,
                "revision": view.revisions.get(&a),
                "commit": view.commit,
                "clusters": by_app.get(&a).cloned().unwrap_or_default(),
            });
            if let Some((ok, n)) = state
                .observed
                .read()
                .expect("observed")
                .applications
                .get(&a)
            {
                out["atHead"] = json!({"clusters": ok, "of": n});
            }
            Ok(Json(out))
        }
        _ => Err(Problem::bad_request(
            "give exactly one of `cluster` or `application` (team/name)",
        )),
    }
}

pub(super) fn inventory_counts(state: &State, objects: &crate::catalog::Catalog) -> Value {
    let view = state.view.read().expect("view").clone();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for (kind, _, _) in objects.objects.keys() {
        *by_kind.entry(kind.clone()).or_default() += 1;
    }
    let mut by_provider: BTreeMap<String, usize> = BTreeMap::new();
    for (prov, _) in view.clusters.values() {
        *by_provider.entry(prov.clone()).or_default() += 1;
    }
    let placements: usize = view.placements.values().map(|a| a.len()).sum();
    let components: usize = view
        .placements
        .values()
        .flat_map(|a| a.iter())
        .map(|a| view.components.get(&**a).copied().unwrap_or(0))
        .sum();
    json!({
        "commit": view.commit,
        "clusters": view.clusters.len(),
        "clustersByProvider": by_provider,
        "applications": by_kind.get("Application").copied().unwrap_or(0),
        "teams": by_kind.get("Team").copied().unwrap_or(0),
        "placements": placements,
        "components": components,
        "objects": by_kind,
        "sync": sync_counts(state),
        // Whether HEAD reached the remote ("committed, not pushed" while `error` is set).
        "publish": state.published.lock().expect("published").clone(),
    })
}

/// Clusters by what their agents report (empty unless `atoll serve --observe`).
pub(super) fn sync_counts(state: &State) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for s in state.observed.read().expect("observed").clusters.values() {
        *out.entry(s.state.as_str()).or_default() += 1;
    }
    out
}

pub(super) async fn inventory(state: S, headers: HeaderMap) -> Result<Json<Value>, Problem> {
    state.principal(&headers).await?;
    let all = state.catalogs.current();
    Ok(Json(inventory_counts(&state, &all)))
}

pub(super) async fn metrics(state: S) -> Result<Response, Problem> {
    let all = state.catalogs.current();
    let view = state.view.read().expect("view").clone();
    let counts = inventory_counts(&state, &all);
    let mut by_pp: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (prov, phase) in view.clusters.values() {
        *by_pp.entry((prov.clone(), phase.clone())).or_default() += 1;
    }
    let n = |k: &str| counts[k].as_u64().unwrap_or(0) as f64;
    let gauges = vec![
        (
            "atoll_clusters",
            "Clusters, by infrastructure provider and Cluster API phase.",
            by_pp
                .into_iter()
                .map(|((p, ph), c)| {
                    (
                        format!(
                            "provider=\"{}\",phase=\"{}\"",
                            crate::metrics::escape(&p),
                            crate::metrics::escape(&ph)
                        ),
                        c as f64,
                    )
                })
                .collect(),
        ),
        (
            "atoll_applications",
            "Applications declared.",
            vec![(String::new(), n("applications"))],
        ),
        (
            "atoll_components",
            "Components deployed (over all placements).",
            vec![(String::new(), n("components"))],
        ),
        (
            "atoll_placements",
            "Application placements on clusters.",
            vec![(String::new(), n("placements"))],
        ),
        ("atoll_teams", "Teams.", vec![(String::new(), n("teams"))]),
        (
            "atoll_cluster_sync",
            "Clusters by what their GitOps agent reports (atoll serve --observe).",
            sync_counts(&state)
                .into_iter()
                .map(|(s, c)| (format!("state=\"{s}\""), c as f64))
                .collect(),
        ),
        (
            "atoll_cluster_revision_lag",
            "Commits between what a cluster's agent applied and HEAD.",
            state
                .observed
                .read()
                .expect("observed")
                .clusters
                .values()
                .filter_map(|s| {
                    s.behind.map(|b| {
                        (
                            format!("cluster=\"{}\"", crate::metrics::escape(&s.cluster)),
                            b as f64,
                        )
                    })
                })
                .collect(),
        ),
    ];
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&gauges),
    )
        .into_response())
}
