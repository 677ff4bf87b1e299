//! atoll's Git shell: reads the fleet repository, commits rendered packages (one commit per
//! render, none when nothing changed), reads upstream packages at pinned revisions. The
//! per-cluster plan (pure: two trees in, a list of changes out) lives in `atoll-pipeline`.
//! Written with gix; Git is never shelled out to (but for push and fetch, in `remote`).
//!
//! Modules: `repo` ([`FleetRepo`]), `tree` (reading trees), `edit` ([`TreeEdit`]),
//! `worktree` (writing a work tree safely), `upstream` ([`read_package`]), `pack` (objects
//! in one pack), `guard` (the writer lock), `path` (checked names), `remote` (push, fetch).

pub use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::objs::tree::{Entry, EntryKind};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod edit;
mod guard;
mod index;
mod pack;
mod path;
mod remote;
mod repo;
mod tree;
mod upstream;
mod worktree;

pub use remote::{Auth, Pushed, Remote, display_url};

pub use edit::TreeEdit;
pub use guard::RepoLock;
pub use repo::{ATOLL_EMAIL, Files, FleetRepo};
pub use tree::blob_id;
use tree::*;
pub use upstream::{MAX_PACKAGE_BYTES, MAX_PACKAGE_FILES, read_package};
use worktree::*;

pub use path::{OWNED_ROOTS, PathError, RepoPath, check_name};

/// What can go wrong reading or writing a Git repository.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// Git (gix) refused an operation on a repository.
    #[error("{path}: {message}")]
    Repo {
        /// The repository.
        path: String,
        /// What Git said.
        message: String,
    },
    /// A tag, branch or commit that the repository does not have.
    #[error("revision `{rev}` not found in {repo}")]
    Revision {
        /// The repository.
        repo: String,
        /// The revision asked for.
        rev: String,
    },
    /// An upstream package's folder is missing at the pinned revision.
    #[error("package directory `{dir}` not found in {repo} at {rev}")]
    NoPackage {
        /// The upstream repository.
        repo: String,
        /// The package folder asked for.
        dir: String,
        /// The pinned revision.
        rev: String,
    },
    /// An upstream package holds an entry atoll refuses to copy.
    #[error("upstream {repo} at {rev}: entry `{entry}` refused: {why}")]
    Unsafe {
        /// The upstream repository.
        repo: String,
        /// The pinned revision.
        rev: String,
        /// The entry's path in the package.
        entry: String,
        /// Why it is refused (a `..` name, a symbolic link, a size over the limits...).
        why: String,
    },
    /// A path atoll was asked to write is not safe.
    #[error("{0}")]
    Path(#[from] PathError),
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub(crate) fn err(path: &Path, e: impl std::fmt::Display) -> GitError {
    GitError::Repo {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}
