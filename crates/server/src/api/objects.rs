//! The atoll kinds as Kubernetes-style resources: list (paged), get, create, update, delete,
//! cluster-scoped and per team namespace.

use super::*;

pub(super) fn kind_for<'a>(
    state: &'a State,
    plural: &str,
    namespaced: bool,
) -> Result<&'a Kind, Problem> {
    let k = state.kind_by_plural(plural).ok_or_else(|| {
        Problem::not_found(format!("no resource `{plural}` in atoll.dev/v1alpha1"))
    })?;
    if k.namespaced != namespaced {
        return Err(Problem::not_found(if k.namespaced {
            format!(
                "{} is namespaced: use {PREFIX}/namespaces/{{team}}/{plural}",
                k.kind
            )
        } else {
            format!("{} is cluster-scoped: use {PREFIX}/{plural}", k.kind)
        }));
    }
    Ok(k)
}

pub(super) fn forbid(p: &Principal, verb: &str, kind: &Kind, ns: &str) -> Problem {
    let scope = if ns.is_empty() {
        String::new()
    } else {
        format!(" in team `{ns}`")
    };
    Problem::forbidden(format!(
        "{} ({} of team `{}`) may not {verb} {}{scope}",
        p.name,
        p.role.as_str(),
        p.team,
        kind.plural
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListQuery {
    label_selector: Option<String>,
    /// Applications whose `spec.owner` is this (the AMF lists by owner).
    owner: Option<String>,
    message: Option<String>,
    /// At most this many items; a `continue` token in the list's metadata fetches the rest.
    limit: Option<usize>,
    /// The token of the previous page: the rest of the same snapshot of the fleet.
    #[serde(rename = "continue")]
    cont: Option<String>,
}

pub(super) fn parse_selector(q: &ListQuery) -> Result<Selector, Problem> {
    Selector::parse(q.label_selector.as_deref().unwrap_or("")).map_err(|e| {
        let mut pr = Problem::bad_request(format!("labelSelector: {e}"));
        pr.errors.push(FieldError {
            object: "query".into(),
            field: "labelSelector".into(),
            line: None,
            column: None,
            message: e.0,
        });
        pr
    })
}

pub(super) fn selected(q: &ListQuery, sel: &Selector, o: &crate::catalog::Entry) -> bool {
    sel.matches(&o.labels)
        && q.owner
            .as_ref()
            .is_none_or(|w| o.stored.body["spec"]["owner"].as_str() == Some(w.as_str()))
}

/// A JSON response from bytes already serialised.
pub(super) fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Lists from the in-memory catalog, Kubernetes-style: `limit` and `continue` page through
/// one snapshot (its `resourceVersion` in the list's metadata); a token whose snapshot is no
/// longer kept is a 410, as Kubernetes answers for an expired one.
pub(super) async fn list(
    state: &State,
    headers: &HeaderMap,
    kind: &Kind,
    ns: Option<&str>,
    q: &ListQuery,
) -> Result<Response, Problem> {
    let p = state.principal(headers).await?;
    if let Some(ns) = ns
        && !can_read(&p, kind, ns)
    {
        return Err(forbid(&p, "list", kind, ns));
    }
    let sel = parse_selector(q)?;
    if q.limit == Some(0) {
        return Err(Problem::bad_request("limit: must be at least 1"));
    }
    let (snap, after) = match q.cont.as_deref().filter(|c| !c.is_empty()) {
        None => (state.catalogs.current(), None),
        Some(tok) => {
            let (rv, key) = crate::catalog::decode_continue(tok)
                .filter(|(_, k)| k.0 == kind.kind)
                .ok_or_else(|| Problem::bad_request("continue: not a token this list gave"))?;
            let snap = state.catalogs.at(rv).ok_or_else(|| {
                Problem::new(
                    StatusCode::GONE,
                    "Expired",
                    format!("the continue token's resourceVersion {rv} is too old: list again from the start"),
                )
            })?;
            (snap, Some(key))
        }
    };
    let limit = q.limit.unwrap_or(usize::MAX);
    let unfiltered = (p.role == Role::Admin || !kind.team_owned() || ns.is_some())
        && sel.is_empty()
        && q.owner.is_none();
    let page_key = unfiltered.then(|| {
        (
            kind.kind.clone(),
            ns.map(str::to_string),
            after.clone(),
            limit,
        )
    });
    if let Some(body) = page_key.as_ref().and_then(|k| snap.cached_page(k)) {
        return Ok(json_bytes(body));
    }
    let mut items = Vec::new();
    let mut last = None;
    let mut more = 0usize;
    if unfiltered {
        // Nothing to filter: the page is a slice of the kind's index.
        let (page, rest) = snap.page(&kind.kind, ns, after.as_ref(), limit);
        items.extend(page.iter().map(|e| e.json.clone()));
        last = page.last().map(|e| {
            (
                e.stored.kind.clone(),
                e.stored.namespace.clone(),
                e.stored.name.clone(),
            )
        });
        more = rest;
    } else {
        for (k, e) in snap.range(&kind.kind, ns, after.as_ref()) {
            if !can_read(&p, kind, &k.1) || !selected(q, &sel, e) {
                continue;
            }
            if items.len() < limit {
                items.push(e.json.clone());
                last = Some(k.clone());
            } else {
                more += 1;
            }
        }
    }
    let mut meta = json!({"resourceVersion": snap.resource_version.to_string()});
    if more > 0
        && let Some(k) = last
    {
        meta["continue"] = json!(crate::catalog::encode_continue(snap.resource_version, &k));
        meta["remainingItemCount"] = json!(more);
    }
    let mut body = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 256);
    body.extend_from_slice(
        format!(
            "{{\"apiVersion\":\"{}\",\"kind\":\"{}List\",\"metadata\":{},\"items\":[",
            atoll_model::API_VERSION,
            kind.kind,
            meta
        )
        .as_bytes(),
    );
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(b"]}");
    let body = Bytes::from(body);
    if let Some(k) = page_key {
        snap.keep_page(k, body.clone());
    }
    Ok(json_bytes(body))
}

pub(super) async fn get_one(
    state: &State,
    headers: &HeaderMap,
    kind: &Kind,
    ns: &str,
    name: &str,
) -> Result<Response, Problem> {
    let p = state.principal(headers).await?;
    if !can_read(&p, kind, ns) {
        return Err(forbid(&p, "get", kind, ns));
    }
    state
        .catalogs
        .current()
        .get(&kind.kind, ns, name)
        .map(|e| json_bytes(e.json.clone()))
        .ok_or_else(|| {
            Problem::not_found(format!(
                "{} {} not found",
                kind.kind,
                change::object_key("", ns, name).trim_start_matches('/')
            ))
        })
}

pub(super) fn written(status: StatusCode, o: change::ChangeOutcome) -> Response {
    let obj = o.objects.into_iter().next().unwrap_or(Value::Null);
    let mut r = (status, Json(obj)).into_response();
    if let Ok(v) = o.commit.parse() {
        r.headers_mut().insert("x-atoll-commit", v);
    }
    if let Ok(v) = o.change_id.parse() {
        r.headers_mut().insert("x-atoll-change", v);
    }
    r
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn write_one(
    state: &State,
    headers: &HeaderMap,
    kind: &Kind,
    ns: &str,
    name: Option<&str>,
    body: Result<Bytes, BytesRejection>,
    q: &WriteQuery,
    create: bool,
) -> Result<Response, Problem> {
    let p = state.principal(headers).await?;
    if !can_write(&p, kind, ns) {
        return Err(forbid(
            &p,
            if create { "create" } else { "update" },
            kind,
            ns,
        ));
    }
    let bytes = body_bytes(body)?;
    let mut v = parse_object(headers, &bytes, "request body")?;
    if v["kind"] != kind.kind.as_str() {
        return Err(Problem::bad_request(format!(
            "the body's kind is {}, the path is for {}",
            v["kind"], kind.kind
        )));
    }
    if kind.namespaced {
        match v["metadata"]["namespace"].as_str() {
            None => v["metadata"]["namespace"] = json!(ns),
            Some(x) if x == ns => {}
            Some(x) => {
                return Err(Problem::bad_request(format!(
                    "metadata.namespace `{x}` does not match the path's namespace `{ns}`"
                )));
            }
        }
    }
    if let Some(n) = name
        && v["metadata"]["name"] != n
    {
        return Err(Problem::bad_request(format!(
            "metadata.name {} does not match the path's name `{n}`",
            v["metadata"]["name"]
        )));
    }
    let expected = resource_version(&v)?;
    let body = writable(v);
    let op = if create {
        Op::Create(body)
    } else {
        Op::Update { body, expected }
    };
    let req = ChangeRequest {
        ops: vec![op],
        message: message(q, headers),
        actor: p,
        action: "",
    };
    let out = change::execute(state, req, false, &|_| {}).await?;
    Ok(written(
        if create {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        out,
    ))
}

pub(super) async fn delete_one(
    state: &State,
    headers: &HeaderMap,
    kind: &Kind,
    ns: &str,
    name: &str,
    q: &WriteQuery,
) -> Result<Response, Problem> {
    let p = state.principal(headers).await?;
    if !can_write(&p, kind, ns) {
        return Err(forbid(&p, "delete", kind, ns));
    }
    let expected = match &q.resource_version {
        Some(s) => Some(s.parse().map_err(|_| {
            Problem::conflict(format!(
                "resourceVersion `{s}` is not one this server issued"
            ))
        })?),
        None => None,
    };
    let req = ChangeRequest {
        ops: vec![Op::Delete {
            kind: kind.kind.clone(),
            namespace: ns.into(),
            name: name.into(),
            expected,
        }],
        message: message(q, headers),
        actor: p,
        action: "",
    };
    let out = change::execute(state, req, false, &|_| {}).await?;
    Ok(written(StatusCode::OK, out))
}

pub(super) async fn list_all(
    state: S,
    headers: HeaderMap,
    Path(plural): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, Problem> {
    let kind = state.kind_by_plural(&plural).ok_or_else(|| {
        Problem::not_found(format!("no resource `{plural}` in atoll.dev/v1alpha1"))
    })?;
    list(&state, &headers, kind, None, &q).await
}

pub(super) async fn create_cluster_scoped(
    state: S,
    headers: HeaderMap,
    Path(plural): Path<String>,
    Query(q): Query<WriteQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, false)?;
    write_one(&state, &headers, kind, "", None, body, &q, true).await
}

pub(super) async fn get_cluster_scoped(
    state: S,
    headers: HeaderMap,
    Path((plural, name)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, false)?;
    get_one(&state, &headers, kind, "", &name).await
}

pub(super) async fn update_cluster_scoped(
    state: S,
    headers: HeaderMap,
    Path((plural, name)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, false)?;
    write_one(&state, &headers, kind, "", Some(&name), body, &q, false).await
}

pub(super) async fn delete_cluster_scoped(
    state: S,
    headers: HeaderMap,
    Path((plural, name)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, false)?;
    delete_one(&state, &headers, kind, "", &name, &q).await
}

pub(super) async fn list_namespaced(
    state: S,
    headers: HeaderMap,
    Path((ns, plural)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, true)?;
    list(&state, &headers, kind, Some(&ns), &q).await
}

pub(super) async fn create_namespaced(
    state: S,
    headers: HeaderMap,
    Path((ns, plural)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, true)?;
    write_one(&state, &headers, kind, &ns, None, body, &q, true).await
}

/// Deletes every object of the collection the selector (and `owner`) picks, as one change.
pub(super) async fn delete_collection_namespaced(
    state: S,
    headers: HeaderMap,
    Path((ns, plural)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, true)?;
    let p = state.principal(&headers).await?;
    if !can_write(&p, kind, &ns) {
        return Err(forbid(&p, "delete", kind, &ns));
    }
    if q.label_selector.is_none() && q.owner.is_none() {
        return Err(Problem::bad_request(
            "give labelSelector or owner: deleting a whole collection unfiltered is refused",
        ));
    }
    let sel = parse_selector(&q)?;
    let snap = state.catalogs.current();
    let victims: Vec<_> = snap
        .range(&kind.kind, Some(&ns), None)
        .filter(|(_, e)| selected(&q, &sel, e))
        .map(|(_, e)| &e.stored)
        .collect();
    let mut out = json!({"kind": "Status", "deleted": []});
    if victims.is_empty() {
        return Ok(Json(out).into_response());
    }
    let req = ChangeRequest {
        ops: victims
            .iter()
            .map(|o| Op::Delete {
                kind: o.kind.clone(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
                expected: Some(o.resource_version),
            })
            .collect(),
        message: q.message.clone().unwrap_or_default(),
        actor: p,
        action: "",
    };
    let r = change::execute(&state, req, false, &|_| {}).await?;
    out["deleted"] = json!(victims.iter().map(|o| o.name.clone()).collect::<Vec<_>>());
    out["commit"] = json!(r.commit);
    out["changeId"] = json!(r.change_id);
    Ok(Json(out).into_response())
}

pub(super) async fn get_namespaced(
    state: S,
    headers: HeaderMap,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, true)?;
    get_one(&state, &headers, kind, &ns, &name).await
}

pub(super) async fn update_namespaced(
    state: S,
    headers: HeaderMap,
    Path((ns, plural, name)): Path<(String, String, String)>,
    Query(q): Query<WriteQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, true)?;
    write_one(&state, &headers, kind, &ns, Some(&name), body, &q, false).await
}

pub(super) async fn delete_namespaced(
    state: S,
    headers: HeaderMap,
    Path((ns, plural, name)): Path<(String, String, String)>,
    Query(q): Query<WriteQuery>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, true)?;
    delete_one(&state, &headers, kind, &ns, &name, &q).await
}
