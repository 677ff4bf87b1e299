//! The eleven atoll.dev/v1alpha1 kinds, listed once. Every place that needs one line per kind
//! (the [`Declarations`](crate::Declarations) fields, loading by `kind`, the stored form of a
//! parsed file, `atoll convert`, the CRDs) expands [`for_each_kind!`] instead of spelling the
//! list again, so a new kind is one line here.

/// Calls the macro `$then` with every kind as `Kind, field: Spec, scope;` where `field` is the
/// kind's list in [`Declarations`](crate::Declarations) and `scope` is `cluster` or
/// `namespaced` (namespaced kinds belong to a team: their namespace is the team).
macro_rules! for_each_kind {
    ($then:ident) => {
        $then! {
            Fleet, fleets: FleetSpec, cluster;
            InfrastructureProfile, profiles: InfrastructureProfileSpec, cluster;
            ClusterCatalog, catalogs: ClusterCatalogSpec, cluster;
            Cluster, clusters: ClusterSpec, cluster;
            LogicalCluster, logical_clusters: LogicalClusterSpec, cluster;
            Team, teams: TeamSpec, cluster;
            Application, applications: ApplicationSpec, namespaced;
            TargetPolicy, policies: TargetPolicySpec, namespaced;
            WorkloadDeployment, workload_deployments: WorkloadDeploymentSpec, cluster;
            PackageVariant, package_variants: PackageVariantSpec, cluster;
            IPPool, pools: IPPoolSpec, cluster;
        }
    };
}
pub(crate) use for_each_kind;

macro_rules! kind_names {
    ($($kind:ident, $field:ident: $spec:ty, $scope:ident;)*) => {
        /// The kinds atoll reads, in the order [`crds`](crate::crds) lists them.
        pub const KINDS: &[&str] = &[$(stringify!($kind)),*];

        /// Whether `kind` (one of [`KINDS`]) is namespaced.
        pub fn is_namespaced(kind: &str) -> bool {
            $(if kind == stringify!($kind) { return is_namespaced!($scope); })*
            false
        }
    };
}
macro_rules! is_namespaced {
    (cluster) => {
        false
    };
    (namespaced) => {
        true
    };
}
for_each_kind!(kind_names);

macro_rules! all_crds {
    ($($kind:ident, $field:ident: $spec:ty, $scope:ident;)*) => {
        /// Every CRD atoll defines, in the order of [`KINDS`].
        pub fn crds() -> Vec<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > {
            use kube::CustomResourceExt;
            vec![$(crate::types::$kind::crd()),*]
        }
    };
}
for_each_kind!(all_crds);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_crds() {
        let crds = crds();
        assert_eq!(crds.len(), KINDS.len());
        for (crd, kind) in crds.iter().zip(KINDS) {
            assert_eq!(&crd.spec.names.kind, kind);
            assert_eq!(
                crd.spec.scope == "Namespaced",
                is_namespaced(kind),
                "{kind}"
            );
        }
        assert_eq!(
            KINDS.iter().filter(|k| is_namespaced(k)).count(),
            2,
            "Application and TargetPolicy"
        );
    }
}
