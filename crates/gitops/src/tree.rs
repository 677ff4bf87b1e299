//! Reading trees: every blob under a tree, the paths that differ between two, and lookups
//! that decode each folder once.

use super::*;

pub(crate) type BoxErr = Box<dyn std::error::Error + Send + Sync>;

/// Calls `f` with the path and id of every blob under `tree`, depth first.
pub(crate) fn walk_blobs(
    repo: &gix::Repository,
    tree: ObjectId,
    prefix: &str,
    f: &mut impl FnMut(String, ObjectId) -> Result<(), BoxErr>,
) -> Result<(), BoxErr> {
    let obj = repo.find_object(tree)?;
    let t = obj.into_tree();
    let decoded = t.decode()?;
    for e in decoded.entries.iter() {
        let name = e.filename.to_str_lossy();
        let path = if prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{prefix}/{name}")
        };
        if e.mode.is_tree() {
            walk_blobs(repo, e.oid.to_owned(), &path, f)?;
        } else if e.mode.is_blob() {
            f(path, e.oid.to_owned())?;
        }
    }
    Ok(())
}

/// Adds to `out` the file paths under `path` that differ between `a` and `b` (each an
/// entry: id and whether it is a folder).
pub(crate) fn diff_entries(
    repo: &gix::Repository,
    path: &str,
    a: Option<(ObjectId, bool)>,
    b: Option<(ObjectId, bool)>,
    out: &mut Vec<String>,
) -> Result<(), BoxErr> {
    if a == b {
        return Ok(());
    }
    let entries =
        |e: Option<(ObjectId, bool)>| -> Result<BTreeMap<Vec<u8>, (ObjectId, bool)>, BoxErr> {
            match e {
                Some((id, true)) => {
                    let obj = repo.find_object(id)?;
                    let t = obj.into_tree();
                    Ok(t.decode()?
                        .entries
                        .iter()
                        .map(|e| (e.filename.to_vec(), (e.oid.to_owned(), e.mode.is_tree())))
                        .collect())
                }
                _ => Ok(BTreeMap::new()),
            }
        };
    // A file on either side is itself a changed path.
    if matches!(a, Some((_, false))) || matches!(b, Some((_, false))) {
        out.push(path.to_string());
    }
    let (ea, eb) = (entries(a)?, entries(b)?);
    let names: BTreeSet<&Vec<u8>> = ea.keys().chain(eb.keys()).collect();
    for name in names {
        let child = format!("{path}/{}", name.to_str_lossy());
        diff_entries(
            repo,
            &child,
            ea.get(name).copied(),
            eb.get(name).copied(),
            out,
        )?;
    }
    Ok(())
}

/// Every file under `tree`, with its contents.
pub(crate) fn read_tree(
    repo: &gix::Repository,
    tree: ObjectId,
    prefix: &str,
    out: &mut Files,
) -> Result<(), BoxErr> {
    walk_blobs(repo, tree, prefix, &mut |path, id| {
        out.insert(path, repo.find_object(id)?.data.clone());
        Ok(())
    })
}

/// The id Git gives a blob with these contents.
pub fn blob_id(bytes: &[u8]) -> ObjectId {
    gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, bytes)
        .expect("hashing in memory does not fail")
}

/// Folders read once per walk, and indexed once looked into often: looking up 10,000
/// clusters' paths must not decode the 10,000-entry `clusters/` folder 10,000 times, and
/// looking up one must not index it.
#[derive(Default)]
pub(crate) struct Dirs(std::collections::HashMap<ObjectId, Dir>);

#[derive(Default)]
pub(crate) struct Dir {
    /// The tree object's bytes.
    data: Vec<u8>,
    lookups: usize,
    index: Option<std::collections::HashMap<Vec<u8>, (ObjectId, bool)>>,
}

impl Dir {
    pub(crate) fn find(&mut self, name: &[u8]) -> Result<Option<(ObjectId, bool)>, BoxErr> {
        self.lookups += 1;
        if self.index.is_none() && self.lookups > 8 {
            let t = gix::objs::TreeRef::from_bytes(&self.data, gix::hash::Kind::Sha1)?;
            self.index = Some(
                t.entries
                    .iter()
                    .map(|e| (e.filename.to_vec(), (e.oid.to_owned(), e.mode.is_tree())))
                    .collect(),
            );
        }
        if let Some(index) = &self.index {
            return Ok(index.get(name).copied());
        }
        let t = gix::objs::TreeRef::from_bytes(&self.data, gix::hash::Kind::Sha1)?;
        Ok(t.entries
            .iter()
            .find(|e| e.filename == name)
            .map(|e| (e.oid.to_owned(), e.mode.is_tree())))
    }
}

impl Dirs {
    pub(crate) fn lookup(
        &mut self,
        repo: &gix::Repository,
        tree: ObjectId,
        path: &str,
    ) -> Result<Option<(ObjectId, bool)>, BoxErr> {
        let mut cur = (tree, true);
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !cur.1 {
                return Ok(None);
            }
            let dir = match self.0.entry(cur.0) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(Dir {
                    data: repo.find_object(cur.0)?.data.clone(),
                    ..Default::default()
                }),
            };
            match dir.find(part.as_bytes())? {
                Some(e) => cur = e,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }
}

/// Finds `path` in `tree`: its id and whether it is a folder.
pub(crate) fn lookup(
    repo: &gix::Repository,
    tree: ObjectId,
    path: &str,
) -> Result<Option<(ObjectId, bool)>, BoxErr> {
    Dirs::default().lookup(repo, tree, path)
}
