//! atoll's Git shell: reads the fleet repository, commits rendered packages (one commit per
//! render, none when nothing changed), reads upstream packages at pinned revisions. The
//! per-cluster plan (pure: two trees in, a list of changes out) lives in `atoll-pipeline`. Written with gix; Git is never shelled out to.

pub use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::objs::tree::{Entry, EntryKind};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod guard;
mod pack;
mod path;
mod remote;

pub use remote::{Auth, Pushed, Remote, display_url};

pub use guard::RepoLock;

pub use path::{OWNED_ROOTS, PathError, RepoPath, check_name};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{path}: {message}")]
    Repo { path: String, message: String },
    #[error("revision `{rev}` not found in {repo}")]
    Revision { repo: String, rev: String },
    #[error("package directory `{dir}` not found in {repo} at {rev}")]
    NoPackage {
        repo: String,
        dir: String,
        rev: String,
    },
    /// An upstream package holds an entry atoll refuses to copy.
    #[error("upstream {repo} at {rev}: entry `{entry}` refused: {why}")]
    Unsafe {
        repo: String,
        rev: String,
        entry: String,
        why: String,
    },
    /// A path atoll was asked to write is not safe.
    #[error("{0}")]
    Path(#[from] PathError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub(crate) fn err(path: &Path, e: impl std::fmt::Display) -> GitError {
    GitError::Repo {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The committer address of atoll's own commits: how [`FleetRepo::last_rendered`] tells
/// them from other writers'.
pub const ATOLL_EMAIL: &str = "atoll@localhost";

/// A file tree: path → bytes.
pub type Files = BTreeMap<String, Vec<u8>>;

/// The fleet repository.
pub struct FleetRepo {
    repo: gix::Repository,
    path: PathBuf,
}

impl FleetRepo {
    /// Opens the repository at `path`, or creates it (with a work tree) when it does not exist.
    pub fn open_or_init(path: &Path) -> Result<FleetRepo, GitError> {
        let repo = if path.join(".git").exists() || path.join("HEAD").exists() {
            gix::open(path).map_err(|e| err(path, e))?
        } else {
            std::fs::create_dir_all(path)?;
            gix::init(path).map_err(|e| err(path, e))?
        };
        Ok(FleetRepo {
            repo,
            path: path.to_path_buf(),
        })
    }

    /// Like [`FleetRepo::open_or_init`], but a missing repository is created bare (no work
    /// tree): what a Git server holds, and what a large fleet wants, since nothing is checked
    /// out after each render.
    pub fn open_or_init_bare(path: &Path) -> Result<FleetRepo, GitError> {
        if path.join(".git").exists() || path.join("HEAD").exists() {
            return Self::open_or_init(path);
        }
        std::fs::create_dir_all(path)?;
        let repo = gix::init_bare(path).map_err(|e| err(path, e))?;
        Ok(FleetRepo {
            repo,
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing repository; a missing one reads as empty (for `plan`).
    pub fn open_if_exists(path: &Path) -> Result<Option<FleetRepo>, GitError> {
        if path.join(".git").exists() || path.join("HEAD").exists() {
            Ok(Some(FleetRepo {
                repo: gix::open(path).map_err(|e| err(path, e))?,
                path: path.to_path_buf(),
            }))
        } else {
            Ok(None)
        }
    }

    /// HEAD's commit and tree, or `None` for a repository without commits.
    /// The repository's Git directory (`.git`, or the repository itself when bare).
    pub fn git_dir(&self) -> &Path {
        self.repo.git_dir()
    }

    pub fn head(&self) -> Result<Option<(ObjectId, ObjectId)>, GitError> {
        let mut head = self.repo.head().map_err(|e| err(&self.path, e))?;
        if head.is_unborn() {
            return Ok(None);
        }
        let commit = head.peel_to_commit().map_err(|e| err(&self.path, e))?;
        let tree = commit.tree_id().map_err(|e| err(&self.path, e))?.detach();
        Ok(Some((commit.id, tree)))
    }

    /// Every file of HEAD.
    pub fn head_files(&self) -> Result<Files, GitError> {
        let mut out = Files::new();
        if let Some((_, tree)) = self.head()? {
            read_tree(&self.repo, tree, "", &mut out).map_err(|e| err(&self.path, e))?;
        }
        Ok(out)
    }

    /// One file of HEAD, if it exists.
    pub fn head_file(&self, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let Some((_, tree)) = self.head()? else {
            return Ok(None);
        };
        match lookup(&self.repo, tree, path).map_err(|e| err(&self.path, e))? {
            Some((oid, false)) => {
                let blob = self.repo.find_object(oid).map_err(|e| err(&self.path, e))?;
                Ok(Some(blob.data.clone()))
            }
            _ => Ok(None),
        }
    }

    /// The files of HEAD under each of `keys` (a folder ending in `/`, or a file), with their
    /// full paths. Only the trees on the way there are read.
    pub fn head_files_under<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<Files, GitError> {
        let ids = self.head_ids_under(keys)?;
        self.read_blobs(&ids)
    }

    /// The blob ids of the files of HEAD under each of `keys` (a folder ending in `/`, or a
    /// file), with their full paths. No file is read.
    pub fn head_ids_under<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<BTreeMap<String, ObjectId>, GitError> {
        let mut out = BTreeMap::new();
        let Some((_, tree)) = self.head()? else {
            return Ok(out);
        };
        let mut dirs = Dirs::default();
        for key in keys {
            let path = key.trim_end_matches('/');
            match dirs
                .lookup(&self.repo, tree, path)
                .map_err(|e| err(&self.path, e))?
            {
                Some((oid, true)) => walk_blobs(&self.repo, oid, path, &mut |p, id| {
                    out.insert(p, id);
                    Ok(())
                })
                .map_err(|e| err(&self.path, e))?,
                Some((oid, false)) => {
                    out.insert(path.to_string(), oid);
                }
                None => {}
            }
        }
        Ok(out)
    }

    /// The newest commit on HEAD's first-parent line that atoll made (its committer is
    /// atoll), with its tree: the last state atoll rendered. Another writer's commits on top
    /// of it are drift. `None` when there is no such commit within `max_walk` commits.
    pub fn last_rendered(&self, max_walk: usize) -> Result<Option<(ObjectId, ObjectId)>, GitError> {
        let Some((mut id, _)) = self.head()? else {
            return Ok(None);
        };
        for _ in 0..max_walk {
            let obj = self.repo.find_object(id).map_err(|e| err(&self.path, e))?;
            let c = obj.into_commit();
            let decoded = c.decode().map_err(|e| err(&self.path, e))?;
            let committer = decoded.committer().map_err(|e| err(&self.path, e))?;
            if committer.email == ATOLL_EMAIL.as_bytes() {
                return Ok(Some((id, decoded.tree())));
            }
            match decoded.parents().next() {
                Some(p) => id = p,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The tree of a commit (`None` when the commit is not in this repository).
    pub fn tree_of(&self, commit: ObjectId) -> Result<Option<ObjectId>, GitError> {
        let Ok(obj) = self.repo.find_object(commit) else {
            return Ok(None);
        };
        let Ok(c) = obj.try_into_commit() else {
            return Ok(None);
        };
        Ok(Some(c.tree_id().map_err(|e| err(&self.path, e))?.detach()))
    }

    /// The id of the entry (file or folder) at `path` in `tree`.
    pub fn tree_entry(&self, tree: ObjectId, path: &str) -> Result<Option<ObjectId>, GitError> {
        Ok(lookup(&self.repo, tree, path)
            .map_err(|e| err(&self.path, e))?
            .map(|(id, _)| id))
    }

    /// One file of a tree, if it exists.
    pub fn file_at(&self, tree: ObjectId, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        match lookup(&self.repo, tree, path).map_err(|e| err(&self.path, e))? {
            Some((oid, false)) => {
                let blob = self.repo.find_object(oid).map_err(|e| err(&self.path, e))?;
                Ok(Some(blob.data.clone()))
            }
            _ => Ok(None),
        }
    }

    /// The paths of files that differ between two trees (added, removed or changed), under
    /// `roots`. Subtrees with the same id are not entered, so this costs what changed.
    pub fn changed_paths(
        &self,
        old: ObjectId,
        new: ObjectId,
        roots: &[&str],
    ) -> Result<Vec<String>, GitError> {
        let mut out = Vec::new();
        for root in roots {
            let a = lookup(&self.repo, old, root).map_err(|e| err(&self.path, e))?;
            let b = lookup(&self.repo, new, root).map_err(|e| err(&self.path, e))?;
            diff_entries(&self.repo, root, a, b, &mut out).map_err(|e| err(&self.path, e))?;
        }
        Ok(out)
    }

    /// The contents of blobs, by path.
    pub fn read_blobs(&self, ids: &BTreeMap<String, ObjectId>) -> Result<Files, GitError> {
        let mut out = Files::new();
        for (path, id) in ids {
            let blob = self.repo.find_object(*id).map_err(|e| err(&self.path, e))?;
            out.insert(path.clone(), blob.data.clone());
        }
        Ok(out)
    }

    /// The names in a folder of HEAD (empty when it does not exist).
    pub fn head_names(&self, dir: &str) -> Result<Vec<String>, GitError> {
        let Some((_, tree)) = self.head()? else {
            return Ok(Vec::new());
        };
        let Some((oid, true)) =
            lookup(&self.repo, tree, dir.trim_end_matches('/')).map_err(|e| err(&self.path, e))?
        else {
            return Ok(Vec::new());
        };
        let obj = self.repo.find_object(oid).map_err(|e| err(&self.path, e))?;
        let t = obj.into_tree();
        let decoded = t.decode().map_err(|e| err(&self.path, e))?;
        Ok(decoded
            .entries
            .iter()
            .map(|e| e.filename.to_str_lossy().into_owned())
            .collect())
    }

    /// Commits HEAD's tree with `edit` applied: only the trees on the way to an edited path
    /// are read and written; every other subtree is reused as it is. Returns the new tree and
    /// the commit, or `None` when the tree did not change.
    pub fn commit_edit(
        &self,
        edit: &TreeEdit,
        message: &str,
    ) -> Result<Option<(ObjectId, ObjectId)>, GitError> {
        edit.check_owned()?;
        self.commit_edit_anywhere(edit, message)
    }

    /// [`FleetRepo::commit_edit`] without the limit to atoll's own folders (for repositories
    /// that are not fleet repositories: test upstreams, benchmark catalogs).
    fn commit_edit_anywhere(
        &self,
        edit: &TreeEdit,
        message: &str,
    ) -> Result<Option<(ObjectId, ObjectId)>, GitError> {
        let head = self.head()?;
        let tree = edit
            .write(&self.repo, head.map(|(_, t)| t))
            .map_err(|e| err(&self.path, e))?;
        if head.is_some_and(|(_, t)| t == tree) {
            return Ok(None);
        }
        // Killed from here to `end_checkout`, the next render finds the marker and checks
        // the work tree out again.
        self.begin_checkout(tree, edit.replace.iter())?;
        fault("before-commit");
        let id = self.commit_tree(tree, head.map(|(c, _)| c), message)?;
        fault("after-commit");
        self.checkout_edit(tree, edit)?;
        self.end_checkout()?;
        Ok(Some((tree, id)))
    }

    pub(crate) fn commit_tree(
        &self,
        tree: ObjectId,
        parent: Option<ObjectId>,
        message: &str,
    ) -> Result<ObjectId, GitError> {
        let time = commit_time();
        let sig = gix::actor::SignatureRef {
            name: "atoll".into(),
            email: ATOLL_EMAIL.into(),
            time: &time,
        };
        Ok(self
            .repo
            .commit_as(sig, sig, "HEAD", message, tree, parent)
            .map_err(|e| err(&self.path, e))?
            .detach())
    }

    /// Brings a work tree (if any) in line with an edit: the edited paths only, then the index.
    /// Paths are [`RepoPath`]s, and a symbolic link met on the way (a work tree can hold
    /// anything) is replaced, never followed: nothing is written outside the work tree.
    fn checkout_edit(&self, tree: ObjectId, edit: &TreeEdit) -> Result<(), GitError> {
        let Some(work) = self.repo.workdir() else {
            return Ok(());
        };
        let work = work.to_path_buf();
        for key in &edit.replace {
            if key.is_empty() {
                continue;
            }
            remove_in(&work, &RepoPath::new(key)?)?;
        }
        for (i, (rel, bytes)) in edit.files.iter().enumerate() {
            let rel = RepoPath::new(rel)?;
            write_file_in(&work, &rel, bytes)?;
            if i == edit.files.len() / 2 {
                fault("mid-checkout");
            }
        }
        self.update_index(tree, edit, &work)
    }

    /// Brings the index in line with an edit just checked out: entries under the replaced
    /// paths go, the edit's files come in with the stat of what was just written. Only when
    /// there is no index yet, or the edit replaced everything, is it rebuilt from the tree.
    fn update_index(&self, tree: ObjectId, edit: &TreeEdit, work: &Path) -> Result<(), GitError> {
        use gix::bstr::ByteSlice;
        let whole = edit.replace.iter().any(|k| {
            let k = k.trim_end_matches('/');
            k.is_empty() || OWNED_ROOTS.contains(&k)
        });
        let mut index = match (whole, self.repo.open_index()) {
            (false, Ok(i)) => i,
            _ => return self.write_index(tree),
        };
        let mut gone = vec![false; index.entries().len()];
        for key in &edit.replace {
            let folder = key.ends_with('/');
            let k = key.trim_end_matches('/');
            let prefix = if folder {
                format!("{k}/")
            } else {
                k.to_string()
            };
            if let Some(r) = index.prefixed_entries_range(prefix.as_bytes().as_bstr()) {
                for i in r {
                    let p = index.entries()[i].path(&index);
                    if folder || p == k.as_bytes() {
                        gone[i] = true;
                    }
                }
            }
        }
        index.remove_entries(|i, _, _| gone[i]);
        for (path, bytes) in &edit.files {
            let meta = gix::index::fs::Metadata::from_path_no_follow(&work.join(path))?;
            let stat = gix::index::entry::Stat::from_fs(&meta).map_err(|e| err(&self.path, e))?;
            index.dangerously_push_entry(
                stat,
                blob_id(bytes),
                gix::index::entry::Flags::empty(),
                gix::index::entry::Mode::FILE,
                path.as_bytes().as_bstr(),
            );
        }
        index.sort_entries();
        // The tree cache would describe the old tree.
        index.remove_tree();
        index
            .write(Default::default())
            .map_err(|e| err(&self.path, e))?;
        Ok(())
    }

    /// Makes the index say `tree` (what a checkout of it would stage).
    pub(crate) fn write_index(&self, tree: ObjectId) -> Result<(), GitError> {
        let mut index = self
            .repo
            .index_from_tree(&tree)
            .map_err(|e| err(&self.path, e))?;
        index
            .write(Default::default())
            .map_err(|e| err(&self.path, e))?;
        Ok(())
    }

    /// Every path of HEAD with its blob id, without reading the blobs.
    pub fn head_paths(&self) -> Result<BTreeMap<String, ObjectId>, GitError> {
        let mut out = BTreeMap::new();
        if let Some((_, tree)) = self.head()? {
            walk_blobs(&self.repo, tree, "", &mut |path, id| {
                out.insert(path, id);
                Ok(())
            })
            .map_err(|e| err(&self.path, e))?;
        }
        Ok(out)
    }

    /// Commits `files` as the whole new tree. Returns `None` when it equals HEAD's.
    pub fn commit(&self, files: &Files, message: &str) -> Result<Option<ObjectId>, GitError> {
        let mut edit = TreeEdit::default();
        for name in self.head_names("")? {
            edit.replace.insert(format!("{name}/"));
        }
        for path in files.keys() {
            let top = path.split('/').next().unwrap_or(path);
            edit.replace.insert(if top == path {
                top.to_string()
            } else {
                format!("{top}/")
            });
        }
        edit.files = files
            .iter()
            .map(|(p, b)| (p.clone(), std::sync::Arc::<[u8]>::from(b.as_slice())))
            .collect();
        Ok(self.commit_edit_anywhere(&edit, message)?.map(|(_, c)| c))
    }

    /// Points the lightweight tag `name` at HEAD (moving it if it exists).
    pub fn tag(&self, name: &str) -> Result<(), GitError> {
        let Some((commit, _)) = self.head()? else {
            return Err(err(&self.path, "cannot tag: no commits yet"));
        };
        self.repo
            .tag_reference(name, commit, gix::refs::transaction::PreviousValue::Any)
            .map_err(|e| err(&self.path, e))?;
        Ok(())
    }
}

/// A test hook: with `ATOLL_FAULT=<point>`, the process stops dead (SIGKILL to itself) at
/// that point of a commit, as a crash would stop it. Points: `before-commit`,
/// `after-commit`, `mid-checkout`.
fn fault(point: &str) {
    if std::env::var("ATOLL_FAULT").is_ok_and(|f| f == point) {
        // SAFETY-free: a signal to ourselves, as `kill -9` from outside would send.
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// Removes whatever stands at `p` (file, folder or symbolic link, which is not followed).
pub(crate) fn remove_any(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes what stands at `rel` under `root`. A folder on the way that is a symbolic link
/// (or a file) is itself removed instead, never followed: nothing outside `root` is touched.
pub(crate) fn remove_in(root: &Path, rel: &RepoPath) -> std::io::Result<()> {
    let mut p = root.to_path_buf();
    let parts: Vec<&str> = rel.as_str().split('/').collect();
    let (last, dirs) = parts.split_last().expect("a path has a name");
    for d in dirs {
        p.push(d);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return std::fs::remove_file(&p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    remove_any(&p.join(last))
}

/// Writes `bytes` at `rel` under `root`, creating folders on the way; a symbolic link or a
/// file standing where a folder (or the file) goes is removed first, so the write can never
/// be redirected outside `root`.
pub(crate) fn write_file_in(root: &Path, rel: &RepoPath, bytes: &[u8]) -> std::io::Result<()> {
    let mut dir = root.to_path_buf();
    let parts: Vec<&str> = rel.as_str().split('/').collect();
    let (file, dirs) = parts.split_last().expect("a path has a name");
    for d in dirs {
        dir.push(d);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => std::fs::remove_file(&dir)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir(&dir)?;
    }
    let target = dir.join(file);
    if let Ok(m) = std::fs::symlink_metadata(&target)
        && !m.is_file()
    {
        remove_any(&target)?;
    }
    std::fs::write(&target, bytes)
}

/// Commit time: `SOURCE_DATE_EPOCH` when set (reproducible commits), else now.
fn commit_time() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    format!("{secs} +0000")
}

type BoxErr = Box<dyn std::error::Error + Send + Sync>;

/// Calls `f` with the path and id of every blob under `tree`, depth first.
fn walk_blobs(
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
fn diff_entries(
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
fn read_tree(
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
struct Dirs(std::collections::HashMap<ObjectId, Dir>);

#[derive(Default)]
struct Dir {
    /// The tree object's bytes.
    data: Vec<u8>,
    lookups: usize,
    index: Option<std::collections::HashMap<Vec<u8>, (ObjectId, bool)>>,
}

impl Dir {
    fn find(&mut self, name: &[u8]) -> Result<Option<(ObjectId, bool)>, BoxErr> {
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
    fn lookup(
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
fn lookup(
    repo: &gix::Repository,
    tree: ObjectId,
    path: &str,
) -> Result<Option<(ObjectId, bool)>, BoxErr> {
    Dirs::default().lookup(repo, tree, path)
}

/// A change to a tree: each path in `replace` — a folder ending in `/`, or a file — loses what
/// it held and gets the entries of `files` that lie under it. Everything else stays.
#[derive(Debug, Default, Clone)]
pub struct TreeEdit {
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
    fn write(&self, repo: &gix::Repository, base: Option<ObjectId>) -> Result<ObjectId, BoxErr> {
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

/// Bounds on one upstream package: it is copied into every cluster it is placed on.
pub const MAX_PACKAGE_FILES: usize = 10_000;
/// See [`MAX_PACKAGE_FILES`].
pub const MAX_PACKAGE_BYTES: usize = 64 << 20;
/// Symbolic links followed in a row inside a package before giving up.
const MAX_LINK_HOPS: usize = 8;

/// Reads the directory `dir` of the repository at `repo_path` at `rev` (tag, branch or commit).
/// Returns the commit it resolved to and the files, relative to `dir`.
///
/// The upstream is hostile until checked: every entry name on the way is a [`check_name`]d
/// name (no `..`, `.git`, empty names, `/`, NUL), submodules (gitlinks) are refused, and a
/// symbolic link is copied as the file it points to only when that file is inside the
/// package; anything else is an error naming the upstream, the revision and the entry.
pub fn read_package(repo_path: &Path, dir: &str, rev: &str) -> Result<(String, Files), GitError> {
    // Only objects are read: no configuration of the upstream (or of this machine) applies.
    let repo =
        gix::open_opts(repo_path, gix::open::Options::isolated()).map_err(|e| err(repo_path, e))?;
    let name = repo_path.display().to_string();
    let not_found = || GitError::Revision {
        repo: name.clone(),
        rev: rev.to_string(),
    };
    let candidates = [
        format!("refs/tags/{rev}"),
        format!("refs/heads/{rev}"),
        rev.to_string(),
    ];
    let mut commit = None;
    for c in &candidates {
        if let Ok(mut r) = repo.find_reference(c.as_str())
            && let Ok(id) = r.peel_to_id()
        {
            commit = Some(id.detach());
            break;
        }
    }
    if commit.is_none()
        && let Ok(id) = ObjectId::from_hex(rev.as_bytes())
    {
        commit = Some(id);
    }
    let commit = commit.ok_or_else(not_found)?;
    let c = repo.find_object(commit).map_err(|_| not_found())?;
    let c = c.try_into_commit().map_err(|_| not_found())?;
    let tree = c.tree_id().map_err(|e| err(repo_path, e))?.detach();
    let unsafe_entry = |entry: &str, why: String| GitError::Unsafe {
        repo: name.clone(),
        rev: rev.to_string(),
        entry: entry.to_string(),
        why,
    };
    let dir = dir.trim_matches('/');
    let no_package = || GitError::NoPackage {
        repo: name.clone(),
        dir: dir.to_string(),
        rev: rev.to_string(),
    };
    // The package folder itself, one checked name at a time.
    let mut cur = tree;
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        check_name(part.as_bytes()).map_err(|why| unsafe_entry(dir, why))?;
        let obj = repo.find_object(cur).map_err(|e| err(repo_path, e))?;
        let t = obj.into_tree();
        let decoded = t.decode().map_err(|e| err(repo_path, e))?;
        let e = decoded
            .entries
            .iter()
            .find(|e| e.filename == part.as_bytes())
            .ok_or_else(no_package)?;
        if !e.mode.is_tree() {
            return Err(no_package());
        }
        cur = e.oid.to_owned();
    }
    let mut files = Files::new();
    let mut links: BTreeMap<String, String> = BTreeMap::new();
    let mut bytes = 0usize;
    let mut stack = vec![(cur, String::new())];
    while let Some((id, prefix)) = stack.pop() {
        let obj = repo.find_object(id).map_err(|e| err(repo_path, e))?;
        let t = obj.into_tree();
        let decoded = t.decode().map_err(|e| err(repo_path, e))?;
        for e in decoded.entries.iter() {
            let shown = e.filename.to_str_lossy();
            let path = if prefix.is_empty() {
                shown.to_string()
            } else {
                format!("{prefix}/{shown}")
            };
            let at = if dir.is_empty() {
                path.clone()
            } else {
                format!("{dir}/{path}")
            };
            check_name(e.filename).map_err(|why| unsafe_entry(&at, why))?;
            if e.mode.is_tree() {
                stack.push((e.oid.to_owned(), path));
            } else if e.mode.is_commit() {
                return Err(unsafe_entry(
                    &at,
                    "a submodule (gitlink): packages are copied whole, not linked".into(),
                ));
            } else if e.mode.is_link() {
                let target = repo.find_object(e.oid).map_err(|e| err(repo_path, e))?;
                let target = String::from_utf8_lossy(&target.data).into_owned();
                links.insert(path, target);
            } else {
                let blob = repo.find_object(e.oid).map_err(|e| err(repo_path, e))?;
                bytes += blob.data.len();
                files.insert(path, blob.data.clone());
            }
            if files.len() + links.len() > MAX_PACKAGE_FILES || bytes > MAX_PACKAGE_BYTES {
                return Err(unsafe_entry(
                    dir,
                    format!(
                        "the package is larger than {MAX_PACKAGE_FILES} files or {} MiB",
                        MAX_PACKAGE_BYTES >> 20
                    ),
                ));
            }
        }
    }
    // A link inside the package becomes a copy of what it points to.
    for (path, target) in &links {
        let at = format!("{dir}/{path}");
        let mut cur_path = path.clone();
        let mut cur_target = target.clone();
        let mut hops = 0;
        let resolved = loop {
            let resolved = resolve_link(&cur_path, &cur_target).ok_or_else(|| {
                unsafe_entry(
                    &at,
                    format!("a symbolic link to `{target}`, which is outside the package"),
                )
            })?;
            if let Some(b) = files.get(&resolved) {
                break b.clone();
            }
            match links.get(&resolved) {
                Some(next) if hops < MAX_LINK_HOPS => {
                    hops += 1;
                    cur_path = resolved;
                    cur_target = next.clone();
                }
                _ => {
                    return Err(unsafe_entry(
                        &at,
                        format!(
                            "a symbolic link to `{target}`, which is not a file of the package"
                        ),
                    ));
                }
            }
        };
        files.insert(path.clone(), resolved);
    }
    if files.is_empty() {
        return Err(no_package());
    }
    Ok((commit.to_string(), files))
}

/// Where a link at `path` pointing to `target` lands, relative to the package root; `None`
/// when it leaves the package (or is absolute).
fn resolve_link(path: &str, target: &str) -> Option<String> {
    if target.starts_with('/') || target.contains('\\') || target.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    for t in target.split('/') {
        match t {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            name => {
                check_name(name.as_bytes()).ok()?;
                parts.push(name);
            }
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}
