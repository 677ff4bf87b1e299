//! Test support: validates objects against the upstream schemas in `shared/schemas` —
//! the Kubernetes OpenAPI (swagger 2.0) definitions, every CRD there, and kpt's Kptfile schema.
//!
//! Objects are treated as closed (unknown fields are errors) unless the schema preserves
//! unknown fields, as `kubectl --validate=strict` does. `x-kubernetes-int-or-string`,
//! `nullable`, IntOrString and Quantity are translated to JSON Schema. CEL rules
//! (`x-kubernetes-validations`) are not checked here; a real apiserver checks them.

use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The folder with the upstream schemas: `$ATOLL_SCHEMAS`, else `../shared/schemas` found by
/// walking up from the current directory.
pub fn schemas_dir() -> PathBuf {
    if let Ok(p) = std::env::var("ATOLL_SCHEMAS") {
        return PathBuf::from(p);
    }
    let mut dir = std::env::current_dir().expect("cwd");
    loop {
        let cand = dir.join("../shared/schemas");
        if cand.join("kubernetes/swagger.json").exists() {
            return cand;
        }
        if !dir.pop() {
            panic!("shared/schemas not found: set ATOLL_SCHEMAS");
        }
    }
}

/// The upstream schemas of `../shared/schemas/`, looked up by apiVersion and kind.
pub struct Schemas {
    /// (apiVersion, kind) → JSON Schema of the object.
    by_gvk: HashMap<(String, String), Value>,
    /// The Kubernetes definitions, transformed, for `$ref`s.
    definitions: Value,
    compiled: Mutex<HashMap<(String, String), std::sync::Arc<jsonschema::Validator>>>,
}

impl Schemas {
    /// Reads every schema under `dir` (Kubernetes OpenAPI and the CRDs of the projects atoll
    /// renders for); panics on a schema that does not parse, as a test should.
    pub fn load(dir: &Path) -> Schemas {
        let swagger: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("kubernetes/swagger.json")).expect("swagger"),
        )
        .expect("swagger json");
        let mut defs = Map::new();
        let mut by_gvk = HashMap::new();
        for (name, d) in swagger["definitions"].as_object().expect("definitions") {
            let t = match name.as_str() {
                "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => {
                    json!({"type": ["integer", "string"]})
                }
                "io.k8s.apimachinery.pkg.api.resource.Quantity" => {
                    json!({"type": ["string", "number"]})
                }
                _ => transform(d),
            };
            defs.insert(name.clone(), t);
            if let Some(gvks) = d["x-kubernetes-group-version-kind"].as_array() {
                for g in gvks {
                    let group = g["group"].as_str().unwrap_or("");
                    let version = g["version"].as_str().unwrap_or("");
                    let api = if group.is_empty() {
                        version.to_string()
                    } else {
                        format!("{group}/{version}")
                    };
                    by_gvk.insert(
                        (api, g["kind"].as_str().unwrap_or("").to_string()),
                        json!({"$ref": format!("#/definitions/{name}")}),
                    );
                }
            }
        }
        let definitions = Value::Object(defs);
        // CRDs.
        for entry in walk(dir) {
            let name = entry
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            if !name.ends_with(".yaml") || entry.starts_with(dir.join("kpt")) || name == "README.md"
            {
                continue;
            }
            let text = std::fs::read_to_string(&entry).expect("crd");
            let Ok(docs) = atoll_model::yaml::parse_documents(&text) else {
                continue;
            };
            for doc in docs {
                let crd = doc.value;
                if crd["kind"] != "CustomResourceDefinition" {
                    continue;
                }
                let group = crd["spec"]["group"].as_str().unwrap_or("");
                let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or("");
                for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
                    let mut s = transform(&v["schema"]["openAPIV3Schema"]);
                    if let Some(props) = s.get_mut("properties").and_then(Value::as_object_mut) {
                        props.insert("metadata".into(), json!({"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}));
                    }
                    by_gvk.insert(
                        (
                            format!("{group}/{}", v["name"].as_str().unwrap_or("")),
                            kind.to_string(),
                        ),
                        s,
                    );
                }
            }
        }
        // Kptfile: go-swagger flattened metadata (see the schemas README); validate the body and
        // metadata separately.
        let kpt: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("kpt/kptfile.json")).expect("kptfile"),
        )
        .expect("json");
        let mut kdefs = Map::new();
        for (n, d) in kpt["definitions"].as_object().expect("defs") {
            kdefs.insert(
                format!("kpt.{n}"),
                retarget(&transform(d), "#/definitions/", "#/definitions/kpt."),
            );
        }
        let mut kroot = kdefs["kpt.kptfile"].clone();
        kroot["properties"]["metadata"] =
            json!({"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"});
        kroot["additionalProperties"] = json!(false);
        let mut definitions = definitions;
        for (k, v) in kdefs {
            definitions[k] = v;
        }
        by_gvk.insert(("kpt.dev/v1".into(), "Kptfile".into()), kroot);
        Schemas {
            by_gvk,
            definitions,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a schema exists for this apiVersion and kind.
    pub fn knows(&self, api_version: &str, kind: &str) -> bool {
        self.by_gvk
            .contains_key(&(api_version.to_string(), kind.to_string()))
    }

    /// Validates one object; errors name the JSON path.
    pub fn validate(&self, obj: &Value) -> Result<(), Vec<String>> {
        let api = obj["apiVersion"].as_str().unwrap_or("").to_string();
        let kind = obj["kind"].as_str().unwrap_or("").to_string();
        let key = (api.clone(), kind.clone());
        let validator = {
            let mut cache = self.compiled.lock().expect("lock");
            if let Some(v) = cache.get(&key) {
                v.clone()
            } else {
                let Some(schema) = self.by_gvk.get(&key) else {
                    return Err(vec![format!(
                        "no upstream schema for apiVersion {api}, kind {kind}"
                    )]);
                };
                let mut root = schema.clone();
                root["definitions"] = self.definitions.clone();
                let v = std::sync::Arc::new(
                    jsonschema::options()
                        .with_draft(jsonschema::Draft::Draft7)
                        .build(&root)
                        .unwrap_or_else(|e| panic!("schema {api} {kind}: {e}")),
                );
                cache.insert(key, v.clone());
                v
            }
        };
        let errs: Vec<String> = validator
            .iter_errors(obj)
            .map(|e| {
                format!(
                    "{kind} {}: {}: {}",
                    obj["metadata"]["name"].as_str().unwrap_or("?"),
                    e.instance_path(),
                    e
                )
            })
            .collect();
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn retarget(v: &Value, from: &str, to: &str) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    if k == "$ref" {
                        (k.clone(), json!(x.as_str().unwrap_or("").replace(from, to)))
                    } else {
                        (k.clone(), retarget(x, from, to))
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| retarget(x, from, to)).collect()),
        other => other.clone(),
    }
}

/// OpenAPI → JSON Schema, closing objects that declare their properties.
fn transform(s: &Value) -> Value {
    let Value::Object(m) = s else {
        return s.clone();
    };
    let mut out = Map::new();
    let preserve = m.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let int_or_string = m.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    for (k, v) in m {
        match k.as_str() {
            "properties" | "patternProperties" | "definitions" => {
                let props: Map<String, Value> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(pk, pv)| (pk.clone(), transform(pv)))
                    .collect();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" | "not" => {
                out.insert(
                    k.clone(),
                    if v.is_object() {
                        transform(v)
                    } else {
                        v.clone()
                    },
                );
            }
            "allOf" | "anyOf" | "oneOf" => {
                out.insert(
                    k.clone(),
                    Value::Array(v.as_array().into_iter().flatten().map(transform).collect()),
                );
            }
            // Formats (int32, date-time, byte…) are informative here.
            "format" | "nullable" | "x-kubernetes-validations" => {}
            k if k.starts_with("x-") => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if int_or_string {
        out.remove("type");
        out.insert("type".into(), json!(["integer", "string"]));
    }
    if m.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::String(t)) = out.get("type").cloned()
    {
        out.insert("type".into(), json!([t, "null"]));
    }
    let has_props = m
        .get("properties")
        .is_some_and(|p| p.as_object().is_some_and(|o| !o.is_empty()));
    if has_props && !preserve && !m.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), json!(false));
    }
    Value::Object(out)
}

/// Parses a YAML stream into objects.
pub fn objects(text: &str) -> Vec<Value> {
    atoll_model::yaml::parse_documents(text)
        .expect("rendered YAML parses")
        .into_iter()
        .map(|d| d.value)
        .collect()
}
