//! Allocation of per-cluster blocks from IP pools.
//!
//! Allocations are state: the previous allocations come in, the new ones go out and are
//! committed with the render. A block, once given to a cluster, stays with it as long as the
//! cluster asks that pool; new clusters get the lowest free block, in name order.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// pool → cluster → block (CIDR).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocations {
    /// Pool → cluster → the block it was given.
    #[serde(default)]
    pub pools: BTreeMap<String, BTreeMap<String, String>>,
}

impl Allocations {
    /// The block `cluster` holds in `pool`.
    pub fn get(&self, pool: &str, cluster: &str) -> Option<&str> {
        self.pools.get(pool)?.get(cluster).map(String::as_str)
    }
}

/// A pool as IPAM sees it.
#[derive(Debug, Clone)]
pub struct PoolDef {
    /// The ranges blocks are cut from, in order.
    pub cidrs: Vec<IpNet>,
    /// The size of each block (a prefix length).
    pub prefix: u8,
}

/// A pool with no block left for a cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "IPPool `{pool}` is exhausted: no free /{prefix} block left for cluster `{cluster}` ({used} blocks in use)"
)]
pub struct Exhausted {
    /// The pool.
    pub pool: String,
    /// The cluster that asked.
    pub cluster: String,
    /// The block size asked for.
    pub prefix: u8,
    /// Blocks already handed out.
    pub used: usize,
}

/// Allocates a block for every (pool, cluster) request.
pub fn allocate<P, C>(
    pools: &BTreeMap<String, PoolDef>,
    requests: &BTreeMap<P, BTreeSet<C>>,
    previous: &Allocations,
) -> Result<Allocations, Vec<Exhausted>>
where
    P: AsRef<str> + Ord,
    C: AsRef<str> + Ord,
{
    let mut out = Allocations::default();
    let mut errs = Vec::new();
    for (pool, clusters) in requests {
        let pool = pool.as_ref();
        let Some(def) = pools.get(pool) else { continue };
        let prev = previous.pools.get(pool);
        let mut used: HashSet<IpNet> = HashSet::with_capacity(clusters.len());
        let fits = |block: &str, used: &mut HashSet<IpNet>| {
            block.parse::<IpNet>().is_ok_and(|net| {
                net.prefix_len() == def.prefix
                    && def.cidrs.iter().any(|p| p.contains(&net))
                    && used.insert(net)
            })
        };
        // The common case at fleet scale: the same clusters ask again, and every block still
        // fits. Then the pool's allocations are the previous ones, copied whole.
        if let Some(p) = prev
            && p.len() == clusters.len()
            && p.keys()
                .map(String::as_str)
                .eq(clusters.iter().map(AsRef::as_ref))
            && p.values().all(|b| fits(b, &mut used))
        {
            out.pools.insert(pool.to_string(), p.clone());
            continue;
        }
        used.clear();
        let mut given: BTreeMap<String, String> = BTreeMap::new();
        // Keep what is still asked for and still fits the pool.
        for c in clusters {
            let c = c.as_ref();
            if let Some(block) = prev.and_then(|p| p.get(c))
                && fits(block, &mut used)
            {
                given.insert(c.to_string(), block.clone());
            }
        }
        // New clusters: lowest free block; one cursor per pool keeps this linear.
        let mut candidates = def
            .cidrs
            .iter()
            .flat_map(|n| n.subnets(def.prefix).into_iter().flatten());
        for c in clusters {
            let c = c.as_ref();
            if given.contains_key(c) {
                continue;
            }
            match candidates.by_ref().find(|n| !used.contains(n)) {
                Some(net) => {
                    used.insert(net);
                    given.insert(c.to_string(), net.to_string());
                }
                None => errs.push(Exhausted {
                    pool: pool.to_string(),
                    cluster: c.to_string(),
                    prefix: def.prefix,
                    used: used.len(),
                }),
            }
        }
        if !given.is_empty() {
            out.pools.insert(pool.to_string(), given);
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pools() -> BTreeMap<String, PoolDef> {
        BTreeMap::from([(
            "pods".to_string(),
            PoolDef {
                cidrs: vec![
                    "10.0.0.0/12".parse().unwrap(),
                    "10.32.0.0/14".parse().unwrap(),
                ],
                prefix: 16,
            },
        )])
    }

    fn req(names: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
        BTreeMap::from([("pods".to_string(), names.clone())])
    }

    fn nets(a: &Allocations) -> Vec<IpNet> {
        a.pools
            .values()
            .flat_map(|m| m.values().map(|s| s.parse().unwrap()))
            .collect()
    }

    #[test]
    fn lowest_free_in_name_order() {
        let names: BTreeSet<String> = ["b", "a"].iter().map(|s| s.to_string()).collect();
        let a = allocate(&pools(), &req(&names), &Allocations::default()).unwrap();
        assert_eq!(a.get("pods", "a"), Some("10.0.0.0/16"));
        assert_eq!(a.get("pods", "b"), Some("10.1.0.0/16"));
    }

    #[test]
    fn exhaustion_is_reported() {
        let names: BTreeSet<String> = (0..21).map(|i| format!("c{i:02}")).collect();
        let e = allocate(&pools(), &req(&names), &Allocations::default()).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].cluster, "c20");
        assert!(e[0].to_string().contains("IPPool `pods` is exhausted"));
    }

    proptest! {
        /// No two clusters share addresses, and every block lies in its pool.
        #[test]
        fn no_overlaps(n in 0usize..20) {
            let names: BTreeSet<String> = (0..n).map(|i| format!("c{i}")).collect();
            let a = allocate(&pools(), &req(&names), &Allocations::default()).unwrap();
            let v = nets(&a);
            prop_assert_eq!(v.len(), n);
            for (i, x) in v.iter().enumerate() {
                prop_assert!(pools()["pods"].cidrs.iter().any(|p| p.contains(x)));
                for y in &v[i + 1..] {
                    prop_assert!(!x.contains(&y.network()) && !y.contains(&x.network()));
                }
            }
        }

        /// Adding and removing clusters never moves the block of a cluster that stays.
        #[test]
        fn stable_under_churn(first in proptest::collection::btree_set("[a-z]{1,3}", 0..12),
                              added in proptest::collection::btree_set("[a-z]{1,3}", 0..6),
                              removed in proptest::collection::btree_set("[a-z]{1,3}", 0..6)) {
            let a1 = allocate(&pools(), &req(&first), &Allocations::default()).unwrap();
            let second: BTreeSet<String> = first.union(&added).filter(|c| !removed.contains(*c)).cloned().collect();
            prop_assume!(second.len() <= 20);
            let a2 = allocate(&pools(), &req(&second), &a1).unwrap();
            for c in &second {
                if let Some(old) = a1.get("pods", c) {
                    prop_assert_eq!(a2.get("pods", c), Some(old));
                }
            }
            for c in &removed {
                if !added.contains(c) || !second.contains(c) {
                    prop_assert!(a2.get("pods", c).is_none() || second.contains(c));
                }
            }
            let v = nets(&a2);
            let set: HashSet<IpNet> = v.iter().cloned().collect();
            prop_assert_eq!(set.len(), v.len());
            // Same input, same output.
            prop_assert_eq!(allocate(&pools(), &req(&second), &a1).unwrap(), a2);
        }
    }
}
