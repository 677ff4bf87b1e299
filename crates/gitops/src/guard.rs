//! Keeping a fleet repository whole when renders run at once or die half way.
//!
//! - [`RepoLock`]: one writer per repository at a time (an advisory lock on
//!   `<git dir>/atoll.lock`, released by the kernel when the process dies, so it is never
//!   stale). The file says who holds it; a second writer waits and says so.
//! - Stale Git lock files (`HEAD.lock`, `index.lock`, `refs/**.lock`) left by a writer killed
//!   mid-commit are removed once the lock is held (no other atoll can be writing then).
//! - A marker (`<git dir>/atoll-checkout`) is written before a commit and removed once the
//!   work tree and index match it; finding it means a render died in between, and the owned
//!   folders of the work tree are checked out from HEAD again.

use crate::{FleetRepo, GitError, OWNED_ROOTS, RepoPath, err, write_file_in};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// One writer per repository; dropped = released.
#[derive(Debug)]
pub struct RepoLock {
    _file: File,
}

const LOCK_FILE: &str = "atoll.lock";
const CHECKOUT_MARKER: &str = "atoll-checkout";

/// Git's own lock files older than this, found while atoll holds its lock, were left by a
/// killed writer.
const STALE_GIT_LOCK: Duration = Duration::from_secs(5);

impl FleetRepo {
    /// Takes the repository's writer lock, waiting for another holder (after calling
    /// `waiting` with who it is). `what` says who we are (`atoll render`, `atoll serve`…).
    pub fn lock(&self, what: &str, waiting: &dyn Fn(&str)) -> Result<RepoLock, GitError> {
        let path = self.git_dir().join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // The holder writes who it is just after taking the lock: give it a moment.
                let mut holder = String::new();
                for _ in 0..20 {
                    holder = std::fs::read_to_string(&path).unwrap_or_default();
                    if !holder.trim().is_empty() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                let holder = holder.trim();
                waiting(if holder.is_empty() {
                    "another atoll process"
                } else {
                    holder
                });
                file.lock()?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        file.set_len(0)?;
        let since = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        writeln!(
            file,
            "{what} (pid {}, since unix time {since})",
            std::process::id()
        )?;
        self.remove_stale_git_locks()?;
        Ok(RepoLock { _file: file })
    }

    fn remove_stale_git_locks(&self) -> Result<(), GitError> {
        let git = self.git_dir().to_path_buf();
        let mut candidates = vec![
            git.join("HEAD.lock"),
            git.join("index.lock"),
            git.join("packed-refs.lock"),
        ];
        collect_locks(&git.join("refs"), &mut candidates, 0);
        let now = SystemTime::now();
        for c in candidates {
            let Ok(m) = std::fs::symlink_metadata(&c) else {
                continue;
            };
            let age = m
                .modified()
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            if m.is_file() && age >= STALE_GIT_LOCK {
                std::fs::remove_file(&c)?;
            }
        }
        Ok(())
    }

    /// Says a commit of `tree` is about to be made and `paths` of the work tree rewritten.
    pub(crate) fn begin_checkout<'a>(
        &self,
        tree: gix::ObjectId,
        paths: impl Iterator<Item = &'a String>,
    ) -> Result<(), GitError> {
        if self.repo.workdir().is_none() {
            return Ok(());
        }
        let mut text = format!("{tree}\n");
        for p in paths {
            text.push_str(if p.is_empty() { "/" } else { p });
            text.push('\n');
        }
        let p = self.git_dir().join(CHECKOUT_MARKER);
        let tmp = p.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &p)?;
        Ok(())
    }

    /// The work tree and index match the commit.
    pub(crate) fn end_checkout(&self) -> Result<(), GitError> {
        match std::fs::remove_file(self.git_dir().join(CHECKOUT_MARKER)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Whether a render died between its commit and the end of its work-tree update (the
    /// next [`FleetRepo::repair_work_tree`] fixes it).
    pub fn checkout_interrupted(&self) -> bool {
        self.repo.workdir().is_some() && self.git_dir().join(CHECKOUT_MARKER).exists()
    }

    /// After an interrupted render: checks atoll's folders of the work tree out from HEAD
    /// again and rewrites the index. Returns whether there was anything to repair. Call it
    /// holding the [`RepoLock`].
    pub fn repair_work_tree(&self) -> Result<bool, GitError> {
        if !self.checkout_interrupted() {
            return Ok(false);
        }
        let work: PathBuf = self.repo.workdir().expect("checked").to_path_buf();
        // The paths the interrupted render was rewriting, or all of atoll's folders.
        let marker =
            std::fs::read_to_string(self.git_dir().join(CHECKOUT_MARKER)).unwrap_or_default();
        let mut keys: Vec<String> = marker
            .lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if keys.is_empty() || keys.iter().any(|k| k == "/") {
            keys = OWNED_ROOTS.iter().map(|r| format!("{r}/")).collect();
        }
        for k in &keys {
            crate::remove_in(&work, &RepoPath::owned(k)?)?;
        }
        if let Some((_, tree)) = self.head()? {
            let ids = self.head_ids_under(keys.iter().map(String::as_str))?;
            for (path, id) in ids {
                let rel = RepoPath::owned(&path)?;
                let blob = self.repo.find_object(id).map_err(|e| err(&self.path, e))?;
                write_file_in(&work, &rel, &blob.data)?;
            }
            self.write_index(tree)?;
        }
        self.end_checkout()?;
        Ok(true)
    }
}

fn collect_locks(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() && depth < 16 => collect_locks(&p, out, depth + 1),
            Ok(t) if t.is_file() && p.extension().is_some_and(|x| x == "lock") => out.push(p),
            _ => {}
        }
    }
}
