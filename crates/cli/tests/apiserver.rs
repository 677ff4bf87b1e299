//! Against a real kube-apiserver + etcd (built from their Go modules by testenv/): atoll's CRDs
//! are accepted and enforce what they declare, the example fleet is accepted as custom
//! resources, and everything atoll renders — Cluster API objects for the management cluster and
//! each cluster's package — is accepted by the real API server with the upstream CRDs from
//! ../shared/schemas installed, CEL validations included (which no offline check can run).

mod common;
use atoll_testenv::ApiServer;
use common::*;
use std::path::Path;

fn install_atoll_crds(api: &ApiServer) {
    let crds = api.dir().join("atoll-crds.yaml");
    std::fs::write(&crds, ok(&atoll(&["crds"]))).unwrap();
    succeeded(
        &kubectl(
            api,
            &["apply", "--server-side", "-f", crds.to_str().unwrap()],
        ),
        "apply atoll CRDs",
    );
    wait_established(api);
}

/// Applies `yaml`, expects the server to refuse it, and returns what it said.
fn refused(api: &ApiServer, yaml: &str, name: &str) -> String {
    let p = api.dir().join(name);
    std::fs::write(&p, yaml).unwrap();
    let out = kubectl(api, &["apply", "--server-side", "-f", p.to_str().unwrap()]);
    assert!(!out.status.success(), "{name} was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn atoll_crds_accept_the_example_fleet_and_reject_invalid_objects() {
    let api = ApiServer::start().unwrap();
    install_atoll_crds(&api);
    for ns in ["analytics", "retail", "platform"] {
        succeeded(&kubectl(&api, &["create", "namespace", ns]), "namespace");
    }
    let examples = root().join("examples/edge-fleet");
    succeeded(
        &kubectl(
            &api,
            &["apply", "--server-side", "-f", examples.to_str().unwrap()],
        ),
        "kubectl apply -f examples/edge-fleet",
    );
    let clusters = succeeded(
        &kubectl(&api, &["get", "clusters.atoll.dev", "-o", "name"]),
        "list clusters",
    );
    assert_eq!(clusters.lines().count(), 13, "{clusters}");

    // An enum value the schema does not allow: refused, naming the field and the choices.
    let err = refused(
        &api,
        "apiVersion: atoll.dev/v1alpha1\nkind: Cluster\nmetadata: {name: bad-agent}\nspec: {catalog: edge, gitopsAgent: jenkins}\n",
        "bad-agent.yaml",
    );
    assert!(
        err.contains("spec.gitopsAgent") && err.contains("flux"),
        "{err}"
    );
    // A wrong type.
    let err = refused(
        &api,
        "apiVersion: atoll.dev/v1alpha1\nkind: IPPool\nmetadata: {name: bad-pool}\nspec: {purpose: pod, cidrs: \"10.0.0.0/8\"}\n",
        "bad-pool.yaml",
    );
    assert!(err.contains("spec.cidrs"), "{err}");
    // A typo in a field name: kubectl asks for strict field validation.
    let err = refused(
        &api,
        "apiVersion: atoll.dev/v1alpha1\nkind: Cluster\nmetadata: {name: typo}\nspec: {catlog: edge}\n",
        "typo.yaml",
    );
    assert!(err.contains("catlog"), "{err}");
    // None of the bad objects was stored.
    let clusters = succeeded(
        &kubectl(&api, &["get", "clusters.atoll.dev", "-o", "name"]),
        "list clusters",
    );
    assert_eq!(clusters.lines().count(), 13, "{clusters}");
}

#[test]
fn everything_rendered_is_accepted_by_a_real_api_server() {
    let api = ApiServer::start().unwrap();
    install_upstream_crds(&api);
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("fleet");
    ok(&atoll(&[
        "render",
        "examples/edge-fleet",
        "--repo",
        repo.to_str().unwrap(),
    ]));
    // The management namespace, and those a cluster has before its package arrives: the
    // agent's own (made by the agent install) and MetalLB's (made by its chart, whose CRDs the
    // address pool needs first).
    for ns in [
        "fleet-clusters",
        "flux-system",
        "argocd",
        "config-management-system",
        "metallb-system",
    ] {
        succeeded(&kubectl(&api, &["create", "namespace", ns]), "namespace");
    }
    let mut applied = 0;
    for sub in ["management/clusters", "clusters"] {
        let mut dirs: Vec<_> = std::fs::read_dir(repo.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        for d in dirs {
            let what = format!("kubectl apply --server-side -k {}", rel(&repo, &d));
            succeeded(
                &kubectl(&api, &["apply", "--server-side", "-k", d.to_str().unwrap()]),
                &what,
            );
            applied += 1;
        }
    }
    // The agent objects of every cluster (they live in the management cluster too).
    succeeded(
        &kubectl(
            &api,
            &[
                "apply",
                "--server-side",
                "-f",
                repo.join("management/gitops").to_str().unwrap(),
            ],
        ),
        "management/gitops",
    );
    assert!(applied >= 20, "only {applied} folders applied");
    let capi = succeeded(
        &kubectl(
            &api,
            &["get", "clusters.cluster.x-k8s.io", "-A", "-o", "name"],
        ),
        "list CAPI clusters",
    );
    assert_eq!(capi.lines().count(), 12, "{capi}");
}

fn rel(base: &Path, p: &Path) -> String {
    p.strip_prefix(base).unwrap_or(p).display().to_string()
}
