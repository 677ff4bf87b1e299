//! The objects as the API serves them, in memory: lists and gets never touch the database.
//! Each change publishes a new immutable snapshot ([`Catalog`], tagged with the store's
//! resourceVersion); recent snapshots are kept so that a paged list (`limit` + `continue`)
//! sees one consistent version of the fleet from its first page to its last, as Kubernetes
//! promises. Each object's JSON is serialised once, when it is stored, not per request.

use atoll_inventory::Stored;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

/// One object, ready to serve.
#[derive(Debug)]
pub struct Entry {
    pub stored: Stored,
    pub labels: BTreeMap<String, String>,
    /// The body, serialised.
    pub json: Arc<str>,
}

impl Entry {
    pub fn new(stored: Stored) -> Entry {
        let labels =
            serde_json::from_value(stored.body["metadata"]["labels"].clone()).unwrap_or_default();
        let json = serde_json::to_string(&stored.body).expect("json").into();
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
    pub resource_version: i64,
    pub objects: BTreeMap<Key, Arc<Entry>>,
}

impl Catalog {
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
        self.publish(Catalog {
            resource_version,
            objects,
        });
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
        self.publish(Catalog {
            resource_version,
            objects,
        });
    }

    fn publish(&self, c: Catalog) {
        let new = Arc::new(c);
        let old = std::mem::replace(&mut *self.current.write().expect("catalog"), new);
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
}
