//! Placement: which applications land on which cluster (explicit lists, the team's target
//! policies, pinned components), and why.

use super::*;

/// Every upstream package the model refers to (what the shell must fetch).
pub fn upstream_requests(m: &Model) -> BTreeSet<UpstreamPackage> {
    let mut out = BTreeSet::new();
    for pv in m.package_variants.values() {
        out.insert(pv.spec.upstream.clone());
    }
    for a in m.applications.values() {
        if let Some(k) = &a.spec.kpt {
            out.insert(k.clone());
        }
    }
    out
}

/// Places applications on clusters: explicit lists, target policies of the app's team, and
/// clusters its components are pinned to. Applications are named by index in the model's
/// order, so that placing moves small integers instead of cloning 50-odd name pairs per
/// cluster.
pub struct Placer<'m> {
    explicit: HashMap<&'m str, Vec<u32>>,
    policies: Vec<(&'m atoll_model::LabelSelector, Vec<u32>)>,
}

impl<'m> Placer<'m> {
    /// Indexes the model's explicit placements and target policies once.
    pub fn new(m: &'m Model) -> Placer<'m> {
        let mut explicit: HashMap<&str, Vec<u32>> = HashMap::new();
        for (i, a) in m.applications.values().enumerate() {
            let named = a.spec.clusters.iter().chain(
                a.spec
                    .components
                    .iter()
                    .filter_map(|comp| comp.cluster.as_ref()),
            );
            for c in named {
                explicit.entry(c.as_str()).or_default().push(i as u32);
            }
        }
        let policies = m
            .policies
            .iter()
            .filter_map(|((team, _), p)| {
                let apps: Vec<u32> = m
                    .applications
                    .iter()
                    .enumerate()
                    .filter(|(_, ((t, _), a))| t == team && p.spec.app_selector.matches(&a.labels))
                    .map(|(i, _)| i as u32)
                    .collect();
                (!apps.is_empty()).then_some((&p.spec.cluster_selector, apps))
            })
            .collect();
        Placer { explicit, policies }
    }

    /// Indices (sorted) of the applications placed on the cluster `name` with `labels`.
    pub fn apps(&self, name: &str, labels: &BTreeMap<String, String>) -> Vec<u32> {
        let mut idx: Vec<u32> = self.explicit.get(name).cloned().unwrap_or_default();
        for (sel, apps) in &self.policies {
            if sel.matches(labels) {
                idx.extend_from_slice(apps);
            }
        }
        idx.sort_unstable();
        idx.dedup();
        idx
    }
}

/// Why an application is (or is not) placed on a cluster: each rule that puts it there, in
/// words a platform engineer reads (the same rules [`Placer`] applies). Empty: not placed.
pub fn placement_reasons(
    m: &Model,
    app: (&str, &str),
    cluster: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let Some(a) = m.applications.get(&(app.0.to_string(), app.1.to_string())) else {
        return out;
    };
    if a.spec.clusters.iter().any(|c| c == cluster) {
        out.push("listed in the application's spec.clusters".to_string());
    }
    for comp in &a.spec.components {
        if comp.cluster.as_deref() == Some(cluster) {
            out.push(format!(
                "component `{}` is pinned to this cluster",
                comp.name
            ));
        }
    }
    for ((team, name), p) in &m.policies {
        if team == app.0
            && p.spec.app_selector.matches(&a.labels)
            && p.spec.cluster_selector.matches(labels)
        {
            out.push(format!(
                "TargetPolicy {team}/{name}: appSelector {} matches the application, clusterSelector {} matches the cluster",
                selector_text(&p.spec.app_selector),
                selector_text(&p.spec.cluster_selector)
            ));
        }
    }
    out
}

/// A label selector in kubectl's string syntax (`{}` for everything).
fn selector_text(s: &atoll_model::LabelSelector) -> String {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in &s.match_expressions {
        let op = e.operator.as_str();
        parts.push(match op {
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            "In" => format!("{} in ({})", e.key, e.values.join(",")),
            "NotIn" => format!("{} notin ({})", e.key, e.values.join(",")),
            _ => format!("{} {op} {:?}", e.key, e.values),
        });
    }
    if parts.is_empty() {
        "{}".to_string()
    } else {
        parts.join(",")
    }
}
