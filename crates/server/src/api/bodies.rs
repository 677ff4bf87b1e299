//! Request bodies: size, encoding, YAML or JSON, the object's envelope, and the fields the
//! server owns (`status`, `resourceVersion`) stripped from what a client sends.

use super::*;

pub(super) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
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

pub(super) fn yaml_problem(e: atoll_model::yaml::SyntaxError) -> Problem {
    let mut p = Problem::bad_request(format!("malformed YAML: {}", e.message));
    p.errors
        .push(FieldError::in_body(e.line, e.col, e.message.clone()));
    p
}

pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|c| c.contains("json"))
}

/// The body as text: invalid UTF-8 and NUL bytes are 400s with their line and column.
pub(super) fn body_text(bytes: &[u8]) -> Result<&str, Problem> {
    atoll_model::yaml::text_of(bytes).map_err(|e| {
        let mut p = Problem::bad_request(format!("the request body is not text: {}", e.message));
        p.errors.push(FieldError::in_body(e.line, e.col, e.message));
        p
    })
}

/// Parses a JSON body. Beyond serde's checks: duplicate keys (which serde would silently
/// resolve to the last one), NUL characters and the YAML reader's limits are 400s too,
/// since JSON is read again as YAML for positions.
pub(super) fn parse_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<T, Problem> {
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
pub(super) fn parse_object(
    headers: &HeaderMap,
    bytes: &[u8],
    what: &str,
) -> Result<Value, Problem> {
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
pub(super) fn check_object(value: &Value, text: Option<&str>, what: &str) -> Result<(), Problem> {
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

pub(super) fn strip_server_metadata(v: &mut Value) {
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
pub(super) fn writable(mut v: Value) -> Value {
    strip_server_metadata(&mut v);
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

pub(super) fn resource_version(v: &Value) -> Result<Option<i64>, Problem> {
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
pub(super) struct WriteQuery {
    /// Why: recorded in the event and the commit message.
    pub(super) message: Option<String>,
    /// DELETE precondition.
    pub(super) resource_version: Option<String>,
}

pub(super) fn message(q: &WriteQuery, headers: &HeaderMap) -> String {
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
