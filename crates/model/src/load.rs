//! Reading declarations from YAML files and folders into typed, located objects.

use crate::convert;
use crate::parsed::{self, ParsedFiles};
use crate::types::*;
use crate::yaml;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::decl::{Decl, Declarations, Diagnostic, Diagnostics, Origin, Source};

macro_rules! push_typed {
    ($($kind:ident, $field:ident: $spec:ty, $scope:ident;)*) => {
        /// Types the spec of a declaration of `kind` (one of [`KINDS`]) into its list.
        #[allow(clippy::too_many_arguments)]
        fn push_typed(
            decls: &mut Declarations,
            kind: &str,
            spec: Value,
            name: String,
            namespace: Option<String>,
            labels: BTreeMap<String, String>,
            origin: Origin,
            diags: &mut Vec<Diagnostic>,
        ) {
            match kind {
                $(
                    stringify!($kind) => {
                        if let Some(spec) = typed::<$spec>(spec, &origin, diags) {
                            decls.$field.push(Decl { name, namespace, labels, spec, origin });
                        }
                    }
                )*
                _ => unreachable!("{kind} is not in KINDS"),
            }
        }
    };
}
crate::kinds::for_each_kind!(push_typed);

pub use crate::kinds::KINDS;

/// Lists the YAML files under `paths` (files as given, folders walked recursively), sorted
/// within each folder so that loading is deterministic.
pub fn yaml_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out, true)?;
    }
    Ok(out)
}

fn walk(p: &Path, out: &mut Vec<PathBuf>, explicit: bool) -> Result<(), Diagnostic> {
    walk_at(p, out, explicit, 0)
}

/// Folders deeper than this are refused (a symbolic link loop would never end).
const MAX_FOLDER_DEPTH: usize = 32;

fn walk_at(
    p: &Path,
    out: &mut Vec<PathBuf>,
    explicit: bool,
    depth: usize,
) -> Result<(), Diagnostic> {
    let io = |e: std::io::Error| Diagnostic {
        file: p.display().to_string(),
        line: 0,
        col: 0,
        object: String::new(),
        path: String::new(),
        message: format!("cannot read: {e}"),
    };
    let meta = std::fs::metadata(p).map_err(io)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            let name = e.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') {
                continue;
            }
            if depth >= MAX_FOLDER_DEPTH {
                return Err(Diagnostic {
                    file: e.display().to_string(),
                    line: 0,
                    col: 0,
                    object: String::new(),
                    path: String::new(),
                    message: format!(
                        "folders nested deeper than {MAX_FOLDER_DEPTH} levels (a symbolic link loop?)"
                    ),
                });
            }
            walk_at(&e, out, false, depth + 1)?;
        }
    } else if explicit || matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
        out.push(p.to_path_buf());
    }
    Ok(())
}

/// Loads every declaration under `paths`. All errors are collected.
pub fn load_paths(paths: &[PathBuf]) -> Result<Declarations, Diagnostics> {
    let (decls, diags) = load_paths_lenient(paths);
    if diags.is_empty() {
        Ok(decls)
    } else {
        Err(Diagnostics(diags))
    }
}

/// Loads what can be loaded, and the errors of what could not, so that validation can still
/// report everything else in the same run.
pub fn load_paths_lenient(paths: &[PathBuf]) -> (Declarations, Vec<Diagnostic>) {
    let l = load_paths_with(paths, None);
    (l.decls, l.diags)
}

/// What [`load_paths_with`] read.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The declarations read.
    pub decls: Declarations,
    /// Errors met reading them (files that do not parse, unknown kinds, bad fields).
    pub diags: Vec<Diagnostic>,
    /// The [`parsed::digest`](crate::parsed::digest) of every file read, in order.
    pub digests: Vec<String>,
    /// Files parsed (not found in the store) that loaded without errors: digest and what to
    /// keep for them.
    pub parsed: Vec<(String, Vec<u8>)>,
}

/// Loads like [`load_paths_lenient`], taking the declarations of files whose text is unchanged
/// from `store` instead of parsing them again.
pub fn load_paths_with(paths: &[PathBuf], store: Option<&dyn ParsedFiles>) -> Loaded {
    let files = match yaml_files(paths) {
        Ok(f) => f,
        Err(d) => {
            return Loaded {
                diags: vec![d],
                ..Default::default()
            };
        }
    };
    // Files are read in parallel, then merged in file order, so loading stays deterministic.
    use rayon::prelude::*;
    type One = (
        Declarations,
        Vec<Diagnostic>,
        Option<String>,
        Option<Vec<u8>>,
    );
    let loaded: Vec<One> = files
        .par_iter()
        .map(|f| {
            let mut decls = Declarations::default();
            let mut diags = Vec::new();
            let name = f.display().to_string();
            let text = match read_text(f, &name) {
                Ok(t) => t,
                Err(d) => {
                    diags.push(d);
                    return (decls, diags, None, None);
                }
            };
            let Some(store) = store else {
                load_str(&name, &text, &mut decls, &mut diags);
                return (decls, diags, None, None);
            };
            let digest = parsed::digest(&name, &text);
            let file: Arc<str> = name.as_str().into();
            let source = Arc::new(Source::new(text.as_str().into()));
            if let Some(d) = store
                .get(&digest)
                .and_then(|b| parsed::restore(&b, &file, &source))
            {
                return (d, diags, Some(digest), None);
            }
            load_source(file, source, &mut decls, &mut diags);
            let keep = diags.is_empty().then(|| parsed::store(&decls));
            (decls, diags, Some(digest), keep)
        })
        .collect();
    let mut out = Loaded::default();
    for (d, e, digest, keep) in loaded {
        out.decls.extend(d);
        out.diags.extend(e);
        if let Some(digest) = digest {
            if let Some(k) = keep {
                out.parsed.push((digest.clone(), k));
            }
            out.digests.push(digest);
        }
    }
    out
}

/// Reads a declaration file, bounded by [`yaml::Limits`]: its size is checked before it is
/// read, and invalid UTF-8 or a NUL is reported at its line and byte offset.
fn read_text(path: &Path, name: &str) -> Result<String, Diagnostic> {
    use std::io::Read;
    let fail = |line: usize, col: usize, message: String| Diagnostic {
        file: name.to_string(),
        line,
        col,
        object: String::new(),
        path: String::new(),
        message,
    };
    let max = yaml::Limits::get().max_bytes;
    let file = std::fs::File::open(path).map_err(|e| fail(0, 0, format!("cannot read: {e}")))?;
    let too_big = |n: u64| {
        fail(
            1,
            1,
            format!("the file is {n} bytes; at most {max} are read (ATOLL_MAX_FILE_BYTES)"),
        )
    };
    if let Ok(m) = file.metadata()
        && m.len() > max as u64
    {
        return Err(too_big(m.len()));
    }
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(0, 0, format!("cannot read: {e}")))?;
    if bytes.len() > max {
        return Err(too_big(bytes.len() as u64));
    }
    yaml::text_of(&bytes).map_err(|e| fail(e.line, e.col, e.message))?;
    Ok(String::from_utf8(bytes).expect("checked"))
}

/// Loads one object a shell already holds as a value (`apiVersion`, `kind`, `metadata` with
/// name, namespace and labels, `spec`), naming it `file` in errors: no text is printed or
/// parsed unless an error needs a line.
pub fn load_value(file: &str, value: Value, decls: &mut Declarations, diags: &mut Vec<Diagnostic>) {
    let source = Arc::new(Source::of_value(value.clone()));
    let origin = Origin {
        file: file.into(),
        line: 1,
        source,
        doc: 0,
        prefix: String::new(),
        object: "".into(),
    };
    load_doc(value, origin, decls, diags);
}

/// Loads the documents of one YAML text, naming it `file` in errors.
pub fn load_str(file: &str, text: &str, decls: &mut Declarations, diags: &mut Vec<Diagnostic>) {
    load_source(
        file.into(),
        Arc::new(Source::new(text.into())),
        decls,
        diags,
    );
}

fn load_source(
    file: Arc<str>,
    source: Arc<Source>,
    decls: &mut Declarations,
    diags: &mut Vec<Diagnostic>,
) {
    let docs = match yaml::parse_values_at(&source.text()) {
        Ok(d) => d,
        Err(e) => {
            diags.push(Diagnostic {
                file: file.to_string(),
                line: e.line,
                col: e.col,
                object: String::new(),
                path: String::new(),
                message: format!("invalid YAML: {}", e.message),
            });
            return;
        }
    };
    for (i, (value, line)) in docs.into_iter().enumerate() {
        let origin = Origin {
            file: file.clone(),
            line,
            source: source.clone(),
            doc: i,
            prefix: String::new(),
            object: "".into(),
        };
        load_doc(value, origin, decls, diags);
    }
}

fn load_doc(
    value: Value,
    mut origin: Origin,
    decls: &mut Declarations,
    diags: &mut Vec<Diagnostic>,
) {
    let Value::Object(mut map) = value else {
        diags.push(origin.error(
            "",
            "expected a mapping with apiVersion, kind, metadata and spec",
        ));
        return;
    };
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if api_version.is_empty() || kind.is_empty() {
        let field = if api_version.is_empty() {
            "apiVersion"
        } else {
            "kind"
        };
        diags.push(origin.error(
            field,
            format!("missing `{field}`: every document needs apiVersion and kind"),
        ));
        return;
    }
    let meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta = match map
        .remove("metadata")
        .map(serde_json::from_value)
        .transpose()
    {
        Ok(m) => m.unwrap_or_default(),
        Err(e) => {
            diags.push(origin.error("metadata", format!("invalid metadata: {e}")));
            return;
        }
    };
    let name = meta.name.clone().unwrap_or_default();
    origin.object = format!("{kind}/{}", if name.is_empty() { "?" } else { &name }).into();
    if name.is_empty() {
        diags.push(origin.error("metadata", "missing `metadata.name`"));
        return;
    }
    if let Some(msg) = crate::names::name_problem(&kind, &name) {
        diags.push(origin.error("metadata.name", msg));
    }
    for key in map.keys() {
        if !matches!(key.as_str(), "apiVersion" | "kind" | "spec" | "status") {
            diags.push(origin.error(
                key,
                format!(
                    "unknown field `{key}`, expected apiVersion, kind, metadata, spec or status"
                ),
            ));
        }
    }
    let labels = meta.labels.clone().unwrap_or_default();
    let namespace = meta.namespace.clone();
    let spec = map
        .remove("spec")
        .unwrap_or(Value::Object(Default::default()));

    if api_version == convert::LLO_API_VERSION && kind == "LowLevelOrchestration" {
        if let Some(s) = typed::<convert::LowLevelOrchestrationSpec>(spec, &origin, diags) {
            convert::expand(&name, s, &origin, decls, diags);
        }
        return;
    }
    if api_version != API_VERSION {
        let msg = if KINDS.contains(&kind.as_str()) {
            format!("unsupported apiVersion `{api_version}` for {kind}, expected `{API_VERSION}`")
        } else {
            format!(
                "unknown apiVersion `{api_version}`: expected `{API_VERSION}` or `{}` (LowLevelOrchestration)",
                convert::LLO_API_VERSION
            )
        };
        diags.push(origin.error("apiVersion", msg));
        return;
    }
    let namespaced = crate::kinds::is_namespaced(&kind);
    if namespaced && namespace.as_deref().unwrap_or("").is_empty() {
        diags.push(origin.error(
            "metadata",
            format!("{kind} is namespaced: set `metadata.namespace` to the owning team"),
        ));
        return;
    }
    if !namespaced && namespace.is_some() {
        diags.push(origin.error(
            "metadata.namespace",
            format!("{kind} is cluster-scoped: remove `metadata.namespace`"),
        ));
    }
    if KINDS.contains(&kind.as_str()) {
        push_typed(decls, &kind, spec, name, namespace, labels, origin, diags);
    } else {
        diags.push(origin.error(
            "kind",
            format!(
                "unknown kind `{kind}` in {API_VERSION}, expected one of: {}",
                KINDS.join(", ")
            ),
        ));
    }
}

/// Deserialises a spec, turning serde's complaint into an error at the offending field.
pub(crate) fn typed<T: DeserializeOwned>(
    spec: Value,
    origin: &Origin,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(spec) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let path = if inner == "." {
                "spec".to_string()
            } else {
                format!("spec.{inner}")
            };
            // serde names the field as `?` when the error is about a missing one at this level.
            let path = path.replace(".?", "");
            diags.push(origin.error(&path, describe_serde(&e.into_inner().to_string())));
            None
        }
    }
}

fn describe_serde(msg: &str) -> String {
    msg.to_string()
}
