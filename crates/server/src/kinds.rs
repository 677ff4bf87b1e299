//! The atoll kinds as the API serves them: plural path segment, scope, and the CRD schema used
//! in the OpenAPI document — all from the CRDs atoll generates, so routes, docs and the
//! Kubernetes CRDs cannot disagree.

use serde_json::Value;

/// A kind the API serves.
#[derive(Clone, Debug)]
pub struct Kind {
    /// Its name (`Cluster`).
    pub kind: String,
    /// Its path segment (`clusters`).
    pub plural: String,
    /// Whether its objects live in a team's namespace.
    pub namespaced: bool,
    /// The CRD's `openAPIV3Schema`.
    pub schema: Value,
}

impl Kind {
    /// Fleet-level kinds are written by admins only; Applications and TargetPolicies by
    /// their team's contributors.
    pub fn team_owned(&self) -> bool {
        self.namespaced
    }
}

/// The eleven atoll kinds, from the CRDs atoll generates.
pub fn all() -> Vec<Kind> {
    atoll_model::crds()
        .into_iter()
        .map(|crd| {
            let v = &crd.spec.versions[0];
            Kind {
                kind: crd.spec.names.kind.clone(),
                plural: crd.spec.names.plural.clone(),
                namespaced: crd.spec.scope == "Namespaced",
                schema: v
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .map(|s| serde_json::to_value(s).expect("schema"))
                    .unwrap_or(Value::Null),
            }
        })
        .collect()
}
