//! Upstream packages (kpt / Porch): a folder of another repository at a pinned revision,
//! read as hostile input.

use super::*;

/// Bounds on one upstream package: it is copied into every cluster it is placed on.
pub const MAX_PACKAGE_FILES: usize = 10_000;
/// See [`MAX_PACKAGE_FILES`].
pub const MAX_PACKAGE_BYTES: usize = 64 << 20;
/// Symbolic links followed in a row inside a package before giving up.
pub(crate) const MAX_LINK_HOPS: usize = 8;

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
pub(crate) fn resolve_link(path: &str, target: &str) -> Option<String> {
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
