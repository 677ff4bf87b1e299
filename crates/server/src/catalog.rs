//! The objects as the API serves them, in memory: lists and gets never touch the database.
//! Each change publishes a new immutable snapshot ([`Catalog`], tagged with the store's
//! resourceVersion); recent snapshots are kept so that a paged list (`limit` + `continue`)
//! sees one consistent version of the fleet from its first page to its last, as Kubernetes
//! promises. Each object's JSON is serialised once, when it is stored, not per request.

use atoll_inventory::Stored;
use axum::body::Bytes;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// One object, ready to serve.
#[derive(Debug)]
pub struct Entry {
    /// The object as stored.
    pub stored: Stored,
    /// Its labels, parsed once (for label selectors).
    pub labels: BTreeMap<String, String>,
    /// The body, serialised (shared, not copied, by every response that carries it).
    pub json: Bytes,
}

impl Entry {
    /// Parses the labels and serialises the body once.
    pub fn new(stored: Stored) -> Entry {
        let labels =
            serde_json::from_value(stored.body["metadata"]["labels"].clone()).unwrap_or_default();
        let json = serde_json::to_vec(&stored.body).expect("json").into();
        Entry {
            stored,
            labels,
            json,
        }
    }
}

/// (kind, namespace, name): the order lists are served in.
pub type Key = (String, String, String);

/// Every object at one resourceVersion.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The store's resourceVersion this snapshot is at.
    pub resource_version: i64,
    /// Every object, in list order.
    pub objects: BTreeMap<Key, Arc<Entry>>,
    /// Each kind's objects in list order, built by the first page that needs it: a page is
    /// then found by binary search and the rest counted without walking it (walking 10,000
    /// clusters per page to count `remainingItemCount` was most of a list's time).
    by_kind: OnceLock<HashMap<String, Vec<Arc<Entry>>>>,
    /// Unfiltered list pages already served from this snapshot, which never changes: clients
    /// walking the fleet page by page get the same bytes. Kept while this is the current
    /// snapshot, up to [`PAGE_CACHE_BYTES`].
    pages: Mutex<PageCache>,
}

#[derive(Debug, Default)]
struct PageCache {
    pages: HashMap<PageKey, Bytes>,
    bytes: usize,
    /// No longer the current snapshot: nothing more is kept.
    retired: bool,
}

/// A list page: kind, namespace, the key it starts after, the limit.
pub type PageKey = (String, Option<String>, Option<Key>, usize);

/// At most this many bytes of list pages are kept per snapshot.
pub const PAGE_CACHE_BYTES: usize = 64 << 20;

impl Catalog {
    fn new(resource_version: i64, objects: BTreeMap<Key, Arc<Entry>>) -> Catalog {
        Catalog {
            resource_version,
            objects,
            by_kind: OnceLock::new(),
            pages: Default::default(),
        }
    }

    /// A page served before from this snapshot.
    pub fn cached_page(&self, key: &PageKey) -> Option<Bytes> {
        self.pages.lock().expect("pages").pages.get(key).cloned()
    }

    /// Keeps a page's bytes for the next client asking for it, within the budget.
    pub fn keep_page(&self, key: PageKey, body: Bytes) {
        let mut c = self.pages.lock().expect("pages");
        if !c.retired && c.bytes + body.len() <= PAGE_CACHE_BYTES {
            c.bytes += body.len();
            c.pages.insert(key, body);
        }
    }

    /// Up to `limit` objects of `kind` (in `namespace` when given) after `after`, and how
    /// many more follow them.
    pub fn page(
        &self,
        kind: &str,
        namespace: Option<&str>,
        after: Option<&Key>,
        limit: usize,
    ) -> (&[Arc<Entry>], usize) {
        let index = self.by_kind.get_or_init(|| {
            let mut m: HashMap<String, Vec<Arc<Entry>>> = HashMap::new();
            for (k, e) in &self.objects {
                m.entry(k.0.clone()).or_default().push(e.clone());
            }
            m
        });
        let mut all = index.get(kind).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(n) = namespace {
            let lo = all.partition_point(|e| e.stored.namespace.as_str() < n);
            let hi = all.partition_point(|e| e.stored.namespace.as_str() <= n);
            all = &all[lo..hi];
        }
        let start = after.map_or(0, |k| {
            all.partition_point(|e| {
                (e.stored.namespace.as_str(), e.stored.name.as_str())
                    <= (k.1.as_str(), k.2.as_str())
            })
        });
        let rest = &all[start..];
        let n = rest.len().min(limit);
        (&rest[..n], rest.len() - n)
    }

    /// The objects of `kind` (in `namespace` when given), from just after `after`.
    pub fn range<'a>(
        &'a self,
        kind: &'a str,
        namespace: Option<&'a str>,
        after: Option<&Key>,
    ) -> impl Iterator<Item = (&'a Key, &'a Arc<Entry>)> + 'a {
        use std::ops::Bound;
        let start = match after {
            Some(k) => Bound::Excluded(k.clone()),
            None => Bound::Included((
                kind.to_string(),
                namespace.unwrap_or("").to_string(),
                String::new(),
            )),
        };
        self.objects
            .range((start, Bound::Unbounded))
            .take_while(move |(k, _)| k.0 == kind && namespace.is_none_or(|n| k.1 == n))
    }

    /// One object.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<&Arc<Entry>> {
        self.objects
            .get(&(kind.to_string(), namespace.to_string(), name.to_string()))
    }
}

/// How many past snapshots a paged list may come back to.
const KEPT: usize = 64;

/// The current snapshot and the recent ones.
#[derive(Default)]
pub struct Catalogs {
    current: RwLock<Arc<Catalog>>,
    recent: Mutex<VecDeque<Arc<Catalog>>>,
}

impl Catalogs {
    /// The latest snapshot.
    pub fn current(&self) -> Arc<Catalog> {
        self.current.read().expect("catalog").clone()
    }

    /// The snapshot at `rv`, if it is still kept.
    pub fn at(&self, rv: i64) -> Option<Arc<Catalog>> {
        let cur = self.current();
        if cur.resource_version == rv {
            return Some(cur);
        }
        self.recent
            .lock()
            .expect("catalog")
            .iter()
            .find(|c| c.resource_version == rv)
            .cloned()
    }

    /// Publishes a whole new snapshot.
    pub fn replace(&self, objects: Vec<Stored>, resource_version: i64) {
        let objects = objects
            .into_iter()
            .map(|s| {
                (
                    (s.kind.clone(), s.namespace.clone(), s.name.clone()),
                    Arc::new(Entry::new(s)),
                )
            })
            .collect();
        self.publish(Catalog::new(resource_version, objects));
    }

    /// Publishes the current snapshot with `written` applied: (kind, namespace, name) and the
    /// object after the change (`None`: deleted).
    pub fn apply(&self, written: Vec<(Key, Option<Value>)>, resource_version: i64) {
        let cur = self.current();
        let mut objects = cur.objects.clone();
        for (key, after) in written {
            match after {
                Some(body) => {
                    let rv = body["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(resource_version);
                    let stored = Stored {
                        kind: key.0.clone(),
                        namespace: key.1.clone(),
                        name: key.2.clone(),
                        resource_version: rv,
                        body,
                    };
                    objects.insert(key, Arc::new(Entry::new(stored)));
                }
                None => {
                    objects.remove(&key);
                }
            }
        }
        self.publish(Catalog::new(resource_version, objects));
    }

    fn publish(&self, c: Catalog) {
        let new = Arc::new(c);
        let old = std::mem::replace(&mut *self.current.write().expect("catalog"), new);
        // Old snapshots serve only walks already under way: their pages are not kept.
        *old.pages.lock().expect("pages") = PageCache {
            retired: true,
            ..Default::default()
        };
        let mut recent = self.recent.lock().expect("catalog");
        recent.push_front(old);
        recent.truncate(KEPT);
    }
}

/// A `continue` token: the snapshot's resourceVersion and the last key served, hex-encoded
/// (opaque to clients, as Kubernetes' are).
pub fn encode_continue(rv: i64, key: &Key) -> String {
    let raw = format!("{rv}\n{}\n{}\n{}", key.0, key.1, key.2);
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The resourceVersion and key of a `continue` token; `None` when it is not one.
pub fn decode_continue(token: &str) -> Option<(i64, Key)> {
    if !token.len().is_multiple_of(2) || token.len() > 2048 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.splitn(4, '\n');
    let rv = parts.next()?.parse().ok()?;
    let key = (
        parts.next()?.to_string(),
        parts.next()?.to_string(),
        parts.next()?.to_string(),
    );
    Some((rv, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_snapshots_are_kept_for_a_while_then_expire() {
        let c = Catalogs::default();
        for rv in 1..=(KEPT as i64 + 5) {
            c.replace(Vec::new(), rv);
        }
        let last = KEPT as i64 + 5;
        assert!(c.at(last).is_some());
        assert!(c.at(last - KEPT as i64 + 1).is_some());
        assert!(c.at(2).is_none(), "expired");
    }

    #[test]
    fn continue_tokens_round_trip_and_refuse_garbage() {
        let k = (
            "Cluster".to_string(),
            String::new(),
            "edge.paris".to_string(),
        );
        let t = encode_continue(42, &k);
        assert_eq!(decode_continue(&t), Some((42, k)));
        for bad in ["", "zz", "4", "343", &"00".repeat(2000)] {
            assert_eq!(decode_continue(bad), None, "{bad}");
        }
    }

    /// A page from the index is the page walking the map would give, for every start point,
    /// namespace and limit.
    #[test]
    fn pages_from_the_index_match_the_walk() {
        let mut objects = Vec::new();
        for (kind, ns) in [("Application", "a"), ("Application", "b"), ("Cluster", "")] {
            for i in 0..7 {
                objects.push(Stored {
                    kind: kind.into(),
                    namespace: ns.into(),
                    name: format!("n{i}"),
                    resource_version: 1,
                    body: serde_json::json!({"metadata": {"name": format!("n{i}")}}),
                });
            }
        }
        let c = Catalogs::default();
        c.replace(objects, 1);
        let snap = c.current();
        for (kind, ns) in [
            ("Application", None),
            ("Application", Some("a")),
            ("Application", Some("b")),
            ("Application", Some("zz")),
            ("Cluster", None),
            ("Team", None),
        ] {
            let keys: Vec<Key> = snap.range(kind, ns, None).map(|(k, _)| k.clone()).collect();
            for limit in [1, 3, 7, 100] {
                for start in 0..=keys.len() {
                    let after = start.checked_sub(1).map(|i| keys[i].clone());
                    let walk: Vec<&str> = snap
                        .range(kind, ns, after.as_ref())
                        .map(|(k, _)| k.2.as_str())
                        .collect();
                    let (page, more) = snap.page(kind, ns, after.as_ref(), limit);
                    let names: Vec<&str> = page.iter().map(|e| e.stored.name.as_str()).collect();
                    let n = walk.len().min(limit);
                    assert_eq!(names, walk[..n], "{kind} {ns:?} {limit} {start}");
                    assert_eq!(more, walk.len() - n);
                }
            }
        }
    }
}
