//! History: events, timelines per application, team and cluster, and rollback.

use super::*;

#[derive(Deserialize, Default)]
pub(super) struct EventQuery {
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    team: Option<String>,
    cluster: Option<String>,
    change: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

pub(super) async fn events_for(
    state: &State,
    p: &Principal,
    mut f: EventFilter,
) -> Result<Json<Value>, Problem> {
    for t in [&f.since, &f.until].into_iter().flatten() {
        if t.parse::<k8s_openapi::jiff::Timestamp>().is_err() {
            return Err(Problem::bad_request(format!(
                "`{t}` is not an RFC 3339 time (e.g. 2026-11-21T10:00:00Z)"
            )));
        }
    }
    if p.role != Role::Admin {
        f.visible_to = Some(p.team.clone());
    }
    let events = state.store.events(&f).await?;
    Ok(Json(json!({ "events": events })))
}

pub(super) async fn events(
    state: S,
    headers: HeaderMap,
    Query(q): Query<EventQuery>,
) -> Result<Json<Value>, Problem> {
    let p = state.principal(&headers).await?;
    events_for(
        &state,
        &p,
        EventFilter {
            kind: q.kind,
            namespace: q.namespace,
            name: q.name,
            team: q.team,
            cluster: q.cluster,
            change_id: q.change,
            since: q.since,
            until: q.until,
            visible_to: None,
        },
    )
    .await
}

#[derive(Deserialize, Default)]
pub(super) struct RangeQuery {
    since: Option<String>,
    until: Option<String>,
}

/// A team's history (or an application's in it): only that team and admins may read it.
pub(super) async fn team_timeline(
    state: &State,
    headers: &HeaderMap,
    team: String,
    app: Option<String>,
    q: RangeQuery,
) -> Result<Json<Value>, Problem> {
    let p = state.principal(headers).await?;
    if p.role != Role::Admin && p.team != team {
        return Err(Problem::forbidden(format!(
            "{} may not read team `{team}`'s history",
            p.name
        )));
    }
    let f = match app {
        Some(name) => EventFilter {
            kind: Some("Application".into()),
            namespace: Some(team),
            name: Some(name),
            ..Default::default()
        },
        None => EventFilter {
            team: Some(team),
            ..Default::default()
        },
    };
    events_for(
        state,
        &p,
        EventFilter {
            since: q.since,
            until: q.until,
            ..f
        },
    )
    .await
}

pub(super) async fn timeline_application(
    state: S,
    headers: HeaderMap,
    Path((team, name)): Path<(String, String)>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Value>, Problem> {
    team_timeline(&state, &headers, team, Some(name), q).await
}

pub(super) async fn timeline_team(
    state: S,
    headers: HeaderMap,
    Path(team): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Value>, Problem> {
    team_timeline(&state, &headers, team, None, q).await
}

pub(super) async fn timeline_cluster(
    state: S,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Value>, Problem> {
    let p = state.principal(&headers).await?;
    events_for(
        &state,
        &p,
        EventFilter {
            cluster: Some(name),
            since: q.since,
            until: q.until,
            ..Default::default()
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RollbackBody {
    /// The event whose resulting state to return to.
    to_event: i64,
    #[serde(default)]
    message: String,
}

/// Returns an application to the state it had after an earlier event — as a new change.
pub(super) async fn rollback_application(
    state: S,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let p = state.principal(&headers).await?;
    let kind = state.kind_by_name("Application").expect("kind");
    if !can_write(&p, kind, &ns) {
        return Err(forbid(&p, "roll back", kind, &ns));
    }
    let bytes = body_bytes(body)?;
    let b: RollbackBody = parse_json(body_text(&bytes)?, "rollback (expected {\"toEvent\": N})")?;
    let e = state
        .store
        .event(b.to_event)
        .await?
        .filter(|e| e.kind == "Application" && e.namespace == ns && e.name == name)
        .ok_or_else(|| {
            Problem::not_found(format!(
                "no event {} for Application {ns}/{name}",
                b.to_event
            ))
        })?;
    let target = e.after.ok_or_else(|| {
        Problem::conflict(format!(
            "event {} deleted the application: nothing to return to",
            e.id
        ))
    })?;
    let msg = if b.message.is_empty() {
        format!("roll back {ns}/{name} to event {}", e.id)
    } else {
        b.message
    };
    let req = ChangeRequest {
        ops: vec![Op::Upsert(writable(target))],
        message: msg,
        actor: p,
        action: "rollback",
    };
    let out = change::execute(&state, req, false, &|_| {}).await?;
    Ok(written(StatusCode::OK, out))
}

/// Undoes a whole change (every object back to its state before it) — as a new change.
pub(super) async fn rollback_change(
    state: S,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<WriteQuery>,
) -> Result<Response, Problem> {
    let p = state.principal(&headers).await?;
    let events = state
        .store
        .events(&EventFilter {
            change_id: Some(id.clone()),
            ..Default::default()
        })
        .await?;
    if events.is_empty() {
        return Err(Problem::not_found(format!("no change `{id}`")));
    }
    let mut ops = Vec::new();
    let mut seen = HashMap::new();
    for e in events.iter().rev() {
        let kind = state
            .kind_by_name(&e.kind)
            .ok_or_else(|| Problem::internal(format!("unknown kind {} in history", e.kind)))?;
        if !can_write(&p, kind, &e.namespace) {
            return Err(forbid(&p, "roll back", kind, &e.namespace));
        }
        if seen
            .insert((e.kind.clone(), e.namespace.clone(), e.name.clone()), ())
            .is_some()
        {
            continue;
        }
        ops.push(match &e.before {
            Some(b) => Op::Upsert(writable(b.clone())),
            None => Op::Delete {
                kind: e.kind.clone(),
                namespace: e.namespace.clone(),
                name: e.name.clone(),
                expected: None,
            },
        });
    }
    let msg = q
        .message
        .unwrap_or_else(|| format!("roll back change {id}"));
    let req = ChangeRequest {
        ops,
        message: msg,
        actor: p,
        action: "rollback",
    };
    let out = change::execute(&state, req, false, &|_| {}).await?;
    Ok((
        StatusCode::OK,
        Json(json!({"changeId": out.change_id, "commit": out.commit, "events": out.events, "plans": out.plans})),
    )
        .into_response())
}
