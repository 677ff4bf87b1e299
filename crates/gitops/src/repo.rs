//! The fleet repository: open or create it, read HEAD and its files, commit a tree edit
//! (objects in one pack, the ref moved last), check a work tree out on the changed paths.

use super::*;

/// The committer address of atoll's own commits: how [`FleetRepo::last_rendered`] tells
/// them from other writers'.
pub const ATOLL_EMAIL: &str = "atoll@localhost";

/// A file tree: path → bytes.
pub type Files = BTreeMap<String, Vec<u8>>;

/// The fleet repository.
pub struct FleetRepo {
    pub(crate) repo: gix::Repository,
    pub(crate) path: PathBuf,
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

    /// HEAD's commit and tree, or `None` in a repository without commits.
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
    pub(crate) fn commit_edit_anywhere(
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
    pub(crate) fn checkout_edit(&self, tree: ObjectId, edit: &TreeEdit) -> Result<(), GitError> {
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
    pub(crate) fn update_index(
        &self,
        tree: ObjectId,
        edit: &TreeEdit,
        work: &Path,
    ) -> Result<(), GitError> {
        let whole = edit.replace.iter().any(|k| {
            let k = k.trim_end_matches('/');
            k.is_empty() || OWNED_ROOTS.contains(&k)
        });
        if whole {
            return self.write_index(tree);
        }
        let mut added = Vec::with_capacity(edit.files.len());
        for (path, bytes) in &edit.files {
            let meta = gix::index::fs::Metadata::from_path_no_follow(&work.join(path))?;
            let stat = gix::index::entry::Stat::from_fs(&meta).map_err(|e| err(&self.path, e))?;
            added.push(index::Entry {
                path: path.as_bytes().to_vec(),
                id: blob_id(bytes),
                mode: gix::index::entry::Mode::FILE.bits(),
                stat,
            });
        }
        let removed: Vec<&str> = edit.replace.iter().map(String::as_str).collect();
        let fresh = index::IndexEdit {
            removed: removed.clone(),
            added: added.clone(),
        };
        match index::patch(self.git_dir(), fresh) {
            Ok(()) => return Ok(()),
            Err(index::Unpatchable::Io(e)) => return Err(e.into()),
            Err(index::Unpatchable::Unknown(_)) => {}
        }
        // Not a split index atoll can patch (Git rewrote it whole, or there is none): read it
        // as it is, so the stat data Git refreshed survives, and write a fresh base.
        let Ok(current) = self.repo.open_index() else {
            return self.write_index(tree);
        };
        let mut entries = index::apply_to(
            current.entries().iter().map(|e| index::Entry {
                path: e.path(&current).to_vec(),
                id: e.id,
                mode: e.mode.bits(),
                stat: e.stat,
            }),
            index::IndexEdit { removed, added },
        );
        if entries.windows(2).any(|w| w[0].path >= w[1].path) {
            // Stages or duplicates: not what atoll writes; start from the tree.
            return self.write_index(tree);
        }
        index::write_whole(self.git_dir(), entries.drain(..))?;
        Ok(())
    }

    /// Makes the index say `tree` (what a checkout of it would stage), as a fresh shared base.
    pub(crate) fn write_index(&self, tree: ObjectId) -> Result<(), GitError> {
        let state = self
            .repo
            .index_from_tree(&tree)
            .map_err(|e| err(&self.path, e))?;
        index::write_whole(
            self.git_dir(),
            state.entries().iter().map(|e| index::Entry {
                path: e.path(&state).to_vec(),
                id: e.id,
                mode: e.mode.bits(),
                stat: e.stat,
            }),
        )?;
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
pub(crate) fn fault(point: &str) {
    if std::env::var("ATOLL_FAULT").is_ok_and(|f| f == point) {
        // SAFETY-free: a signal to ourselves, as `kill -9` from outside would send.
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// Commit time: `SOURCE_DATE_EPOCH` when set (reproducible commits), else now.
pub(crate) fn commit_time() -> String {
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
