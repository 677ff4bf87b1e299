//! Checks of Applications and their sources (Git packages, Helm charts, components).

use super::*;

pub(super) fn check_app(m: &Model, a: &Decl<ApplicationSpec>, d: &mut Vec<Diagnostic>) {
    let s = &a.spec;
    let sources = [
        ("git", s.git.is_some()),
        ("kpt", s.kpt.is_some()),
        ("helm", s.helm.is_some()),
        ("components", !s.components.is_empty()),
    ];
    let given: Vec<&str> = sources
        .iter()
        .filter(|(_, p)| *p)
        .map(|(n, _)| *n)
        .collect();
    match given.len() {
        0 => d.push(a.origin.error("spec", "no source: expected exactly one of `git`, `kpt`, `helm` or `components`")),
        1 => {}
        _ => d.push(a.origin.error(
            &format!("spec.{}", given[1]),
            format!("several sources ({}): expected exactly one of `git`, `kpt`, `helm` or `components`", given.join(", ")),
        )),
    }
    if let Some(ns) = &s.target_namespace
        && let Some(msg) = dns_label_problem(ns)
    {
        d.push(a.origin.error("spec.targetNamespace", msg));
    }
    for (i, c) in s.clusters.iter().enumerate() {
        if !m.clusters.contains_key(c) {
            d.push(a.origin.error(
                &format!("spec.clusters[{i}]"),
                format!("cluster `{c}` does not exist"),
            ));
        }
    }
    if let Some(k) = &s.kpt {
        check_upstream(k, &a.origin, "spec.kpt", d);
    }
    if let Some(h) = &s.helm
        && !(h.repo_url.starts_with("https://")
            || h.repo_url.starts_with("http://")
            || h.repo_url.starts_with("oci://"))
    {
        d.push(a.origin.error(
            "spec.helm.repoURL",
            format!(
                "`{}` is not a chart repository URL, expected https://… or oci://…",
                h.repo_url
            ),
        ));
    }
    let mut names = BTreeSet::new();
    for (i, c) in s.components.iter().enumerate() {
        let at = format!("spec.components[{i}]");
        if let Some(msg) = dns_label_problem(&c.name) {
            d.push(a.origin.error(&format!("{at}.name"), msg));
        } else if a.name.len() + c.name.len() + "--public".len() > 63 {
            // Its Service is `<app>-<component>` and its public one `…-public`.
            d.push(a.origin.error(
                &format!("{at}.name"),
                format!(
                    "`{}-{}-public` (the component's public Service) would be longer than the 63 characters Kubernetes allows: shorten the application or component name",
                    a.name, c.name
                ),
            ));
        }
        if !names.insert(&c.name) {
            d.push(a.origin.error(
                &format!("{at}.name"),
                format!("duplicate component `{}`", c.name),
            ));
        }
        if c.image.trim().is_empty() || c.image.contains(' ') {
            d.push(a.origin.error(
                &format!("{at}.image"),
                format!("`{}` is not an image reference", c.image),
            ));
        }
        if let Some(cl) = &c.cluster
            && !m.clusters.contains_key(cl)
        {
            d.push(a.origin.error(
                &format!("{at}.cluster"),
                format!("cluster `{cl}` does not exist"),
            ));
        }
        if let Some(r) = c.replicas
            && r < 0
        {
            d.push(
                a.origin
                    .error(&format!("{at}.replicas"), "replicas must be 0 or more"),
            );
        }
        let mut env_names = BTreeSet::new();
        for (j, e) in c.env.iter().enumerate() {
            if !env_names.insert(e.name.clone()) {
                d.push(a.origin.error(
                    &format!("{at}.env[{j}].name"),
                    format!("duplicate variable `{}`", e.name),
                ));
            }
            if e.name.is_empty() || e.name.contains(['=', ' ']) {
                d.push(a.origin.error(
                    &format!("{at}.env[{j}].name"),
                    format!("`{}` is not an environment variable name", e.name),
                ));
            }
        }
        for (j, e) in c.secret_env.iter().enumerate() {
            if !env_names.insert(e.name.clone()) {
                d.push(a.origin.error(
                    &format!("{at}.secretEnv[{j}].name"),
                    format!("duplicate variable `{}`", e.name),
                ));
            }
        }
        let mut ports = BTreeSet::new();
        for (j, e) in c.expose.iter().enumerate() {
            for (f, p) in [
                ("containerPort", Some(e.container_port)),
                ("servicePort", e.service_port),
            ] {
                if let Some(p) = p
                    && !(1..=65535).contains(&p)
                {
                    d.push(a.origin.error(
                        &format!("{at}.expose[{j}].{f}"),
                        format!("port {p} is out of range 1-65535"),
                    ));
                }
            }
            if let Some(p) = &e.protocol
                && p != "TCP"
                && p != "UDP"
            {
                d.push(a.origin.error(
                    &format!("{at}.expose[{j}].protocol"),
                    format!("`{p}`: expected TCP or UDP"),
                ));
            }
            let key = (
                e.service_port.unwrap_or(e.container_port),
                e.protocol.clone().unwrap_or_else(|| "TCP".into()),
            );
            if !ports.insert(key.clone()) {
                d.push(a.origin.error(
                    &format!("{at}.expose[{j}]"),
                    format!("service port {}/{} is exposed twice", key.0, key.1),
                ));
            }
        }
    }
}

pub(super) fn check_upstream(u: &UpstreamPackage, o: &Origin, at: &str, d: &mut Vec<Diagnostic>) {
    if u.repo.trim().is_empty() {
        d.push(o.error(&format!("{at}.repo"), "repository must not be empty"));
    }
    if u.package.starts_with('/')
        || u.package.split('/').any(|s| {
            matches!(s, "." | "..")
                || s.trim_end_matches(['.', ' ']).eq_ignore_ascii_case(".git")
                || s.contains(['\\', '\0'])
        })
    {
        d.push(o.error(
            &format!("{at}.package"),
            format!(
                "`{}` must be a relative path inside the repository",
                u.package
            ),
        ));
    }
    if u.revision.trim().is_empty() {
        d.push(o.error(
            &format!("{at}.revision"),
            "revision must not be empty: pin a tag or commit",
        ));
    }
}
