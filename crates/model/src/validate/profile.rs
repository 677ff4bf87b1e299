//! Checks of InfrastructureProfiles and what they carry (infrastructure, network, pools), of profile references, and of rollout policies.

use super::*;

pub(super) fn check_profile(
    m: &Model,
    name: &str,
    rev: &str,
    p: &Decl<InfrastructureProfileSpec>,
    d: &mut Vec<Diagnostic>,
) {
    let s = &p.spec;
    let blocks = [
        (
            ProfileType::Infrastructure,
            "infrastructure",
            s.infrastructure.is_some(),
        ),
        (ProfileType::Network, "network", s.network.is_some()),
        (ProfileType::Software, "software", s.software.is_some()),
    ];
    for (ty, field, present) in blocks {
        if present && ty != s.type_ {
            d.push(p.origin.error(
                &format!("spec.{field}"),
                format!(
                    "a profile of type {:?} cannot have `{field}` values; expected only `{}`",
                    s.type_,
                    lower(s.type_)
                ),
            ));
        }
    }
    if s.revision.trim().is_empty() {
        d.push(
            p.origin
                .error("spec.revision", "revision must not be empty"),
        );
    }
    if let Some(v) = &s.infrastructure {
        check_infra(v, &p.origin, "spec.infrastructure", d);
    }
    if let Some(v) = &s.network {
        check_network(m, v, &p.origin, "spec.network", d);
    }
    if let Some(sw) = &s.software {
        if s.base.is_none() && sw.addon.is_none() {
            d.push(p.origin.error("spec.software.addon", "missing `addon`: expected one of metallb, ingress-nginx, prometheus, liqo, strimzi"));
        }
        if let Some(pool) = &sw.address_pool {
            check_pool(
                m,
                pool,
                PoolPurpose::LoadBalancer,
                &p.origin,
                "spec.software.addressPool",
                d,
            );
        }
        if sw.addon == Some(Addon::MetalLb) && sw.address_pool.is_none() && s.base.is_none() {
            d.push(p.origin.error("spec.software.addressPool", "MetalLB needs `addressPool`: the IPPool (purpose loadBalancer) of the shared address"));
        }
    }
    if let Some(base) = &s.base {
        match m.profile(base) {
            None => d.push(p.origin.error(
                "spec.base",
                format!("base profile `{base}` does not exist{}", near(m, base)),
            )),
            Some(b) if b.spec.type_ != s.type_ => d.push(p.origin.error(
                "spec.base",
                format!(
                    "base profile `{base}` is of type {:?}, expected {:?}",
                    b.spec.type_, s.type_
                ),
            )),
            Some(_) => {
                // Walk the chain; a cycle returns here.
                let mut seen = vec![format!("{name}@{rev}")];
                let mut cur = base.clone();
                while let Some(next) = m.profile(&cur) {
                    let key = cur.to_string();
                    if seen.contains(&key) {
                        seen.push(key);
                        d.push(p.origin.error(
                            "spec.base",
                            format!("profile bases form a cycle: {}", seen.join(" -> ")),
                        ));
                        break;
                    }
                    seen.push(key);
                    match &next.spec.base {
                        Some(b) => cur = b.clone(),
                        None => break,
                    }
                }
            }
        }
    }
}

pub(super) fn check_rollout(r: &RolloutPolicy, o: &Origin, d: &mut Vec<Diagnostic>) {
    if r.max_unavailable == 0 {
        d.push(o.error(
            "spec.rollout.maxUnavailable",
            "must be at least 1 (clusters changed at a time)",
        ));
    }
    for (field, v) in [
        ("bakeTime", &r.bake_time),
        ("progressDeadline", &r.progress_deadline),
    ] {
        if let Some(v) = v
            && parse_duration(v).is_none()
        {
            d.push(o.error(
                &format!("spec.rollout.{field}"),
                format!("`{v}` is not a duration: expected e.g. `30s`, `5m`, `1h30m`"),
            ));
        }
    }
    for (i, k) in r.order_by.iter().enumerate() {
        if let Some(why) = crate::selector::label_key_problem(k) {
            d.push(o.error(&format!("spec.rollout.orderBy[{i}]"), why));
        }
    }
}

pub(super) fn lower(t: ProfileType) -> &'static str {
    match t {
        ProfileType::Infrastructure => "infrastructure",
        ProfileType::Network => "network",
        ProfileType::Software => "software",
    }
}

pub(super) fn near(m: &Model, r: &ProfileRef) -> String {
    let revs: Vec<&str> = m
        .profiles
        .keys()
        .filter(|(n, _)| n == &r.name)
        .map(|(_, v)| v.as_str())
        .collect();
    if revs.is_empty() {
        let names: BTreeSet<&str> = m.profiles.keys().map(|(n, _)| n.as_str()).collect();
        format!(" (profiles: {})", join(names))
    } else {
        format!(" (revisions of `{}`: {})", r.name, revs.join(", "))
    }
}

pub(super) fn check_ref(
    m: &Model,
    r: &ProfileRef,
    ty: ProfileType,
    o: &Origin,
    at: &str,
    d: &mut Vec<Diagnostic>,
) {
    match m.profile(r) {
        None => d.push(o.error(at, format!("profile `{r}` does not exist{}", near(m, r)))),
        Some(p) if p.spec.type_ != ty => d.push(o.error(
            at,
            format!(
                "profile `{r}` is of type {:?}, expected a {ty:?} profile",
                p.spec.type_
            ),
        )),
        Some(_) => {}
    }
}

pub(super) fn check_infra(v: &InfrastructureValues, o: &Origin, at: &str, d: &mut Vec<Diagnostic>) {
    if let Some(kv) = &v.kubernetes_version
        && !is_k8s_version(kv)
    {
        d.push(o.error(
            &format!("{at}.kubernetesVersion"),
            format!("`{kv}` is not a Kubernetes version, expected e.g. `v1.34.2`"),
        ));
    }
    if let Some(n) = v.control_plane_count
        && (n < 1 || n % 2 == 0)
    {
        d.push(o.error(
            &format!("{at}.controlPlaneCount"),
            format!("{n} control-plane machines: expected an odd number >= 1 (etcd quorum)"),
        ));
    }
    if let Some(n) = v.worker_count
        && n < 0
    {
        d.push(o.error(
            &format!("{at}.workerCount"),
            format!("{n} workers: expected 0 or more"),
        ));
    }
}

pub(super) fn check_network(
    m: &Model,
    v: &NetworkValues,
    o: &Origin,
    at: &str,
    d: &mut Vec<Diagnostic>,
) {
    for (field, cidr, pool, pfield, purpose) in [
        (
            "podCIDR",
            &v.pod_cidr,
            &v.pod_pool,
            "podPool",
            PoolPurpose::Pod,
        ),
        (
            "serviceCIDR",
            &v.service_cidr,
            &v.service_pool,
            "servicePool",
            PoolPurpose::Service,
        ),
    ] {
        if cidr.is_some() && pool.is_some() {
            d.push(o.error(
                &format!("{at}.{pfield}"),
                format!("give either `{field}` or `{pfield}`, not both"),
            ));
        }
        if let Some(c) = cidr
            && c.parse::<IpNet>().is_err()
        {
            d.push(o.error(
                &format!("{at}.{field}"),
                format!("`{c}` is not a CIDR, expected e.g. `10.244.0.0/16`"),
            ));
        }
        if let Some(p) = pool {
            check_pool(m, p, purpose, o, &format!("{at}.{pfield}"), d);
        }
    }
}

pub(super) fn check_pool(
    m: &Model,
    pool: &str,
    purpose: PoolPurpose,
    o: &Origin,
    at: &str,
    d: &mut Vec<Diagnostic>,
) {
    match m.pools.get(pool) {
        None => d.push(o.error(
            at,
            format!(
                "IPPool `{pool}` does not exist (pools: {})",
                join(m.pools.keys())
            ),
        )),
        Some(p) if p.spec.purpose != purpose => d.push(o.error(
            at,
            format!(
                "IPPool `{pool}` has purpose {:?}, expected {purpose:?}",
                p.spec.purpose
            ),
        )),
        Some(_) => {}
    }
}
