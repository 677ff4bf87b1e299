//! A cache kept in the fleet repository's Git directory (`atoll-cache/`), so that the next
//! run over a large fleet skips what did not change: declaration files already parsed, each
//! cluster's resolve/place/digest results ([`RenderMemo`]), and what HEAD says
//! ([`HeadState`]).
//!
//! Every entry is keyed by content — a file's name and text, the declarations a cluster's
//! results came from, a commit id — and the cache lives in a folder named after the atoll
//! build that wrote it. So an entry is never stale, only missing; deleting the folder, or a
//! cache that cannot be read or written, costs time and nothing else. atoll's own state is
//! kept in postcard (compact, quick to read back); declarations in JSON, as their types
//! skip empty fields when written.

use crate::HeadState;
use atoll_engine::memo::RenderMemo;
use atoll_model::{Diagnostics, Model};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The cache of one fleet repository, for this build of atoll.
pub struct Cache {
    dir: PathBuf,
}

const ROOT: &str = "atoll-cache";

impl Cache {
    /// The cache in `git_dir`. Caches written by other builds are removed.
    pub fn open(git_dir: &Path) -> Cache {
        let root = git_dir.join(ROOT);
        let build = build_id();
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                if e.file_name().to_str() != Some(build.as_str()) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Cache {
            dir: root.join(build),
        }
    }

    /// Loads and validates the declarations under `paths`, taking unchanged files from the
    /// cache and keeping newly parsed ones; with the last render's memo, read meanwhile.
    pub fn load_model(
        &self,
        paths: &[PathBuf],
    ) -> (Result<Model, Diagnostics>, Option<RenderMemo>) {
        let ((model, loaded), memo) =
            rayon::join(|| atoll_model::load_model_with(paths, self), || self.memo());
        self.save_files(&loaded.digests, &loaded.parsed);
        (model, memo)
    }

    /// What HEAD at `commit` says, if a run saw it before.
    pub fn head(&self, commit: &str) -> Option<HeadState> {
        let bytes = std::fs::read(self.dir.join("head").join(commit)).ok()?;
        postcard::from_bytes(&bytes).ok()
    }

    /// Keeps what HEAD at `commit` says, in place of any other commit's.
    pub fn save_head(&self, commit: &str, head: &HeadState) {
        let dir = self.dir.join("head");
        if write(
            &dir,
            commit,
            &postcard::to_stdvec(head).expect("head state"),
        )
        .is_ok()
        {
            remove_others(&dir, &BTreeSet::from([commit.to_string()]));
        }
    }

    /// The last render's memo.
    pub fn memo(&self) -> Option<RenderMemo> {
        let bytes = std::fs::read(self.dir.join("memo")).ok()?;
        postcard::from_bytes(&bytes).ok()
    }

    /// [`save_memo`](Cache::save_memo) on another thread; done when the result is dropped.
    pub fn save_memo_in_background(&self, memo: RenderMemo) -> Saving {
        let cache = Cache {
            dir: self.dir.clone(),
        };
        Saving(Some(std::thread::spawn(move || cache.save_memo(&memo))))
    }

    /// Stores `memo` for the next run; a failed write only costs that run its reuse.
    pub fn save_memo(&self, memo: &RenderMemo) {
        let _ = write(&self.dir, "memo", &postcard::to_stdvec(memo).expect("memo"));
    }

    /// Keeps newly parsed files, and forgets files no longer read (`digests` are all of this
    /// run's). Nothing is written when nothing was parsed.
    pub fn save_files(&self, digests: &[String], parsed: &[(String, Vec<u8>)]) {
        if parsed.is_empty() {
            return;
        }
        let dir = self.dir.join("files");
        for (digest, bytes) in parsed {
            let _ = write(&dir, digest, bytes);
        }
        remove_others(&dir, &digests.iter().cloned().collect());
    }
}

/// A cache write under way; dropping it waits for it to finish.
pub struct Saving(Option<std::thread::JoinHandle<()>>);

impl Drop for Saving {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

impl atoll_model::parsed::ParsedFiles for Cache {
    fn get(&self, digest: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join("files").join(digest)).ok()
    }
}

/// Names this build: its version and its executable's size and modification time, so that a
/// rebuilt binary never reads what another one wrote.
fn build_id() -> String {
    let exe = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            format!("{}-{t}", m.len())
        })
        .unwrap_or_default();
    format!("{}-{exe}", env!("CARGO_PKG_VERSION"))
}

/// Writes `dir/name` whole or not at all (a temporary file renamed into place), so that a
/// concurrent reader never sees half a file.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, dir.join(name))
}

fn remove_others(dir: &Path, keep: &BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') && !keep.contains(name.as_ref()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
