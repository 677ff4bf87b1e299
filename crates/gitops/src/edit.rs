//! [`TreeEdit`]: a change to a tree, applied by writing only the trees on the way to a
//! changed path.

use super::*;

/// A change to a tree: each path in `replace` — a folder ending in `/`, or a file — loses what
/// it held and gets the entries of `files` that lie under it. Everything else stays.
#[derive(Debug, Default, Clone)]
pub struct TreeEdit {
    /// Folders (ending in `/`) and files whose old contents go; `""` is the whole tree.
    pub replace: std::collections::BTreeSet<String>,
    /// Full repository paths; each must lie under a path of `replace`. Shared contents stay
    /// shared: a fleet's files repeat.
    pub files: BTreeMap<String, std::sync::Arc<[u8]>>,
}

impl TreeEdit {
    /// Every path is a [`RepoPath`] under atoll's own folders ([`OWNED_ROOTS`]).
    pub fn check_owned(&self) -> Result<(), PathError> {
        for p in self.replace.iter().chain(self.files.keys()) {
            RepoPath::owned(p)?;
        }
        Ok(())
    }

    /// Applies the edit to `base` (none: an empty tree) and writes the trees and blobs it
    /// needs. Identical blobs are hashed and written once.
    pub(crate) fn write(
        &self,
        repo: &gix::Repository,
        base: Option<ObjectId>,
    ) -> Result<ObjectId, BoxErr> {
        #[derive(Default)]
        struct Node<'a> {
            cleared: bool,
            cleared_files: std::collections::BTreeSet<&'a str>,
            files: BTreeMap<&'a str, &'a [u8]>,
            dirs: BTreeMap<&'a str, Node<'a>>,
        }
        fn node<'n, 'a>(root: &'n mut Node<'a>, dirs: &[&'a str]) -> &'n mut Node<'a> {
            dirs.iter().fold(root, |n, d| n.dirs.entry(d).or_default())
        }
        let mut root = Node::default();
        for key in &self.replace {
            if !key.is_empty() {
                RepoPath::new(key)?;
            }
            let parts: Vec<&str> = key.trim_end_matches('/').split('/').collect();
            if key.ends_with('/') || key.is_empty() {
                node(&mut root, &parts).cleared = true;
            } else {
                let (file, dirs) = parts.split_last().expect("non-empty");
                node(&mut root, dirs).cleared_files.insert(file);
            }
        }
        for (path, bytes) in &self.files {
            // The path itself, or one of its folders (`a/`, `a/b/`, ...), must be a key: a
            // lookup per level, not a scan of the keys (thousands when many clusters change).
            let inside = self.replace.contains(path.as_str())
                || path
                    .match_indices('/')
                    .any(|(i, _)| self.replace.contains(&path[..=i]));
            if !inside {
                return Err(format!("{path} lies outside the edited paths").into());
            }
            RepoPath::new(path)?;
            let parts: Vec<&str> = path.split('/').collect();
            let (file, dirs) = parts.split_last().expect("non-empty");
            node(&mut root, dirs).files.insert(file, bytes);
        }

        // Blob ids, hashed in parallel, each distinct content once.
        let mut distinct: std::collections::HashMap<&[u8], ObjectId> = Default::default();
        for b in self.files.values() {
            distinct
                .entry(b.as_ref())
                .or_insert_with(|| ObjectId::null(gix::hash::Kind::Sha1));
        }
        let hash_kind = repo.object_hash();
        let hashed: Vec<(&[u8], ObjectId)> = {
            use rayon::prelude::*;
            let keys: Vec<&[u8]> = distinct.keys().copied().collect();
            keys.into_par_iter()
                .map(|b| {
                    gix::objs::compute_hash(hash_kind, gix::objs::Kind::Blob, b).map(|id| (b, id))
                })
                .collect::<Result<_, _>>()?
        };
        distinct.extend(hashed);

        struct Writer<'r> {
            repo: &'r gix::Repository,
            blobs: std::collections::HashMap<&'r [u8], ObjectId>,
            pack: pack::Pack,
            /// Whether to ask the object database before adding an object: worth it for a
            /// small edit of an existing tree; for a large one, a duplicate in the new pack
            /// costs less than a lookup per object.
            check_existing: bool,
        }
        impl<'r> Writer<'r> {
            fn add(&mut self, id: ObjectId, kind: gix::objs::Kind, data: Vec<u8>) {
                if !(self.check_existing && self.repo.has_object(id)) {
                    self.pack.add(id, kind, data);
                }
            }
            fn blob(&mut self, bytes: &'r [u8]) -> ObjectId {
                let id = self.blobs[bytes];
                self.add(id, gix::objs::Kind::Blob, bytes.to_vec());
                id
            }
            fn tree(&mut self, entries: Vec<Entry>) -> Result<ObjectId, BoxErr> {
                let tree = gix::objs::Tree { entries };
                let mut buf = Vec::new();
                gix::objs::WriteTo::write_to(&tree, &mut buf)?;
                let id =
                    gix::objs::compute_hash(self.repo.object_hash(), gix::objs::Kind::Tree, &buf)?;
                self.add(id, gix::objs::Kind::Tree, buf);
                Ok(id)
            }
            /// Writes `n` over `old`; `None` when the result is empty (Git has no empty
            /// folders).
            fn write<'a: 'r>(
                &mut self,
                n: &Node<'a>,
                old: Option<ObjectId>,
            ) -> Result<Option<ObjectId>, BoxErr> {
                let mut entries: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();
                if let (Some(old), false) = (old, n.cleared) {
                    let obj = self.repo.find_object(old)?;
                    let t = obj.into_tree();
                    for e in t.decode()?.entries.iter() {
                        entries.insert(
                            e.filename.to_vec(),
                            Entry {
                                mode: e.mode,
                                filename: e.filename.into(),
                                oid: e.oid.to_owned(),
                            },
                        );
                    }
                }
                for f in &n.cleared_files {
                    entries.remove(f.as_bytes());
                }
                for (name, sub) in &n.dirs {
                    let old_sub = entries
                        .get(name.as_bytes())
                        .filter(|e| e.mode.is_tree())
                        .map(|e| e.oid);
                    match self.write(sub, old_sub)? {
                        Some(oid) => {
                            entries.insert(
                                name.as_bytes().to_vec(),
                                Entry {
                                    mode: EntryKind::Tree.into(),
                                    filename: (*name).into(),
                                    oid,
                                },
                            );
                        }
                        None => {
                            entries.remove(name.as_bytes());
                        }
                    }
                }
                for (name, bytes) in &n.files {
                    let oid = self.blob(bytes);
                    entries.insert(
                        name.as_bytes().to_vec(),
                        Entry {
                            mode: EntryKind::Blob.into(),
                            filename: (*name).into(),
                            oid,
                        },
                    );
                }
                if entries.is_empty() {
                    return Ok(None);
                }
                let mut entries: Vec<Entry> = entries.into_values().collect();
                // Git orders folders as if their names ended in `/`.
                entries.sort();
                Ok(Some(self.tree(entries)?))
            }
        }
        let mut w = Writer {
            repo,
            blobs: distinct,
            pack: Default::default(),
            check_existing: base.is_some() && self.files.len() < 50_000,
        };
        let root = match w.write(&root, base)? {
            Some(id) => id,
            None => w.tree(Vec::new())?,
        };
        // Nothing changed: write nothing.
        if Some(root) != base {
            w.pack.write(&repo.git_dir().join("objects"))?;
        }
        Ok(root)
    }
}
