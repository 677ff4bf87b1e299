//! Label selectors with Kubernetes semantics.

use crate::types::{LabelSelector, LabelSelectorRequirement};
use std::collections::BTreeMap;

impl LabelSelector {
    /// Whether `labels` satisfy every requirement. An empty selector matches everything.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// Problems with the selector as (field path, message) pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (k, v) in &self.match_labels {
            if let Some(m) = label_key_problem(k) {
                out.push((format!("matchLabels.{k}"), m));
            }
            if let Some(m) = label_value_problem(v) {
                out.push((format!("matchLabels.{k}"), m));
            }
        }
        for (i, r) in self.match_expressions.iter().enumerate() {
            let at = format!("matchExpressions[{i}]");
            if let Some(m) = label_key_problem(&r.key) {
                out.push((format!("{at}.key"), m));
            }
            match r.operator.as_str() {
                "In" | "NotIn" if r.values.is_empty() => out.push((
                    format!("{at}.values"),
                    format!("operator {} needs at least one value", r.operator),
                )),
                "Exists" | "DoesNotExist" if !r.values.is_empty() => out.push((
                    format!("{at}.values"),
                    format!("operator {} takes no values", r.operator),
                )),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => out.push((
                    format!("{at}.operator"),
                    format!(
                        "unknown operator `{other}`, expected In, NotIn, Exists or DoesNotExist"
                    ),
                )),
            }
            for (j, v) in r.values.iter().enumerate() {
                if let Some(m) = label_value_problem(v) {
                    out.push((format!("{at}.values[{j}]"), m));
                }
            }
        }
        out
    }
}

impl LabelSelectorRequirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.key);
        match self.operator.as_str() {
            "In" => v.is_some_and(|v| self.values.contains(v)),
            // As in Kubernetes: NotIn matches objects without the key.
            "NotIn" => v.is_none_or(|v| !self.values.contains(v)),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            _ => false,
        }
    }
}

/// Kubernetes label key rules: optional DNS-subdomain prefix, a name of at most 63 characters.
pub fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && let Some(m) = crate::validate::dns_subdomain_problem(p)
    {
        return Some(format!("label key `{key}`: prefix {m}"));
    }
    label_value_problem(name)
        .map(|m| format!("label key `{key}`: {m}"))
        .or_else(|| {
            name.is_empty()
                .then(|| format!("label key `{key}` has an empty name"))
        })
}

/// Kubernetes label value rules: at most 63 characters, alphanumerics, `-`, `_`, `.`,
/// starting and ending with an alphanumeric (or empty).
pub fn label_value_problem(v: &str) -> Option<String> {
    if v.is_empty() {
        return None;
    }
    let ok = v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && v.as_bytes()[0].is_ascii_alphanumeric()
        && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric();
    (!ok).then(|| {
        format!("`{v}` is not a valid label value: at most 63 of a-z, A-Z, 0-9, `-`, `_`, `.`, beginning and ending with a letter or digit")
    })
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
        assert!(
            p.iter().any(|(f, m)| f == "matchExpressions[0].operator"
                && m.contains("unknown operator `Has`"))
        );
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
