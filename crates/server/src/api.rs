//! The HTTP routes. Every handler authenticates, checks the role, parses and checks the body
//! (errors name the field and line), and hands writes to [`crate::change::execute`].

use crate::change::{self, ChangeRequest, Op};
use crate::problem::{FieldError, Problem};
use crate::{State, Task, can_read, can_write, kinds::Kind};
use atoll_inventory::{EventFilter, Principal, Role};
use atoll_model::selector::Selector;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

type S = axum::extract::State<Arc<State>>;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

const PREFIX: &str = "/apis/atoll.dev/v1alpha1";

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/", get(crate::ui::root))
        .route("/ui", get(crate::ui::root))
        .route("/ui/", get(crate::ui::index))
        .route("/ui/app.js", get(crate::ui::script))
        .route("/ui/app.css", get(crate::ui::style))
        .route("/api/v1/session", get(crate::views::session))
        .route("/api/v1/fleet", get(crate::views::fleet))
        .route(
            "/api/v1/clusters/{name}/explain",
            get(crate::views::explain_cluster),
        )
        .route(
            &format!("{PREFIX}/{{plural}}"),
            get(list_all).post(create_cluster_scoped),
        )
        .route(
            &format!("{PREFIX}/{{plural}}/{{name}}"),
            get(get_cluster_scoped)
                .put(update_cluster_scoped)
                .delete(delete_cluster_scoped),
        )
        .route(
            &format!("{PREFIX}/namespaces/{{ns}}/{{plural}}"),
            get(list_namespaced)
                .post(create_namespaced)
                .delete(delete_collection_namespaced),
        )
        .route(
            &format!("{PREFIX}/namespaces/{{ns}}/{{plural}}/{{name}}"),
            get(get_namespaced)
                .put(update_namespaced)
                .delete(delete_namespaced),
        )
        .route(
            &format!("{PREFIX}/namespaces/{{ns}}/applications/{{name}}/rollback"),
            post(rollback_application),
        )
        .route("/api/v1/tosca", post(tosca))
        .route("/api/v1/placements", get(placements))
        .route("/api/v1/inventory", get(inventory))
        .route("/api/v1/plan", post(plan))
        .route("/api/v1/apply", post(apply))
        .route("/api/v1/tasks/{id}", get(task))
        .route("/api/v1/events", get(events))
        .route(
            "/api/v1/timelines/applications/{team}/{name}",
            get(timeline_application),
        )
        .route("/api/v1/timelines/clusters/{name}", get(timeline_cluster))
        .route("/api/v1/timelines/teams/{team}", get(timeline_team))
        .route("/api/v1/changes/{id}/rollback", post(rollback_change))
        .fallback(|| async { Problem::not_found("no such route; see /openapi.json") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "see /openapi.json for the methods of each path",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Records each request's latency by route template.
async fn observe(state: S, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let t = Instant::now();
    let resp = next.run(req).await;
    state.metrics.observe_request(
        &method,
        &route,
        resp.status().as_u16(),
        t.elapsed().as_secs_f64(),
    );
    resp
}

/// Every API route answers 401 before its body is read, let alone parsed; the health,
/// metrics and OpenAPI routes are open. (Handlers check the role next, still before parsing.)
async fn authenticate(state: S, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if (path.starts_with("/apis/") || path.starts_with("/api/"))
        && let Err(p) = state.principal(req.headers()).await
    {
        return p.into_response();
    }
    next.run(req).await
}

async fn readyz(state: S) -> Result<&'static str, Problem> {
    state
        .store
        .ping()
        .await
        .map_err(|e| Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Not ready", e.to_string()))?;
    Ok("ok")
}

async fn openapi(state: S) -> Json<Value> {
    Json(crate::openapi::document(&state.kinds))
}

// ---------------------------------------------------------------- bodies

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload too large",
                format!("request bodies are limited to {MAX_BODY} bytes"),
            )
        } else {
            Problem::bad_request(e.body_text())
        }
    })
}

fn yaml_problem(e: atoll_model::yaml::SyntaxError) -> Problem {
    let mut p = Problem::bad_request(format!("malformed YAML: {}", e.message));
    p.errors
        .push(FieldError::in_body(e.line, e.col, e.message.clone()));
    p
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|c| c.contains("json"))
}

/// The body as text: invalid UTF-8 and NUL bytes are 400s with their line and column.
fn body_text(bytes: &[u8]) -> Result<&str, Problem> {
    atoll_model::yaml::text_of(bytes).map_err(|e| {
        let mut p = Problem::bad_request(format!("the request body is not text: {}", e.message));
        p.errors.push(FieldError::in_body(e.line, e.col, e.message));
        p
    })
}

/// Parses a JSON body. Beyond serde's checks: duplicate keys (which serde would silently
/// resolve to the last one), NUL characters and the YAML reader's limits are 400s too,
/// since JSON is read again as YAML for positions.
fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, Problem> {
    let v = serde_json::from_str(text).map_err(|e| {
        let mut p = Problem::bad_request(format!("malformed {what}: {e}"));
        p.errors
            .push(FieldError::in_body(e.line(), e.column(), e.to_string()));
        p
    })?;
    atoll_model::yaml::parse_values(text).map_err(|e| {
        let mut p = Problem::bad_request(format!("malformed {what}: {}", e.message));
        p.errors.push(FieldError::in_body(e.line, e.col, e.message));
        p
    })?;
    Ok(v)
}

/// Parses one object (JSON, or YAML with a YAML content type) and checks it alone: types,
/// unknown fields, names. Errors carry the line in the body.
fn parse_object(headers: &HeaderMap, bytes: &[u8], what: &str) -> Result<Value, Problem> {
    let text = body_text(bytes)?;
    let value: Value = if is_json(headers) {
        parse_json(text, "JSON")?
    } else {
        let docs = atoll_model::yaml::parse_documents(text).map_err(yaml_problem)?;
        if docs.len() != 1 {
            return Err(Problem::bad_request(format!(
                "expected one object in the body, found {}",
                docs.len()
            )));
        }
        docs.into_iter().next().expect("one").value
    };
    check_object(&value, Some(text), what)?;
    Ok(value)
}

/// The model's own checks on one object, with the body's line numbers when we have its text.
fn check_object(value: &Value, text: Option<&str>, what: &str) -> Result<(), Problem> {
    if !value.is_object() {
        return Err(Problem::bad_request(
            "expected an object with apiVersion, kind, metadata and spec",
        ));
    }
    // Server-set metadata is not part of a declaration: read without it. Lines are reported
    // only when what is read is the caller's own text.
    let mut v = value.clone();
    strip_server_metadata(&mut v);
    let positioned = text.is_some() && v == *value;
    let text = match text {
        Some(t) if positioned => t.to_string(),
        _ => serde_json::to_string_pretty(&v).expect("json"),
    };
    let mut decls = atoll_model::Declarations::default();
    let mut diags = Vec::new();
    atoll_model::load_str(what, &text, &mut decls, &mut diags);
    if diags.is_empty() {
        return Ok(());
    }
    Err(Problem::invalid(
        format!("{what} is not a valid atoll declaration; nothing was stored"),
        diags
            .into_iter()
            .map(|mut d| {
                if d.object.is_empty() {
                    d.object = what.into();
                }
                FieldError::from_diagnostic(d, positioned)
            })
            .collect(),
    ))
}

fn strip_server_metadata(v: &mut Value) {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
        ] {
            m.remove(k);
        }
    }
}

/// What a client may write: no server-set fields.
fn writable(mut v: Value) -> Value {
    strip_server_metadata(&mut v);
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

fn resource_version(v: &Value) -> Result<Option<i64>, Problem> {
    match &v["metadata"]["resourceVersion"] {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => s.parse().map(Some).map_err(|_| {
            Problem::conflict(format!(
                "resourceVersion `{s}` is not one this server issued"
            ))
        }),
        other => Err(Problem::bad_request(format!(
            "metadata.resourceVersion must be a string, got {other}"
        ))),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WriteQuery {
    /// Why: recorded in the event and the commit message.
    message: Option<String>,
    /// DELETE precondition.
    resource_version: Option<String>,
}

fn message(q: &WriteQuery, headers: &HeaderMap) -> String {
    q.message
        .clone()
        .or_else(|| {
            headers
                .get("x-atoll-message")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- objects

fn kind_for<'a>(state: &'a State, plural: &str, namespaced: bool) -> Result<&'a Kind, Problem> {
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

fn forbid(p: &Principal, verb: &str, kind: &Kind, ns: &str) -> Problem {
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
struct ListQuery {
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

fn parse_selector(q: &ListQuery) -> Result<Selector, Problem> {
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

fn selected(q: &ListQuery, sel: &Selector, o: &crate::catalog::Entry) -> bool {
    sel.matches(&o.labels)
        && q.owner
            .as_ref()
            .is_none_or(|w| o.stored.body["spec"]["owner"].as_str() == Some(w.as_str()))
}

/// A JSON response from bytes already serialised.
fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Lists from the in-memory catalog, Kubernetes-style: `limit` and `continue` page through
/// one snapshot (its `resourceVersion` in the list's metadata); a token whose snapshot is no
/// longer kept is a 410, as Kubernetes answers for an expired one.
async fn list(
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

async fn get_one(
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

fn written(status: StatusCode, o: change::ChangeOutcome) -> Response {
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
async fn write_one(
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

async fn delete_one(
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

async fn list_all(
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

async fn create_cluster_scoped(
    state: S,
    headers: HeaderMap,
    Path(plural): Path<String>,
    Query(q): Query<WriteQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, false)?;
    write_one(&state, &headers, kind, "", None, body, &q, true).await
}

async fn get_cluster_scoped(
    state: S,
    headers: HeaderMap,
    Path((plural, name)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, false)?;
    get_one(&state, &headers, kind, "", &name).await
}

async fn update_cluster_scoped(
    state: S,
    headers: HeaderMap,
    Path((plural, name)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, false)?;
    write_one(&state, &headers, kind, "", Some(&name), body, &q, false).await
}

async fn delete_cluster_scoped(
    state: S,
    headers: HeaderMap,
    Path((plural, name)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, false)?;
    delete_one(&state, &headers, kind, "", &name, &q).await
}

async fn list_namespaced(
    state: S,
    headers: HeaderMap,
    Path((ns, plural)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, true)?;
    list(&state, &headers, kind, Some(&ns), &q).await
}

async fn create_namespaced(
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
async fn delete_collection_namespaced(
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

async fn get_namespaced(
    state: S,
    headers: HeaderMap,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, true)?;
    get_one(&state, &headers, kind, &ns, &name).await
}

async fn update_namespaced(
    state: S,
    headers: HeaderMap,
    Path((ns, plural, name)): Path<(String, String, String)>,
    Query(q): Query<WriteQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, true)?;
    write_one(&state, &headers, kind, &ns, Some(&name), body, &q, false).await
}

async fn delete_namespaced(
    state: S,
    headers: HeaderMap,
    Path((ns, plural, name)): Path<(String, String, String)>,
    Query(q): Query<WriteQuery>,
) -> Result<Response, Problem> {
    let kind = kind_for(&state, &plural, true)?;
    delete_one(&state, &headers, kind, &ns, &name, &q).await
}

// ---------------------------------------------------------------- plan, apply, tasks

/// A change of several objects: plan it, or apply it as one commit.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeSet {
    /// Objects to create or update (an update may carry the resourceVersion it read).
    #[serde(default)]
    pub objects: Vec<Value>,
    /// Objects to delete.
    #[serde(default)]
    pub deletes: Vec<ObjectRef>,
    /// Why.
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub resource_version: Option<String>,
}

async fn change_request(
    state: &State,
    headers: &HeaderMap,
    q: &WriteQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<ChangeRequest, Problem> {
    let p = state.principal(headers).await?;
    // A reader can write nothing: refused before the body is looked at.
    if p.role == atoll_inventory::Role::Reader {
        return Err(Problem::forbidden(format!(
            "{} (reader of team `{}`) may not plan or apply changes",
            p.name, p.team
        )));
    }
    let bytes = body_bytes(body)?;
    let text = body_text(&bytes)?;
    let cs: ChangeSet = if is_json(headers) {
        parse_json(text, "change set")?
    } else {
        // A YAML stream of objects to create or update, as in a declarations folder.
        let docs = atoll_model::yaml::parse_documents(text).map_err(yaml_problem)?;
        for d in &docs {
            if let Some(kind) = state.kind_by_name(d.value["kind"].as_str().unwrap_or("")) {
                let ns = d.value["metadata"]["namespace"].as_str().unwrap_or("");
                if !can_write(&p, kind, ns) {
                    return Err(forbid(&p, "write", kind, ns));
                }
            }
        }
        // Checked as one text, so errors carry the line in the body.
        let mut decls = atoll_model::Declarations::default();
        let mut diags = Vec::new();
        atoll_model::load_str("request body", text, &mut decls, &mut diags);
        if !diags.is_empty() {
            return Err(Problem::invalid(
                "the request body has invalid declarations; nothing was stored",
                diags
                    .into_iter()
                    .map(|d| FieldError::from_diagnostic(d, true))
                    .collect(),
            ));
        }
        ChangeSet {
            objects: docs
                .into_iter()
                .map(|d| d.value)
                .filter(|v| !v.is_null())
                .collect(),
            deletes: vec![],
            message: q.message.clone().unwrap_or_default(),
        }
    };
    if cs.objects.is_empty() && cs.deletes.is_empty() {
        return Err(Problem::bad_request("the change set is empty"));
    }
    let mut ops = Vec::new();
    for (i, o) in cs.objects.into_iter().enumerate() {
        let what = format!("objects[{i}]");
        // The role first: a caller who may not write learns nothing about validity.
        if let Some(kind) = state.kind_by_name(o["kind"].as_str().unwrap_or("")) {
            let ns = o["metadata"]["namespace"].as_str().unwrap_or("");
            if !can_write(&p, kind, ns) {
                return Err(forbid(&p, "write", kind, ns));
            }
        }
        check_object(&o, None, &what)?;
        let expected = resource_version(&o)?;
        let body = writable(o);
        ops.push(match expected {
            Some(_) => Op::Update { body, expected },
            None => Op::Upsert(body),
        });
    }
    for (i, d) in cs.deletes.into_iter().enumerate() {
        let kind = state.kind_by_name(&d.kind).ok_or_else(|| {
            Problem::bad_request(format!("deletes[{i}].kind: unknown kind `{}`", d.kind))
        })?;
        if !can_write(&p, kind, &d.namespace) {
            return Err(forbid(&p, "delete", kind, &d.namespace));
        }
        let expected = match &d.resource_version {
            Some(s) => Some(s.parse().map_err(|_| {
                Problem::bad_request(format!(
                    "deletes[{i}].resourceVersion: `{s}` is not a number"
                ))
            })?),
            None => None,
        };
        ops.push(Op::Delete {
            kind: d.kind,
            namespace: d.namespace,
            name: d.name,
            expected,
        });
    }
    Ok(ChangeRequest {
        ops,
        message: cs.message,
        actor: p,
        action: "",
    })
}

async fn plan(
    state: S,
    headers: HeaderMap,
    Query(q): Query<WriteQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let req = change_request(&state, &headers, &q, body).await?;
    let out = change::execute(&state, req, true, &|_| {}).await?;
    Ok(Json(json!({ "plans": out.plans })))
}

/// Starts the change as a task: 202 with its id; poll `/api/v1/tasks/{id}`.
async fn apply(
    state: S,
    headers: HeaderMap,
    Query(q): Query<WriteQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let req = change_request(&state, &headers, &q, body).await?;
    let id = atoll_inventory::new_change_id();
    state.tasks.lock().expect("tasks").insert(
        id.clone(),
        Task {
            id: id.clone(),
            state: crate::TaskState::Running,
            steps: vec![],
            result: None,
            error: None,
            owner: req.actor.name.clone(),
        },
    );
    let st = state.0.clone();
    let tid = id.clone();
    tokio::spawn(async move {
        let step = |name: &str| {
            if let Some(t) = st.tasks.lock().expect("tasks").get_mut(&tid) {
                t.steps.push(crate::Step {
                    name: name.into(),
                    started: atoll_inventory::now(),
                });
            }
        };
        let r = change::execute(&st, req, false, &step).await;
        if let Some(t) = st.tasks.lock().expect("tasks").get_mut(&tid) {
            match r {
                Ok(o) => {
                    t.state = crate::TaskState::Succeeded;
                    t.result = Some(serde_json::to_value(&o).expect("outcome"));
                }
                Err(p) => {
                    t.state = crate::TaskState::Failed;
                    t.error = Some(
                        json!({"status": p.status.as_u16(), "title": p.title, "detail": p.detail, "errors": p.errors}),
                    );
                }
            }
        }
    });
    let location = format!("/api/v1/tasks/{id}");
    let mut r = (
        StatusCode::ACCEPTED,
        Json(json!({"task": id, "status": location})),
    )
        .into_response();
    if let Ok(v) = location.parse() {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

async fn task(state: S, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<Task>, Problem> {
    let p = state.principal(&headers).await?;
    let t = state
        .tasks
        .lock()
        .expect("tasks")
        .get(&id)
        .cloned()
        .filter(|t| p.role == Role::Admin || t.owner == p.name)
        .ok_or_else(|| Problem::not_found(format!("no task `{id}`")))?;
    Ok(Json(t))
}

// ---------------------------------------------------------------- TOSCA

/// Imports a TOSCA blueprint as an Application of `team` (query: `team`, optional `name`,
/// `input.NAME=value` for inputs).
async fn tosca(
    state: S,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let p = state.principal(&headers).await?;
    let team = q
        .get("team")
        .cloned()
        .ok_or_else(|| Problem::bad_request("give the owning team: ?team=NAME"))?;
    let kind = state.kind_by_name("Application").expect("kind");
    if !can_write(&p, kind, &team) {
        return Err(forbid(&p, "create", kind, &team));
    }
    let bytes = body_bytes(body)?;
    let text = body_text(&bytes)?;
    let inputs: BTreeMap<String, String> = q
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("input.").map(|k| (k.to_string(), v.clone())))
        .collect();
    let app = atoll_model::tosca::application(
        "request body",
        text,
        &team,
        q.get("name").map(String::as_str),
        &inputs,
    )
    .map_err(|ds| {
        Problem::invalid(
            "the blueprint cannot be converted; nothing was stored",
            ds.into_iter()
                .map(|d| FieldError::from_diagnostic(d, true))
                .collect(),
        )
    })?;
    check_object(&app, None, "converted Application")?;
    let req = ChangeRequest {
        ops: vec![Op::Upsert(app)],
        message: q
            .get("message")
            .cloned()
            .unwrap_or_else(|| "imported from a TOSCA blueprint".into()),
        actor: p,
        action: "",
    };
    let out = change::execute(&state, req, false, &|_| {}).await?;
    Ok(written(StatusCode::CREATED, out))
}

// ---------------------------------------------------------------- placements, inventory

#[derive(Deserialize, Default)]
struct PlacementQuery {
    cluster: Option<String>,
    application: Option<String>,
}

async fn placements(
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

fn inventory_counts(state: &State, objects: &crate::catalog::Catalog) -> Value {
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
fn sync_counts(state: &State) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for s in state.observed.read().expect("observed").clusters.values() {
        *out.entry(s.state.as_str()).or_default() += 1;
    }
    out
}

async fn inventory(state: S, headers: HeaderMap) -> Result<Json<Value>, Problem> {
    state.principal(&headers).await?;
    let all = state.catalogs.current();
    Ok(Json(inventory_counts(&state, &all)))
}

async fn metrics(state: S) -> Result<Response, Problem> {
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

// ---------------------------------------------------------------- history and rollback

#[derive(Deserialize, Default)]
struct EventQuery {
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    team: Option<String>,
    cluster: Option<String>,
    change: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

async fn events_for(
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

async fn events(
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
struct RangeQuery {
    since: Option<String>,
    until: Option<String>,
}

/// A team's history (or an application's in it): only that team and admins may read it.
async fn team_timeline(
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

async fn timeline_application(
    state: S,
    headers: HeaderMap,
    Path((team, name)): Path<(String, String)>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Value>, Problem> {
    team_timeline(&state, &headers, team, Some(name), q).await
}

async fn timeline_team(
    state: S,
    headers: HeaderMap,
    Path(team): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Value>, Problem> {
    team_timeline(&state, &headers, team, None, q).await
}

async fn timeline_cluster(
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
struct RollbackBody {
    /// The event whose resulting state to return to.
    to_event: i64,
    #[serde(default)]
    message: String,
}

/// Returns an application to the state it had after an earlier event — as a new change.
async fn rollback_application(
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
async fn rollback_change(
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
