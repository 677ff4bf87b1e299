//! Label selectors with Kubernetes' own semantics, in both of its forms:
//!
//! - the text form (`tier=edge,region in (eu-west),!legacy,replicas>2`) that kubectl's
//!   `--selector` and the API's `labelSelector` query take, parsed exactly as
//!   k8s.io/apimachinery's `labels.Parse` does (same lexer: bytes, the same whitespace, the
//!   same operators including `>`/`<`, the same quirks such as `x in()` meaning the empty
//!   value);
//! - the structured `LabelSelector` (`matchLabels` + `matchExpressions`) of a TargetPolicy,
//!   checked as `metav1.LabelSelectorAsSelector` checks it.
//!
//! Both become a [`Selector`]. `crates/model/tests/selector_differential.rs` feeds thousands of
//! generated selectors and label sets to the real Go implementation and to this one and
//! requires the same answers. One deliberate difference: a NUL byte ends the string for Go's
//! lexer (the rest is silently ignored); atoll refuses it.

use crate::types::{LabelSelector, LabelSelectorRequirement};
use std::collections::BTreeMap;

/// A selector operator (k8s.io/apimachinery/pkg/selection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operator {
    /// `key in (a, b)`.
    In,
    /// `key notin (a, b)`.
    NotIn,
    /// `key=a`.
    Equals,
    /// `key==a`.
    DoubleEquals,
    /// `key!=a`.
    NotEquals,
    /// `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
    /// `key>1` (integers).
    GreaterThan,
    /// `key<1` (integers).
    LessThan,
}

/// One requirement: a key, an operator and its values (sorted, without duplicates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How its value is compared.
    pub operator: Operator,
    /// The values compared with.
    pub values: Vec<String>,
}

/// Requirements that must all hold; no requirement selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(pub Vec<Requirement>);

/// Why a selector was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

impl Requirement {
    /// A requirement checked as `labels.NewRequirement` checks it.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Requirement, String> {
        let problems = Self::problems(key, operator, &values);
        if !problems.is_empty() {
            return Err(problems
                .into_iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; "));
        }
        let mut values = values;
        values.sort();
        values.dedup();
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
        })
    }

    /// What `labels.NewRequirement` refuses, as (field, message): the field is `key`,
    /// `values` or `values[i]`.
    pub fn problems(key: &str, operator: Operator, values: &[String]) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if let Some(m) = label_key_problem(key) {
            errs.push(("key".to_string(), m));
        }
        let name = format!("{operator:?}");
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errs.push((
                "values".into(),
                format!("operator {name} needs at least one value"),
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errs.push((
                    "values".into(),
                    "an exact match needs exactly one value".into(),
                ))
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                errs.push(("values".into(), format!("operator {name} takes no values")))
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push((
                        "values".into(),
                        "operators > and < need exactly one value".into(),
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if parse_int(v).is_none() {
                        errs.push((
                            format!("values[{i}]"),
                            format!("`{v}` is not an integer, as > and < need"),
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            if let Some(m) = label_value_problem(v) {
                errs.push((format!("values[{i}]"), m));
            }
        }
        errs
    }

    /// Whether `labels` satisfy the requirement (`Requirement.Matches`).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.key);
        let has = |v: &String| self.values.binary_search(v).is_ok();
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => v.is_some_and(has),
            Operator::NotIn | Operator::NotEquals => v.is_none_or(|v| !has(v)),
            Operator::Exists => v.is_some(),
            Operator::DoesNotExist => v.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(l), [r]) = (v.and_then(|v| parse_int(v)), self.values.as_slice()) else {
                    return false;
                };
                let Some(r) = parse_int(r) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    l > r
                } else {
                    l < r
                }
            }
        }
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`: an optional sign and decimal digits, in range.
fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Selector {
    /// Parses the text form exactly as `labels.Parse` does.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        if text.contains('\0') {
            return Err(SelectorError(
                "a selector must not contain a NUL byte".into(),
            ));
        }
        let tokens = lex(text.as_bytes());
        let mut p = Parser { tokens, pos: 0 };
        let mut reqs = p.parse().map_err(SelectorError)?;
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector(reqs))
    }

    /// A structured selector, checked as `metav1.LabelSelectorAsSelector` checks it. The
    /// error names the field (`matchExpressions[1].operator`).
    pub fn from_label_selector(s: &LabelSelector) -> Result<Selector, (String, String)> {
        let mut reqs = Vec::new();
        for (k, v) in &s.match_labels {
            reqs.push(
                Requirement::new(k, Operator::Equals, vec![v.clone()])
                    .map_err(|m| (format!("matchLabels.{k}"), m))?,
            );
        }
        for (i, r) in s.match_expressions.iter().enumerate() {
            let at = format!("matchExpressions[{i}]");
            let op = match r.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err((
                        format!("{at}.operator"),
                        format!(
                            "`{other}` is not a valid label selector operator: expected In, NotIn, Exists or DoesNotExist"
                        ),
                    ));
                }
            };
            if let Some((f, m)) = Requirement::problems(&r.key, op, &r.values)
                .into_iter()
                .next()
            {
                return Err((format!("{at}.{f}"), m));
            }
            reqs.push(Requirement::new(&r.key, op, r.values.clone()).expect("checked"));
        }
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector(reqs))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }

    /// Whether it selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

// ---------------------------------------------------------------- lexer (labels/selector.go)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    End,
    Ident,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn literal_token(s: &[u8]) -> Option<Tok> {
    Some(match s {
        b")" => Tok::ClosedPar,
        b"," => Tok::Comma,
        b"!" => Tok::DoesNotExist,
        b"==" => Tok::DoubleEquals,
        b"=" => Tok::Equals,
        b">" => Tok::GreaterThan,
        b"in" => Tok::In,
        b"<" => Tok::LessThan,
        b"!=" => Tok::NotEquals,
        b"notin" => Tok::NotIn,
        b"(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// The whole token stream, ending with `End`. Go's lexer works on bytes: a multi-byte
/// character is part of an identifier (and then fails the key or value rules).
fn lex(s: &[u8]) -> Vec<(Tok, String)> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        while pos < s.len() && is_whitespace(s[pos]) {
            pos += 1;
        }
        if pos >= s.len() {
            out.push((Tok::End, String::new()));
            return out;
        }
        let start = pos;
        if is_special(s[pos]) {
            // The longest run of special symbols that is still a token.
            let mut last = None;
            while pos < s.len() && is_special(s[pos]) {
                match literal_token(&s[start..=pos]) {
                    Some(t) => {
                        last = Some((t, pos + 1));
                        pos += 1;
                    }
                    None => break,
                }
            }
            let (t, end) = last.expect("every special symbol is a token");
            pos = end;
            out.push((t, String::from_utf8_lossy(&s[start..end]).into_owned()));
        } else {
            while pos < s.len() && !is_special(s[pos]) && !is_whitespace(s[pos]) {
                pos += 1;
            }
            let lit = String::from_utf8_lossy(&s[start..pos]).into_owned();
            out.push((literal_token(&s[start..pos]).unwrap_or(Tok::Ident), lit));
        }
    }
}

// ---------------------------------------------------------------- parser

struct Parser {
    tokens: Vec<(Tok, String)>,
    pos: usize,
}

/// Go's parser contexts: in `Values`, `in` and `notin` are plain identifiers.
#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

impl Parser {
    fn lookahead(&self, ctx: Ctx) -> (Tok, &str) {
        let (t, l) = &self.tokens[self.pos];
        (Self::in_ctx(*t, ctx), l)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let (t, l) = self.tokens[self.pos].clone();
        self.pos = (self.pos + 1).min(self.tokens.len() - 1);
        (Self::in_ctx(t, ctx), l)
    }

    fn in_ctx(t: Tok, ctx: Ctx) -> Tok {
        match t {
            Tok::In | Tok::NotIn if ctx == Ctx::Values => Tok::Ident,
            t => t,
        }
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (t, lit) = self.lookahead(Ctx::Values);
            match t {
                Tok::Ident | Tok::DoesNotExist => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Ident && t2 != Tok::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::End => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let mut op = None;
        let (mut t, mut lit) = self.consume(Ctx::Values);
        if t == Tok::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (t, lit) = self.consume(Ctx::Values);
        }
        if t != Tok::Ident {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        if let Some(m) = label_key_problem(&lit) {
            return Err(m);
        }
        let key = lit;
        if matches!(self.lookahead(Ctx::Values).0, Tok::End | Tok::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        if let Some(op) = op {
            return Requirement::new(&key, op, Vec::new());
        }
        let (t, lit) = self.consume(Ctx::KeyAndOperator);
        let op = match t {
            Tok::In => Operator::In,
            Tok::Equals => Operator::Equals,
            Tok::DoubleEquals => Operator::DoubleEquals,
            Tok::GreaterThan => Operator::GreaterThan,
            Tok::LessThan => Operator::LessThan,
            Tok::NotIn => Operator::NotIn,
            Tok::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        };
        let values = match op {
            Operator::In | Operator::NotIn => self.values()?,
            _ => self.exact_value()?,
        };
        Requirement::new(&key, op, values)
    }

    fn values(&mut self) -> Result<Vec<String>, String> {
        let (t, lit) = self.consume(Ctx::Values);
        if t != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (t, lit) = self.lookahead(Ctx::Values);
        let lit = lit.to_string();
        match t {
            Tok::Ident | Tok::Comma => {
                let s = self.identifiers()?;
                if self.consume(Ctx::Values).0 != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(s)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn identifiers(&mut self) -> Result<Vec<String>, String> {
        let mut s: Vec<String> = Vec::new();
        loop {
            let (t, lit) = self.consume(Ctx::Values);
            match t {
                Tok::Ident => {
                    s.push(lit);
                    let (t2, l2) = self.lookahead(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(s),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        s.push(String::new());
                    }
                    let (t2, _) = self.lookahead(Ctx::Values);
                    if t2 == Tok::ClosedPar {
                        s.push(String::new());
                        return Ok(s);
                    }
                    if t2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        s.push(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        let (t, _) = self.lookahead(Ctx::Values);
        if t == Tok::End || t == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (t, lit) = self.consume(Ctx::Values);
        if t == Tok::Ident {
            Ok(vec![lit])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

// ---------------------------------------------------------------- LabelSelector

impl LabelSelector {
    /// Whether `labels` satisfy every requirement. An empty selector matches everything.
    /// (A selector that passed [`LabelSelector::problems`] means what Kubernetes says.)
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// Problems with the selector as (field path, message) pairs: what
    /// `metav1.LabelSelectorAsSelector` refuses.
    pub fn problems(&self) -> Vec<(String, String)> {
        // Go stops at the first error; atoll reports each bad requirement.
        let mut out = Vec::new();
        for (k, v) in &self.match_labels {
            for (_, m) in Requirement::problems(k, Operator::Equals, std::slice::from_ref(v)) {
                out.push((format!("matchLabels.{k}"), m));
            }
        }
        for (i, r) in self.match_expressions.iter().enumerate() {
            let one = LabelSelector {
                match_labels: BTreeMap::new(),
                match_expressions: vec![r.clone()],
            };
            if let Err((f, m)) = Selector::from_label_selector(&one) {
                out.push((f.replacen("[0]", &format!("[{i}]"), 1), m));
            }
        }
        out
    }
}

impl LabelSelectorRequirement {
    /// Whether `labels` satisfy this requirement (Kubernetes' set-based semantics).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.key);
        let values = &self.values;
        match self.operator.as_str() {
            "In" => v.is_some_and(|v| values.contains(v)),
            // As in Kubernetes: NotIn matches objects without the key.
            "NotIn" => v.is_none_or(|v| !values.contains(v)),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            _ => false,
        }
    }
}

/// Kubernetes label key rules (`validation.IsQualifiedName`): an optional DNS-subdomain
/// prefix and `/`, then a name of at most 63 alphanumerics, `-`, `_`, `.`, starting and ending
/// with an alphanumeric.
pub fn label_key_problem(key: &str) -> Option<String> {
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                return Some(format!("label key `{key}`: prefix part must be non-empty"));
            }
            if let Some(m) = crate::names::dns_subdomain_problem(prefix) {
                return Some(format!("label key `{key}`: prefix part {m}"));
            }
            name
        }
        _ => {
            return Some(format!(
                "label key `{key}`: a qualified name has at most one `/` (an optional DNS subdomain prefix, e.g. `example.com/MyName`)"
            ));
        }
    };
    if name.is_empty() {
        return Some(format!("label key `{key}`: name part must be non-empty"));
    }
    if name.len() > 63 || !qualified_chars(name) {
        return Some(format!(
            "label key `{key}`: name part must be at most 63 of a-z, A-Z, 0-9, `-`, `_`, `.`, beginning and ending with a letter or digit"
        ));
    }
    None
}

fn qualified_chars(v: &str) -> bool {
    let b = v.as_bytes();
    b.iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Kubernetes label value rules (`validation.IsValidLabelValue`): empty, or at most 63
/// alphanumerics, `-`, `_`, `.`, starting and ending with an alphanumeric.
pub fn label_value_problem(v: &str) -> Option<String> {
    if v.is_empty() || (v.len() <= 63 && qualified_chars(v)) {
        return None;
    }
    Some(format!(
        "`{v}` is not a valid label value: at most 63 of a-z, A-Z, 0-9, `-`, `_`, `.`, beginning and ending with a letter or digit"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn seed_004_example() {
        // "deploy all apps having labels common:true to all clusters having region:east"
        let s = LabelSelector {
            match_labels: labels(&[("region", "east")]),
            ..Default::default()
        };
        assert!(s.matches(&labels(&[("region", "east"), ("gpu", "true")])));
        assert!(!s.matches(&labels(&[("region", "west")])));
        assert!(!s.matches(&labels(&[])));
    }

    #[test]
    fn operators() {
        let l = labels(&[("gpu", "true"), ("tier", "edge")]);
        assert!(req("tier", "In", &["edge", "regional"]).matches(&l));
        assert!(!req("tier", "NotIn", &["edge"]).matches(&l));
        assert!(req("zone", "NotIn", &["a"]).matches(&l));
        assert!(req("gpu", "Exists", &[]).matches(&l));
        assert!(req("zone", "DoesNotExist", &[]).matches(&l));
        assert!(!req("zone", "Exists", &[]).matches(&l));
    }

    #[test]
    fn problems_are_named() {
        let s = LabelSelector {
            match_labels: labels(&[("bad key!", "v")]),
            match_expressions: vec![
                req("a", "Has", &[]),
                req("b", "In", &[]),
                req("c", "Exists", &["x"]),
            ],
        };
        let p = s.problems();
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p.iter().any(|(f, m)| f == "matchExpressions[0].operator"
            && m.contains("`Has` is not a valid label selector operator")));
    }

    fn arb_labels() -> impl Strategy<Value = BTreeMap<String, String>> {
        proptest::collection::btree_map("[a-d]", "[x-z]", 0..4)
    }

    fn arb_req() -> impl Strategy<Value = LabelSelectorRequirement> {
        (
            "[a-d]",
            prop_oneof![
                Just("In"),
                Just("NotIn"),
                Just("Exists"),
                Just("DoesNotExist")
            ],
            proptest::collection::vec("[x-z]", 1..3),
        )
            .prop_map(|(key, op, values)| LabelSelectorRequirement {
                key,
                operator: op.to_string(),
                values: if matches!(op, "Exists" | "DoesNotExist") {
                    vec![]
                } else {
                    values
                },
            })
    }

    proptest! {
        /// matchLabels {k: v} means the same as the expression `k In (v)`.
        #[test]
        fn match_labels_equals_in(l in arb_labels(), k in "[a-d]", v in "[x-z]") {
            let a = LabelSelector { match_labels: [(k.clone(), v.clone())].into(), ..Default::default() };
            let b = LabelSelector { match_expressions: vec![LabelSelectorRequirement { key: k, operator: "In".into(), values: vec![v] }], ..Default::default() };
            prop_assert_eq!(a.matches(&l), b.matches(&l));
        }

        /// NotIn is the complement of In; DoesNotExist of Exists.
        #[test]
        fn complements(l in arb_labels(), r in arb_req()) {
            let flip = |op: &str| match op { "In" => "NotIn", "NotIn" => "In", "Exists" => "DoesNotExist", _ => "Exists" };
            let mut f = r.clone();
            f.operator = flip(&r.operator).to_string();
            prop_assert_ne!(r.matches(&l), f.matches(&l));
        }

        /// Requirements are ANDed: a selector matches iff each of its requirements does.
        #[test]
        fn requirements_are_anded(l in arb_labels(), rs in proptest::collection::vec(arb_req(), 0..4)) {
            let s = LabelSelector { match_expressions: rs.clone(), ..Default::default() };
            prop_assert_eq!(s.matches(&l), rs.iter().all(|r| r.matches(&l)));
        }

        /// Adding a requirement never selects more.
        #[test]
        fn monotone(l in arb_labels(), rs in proptest::collection::vec(arb_req(), 0..3), extra in arb_req()) {
            let s = LabelSelector { match_expressions: rs.clone(), ..Default::default() };
            let mut more = rs; more.push(extra);
            let t = LabelSelector { match_expressions: more, ..Default::default() };
            prop_assert!(!t.matches(&l) || s.matches(&l));
        }
    }
}

#[cfg(test)]
mod text_tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kubectl_syntax() {
        let s =
            Selector::parse("tier=edge,region in (eu-west, us-east),!legacy,gpu!=true").unwrap();
        assert!(s.matches(&labels(&[("tier", "edge"), ("region", "eu-west")])));
        assert!(!s.matches(&labels(&[("tier", "edge"), ("region", "ap-south")])));
        assert!(!s.matches(&labels(&[
            ("tier", "edge"),
            ("region", "eu-west"),
            ("legacy", "")
        ])));
        let s = Selector::parse("zone,tier notin (core)").unwrap();
        assert!(s.matches(&labels(&[("zone", "a"), ("tier", "edge")])));
        assert!(!s.matches(&labels(&[("zone", "a"), ("tier", "core")])));
        assert!(Selector::parse("").unwrap().matches(&labels(&[])));
        // What labels.Parse takes that a split-on-words parser did not.
        let s = Selector::parse("replicas>2,x in(a),y\tin (b)").unwrap();
        assert!(s.matches(&labels(&[("replicas", "3"), ("x", "a"), ("y", "b")])));
        assert!(!s.matches(&labels(&[("replicas", "2"), ("x", "a"), ("y", "b")])));
        assert!(Selector::parse(&format!("{}.io/k=v", "d".repeat(64))).is_ok());
    }

    #[test]
    fn bad_selectors_say_why() {
        for bad in [
            "tier in edge",
            "=x",
            "a b c",
            "tier=bad value!",
            "a\u{a0}=b",
            "a>x",
            "a=b\0",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
