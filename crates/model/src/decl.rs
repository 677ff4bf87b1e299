//! What a declaration is once read: the typed object with its identity and labels, where it
//! came from (file, document, field positions found on demand), and the diagnostics that
//! point there. Reading ([`crate::load`]), converting and validating all speak these types;
//! none of them needs another to say what a declaration is.

use crate::types::*;
use crate::yaml::{self, Positions};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// The text declarations were read from. Field positions are found in it only when an error
/// needs them: tracking every field's position while parsing costs a quarter of the parse,
/// and a fleet that validates never asks.
pub struct Source {
    body: Body,
    /// Per document (in [`yaml::parse_documents`] order), once asked for.
    positions: OnceLock<Vec<Positions>>,
}

/// What declarations were read from.
enum Body {
    /// A file's or a request's text.
    Text(Arc<str>),
    /// An object a shell already held as a value (a stored object, a custom resource): its
    /// text, for positions, is printed only when an error asks for one.
    Value(Value),
}

impl Source {
    /// A file's text.
    pub fn new(text: Arc<str>) -> Source {
        Source {
            body: Body::Text(text),
            positions: OnceLock::new(),
        }
    }

    /// A source for an object held as a value.
    pub fn of_value(value: Value) -> Source {
        Source {
            body: Body::Value(value),
            positions: OnceLock::new(),
        }
    }

    /// The text: a value prints as indented JSON (which is YAML), what error lines refer to.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match &self.body {
            Body::Text(t) => std::borrow::Cow::Borrowed(t),
            Body::Value(v) => {
                std::borrow::Cow::Owned(serde_json::to_string_pretty(v).expect("json"))
            }
        }
    }

    /// Field positions of the `doc`-th document.
    fn positions(&self, doc: usize) -> Option<&Positions> {
        self.positions
            .get_or_init(|| {
                yaml::parse_documents(&self.text())
                    .map(|docs| docs.into_iter().map(|d| d.positions).collect())
                    .unwrap_or_default()
            })
            .get(doc)
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.body {
            Body::Text(t) => write!(f, "Source({} bytes)", t.len()),
            Body::Value(_) => write!(f, "Source(value)"),
        }
    }
}

/// Where a declaration came from, so any later error can name file, line and field.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The file, as given on the command line (or an object key in the server/operator).
    pub file: Arc<str>,
    /// Line of the document's start.
    pub line: usize,
    /// The text of the file, and the index of the document in it.
    pub source: Arc<Source>,
    /// See `source`.
    pub doc: usize,
    /// For objects expanded from another (a LogicalCluster member, a converted
    /// LowLevelOrchestration entry): the path of the entry inside that document.
    pub prefix: String,
    /// `Kind/name` of the declaring object.
    pub object: Arc<str>,
}

impl Origin {
    /// An error about the field at `path` (relative to this object).
    pub fn error(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        let full = match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) if path.starts_with('[') => format!("{}{path}", self.prefix),
            (false, false) => format!("{}.{path}", self.prefix),
        };
        let (line, col) = self
            .source
            .positions(self.doc)
            .and_then(|p| p.find(&full))
            .unwrap_or((self.line, 1));
        Diagnostic {
            file: self.file.to_string(),
            line,
            col,
            object: self.object.to_string(),
            path: full,
            message: message.into(),
        }
    }

    /// The same document, seen from an entry inside it.
    pub fn nested(&self, path: &str, object: String) -> Origin {
        let mut o = self.clone();
        o.prefix = if self.prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}.{path}", self.prefix)
        };
        o.object = object.into();
        o
    }
}

/// One error in the declarations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// The file (or object key) the error is in.
    pub file: String,
    /// Line, 1-based (0 when unknown).
    pub line: usize,
    /// Column, 1-based (0 when unknown).
    pub col: usize,
    /// `Kind/name`, or empty when the document could not be identified.
    pub object: String,
    /// Field path, e.g. `spec.infrastructure.name`.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}:", self.file, self.line, self.col)?;
        if !self.object.is_empty() {
            write!(f, " {}:", self.object)?;
        }
        if !self.path.is_empty() {
            write!(f, " {}:", self.path)?;
        }
        write!(f, " {}", self.message)
    }
}

/// All errors found, reported at once.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl std::fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        write!(f, "{} error(s)", self.0.len())
    }
}

/// A declared object: its identity, labels, spec and origin.
#[derive(Debug, Clone)]
pub struct Decl<T> {
    /// `metadata.name`.
    pub name: String,
    /// Set for namespaced kinds (the owning team).
    pub namespace: Option<String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// The typed spec.
    pub spec: T,
    /// Where it was declared.
    pub origin: Origin,
}

macro_rules! declarations {
    ($($kind:ident, $field:ident: $spec:ty, $scope:ident;)*) => {
        /// Every declaration read, in file order: one list per kind.
        #[derive(Debug, Clone, Default)]
        pub struct Declarations {
            $(
                #[doc = concat!("The ", stringify!($kind), " declarations.")]
                pub $field: Vec<Decl<$spec>>,
            )*
        }

        impl Declarations {
            /// Appends `other`'s declarations after this one's.
            pub fn extend(&mut self, other: Declarations) {
                $( self.$field.extend(other.$field); )*
            }
        }
    };
}
crate::kinds::for_each_kind!(declarations);
