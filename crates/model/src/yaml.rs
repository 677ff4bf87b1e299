//! YAML → JSON values with a line index.
//!
//! serde deserialisers lose positions once a value is built; atoll's errors must name the
//! line of any field, including for semantic errors found long after parsing. So documents are
//! read from the parser's event stream into `serde_json::Value`s, and every field path
//! (`spec.clusters[0].name`) is recorded with the line and column where it starts.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Bounds on what one YAML text may cost to read: every input is hostile until checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest declaration file or request text, in bytes (`ATOLL_MAX_FILE_BYTES`).
    pub max_bytes: usize,
    /// Deepest nesting of mappings and sequences (`ATOLL_MAX_YAML_DEPTH`).
    pub max_depth: usize,
    /// Most nodes that aliases may copy in one text (`ATOLL_MAX_YAML_ALIAS_NODES`): a
    /// "billion laughs" document of a few hundred bytes would otherwise expand to gigabytes.
    pub max_alias_nodes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 16 << 20,
            max_depth: 64,
            max_alias_nodes: 10_000,
        }
    }
}

impl Limits {
    /// The defaults, each overridable by its environment variable.
    pub fn get() -> Limits {
        static LIMITS: OnceLock<Limits> = OnceLock::new();
        *LIMITS.get_or_init(|| {
            let d = Limits::default();
            let env = |name: &str, default: usize| {
                std::env::var(name)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(default)
            };
            Limits {
                max_bytes: env("ATOLL_MAX_FILE_BYTES", d.max_bytes),
                max_depth: env("ATOLL_MAX_YAML_DEPTH", d.max_depth),
                max_alias_nodes: env("ATOLL_MAX_YAML_ALIAS_NODES", d.max_alias_nodes),
            }
        })
    }
}

/// Bytes as text: invalid UTF-8 is an error at its line and byte offset, and so is a NUL.
pub fn text_of(bytes: &[u8]) -> Result<&str, SyntaxError> {
    let at = |offset: usize, message: String| {
        let before = &bytes[..offset];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let col = offset
            - before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1)
            + 1;
        SyntaxError { line, col, message }
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let o = e.valid_up_to();
        at(
            o,
            format!("invalid UTF-8 at byte offset {o}: YAML text must be UTF-8"),
        )
    })?;
    if let Some(o) = bytes.iter().position(|b| *b == 0) {
        return Err(at(
            o,
            format!("NUL byte at byte offset {o}: not allowed in YAML text"),
        ));
    }
    Ok(text)
}

/// One YAML document: its value and where each field path starts.
#[derive(Debug, Clone)]
pub struct Document {
    /// The document as JSON.
    pub value: Value,
    /// Line (1-based) of the document's first node.
    pub line: usize,
    /// Where each field path starts.
    pub positions: Positions,
}

/// Field path → (line, column), both 1-based.
#[derive(Debug, Clone, Default)]
pub struct Positions(HashMap<String, (usize, usize)>);

impl Positions {
    /// The position of `path`, or of its closest recorded ancestor.
    pub fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(pos) = self.0.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// A syntax error with its place.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    /// Line, 1-based.
    pub line: usize,
    /// Column, 1-based.
    pub col: usize,
    /// What the parser says.
    pub message: String,
}

/// Parses every document of a multi-document YAML string.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, SyntaxError> {
    parse(text, false)
}

/// Parses every document without recording positions: for atoll's own files, read back
/// whole, where no error will point into them.
pub fn parse_values(text: &str) -> Result<Vec<Value>, SyntaxError> {
    Ok(parse(text, true)?.into_iter().map(|d| d.value).collect())
}

/// Parses every document without recording field positions, keeping each document's first
/// line: what declarations need until an error asks for a field's place.
pub fn parse_values_at(text: &str) -> Result<Vec<(Value, usize)>, SyntaxError> {
    Ok(parse(text, true)?
        .into_iter()
        .map(|d| (d.value, d.line))
        .collect())
}

fn parse(text: &str, untracked: bool) -> Result<Vec<Document>, SyntaxError> {
    let limits = Limits::get();
    if text.len() > limits.max_bytes {
        return Err(SyntaxError {
            line: 1,
            col: 1,
            message: format!(
                "the text is {} bytes; at most {} are read (ATOLL_MAX_FILE_BYTES)",
                text.len(),
                limits.max_bytes
            ),
        });
    }
    text_of(text.as_bytes())?;
    let mut parser = Parser::new_from_str(text);
    let mut alias_nodes = 0usize;
    let mut docs = Vec::new();
    let fresh = || Builder {
        untracked,
        ..Default::default()
    };
    let mut builder = fresh();
    // An anchor's value and how many nodes it holds.
    let mut anchors: HashMap<usize, (Value, usize)> = HashMap::new();
    let at = |span: Span, message: String| SyntaxError {
        line: span.start.line(),
        col: span.start.col() + 1,
        message,
    };
    while let Some(ev) = parser.next_event() {
        let (ev, span) = ev.map_err(|e| SyntaxError {
            line: e.marker().line(),
            col: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        match ev {
            Event::DocumentStart(_) => {
                builder = fresh();
                anchors.clear();
            }
            Event::DocumentEnd => {
                if let Some(value) = builder.root.take() {
                    // An empty document (`---` followed by nothing) is skipped.
                    if !value.is_null() {
                        docs.push(Document {
                            value,
                            line: builder.first_line,
                            positions: Positions(std::mem::take(&mut builder.positions)),
                        });
                    }
                }
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _)
                if builder.stack.len() >= limits.max_depth =>
            {
                let _ = anchor;
                return Err(at(
                    span,
                    format!(
                        "nested deeper than {} levels (ATOLL_MAX_YAML_DEPTH)",
                        limits.max_depth
                    ),
                ));
            }
            Event::MappingStart(anchor, _) => builder.open(Frame::map(anchor), span),
            Event::SequenceStart(anchor, _) => builder.open(Frame::seq(anchor), span),
            Event::MappingEnd | Event::SequenceEnd => {
                let frame = builder.stack.pop().expect("balanced events");
                let value = match frame.kind {
                    FrameKind::Map(m, _) => Value::Object(m),
                    FrameKind::Seq(s) => Value::Array(s),
                };
                if frame.anchor > 0 {
                    anchors.insert(frame.anchor, (value.clone(), nodes(&value)));
                }
                builder.push_value(value, None)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tagged_str = tag
                    .as_ref()
                    .is_some_and(|t| t.handle == "tag:yaml.org,2002:" && t.suffix == "str");
                if text.contains('\0') {
                    return Err(at(
                        span,
                        "a NUL character in a scalar is not allowed".into(),
                    ));
                }
                let value = if style == ScalarStyle::Plain && !tagged_str {
                    plain_scalar(&text)
                } else {
                    Value::String(text.into_owned())
                };
                if anchor > 0 {
                    anchors.insert(anchor, (value.clone(), 1));
                }
                builder.push_value(value, Some(span))?;
            }
            Event::Alias(id) => {
                let (value, n) = anchors.get(&id).cloned().unwrap_or((Value::Null, 1));
                alias_nodes += n;
                if alias_nodes > limits.max_alias_nodes {
                    return Err(at(
                        span,
                        format!(
                            "aliases expand to more than {} nodes (ATOLL_MAX_YAML_ALIAS_NODES): refusing what looks like an alias bomb",
                            limits.max_alias_nodes
                        ),
                    ));
                }
                if builder.stack.len() + depth(&value) > limits.max_depth {
                    return Err(at(
                        span,
                        format!(
                            "nested deeper than {} levels (ATOLL_MAX_YAML_DEPTH)",
                            limits.max_depth
                        ),
                    ));
                }
                builder.push_value(value, Some(span))?;
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
    Ok(docs)
}

/// Nodes in a value (itself included).
fn nodes(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(nodes).sum::<usize>(),
        Value::Array(a) => 1 + a.iter().map(nodes).sum::<usize>(),
        _ => 1,
    }
}

/// Levels of mappings and sequences in a value.
fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    positions: HashMap<String, (usize, usize)>,
    first_line: usize,
    /// Skip the path bookkeeping (no positions wanted).
    untracked: bool,
}

struct Frame {
    anchor: usize,
    path: String,
    kind: FrameKind,
}

enum FrameKind {
    /// Entries so far, and the key waiting for its value.
    Map(Map<String, Value>, Option<String>),
    Seq(Vec<Value>),
}

impl Frame {
    fn map(anchor: usize) -> Frame {
        Frame {
            anchor,
            path: String::new(),
            kind: FrameKind::Map(Map::new(), None),
        }
    }
    fn seq(anchor: usize) -> Frame {
        Frame {
            anchor,
            path: String::new(),
            kind: FrameKind::Seq(Vec::new()),
        }
    }
}

impl Builder {
    /// The path the next value will have, or `None` when the next scalar is a mapping key.
    fn next_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame {
                path,
                kind: FrameKind::Map(_, Some(key)),
                ..
            }) => Some(if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            }),
            Some(Frame {
                kind: FrameKind::Map(_, None),
                ..
            }) => None,
            Some(Frame {
                path,
                kind: FrameKind::Seq(s),
                ..
            }) => Some(format!("{path}[{}]", s.len())),
        }
    }

    fn mark(&mut self, path: &str, span: Span) {
        if self.stack.is_empty() && self.first_line == 0 {
            self.first_line = span.start.line();
        }
        self.positions
            .entry(path.to_string())
            .or_insert((span.start.line(), span.start.col() + 1));
    }

    fn open(&mut self, mut frame: Frame, span: Span) {
        if self.untracked {
            if self.stack.is_empty() && self.first_line == 0 {
                self.first_line = span.start.line();
            }
        } else {
            let path = self.next_path().unwrap_or_default();
            self.mark(&path, span);
            frame.path = path;
        }
        self.stack.push(frame);
    }

    fn push_value(&mut self, value: Value, span: Option<Span>) -> Result<(), SyntaxError> {
        if self.untracked {
            if let Some(span) = span
                && self.stack.is_empty()
                && self.first_line == 0
            {
                self.first_line = span.start.line();
            }
        } else {
            let path = self.next_path();
            if let (Some(p), Some(span)) = (&path, span) {
                self.mark(p, span);
            }
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(frame) => match &mut frame.kind {
                FrameKind::Seq(s) => s.push(value),
                FrameKind::Map(m, pending) => match pending.take() {
                    Some(key) => {
                        m.insert(key, value);
                    }
                    None => {
                        let key = match value {
                            Value::String(s) => s,
                            Value::Number(n) => n.to_string(),
                            Value::Bool(b) => b.to_string(),
                            Value::Null => "null".into(),
                            _ => {
                                let (line, col) = span
                                    .map(|s| (s.start.line(), s.start.col() + 1))
                                    .unwrap_or((0, 0));
                                return Err(SyntaxError {
                                    line,
                                    col,
                                    message: "mapping keys must be scalars".into(),
                                });
                            }
                        };
                        if m.contains_key(&key) {
                            let (line, col) = span
                                .map(|s| (s.start.line(), s.start.col() + 1))
                                .unwrap_or((0, 0));
                            return Err(SyntaxError {
                                line,
                                col,
                                message: format!("duplicate key `{key}`"),
                            });
                        }
                        if let Some(span) = span.filter(|_| !self.untracked) {
                            let p = if frame.path.is_empty() {
                                key.clone()
                            } else {
                                format!("{}.{key}", frame.path)
                            };
                            self.positions
                                .entry(p)
                                .or_insert((span.start.line(), span.start.col() + 1));
                        }
                        *pending = Some(key);
                    }
                },
            },
        }
        Ok(())
    }
}

/// Resolves a plain scalar by the YAML 1.2 core schema, as Kubernetes tooling does.
fn plain_scalar(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = s.parse::<i64>()
    {
        return Value::Number(i.into());
    }
    if let Some(hex) = s.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Number(i.into());
    }
    let looks_float = s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && s.bytes().filter(|b| *b == b'.').count() <= 1;
    if looks_float
        && let Ok(f) = s.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(s.to_string())
}

/// Writes a JSON value as block YAML. Deterministic, and strings that a YAML reader would take
/// for something else (`on`, `1.0`, `yes`, `0755`) are quoted.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    match value {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            write_scalar(&mut out, other);
            out.push('\n');
        }
    }
    out
}

/// Several objects as one multi-document YAML stream.
pub fn to_yaml_stream<'a>(values: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_yaml(v));
    }
    out
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn write_map(out: &mut String, m: &Map<String, Value>, ind: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            indent(out, ind);
        }
        write_key(out, k);
        write_child(out, v, ind);
    }
}

fn write_seq(out: &mut String, a: &[Value], ind: usize) {
    for (i, v) in a.iter().enumerate() {
        if i > 0 {
            indent(out, ind);
        }
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => write_map(out, m, ind + 2),
            Value::Array(a) if !a.is_empty() => write_seq(out, a, ind + 2),
            other => {
                write_scalar(out, other);
                out.push('\n');
            }
        }
    }
}

fn write_child(out: &mut String, v: &Value, ind: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push_str(":\n");
            indent(out, ind + 2);
            write_map(out, m, ind + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str(":\n");
            indent(out, ind);
            write_seq(out, a, ind);
        }
        Value::String(s) if s.contains('\n') && block_safe(s) => {
            out.push_str(": |");
            if !s.ends_with('\n') {
                out.push('-');
            }
            out.push('\n');
            for line in s.trim_end_matches('\n').split('\n') {
                if !line.is_empty() {
                    indent(out, ind + 2);
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        other => {
            out.push_str(": ");
            write_scalar(out, other);
            out.push('\n');
        }
    }
}

/// A literal block keeps text readable (scripts, embedded manifests); it cannot carry leading
/// spaces on the first line, trailing spaces, tabs or several trailing newlines faithfully.
fn block_safe(s: &str) -> bool {
    !s.starts_with(' ')
        && !s.starts_with('\n')
        && !s.ends_with("\n\n")
        && !s.contains('\t')
        && !s.contains('\r')
        && s.split('\n').all(|l| !l.ends_with(' '))
}

fn write_key(out: &mut String, k: &str) {
    if plain_safe(k) {
        out.push_str(k);
    } else {
        out.push_str(&serde_json::to_string(k).expect("string"));
    }
}

fn write_scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => {
            if plain_safe(s) {
                out.push_str(s)
            } else {
                out.push_str(&serde_json::to_string(s).expect("string"))
            }
        }
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

/// Whether a string can be written unquoted and read back as the same string by any YAML 1.1
/// or 1.2 reader.
fn plain_safe(s: &str) -> bool {
    if s.is_empty() || s.len() > 200 {
        return false;
    }
    let b = s.as_bytes();
    if !(b[0].is_ascii_alphabetic() || b[0] == b'/' || b[0] == b'_') {
        return false;
    }
    if !b.iter().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/' | b'@' | b'+' | b'=')
    }) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    let reserved = matches!(
        lower.as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "~" | ".inf" | ".nan"
    );
    !reserved && b[0] != b'.' && !lower.starts_with("0x") && s.parse::<f64>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_types() {
        let docs = parse_documents(
            "a: 1\nb:\n  - x: \"2\"\n    y: on\n  - z\n---\n---\nkind: K\nv: 1.5\nq: '7'\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].value["a"], 1);
        assert_eq!(docs[0].value["b"][0]["x"], "2");
        // YAML 1.2: `on` is a string.
        assert_eq!(docs[0].value["b"][0]["y"], "on");
        assert_eq!(docs[0].positions.find("b[0].y"), Some((4, 5)));
        assert_eq!(docs[0].positions.find("b[1]"), Some((5, 5)));
        assert_eq!(docs[1].line, 8);
        assert_eq!(docs[1].value["v"], 1.5);
        assert_eq!(docs[1].value["q"], "7");
        assert_eq!(docs[1].positions.find("q.missing.deeper"), Some((10, 1)));
    }

    #[test]
    fn untracked_parse_gives_the_same_values() {
        let text =
            "a: 1\nb:\n  - x: \"2\"\n    y: on\n  - &z z\n  - *z\n---\n---\nkind: K\nv: 1.5\n";
        let tracked: Vec<Value> = parse_documents(text)
            .unwrap()
            .into_iter()
            .map(|d| d.value)
            .collect();
        assert_eq!(parse_values(text).unwrap(), tracked);
        assert_eq!(tracked.len(), 2);
        assert!(parse_values("a: 1\na: 2\n").is_err());
    }

    #[test]
    fn limits() {
        // Billion laughs: nine levels of ten aliases each.
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = parse_values(&bomb).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{}", e.message);
        assert_eq!(e.line, 4, "the first line past the budget");
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let e = parse_values(&deep).unwrap_err();
        assert!(e.message.contains("deeper than 64"), "{}", e.message);
        let e = parse_values("a: \"x\\0y\"\n").unwrap_err();
        assert!(e.message.contains("NUL"), "{}", e.message);
        let e = text_of(b"a: 1\nb: \xff\n").unwrap_err();
        assert_eq!((e.line, e.col), (2, 4));
        assert!(e.message.contains("byte offset 8"), "{}", e.message);
        // A few aliases are fine.
        let v = parse_values("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(v[0]["b"]["k"], "v");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("duplicate key `a`"));
    }

    #[test]
    fn round_trip() {
        let v = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "data": {"on": "yes", "n": "0755", "f": "1.0", "e": "", "script": "echo hi\nexit 0\n",
                     "sp": " lead", "k:v": "a: b", "t": "true"},
            "list": [{"a": 1, "b": [1, 2]}, [], {}, "x"],
        });
        let text = to_yaml(&v);
        let back = parse_documents(&text).unwrap();
        assert_eq!(back[0].value, v, "{text}");
    }
}
