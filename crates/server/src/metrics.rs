//! Prometheus text exposition: request latencies, render and commit durations (histograms),
//! and the inventory counts of seed 003 §6.3.4 computed at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// A gauge family: name, help, (labels, value) samples.
pub type Gauge<'a> = (&'a str, &'a str, Vec<(String, f64)>);

/// What `/metrics` reports besides the fleet's gauges: request, render and commit times.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    render: Mutex<Histogram>,
    commit: Mutex<Histogram>,
}

/// `v` as a Prometheus label value (backslash, quote and newline escaped).
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Records one request's duration by method, route and status.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, secs: f64) {
        self.requests
            .lock()
            .expect("metrics")
            .entry((method.to_string(), route.to_string(), status))
            .or_default()
            .observe(secs);
    }
    /// Records one render's duration.
    pub fn observe_render(&self, secs: f64) {
        self.render.lock().expect("metrics").observe(secs);
    }
    /// Records one commit's duration.
    pub fn observe_commit(&self, secs: f64) {
        self.commit.lock().expect("metrics").observe(secs);
    }

    /// The exposition, with `gauges` (name, help, [(labels, value)]) first.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::new();
        for (name, help, values) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (labels, v) in values {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {v}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {v}");
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP atoll_render_duration_seconds Time to validate and render the fleet for a change.\n# TYPE atoll_render_duration_seconds histogram"
        );
        self.render
            .lock()
            .expect("metrics")
            .write(&mut out, "atoll_render_duration_seconds", "");
        let _ = writeln!(
            out,
            "# HELP atoll_commit_duration_seconds Time to write a render to Git.\n# TYPE atoll_commit_duration_seconds histogram"
        );
        self.commit
            .lock()
            .expect("metrics")
            .write(&mut out, "atoll_commit_duration_seconds", "");
        let _ = writeln!(
            out,
            "# HELP atoll_http_request_duration_seconds API request latency.\n# TYPE atoll_http_request_duration_seconds histogram"
        );
        for ((m, r, s), h) in self.requests.lock().expect("metrics").iter() {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{s}\"",
                escape(m),
                escape(r)
            );
            h.write(&mut out, "atoll_http_request_duration_seconds", &labels);
        }
        out
    }
}
