//! Writing into a work tree without ever leaving it: a symbolic link or a file where a
//! folder goes is removed, never followed.

use super::*;

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
