//! atoll's label selectors against Kubernetes' own: thousands of generated selectors (text
//! and structured) and label sets go to `selector-check`, a Go program built in `testenv/`
//! from k8s.io/apimachinery (`labels.Parse`, `metav1.LabelSelectorAsSelector`,
//! `Selector.Matches`), and to `atoll_model::selector`. Every answer must agree: whether the
//! selector is accepted and, when it is, which label sets it matches. Nothing here is a
//! hand-written expectation.

use atoll_model::LabelSelector;
use atoll_model::selector::Selector;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// A small, seeded generator (xorshift), so a failure is reproducible from its case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const KEYS: &[&str] = &[
    "a",
    "b",
    "tier",
    "in",
    "notin",
    "k8s.io/zone",
    "atoll.dev/cluster",
    "A_b.c-1",
    "-a",
    "a-",
    "a/b/c",
    "/a",
    "a/",
    "Example.com/x",
    "é",
    "a\u{a0}b",
    "0123456789012345678901234567890123456789012345678901234567890123",
    "012345678901234567890123456789012345678901234567890123456789012",
    "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd.io/k",
    "x..y/k",
];
const VALUES: &[&str] = &[
    "x",
    "y",
    "",
    "1",
    "10",
    "-1",
    "+5",
    "007",
    "9223372036854775807",
    "9223372036854775808",
    "a.b",
    "a_b",
    "_a",
    "a b",
    "in",
    "notin",
    "edge",
    "é",
    "x,y",
];
const OPS: &[&str] = &[
    "=", "==", "!=", " in ", " notin ", ">", "<", "", "!", "in(", "==",
];
const SPACE: &[&str] = &["", " ", "  ", "\t", "\n", "\r", "\u{a0}", "\u{2003}"];
const NOISE: &[&str] = &[
    "(", ")", ",", "!", "=", "<", ">", " ", "!=", "()", ",,", "(,)",
];

fn text_selector(r: &mut Rng, used: &mut Vec<&'static str>) -> String {
    let mut s = String::new();
    let n = if r.below(10) == 0 { 0 } else { 1 + r.below(3) };
    for i in 0..n {
        if i > 0 {
            s.push_str(r.pick(&[",", ",", ", ", " ,", ",,", ""]));
        }
        s.push_str(r.pick(SPACE));
        if r.below(6) == 0 {
            s.push('!');
            s.push_str(r.pick(SPACE));
        }
        let key = r.pick(KEYS);
        used.push(key);
        s.push_str(key);
        let op = r.pick(OPS);
        s.push_str(r.pick(SPACE));
        s.push_str(op);
        s.push_str(r.pick(SPACE));
        if op.contains("in") {
            if !op.ends_with('(') {
                s.push_str(r.pick(&["(", "(", "( ", ""]));
            }
            let k = r.below(4);
            for j in 0..k {
                if j > 0 {
                    s.push_str(r.pick(&[",", ", ", " , ", ",,", " "]));
                }
                s.push_str(r.pick(VALUES));
            }
            s.push_str(r.pick(&[")", ")", " )", "", ",)"]));
        } else if !op.is_empty() && op != "!" {
            s.push_str(r.pick(VALUES));
        }
        if r.below(12) == 0 {
            s.push_str(r.pick(NOISE));
        }
    }
    s
}

fn structured_selector(r: &mut Rng, used: &mut Vec<&'static str>) -> Value {
    let mut sel = serde_json::Map::new();
    if r.below(2) == 0 {
        let mut ml = serde_json::Map::new();
        for _ in 0..r.below(3) {
            let key = r.pick(KEYS);
            used.push(key);
            ml.insert(key.into(), json!(r.pick(VALUES)));
        }
        sel.insert("matchLabels".into(), Value::Object(ml));
    }
    if r.below(3) != 0 {
        let mut exprs = Vec::new();
        for _ in 0..r.below(3) + 1 {
            let op = r.pick(&[
                "In",
                "NotIn",
                "Exists",
                "DoesNotExist",
                "Exists",
                "Gt",
                "in",
            ]);
            let key = r.pick(KEYS);
            used.push(key);
            let mut e = json!({"key": key, "operator": op});
            match r.below(4) {
                0 => e["values"] = Value::Null,
                1 => e["values"] = json!([]),
                2 => {}
                _ => {
                    let vs: Vec<&str> = (0..r.below(3) + 1).map(|_| r.pick(VALUES)).collect();
                    e["values"] = json!(vs);
                }
            }
            exprs.push(e);
        }
        sel.insert("matchExpressions".into(), Value::Array(exprs));
    }
    Value::Object(sel)
}

/// Label sets over mostly the keys the selector uses, so that matching is exercised.
fn label_sets(r: &mut Rng, used: &[&str]) -> Vec<BTreeMap<String, String>> {
    (0..8)
        .map(|_| {
            (0..r.below(4))
                .map(|_| {
                    let key = if !used.is_empty() && r.below(4) != 0 {
                        r.pick(used)
                    } else {
                        r.pick(KEYS)
                    };
                    (key.to_string(), r.pick(VALUES).to_string())
                })
                .collect()
        })
        .collect()
}

#[test]
fn selectors_agree_with_kubernetes() {
    let bin = atoll_testenv::binaries().expect("testenv binaries");
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut cases: Vec<(Value, Vec<BTreeMap<String, String>>)> = Vec::new();
    // The cases of the hardening report first, then generated ones.
    let long_prefix = format!("{}.io/k=v", "d".repeat(64));
    for text in [
        "a>1",
        "a<1",
        "x in(a)",
        "x\tin (a)",
        "x\nin (a)",
        "a\u{a0}=b",
        "x in ()",
        "x in (,)",
        "!a",
        "!a=b",
        "a,",
        ",a",
        "a=",
        "a==",
        "a!=",
        "in in (in)",
        "a notin(b,,c)",
        long_prefix.as_str(),
    ] {
        let used: Vec<&str> = KEYS.iter().copied().filter(|k| text.contains(k)).collect();
        cases.push((json!({ "text": text }), label_sets(&mut rng, &used)));
    }
    cases.push((
        json!({"selector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": null}]}}),
        label_sets(&mut rng, &["a"]),
    ));
    for i in 0..12_000 {
        let mut used = Vec::new();
        let req = if i % 4 == 3 {
            json!({ "selector": structured_selector(&mut rng, &mut used) })
        } else {
            json!({ "text": text_selector(&mut rng, &mut used) })
        };
        cases.push((req, label_sets(&mut rng, &used)));
    }

    let mut child = Command::new(bin.join("selector-check"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("selector-check");
    let mut stdin = child.stdin.take().unwrap();
    let input: String = cases
        .iter()
        .map(|(req, labels)| {
            let mut r = req.clone();
            r["labels"] = json!(labels);
            format!("{r}\n")
        })
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let answers: Vec<Value> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(answers.len(), cases.len());

    let (mut accepted, mut refused, mut mismatches) = (0, 0, Vec::new());
    let (mut matched, mut unmatched) = (0, 0);
    for (i, ((req, labels), go)) in cases.iter().zip(&answers).enumerate() {
        let ours: Result<Selector, String> = if let Some(t) = req["text"].as_str() {
            Selector::parse(t).map_err(|e| e.0)
        } else {
            serde_json::from_value::<LabelSelector>(req["selector"].clone())
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    Selector::from_label_selector(&s).map_err(|(f, m)| format!("{f}: {m}"))
                })
        };
        let go_ok = go["ok"].as_bool().unwrap();
        match (&ours, go_ok) {
            (Ok(s), true) => {
                accepted += 1;
                let go_m: Vec<bool> =
                    serde_json::from_value(go["matches"].clone()).unwrap_or_default();
                let our_m: Vec<bool> = labels.iter().map(|l| s.matches(l)).collect();
                matched += our_m.iter().filter(|m| **m).count();
                unmatched += our_m.iter().filter(|m| !**m).count();
                if go_m != our_m {
                    mismatches.push(format!(
                        "#{i} {req}: matches go {go_m:?} atoll {our_m:?} on {labels:?}"
                    ));
                }
                // A structured selector Kubernetes accepts means the same through
                // LabelSelector::matches (what placement uses) and has no problems().
                if let Some(sel) = req.get("selector") {
                    let ls: LabelSelector = serde_json::from_value(sel.clone()).unwrap();
                    assert!(ls.problems().is_empty(), "#{i}: {:?}", ls.problems());
                    let direct: Vec<bool> = labels.iter().map(|l| ls.matches(l)).collect();
                    assert_eq!(direct, our_m, "#{i} {req}");
                }
            }
            (Err(_), false) => {
                refused += 1;
                if let Some(sel) = req.get("selector")
                    && let Ok(ls) = serde_json::from_value::<LabelSelector>(sel.clone())
                {
                    assert!(
                        !ls.problems().is_empty(),
                        "#{i} {req}: problems() found none"
                    );
                }
            }
            (Ok(_), false) => mismatches.push(format!(
                "#{i} {req}: go refuses ({}), atoll accepts",
                go["error"]
            )),
            (Err(e), true) => {
                mismatches.push(format!("#{i} {req}: go accepts, atoll refuses: {e}"))
            }
        }
    }
    eprintln!(
        "{} cases: {accepted} accepted and {refused} refused by both; {matched} label sets matched, {unmatched} not",
        cases.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} disagreements with k8s.io/apimachinery, first 20:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
    // The generator must exercise both sides.
    assert!(accepted > 1000 && refused > 1000, "{accepted} / {refused}");
    assert!(
        matched > 2000 && unmatched > 2000,
        "{matched} / {unmatched}"
    );
}
