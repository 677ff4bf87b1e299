//! TOSCA service templates in, atoll objects out.

use super::*;

/// Imports a TOSCA blueprint as an Application of `team` (query: `team`, optional `name`,
/// `input.NAME=value` for inputs).
pub(super) async fn tosca(
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
