//! The OpenAPI 3.0 document, generated: object paths from the kind table the router serves
//! (schemas are the CRDs' own `openAPIV3Schema`), the other endpoints from [`ENDPOINTS`]. A
//! test checks that every documented path is routed.

use crate::kinds::Kind;
use serde_json::{Value, json};

/// (method, path, summary, query parameters, request schema ref, success status, response schema ref).
pub type Endpoint = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
    &'static str,
    &'static str,
);

/// Every endpoint besides the per-kind ones: method, path, summary, parameters, body,
/// success status and response.
pub const ENDPOINTS: &[Endpoint] = &[
    ("get", "/healthz", "Liveness", &[], None, "200", "Text"),
    (
        "get",
        "/readyz",
        "Readiness (the store answers)",
        &[],
        None,
        "200",
        "Text",
    ),
    (
        "get",
        "/metrics",
        "Prometheus metrics",
        &[],
        None,
        "200",
        "Text",
    ),
    (
        "get",
        "/openapi.json",
        "This document",
        &[],
        None,
        "200",
        "Any",
    ),
    (
        "get",
        "/api/v1/placements",
        "Applications on a cluster, or clusters running an application (team/name), at which revision",
        &["cluster", "application"],
        None,
        "200",
        "Any",
    ),
    (
        "get",
        "/api/v1/session",
        "The caller: name, team, role, and whether it may write",
        &[],
        None,
        "200",
        "Any",
    ),
    (
        "get",
        "/api/v1/fleet",
        "Every cluster a label selector picks, with labels, provider, phase, agent sync and the applications on it; logical clusters with their links (the web UI's fleet map and placement matrix); placements=false leaves out the applications",
        &["labelSelector", "placements"],
        None,
        "200",
        "Any",
    ),
    (
        "get",
        "/api/v1/clusters/{name}/explain",
        "A cluster's effective spec with the provenance of each value, its Cluster API objects and address allocations at HEAD, and why each application is placed on it",
        &[],
        None,
        "200",
        "Any",
    ),
    (
        "get",
        "/api/v1/inventory",
        "Counts: clusters by provider, applications, teams, placements, components",
        &[],
        None,
        "200",
        "Any",
    ),
    (
        "post",
        "/api/v1/plan",
        "What a change set would do, per cluster, without doing it",
        &[],
        Some("ChangeSet"),
        "200",
        "Any",
    ),
    (
        "post",
        "/api/v1/apply",
        "Apply a change set as one commit; answers 202 with a task to poll",
        &[],
        Some("ChangeSet"),
        "202",
        "TaskRef",
    ),
    (
        "get",
        "/api/v1/tasks/{id}",
        "A task's state and steps",
        &[],
        None,
        "200",
        "Any",
    ),
    (
        "get",
        "/api/v1/events",
        "History, oldest first",
        &[
            "kind",
            "namespace",
            "name",
            "team",
            "cluster",
            "change",
            "since",
            "until",
        ],
        None,
        "200",
        "Events",
    ),
    (
        "get",
        "/api/v1/timelines/applications/{team}/{name}",
        "An application's history",
        &["since", "until"],
        None,
        "200",
        "Events",
    ),
    (
        "get",
        "/api/v1/timelines/clusters/{name}",
        "Changes that touched a cluster's packages",
        &["since", "until"],
        None,
        "200",
        "Events",
    ),
    (
        "get",
        "/api/v1/timelines/teams/{team}",
        "A team's history",
        &["since", "until"],
        None,
        "200",
        "Events",
    ),
    (
        "post",
        "/api/v1/changes/{id}/rollback",
        "Undo a whole change, as a new change",
        &["message"],
        None,
        "200",
        "Any",
    ),
    (
        "post",
        "/apis/atoll.dev/v1alpha1/namespaces/{ns}/applications/{name}/rollback",
        "Return an application to its state after an earlier event, as a new change",
        &[],
        Some("Rollback"),
        "200",
        "Application",
    ),
];

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

fn query(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|n| {
            let schema = if *n == "limit" {
                json!({"type": "integer", "minimum": 1})
            } else {
                json!({"type": "string"})
            };
            json!({"name": n, "in": "query", "required": false, "schema": schema})
        })
        .collect()
}

fn problem_responses() -> Value {
    let p = json!({"description": "a problem document", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
    json!({"400": p, "401": p, "403": p, "404": p, "409": p, "410": p, "413": p, "422": p})
}

fn op(
    summary: String,
    params: Vec<Value>,
    request: Option<&str>,
    status: &str,
    response: &str,
) -> Value {
    let mut responses = problem_responses();
    let content = if response == "Text" {
        json!({"text/plain": {"schema": {"type": "string"}}})
    } else {
        json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{response}")}}})
    };
    responses[status] = json!({"description": "success", "content": content});
    let mut o = json!({"summary": summary, "parameters": params, "responses": responses, "security": [{"bearer": []}]});
    if let Some(r) = request {
        o["requestBody"] = if r == "Text" {
            json!({"required": true, "content": {"application/yaml": {"schema": {"type": "string"}}}})
        } else {
            json!({"required": true, "content": {
                "application/json": {"schema": {"$ref": format!("#/components/schemas/{r}")}},
                "application/yaml": {"schema": {"type": "string"}},
            }})
        };
    }
    o
}

/// Strips what OpenAPI 3.0 does not know from a CRD schema.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with("x-kubernetes"))
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
        other => other.clone(),
    }
}

/// The OpenAPI 3 document of the whole API (served at `/openapi.json`).
pub fn document(kinds: &[Kind]) -> Value {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for k in kinds {
        schemas.insert(k.kind.clone(), clean(&k.schema));
        schemas.insert(
            format!("{}List", k.kind),
            json!({"type": "object", "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{}", k.kind)}}}}),
        );
        let (collection, item) = if k.namespaced {
            (
                format!("/apis/atoll.dev/v1alpha1/namespaces/{{ns}}/{}", k.plural),
                format!(
                    "/apis/atoll.dev/v1alpha1/namespaces/{{ns}}/{}/{{name}}",
                    k.plural
                ),
            )
        } else {
            (
                format!("/apis/atoll.dev/v1alpha1/{}", k.plural),
                format!("/apis/atoll.dev/v1alpha1/{}/{{name}}", k.plural),
            )
        };
        let list = format!("{}List", k.kind);
        let mut coll = json!({
            "get": op(format!("List {}", k.plural), [path_params(&collection), query(&["labelSelector", "owner", "limit", "continue"])].concat(), None, "200", &list),
            "post": op(format!("Create a {}", k.kind), [path_params(&collection), query(&["message"])].concat(), Some(&k.kind), "201", &k.kind),
        });
        if k.namespaced {
            coll["delete"] = op(
                format!(
                    "Delete the {} a labelSelector or owner picks, as one change",
                    k.plural
                ),
                [
                    path_params(&collection),
                    query(&["labelSelector", "owner", "message"]),
                ]
                .concat(),
                None,
                "200",
                "Any",
            );
        }
        paths.insert(collection.clone(), coll);
        paths.insert(
            item.clone(),
            json!({
                "get": op(format!("Read a {}", k.kind), path_params(&item), None, "200", &k.kind),
                "put": op(format!("Replace a {} (send the resourceVersion read for a conditional update)", k.kind), [path_params(&item), query(&["message"])].concat(), Some(&k.kind), "200", &k.kind),
                "delete": op(format!("Delete a {}", k.kind), [path_params(&item), query(&["message", "resourceVersion"])].concat(), None, "200", &k.kind),
            }),
        );
        if k.namespaced {
            let all = format!("/apis/atoll.dev/v1alpha1/{}", k.plural);
            paths.insert(
                all.clone(),
                json!({"get": op(format!("List {} in every team you can see", k.plural), query(&["labelSelector", "owner", "limit", "continue"]), None, "200", &list)}),
            );
        }
    }
    for (method, path, summary, q, req, status, resp) in ENDPOINTS {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op(
            summary.to_string(),
            [path_params(path), query(q)].concat(),
            *req,
            status,
            resp,
        );
        if ["/healthz", "/readyz", "/metrics", "/openapi.json"].contains(path) {
            entry[*method].as_object_mut().map(|o| o.remove("security"));
        }
    }
    schemas.insert("Any".into(), json!({"type": "object"}));
    schemas.insert("Text".into(), json!({"type": "string"}));
    schemas.insert(
        "ChangeSet".into(),
        json!({"type": "object", "additionalProperties": false, "properties": {
            "objects": {"type": "array", "items": {"type": "object"}},
            "deletes": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["kind", "name"], "properties": {
                "kind": {"type": "string"}, "namespace": {"type": "string"}, "name": {"type": "string"}, "resourceVersion": {"type": "string"}}}},
            "message": {"type": "string"}}}),
    );
    schemas.insert(
        "Rollback".into(),
        json!({"type": "object", "additionalProperties": false, "required": ["toEvent"], "properties": {
            "toEvent": {"type": "integer", "format": "int64"}, "message": {"type": "string"}}}),
    );
    schemas.insert(
        "TaskRef".into(),
        json!({"type": "object", "properties": {"task": {"type": "string"}, "status": {"type": "string"}}}),
    );
    schemas.insert(
        "Events".into(),
        json!({"type": "object", "properties": {"events": {"type": "array", "items": {"type": "object"}}}}),
    );
    schemas.insert(
        "Problem".into(),
        json!({"type": "object", "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "object": {"type": "string"}, "field": {"type": "string"}, "line": {"type": "integer"},
                "column": {"type": "integer"}, "message": {"type": "string"}}}}}}),
    );
    json!({
        "openapi": "3.0.3",
        "info": {"title": "atoll", "version": env!("CARGO_PKG_VERSION"),
                 "description": "The atoll control plane: fleet declarations in, per-cluster packages in Git out."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}
