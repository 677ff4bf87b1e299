//! The HTTP routes. Every handler authenticates, checks the role, parses and checks the body
//! (errors name the field and line), and hands writes to [`crate::change::execute`].
//!
//! One module per resource family: [`objects`] (the kinds), [`changes`] (plan and apply),
//! [`tosca`], [`inventory`] (placements, counts, metrics), [`history`] (events, timelines,
//! rollback); [`bodies`] reads and checks what clients send.

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

mod bodies;
mod changes;
mod history;
mod inventory;
mod objects;
mod tosca;

use bodies::*;
use changes::*;
use history::*;
use inventory::*;
use objects::*;
use tosca::*;

type S = axum::extract::State<Arc<State>>;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

const PREFIX: &str = "/apis/atoll.dev/v1alpha1";

/// Every route of the server: the REST API, the web UI, health, metrics and OpenAPI.
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
        .layer(middleware::from_fn(close_after_refusal))
        .with_state(state)
}

/// A request refused with its body maybe unread (401 before any byte of it is read, 413 part
/// way) ends its connection: say so, so that a client does not send its next request down a
/// connection the server is closing (it would fail with "connection closed before message
/// completed").
async fn close_after_refusal(req: Request, next: Next) -> Response {
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let mut resp = next.run(req).await;
    if has_body && (resp.status().is_client_error() || resp.status().is_server_error()) {
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
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
