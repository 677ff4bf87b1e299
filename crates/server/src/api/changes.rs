//! Changes of many objects at once: plan (what would be committed) and apply (as a task).

use super::*;

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

pub(super) async fn change_request(
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

pub(super) async fn plan(
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
pub(super) async fn apply(
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

pub(super) async fn task(
    state: S,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Task>, Problem> {
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
