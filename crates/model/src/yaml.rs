//! YAML → JSON values with a line index.
//!
//! serde deserialisers lose positions once a value is built; atoll's errors must name the
//! line of any field, including for semantic errors found long after parsing. So documents are
//! read from the parser's event stream into `serde_json::Value`s, and every field path
//! (`spec.clusters[0].name`) is recorded with the line and column where it starts.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// One YAML document: its value and where each field path starts.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    /// Line (1-based) of the document's first node.
    pub line: usize,
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
    pub line: usize,
    pub col: usize,
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
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let fresh = || Builder {
        untracked,
        ..Default::default()
    };
    let mut builder = fresh();
    let mut anchors: HashMap<usize, Value> = HashMap::new();
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
            Event::MappingStart(anchor, _) => builder.open(Frame::map(anchor), span),
            Event::SequenceStart(anchor, _) => builder.open(Frame::seq(anchor), span),
            Event::MappingEnd | Event::SequenceEnd => {
                let frame = builder.stack.pop().expect("balanced events");
                let value = match frame.kind {
                    FrameKind::Map(m, _) => Value::Object(m),
                    FrameKind::Seq(s) => Value::Array(s),
                };
                if frame.anchor > 0 {
                    anchors.insert(frame.anchor, value.clone());
                }
                builder.push_value(value, None)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tagged_str = tag
                    .as_ref()
                    .is_some_and(|t| t.handle == "tag:yaml.org,2002:" && t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !tagged_str {
                    plain_scalar(&text)
                } else {
                    Value::String(text.into_owned())
                };
                if anchor > 0 {
                    anchors.insert(anchor, value.clone());
                }
                builder.push_value(value, Some(span))?;
            }
            Event::Alias(id) => {
                let value = anchors.get(&id).cloned().unwrap_or(Value::Null);
                builder.push_value(value, Some(span))?;
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
    Ok(docs)
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
