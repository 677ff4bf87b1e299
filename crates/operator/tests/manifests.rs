//! `atoll operator manifests` validates against the upstream schemas in ../shared/schemas
//! (Kubernetes OpenAPI for the built-in kinds), and its RBAC grants what the operator touches
//! and nothing broader. (The tests in crates/cli/tests/operator.rs run the operator with
//! exactly this RBAC against a real API server.)

use atoll_operator::manifests::{Options, cluster_role, manifests};
use serde_json::Value;

#[test]
fn every_install_object_validates_against_upstream_schemas() {
    let schemas = atoll_conformance::Schemas::load(&atoll_conformance::schemas_dir());
    for replicas in [1, 2] {
        let objs = manifests(&Options {
            replicas,
            ..Default::default()
        });
        let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        for k in [
            "CustomResourceDefinition",
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "PersistentVolumeClaim",
            "Deployment",
        ] {
            assert!(kinds.contains(&k), "no {k} in {kinds:?}");
        }
        for o in &objs {
            assert!(
                schemas.knows(
                    o["apiVersion"].as_str().unwrap(),
                    o["kind"].as_str().unwrap()
                ),
                "no schema for {}",
                o["kind"]
            );
            if let Err(e) = schemas.validate(o) {
                panic!("{} {}: {e:?}", o["kind"], o["metadata"]["name"]);
            }
        }
        // The check has teeth: a wrong type in the Deployment is caught.
        let mut bad = objs.last().unwrap().clone();
        assert_eq!(bad["kind"], "Deployment");
        bad["spec"]["replicas"] = Value::from("two");
        assert!(schemas.validate(&bad).is_err());
    }
}

#[test]
fn the_cluster_role_is_least_privilege() {
    let role = cluster_role();
    for rule in role["rules"].as_array().unwrap() {
        let all = |f: &str| -> Vec<&str> {
            rule[f]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect()
        };
        assert!(!all("apiGroups").contains(&"*"), "{rule}");
        assert!(!all("resources").contains(&"*"), "{rule}");
        assert!(!all("verbs").contains(&"*"), "{rule}");
        // Nothing touches Secrets, and the atoll kinds themselves are never created or deleted.
        assert!(!all("resources").contains(&"secrets"), "{rule}");
        if all("apiGroups") == ["atoll.dev"] {
            for v in ["create", "delete", "update"] {
                if all("resources").iter().all(|r| !r.ends_with("/finalizers")) {
                    assert!(!all("verbs").contains(&v), "{rule}");
                }
            }
        }
    }
    let text = serde_json::to_string(&role).unwrap();
    assert!(
        !text.contains("leases"),
        "Leases belong in the namespaced Role"
    );
    let _: Value = role;
}
