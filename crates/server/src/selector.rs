//! Label selectors in kubectl's syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
//! `a`, `!a`, joined by commas (all must hold).

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector(pub Vec<Requirement>);

fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn check_key(k: &str) -> Result<String, String> {
    let k = k.trim();
    if k.is_empty() {
        return Err("a requirement has no key".into());
    }
    if let Some(p) = atoll_model::selector::label_key_problem(k) {
        return Err(format!("`{k}`: {p}"));
    }
    Ok(k.to_string())
}

fn check_value(v: &str) -> Result<String, String> {
    let v = v.trim();
    if let Some(p) = atoll_model::selector::label_value_problem(v) {
        return Err(format!("`{v}`: {p}"));
    }
    Ok(v.to_string())
}

fn set(rest: &str) -> Result<Vec<String>, String> {
    let r = rest.trim();
    let inner = r
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised set like `(a,b)`, got `{r}`"))?;
    inner.split(',').map(check_value).collect()
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Selector(reqs));
        }
        for part in split_top(s) {
            let p = part.trim();
            let words: Vec<&str> = p.split_whitespace().collect();
            let r = if let Some((k, v)) = p.split_once("!=") {
                Requirement::NotEq(check_key(k)?, check_value(v)?)
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                Requirement::Eq(check_key(k)?, check_value(v)?)
            } else if words.len() >= 2 && words[1] == "in" {
                let rest = p.split_once(" in").map_or("", |x| x.1);
                Requirement::In(check_key(words[0])?, set(rest)?)
            } else if words.len() >= 2 && words[1] == "notin" {
                let rest = p.split_once(" notin").map_or("", |x| x.1);
                Requirement::NotIn(check_key(words[0])?, set(rest)?)
            } else if let Some(k) = p.strip_prefix('!') {
                Requirement::NotExists(check_key(k)?)
            } else if words.len() == 1 {
                Requirement::Exists(check_key(p)?)
            } else {
                return Err(format!("cannot parse requirement `{p}`"));
            };
            reqs.push(r);
        }
        Ok(Selector(reqs))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => labels.get(k) == Some(v),
            Requirement::NotEq(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|x| vs.contains(x)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|x| !vs.contains(x)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

#[cfg(test)]
mod tests {
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
        assert!(!s.matches(&labels(&[
            ("tier", "edge"),
            ("region", "eu-west"),
            ("gpu", "true")
        ])));
        let s = Selector::parse("zone,tier notin (core)").unwrap();
        assert!(s.matches(&labels(&[("zone", "a"), ("tier", "edge")])));
        assert!(!s.matches(&labels(&[("zone", "a"), ("tier", "core")])));
        assert!(Selector::parse("").unwrap().matches(&labels(&[])));
    }

    #[test]
    fn bad_selectors_say_why() {
        for bad in ["tier in edge", "=x", "a b c", "tier=bad value!"] {
            assert!(Selector::parse(bad).is_err(), "{bad} parsed");
        }
    }
}
