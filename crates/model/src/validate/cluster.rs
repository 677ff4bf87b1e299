//! Checks of Clusters, declared or inline members of a LogicalCluster or WorkloadDeployment.

use super::*;

/// An inline member (of a LogicalCluster or WorkloadDeployment) becomes a Cluster whose errors
/// point into the declaring document.
pub(super) fn member_cluster(
    m: &mut Model,
    mem: &LogicalMember,
    parent: &Origin,
    i: usize,
    d: &mut Vec<Diagnostic>,
) {
    let at = format!("spec.clusters[{i}]");
    let origin = parent.nested(&format!("{at}.spec"), format!("Cluster/{}", mem.name));
    if let Some(msg) = crate::names::name_problem("Cluster", &mem.name) {
        d.push(parent.error(&format!("{at}.name"), msg));
    }
    if let Some(prev) = m.clusters.get(&mem.name) {
        d.push(parent.error(
            &format!("{at}.name"),
            format!(
                "duplicate Cluster `{}`; first declared at {}:{}",
                mem.name,
                prev.origin.file,
                prev.origin.error("", "").line
            ),
        ));
        return;
    }
    for (k, v) in &mem.labels {
        if let Some(msg) = crate::selector::label_key_problem(k)
            .or_else(|| crate::selector::label_value_problem(v))
        {
            d.push(parent.error(&format!("{at}.labels.{k}"), msg));
        }
    }
    m.clusters.insert(
        mem.name.clone(),
        Decl {
            name: mem.name.clone(),
            namespace: None,
            labels: mem.labels.clone(),
            spec: mem.spec.clone(),
            origin,
        },
    );
}

pub(super) fn check_overrides(
    m: &Model,
    o: &Overrides,
    origin: &Origin,
    at: &str,
    d: &mut Vec<Diagnostic>,
) {
    if let Some(i) = &o.infrastructure {
        check_infra(i, origin, &format!("{at}.infrastructure"), d);
    }
    if let Some(n) = &o.network {
        check_network(m, n, origin, &format!("{at}.network"), d);
    }
}

pub(super) fn check_cluster(m: &Model, c: &Decl<ClusterSpec>, d: &mut Vec<Diagnostic>) {
    // Inline members carry their origin at `spec`, declared clusters at the document root.
    let base = if c.origin.prefix.is_empty() {
        "spec."
    } else {
        ""
    };
    let at = |f: &str| format!("{base}{f}");
    if let Some(cat) = &c.spec.catalog
        && !m.catalogs.contains_key(cat)
    {
        d.push(c.origin.error(
            &at("catalog"),
            format!(
                "catalog `{cat}` does not exist (catalogs: {})",
                join(m.catalogs.keys())
            ),
        ));
    }
    if let Some(p) = &c.spec.profiles {
        if let Some(r) = &p.infrastructure {
            check_ref(
                m,
                r,
                ProfileType::Infrastructure,
                &c.origin,
                &at("profiles.infrastructure"),
                d,
            );
        }
        if let Some(r) = &p.network {
            check_ref(
                m,
                r,
                ProfileType::Network,
                &c.origin,
                &at("profiles.network"),
                d,
            );
        }
        for (i, r) in p.software.iter().enumerate() {
            check_ref(
                m,
                r,
                ProfileType::Software,
                &c.origin,
                &at(&format!("profiles.software[{i}]")),
                d,
            );
        }
    }
    let existing = c.spec.provider == Some(Provider::Existing);
    let has_infra_values = c
        .spec
        .overrides
        .as_ref()
        .is_some_and(|o| o.infrastructure.is_some());
    if c.spec.catalog.is_none()
        && c.spec
            .profiles
            .as_ref()
            .is_none_or(|p| p.infrastructure.is_none())
        && !existing
        && !has_infra_values
    {
        d.push(c.origin.error(
            &at("catalog"),
            "a cluster needs a `catalog` or `profiles.infrastructure` (or `provider: existing` for a cluster atoll does not make)",
        ));
    }
    if let Some(o) = &c.spec.overrides {
        check_overrides(m, o, &c.origin, &at("overrides"), d);
    }
    if let Some(s) = &c.spec.kubeconfig_secret
        && let Some(msg) = dns_subdomain_problem(s)
    {
        d.push(c.origin.error(&at("kubeconfigSecret"), msg));
    }
    for (k, v) in &c.labels {
        if let Some(msg) = crate::selector::label_key_problem(k)
            .or_else(|| crate::selector::label_value_problem(v))
        {
            d.push(c.origin.error(&format!("metadata.labels.{k}"), msg));
        }
    }
}
